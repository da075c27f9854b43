"""The inbound queue on the real Redis: dedupe, exactly-once commit, order, dead letters, trim."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot.models import Message
from bot.queue import Output, Present, Queue
from tests.conftest import make_settings

pytestmark = pytest.mark.redis


def msg(cmid: str, conv: str = "web:s1", text: str = "hi") -> Message:
    return Message(channel="web", channel_message_id=cmid, conversation_id=conv, user_id="s1", text=text)


@pytest.fixture
async def queue(aredis: aioredis.Redis) -> Queue:
    q = Queue(aredis, make_settings().queue)
    await q.ensure_group()
    return q


async def test_same_channel_message_id_is_queued_once(queue: Queue, aredis: aioredis.Redis) -> None:
    first = await queue.publish(msg("tg-1001"))
    again = await queue.publish(msg("tg-1001", text="hi (resent by the channel)"))
    assert first is not None and again is None
    assert await aredis.xlen("inbound") == 1


async def test_commit_is_exactly_once_and_acks(queue: Queue, aredis: aioredis.Redis) -> None:
    await queue.publish(msg("a"))
    [e] = await queue.read("w1", 10, None)
    out = [Output("outbound:web", '{"reply":1}')]
    assert await queue.commit(e, {"fallbacks": "0"}, out) == 1
    # The same entry delivered again (e.g. claimed by another worker) commits nothing.
    assert await queue.commit(e, {"fallbacks": "0"}, out) == 0
    assert await aredis.xlen("outbound:web") == 1
    assert await queue.pending_count() == 0


async def test_messages_of_a_conversation_commit_only_in_order(queue: Queue, aredis: aioredis.Redis) -> None:
    for i in range(3):
        await queue.publish(msg(f"m{i}"))
    e1, e2, e3 = await queue.read("w1", 10, None)
    assert await queue.commit(e2, {}, [Output("outbound:web", "2")]) == -1  # m1 not done yet
    assert await queue.commit(e1, {}, [Output("outbound:web", "1")]) == 1
    assert await queue.commit(e2, {}, [Output("outbound:web", "2")]) == 1
    assert await queue.commit(e3, {}, [Output("outbound:web", "3")]) == 1
    got = [f["d"] for _, f in await aredis.xrange("outbound:web")]
    assert got == ["1", "2", "3"]


async def test_other_conversations_are_not_held_up(queue: Queue) -> None:
    await queue.publish(msg("x1", conv="web:A"))
    await queue.publish(msg("y1", conv="web:B"))
    a, b = await queue.read("w1", 10, None)
    assert await queue.commit(b, {}, []) == 1
    assert await queue.commit(a, {}, []) == 1


async def test_entries_of_a_dead_worker_are_claimed(queue: Queue) -> None:
    await queue.publish(msg("z"))
    [e] = await queue.read("dead-worker", 10, None)
    assert await queue.autoclaim("alive", 10, min_idle_ms=60_000) == []  # not idle long enough
    claimed = await queue.autoclaim("alive", 10, min_idle_ms=0)
    assert [c.id for c in claimed] == [e.id]


async def test_failures_dead_letter_after_max_attempts_and_replay(queue: Queue, aredis: aioredis.Redis) -> None:
    await queue.publish(msg("bad", text="boom"))
    await queue.publish(msg("next", text="after"))
    e, e2 = await queue.read("w1", 10, None)
    await queue.dead_letter(e, "ValueError: boom", 3)  # what the stream consumer does after max_attempts
    [dead] = await queue.dead_letters()
    assert dead.fields["error"] == "ValueError: boom" and dead.fields["attempts"] == "3"
    # The conversation is not blocked by the dead message.
    assert await queue.commit(e2, {}, []) == 1
    assert await queue.pending_count() == 0
    assert await queue.replay() == 1
    assert await queue.dead_letters() == []
    [again] = await queue.read("w1", 10, None)
    assert Message.from_json(again.fields["m"]).text == "boom"
    assert await queue.commit(again, {}, []) == 1


async def test_trim_never_drops_unacknowledged_entries(queue: Queue, aredis: aioredis.Redis) -> None:
    for i in range(10):
        await queue.publish(msg(f"t{i}", conv=f"web:{i}"))
    entries = await queue.read("w1", 10, None)
    for e in entries[:3]:
        await queue.commit(e, {}, [])
    queue.s = queue.s.model_copy(update={"retention_s": 0})
    removed = await queue.trim()
    assert removed == 3
    left = {eid for eid, _ in await aredis.xrange("inbound")}
    assert left == {e.id for e in entries[3:]}
    # Acked out of order: entry 5 done, 3 and 4 pending → nothing past 3 may go.
    await queue.commit(entries[5], {}, [])
    await queue.trim()
    assert {eid for eid, _ in await aredis.xrange("inbound")} >= {e.id for e in entries[3:5]}


async def test_a_key_that_must_not_exist_stops_the_intake_and_the_writes_before_it_still_happen(
    queue: Queue, aredis: aioredis.Redis
) -> None:
    """`publish(absent=…, before=…)`: a channel's bookkeeping and the queueing in one round trip,
    on the condition that some keys do not exist (a Telegram private message with a linked group
    conversation or held replies takes its slower path instead). Nothing is stored or counted
    then, and the message is queued afterwards as usual."""
    before = (("HSET", "marks", "u1", "1"),)
    with pytest.raises(Present) as raised:
        await aredis.set("link:u1", "telegram:-100")
        await queue.publish(msg("tg-2001"), absent=("held:u1", "link:u1"), before=before, rate_per_minute=1)
    assert raised.value.index == 1
    assert await aredis.hget("marks", "u1") == "1"
    assert await aredis.xlen("inbound") == 0
    await aredis.delete("link:u1", "marks")
    # Not counted against the sender's limit, not marked as seen: the same message goes through.
    entry = await queue.publish(msg("tg-2001"), absent=("held:u1", "link:u1"), before=before, rate_per_minute=1)
    assert entry is not None and await aredis.xlen("inbound") == 1
    assert await aredis.hget("marks", "u1") == "1"


async def test_writes_before_the_intake_survive_a_script_redis_lost(private: aioredis.Redis) -> None:
    """Redis restarted without its scripts: the intake loads its script and runs the round trip
    again (the writes before it are idempotent), the message is queued once."""
    q = Queue(private, make_settings().queue)
    await q.ensure_group()
    assert await q.publish(msg("tg-2101")) is not None
    await private.script_flush()
    entry = await q.publish(msg("tg-2102"), before=(("HINCRBY", "marks", "n", "1"),), absent=("held:x",))
    assert entry is not None and await private.xlen("inbound") == 2
    assert int(await private.hget("marks", "n")) in (1, 2)
