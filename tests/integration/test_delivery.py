"""One bad entry never stops a stream: for the inbound (router), outbound:web (sender) and handoff
(tickets) streams, poison entries — a malformed payload, a handler raising an unexpected exception
type, a CSAT for a ticket that is gone — are dead-lettered after `max_attempts` with their error
(and listed by `switchboard deadletters list`), while 50 good entries over 10 conversations behind
them are each handled exactly once and in order; also with the role restarted in the middle."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from app.runtime import answers
from bot.intake import make_sink
from bot.models import Action, Decision, Message, Outbound, Priority
from bot.queue import Queue
from bot.router import Brain, RouterWorker
from channels.web.adapter import WebChannel, box_key
from handoff.db import make_engine, sessionmaker, upgrade
from handoff.service import TicketService
from handoff.worker import consume_handoffs
from intents.client import NLUClient
from tests.conftest import PG_URL, REDIS_URL, ROOT, make_settings, reset_postgres

pytestmark = [pytest.mark.redis]

MAX_ATTEMPTS = 3
RESTART = pytest.mark.parametrize("restart", [False, True], ids=["steady", "restarted"])


def deadletters_list(*args: str) -> str:
    """`switchboard deadletters list` as an operator runs it, against the test Redis."""
    env = {**os.environ, "SWITCHBOARD_REDIS_URL": REDIS_URL}
    p = subprocess.run([str(ROOT / ".venv/bin/switchboard"), "deadletters", "list", "--config",
                        str(ROOT / "config.yaml"), *args], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


async def dead(r: aioredis.Redis, stream: str) -> list[dict[str, str]]:
    return [f for _, f in await r.xrange(f"{stream}:dead")]


class Midway:
    """Stops the first consumer after `at` handled entries (as SIGTERM would), when restarting."""

    def __init__(self, restart: bool, at: int = 16) -> None:
        self.stop = asyncio.Event()
        self.at = at if restart else None
        self.n = 0

    def tick(self) -> None:
        self.n += 1
        if self.n == self.at:
            self.stop.set()


async def run_role(run: Callable[[asyncio.Event, bool], Awaitable[Any]], midway: Midway,
                   progress: Callable[[], Awaitable[int]], total: int) -> None:
    """Drain with one consumer; when restarting, the first one is stopped midway and a new one (a
    new consumer name, as after a restart) drains the rest."""
    if midway.at is not None:
        await asyncio.wait_for(run(midway.stop, False), 60)
        assert await progress() < total, "the first consumer finished everything: nothing was restarted"
    await asyncio.wait_for(run(asyncio.Event(), True), 90)


# -- inbound: the router --------------------------------------------------------------------------
class BuggyBrain(Brain):
    """The real brain with one bug: a message saying EXPLODE raises an exception nobody expects."""

    midway: Midway | None = None

    async def decide(self, msg, state):  # type: ignore[no-untyped-def]
        if "EXPLODE" in msg.text:
            raise LookupError("a bug in the router")
        out = await super().decide(msg, state)
        if self.midway is not None:
            self.midway.tick()
        return out


def web_msg(cmid: str, text: str, session: str) -> Message:
    return Message(channel="web", channel_message_id=cmid, conversation_id=f"web:{session}", user_id=session,
                   text=text, lang="en")


@pytest.mark.rasa
@RESTART
async def test_inbound_poison_is_dead_lettered_and_the_rest_is_answered_once_in_order(
    rasa_url: str, aredis: aioredis.Redis, restart: bool
) -> None:
    s = make_settings(nlu={"urls": [rasa_url]}, queue={"max_attempts": MAX_ATTEMPTS}, router={"concurrency": 8})
    sink = make_sink(Queue(aredis, s.queue))
    await aredis.xadd("inbound", {"m": "{not json", "seq": "1", "c": "web:broken"})  # malformed
    await sink(web_msg("bug", "EXPLODE how do I deposit USDT", "c0"))  # first of conversation c0
    sent: dict[str, list[str]] = {}
    for i in range(50):
        m = web_msg(f"g{i}", f"how do I deposit USDT on TRC20, question {i}", f"c{i % 10}")
        await sink(m)
        sent.setdefault(m.conversation_id, []).append(m.id)

    async def decided() -> int:
        return int(await aredis.xlen("decisions"))

    midway = Midway(restart)
    async with NLUClient(s.nlu.urls, timeout_s=5) as nlu:
        await nlu.refresh_versions()

        async def run(stop: asyncio.Event, burst: bool) -> None:
            brain = BuggyBrain(s, nlu, answers(s))
            brain.midway = midway
            await RouterWorker(s, aredis, brain).run(stop, burst=burst)

        await run_role(run, midway, decided, 50)

    got: dict[str, list[str]] = {}
    for _, f in await aredis.xrange("decisions"):
        d = Decision.from_json(f["d"])
        got.setdefault(d.conversation_id, []).append(d.message_id)
    assert got == sent  # all 50, once each, in each conversation's order
    # The widget's replies are written into each session's mailbox by the commit itself.
    replies = [orjson.loads(f["e"]) for c in sent for _, f in await aredis.xrange(box_key(c.removeprefix("web:")))]
    assert sorted(e["in_reply_to"] for e in replies if e["kind"] == "bot") == sorted(i for ids in sent.values() for i in ids)
    letters = {f.get("c"): f for f in await dead(aredis, "inbound")}
    assert set(letters) == {"web:broken", "web:c0"}
    assert letters["web:broken"]["error"].startswith("malformed entry")  # never retried: it cannot parse
    bug = letters["web:c0"]
    assert bug["error"] == "LookupError: a bug in the router"
    assert (bug["attempts"], bug["handler"]) == (str(MAX_ATTEMPTS), "router")
    assert (await aredis.xpending("inbound", "routers"))["pending"] == 0
    listed = deadletters_list()
    assert "inbound" in listed and "LookupError: a bug in the router" in listed


# -- outbound:web: the widget's sender ------------------------------------------------------------
class BuggyWeb(WebChannel):
    """The real widget channel with a bug for one reply text."""

    midway: Midway | None = None

    async def deliver(self, ob: Outbound, stream: str, group: str, entry_id: str, *, first: bool = False) -> None:
        if ob.text == "EXPLODE":
            raise LookupError("a bug in the adapter")
        await super().deliver(ob, stream, group, entry_id, first=first)
        if self.midway is not None:
            self.midway.tick()


def reply(user: str, text: str) -> Outbound:
    return Outbound(channel="web", conversation_id=f"web:{user}", user_id=user, text=text, kind="answer")


@RESTART
async def test_outbound_poison_is_dead_lettered_and_every_reply_arrives_once_in_order(
    aredis: aioredis.Redis, restart: bool
) -> None:
    from bot.channel import OutboundSender

    s = make_settings()
    channel = BuggyWeb.from_config(s, s.channels[0], aredis)
    channel.midway = midway = Midway(restart)  # type: ignore[attr-defined]
    await aredis.xadd("outbound:web", {"d": "{\"text\": 1"})  # malformed
    await aredis.xadd("outbound:web", {"d": reply("u0", "EXPLODE").to_json()})
    sent: dict[str, list[str]] = {}
    for i in range(50):
        user = f"u{i % 10}"
        await aredis.xadd("outbound:web", {"d": reply(user, f"reply {i}").to_json()})
        sent.setdefault(user, []).append(f"reply {i}")

    async def boxes() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for user in sent:
            out[user] = [orjson.loads(f["e"])["text"] for _, f in await aredis.xrange(box_key(user))]
        return out

    async def delivered() -> int:
        return sum(len(v) for v in (await boxes()).values())

    async def run(stop: asyncio.Event, burst: bool) -> None:
        await OutboundSender(aredis, channel, claim_idle_ms=500, max_attempts=MAX_ATTEMPTS, block_ms=100).run(
            stop, burst=burst)

    await run_role(run, midway, delivered, 50)
    assert await boxes() == sent
    letters = await dead(aredis, "outbound:web")
    assert [f["error"][:18] for f in letters] == ["malformed outbound", "LookupError: a bug"]
    bug = letters[1]
    assert (bug["attempts"], bug["handler"]) == (str(MAX_ATTEMPTS), "sender:web")
    assert Outbound.from_json(bug["d"]).text == "EXPLODE"  # kept whole, for a replay
    listed = deadletters_list("--stream", "outbound:web")
    assert "outbound:web" in listed and "LookupError: a bug in the adapter" in listed


# -- handoff: the ticket writer -------------------------------------------------------------------
@pytest.fixture
async def tickets(aredis: aioredis.Redis) -> AsyncIterator[TicketService]:
    await reset_postgres(PG_URL)
    engine = make_engine(PG_URL)
    await upgrade(engine)
    yield TicketService(make_settings(database={"url": PG_URL}), sessionmaker(engine), aredis)
    await engine.dispose()


def handoff_event(i: int, user: str, first: bool) -> str:
    m = Message(channel="web", channel_message_id=f"h{i}", conversation_id=f"web:{user}", user_id=user,
                text=f"my account was hacked, message {i}", lang="en")
    d = Decision(message_id=m.id, conversation_id=m.conversation_id, channel="web", action=Action.HANDOFF,
                 topic="theft", intent="theft_account_hacked", confidence=0.9, priority=Priority.URGENT,
                 reply="A person will take over." if first else "", lang="en", silent=not first)
    return '{"decision":' + d.to_json() + ',"message":' + m.to_json() + "}"


@RESTART
async def test_handoff_poison_is_dead_lettered_and_every_ticket_message_is_written_once_in_order(
    aredis: aioredis.Redis, tickets: TicketService, restart: bool
) -> None:
    await aredis.xadd("handoff", {"d": "{not json"})  # malformed
    await aredis.xadd("handoff", {"d": orjson.dumps({"csat": {"ticket": "SB-009999", "score": 5}}).decode()})
    await aredis.xadd("handoff", {"d": orjson.dumps({"decision": {}, "message": {}}).decode()})  # KeyError
    sent: dict[str, list[str]] = {}
    for i in range(50):
        user = f"v{i % 10}"
        await aredis.xadd("handoff", {"d": handoff_event(i, user, user not in sent)})
        sent.setdefault(user, []).append(f"my account was hacked, message {i}")

    async def written() -> int:
        from sqlalchemy import func, select

        from handoff.models import TicketMessage

        async with tickets.sm() as ses:
            return int((await ses.execute(select(func.count()).select_from(TicketMessage)
                                          .where(TicketMessage.author_type == "user"))).scalar_one())

    midway = Midway(restart)
    handle_event = tickets.handle_event

    async def counted(payload: dict[str, Any]) -> Any:  # the real handler, counted for the restart
        out = await handle_event(payload)
        midway.tick()
        return out

    tickets.handle_event = counted  # type: ignore[method-assign]

    async def run(stop: asyncio.Event, burst: bool) -> None:
        await consume_handoffs(tickets, aredis, stop, burst=burst, claim_idle_ms=500, max_attempts=MAX_ATTEMPTS)

    await run_role(run, midway, written, 50)
    assert await written() == 50
    for n in range(1, 11):
        d = await tickets.detail(f"SB-{n:06d}")
        [user] = [i["source_id"] for i in d["ticket"]["contact"]["identities"]]
        assert [m["text"] for m in d["messages"] if m["author_type"] == "user"] == sent[user]
    letters = {f["error"].split(":")[0]: f for f in await dead(aredis, "handoff")}
    assert {k: v["attempts"] for k, v in letters.items()} == {
        "malformed handoff event": "1", "NotFound": str(MAX_ATTEMPTS), "KeyError": str(MAX_ATTEMPTS)}
    assert letters["NotFound"]["error"] == "NotFound: ticket SB-009999 not found"
    assert letters["NotFound"]["handler"] == "tickets"
    listed = deadletters_list()
    assert "handoff" in listed and "NotFound: ticket SB-009999 not found" in listed


def test_deadletters_cli_shows_replays_and_drops(redis_sync: Any, tmp_path: Path) -> None:
    """An operator fixes the cause, then replays a dead letter onto its stream, or drops it. Ids
    are unique per stream only: an id two streams share needs --stream (never the wrong one)."""
    ob = reply("u1", "hello")
    same_id = "1764806400000-0"
    redis_sync.xadd("outbound:web:dead", {"d": ob.to_json(), "entry": "1-0", "error": "PermanentChannelError: x",
                                          "handler": "sender:web", "attempts": "1", "at": "1764806400"}, id=same_id)
    redis_sync.xadd("handoff:dead", {"d": "{}", "entry": "2-0", "error": "KeyError: 'decision'",
                                     "handler": "tickets", "attempts": "3", "at": "1764806400"}, id=same_id)
    env = {**os.environ, "SWITCHBOARD_REDIS_URL": REDIS_URL}
    exe, cfg = str(ROOT / ".venv/bin/switchboard"), str(ROOT / "config.yaml")

    def sb(*args: str, code: int = 0) -> str:
        p = subprocess.run([exe, "deadletters", *args, "--config", cfg], env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == code, p.stderr
        return p.stdout + p.stderr

    assert "add --stream" in sb("show", same_id, code=2)
    shown = orjson.loads(sb("show", same_id, "--stream", "outbound:web"))
    assert (shown["stream"], shown["error"], Outbound.from_json(shown["d"]).text) == (
        "outbound:web", "PermanentChannelError: x", "hello")
    assert "re-queued 1" in sb("replay", same_id, "--stream", "outbound:web")
    [(_, back)] = redis_sync.xrange("outbound:web")
    assert back == {"d": ob.to_json()}  # the original entry, without the dead-letter fields
    assert "dropped 1" in sb("drop", same_id)  # only one stream has it now
    assert redis_sync.xlen("outbound:web:dead") == 0 and redis_sync.xlen("handoff:dead") == 0
    assert "no dead letters" in sb("list")


async def test_readiness_names_a_stream_whose_consumers_all_stopped_looping(aredis: aioredis.Redis) -> None:
    """Consumers of other processes (the router role) are seen through their heartbeats: a stream
    none of whose consumers looped for `stale_s` makes the web role's /readyz fail, naming it."""
    import time

    from app.web import consumer_report
    from bot.consumer import HEARTBEATS

    now = time.time()
    await aredis.hset(HEARTBEATS, mapping={"inbound|routers|host-1-a": str(now - 100),
                                           "handoff|tickets|host-2-b": str(now - 1),
                                           "outbound:web|senders|gone": str(now - 7200)})
    items, problems = await consumer_report(aredis, None, 30)
    assert problems == ["no consumer of inbound (routers) has looped for 100s"]
    assert {i["consumer"]: i["alive"] for i in items} == {"host-1-a": False, "host-2-b": True}
    assert not await aredis.hexists(HEARTBEATS, "outbound:web|senders|gone")  # long gone: forgotten
    await aredis.hset(HEARTBEATS, "inbound|routers|host-1-c", str(now))  # a restarted router
    assert (await consumer_report(aredis, None, 30))[1] == []


