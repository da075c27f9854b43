"""The intake contract with `redis.wait_replicas` on the real Redis (which has no replica): an
intake that no replica confirmed is refused — the channel is not acknowledged and sends again —
and the resend is still deduplicated. Partitions on one Redis keep every conversation's keys
under its partition's tag and answer it once. With a real replica that goes away, every shortfall
(intake, commit, read) is counted and logged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from bench.redis_ha import Node, ha_port
from bot.consumer import StreamConsumer
from bot.models import Message
from bot.queue import Durability, Output, Queue
from bot.redisconn import NotReplicated, connect
from bot.streams import Layout
from tests.conftest import make_settings

pytestmark = pytest.mark.redis


def msg(cmid: str, conv: str = "web:s1") -> Message:
    return Message(channel="web", channel_message_id=cmid, conversation_id=conv, user_id="s1", text="hi")


async def test_unreplicated_intake_is_not_acknowledged(aredis: aioredis.Redis) -> None:
    s = make_settings()
    q = Queue(aredis, s.queue, durability=Durability(replicas=1, timeout_ms=20))
    with pytest.raises(NotReplicated, match="0 of 1 replicas"):
        await q.publish(msg("tg-1"))
    # The channel sends the same message again: still refused while no replica has it, and it is
    # on the queue once (dedupe), never twice.
    with pytest.raises(NotReplicated):
        await q.publish(msg("tg-1"))
    assert await aredis.xlen("inbound") == 1
    # Without the setting the same Redis acknowledges at once.
    assert await Queue(aredis, s.queue).publish(msg("tg-2")) is not None


async def test_partitions_on_one_redis_answer_each_message_once(aredis: aioredis.Redis) -> None:
    s = make_settings(queue={"partitions": 4})
    lay = Layout.of(s)
    queues = {p: Queue(aredis, s.queue, layout=lay, partition=p) for p in lay.all()}
    for q in queues.values():
        await q.ensure_group()
    convs = [f"web:s{i}" for i in range(12)]
    for c in convs:
        await queues[0].publish(msg(f"{c}-1", conv=c))
    assert {lay.partition(c) for c in convs} == {0, 1, 2, 3}
    committed = 0
    for p, q in queues.items():
        for e in await q.read("w", 100, None):
            assert lay.partition(e.conversation) == p
            out = [Output(lay.outbound("web", p), '{"r":1}')]
            committed += await q.commit(e, {"fallbacks": "0"}, out)
            assert await q.commit(e, {"fallbacks": "0"}, out) == 0  # redelivered: nothing twice
    assert committed == len(convs)
    assert sum([await aredis.xlen(lay.outbound("web", p)) for p in lay.all()]) == len(convs)
    assert await aredis.hget(lay.conv("web:s1"), "seq_done") == "1"
    assert await aredis.exists("inbound", "conv:web:s1") == 0  # nothing under the untagged names


# -- a replica that goes away: counted, logged, never silent ----------------------------------------------
@pytest.fixture
def master_and_replica(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    """A private master and its replica (`redis-server` on ports of `$SWITCHBOARD_HA_PORTS`)."""
    nodes: list[Node] = []
    try:
        for extra in ([], ["--replicaof", "127.0.0.1", "{master}"]):
            port = ha_port()
            d = tmp_path / str(port)
            d.mkdir()
            args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(d), "--save", "", "--appendonly", "no",
                    "--repl-diskless-sync-delay", "0"]
            n = Node(port, [*args, *[a.replace("{master}", str(nodes[0].port)) if nodes else a for a in extra]])
            n.start()
            nodes.append(n)
        deadline = time.monotonic() + 20
        while nodes[1].client().info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "replica not in sync"
            time.sleep(0.05)
        yield nodes[0], nodes[1]
    finally:
        for n in nodes:
            n.stop()


def _short(op: str) -> float:
    return REGISTRY.get_sample_value("switchboard_redis_not_replicated_total", {"op": op}) or 0.0


async def test_writes_no_replica_confirmed_are_counted_and_logged(master_and_replica: tuple[Node, Node]) -> None:
    master, replica = master_and_replica
    # Stream names of this test's own (the log is once per 10 s per op and stream, per process).
    s = make_settings(redis={"url": f"redis://127.0.0.1:{master.port}/0", "wait_replicas": 1, "wait_timeout_ms": 1500},
                      queue={"inbound_stream": "inbound-ha"})
    r = connect(s.redis.url)
    try:
        q = Queue(r, s.queue, durability=Durability.of(s))
        await q.ensure_group()
        # With the replica up nothing is short.
        before = {op: _short(op) for op in ("intake", "commit", "read")}
        assert await q.publish(msg("tg-1")) is not None
        assert await q.publish(msg("tg-2")) is not None
        e1, e2 = await q.read("w", 10, None)
        assert await q.commit(e1, {"fallbacks": "0"}, [Output("outbound:ha", '{"r":1}')]) == 1
        assert {op: _short(op) for op in before} == before

        replica.stop()  # the master sees its replica go at once (the link closes)
        with capture_logs() as logs:
            # Intake: refused, so the channel sends again (and is told by the counter and the log).
            with pytest.raises(NotReplicated):
                await q.publish(msg("tg-3"))
            # The router's commit: done on the master, only reported.
            assert await q.commit(e2, {"fallbacks": "0"}, [Output("outbound:ha", '{"r":2}')]) == 1
            # A sender reading the reply: holds it until a replica has it.
            sender = StreamConsumer(r, "outbound:ha", "senders", _never, wait_replicas=1, wait_timeout_ms=1500,
                                    block_ms=50, claim_idle_ms=60_000)
            stop = asyncio.Event()
            task = asyncio.create_task(sender.run(stop))
            deadline = time.monotonic() + 10
            while _short("read") == before["read"]:
                assert time.monotonic() < deadline, "the read shortfall was not reported"
                await asyncio.sleep(0.05)
            stop.set()
            await task
        assert {op: _short(op) - before[op] for op in before} == {"intake": 1, "commit": 1, "read": 1}
        events = [(e["op"], e["stream"], e["replicas"], e["wanted"]) for e in logs if e["event"] == "redis.not_replicated"]
        assert events == [("intake", "inbound-ha", 0, 1), ("commit", "inbound-ha", 0, 1), ("read", "outbound:ha", 0, 1)]
        assert all(e["log_level"] == "warning" for e in logs if e["event"] == "redis.not_replicated")
        assert sender.processed == 0  # nothing acted on while only the master has it
    finally:
        await r.aclose()


async def _never(e: Any, fresh: bool) -> None:
    raise AssertionError("an entry no replica has must not be handled")
