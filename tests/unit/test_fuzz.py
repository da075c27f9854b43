"""Bad input never crashes a normalizer or the config loader: hypothesis throws random and
malformed payloads at them; the only acceptable outcomes are a valid result or our clear error."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import parse_settings
from bot.errors import ConfigError
from bot.models import Message

json_scalars = st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
                           max_leaves=25)
SECTIONS = ["redis", "queue", "nlu", "router", "web", "sla", "logging", "channels", "handoff", "database", "typo"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(SECTIONS), json_values, max_size=5))
def test_any_config_is_loaded_or_refused_with_one_clear_line(raw: dict[str, Any]) -> None:
    try:
        parse_settings(raw)
    except ConfigError as e:
        msg = str(e)
        assert msg and "\n" not in msg and len(msg) < 500


def update_like() -> st.SearchStrategy[dict[str, Any]]:
    user = st.fixed_dictionaries({"id": st.integers(1, 10**10), "is_bot": st.booleans(), "first_name": st.text(max_size=10)},
                                 optional={"language_code": st.sampled_from(["en", "zh-hans", "", "xx"]), "username": st.text(max_size=10)})
    chat = st.fixed_dictionaries({"id": st.integers(-10**13, 10**10), "type": st.sampled_from(["private", "group", "supergroup", "channel", "weird"])})
    message = st.fixed_dictionaries(
        {"message_id": st.integers(1, 10**9), "date": st.integers(0, 2**31), "chat": chat},
        optional={"from": user, "text": st.text(max_size=300), "caption": st.text(max_size=50),
                  "entities": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["mention", "bot_command", "url"]),
                                                              "offset": st.integers(-5, 50), "length": st.integers(-5, 50)}), max_size=3),
                  "photo": st.lists(st.fixed_dictionaries({"file_id": st.text(max_size=8), "file_unique_id": st.text(max_size=8),
                                                           "width": st.integers(0, 5000), "height": st.integers(0, 5000)},
                                                          optional={"file_size": st.integers(-1, 10**10)}), max_size=3),
                  "document": st.fixed_dictionaries({"file_id": st.text(max_size=8), "file_unique_id": st.text(max_size=8)},
                                                    optional={"file_size": st.integers(-1, 10**10), "file_name": st.text(max_size=20),
                                                              "mime_type": st.text(max_size=20)})})
    return st.fixed_dictionaries({"update_id": st.integers(0, 2**31)},
                                 optional={"message": message, "edited_message": message, "junk": json_values})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(update_like())
def test_telegram_updates_normalize_or_are_skipped(data: dict[str, Any]) -> None:
    from telegram import Update

    from channels.telegram.normalize import BotIdentity, normalize

    try:
        update = Update.de_json(data, None)
    except (TypeError, ValueError, KeyError):
        return  # the adapter dead-letters what PTB cannot parse
    res = normalize(update, BotIdentity(id=42, username="sb_bot", max_attachment_bytes=10_000_000))
    if res.message is not None:
        assert isinstance(res.message, Message) and res.message.conversation_id.startswith("telegram:")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["id_str", "text", "full_text", "user", "in_reply_to_status_id_str", "entities",
                                        "extended_tweet", "lang", "truncated", "extended_entities"]), json_values, max_size=8),
       st.dictionaries(st.sampled_from(["id", "type", "created_timestamp", "message_create"]), json_values, max_size=4))
def test_x_webhook_events_normalize_or_are_skipped(tweet: dict[str, Any], dm: dict[str, Any]) -> None:
    """Whatever X (or a forger past the signature) sends, a normalizer returns a Message or a
    Skipped, or fails with one of the errors the adapter's guard logs and skips."""
    from channels.twitter.normalize import Skipped, dm_from_webhook, mention_from_webhook

    for build in (lambda: mention_from_webhook(tweet, "99"), lambda: dm_from_webhook(dm, {}, "99")):
        try:
            res = build()
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # logged as twitter.event_malformed and skipped by TwitterChannel
        assert isinstance(res, Message | Skipped)


# -- MIME ----------------------------------------------------------------------------------------

_SEED_MAILS = [
    b"From: =?utf-8?b?5byg5LiJ?= <zhang@example.com>\r\nTo: support@ex.com\r\nSubject: =?gbk?q?=D3=E0=B6=EE?=\r\n"
    b"Message-ID: <a@b>\r\nIn-Reply-To: <x@y>\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n"
    b"--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"5oiR55qEVVNEVOWFheWAvOayoeWIsOi0pg==\r\n--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p>my <b>USDT</b> deposit</p><blockquote>old</blockquote>\r\n--B--\r\n",
    b"From: a@b.c\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=\"X\"\r\n\r\n--X\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"caf=E9 withdrawal =\r\npending\r\n--X\r\nContent-Type: image/png; name=a.png\r\nContent-Disposition: attachment\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--X\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: c@d.e\r\nSubject: fwd\r\n\r\ninner body\r\n--X--\r\n",
]


@st.composite
def mangled_mail(draw: st.DrawFn) -> bytes:
    """A real-looking mail, then damaged: bytes flipped, cut, spliced, headers and parts duplicated."""
    raw = bytearray(draw(st.sampled_from(_SEED_MAILS)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if not raw:
            break
        i = draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:i + draw(st.integers(1, 200))]
        elif op == "insert":
            raw[i:i] = draw(st.sampled_from([b"\r\n", b"--B\r\n", b"--X--", b"=?utf-8?b?", b"\x00\xff", b"boundary=",
                                             b"Content-Transfer-Encoding: base64\r\n", b"charset=x-unknown;",
                                             b"\r\n\r\n", b"Content-Type: multipart/mixed; boundary=Z\r\n"]))
        else:
            j = draw(st.integers(i, min(len(raw), i + 300)))
            raw[j:j] = raw[i:j]
    return bytes(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mangled_mail(), st.binary(max_size=2000)))
def test_damaged_mail_is_read_as_far_as_possible_and_never_raises(raw: bytes) -> None:
    from channels.email.parse import parse_mail

    m = parse_mail(raw)
    assert isinstance(m.body, str) and isinstance(m.subject, str)
    assert "\x00" not in m.body
    for a in m.attachments:
        assert isinstance(a.data, bytes) and isinstance(a.name, str)
