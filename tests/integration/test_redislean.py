"""`bot.redislean` on real redis-servers: the hot path's Redis round trips share one pipelined
connection per client, and still behave as redis-py's own connections do — each caller its own
reply, a restart or a hung server an error for what was on the wire and a new connection for the
next call, the URL's password and database honoured, a demoted master left, TLS checked, nothing left open."""

from __future__ import annotations

import asyncio
import enum
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import trustme
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import redislean
from bot.redisbatch import command, roundtrip
from tests.conftest import free_port
from tests.integration.test_faults import PrivateRedis, redis_binary

pytestmark = pytest.mark.redis


@pytest.fixture
def server() -> Iterator[PrivateRedis]:
    rs = PrivateRedis()
    rs.start()
    yield rs
    rs.stop()
    shutil.rmtree(rs.dir, ignore_errors=True)


def _client(rs: PrivateRedis, **kw: object) -> aioredis.Redis:
    return aioredis.from_url(f"redis://127.0.0.1:{rs.port}/0", decode_responses=True, **kw)


async def _names(rs: PrivateRedis) -> list[str]:
    admin = _client(rs)
    try:
        return [c.get("name", "") for c in await admin.client_list()]
    finally:
        await admin.aclose()


async def test_concurrent_callers_share_one_connection_and_each_gets_its_own_reply(server: PrivateRedis) -> None:
    r = _client(server, client_name="lean")
    try:
        got = await asyncio.gather(*(roundtrip(r, [("SET", f"k{i}", i), ("INCRBY", f"k{i}", i), ("HSET", f"h{i}", "v", i),
                                                   ("HGET", f"h{i}", "v")]) for i in range(300)))
        assert got == [[True, 2 * i, 1, str(i)] for i in range(300)]  # each caller's own replies
        lean = redislean.lean(r)
        assert lean is not None and lean.connects == 1, "the hot path is not on the lean connection"
        assert (await _names(server)).count("lean") == 1  # one socket for all 300 callers
    finally:
        await r.aclose()
    assert "lean" not in await _names(server)  # aclose() closed it too


async def test_a_caller_that_gives_up_never_gets_or_steals_a_reply(server: PrivateRedis) -> None:
    r = _client(server)
    # Busy for 300 ms of Redis's own clock: the caller surely gives up before its reply comes.
    slow = ("local t = redis.call('TIME'); local s = t[1] * 1e6 + t[2]; local n "
            "repeat n = redis.call('TIME') until n[1] * 1e6 + n[2] - s > 300000 return 'slow'")
    try:
        await roundtrip(r, [("SET", "x", "1")])
        t = asyncio.ensure_future(roundtrip(r, [("EVAL", slow, 0)]))
        await asyncio.sleep(0.05)
        after = asyncio.ensure_future(roundtrip(r, [("GET", "x")]))  # queued behind the slow script
        await asyncio.sleep(0.01)
        t.cancel()
        assert await after == ["1"]  # its own reply, not the script's
        assert (await asyncio.gather(t, return_exceptions=True))[0].__class__ is asyncio.CancelledError
        assert await roundtrip(r, [("INCR", "y")]) == [1]
    finally:
        await r.aclose()


async def test_a_restart_fails_what_was_on_the_wire_and_the_next_call_connects_again(server: PrivateRedis) -> None:
    r = _client(server)
    try:
        assert await roundtrip(r, [("SET", "kept", "1")]) == [True]
        await asyncio.to_thread(server.stop)
        with pytest.raises((RedisConnectionError, OSError)):
            await roundtrip(r, [("GET", "kept")])
        await asyncio.to_thread(server.start)
        assert await roundtrip(r, [("GET", "kept")]) == ["1"]  # from the AOF, on a new connection
        assert await command(r, "INCR", "n") == 1
    finally:
        await r.aclose()


async def test_a_server_that_stops_answering_times_out_and_is_left(server: PrivateRedis) -> None:
    r = _client(server, socket_timeout=0.5)
    try:
        await roundtrip(r, [("SET", "a", "1")])
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            got = await asyncio.gather(roundtrip(r, [("GET", "a")]), roundtrip(r, [("GET", "b")]),
                                       return_exceptions=True)
            assert all(isinstance(g, RedisTimeoutError) for g in got), got
            assert time.monotonic() - t0 < 5
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        assert await roundtrip(r, [("GET", "a")]) == ["1"]
        lean = redislean.lean(r)
        assert lean is not None and lean.connects == 2
    finally:
        await r.aclose()


async def test_the_urls_password_and_database_are_honoured(server: PrivateRedis) -> None:
    rs = server
    admin = _client(rs)
    try:
        await admin.config_set("requirepass", "s3cret")
        r = aioredis.from_url(f"redis://:s3cret@127.0.0.1:{rs.port}/3", decode_responses=True)
        try:
            assert await roundtrip(r, [("SET", "where", "db3"), ("GET", "where")]) == [True, "db3"]
        finally:
            await r.aclose()
        check = aioredis.from_url(f"redis://:s3cret@127.0.0.1:{rs.port}/0", decode_responses=True)
        try:
            assert await check.get("where") is None
            await check.execute_command("SELECT", 3)  # same connection: the pool has one idle
            assert await check.get("where") == "db3"
        finally:
            await check.aclose()
        bad = aioredis.from_url(f"redis://:wrong@127.0.0.1:{rs.port}/0", decode_responses=True)
        try:
            with pytest.raises(Exception, match="(?i)password|auth"):
                await roundtrip(bad, [("GET", "where")])
        finally:
            await bad.aclose()
    finally:
        await admin.aclose()