async def test_a_failing_batch_is_handled_one_entry_at_a_time(aredis: aioredis.Redis) -> None:
    """A consumer with a batch handler (the reports recorder writes a read's decisions in one
    transaction): when the batch fails because of one entry, the others are still handled, each
    once and in order, and only that one is retried and dead-lettered."""
    from bot.consumer import StreamConsumer
    from bot.queue import Entry

    for i in range(20):
        await aredis.xadd("batchy", {"n": str(i)})
    await aredis.xadd("batchy", {"n": "poison"})
    handled: list[str] = []
    batches: list[int] = []

    async def one(e: Entry, fresh: bool) -> None:
        if e.fields["n"] == "poison":
            raise ValueError("cannot store this one")
        handled.append(e.fields["n"])

    async def many(entries: list[Entry]) -> list[None]:
        if any(e.fields["n"] == "poison" for e in entries):
            raise ValueError("cannot store this batch")
        batches.append(len(entries))
        handled.extend(e.fields["n"] for e in entries)
        return [None] * len(entries)

    c = StreamConsumer(aredis, "batchy", "g", one, batch_handler=many, max_attempts=2, block_ms=50,
                       retry_base_s=0.01, batch=8)
    await asyncio.wait_for(c.run(asyncio.Event(), burst=True), 30)
    assert handled == [str(i) for i in range(20)]  # each once, in order
    assert batches and max(batches) == 8  # the reads without the poison went as batches
    dead = await aredis.xrange("batchy:dead")
    assert [f["n"] for _, f in dead] == ["poison"] and "cannot store this one" in dead[0][1]["error"]
    assert (await aredis.xpending("batchy", "g"))["pending"] == 0


