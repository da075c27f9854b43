"""Telegram as people really use it (issue #25): group members whose case must reach them in
private, forwarded scam messages, secrets pasted in groups, media we cannot keep, forum topics
that close, edits, button presses in groups. python-telegram-bot for real against the strict fake
Bot API, the real Redis queue, router and Rasa, and the real ticket service (SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from telegram import Update

from app.runtime import answers
from bot.channel import OutboundSender
from bot.router import Brain, RouterWorker
from handoff.db import make_engine, sessionmaker, upgrade
from handoff.service import TicketService
from handoff.worker import consume_handoffs
from intents.client import NLUClient
from tests.fakes import telegram_api as tg
from tests.integration import test_telegram as _base
from tests.integration.test_telegram import TG

# The Telegram channel fixtures of test_telegram.py, shared rather than copied.
fake = _base.fake
telegram = _base.telegram

pytestmark = [
    pytest.mark.redis,
    pytest.mark.filterwarnings(
        "ignore:.*attribute `retry_after` will be of type:telegram.warnings.PTBDeprecationWarning"
    ),
]

GID = -1001234500
BOT = "sb_test_bot"


@pytest.fixture
async def svc(tmp_path: Path, aredis: aioredis.Redis) -> AsyncIterator[TicketService]:
    from tests.conftest import make_settings

    url = f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}"
    engine = make_engine(url)
    await upgrade(engine)
    yield TicketService(make_settings(database={"url": url}), sessionmaker(engine), aredis)
    await engine.dispose()


async def pump(t: TG, svc: TicketService) -> None:
    """Router → tickets → sender, each until its stream is drained."""
    stop = asyncio.Event()
    async with NLUClient(t.settings.nlu.urls, timeout_s=5) as nlu:
        await nlu.refresh_versions()
        w = RouterWorker(t.settings, t.r, Brain(t.settings, nlu, answers(t.settings), svc))
        await asyncio.wait_for(w.run(burst=True), 60)
    await asyncio.wait_for(consume_handoffs(svc, t.r, stop, burst=True, claim_idle_ms=500), 30)
    await asyncio.wait_for(OutboundSender(t.r, t.channel, claim_idle_ms=500).run(stop, burst=True), 30)
    await asyncio.wait_for(consume_handoffs(svc, t.r, stop, burst=True, claim_idle_ms=500), 30)


def to_chat(t: TG, chat_id: int) -> list[dict[str, Any]]:
    return [p for p in t.fake.sent() if int(p["chat_id"]) == chat_id]


def group_msg(text: str, uid: int, **kw: Any) -> dict[str, Any]:
    return tg.message(f"@{BOT} {text}", uid=uid, chat_id=GID, chat_type="supergroup", **kw)


# -- 1. a theft report in a group reaches a person, in private ---------------------------------------

async def test_a_theft_report_in_a_group_is_handled_in_the_private_chat_the_link_opens(
    rasa_url: str, telegram: Callable[..., Awaitable[TG]], svc: TicketService
) -> None:
    t = await telegram(rasa_url)
    uid = 7001
    t.fake.not_started.add(uid)  # the member never opened the bot's private chat
    report = group_msg("someone withdrew all my USDT, I did not make this withdrawal", uid)
    assert await t.post(report) == 200
    await pump(t, svc)

    [d] = await t.decisions()
    assert (d.action.value, d.topic) == ("handoff", "theft")
    [invite] = to_chat(t, GID)
    assert f"https://t.me/{BOT}?start=group_theft" in invite["text"]
    assert d.reply.strip() not in invite["text"]  # the case itself is not discussed in the group
    assert "freeze it now" in invite["text"]  # the one step that cannot wait for the private chat
    lena = await svc.add_agent("lena@example.com", "Lena", "correct-horse-battery")
    [ticket] = await svc.list("all", lena)
    number = ticket["number"]
    # The agent sees at once that the member has not opened the private chat yet.
    notes = [m["text"] for m in (await svc.detail(number))["messages"] if m["direction"] == "note"]
    assert len(notes) == 1 and notes[0].startswith("Not delivered yet")

    # The agent answers before the member opened the private chat: nothing is posted in the group,
    # and the ticket says the reply is waiting, not that it was delivered.
    await svc.reply(number, lena, "I have frozen your account. Which device did you last log in from?")
    await pump(t, svc)
    assert len(to_chat(t, GID)) == 1 and to_chat(t, uid) == []
    notes = [m["text"] for m in (await svc.detail(number))["messages"] if m["direction"] == "note"]
    assert any(n.startswith("Not delivered yet") for n in notes)

    # The member taps the link: the private chat gets the urgent steps and the agent's reply.
    t.fake.not_started.discard(uid)
    assert await t.post(tg.message("/start group_theft", uid=uid)) == 200
    await pump(t, svc)
    private = [p["text"] for p in to_chat(t, uid)]
    assert private[0] == d.reply.strip() and "Freeze your account" in private[0]
    assert private[1].startswith("Lena (support agent):\nI have frozen your account.")
    notes = [m["text"] for m in (await svc.detail(number))["messages"] if m["direction"] == "note"]
    assert any(n.startswith("Delivered") for n in notes)
    assert not any("welcome" in p.lower() or "I'm the support assistant" in p for p in private)

    # Their private messages join the same ticket; the resolve and its rating reach them there.
    assert await t.post(tg.message("From my phone, an iPhone 13", uid=uid)) == 200
    await pump(t, svc)
    texts = [m["text"] for m in (await svc.detail(number))["messages"] if m["direction"] == "in"]
    assert "From my phone, an iPhone 13" in texts
    await svc.resolve(number, lena)
    await pump(t, svc)
    rating = to_chat(t, uid)[-1]
    assert number in rating["text"] and rating["reply_markup"]["inline_keyboard"][0][4]["text"] == "5"
    assert await t.post(tg.callback("5", uid=uid, on_text=rating["text"])) == 200
    await pump(t, svc)
    assert (await svc.detail(number))["ticket"]["csat"] == 5
    assert len(to_chat(t, GID)) == 1  # one invitation in the group, nothing else
    assert await t.r.xlen("outbound:telegram:dead") == 0


async def test_a_member_who_has_the_private_chat_open_gets_the_answer_there_at_once(
    rasa_url: str, telegram: Callable[..., Awaitable[TG]]
) -> None:
    t = await telegram(rasa_url)
    uid = 7002
    assert await t.post(tg.message("hello", uid=uid)) == 200  # they talked to the bot before
    assert await t.post(group_msg("how to reset my password", uid)) == 200
    await t.route()
    await t.deliver()
    by_text = {d.redacted_text: d for d in await t.decisions()}
    d = by_text["how to reset my password"]
    assert d.topic == "account"
    [pointer] = to_chat(t, GID)
    assert pointer["text"] == "I have replied to you in our private chat." and "t.me" not in pointer["text"]
    # (The greeting and this answer are two conversations, routed concurrently: either may be first.)
    assert d.reply.strip() in [p["text"] for p in to_chat(t, uid)]


# -- 4. a forwarded scam is something the user shows us ---------------------------------------------

SCAM = ("Exchange Security Team: your account has been FROZEN due to suspicious activity. To unlock it, "
        "verify within 24 hours by entering your 12-word recovery phrase at the link below.")


@pytest.mark.parametrize("origin", [
    {"type": "channel", "date": 1764800000, "chat": {"id": -1009990001, "type": "channel",
                                                      "title": "Exchange Security Team"}, "message_id": 55},
    {"type": "hidden_user", "date": 1764800000, "sender_user_name": "Exchange Support"},
])
async def test_a_forwarded_phishing_message_gets_the_anti_phishing_answer_not_a_compliance_case(
    rasa_url: str, telegram: Callable[..., Awaitable[TG]], origin: dict[str, Any]
) -> None:
    t = await telegram(rasa_url)
    assert await t.post(tg.message(SCAM, uid=7010, forward_origin=origin)) == 200
    await t.route()
    await t.deliver()
    [d] = await t.decisions()
    assert d.action.value == "answer" and d.topic == "security"
    assert await t.r.xlen("handoff") == 0
    [sent] = t.fake.sent()
    assert "compliance" not in sent["text"]
    assert "forwarded message" in sent["text"] and "fake support" in sent["text"]


# -- 3. a secret pasted in a group ----------------------------------------------------------------

PHRASE = "abandon ability able about above absent absorb abstract absurd abuse access accident"


async def test_a_secret_posted_in_a_group_is_removed_or_the_user_told_to_delete_it_never_quoted(
    telegram: Callable[..., Awaitable[TG]]
) -> None:
    t = await telegram()
    t.fake.can_delete.add(GID)
    posted = group_msg(f"is my wallet safe? my words are {PHRASE}", 7020)
    other = tg.message(f"@{BOT} my seed is {PHRASE}", uid=7021, chat_id=GID - 1, chat_type="supergroup")
    assert await t.post(posted) == 200 and await t.post(other) == 200
    await t.deliver()
    [deleted, told] = t.fake.sent()
    assert (GID, posted["message"]["message_id"]) in t.fake.deleted
    assert deleted["text"].startswith("I removed your message") and f"t.me/{BOT}?start=group_secret" in deleted["text"]
    assert told["text"].startswith("Please delete your last message now")
    for p in (deleted, told):
        assert "abandon" not in p["text"] and "reply_parameters" not in p  # never quoted back
    # Whatever the router answers goes to the private chat, not to the group.
    [m, _] = await t.inbound()
    assert m.meta["reply_redacted"] and "reply_to_message_id" not in m.meta


# -- 6. media ------------------------------------------------------------------------------------------

async def test_files_follow_the_same_rule_as_the_widget_and_the_user_is_told_what_was_not_kept(
    telegram: Callable[..., Awaitable[TG]]
) -> None:
    t = await telegram()
    video = tg.message(None, uid=7030, caption="this is the screen recording of the withdrawal I did not make",
                       video={"file_id": "vid-1", "file_unique_id": "v1", "width": 720, "height": 1280,
                              "duration": 12, "mime_type": "video/mp4", "file_size": 3_000_000})
    apk = tg.document("wallet-helper.apk", 2_000_000, mime="application/vnd.android.package-archive",
                      caption="support told me to install this", uid=7031)
    disguised = tg.document("invoice.apk", 10_000, mime="application/pdf", uid=7032)
    assert await t.post(video) == 200 and await t.post(apk) == 200 and await t.post(disguised) == 200
    kept, apk_text = await t.inbound()
    assert kept.attachments[0].content_type == "video/mp4" and kept.attachments[0].ref == "vid-1"
    assert apk_text.text == "support told me to install this" and apk_text.attachments == ()
    await t.deliver()
    notes = {p["chat_id"]: p["text"] for p in t.fake.sent()}
    assert "“wallet-helper.apk” was not kept" in notes["7031"] and "has been received" in notes["7031"]
    assert "“invoice.apk” was not kept" in notes["7032"]


@pytest.mark.parametrize("content", [
    {"location": {"latitude": 31.23, "longitude": 121.47}},
    {"contact": {"phone_number": "+8613800000000", "first_name": "Li"}},
    {"poll": {"id": "p1", "question": "Which coin?", "options": [{"text": "BTC", "voter_count": 0, "persistent_id": "o1"},
                                                                {"text": "ETH", "voter_count": 0, "persistent_id": "o2"}],
              "total_voter_count": 0, "is_closed": False, "is_anonymous": True, "type": "regular",
              "allows_multiple_answers": False, "allows_revoting": False,
              "members_only": False}},
    {"dice": {"emoji": "🎲", "value": 4}},
])
async def test_locations_contacts_polls_and_dice_get_a_please_type_answer(
    telegram: Callable[..., Awaitable[TG]], content: dict[str, Any]
) -> None:
    t = await telegram()
    assert await t.post(tg.message(None, uid=7040, **content)) == 200
    assert await t.inbound() == []
    await t.deliver()
    [sent] = t.fake.sent()
    assert "Please type your question" in sent["text"]


# -- 7. forum topics, edits, buttons in groups ------------------------------------------------------

def topic_msg(text: str, uid: int, thread: int, **kw: Any) -> dict[str, Any]:
    return tg.message(text, uid=uid, chat_id=GID, chat_type="supergroup", message_thread_id=thread,
                      is_topic_message=True, **kw)


async def test_a_reply_for_a_deleted_or_closed_topic_goes_to_general_or_the_private_chat(
    rasa_url: str, telegram: Callable[..., Awaitable[TG]]
) -> None:
    t = await telegram(rasa_url)
    t.fake.topics[GID] = {40: "open", 41: "open"}
    assert await t.post(topic_msg(f"@{BOT} what is a blockchain", 7050, 40)) == 200
    assert await t.post(topic_msg(f"@{BOT} what is staking", 7051, 41)) == 200
    await t.route()
    t.fake.topics[GID] = {41: "closed"}  # topic 40 deleted, topic 41 closed meanwhile
    await t.deliver()
    first, second = t.fake.sent()
    assert "message_thread_id" not in first and "message_thread_id" not in second  # General
    assert await t.r.xlen("outbound:telegram:dead") == 0

    # The General topic is closed too: the answer goes to the private chat of a member who has one.
    t.fake.general_closed.add(GID)
    t.fake.topics[GID] = {42: "open"}
    assert await t.post(tg.message("hi", uid=7052)) == 200
    assert await t.post(topic_msg(f"@{BOT} what is a stablecoin", 7052, 42)) == 200
    await t.route()
    t.fake.topics[GID] = {}
    await t.deliver()
    assert any("stablecoin" in p["text"].lower() for p in to_chat(t, 7052))
    assert await t.r.xlen("outbound:telegram:dead") == 0


async def test_chatter_in_a_topic_the_bot_created_is_not_answered_unless_addressed(
    telegram: Callable[..., Awaitable[TG]]
) -> None:
    t = await telegram()
    created = {**tg.bot_message(GID, "", chat_type="supergroup", message_id=60),
               "forum_topic_created": {"name": "Support", "icon_color": 7322096}}
    created.pop("text")
    chatter = topic_msg("anyone else's deposit slow today?", 7060, 60, reply_to=created)
    addressed = topic_msg(f"@{BOT} how long do BTC deposits take?", 7061, 60, reply_to=created)
    assert await t.post(chatter) == 200 and await t.post(addressed) == 200
    [m] = await t.inbound()
    assert m.text == "how long do BTC deposits take?" and m.meta["reply_thread_id"] == "60"


async def test_an_edited_group_mention_is_answered_once(telegram: Callable[..., Awaitable[TG]]) -> None:
    t = await telegram()
    first = group_msg("what is a blockchian", 7070)
    edit = dict(first)
    edit["edited_message"] = {**first["message"], "text": f"@{BOT} what is a blockchain", "edit_date": 1}
    del edit["message"]
    edit["update_id"] = first["update_id"] + 1
    assert await t.post(first) == 200 and await t.post(edit) == 200
    assert len(await t.inbound()) == 1


async def test_a_button_press_in_a_group_is_filed_under_the_presser(telegram: Callable[..., Awaitable[TG]]) -> None:
    t = await telegram()
    press = tg.callback("clarify:deposit", uid=7080, chat_id=GID)
    press["callback_query"]["message"]["chat"]["type"] = "supergroup"
    assert await t.post(press) == 200
    [m] = await t.inbound()
    assert m.conversation_id == f"telegram:{GID}:7080" and m.user_id == "7080"


# -- the replay corpus -----------------------------------------------------------------------------

async def test_every_update_of_the_corpus_is_handled_or_skipped_with_a_reason_never_a_5xx(
    rasa_url: str, telegram: Callable[..., Awaitable[TG]]
) -> None:
    from structlog.testing import capture_logs

    from channels.telegram.adapter import DEAD_UPDATES
    from tests.corpus.telegram_updates import FORUM, updates

    t = await telegram(rasa_url)
    t.fake.topics[FORUM] = {700: "open"}
    corpus = updates()
    kinds = {k for _, u in corpus for k in u if k != "update_id"}
    assert {str(k) for k in Update.ALL_TYPES} <= kinds  # every update type the Bot API lists
    outcome: dict[str, str] = {}
    with capture_logs() as logs:
        for name, u in corpus:
            before = (await t.r.xlen("inbound"), await t.r.xlen("outbound:telegram"))
            status = await t.post(u)
            assert status == 200, (name, status)
            after = (await t.r.xlen("inbound"), await t.r.xlen("outbound:telegram"))
            reasons = [e["reason"] for e in logs if e["event"] == "telegram.update_skipped"
                       and e.get("update_id") == u["update_id"]]
            outcome[name] = ("queued" if after[0] > before[0] else "") + ("+notice" if after[1] > before[1] else "") \
                or (f"skipped:{reasons[0]}" if reasons else "LOST")
    assert [n for n, o in outcome.items() if o == "LOST"] == [], outcome
    assert await t.r.xlen(DEAD_UPDATES) == 0
    assert not [e for e in logs if e["log_level"] == "error"]
    # What people send is answered: no router or sender failure on any of it.
    await t.route()
    await t.deliver(within=60)
    assert await t.r.xlen("inbound:dead") == 0 and await t.r.xlen("outbound:telegram:dead") == 0
    assert outcome["voice"] == "+notice" and outcome["group chatter"] == "skipped:group_not_addressed"
    assert outcome["inline query"] == "skipped:unsupported_update"


async def test_an_invitation_that_failed_once_is_posted_once_and_the_reply_held_once(
    telegram: Callable[..., Awaitable[TG]]
) -> None:
    from bot.models import Outbound

    t = await telegram()
    t.fake.fail_next("sendMessage", 1, status=502)  # Telegram hiccups on the invitation
    await t.enqueue(Outbound(channel="telegram", conversation_id=f"telegram:{GID}:7090", user_id="7090",
                             text="To reset your password, open Account > Security.", kind="answer", topic="account",
                             meta={"reply_chat_id": str(GID), "reply_chat_type": "supergroup",
                                   "reply_to_message_id": "5"}))
    await t.deliver()
    [invite] = t.fake.sent()
    assert f"t.me/{BOT}?start=group_account" in invite["text"]
    assert await t.r.zcard("telegram:held:7090") == 1
    assert await t.r.xlen("outbound:telegram:dead") == 0


async def test_a_forwarded_message_that_holds_a_secret_is_not_waved_through_as_a_scam_sample(
    rasa_url: str, telegram: Callable[..., Awaitable[TG]]
) -> None:
    t = await telegram(rasa_url)
    origin = {"type": "user", "date": 1764800000, "sender_user": tg.user(7011)}
    leaked = tg.message(f"here are my words as you asked: {PHRASE}", uid=7012, forward_origin=origin)
    assert await t.post(leaked) == 200
    await t.route()
    [d] = await t.decisions()
    assert d.intent != "forwarded_message" and "abandon" not in d.redacted_text


async def test_a_secret_edited_into_an_answered_group_mention_is_not_left_in_the_group(
    telegram: Callable[..., Awaitable[TG]]
) -> None:
    # The question was answered; then the user edits the message and pastes their seed phrase into
    # it. "Answered once" is about corrections: this edit must still be removed (or the user told).
    t = await telegram()
    t.fake.can_delete.add(GID)
    first = group_msg("is my wallet safe?", 7090)
    edit = {"update_id": first["update_id"] + 1,
            "edited_message": {**first["message"], "text": f"@{BOT} is my wallet safe? my words: {PHRASE}",
                               "edit_date": 1}}
    assert await t.post(first) == 200 and await t.post(edit) == 200
    await t.deliver()
    assert (GID, first["message"]["message_id"]) in t.fake.deleted
    [told] = t.fake.sent()
    assert told["text"].startswith("I removed your message") and "abandon" not in told["text"]
    first_msg, leaked = await t.inbound()
    assert leaked.meta["reply_redacted"] and "abandon" not in leaked.text and "[REDACTED:" in leaked.text


# -- an album: several photos sent at once, one caption ------------------------------------------------

def album_photo(uid: int, group_id: str, n: int, caption: str | None = None) -> dict[str, Any]:
    sizes = [{"file_id": f"small-{n}", "file_unique_id": f"s{n}", "width": 90, "height": 60, "file_size": 900},
             {"file_id": f"big-{n}", "file_unique_id": f"b{n}", "width": 1280, "height": 853, "file_size": 90_000}]
    extra: dict[str, Any] = {"photo": sizes, "media_group_id": group_id}
    if caption is not None:
        extra["caption"] = caption
    return tg.message(None, uid=uid, **extra)


async def test_an_album_of_screenshots_with_one_caption_is_one_question_with_every_file(
    telegram: Callable[..., Awaitable[TG]]
) -> None:
    # Telegram sends each file of an album as its own update; only one carries the caption.
    # Queued one by one, the question would be answered and then each further screenshot would
    # get "thanks, what is this file about?".
    t = await telegram()
    uid = 7100
    album = [album_photo(uid, "13579", 1, "my USDT deposit has not arrived, see the screenshots"),
             album_photo(uid, "13579", 2), album_photo(uid, "13579", 3)]
    for u in album:
        assert await t.post(u) == 200
    [m] = await _base.wait_inbound(t, 1)
    await asyncio.sleep(0.3)
    assert len(await t.inbound()) == 1
    assert m.text == "my USDT deposit has not arrived, see the screenshots"
    assert [a.ref for a in m.attachments] == ["big-1", "big-2", "big-3"]
    assert m.conversation_id == f"telegram:{uid}" and m.meta["reply_to_message_id"] == str(album[0]["message"]["message_id"])
    assert await t.r.zcard("telegram:albums") == 0


async def test_an_album_file_that_comes_late_is_a_message_of_its_own_not_lost(
    telegram: Callable[..., Awaitable[TG]]
) -> None:
    # The album was queued (1.5 s without a new file); then one more file of it arrives (a slow
    # upload). It must not vanish into the album already queued, nor be merged into it twice.
    t = await telegram()
    uid = 7101
    for u in (album_photo(uid, "24680", 1, "withdrawal stuck, screenshots attached"), album_photo(uid, "24680", 2)):
        assert await t.post(u) == 200
    [first] = await _base.wait_inbound(t, 1)
    late = album_photo(uid, "24680", 3)
    assert await t.post(late) == 200
    _, second = await _base.wait_inbound(t, 2)
    await asyncio.sleep(0.3)
    assert len(await t.inbound()) == 2
    assert [a.ref for a in first.attachments] == ["big-1", "big-2"]
    assert [a.ref for a in second.attachments] == ["big-3"]
    assert await t.r.zcard("telegram:albums") == 0 and not await t.r.keys("telegram:album:*")


async def test_an_album_a_stopped_process_held_is_queued_by_the_next_start(
    telegram: Callable[..., Awaitable[TG]]
) -> None:
    # The webhook answered 200 for each file (Telegram will not send them again), then the role
    # stopped before the album was quiet: the next start queues it.
    t = await telegram()
    uid = 7102
    for u in (album_photo(uid, "97531", 1, "is this transfer from you?"), album_photo(uid, "97531", 2)):
        assert await t.post(u) == 200
    await t.channel.stop()
    assert await t.inbound() == []
    t2 = await telegram()
    [m] = await _base.wait_inbound(t2, 1)
    assert m.text == "is this transfer from you?" and [a.ref for a in m.attachments] == ["big-1", "big-2"]