async def test_a_demoted_master_is_left_for_a_new_connection(server: PrivateRedis) -> None:
    other = PrivateRedis()
    other.start()
    r = _client(server)
    admin = _client(server)
    try:
        await roundtrip(r, [("SET", "a", "1")])
        await admin.execute_command("REPLICAOF", "127.0.0.1", other.port)  # as a failover demotes it
        (got,) = await roundtrip(r, [("SET", "a", "2")])
        assert isinstance(got, ReadOnlyError)
        await admin.execute_command("REPLICAOF", "NO", "ONE")
        await roundtrip(r, [("SET", "a", "3")])
        lean = redislean.lean(r)
        assert lean is not None and lean.connects == 2  # the READONLY reply closed the first one
    finally:
        await r.aclose()
        await admin.aclose()
        other.stop()
        shutil.rmtree(other.dir, ignore_errors=True)


async def test_a_blocking_read_does_not_hold_up_other_commands(server: PrivateRedis) -> None:
    r = _client(server)
    try:
        await r.xgroup_create("s", "g", id="0", mkstream=True)
        read = asyncio.ensure_future(command(r, "XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "BLOCK", 3000,
                                             "STREAMS", "s", ">"))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        assert await roundtrip(r, [("SET", "k", "v"), ("GET", "k")]) == [True, "v"]
        assert time.monotonic() - t0 < 1.0 and not read.done()
        eid = await command(r, "XADD", "s", "*", "m", "x")
        got = await read
        assert got[0][1][0][0] == eid
    finally:
        await r.aclose()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server that speaks TLS only, with a certificate from a private CA: (port, CA file)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    port = free_port()
    proc = subprocess.Popen(
        [redis_binary(), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--tls-cert-file", str(tmp_path / "cert.pem"), "--tls-key-file", str(tmp_path / "key.pem"),
         "--tls-ca-cert-file", str(tmp_path / "ca.pem"), "--tls-auth-clients", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.02)
        yield port, tmp_path / "ca.pem"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_tls_with_the_servers_certificate_checked(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    url = f"rediss://127.0.0.1:{port}/0"
    r = aioredis.from_url(url, decode_responses=True, ssl_ca_certs=str(ca))
    try:
        got = await asyncio.gather(*(roundtrip(r, [("SET", f"k{i}", i), ("GET", f"k{i}")]) for i in range(50)))
        assert got == [[True, str(i)] for i in range(50)]
        lean = redislean.lean(r)
        assert lean is not None and lean.connects == 1  # the TLS socket, taken over
    finally:
        await r.aclose()
    untrusted = aioredis.from_url(url, decode_responses=True)  # the system's CAs: not ours
    try:
        with pytest.raises(RedisConnectionError, match="(?i)certificate"):
            await roundtrip(untrusted, [("SET", "never", "1")])
    finally:
        await untrusted.aclose()


async def test_a_subscriber_gets_every_message_in_order_and_learns_when_it_is_cut_off(server: PrivateRedis) -> None:
    r = _client(server, client_name="sub")
    admin = _client(server)
    got: list[tuple[str, str]] = []
    subscribed = asyncio.Event()
    try:
        task = asyncio.ensure_future(redislean.listen(r, ("a", "b"), lambda ch, data: got.append((ch, data)),
                                                      subscribed.set))
        await asyncio.wait_for(subscribed.wait(), 5)  # both channels confirmed
        for i in range(200):
            await admin.publish("a" if i % 2 else "b", f"m{i}")
        for _ in range(100):
            if len(got) == 200:
                break
            await asyncio.sleep(0.02)
        assert got == [("a" if i % 2 else "b", f"m{i}") for i in range(200)]
        assert not task.done()
        await admin.client_kill_filter(_type="pubsub")  # Redis drops the subscriber
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(task, 5)
        # Subscribing again works; a cancelled subscriber leaves no connection behind.
        subscribed.clear()
        task = asyncio.ensure_future(redislean.listen(r, ("a",), lambda ch, data: got.append((ch, data)),
                                                      subscribed.set))
        await asyncio.wait_for(subscribed.wait(), 5)
        await admin.publish("a", "again")
        for _ in range(100):
            if got[-1] == ("a", "again"):
                break
            await asyncio.sleep(0.02)
        assert got[-1] == ("a", "again")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.1)
        assert "sub" not in await _names(server)
    finally:
        await r.aclose()
        await admin.aclose()


async def test_a_subscriber_whose_server_stops_answering_gives_up_and_an_idle_healthy_one_does_not(
    server: PrivateRedis,
) -> None:
    """A subscriber only reads: a connection that died without a word would never tell. It is
    PINGed after `health_check_interval` of silence and given up when nothing comes back."""
    r = _client(server, health_check_interval=0.3)
    subscribed = asyncio.Event()
    try:
        task = asyncio.ensure_future(redislean.listen(r, ("a",), lambda ch, data: None, subscribed.set))
        await asyncio.wait_for(subscribed.wait(), 5)
        await asyncio.sleep(1.5)  # five intervals of silence, PINGs answered
        assert not task.done()
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGSTOP)  # frozen: the socket stays open, nothing answers
        try:
            t0 = time.monotonic()
            with pytest.raises(RedisConnectionError, match="no answer"):
                await asyncio.wait_for(task, 10)
            assert time.monotonic() - t0 < 3
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
    finally:
        await r.aclose()


async def test_arguments_hiredis_does_not_pack_reach_redis_as_their_value(server: PrivateRedis) -> None:
    class Tier(enum.IntEnum):
        VIP = 3

    r = _client(server)
    try:
        assert await roundtrip(r, [("HSET", "h", "tier", Tier.VIP), ("HGET", "h", "tier")]) == [1, "3"]
        with pytest.raises(TypeError):
            await roundtrip(r, [("HSET", "h", "flag", True)])
    finally:
        await r.aclose()
