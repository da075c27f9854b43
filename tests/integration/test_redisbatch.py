"""`bot.redisbatch.Batcher` on the real Redis: commands of concurrent tasks share round trips,
and each still gets its own reply or error — a failed command, a script Redis lost, a dropped
connection or a caller that gave up never touch the others' outcome."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from bot.redisbatch import Batcher, command
from tests.conftest import free_port

pytestmark = pytest.mark.redis


INCR_SCRIPT = "return redis.call('HINCRBY', KEYS[1], 'n', ARGV[1])"


async def test_concurrent_commands_share_round_trips_and_keep_their_replies(aredis: aioredis.Redis) -> None:
    b = Batcher(aredis)
    script = aredis.register_script(INCR_SCRIPT)
    got = await asyncio.gather(*(b.evalsha(script, [f"k{i % 5}"], [i]) for i in range(100)),
                               *(b.execute("HGETALL", f"h{i}") for i in range(20)))
    totals: dict[int, int] = {}
    for i, reply in enumerate(got[:100]):  # each key's counter grew by each call's own amount, in order
        totals[i % 5] = totals.get(i % 5, 0) + i
        assert reply == totals[i % 5]
    assert got[100:] == [{}] * 20
    assert b.commands == 120
    assert b.batches < 10  # the first alone, then the rest together


async def test_an_error_stays_with_its_command(aredis: aioredis.Redis) -> None:
    await aredis.set("plain", "x")
    b = Batcher(aredis)
    ok1, bad, ok2 = await asyncio.gather(b.execute("HSET", "h", "a", "1"), b.execute("HGETALL", "plain"),
                                         b.execute("HGETALL", "h"), return_exceptions=True)
    assert ok1 == 1
    assert isinstance(bad, ResponseError) and "WRONGTYPE" in str(bad)
    assert ok2 == {"a": "1"}


async def test_a_script_redis_lost_is_loaded_again(private: aioredis.Redis) -> None:
    b = Batcher(private)
    script = private.register_script(INCR_SCRIPT)
    assert await b.evalsha(script, ["k"], [1]) == 1
    await private.script_flush()  # as after a restart or a failover
    got = await asyncio.gather(*(b.evalsha(script, ["k"], [1]) for _ in range(10)))
    assert sorted(got) == list(range(2, 12))  # each ran exactly once
    await private.script_flush()
    assert await b.evalsha(script, ["k"], [1]) == 12  # alone, too


async def test_a_lost_connection_fails_every_command_and_loses_no_caller() -> None:
    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", decode_responses=True,
                             socket_connect_timeout=0.5, retry_on_error=[])
    b = Batcher(dead)
    try:
        got = await asyncio.wait_for(asyncio.gather(*(b.execute("HGETALL", f"h{i}") for i in range(5)),
                                                    return_exceptions=True), timeout=30)
        assert all(isinstance(x, (RedisConnectionError, OSError)) for x in got), got
    finally:
        await dead.aclose()


async def test_a_caller_that_gives_up_does_not_hold_up_the_others(aredis: aioredis.Redis) -> None:
    b = Batcher(aredis)
    gone = asyncio.ensure_future(b.execute("HSET", "h", "gone", "1"))
    gone.cancel()
    got = await asyncio.gather(b.execute("HSET", "h", "a", "1"), b.execute("HGETALL", "h"))
    assert got[0] == 1
    assert got[1]["a"] == "1"
    assert (await asyncio.gather(gone, return_exceptions=True))[0].__class__ is asyncio.CancelledError


async def test_a_connection_redis_closed_is_replaced(private: aioredis.Redis) -> None:
    own = aioredis.from_url(f"redis://127.0.0.1:{private.connection_pool.connection_kwargs['port']}/0",
                            decode_responses=True, client_name="batcher")
    try:
        b = Batcher(own)
        assert await b.execute("HSET", "h", "a", "1") == 1
        assert await private.client_kill_filter(_type="normal", skipme=True) >= 1  # Redis closes it
        got = await asyncio.gather(b.execute("HGETALL", "h"), b.execute("HSET", "h", "b", "2"))
        assert got == [{"a": "1"}, 1]
    finally:
        await own.aclose()


async def test_arguments_reach_redis_as_redis_py_sends_them(aredis: aioredis.Redis) -> None:
    b = Batcher(aredis)
    text = "密码? 🔑 \r\n$3\r\nnot a command"  # UTF-8, and bytes that look like the protocol
    await b.execute("HSET", "h", "text", text, "int", 7, "float", 0.25, "bytes", b"raw")
    raw = await aredis.hgetall("h")
    assert (raw["text"], raw["int"], raw["float"], raw["bytes"]) == (text, "7", "0.25", "raw")
    # An argument Redis cannot take fails its own command only.
    bad, ok = await asyncio.gather(b.execute("HSET", "h", "flag", True), b.execute("HGET", "h", "int"),
                                   return_exceptions=True)
    assert isinstance(bad, TypeError) and ok == "7"


async def test_a_consumer_read_gets_what_redis_py_gets(aredis: aioredis.Redis) -> None:
    await aredis.xgroup_create("s", "g", id="0", mkstream=True)
    ids = [await aredis.xadd("s", {"m": f"text {i}", "c": "conv"}) for i in range(3)]
    lean = await command(aredis, "XREADGROUP", "GROUP", "g", "c1", "COUNT", 2, "BLOCK", 100, "STREAMS", "s", ">")
    plain = await aredis.xreadgroup("g", "c2", {"s": ">"}, count=2, block=100)
    assert [e[0] for e in lean[0][1]] == ids[:2] and lean[0][1][0][1] == {"m": "text 0", "c": "conv"}
    assert [e[0] for e in plain[0][1]] == ids[2:]
    assert type(lean) is type(plain) and type(lean[0][1][0]) is type(plain[0][1][0])
    assert await command(aredis, "XREADGROUP", "GROUP", "g", "c1", "COUNT", 2, "BLOCK", 50, "STREAMS", "s", ">") in (None, [])


async def test_a_read_cancelled_while_it_blocks_leaves_no_reply_behind(aredis: aioredis.Redis) -> None:
    await aredis.xgroup_create("s", "g", id="0", mkstream=True)
    t = asyncio.ensure_future(command(aredis, "XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "BLOCK", 5000,
                                      "STREAMS", "s", ">"))
    await asyncio.sleep(0.2)
    t.cancel()  # a consumer stopping mid-BLOCK
    await asyncio.gather(t, return_exceptions=True)
    eid = await aredis.xadd("s", {"m": "after"})
    # Whatever connection the pool hands out next answers its own command, not the old read.
    assert await command(aredis, "HSET", "h", "a", "1") == 1
    got = await command(aredis, "XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "STREAMS", "s", ">")
    assert got[0][1][0][0] == eid
