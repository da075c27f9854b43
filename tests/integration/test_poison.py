"""Input and faults that try to break the delivery promises, against the real Redis: bytes that are
not UTF-8 on a stream, a conversation whose state hash is corrupt, Redis at `maxmemory`, a handler
task that raises at `router.concurrency` > 1, and what a user may type into a ticket. Each one:
nothing accepted is lost, nothing is handled twice, the stream goes on, and what is wrong is
logged (never a task that dies unseen)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.consumer import StreamConsumer
from bot.queue import Entry
from bot.redisconn import connect
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.redis]


@pytest.fixture
async def product_redis(aredis: aioredis.Redis) -> AsyncIterator[aioredis.Redis]:
    """The client the roles use (`bot.redisconn.connect`: decoded replies), on the test DB."""
    r = connect(REDIS_URL)
    yield r
    await r.aclose()


async def test_bytes_that_are_not_utf8_never_stop_a_stream(product_redis: aioredis.Redis) -> None:
    """Another writer put invalid UTF-8 on a stream: the read of that entry (and of every entry
    read with it) used to fail as if Redis were down, again on each take-over — the stream
    stopped for good. Now the entry is handled (U+FFFD for the bad bytes) and so is the rest."""
    raw = aioredis.from_url(REDIS_URL)  # bytes in, bytes out
    try:
        await raw.xadd("bytes", {"d": b"\xff\xfe caf\xe9"})
        for i in range(5):
            await raw.xadd("bytes", {"d": f"good {i}"})
    finally:
        await raw.aclose()
    seen: list[str] = []

    async def handle(e: Entry, fresh: bool) -> None:
        seen.append(e.fields["d"])

    c = StreamConsumer(product_redis, "bytes", "g", handle, block_ms=50, claim_idle_ms=300, max_attempts=2)
    await asyncio.wait_for(c.run(asyncio.Event(), burst=True), 10)
    assert seen == ["\ufffd\ufffd caf\ufffd", *(f"good {i}" for i in range(5))]
    assert (await product_redis.xpending("bytes", "g"))["pending"] == 0


async def test_redis_at_maxmemory_is_waited_out_and_never_dead_letters(private: aioredis.Redis) -> None:
    """`OOM command not allowed`: every write of every entry fails (the dead letter's too) until
    memory is freed. It is an outage, not the entry's fault: nothing is dead-lettered, the consumer
    keeps running (its heartbeat fails too), and everything is handled once memory is back."""
    for i in range(10):
        await private.xadd("work", {"n": str(i)})
    await private.xgroup_create("work", "g", id="0")
    await private.config_set("maxmemory", "1")  # noeviction (the default): writes are refused
    handled: list[str] = []

    async def handle(e: Entry, fresh: bool) -> None:
        await private.xadd("results", {"n": e.fields["n"]})  # the entry's effect: a write
        handled.append(e.fields["n"])

    stop = asyncio.Event()
    c = StreamConsumer(private, "work", "g", handle, block_ms=50, claim_idle_ms=300, max_attempts=2,
                       retry_base_s=0.01)
    task = asyncio.create_task(c.run(stop))
    await asyncio.sleep(2.0)  # many times max_attempts' worth of retries
    assert not task.done(), task.exception() if not task.cancelled() else "cancelled"
    assert handled == [] and await private.exists("work:dead") == 0
    await private.config_set("maxmemory", "0")
    deadline = time.monotonic() + 15
    while len(handled) < 10 and time.monotonic() < deadline:  # noqa: ASYNC110 (polls Redis or the handler's record)
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 15)
    assert handled == [str(i) for i in range(10)]
    assert await private.exists("work:dead") == 0 and c.dead_lettered == 0
    assert (await private.xpending("work", "g"))["pending"] == 0


async def test_a_handler_task_that_raises_at_concurrency_above_one_is_told(
    aredis: aioredis.Redis, capfd: pytest.CaptureFixture[str],
) -> None:
    """With `concurrency > 1` each entry is handled in a task. What such a task raised outside the
    handler (here: a handler returning what no consumer knows, i.e. a bug) used to vanish with the
    task ("Task exception was never retrieved", at best when it is collected) while the entry sat
    pending and was taken over again and again. Now each one is logged with its traceback."""
    await aredis.xadd("conc", {"n": "1"})

    async def handle(e: Entry, fresh: bool) -> object:
        return "done"  # not an outcome

    stop = asyncio.Event()
    c = StreamConsumer(aredis, "conc", "g", handle, block_ms=50, claim_idle_ms=300, concurrency=4)  # type: ignore[arg-type]
    task = asyncio.create_task(c.run(stop))
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(task, 15)
    out = capfd.readouterr()
    assert "consumer.task_crashed" in out.out + out.err
    assert "returned 'done'" in out.out + out.err


# -- the router: a conversation whose state hash is corrupt ----------------------------------------
@pytest.mark.parametrize(("field", "value"), [("seq_done", "abc"), ("fallbacks", "x"), ("vip", "1.5")])
async def test_a_corrupt_conversation_state_never_stops_the_stream_nor_multiplies_dead_letters(
    product_redis: aioredis.Redis, stub_nlu: str, field: str, value: str
) -> None:
    """A conversation hash edited by hand (or by a bug) with a counter that is not a number:
    `seq_done` corrupt used to fail the dead-letter script after its XADD (a script's writes stay
    when it errors), so each attempt added one more dead letter, none acknowledged the entry, and
    its task died unseen; a corrupt `fallbacks` failed every message of the conversation for good.
    Now a corrupt counter reads as 0 (the commit writes it anew) and a corrupt `seq_done`
    dead-letters each affected entry once; every other conversation is answered once, in order."""
    from app.runtime import answers
    from bot.intake import make_sink
    from bot.models import Decision, Message
    from bot.queue import Queue
    from bot.router import Brain, RouterWorker
    from intents.client import NLUClient
    from tests.conftest import make_settings

    r = product_redis
    s = make_settings(nlu={"urls": [stub_nlu]}, router={"concurrency": 8})
    sink = make_sink(Queue(r, s.queue))
    await r.hset("conv:web:bad", field, value)
    sent: dict[str, list[str]] = {}
    for i in range(4):
        for conv in ("bad", "ok"):
            m = Message(channel="chat", channel_message_id=f"{conv}{i}", conversation_id=f"web:{conv}",
                        user_id=conv, text=f"how do I deposit USDT {i}", lang="en")
            await sink(m)
            sent.setdefault(m.conversation_id, []).append(m.id)
    async with NLUClient(s.nlu.urls, timeout_s=5) as nlu:
        await nlu.refresh_versions()
        worker = RouterWorker(s, r, Brain(s, nlu, answers(s)))
        await asyncio.wait_for(worker.run(asyncio.Event(), burst=True), 30)
    got: dict[str, list[str]] = {}
    for _, f in await r.xrange("decisions"):
        d = Decision.from_json(f["d"])
        got.setdefault(d.conversation_id, []).append(d.message_id)
    letters = [f["entry"] for _, f in await r.xrange("inbound:dead")]
    assert got["web:ok"] == sent["web:ok"]
    assert len(letters) == len(set(letters)), "an entry dead-lettered more than once"
    if field == "seq_done":
        assert all(f["c"] == "web:bad" for _, f in await r.xrange("inbound:dead"))
        assert len(letters) + len(got.get("web:bad", [])) == 4
    else:
        assert letters == [] and got["web:bad"] == sent["web:bad"]
    assert (await r.xpending("inbound", "routers"))["pending"] == 0


# -- the ticket writer: what a user may type must never cost them their ticket ---------------------
async def test_a_nul_character_or_a_very_long_word_still_becomes_a_ticket(aredis: aioredis.Redis) -> None:
    """A user's handoff with a NUL character (PostgreSQL refuses it in text) or with one pasted
    run of 3,000 letters (a tsvector lexeme is at most 2047 bytes) failed the ticket's write every
    time: the theft report ended as a dead letter instead of a ticket. Both are within what a
    `Message` allows; now each opens its ticket, and the events behind them too."""
    import orjson

    from handoff.db import make_engine, sessionmaker, upgrade
    from handoff.service import TicketService
    from handoff.worker import consume_handoffs
    from tests.conftest import PG_URL, make_settings, reset_postgres
    from tests.integration.test_delivery import handoff_event

    await reset_postgres(PG_URL)
    engine = make_engine(PG_URL)
    await upgrade(engine)
    try:
        svc = TicketService(make_settings(database={"url": PG_URL}), sessionmaker(engine), aredis)
        texts = {"nul": "my account was hacked \x00 help", "long": "hacked, the token was " + "A" * 3000,
                 "good": "my account was hacked"}
        for i, (user, txt) in enumerate(texts.items()):
            ev = orjson.loads(handoff_event(i, user, True))
            ev["message"]["text"] = ev["decision"]["redacted_text"] = txt
            await aredis.xadd("handoff", {"d": orjson.dumps(ev).decode()})
        await asyncio.wait_for(consume_handoffs(svc, aredis, asyncio.Event(), burst=True, claim_idle_ms=500,
                                                max_attempts=2), 60)
        assert await aredis.xlen("handoff:dead") == 0, (await aredis.xrange("handoff:dead"))[0][1]["error"][:300]
        firsts = []
        for n in range(1, 4):
            d = await svc.detail(f"SB-{n:06d}")
            firsts.append(next(m["text"] for m in d["messages"] if m["author_type"] == "user"))
        assert sorted(firsts) == sorted(t.replace("\x00", "") for t in texts.values())
    finally:
        await engine.dispose()
