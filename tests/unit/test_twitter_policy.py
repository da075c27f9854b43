"""The public/private rule: what may be said under a user's public post."""

from __future__ import annotations

import pytest

from bot.models import Outbound
from channels.twitter.policy import looks_private, nudge_text, plan_reply
from tests.fakes.x_api import x_weighted_length

PUBLIC_META = {"reply_visibility": "public", "reply_tweet_id": "123", "reply_author_id": "9", "reply_handle": "al"}


def ob(text: str, *, kind: str = "answer", topic: str | None = "glossary", lang: str = "en",
       meta: dict[str, str] | None = None) -> Outbound:
    return Outbound(channel="twitter", conversation_id="twitter:mention:9", user_id="9", text=text,
                    kind=kind, topic=topic, lang=lang, meta=PUBLIC_META if meta is None else meta)  # type: ignore[arg-type]


def plan(o: Outbound):  # type: ignore[no-untyped-def]
    return plan_reply(o, public_max_chars=280, dm_max_chars=10_000, help_url="https://help.example.com")


@pytest.mark.parametrize("topic", ["glossary", "education", "smalltalk", "trading", "fees", "vip", "security"])
def test_general_answers_are_public(topic: str) -> None:
    p = plan(ob("A general explanation.", topic=topic))
    assert p.route == "public" and p.public_text == "A general explanation." and p.dm_parts == ()


@pytest.mark.parametrize("topic", ["account", "deposit", "withdrawal", "ticket"])
def test_answers_about_the_users_own_account_move_to_dm(topic: str) -> None:
    p = plan(ob("Your deposit needs 12 confirmations.", topic=topic))
    assert p.route == "dm_with_nudge" and p.dm_parts == ("Your deposit needs 12 confirmations.",)
    assert p.public_text == ""


@pytest.mark.parametrize(("kind", "topic"), [("handoff", "theft"), ("handoff", "human"), ("handoff", "compliance"),
                                             ("clarify", "out_of_scope"), ("handoff", "glossary")])
def test_every_handoff_and_clarify_moves_to_dm(kind: str, topic: str) -> None:
    assert plan(ob("A person will take over.", kind=kind, topic=topic)).route == "dm_with_nudge"


@pytest.mark.parametrize("kind", ["agent", "system"])
def test_agent_and_system_messages_go_by_dm_without_public_noise(kind: str) -> None:
    assert plan(ob("Hi, I'm Ann from support.", kind=kind, topic="theft")).route == "dm"


@pytest.mark.parametrize("text", [
    "Your key [REDACTED:seed_phrase] was removed.",
    "We wrote to alice@example.com about it.",
    "Your UID 12345678 is verified.",
    "Deposit to 0x52908400098527886E0F7030069857D2E4169EE7 is credited.",
    "TxID 4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b arrived.",
])
def test_anything_that_looks_like_an_account_detail_never_goes_public(text: str) -> None:
    assert looks_private(text)
    p = plan(ob(text, topic="glossary"))
    assert p.route == "dm_with_nudge" and p.reason == "private_detail"


def test_a_post_that_contained_a_secret_is_never_answered_publicly() -> None:
    p = plan(ob("Staking means locking coins.", meta={**PUBLIC_META, "reply_redacted": "seed_phrase"}))
    assert p.route == "dm_with_nudge" and p.reason == "secret_in_post"


def test_dm_conversations_get_everything_by_dm_split_at_the_limit() -> None:
    text = "\n\n".join(["x " * 2000] * 4)
    p = plan_reply(ob(text, meta={"reply_visibility": "dm", "reply_author_id": "9"}),
                   public_max_chars=280, dm_max_chars=10_000, help_url=None)
    assert p.route == "dm" and len(p.dm_parts) == 2 and all(len(x) <= 10_000 for x in p.dm_parts)


def test_missing_meta_defaults_to_private() -> None:
    assert plan(ob("Staking means locking coins.", meta={})).route == "dm"


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("dm_sent", [True, False])
@pytest.mark.parametrize("secret", [True, False])
def test_nudges_are_short_in_the_users_language_and_carry_no_detail(lang: str, dm_sent: bool, secret: bool) -> None:
    t = nudge_text(lang, dm_sent=dm_sent, secret_posted=secret)
    assert x_weighted_length("@" + "h" * 15 + " " + t) <= 280
    assert not looks_private(t)
    assert any("\u4e00" <= c <= "\u9fff" for c in t) == (lang == "zh")
    assert ("delete" in t or "删除" in t) == secret
