"""The Telegram channel end to end: python-telegram-bot for real against a local fake Bot API
(tests/fakes/telegram_api.py), the real Redis queue, the real router with a real Rasa server, the
web app's webhook route and the real outbound sender."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from typer.testing import CliRunner

from app.runtime import answers
from app.web import create_app
from bot import deadletters, streams
from bot.channel import OutboundSender
from bot.config import Settings
from bot.intake import make_sink
from bot.models import Attachment, Button, Decision, Message, Outbound
from bot.queue import Queue
from bot.router import Brain, RouterWorker
from channels.telegram.adapter import BLOCKED_KEY, DEAD_UPDATES, SECRET_HEADER, TelegramChannel
from intents.client import NLUClient
from tests.conftest import make_settings
from tests.fakes import telegram_api as tg
from tests.fakes.telegram_api import FakeBotAPI

pytestmark = [
    pytest.mark.redis,
    # PTB 22.x warns inside RetryAfter.__init__ (its int → timedelta migration of `retry_after`);
    # the adapter reads the timedelta itself, so only PTB's own constructor triggers this.
    pytest.mark.filterwarnings(
        "ignore:.*attribute `retry_after` will be of type:telegram.warnings.PTBDeprecationWarning"
    ),
]

SECRET = "tg-webhook_Secret42-kQ7vXz9LmN3pR5tW"
HAN = range(0x4E00, 0xA000)


def has_han(s: str) -> bool:
    return any(ord(c) in HAN for c in s)


@dataclass
class TG:
    """One configured Telegram channel with the web app around it, and the drains of a test."""

    settings: Settings
    r: aioredis.Redis
    fake: FakeBotAPI
    channel: TelegramChannel
    http: httpx.AsyncClient

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        resp = await self.http.post("/telegram/webhook", json=update, headers=headers)
        return resp.status_code

    async def inbound(self) -> list[Message]:
        return [Message.from_json(f["m"]) for _, f in await self.r.xrange("inbound")]

    async def decisions(self) -> list[Decision]:
        return [Decision.from_json(f["d"]) for _, f in await self.r.xrange("decisions")]

    async def route(self) -> None:
        """Run a router worker in burst mode until the inbound queue is drained."""
        async with NLUClient(self.settings.nlu.urls, timeout_s=5) as nlu:
            await nlu.refresh_versions()
            w = RouterWorker(self.settings, self.r, Brain(self.settings, nlu, answers(self.settings)))
            await asyncio.wait_for(w.run(burst=True), 60)

    async def deliver(self, within: float = 30) -> OutboundSender:
        """Run the outbound sender in burst mode until `outbound:telegram` is drained."""
        sender = OutboundSender(self.r, self.channel, claim_idle_ms=500)
        await asyncio.wait_for(sender.run(asyncio.Event(), burst=True), within)
        return sender

    async def enqueue(self, ob: Outbound) -> None:
        await self.r.xadd("outbound:telegram", {"d": ob.to_json()})


def channel_cfg(fake: FakeBotAPI, **kw: Any) -> dict[str, Any]:
    return {"type": "telegram", "token": tg.TOKEN, "mode": "webhook", "webhook_secret": SECRET,
            "base_url": fake.base_url, "base_file_url": fake.base_file_url, **kw}


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as f:
        yield f


@pytest.fixture
async def telegram(aredis: aioredis.Redis, fake: FakeBotAPI) -> AsyncIterator[Callable[..., Awaitable[TG]]]:
    made: list[TG] = []

    async def make(rasa_url: str | None = None, **cfg: Any) -> TG:
        over: dict[str, Any] = {"channels": [channel_cfg(fake, **cfg)]}
        if rasa_url:
            over["nlu"] = {"urls": [rasa_url]}
        s = make_settings(**over)
        ch = TelegramChannel.from_config(s, s.channel("telegram"), aredis)  # type: ignore[arg-type]
        await ch.start(make_sink(Queue(aredis, s.queue), rate_per_minute=s.queue.user_rate_per_minute))
        app = create_app(s, aredis, [ch])
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://switchboard.test")
        t = TG(s, aredis, fake, ch, http)
        made.append(t)
        return t

    yield make
    for t in made:
        await t.http.aclose()
        await t.channel.stop()


def out(text: str, chat_id: int = 1001, **kw: Any) -> Outbound:
    meta = {"reply_chat_id": str(chat_id), "reply_chat_type": "private", **kw.pop("meta", {})}
    return Outbound(channel="telegram", conversation_id=f"telegram:{chat_id}", user_id=str(chat_id), text=text,
                    meta=meta, **kw)


# -- end to end through the router and Rasa -------------------------------------------------------

async def test_private_chat_questions_are_answered_in_the_users_language(
    rasa_url: str, telegram: Callable[..., Awaitable[TG]]
) -> None:
    t = await telegram(rasa_url)
    en = tg.message("How do I enable 2FA?", uid=501, lang="en")
    zh = tg.message("USDT充值一直没到账怎么办", uid=502, lang="zh-hans")
    assert await t.post(en) == 200
    assert await t.post(zh) == 200
    await t.route()
    await t.deliver()

    sent = {p["chat_id"]: p for p in t.fake.sent()}
    assert set(sent) == {"501", "502"}
    assert "2fa" in sent["501"]["text"].lower() or "authenticator" in sent["501"]["text"].lower()
    assert not has_han(sent["501"]["text"])
    assert has_han(sent["502"]["text"])
    # Each answer quotes the question it answers, and is plain text (nothing to mis-escape).
    assert sent["501"]["reply_parameters"]["message_id"] == en["message"]["message_id"]
    assert sent["502"]["reply_parameters"]["message_id"] == zh["message"]["message_id"]
    assert all("parse_mode" not in p for p in sent.values())


async def test_a_duplicate_webhook_delivery_is_answered_once(
    rasa_url: str, telegram: Callable[..., Awaitable[TG]]
) -> None:
    t = await telegram(rasa_url)
    u = tg.message("how do I deposit BTC", uid=503)
    assert await t.post(u) == 200
    assert await t.post(u) == 200  # Telegram retried (e.g. our 200 got lost)
    assert len(await t.inbound()) == 1
    await t.route()
    await t.deliver()
    assert len(t.fake.sent()) == 1


async def test_in_a_group_the_bot_answers_only_when_addressed_and_moves_account_matters_to_private(
    rasa_url: str, telegram: Callable[..., Awaitable[TG]]
) -> None:
    t = await telegram(rasa_url)
    gid = -100777
    t.fake.chat_types[gid] = "supergroup"
    chatter = tg.message("how to reset my password", uid=601, chat_id=gid, chat_type="supergroup")
    account = tg.message("@sb_test_bot how to reset my password", uid=601, chat_id=gid, chat_type="supergroup")
    term = tg.message("@sb_test_bot what is a blockchain", uid=602, chat_id=gid, chat_type="supergroup")
    for u in (chatter, account, term):
        assert await t.post(u) == 200
    queued = await t.inbound()
    assert [m.text for m in queued] == ["how to reset my password", "what is a blockchain"]  # mention stripped

    await t.route()
    await t.deliver()
    # Each member of a group is their own conversation, so the two are handled concurrently.
    by_text = {d.redacted_text: d for d in await t.decisions()}
    d_account, d_term = by_text["how to reset my password"], by_text["what is a blockchain"]
    assert d_account.topic == "account" and d_term.topic == "glossary"
    sent = {m["reply_parameters"]["message_id"]: m for m in t.fake.sent()}
    first, second = sent[account["message"]["message_id"]], sent[term["message"]["message_id"]]
    # The account answer is not discussed in front of the group: a deep link to a private chat.
    assert first["chat_id"] == str(gid)
    assert "https://t.me/sb_test_bot?start=group_account" in first["text"]
    assert d_account.reply not in first["text"] and "reply_markup" not in first
    assert first["reply_parameters"]["message_id"] == account["message"]["message_id"]
    # A general question is answered right there, to the person who asked.
    assert second["text"] == d_term.reply
    assert second["reply_parameters"]["message_id"] == term["message"]["message_id"]


async def test_a_group_account_question_in_chinese_gets_the_chinese_invitation(
    rasa_url: str, telegram: Callable[..., Awaitable[TG]]
) -> None:
    t = await telegram(rasa_url)
    gid = -100888
    assert await t.post(tg.message("@sb_test_bot 提币卡住了", uid=603, chat_id=gid, chat_type="supergroup",
                                   lang="en")) == 200
    await t.route()
    await t.deliver()
    [d] = await t.decisions()
    [sent] = t.fake.sent()
    assert d.topic == "withdrawal" and d.lang == "zh"
    assert "私聊" in sent["text"] and "start=group_withdrawal" in sent["text"] and d.reply not in sent["text"]


async def test_start_and_status_commands_get_the_welcome_and_the_tickets_status(
    rasa_url: str, telegram: Callable[..., Awaitable[TG]]
) -> None:
    t = await telegram(rasa_url)
    start = tg.message("/start", uid=504, lang="en")
    status = tg.message("/status SB-000042", uid=505, lang="zh-hans")
    assert await t.post(start) == 200 and await t.post(status) == 200
    await t.route()
    await t.deliver()
    by_conv = {d.conversation_id: d for d in await t.decisions()}
    assert by_conv["telegram:504"].intent == "command_start"
    assert (by_conv["telegram:505"].intent, by_conv["telegram:505"].lang) == ("ticket_status", "zh")
    sent = {p["chat_id"]: p["text"] for p in t.fake.sent()}
    assert sent["504"] == by_conv["telegram:504"].reply
    assert "SB-000042" in sent["505"] and has_han(sent["505"])


# -- webhook ---------------------------------------------------------------------------------------

async def test_webhook_requests_without_the_right_secret_are_refused_and_nothing_is_queued(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram()
    u = tg.message("hello", uid=511)
    assert await t.post(u, secret=None) == 403
    assert await t.post(u, secret="wrong") == 403
    assert await t.post(u, secret=SECRET + "x") == 403
    assert await t.inbound() == []
    assert await t.post(u) == 200
    assert len(await t.inbound()) == 1


async def same_minute(need_s: float) -> None:
    """Rate windows are clock minutes: start a test that must stay in one window early enough."""
    if time.time() % 60 > 60 - need_s:
        await asyncio.sleep(60 - time.time() % 60 + 0.05)


async def test_an_address_that_keeps_forging_deliveries_is_locked_out_while_telegram_is_not(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    await same_minute(10)
    t = await telegram()
    app = t.http._transport.app  # type: ignore[attr-defined]
    attacker = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 40000)),
                                 base_url="http://switchboard.test")
    try:
        codes = []
        for i in range(25):
            r = await attacker.post("/telegram/webhook", json=tg.message(f"forged {i}", uid=520),
                                    headers={SECRET_HEADER: f"guess-{i}"})
            codes.append(r.status_code)
        assert codes[:20] == [403] * 20
        assert set(codes[21:]) == {429}
        # Locked out for the rest of the minute, even with the right secret now...
        r = await attacker.post("/telegram/webhook", json=tg.message("now valid", uid=520),
                                headers={SECRET_HEADER: SECRET})
        assert r.status_code == 429
    finally:
        await attacker.aclose()
    # ...while deliveries from Telegram's own address go through.
    assert await t.post(tg.message("real update", uid=521)) == 200
    assert [m.text for m in await t.inbound()] == ["real update"]


async def test_a_user_flooding_the_bot_is_refused_past_the_limit_and_told_once(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    await same_minute(10)
    t = await telegram()
    limit = t.settings.queue.user_rate_per_minute
    assert limit == 30
    for i in range(limit + 5):
        assert await t.post(tg.message(f"message number {i}", uid=530)) == 200  # 200: Telegram must not retry
    assert await t.post(tg.message("someone else", uid=531)) == 200
    got = [m.text for m in await t.inbound()]
    assert got == [f"message number {i}" for i in range(limit)] + ["someone else"]
    notices = [Outbound.from_json(f["d"]) for _, f in await t.r.xrange("outbound:telegram")]
    assert len(notices) == 1
    assert notices[0].kind == "system" and notices[0].meta["reply_chat_id"] == "530"
    assert "wait a minute" in notices[0].text
    await t.deliver()
    assert [str(p["chat_id"]) for p in t.fake.sent()] == ["530"]


async def test_webhook_answers_503_while_redis_is_down_so_telegram_redelivers(
    fake: FakeBotAPI, redis_sync: Any
) -> None:
    s = make_settings(channels=[channel_cfg(fake)])
    dead = aioredis.from_url("redis://127.0.0.1:1/0", retry=Retry(NoBackoff(), 0), socket_connect_timeout=0.5)
    ch = TelegramChannel.from_config(s, s.channel("telegram"), dead)  # type: ignore[arg-type]
    await ch.start(make_sink(Queue(dead, s.queue)))
    try:
        app = create_app(s, dead, [ch])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            resp = await http.post("/telegram/webhook", json=tg.message("hi", uid=512), headers={SECRET_HEADER: SECRET})
        assert resp.status_code == 503
    finally:
        await ch.stop()
        await dead.aclose()


async def test_an_update_we_cannot_parse_is_kept_for_inspection_not_retried_forever(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram()
    bad = tg.message("hello", uid=513)
    bad["message"]["date"] = "yesterday"
    assert await t.post(bad) == 200
    assert await t.post({"not": "an update"}) == 400
    [(_, dead)] = await t.r.xrange(DEAD_UPDATES)
    assert '"update_id"' in dead["u"] and dead["error"]
    assert await t.inbound() == []


async def test_status_and_start_payload_are_normalized_into_meta(telegram: Callable[..., Awaitable[TG]]) -> None:
    t = await telegram()
    assert await t.post(tg.message("/status SB-000042", uid=521, lang="zh-hans")) == 200
    assert await t.post(tg.message("/start group_account", uid=521)) == 200
    assert await t.post(tg.message("/status@sb_test_bot T-7", uid=522, chat_id=-100555, chat_type="supergroup")) == 200
    status, start, group = await t.inbound()
    assert (status.meta["command"], status.meta["command_arg"], status.lang) == ("status", "SB-000042", "zh")
    assert status.text == "/status SB-000042"
    assert (start.meta["command"], start.meta["command_arg"]) == ("start", "group_account")
    assert (group.meta["command"], group.meta["command_arg"], group.text) == ("status", "T-7", "/status T-7")


async def test_edited_message_is_processed_again_marked_edited(telegram: Callable[..., Awaitable[TG]]) -> None:
    t = await telegram()
    assert await t.post(tg.message("how to withdraw ETH", uid=523)) == 200
    assert await t.post(tg.message("how to withdraw BTC", uid=523, edited=True)) == 200
    first, edit = await t.inbound()
    assert "edited" not in first.meta and edit.meta["edited"] == "1" and edit.text == "how to withdraw BTC"


async def test_photo_with_caption_reaches_the_queue_with_its_attachment(telegram: Callable[..., Awaitable[TG]]) -> None:
    t = await telegram()
    assert await t.post(tg.photo(812_345, caption="my USDT deposit has not arrived, screenshot attached",
                                 uid=531)) == 200
    [m] = await t.inbound()
    assert m.text == "my USDT deposit has not arrived, screenshot attached"
    assert m.attachments == (Attachment(name="photo_big.jpg", content_type="image/jpeg", size=812_345, ref="big-id"),)


async def test_a_file_over_the_limit_is_refused_with_a_notice_and_the_text_still_routed(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram(max_attachment_bytes=1_000_000)
    u = tg.document("bank-statement.pdf", 30_000_000, caption="my withdrawal is stuck", uid=532)
    assert await t.post(u) == 200
    assert await t.post(u) == 200  # Telegram delivers the update again (our 200 got lost)
    [m] = await t.inbound()
    assert m.text == "my withdrawal is stuck" and m.attachments == ()
    await t.deliver()
    [notice] = t.fake.sent()  # once, though it was put on the outbound stream twice
    assert "“bank-statement.pdf” is too large (the limit is 977 KB)" in notice["text"]
    assert notice["reply_parameters"]["message_id"] == u["message"]["message_id"]


async def test_buttons_become_an_inline_keyboard_and_a_press_comes_back_as_a_message(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram()
    long_payload = "clarify:" + "deposit_not_arrived_on_the_tron_network_" * 3
    await t.enqueue(out("Which one did you mean?", chat_id=541, buttons=(
        Button(label="Deposit not arrived", payload=long_payload),
        Button(label="Withdrawal limits", payload="clarify:withdrawal_limits"),
    )))
    await t.deliver()
    [sent] = t.fake.sent()
    rows = sent["reply_markup"]["inline_keyboard"]
    datas = [row[0]["callback_data"] for row in rows]
    assert [row[0]["text"] for row in rows] == ["Deposit not arrived", "Withdrawal limits"]
    assert all(len(d.encode()) <= 64 for d in datas) and datas[1] == "clarify:withdrawal_limits"

    press = tg.callback(datas[0], uid=541, on_text="Which one did you mean?")
    assert await t.post(press) == 200
    [m] = await t.inbound()
    assert m.text == long_payload and m.meta["callback"] == "1" and m.conversation_id == "telegram:541"
    [answer] = await t.fake.wait_for("answerCallbackQuery")
    assert answer.params["callback_query_id"] == press["callback_query"]["id"]


# -- outbound ----------------------------------------------------------------------------------------

async def test_flood_control_retry_after_is_honoured_once_and_in_order(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram()
    t.fake.fail_next("sendMessage", 1, status=429, retry_after=1)
    await t.enqueue(out("first answer", chat_id=551))
    await t.enqueue(out("second answer", chat_id=551))
    t0 = time.monotonic()
    sender = await t.deliver()
    assert [p["text"] for p in t.fake.sent()] == ["first answer", "second answer"]
    [limited] = [c for c in t.fake.calls if c.method == "sendMessage" and c.status == 429]
    first_ok = t.fake.of("sendMessage")[0]
    assert first_ok.at - limited.at >= 0.95, "retried before Telegram's retry_after"
    assert time.monotonic() - t0 < 10
    assert sender.sent == 2
    assert await t.r.xlen("outbound:telegram:dead") == 0


async def test_a_long_reply_is_split_and_a_retry_does_not_repeat_parts_already_sent(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram()
    paras = [f"Step {i}. " + ("Open the app, go to Assets, pick the coin and the network. " * 20).strip()
             for i in range(1, 10)]
    text = "\n\n".join(paras)
    assert len(text) > 2 * 4096
    t.fake.fail_next("sendMessage", 1, status=502, skip=1)  # part 2 fails once (Bad Gateway)
    await t.enqueue(out(text, chat_id=561, meta={"reply_to_message_id": "42"},
                        buttons=(Button(label="1", payload="csat:1"), Button(label="5", payload="csat:5"))))
    await t.deliver()
    parts = t.fake.sent()
    assert len(parts) == 3
    assert all(len(p["text"]) <= 4096 for p in parts)
    assert " ".join(" ".join(p["text"] for p in parts).split()) == " ".join(text.split())
    assert len({p["text"] for p in parts}) == 3  # part 1 was not sent again after part 2 failed
    assert parts[0]["reply_parameters"]["message_id"] == 42 and "reply_parameters" not in parts[1]
    assert "reply_markup" not in parts[0] and parts[2]["reply_markup"]["inline_keyboard"][0][1]["text"] == "5"
    assert t.fake.of("sendChatAction") == []  # no "typing…" in front of a reply that is ready


async def test_a_reply_sent_before_a_crash_is_not_sent_again_when_its_entry_is_redelivered(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram()
    ob = out("Your withdrawal was approved.", chat_id=563)
    await t.enqueue(ob)
    await t.channel.send(ob)  # a sender sent it and died before acknowledging the entry
    sender = await t.deliver()  # the entry comes again (to another sender)
    assert [p["text"] for p in t.fake.sent()] == ["Your withdrawal was approved."]
    assert sender.sent == 1  # acknowledged, not dead-lettered
    assert (await t.r.xpending("outbound:telegram", "senders"))["pending"] == 0
    assert await t.r.xlen("outbound:telegram:dead") == 0


async def test_a_replayed_dead_reply_sends_only_the_parts_it_had_not_sent(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    """A reply the router committed (its entry marked `streams.ONCE`: the sender skips the
    "sent before?" read on its first delivery) dies after its first part; the operator replays
    it. The replayed copy is not a first delivery: the parts already sent stay sent."""
    t = await telegram()
    text = "\n\n".join(f"Step {i}. " + ("Check the network and the memo before you send. " * 30).strip()
                         for i in range(1, 8))
    assert len(text) > 2 * 4096
    t.fake.fail_next("sendMessage", 1, status=400, description="Bad Request: chat not found", skip=1)
    await t.r.xadd("outbound:telegram", {"d": out(text, chat_id=565).to_json(), streams.ONCE: "1"})
    await t.deliver()
    assert len(t.fake.sent()) == 1  # part 2 was refused for good: the entry is dead
    [dead] = await deadletters.list_dead(t.r, "outbound:telegram")
    queue = Queue(t.r, Settings().queue)
    assert await deadletters.replay(t.r, queue, dead)
    await t.deliver()
    parts = [p["text"] for p in t.fake.sent()]
    assert len(parts) >= 3 and len(set(parts)) == len(parts)  # part 1 once, then the rest
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())
    assert await t.r.xlen("outbound:telegram:dead") == 0


async def test_typing_shows_while_an_answer_is_slow_and_stops_once_it_is_sent(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram(typing_after_s=0.2)
    t.channel.typing.renew_s = 0.25  # Telegram shows an action for 5 s; renewed sooner here
    assert await t.post(tg.message("where is my deposit?", uid=611)) == 200
    # In a group the answer may go to the member's private chat: no "typing…" there.
    assert await t.post(tg.message(f"@{tg.BOT_USERNAME} hello", uid=612, chat_id=-100612,
                                   chat_type="supergroup")) == 200
    # Nobody answers yet: the user sees "typing…", renewed while they wait.
    await t.fake.wait_for("sendChatAction", 2)
    assert {(c.params["chat_id"], c.params["action"]) for c in t.fake.of("sendChatAction")} == {("611", "typing")}
    await t.enqueue(out("It is on its way.", chat_id=611))
    await t.deliver()
    shown = len(t.fake.of("sendChatAction"))
    await asyncio.sleep(1.0)
    assert len(t.fake.of("sendChatAction")) == shown  # answered: no more "typing…"
    methods = [c.method for c in t.fake.calls if c.method in ("sendChatAction", "sendMessage")]
    assert methods[-1] == "sendMessage" and [p["text"] for p in t.fake.sent()] == ["It is on its way."]


async def test_typing_stops_when_no_answer_comes_or_the_chat_refuses_it(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram(typing_after_s=0.1)
    t.channel.typing.renew_s, t.channel.typing.max_s = 0.1, 0.5
    t.fake.fail_next("sendChatAction", 1, status=403)  # the user blocked the bot meanwhile
    assert await t.post(tg.message("hello?", uid=631)) == 200
    for _ in range(200):
        if t.fake.of("sendChatAction", ok_only=False):
            break
        await asyncio.sleep(0.02)
    assert await t.post(tg.message("anyone there?", uid=632)) == 200  # an agent owns it: no bot answer
    await asyncio.sleep(1.5)
    tried = [c for c in t.fake.calls if c.method == "sendChatAction"]
    assert [c.params["chat_id"] for c in tried if c.status == 403] == ["631"]  # refused once, never again
    shown = [c for c in tried if c.status == 200]
    assert shown and {c.params["chat_id"] for c in shown} == {"632"}
    await asyncio.sleep(0.5)
    assert len(t.fake.of("sendChatAction")) == len(shown)  # gave up after max_s without an answer


async def test_a_quick_answer_is_one_bot_api_call_even_when_another_process_sends_it(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    # Two web processes: one takes the webhook, the other's sender delivers the answer.
    t = await telegram(typing_after_s=1.0)
    other = await telegram(typing_after_s=1.0)
    assert await t.post(tg.message("how do I enable 2FA?", uid=621)) == 200
    await other.enqueue(out("Open Security, then 2FA.", chat_id=621))
    await other.deliver()
    assert await t.post(tg.message("thanks", uid=622)) == 200
    await t.enqueue(out("You're welcome.", chat_id=622))
    await t.deliver()
    await asyncio.sleep(1.5)  # past typing_after_s: both were answered in time, nothing to show
    assert [c.method for c in t.fake.calls if c.method != "getMe"] == ["sendMessage", "sendMessage"]


async def test_a_user_who_blocked_the_bot_is_recorded_and_the_reply_dead_lettered(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram()
    t.fake.fail_next("sendMessage", 1, status=403)
    await t.enqueue(out("Your ticket T-1 was updated", chat_id=571))
    await t.deliver()
    assert t.fake.sent() == []
    assert await t.r.hget(BLOCKED_KEY, "571")
    [(_, dead)] = await t.r.xrange("outbound:telegram:dead")
    assert "forbidden" in dead["error"] and "blocked" in dead["error"]
    # They unblock the bot and write again: no longer recorded as blocked.
    assert await t.post(tg.message("hi again", uid=571)) == 200
    assert await t.r.hget(BLOCKED_KEY, "571") is None


async def test_an_agent_reply_arrives_in_the_same_chat_with_the_agents_name(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram()
    await t.enqueue(out("I have unlocked your withdrawal. <b>Not</b> bold, *not* italic.", chat_id=581,
                        kind="agent", author="Lena"))
    await t.deliver()
    [sent] = t.fake.sent()
    assert sent["chat_id"] == "581"
    assert sent["text"] == "Lena (support agent):\nI have unlocked your withdrawal. <b>Not</b> bold, *not* italic."
    assert "parse_mode" not in sent


async def test_a_group_upgraded_to_a_supergroup_still_gets_the_reply(telegram: Callable[..., Awaitable[TG]]) -> None:
    t = await telegram()
    t.fake.fail_next("sendMessage", 1, status=400, description="Bad Request: group chat was upgraded",
                     migrate_to_chat_id=-100999)
    await t.enqueue(out("What is a blockchain? A shared ledger.", chat_id=-555, topic="glossary",
                        meta={"reply_chat_type": "group", "reply_to_message_id": "9"}))
    await t.deliver()
    [sent] = t.fake.sent()
    assert sent["chat_id"] == "-100999" and "reply_parameters" not in sent


# -- polling ---------------------------------------------------------------------------------------

async def wait_inbound(t: TG, n: int, within: float = 10) -> list[Message]:
    deadline = time.monotonic() + within
    while len(got := await t.inbound()) < n:
        assert time.monotonic() < deadline, f"{len(got)} of {n} messages queued after {within}s"
        await asyncio.sleep(0.05)
    return got


async def test_polling_mode_receives_updates_confirms_them_and_resumes_after_a_restart(
    telegram: Callable[..., Awaitable[TG]], fake: FakeBotAPI
) -> None:
    bad = tg.message("unparseable", uid=591)
    bad["message"]["date"] = "yesterday"
    u1 = tg.message("hello from polling", uid=591)
    fake.push_update(bad)
    fake.push_update(u1)
    fake.fail_next("getUpdates", 1, status=502)  # the first poll fails: back off, then recover
    t = await telegram(mode="polling", poll_timeout_s=1)
    assert t.channel.routes() is None
    [m] = await wait_inbound(t, 1)
    assert m.text == "hello from polling" and m.channel_message_id == str(u1["update_id"])
    # The update PTB could not parse is kept for inspection and does not stall polling.
    assert await t.r.xlen(DEAD_UPDATES) == 1
    methods = [c.method for c in fake.calls]
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    assert await t.r.get(t.channel.offset_key) == str(u1["update_id"] + 1)

    u2 = tg.message("second message", uid=591)
    fake.push_update(u2)
    await wait_inbound(t, 2)
    await t.channel.stop()

    # A new process resumes from the stored offset: nothing is queued twice.
    fake.calls.clear()
    t2 = await telegram(mode="polling", poll_timeout_s=1)
    await fake.wait_for("getUpdates", 1)
    assert fake.of("getUpdates")[0].params["offset"] == str(u2["update_id"] + 1)
    await t2.channel.stop()
    assert [x.text for x in await t.inbound()] == ["hello from polling", "second message"]


# -- CLI ---------------------------------------------------------------------------------------------

async def test_cli_sets_shows_and_deletes_the_webhook(fake: FakeBotAPI, tmp_path: Path) -> None:
    from app.cli import app

    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "channels:\n"
        "  - type: telegram\n"
        f"    token: {tg.TOKEN}\n"
        "    mode: webhook\n"
        f"    webhook_secret: {SECRET}\n"
        "    public_url: https://bot.example.test\n"
        f"    base_url: {fake.base_url}\n"
    )
    runner = CliRunner()

    async def cli(*args: str) -> Any:
        return await asyncio.to_thread(runner.invoke, app, ["telegram", *args, "-c", str(cfg)])

    r = await cli("set-webhook")
    assert r.exit_code == 0, r.output
    assert "https://bot.example.test/telegram/webhook" in r.output
    assert fake.webhook["url"] == "https://bot.example.test/telegram/webhook"
    assert fake.webhook["secret_token"] == SECRET
    assert fake.webhook["allowed_updates"] == ["message", "edited_message", "callback_query", "my_chat_member"]

    r = await cli("info")
    assert r.exit_code == 0, r.output
    assert "@sb_test_bot" in r.output and "https://bot.example.test/telegram/webhook" in r.output

    r = await cli("delete-webhook")
    assert r.exit_code == 0 and fake.webhook == {}

    fake.reject_token = True
    r = await cli("info")
    assert r.exit_code == 1 and "rejected the token" in r.output
    assert tg.TOKEN not in r.output


async def test_a_group_member_asking_about_someone_elses_post_queues_the_post_as_a_quote(
    telegram: Callable[..., Awaitable[TG]],
) -> None:
    t = await telegram()
    gid = -100555
    scam = {"message_id": 4242, "date": 1, "chat": tg.chat(gid, "supergroup"),
            "from": {"id": 666, "is_bot": False, "first_name": "Support", "username": "exchange_help_desk"},
            "text": "Send 1 ETH to 0xabc and get 2 ETH back, official giveaway"}
    u = tg.message(f"@{tg.BOT_USERNAME} is this real?", uid=530, chat_id=gid, chat_type="supergroup", reply_to=scam)
    assert await t.post(u) == 200
    [m] = await t.inbound()
    assert m.text == "is this real?\n\n> Send 1 ETH to 0xabc and get 2 ETH back, official giveaway"
    assert (m.meta["quoted"], m.meta["quoted_from"]) == ("reply", "@exchange_help_desk")
