"""The Telegram channel's config: what a wrong setting says, and that it never leaks the token."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.config import parse_settings
from bot.errors import ConfigError
from channels.telegram.config import TelegramChannelSettings
from tests.conftest import ROOT

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def tg(**kw: object) -> TelegramChannelSettings:
    s = parse_settings({"channels": [{"type": "telegram", "token": TOKEN, **kw}]})
    cfg = s.channel("telegram")
    assert isinstance(cfg, TelegramChannelSettings)
    return cfg


def test_a_token_alone_is_a_polling_bot_with_safe_defaults() -> None:
    cfg = tg()
    assert cfg.mode == "polling"
    assert cfg.base_url == "https://api.telegram.org/bot"
    assert cfg.max_attachment_bytes == 20 * 1024 * 1024
    assert cfg.bot_id == 123456789
    assert TOKEN not in repr(cfg) and TOKEN not in str(cfg.model_dump())


def test_webhook_mode_requires_a_secret_and_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"channels\[0\].*webhook_secret: required in webhook mode"):
        tg(mode="webhook")
    cfg = tg(mode="webhook", webhook_secret="s3cret_-X-0123456789abcdefghijklmnop", public_url="https://bot.example.com/")
    assert cfg.webhook_url() == "https://bot.example.com/telegram/webhook"


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"public_url": "http://bot.example.com"}, r"public_url: .*https://"),
        ({"webhook_path": "telegram"}, r"webhook_path: .*starting with /"),
        ({"mode": "webhook", "webhook_secret": "has spaces!"}, r"webhook_secret: use 1-256 characters"),
        ({"bot_username": "@x"}, r"bot_username: .*@username"),
        ({"mode": "push"}, r"channels\[0\].mode"),
        ({"tokn": "x"}, r"channels\[0\].tokn: unknown key"),
    ],
)
def test_bad_values_are_rejected_with_the_key(kw: dict[str, object], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        tg(**kw)


def test_a_malformed_token_is_rejected_without_echoing_it() -> None:
    bad = "123456789-AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    with pytest.raises(ConfigError, match=r"token: does not look like a BotFather token") as ei:
        parse_settings({"channels": [{"type": "telegram", "token": bad}]})
    assert bad not in str(ei.value)


def test_an_empty_env_default_means_not_set() -> None:
    cfg = tg(webhook_secret="", public_url="", bot_username="")
    assert cfg.webhook_secret is None and cfg.public_url is None and cfg.bot_username is None


def test_bot_username_accepts_the_at_sign() -> None:
    assert tg(bot_username="@Exchange_Support_Bot").bot_username == "Exchange_Support_Bot"


def test_validating_the_config_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from bot.config import parse_settings\n"
        f"parse_settings({{'channels': [{{'type': 'telegram', 'token': {TOKEN!r}}}]}})\n"
        "assert 'telegram' not in sys.modules, 'config validation imported python-telegram-bot'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
