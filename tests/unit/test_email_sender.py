"""Sender identity: only the support mailbox's own receiving server can vouch for a From: address."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from channels.email.cli import inspect_command
from channels.email.config import EmailChannelSettings
from channels.email.parse import parse_mail
from channels.email.sender import identify, org_domain, verify

MX = "mx.support.test"


def mail(*auth: str, sender: str = "Alice <alice@example.org>", extra: str = "") -> bytes:
    ar = "".join(f"Authentication-Results: {a}\r\n" for a in auth)
    return (f"{ar}Received: from out.example.org by {MX}\r\nFrom: {sender}\r\nTo: support@support.test\r\n"
            f"Subject: status\r\nMessage-ID: <m1@example.org>\r\n{extra}\r\nticket SB-000001 status\r\n").encode()


def check(raw: bytes, trusted: tuple[str, ...] = (MX,)) -> tuple[bool, str, str]:
    return verify(parse_mail(raw), trusted)


@pytest.mark.parametrize(
    ("raw", "verified", "method"),
    [
        (mail(f"{MX}; dmarc=pass (p=reject) header.from=example.org"), True, "dmarc"),
        (mail(f"{MX}; dkim=pass header.d=mail.example.org header.s=s1; dmarc=none"), True, "dkim"),  # relaxed
        (mail(f"{MX}; dkim=pass header.i=@news.example.org"), True, "dkim"),
        (mail(f"{MX}; spf=pass smtp.mailfrom=bounce@mail.example.org"), True, "spf"),
        # Forged: another server's id on top; ours only below (the sender's own field).
        (mail("mx.evil.test; dmarc=pass header.from=example.org", f"{MX}; dmarc=pass header.from=example.org"), False, "none"),
        # Unaligned DKIM and SPF: a signature of the sending service, not of example.org.
        (mail(f"{MX}; dkim=pass header.d=evil.test; spf=pass smtp.mailfrom=evil.test; dmarc=none"), False, "none"),
        # dmarc=fail wins over an aligned SPF pass.
        (mail(f"{MX}; spf=pass smtp.mailfrom=example.org; dmarc=fail header.from=example.org"), False, "none"),
        # A dmarc=pass for another domain says nothing about this From:.
        (mail(f"{MX}; dmarc=pass header.from=evil.test"), False, "none"),
        # Our field on top, a forged one further down (below Received): not read.
        (mail(f"{MX}; dkim=none", extra=f"Authentication-Results: {MX}; dmarc=pass header.from=example.org\r\n"), False, "none"),
        # Public suffixes are not organizations: co.uk is not an alignment.
        (mail(f"{MX}; dkim=pass header.d=evil.co.uk", sender="a@bank.co.uk"), False, "none"),
        (mail(), False, "none"),
    ],
)
def test_only_the_trusted_servers_topmost_results_vouch_for_an_aligned_domain(raw: bytes, verified: bool, method: str) -> None:
    ok, how, why = check(raw)
    assert (ok, how) == (verified, method), why
    assert why


def test_several_fields_of_the_trusted_server_stacked_on_top_are_read_together() -> None:
    raw = mail(f"{MX}; spf=none smtp.mailfrom=x", f"{MX}; dkim=pass header.d=example.org")
    assert check(raw)[0] is True


def test_unset_trusted_server_verifies_nobody_and_says_why() -> None:
    ok, _, why = check(mail(f"{MX}; dmarc=pass header.from=example.org"), trusted=())
    assert not ok and "trusted_authserv_id" in why


def test_microsoft_365_fields_without_authserv_id() -> None:
    raw = mail("spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=example.org; dkim=pass (signature was verified) "
               "header.d=example.org;dmarc=pass action=none header.from=example.org;compauth=pass reason=100")
    assert check(raw, ("microsoft-365",))[:2] == (True, "dmarc")
    assert check(raw, (MX,))[0] is False


@pytest.mark.parametrize(
    ("from_value", "addr", "ok"),
    [
        ("alice@example.org <mallory@evil.test>", "mallory@evil.test", False),  # the display-name trick
        ('"alice@example.org" <mallory@evil.test>', "mallory@evil.test", False),
        ("=?utf-8?q?alice=40example=2Eorg?= <mallory@evil.test>", "mallory@evil.test", False),
        ("Alice <alice@example.org>, Bob <bob@example.org>", "alice@example.org", False),  # several mailboxes
        ("undisclosed-recipients:;", None, False),
        ("Alice <alice@example.org>", "alice@example.org", True),
    ],
)
def test_the_sender_is_the_real_addr_spec_never_a_display_name(from_value: str, addr: str | None, ok: bool) -> None:
    m = parse_mail(mail(f"{MX}; dmarc=pass header.from=example.org", sender=from_value))
    assert m.from_addr == addr
    assert verify(m, (MX,))[0] is ok


def settings(**kw: object) -> EmailChannelSettings:
    return EmailChannelSettings(address="support@support.test", imap_host="h", username="u", password="p",  # type: ignore[arg-type]
                                smtp_host="h", trusted_authserv_id=MX, **kw)  # type: ignore[arg-type]


def test_reply_to_is_honoured_only_for_configured_relays() -> None:
    raw = mail(f"{MX}; dmarc=pass header.from=forms.example.org", sender="Form <ne-pas-repondre@forms.example.org>",
               extra="Reply-To: Carol <carol@example.net>\r\n")
    plain = identify(parse_mail(raw), settings())
    assert plain.reply_address == "ne-pas-repondre@forms.example.org" and not plain.relay
    relay = identify(parse_mail(raw), settings(relay_senders=("ne-pas-repondre@forms.example.org",)))
    assert relay.relay and relay.reply_address == "carol@example.net"
    assert relay.verified is False and "ne-pas-repondre@forms.example.org" in relay.why


def test_org_domain_uses_the_public_suffix_list() -> None:
    assert org_domain("mail.example.co.uk") == "example.co.uk" and org_domain("a.b.example.com") == "example.com"


def test_email_inspect_prints_verdict_text_language_and_verification(tmp_path: Path) -> None:
    vacation = tmp_path / "vacation.eml"
    vacation.write_bytes(b"From: Bob <bob@example.org>\r\nSubject: Auto reply: hi\r\nX-Apple-Action: VACATION\r\n\r\nAway\r\n")
    forged = tmp_path / "forged.eml"
    forged.write_bytes(mail("mx.evil.test; dmarc=pass header.from=example.org",
                            sender="\"alice@example.org\" <mallory@evil.test>"))
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"channels:\n  - type: email\n    address: support@support.test\n    imap_host: h\n    username: u\n"
                   f"    password: p\n    smtp_host: h\n    trusted_authserv_id: {MX}\n")
    out = io.StringIO()
    stdin = io.BytesIO("From: 张伟 <zw@example.cn>\r\nSubject: =?utf-8?b?5YWF5YC8?=\r\n\r\n我的USDT充值没到账\r\n".encode())
    code = inspect_command([str(vacation), str(forged), "-", str(tmp_path / "missing.eml")], cfg, None, stdin, out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert code == 1 and len(lines) == 4
    assert (lines[0]["verdict"], lines[0]["why"], lines[0]["text"]) == ("auto_reply", "x_apple_action:vacation", "")
    assert lines[1]["verdict"] == "customer" and lines[1]["sender"] == "mallory@evil.test"
    assert lines[1]["sender_verified"] is False and "mx.evil.test" in lines[1]["sender_verification"]
    assert lines[1]["text"] == "ticket SB-000001 status" and lines[1]["language"] == "en"
    assert lines[2]["language"] == "zh" and lines[2]["text"] == "充值\n\n我的USDT充值没到账"
    assert lines[3]["verdict"] == "unparseable" and "FileNotFoundError" in lines[3]["why"]