@pytest.mark.parametrize("stop_at", [None, 0, 7], ids=["drained", "stopped-first", "stopped-midway"])
async def test_writes_a_handler_leaves_for_the_next_read_are_never_lost(aredis: aioredis.Redis,
                                                                        stop_at: int | None) -> None:
    """A sender's handler may leave its last writes — the record of what it sent, with the ack —
    to ride with the consumer's next read (`AckWith`). Whether the stream drains, or the consumer
    stops right after a handler (a shutdown), every handled entry has its writes applied and is
    acknowledged, and nothing else is."""
    from bot.consumer import AckWith, StreamConsumer
    from bot.queue import Entry

    for i in range(12):
        await aredis.xadd("ackwith", {"n": str(i)})
    stop = asyncio.Event()
    handled: list[str] = []

    async def handle(e: Entry, fresh: bool) -> AckWith:
        n = e.fields["n"]
        handled.append(n)
        if stop_at is not None and int(n) == stop_at:
            stop.set()  # SIGTERM arrives while this entry is being handled
        return AckWith((("HSET", "recorded", n, e.id), ("XACK", "ackwith", "g", e.id)))

    c = StreamConsumer(aredis, "ackwith", "g", handle, block_ms=50, batch=1 if stop_at == 7 else 5)
    assert c.defers  # one Redis, one entry at a time: the writes do wait for the read
    await asyncio.wait_for(c.run(stop, burst=stop_at is None), 30)
    recorded = await aredis.hgetall("recorded")
    assert sorted(recorded, key=int) == handled  # each handled entry recorded, nothing else
    pending = [p["message_id"] for p in await aredis.xpending_range("ackwith", "g", "-", "+", 100)]
    assert not set(pending) & set(recorded.values())  # every recorded one acknowledged
    assert len(handled) == (12 if stop_at is None else stop_at + 1)
    assert c.processed == len(handled)


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_an_entry_whose_handler_is_slower_than_the_claim_time_is_handled_once(
    aredis: aioredis.Redis, concurrency: int
) -> None:
    # A Bot API or SMTP call slower than `claim_idle_ms`: the other worker must not take the entry
    # over while it is being handled (the reply would go out twice), yet one that dies is still
    # taken over (the second half).
    from bot.consumer import StreamConsumer
    from bot.queue import Entry

    calls: list[tuple[str, str]] = []

    def slow(name: str) -> Any:
        async def handle(e: Entry, fresh: bool) -> None:
            calls.append((name, e.id))
            await asyncio.sleep(1.2)  # four times claim_idle_ms

        return handle

    await aredis.xadd("slowpoke", {"d": "1"})
    stop = asyncio.Event()
    a = StreamConsumer(aredis, "slowpoke", "g", slow("a"), name="a", claim_idle_ms=300, block_ms=50,
                       concurrency=concurrency)
    b = StreamConsumer(aredis, "slowpoke", "g", slow("b"), name="b", claim_idle_ms=300, block_ms=50,
                       concurrency=concurrency)
    ta = asyncio.create_task(a.run(stop))
    await asyncio.sleep(0.1)  # a reads it first
    tb = asyncio.create_task(b.run(stop))
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.wait_for(asyncio.gather(ta, tb), 15)
    assert [n for n, _ in calls] == ["a"], calls
    assert (await aredis.xpending("slowpoke", "g"))["pending"] == 0

    # A worker that dies mid-handling (nothing keeps its entry any more) is still taken over.
    await aredis.xadd("slowpoke", {"d": "2"})
    await aredis.xreadgroup("g", "dead-worker", {"slowpoke": ">"}, count=1)
    calls.clear()
    c = StreamConsumer(aredis, "slowpoke", "g", slow("c"), name="c", claim_idle_ms=300, block_ms=50)
    await asyncio.wait_for(c.run(asyncio.Event(), burst=True), 15)
    assert [n for n, _ in calls] == ["c"]
