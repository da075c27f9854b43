from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bot.lang import detect_language
from bot.models import Action, Decision, Message, Outbound, Priority


def test_message_round_trips_through_json_with_schema_version() -> None:
    m = Message(channel="web", channel_message_id="c1", conversation_id="web:s", user_id="s", text="hi", lang="en")
    back = Message.from_json(m.to_json())
    assert back == m
    assert '"schema_version":1' in m.to_json()
    assert back.received_at.tzinfo is not None


def test_a_newer_schema_version_is_refused_not_misread() -> None:
    raw = Message(channel="web", channel_message_id="c1", conversation_id="w", user_id="u", text="x").model_dump()
    raw["schema_version"] = 99
    with pytest.raises(ValidationError, match="newer"):
        Message.model_validate(raw)


def test_messages_are_frozen() -> None:
    m = Message(channel="web", channel_message_id="c1", conversation_id="w", user_id="u", text="x")
    with pytest.raises(ValidationError):
        m.text = "changed"  # type: ignore[misc]


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValidationError):
        Message(channel="web", channel_message_id="c", conversation_id="w", user_id="u", text="x",
                received_at=datetime(2026, 1, 1))  # noqa: DTZ001


def test_decision_public_fields_are_the_route_contract() -> None:
    d = Decision(message_id="m", conversation_id="c", channel="web", action=Action.ANSWER, topic="deposit",
                 intent="deposit_how", confidence=0.91234, priority=Priority.LOW, reply="…", lang="en")
    assert d.public() == {"action": "answer", "topic": "deposit", "intent": "deposit_how",
                          "confidence": 0.9123, "priority": "low", "reply": "…"}
    with pytest.raises(ValidationError):
        Decision(message_id="m", conversation_id="c", channel="web", action=Action.ANSWER, topic="weather",  # type: ignore[arg-type]
                 intent="x", confidence=1, priority=Priority.LOW, reply="", lang="en")


def test_outbound_json() -> None:
    o = Outbound(channel="web", conversation_id="web:s", user_id="s", text="hello", kind="agent", author="Ann",
                 created_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert Outbound.from_json(o.to_json()).author == "Ann"


def test_priority_raise_stops_at_urgent() -> None:
    assert Priority.NORMAL.raised() is Priority.HIGH
    assert Priority.URGENT.raised() is Priority.URGENT


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("How do I enable 2FA?", "en"),
        ("USDT充值一直没到账怎么办", "zh"),
        ("KYC审核要多久", "zh"),
        ("提币pending好久了", "zh"),
        ("my withdrawal to 0x52908400098527886E0F7030069857D2E4169EE7 is stuck", "en"),
        ("你好", "zh"),
        ("???", "en"),
    ],
)
def test_language_detection(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_language_hint_decides_only_without_letters() -> None:
    assert detect_language("123 ???", "zh-CN") == "zh"
    assert detect_language("hello", "zh-CN") == "en"
