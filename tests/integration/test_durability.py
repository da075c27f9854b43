"""The intake contract with `redis.wait_replicas` on the real Redis (which has no replica): an
intake that no replica confirmed is refused — the channel is not acknowledged and sends again —
and the resend is still deduplicated. Partitions on one Redis keep every conversation's keys
under its partition's tag and answer it once."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot.models import Message
from bot.queue import Durability, Output, Queue
from bot.redisconn import NotReplicated
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
