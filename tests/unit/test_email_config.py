"""The email channel's config: safe defaults, errors that name the key, no password in errors."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from bot.config import parse_settings
from bot.errors import ConfigError
from channels.email.config import EmailChannelSettings
from tests.conftest import ROOT

PASSWORD = "s3cret-Mailbox-pw"
BASE: dict[str, Any] = {
    "type": "email", "address": "Support@Example.com", "imap_host": "imap.example.com",
    "smtp_host": "smtp.example.com", "username": "support@example.com", "password": PASSWORD,
}


def em(**kw: Any) -> EmailChannelSettings:
    cfg = parse_settings({"channels": [{**BASE, **kw}]}).channel("email")
    assert isinstance(cfg, EmailChannelSettings)
    return cfg


def test_a_mailbox_login_alone_gives_tls_everywhere_and_idle() -> None:
    cfg = em()
    assert cfg.address == "support@example.com" and cfg.domain == "example.com"
    assert (cfg.imap_security, cfg.effective_imap_port) == ("ssl", 993)
    assert (cfg.smtp_security, cfg.effective_smtp_port) == ("starttls", 587)
    assert cfg.idle and cfg.mailbox == "INBOX"
    assert cfg.smtp_login == ("support@example.com", PASSWORD)  # one login for both, as most providers
    assert PASSWORD not in repr(cfg) and PASSWORD not in str(cfg.model_dump())


def test_smtp_can_have_its_own_login_or_none() -> None:
    assert em(smtp_username="relay", smtp_password="pw2").smtp_login == ("relay", "pw2")
    assert em(smtp_auth=False, smtp_security="none").smtp_login is None
    assert em(smtp_security="none").effective_smtp_port == 25
    assert em(imap_security="starttls").effective_imap_port == 143
    # `${SMTP_USER:-}` unset expands to "": the same as not configured.
    assert em(smtp_username="", smtp_password="").smtp_login == ("support@example.com", PASSWORD)


def test_attachment_types_allow_families() -> None:
    cfg = em(allowed_attachment_types=["image/*", "Application/PDF"])
    assert cfg.attachment_type_allowed("image/heic") and cfg.attachment_type_allowed("application/pdf")
    assert not cfg.attachment_type_allowed("application/zip")


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"address": "support"}, r"channels\[0\]\.address: .*email address"),
        ({"imap_security": "tls"}, r"channels\[0\]\.imap_security"),
        ({"smtp_port": 70000}, r"channels\[0\]\.smtp_port"),
        ({"allowed_attachment_types": ["pdf"]}, r"not a MIME type: 'pdf'"),
        ({"imap_hots": "x"}, r"channels\[0\]\.imap_hots: unknown key"),
        ({"imap_host": "  "}, r"channels\[0\]\.imap_host: .*must not be empty"),
        ({"autoreply_max": 0}, r"channels\[0\]\.autoreply_max"),
    ],
)
def test_bad_values_are_rejected_with_the_key(kw: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        em(**kw)


def test_a_missing_or_empty_password_is_named_but_never_echoed() -> None:
    with pytest.raises(ConfigError, match=r"channels\[0\]\.password"):
        parse_settings({"channels": [{k: v for k, v in BASE.items() if k != "password"}]})
    with pytest.raises(ConfigError, match=r"password: must not be empty"):
        em(password="")
    with pytest.raises(ConfigError) as ei:
        em(imap_port="not-a-port")
    assert PASSWORD not in str(ei.value)


def test_validating_the_config_does_not_import_the_mail_libraries() -> None:
    code = (
        "import sys\n"
        "from bot.config import parse_settings\n"
        f"parse_settings({{'channels': [{BASE!r}]}})\n"
        "assert 'aioimaplib' not in sys.modules and 'aiosmtplib' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


async def test_the_console_reads_only_files_inside_the_attachment_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import redis.asyncio as aioredis

    from channels.email.adapter import EmailChannel

    store = tmp_path / "store"
    (store / "ab").mkdir(parents=True)
    (store / "ab" / "01-x.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("not yours")
    s = parse_settings({"channels": [{**BASE, "attachments_dir": str(store)}]})
    ch = EmailChannel.from_config(s, s.channel("email"), aioredis.Redis())  # type: ignore[arg-type]
    assert await ch.fetch_attachment("ab/01-x.png") == b"png"
    for ref in ("../secret.txt", str(tmp_path / "secret.txt"), "ab", "ab/missing.png", "ab/../../secret.txt"):
        with pytest.raises(FileNotFoundError):
            await ch.fetch_attachment(ref)
