"""The router worker end to end on the real Redis and a real Rasa server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from app.runtime import answers
from bot.intake import make_sink
from bot.models import Decision, Message, Outbound
from bot.queue import Queue
from bot.router import Brain, RouterWorker
from intents.client import NLUClient
from tests.conftest import REDIS_URL, ROOT, SOAK, config_copy, make_settings

pytestmark = [pytest.mark.redis, pytest.mark.rasa]


def web_msg(cmid: str, text: str, session: str = "s1") -> Message:
    """A message of a channel whose replies queue on `outbound:chat` for a sender (the widget's
    replies go straight into its mailbox: tests/integration/test_delivery.py, test_widget_*)."""
    from bot.lang import detect_language

    return Message(channel="chat", channel_message_id=cmid, conversation_id=f"web:{session}", user_id=session,
                   text=text, lang=detect_language(text))


async def drain(settings, r: aioredis.Redis, brain_cls=Brain, limit_s: float = 60) -> RouterWorker:  # type: ignore[no-untyped-def]
    async with NLUClient(settings.nlu.urls, timeout_s=5) as nlu:
        await nlu.refresh_versions()
        w = RouterWorker(settings, r, brain_cls(settings, nlu, answers(settings)))
        await asyncio.wait_for(w.run(burst=True), limit_s)
        return w


async def outbound(r: aioredis.Redis, channel: str = "chat") -> list[Outbound]:
    return [Outbound.from_json(f["d"]) for _, f in await r.xrange(f"outbound:{channel}")]


async def decisions(r: aioredis.Redis) -> list[Decision]:
    return [Decision.from_json(f["d"]) for _, f in await r.xrange("decisions")]


async def test_questions_are_answered_in_the_users_language_and_theft_is_handed_off(
    rasa_url: str, aredis: aioredis.Redis
) -> None:
    s = make_settings(nlu={"urls": [rasa_url]})
    sink = make_sink(Queue(aredis, s.queue))
    await sink(web_msg("1", "How do I enable 2FA?", "en1"))
    await sink(web_msg("2", "USDT充值一直没到账怎么办", "zh1"))
    await sink(web_msg("3", "my account was hacked and my BTC is gone", "t1"))
    await drain(s, aredis)
    by_conv = {d.conversation_id: d for d in await decisions(aredis)}
    en, zh, theft = by_conv["web:en1"], by_conv["web:zh1"], by_conv["web:t1"]
    assert (en.action.value, en.topic) == ("answer", "security")
    assert "2FA" in en.reply or "authenticator" in en.reply.lower()
    assert (zh.action.value, zh.topic) == ("answer", "deposit")
    assert any("\u4e00" <= c <= "\u9fff" for c in zh.reply)
    assert (theft.action.value, theft.topic, theft.priority.value) == ("handoff", "theft", "urgent")
    replies = {o.conversation_id: o for o in await outbound(aredis)}
    assert replies["web:t1"].kind == "handoff" and "15 minutes" in replies["web:t1"].text
    handoffs = await aredis.xrange("handoff")
    assert len(handoffs) == 1 and orjson.loads(handoffs[0][1]["d"])["decision"]["topic"] == "theft"


async def test_a_question_about_a_post_the_user_points_at_is_about_that_post_not_their_account(
    rasa_url: str, aredis: aioredis.Redis
) -> None:
    # Telegram and X put what the user replied to or quoted after their words (meta "quoted"): the
    # scammer's "your account will be frozen" is not the user's account, "is this real?" is theirs.
    s = make_settings(nlu={"urls": [rasa_url]})
    shown = ("is this real?\n\n> URGENT: your account will be frozen within 24 hours unless you verify your "
             "wallet at https://exchange-verify.example")
    m = web_msg("1", shown, "q1").model_copy(update={"meta": {"quoted": "reply", "quoted_from": "@exchange_helpdesk"}})
    await make_sink(Queue(aredis, s.queue))(m)
    await drain(s, aredis)
    [d] = await decisions(aredis)
    assert (d.action.value, d.topic) == ("answer", "security"), d
    assert "post or message you pointed at" in d.reply
    assert await aredis.xlen("handoff") == 0


async def test_bot_stays_silent_after_a_handoff(rasa_url: str, aredis: aioredis.Redis) -> None:
    s = make_settings(nlu={"urls": [rasa_url]})
    sink = make_sink(Queue(aredis, s.queue))
    await sink(web_msg("1", "I want to talk to a real person", "h"))
    await sink(web_msg("2", "How do I enable 2FA?", "h"))
    await drain(s, aredis)
    assert [o.kind for o in await outbound(aredis)] == ["handoff"]
    # The follow-up still reaches the handoff stream (for the ticket), silently.
    assert len(await aredis.xrange("handoff")) == 2


async def test_an_agent_taking_over_after_intake_keeps_the_bot_silent(rasa_url: str, aredis: aioredis.Redis) -> None:
    """The entry carries the conversation state as of intake; an agent who takes the conversation
    before the router gets to it must still win (the commit sees the state changed and the router
    decides again on the new state)."""
    from handoff.service import TicketService

    s = make_settings(nlu={"urls": [rasa_url]})
    sink = make_sink(Queue(aredis, s.queue))
    await sink(web_msg("1", "How do I enable 2FA?", "ag"))
    [(_, fields)] = await aredis.xrange("inbound")
    assert orjson.loads(fields["s"])["seq_in"] == "1"  # the state travelled with the entry
    await TicketService(s, None, aredis)._set_mode("web:ag", "agent")  # type: ignore[arg-type]
    w = await drain(s, aredis)
    assert w.handled == 1
    assert await outbound(aredis) == []  # a person has it: no bot answer
    [d] = await decisions(aredis)
    assert d.silent
    assert len(await aredis.xrange("handoff")) == 1  # the message goes to the agent's ticket


async def test_duplicates_and_redeliveries_are_answered_once(rasa_url: str, aredis: aioredis.Redis) -> None:
    s = make_settings(nlu={"urls": [rasa_url]})
    q = Queue(aredis, s.queue)
    sink = make_sink(q)
    assert await sink(web_msg("same", "how do I deposit BTC")) is not None
    assert await sink(web_msg("same", "how do I deposit BTC")) is None
    await drain(s, aredis)
    # Re-inject the already handled entry as a redelivery: acked, not answered again.
    [(eid, fields)] = await aredis.xrange("inbound")
    await aredis.xadd("inbound", fields)
    await drain(s, aredis)
    assert len(await outbound(aredis)) == 1


async def test_one_conversation_stays_in_order_across_two_workers(rasa_url: str, aredis: aioredis.Redis) -> None:
    s = make_settings(nlu={"urls": [rasa_url]}, router={"concurrency": 8})
    sink = make_sink(Queue(aredis, s.queue))
    texts = [f"how long does a withdrawal of {i} USDT take" for i in range(20)]
    for i, t in enumerate(texts):
        await sink(web_msg(f"o{i}", t, "ordered"))
        await sink(web_msg(f"p{i}", t, f"other{i}"))
    await asyncio.gather(drain(s, aredis), drain(s, aredis))
    ds = [d for d in await decisions(aredis) if d.conversation_id == "web:ordered"]
    assert [d.redacted_text for d in ds] == texts
    assert len(await outbound(aredis)) == 40


async def test_concurrent_messages_share_redis_round_trips_and_each_is_answered_once(
    rasa_url: str, aredis: aioredis.Redis
) -> None:
    """With many messages in flight the commits (and state reads) go to Redis together
    (`bot.redisbatch`): fewer writes than commands, and still every message answered exactly
    once and each conversation in order. With one message at a time there is nothing to batch."""
    s = make_settings(nlu={"urls": [rasa_url]}, router={"concurrency": 16})
    sink = make_sink(Queue(aredis, s.queue))
    for i in range(120):
        await sink(web_msg(f"m{i}", f"how long does a withdrawal of {i} USDT take", f"c{i % 12}"))
    w = await drain(s, aredis)
    assert w.batch is not None and w.batch.commands >= 120
    assert w.batch.batches < w.batch.commands / 2
    ds = await decisions(aredis)
    assert sorted(d.message_id for d in ds) == sorted({d.message_id for d in ds}) and len(ds) == 120
    for c in range(12):
        amounts = [int(d.redacted_text.split()[6]) for d in ds if d.conversation_id == f"web:c{c}"]
        assert amounts == sorted(amounts) and len(amounts) == 10
    assert len(await outbound(aredis)) == 120
    one = make_settings(nlu={"urls": [rasa_url]}, router={"concurrency": 1})
    async with NLUClient(one.nlu.urls, timeout_s=5) as nlu:
        assert RouterWorker(one, aredis, Brain(one, nlu, answers(one))).batch is None


class FailingBrain(Brain):
    """Fault injection: the real Brain, except messages containing BOOM raise."""

    async def decide(self, msg, state):  # type: ignore[no-untyped-def]
        if "BOOM" in msg.text:
            raise RuntimeError("injected failure")
        return await super().decide(msg, state)


async def test_a_message_that_keeps_failing_is_dead_lettered_and_others_flow(
    rasa_url: str, aredis: aioredis.Redis
) -> None:
    s = make_settings(nlu={"urls": [rasa_url]})
    q = Queue(aredis, s.queue)
    sink = make_sink(q)
    await sink(web_msg("1", "BOOM please", "f"))
    await sink(web_msg("2", "how do I deposit ETH", "f"))
    await aredis.xadd("inbound", {"m": "{not json", "seq": "1", "c": "web:junk"})
    await drain(s, aredis, FailingBrain)
    dead = await q.dead_letters()
    assert sorted(d.fields["error"].split(":")[0] for d in dead) == ["RuntimeError", "malformed entry"]
    assert [o.in_reply_to for o in await outbound(aredis)] != []
    assert len(await outbound(aredis)) == 1  # the ETH question, answered after the dead one
    assert await q.pending_count() == 0


@pytest.mark.slow
@pytest.mark.timeout(300 * SOAK)
def test_killed_worker_mid_batch_every_message_answered_exactly_once(
    rasa_url: str, redis_sync: redis.Redis, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    cfg = config_copy(tmp_path, ("claim_idle_ms: 30000", "claim_idle_ms: 1000"))
    env = {**os.environ, "SWITCHBOARD_REDIS_URL": REDIS_URL, "SWITCHBOARD_RASA_URL": rasa_url,
           "SWITCHBOARD_LOG_FORMAT": "json"}
    s = make_settings(nlu={"urls": [rasa_url]})

    async def publish(n: int) -> None:
        r = aioredis.from_url(REDIS_URL, decode_responses=True)
        sink = make_sink(Queue(r, s.queue))
        for i in range(n):
            await sink(web_msg(f"k{i}", f"what are the fees for {i} BTC withdrawal", f"conv{i % 25}"))
        await r.aclose()

    n = 300 * SOAK
    asyncio.run(publish(n))
    argv = [str(ROOT / ".venv/bin/switchboard"), "run", "--role", "router", "--config", str(cfg)]
    kills: list[int] = []
    for _ in range(SOAK):  # `make soak`: killed again and again, each time mid-batch
        w1 = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = redis_sync.xlen("decisions") + 40
        deadline = time.monotonic() + 60
        while redis_sync.xlen("decisions") < target and time.monotonic() < deadline:
            time.sleep(0.02)
        w1.send_signal(signal.SIGKILL)
        w1.wait()
        kills.append(redis_sync.xlen("decisions"))
    done_at_kill = kills[-1]
    assert done_at_kill < n, "the worker finished before it was killed; the test proves nothing"
    w2 = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                          stderr=open(tmp_path / "w2.log", "wb"))  # noqa: SIM115  (a PIPE nobody reads would block it)
    try:
        deadline = time.monotonic() + 100 * SOAK
        while time.monotonic() < deadline:
            if redis_sync.xlen("decisions") >= n and redis_sync.xpending("inbound", "routers")["pending"] == 0:
                break
            time.sleep(0.1)
        time.sleep(1.5)  # a straggler double answer would show up here
    finally:
        w2.send_signal(signal.SIGTERM)
        w2.wait(60)
    ds = [Decision.from_json(f["d"]) for _, f in redis_sync.xrange("decisions")]
    outs = [Outbound.from_json(f["d"]) for _, f in redis_sync.xrange("outbound:chat")]
    assert len(ds) == n, f"{len(ds)} decisions for {n} messages (killed after {done_at_kill})"
    assert len({d.message_id for d in ds}) == n
    assert len(outs) == n and len({o.in_reply_to for o in outs}) == n
    # Per conversation, in the order sent.
    for c in range(25):
        got = [d.redacted_text for d in ds if d.conversation_id == f"web:conv{c}"]
        want = [f"what are the fees for {i} BTC withdrawal" for i in range(c, n, 25)]
        assert got == want
    print(f"killed after {kills} of {n}; all {n} answered exactly once", file=sys.stderr)
