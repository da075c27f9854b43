"""The twitter channel's config, and that the channel is optional: unconfigured, tweepy is never
imported; configured, only the adapter imports it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from bot.errors import ConfigError
from tests.conftest import ROOT, make_settings

CREDS = {"consumer_key": "ck", "consumer_secret": "cs-very-secret", "access_token": "1-at", "access_token_secret": "ats"}


def test_a_valid_twitter_section_is_accepted_with_secrets_hidden() -> None:
    s = make_settings(channels=[{"type": "twitter", "mode": "webhook", "account_id": "100", **CREDS}])
    cfg = s.channel("twitter")
    assert cfg is not None and cfg.mode == "webhook" and cfg.public_max_chars == 280  # type: ignore[attr-defined]
    assert "cs-very-secret" not in repr(cfg) and "cs-very-secret" not in str(s)


@pytest.mark.parametrize(("section", "words"), [
    ({"type": "twitter"}, "channels[0]"),
    ({"type": "twitter", "mode": "webhook", "bearer_token": "b"}, "consumer_secret"),
    ({"type": "twitter", "mode": "stream", **CREDS}, "channels[0].mode"),
    ({"type": "twitter", "pol_interval_s": 5, **CREDS}, "channels[0].pol_interval_s: unknown key"),
    ({"type": "twitter", "help_url": "help.example.com", **CREDS}, "help_url"),
])
def test_a_wrong_twitter_section_names_the_key(section: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as e:
        make_settings(channels=[section])
    assert words in str(e.value)
    assert "cs-very-secret" not in str(e.value)


def _run(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip()


def test_without_a_twitter_channel_building_the_app_never_imports_tweepy() -> None:
    out = _run("""
        import sys
        from bot.config import parse_settings
        from app.runtime import build_channels, connect_redis
        from app.web import create_app
        import app.cli  # noqa: F401
        s = parse_settings({"redis": {"url": "redis://127.0.0.1:1/0"}, "channels": [{"type": "web"}]})
        r = connect_redis(s)
        app = create_app(s, r, build_channels(s, r))
        print("tweepy" in sys.modules, any(m.startswith("channels.twitter") for m in sys.modules))
    """)
    assert out == "False False"


def test_a_twitter_section_is_validated_without_importing_tweepy_and_built_with_it() -> None:
    out = _run("""
        import sys
        from bot.config import parse_settings
        from app.runtime import build_channels, connect_redis
        s = parse_settings({"redis": {"url": "redis://127.0.0.1:1/0"}, "channels": [
            {"type": "twitter", "consumer_key": "a", "consumer_secret": "b", "access_token": "1-c",
             "access_token_secret": "d"}]})
        before = "tweepy" in sys.modules
        [ch] = build_channels(s, connect_redis(s))
        print(before, "tweepy" in sys.modules, type(ch).__name__)
    """)
    assert out == "False True TwitterChannel"
