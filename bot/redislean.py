"""Pipelined connections for the once-per-message Redis round trips (`bot.redisbatch`).

redis-py's asyncio connection spends about 110 µs of CPU on a round trip that costs the socket
about 50 (measured on this 2-core machine: 170 against 55 µs for four packed commands, the same
write and read): each call checks a connection out of the pool under its lock, health-checks it,
reads through `asyncio.StreamReader` under `asyncio.timeout`, and dispatches events on release.
A message crosses five of these round trips in a Telegram web role (intake, the router's read
and commit, the sender's read and record), so that was a sixth of the process's CPU.

Here a connection redis-py has opened and set up (address, Sentinel's master lookup, TLS, AUTH,
SELECT, client name: all redis-py's own code) is taken out of its pool, and its socket is then
driven by an `asyncio.Protocol` that parses with hiredis — the parser redis-py itself uses:
commands are written as they come, and replies are handed out in the order they arrive. One
such connection carries every non-blocking command of the client and event loop, concurrently;
blocking ones (`XREADGROUP … BLOCK`, `WAIT`) each get one of their own while they block, and a
subscriber (`listen`: the widget's wake-ups) one for as long as it listens.

What the caller sees is what redis-py gives: the same reply types, the same error classes (a
`ResponseError` in place of a command's reply), `redis.exceptions.ConnectionError` when the
connection fails (every command on it fails; the next call connects again) and `TimeoutError`
after the client's `socket_timeout`. A reply that means the server is no longer the master
(`READONLY`, `MASTERDOWN`, `UNBLOCKED`, `LOADING`) drops the connection, so the next call asks
redis-py again (Sentinel: the new master).

Replies are RESP2 or RESP3, as redis-py negotiated (hiredis reads both). `lean(r)` is None where
this does not apply — a Redis Cluster client, a connection whose transport cannot be taken over — and the callers then use redis-py's own
connections as before.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis.exceptions import BusyLoadingError, MasterDownError, ReadOnlyError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.logs import get_logger

log = get_logger("switchboard.redislean")

# Commands that may hold their connection (Redis answers them later): never on the shared one.
BLOCKING = frozenset({"WAIT", "WAITAOF", "XREAD", "XREADGROUP", "BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH",
                      "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "SUBSCRIBE", "PSUBSCRIBE", "MONITOR"})
_KEEP_IDLE = 8  # blocking connections kept for reuse; more are closed when their call ends
_FAILOVER = (ReadOnlyError, MasterDownError, BusyLoadingError)
_MORE = object()  # hiredis: no complete reply buffered yet
_PUSH = getattr(hiredis, "PushNotification", None)
_PING = b"*1\r\n$4\r\nPING\r\n"


def _failover_reply(rep: Any) -> bool:
    return isinstance(rep, _FAILOVER) or (isinstance(rep, ResponseError) and str(rep).startswith("UNBLOCKED"))


class _Pipe(asyncio.Protocol):
    """One taken-over connection: writes go out at once, replies are matched to waiters in order."""

    def __init__(self, owner: Lean, conn: Any, transport: asyncio.WriteTransport, old: asyncio.BaseProtocol) -> None:
        enc = conn.encoder
        kwargs: dict[str, Any] = {"protocolError": RedisConnectionError, "replyError": BaseParser.parse_error,
                                  "notEnoughData": _MORE}
        if enc.decode_responses:
            kwargs.update(encoding=enc.encoding, errors=enc.encoding_errors)
        self.reader = hiredis.Reader(**kwargs)
        self.owner = owner
        self.conn = conn  # redis-py's connection object: it closes the socket at the pool's aclose()
        self.transport = transport
        self._old = old
        self.waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.closed = False
        self._error: BaseException | None = None
        self.timeout: float | None = getattr(conn, "socket_timeout", None)  # redis-py's read timeout
        self.on_push: Callable[[list[Any]], None] | None = None  # set: this is a subscriber (`Lean.listen`)
        self.lost: asyncio.Future[None] | None = None  # a subscriber's: fails when the connection does
        self.last_data = time.monotonic()  # when the last bytes came (a subscriber's health check)

    def _push(self, rep: Any) -> None:
        assert self.on_push is not None
        try:
            self.on_push(rep)
        except Exception as exc:  # noqa: BLE001 - one bad message must not end the subscription
            log.error("redislean.subscriber_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    # -- asyncio.Protocol ---------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.last_data = time.monotonic()
        self.reader.feed(data)
        waiters = self.waiters
        try:
            while True:
                rep = self.reader.gets()
                if rep is _MORE:
                    return
                if self.on_push is not None:  # a subscriber: every reply is a message or a confirmation
                    self._push(rep)
                    continue
                if _PUSH is not None and isinstance(rep, _PUSH):
                    continue  # RESP3 out-of-band data (none is subscribed here): not a reply
                if not waiters:  # a reply nobody asked for: the stream is out of step
                    raise RedisConnectionError("Redis sent a reply no command was waiting for")
                fut = waiters.popleft()
                if not fut.done():  # a caller that gave up: its reply is read and dropped
                    fut.set_result(rep)
        except Exception as exc:  # noqa: BLE001 - a protocol error: nothing more can be matched
            self.abort(exc if isinstance(exc, RedisConnectionError) else RedisConnectionError(str(exc)))

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(self._error or RedisConnectionError(
            f"Connection closed by server.{f' ({exc})' if exc else ''}"))
        try:
            self._old.connection_lost(exc)  # redis-py's stream protocol: its wait_closed() returns
        except Exception:  # noqa: BLE001 - only bookkeeping of a connection that is gone
            pass

    # -- ours -----------------------------------------------------------------------------------------
    def request(self, data: bytes, n: int) -> list[asyncio.Future[Any]]:
        if self.closed:
            raise self._error or RedisConnectionError("Connection closed.")
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(n)]
        self.waiters.extend(futs)
        self.transport.write(data)
        return futs

    def _fail(self, exc: BaseException) -> None:
        if not self.closed:
            self.closed = True
            self._error = exc
            self.owner.dropped(self)
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)
        if self.lost is not None and not self.lost.done():
            self.lost.set_exception(exc)

    def expire(self) -> None:
        """No reply within the client's socket_timeout: the connection is given up, as redis-py
        gives up a read (every command still waiting on it fails with a TimeoutError)."""
        if not self.closed:
            self.abort(RedisTimeoutError("Timeout reading from Redis"))

    def abort(self, exc: BaseException) -> None:
        """Close the connection: every command still waiting on it fails with `exc`."""
        self._fail(exc)
        self.transport.abort()


class Lean:
    """The lean connections of one client (its pool) on one event loop; see the module docstring."""

    def __init__(self, r: aioredis.Redis, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = r.connection_pool
        self.loop = loop
        self._shared: _Pipe | None = None
        self._connecting: asyncio.Future[_Pipe] | None = None
        self._idle: list[_Pipe] = []  # blocking connections free for the next blocking call
        self._dead: list[Any] = []  # redis-py connections to give back to the pool
        self.usable = True
        self.connects = 0  # for tests: connections taken over so far

    async def _connect(self) -> _Pipe:
        await self._give_back()
        conn = await self.pool.get_connection()
        writer = getattr(conn, "_writer", None)
        reader = getattr(conn, "_reader", None)
        transport = getattr(writer, "transport", None)
        if transport is None or not hasattr(transport, "set_protocol") or bool(getattr(reader, "_buffer", None)):
            # Not a connection this module knows how to drive: stay on redis-py's path for good.
            self.usable = False
            await self.pool.release(conn)
            log.info("redislean.unavailable", connection=type(conn).__name__)
            raise _Unusable
        old = transport.get_protocol()
        pipe = _Pipe(self, conn, transport, old)
        transport.set_protocol(pipe)
        self.connects += 1
        return pipe

    async def _shared_pipe(self) -> _Pipe:
        pipe = self._shared
        if pipe is not None and not pipe.closed:
            return pipe
        if self._connecting is None:  # one connect for all who need it now
            self._connecting = fut = self.loop.create_future()
            try:
                pipe = await self._connect()
            except BaseException as exc:
                fut.set_exception(exc)
                fut.exception()  # retrieved: nobody else may be waiting
                raise
            finally:
                self._connecting = None
            self._shared = pipe
            fut.set_result(pipe)
            return pipe
        return await asyncio.shield(self._connecting)

    def dropped(self, pipe: _Pipe) -> None:
        if self._shared is pipe:
            self._shared = None
        if pipe in self._idle:
            self._idle.remove(pipe)
        self._dead.append(pipe.conn)

    async def _give_back(self) -> None:
        """Connections that failed go back to redis-py's pool, closed (it opens them again)."""
        while self._dead:
            conn = self._dead.pop()
            try:
                await conn.disconnect(nowait=True)
            finally:
                await self.pool.release(conn)

    async def listen(self, channels: tuple[str, ...], on_message: Callable[[str, Any], None],
                     on_subscribed: Callable[[], None]) -> None:
        """Subscribe to `channels` on a connection of their own and call `on_message(channel,
        data)` for each message, `on_subscribed()` once Redis confirmed the subscription; returns
        only by raising — `ConnectionError` when the connection fails (the caller subscribes
        again), or the cancellation that stops it (the connection is closed). A subscriber only
        reads, so a connection that died without a word (a partition, a frozen server) would
        never tell: it is PINGed every `health_check_interval` seconds of silence (the client's,
        as redis-py's PubSub does) and given up when two intervals pass without a byte."""
        interval = float(self.pool.connection_kwargs.get("health_check_interval") or 30)
        pipe = await self._connect()
        pipe.lost = lost = self.loop.create_future()
        pending = set(channels)

        def push(rep: Any) -> None:
            if not isinstance(rep, list) or len(rep) < 3:
                return
            kind = rep[0].decode() if isinstance(rep[0], bytes) else rep[0]
            if kind == "message":
                on_message(rep[1], rep[2])
            elif kind == "subscribe":
                pending.discard(rep[1].decode() if isinstance(rep[1], bytes) else rep[1])
                if not pending:
                    on_subscribed()

        pipe.on_push = push
        pipe.transport.write(pack(("SUBSCRIBE", *channels)))
        try:
            while True:
                done, _ = await asyncio.wait({lost}, timeout=interval)
                if done:
                    lost.result()  # raises the connection's failure
                silent = time.monotonic() - pipe.last_data
                if silent > 2 * interval:
                    pipe.abort(RedisConnectionError(f"no answer from Redis for {silent:.0f} s (subscriber)"))
                elif silent >= interval:
                    pipe.transport.write(_PING)
        finally:
            if not pipe.closed:
                pipe.abort(RedisConnectionError("unsubscribed"))

    async def exchange(self, packed: bytes, n: int, *, blocking: bool) -> list[Any]:
        """`n` commands already packed in RESP, in one write; their replies in order (a command's
        error reply in its place)."""
        if blocking:
            return await self._exchange_alone(packed, n)
        pipe = self._shared
        if pipe is None or pipe.closed:
            pipe = await self._shared_pipe()
        return await self._replies(pipe, packed, n)

    async def _exchange_alone(self, packed: bytes, n: int) -> list[Any]:
        """Commands that may block, on a connection of their own while they do."""
        pipe = self._idle.pop() if self._idle else await self._connect()
        try:
            replies = await self._replies(pipe, packed, n)
        except BaseException as exc:
            # Cancelled while blocking, or failed: a reply may still come; nobody else may read it.
            if not pipe.closed:
                pipe.abort(RedisConnectionError(f"closed: {type(exc).__name__}"))
            raise
        if not pipe.closed:
            if len(self._idle) < _KEEP_IDLE:
                self._idle.append(pipe)
            else:
                pipe.abort(RedisConnectionError("closed: more idle connections than kept"))
        return replies

    async def _replies(self, pipe: _Pipe, packed: bytes, n: int) -> list[Any]:
        """Send on `pipe` and wait for the `n` replies, at most the client's socket_timeout (as
        redis-py reads: one timer, no timeout context); a reply saying the server is no longer the
        master closes `pipe`."""
        futs = pipe.request(packed, n)
        timer = self.loop.call_later(pipe.timeout, pipe.expire) if pipe.timeout else None
        try:
            replies = await _collect(futs)
        finally:
            if timer is not None:
                timer.cancel()
        _check_master(pipe, replies)
        return replies


def _check_master(pipe: _Pipe, replies: list[Any]) -> None:
    for rep in replies:
        if isinstance(rep, ResponseError) and _failover_reply(rep):
            # The server is no longer the master: the next call connects again through redis-py
            # (with Sentinel, to the new master).
            pipe.abort(RedisConnectionError(f"Redis is no longer the master: {rep}"))
            return


class _Unusable(Exception):
    pass


async def _collect(futs: list[asyncio.Future[Any]]) -> list[Any]:
    try:
        return [await f for f in futs]
    except BaseException:
        for f in futs:  # the caller gave up (or the connection failed): their replies are dropped
            f.cancel()
        raise


def lean(r: Any) -> Lean | None:
    """The lean connections of client `r` on the running loop, or None (use redis-py's path)."""
    pool = getattr(r, "connection_pool", None)
    if pool is None:
        return None
    got: Lean | None = getattr(pool, "_switchboard_lean", None)
    loop = asyncio.get_running_loop()
    if got is None or got.loop is not loop:
        got = Lean(r, loop)
        setattr(pool, "_switchboard_lean", got)  # noqa: B010 - kept on the pool: one per client, gone with it
    return got if got.usable else None


def pack(args: tuple[Any, ...]) -> bytes:
    """A command in RESP — `*<n>`, then `$<len>` and the bytes of each argument — with its
    arguments encoded as redis-py encodes them (UTF-8 text, numbers as their repr, bytes as they
    are; a bool or anything else is refused with a TypeError). hiredis packs it (redis-py's own
    packer with hiredis installed: a third of the CPU of doing it in Python, for the commit's few
    kilobytes); an int or float subclass (an IntEnum) hiredis refuses is packed here."""
    try:
        return hiredis.pack_command(args if args.__class__ is tuple else tuple(args))
    except TypeError:
        pass
    parts = [b"*%d\r\n" % len(args)]
    for v in args:
        if isinstance(v, bool) or not isinstance(v, str | bytes | memoryview | int | float):
            raise TypeError(f"{type(v).__name__} is not a Redis argument")
        if isinstance(v, str):
            b = v.encode()
        elif isinstance(v, bytes | memoryview):
            b = bytes(v)
        else:  # the number's own digits, not an enum's repr
            b = repr(int(v) if isinstance(v, int) else float(v)).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(b), b))
    return b"".join(parts)


async def listen(r: Any, channels: tuple[str, ...], on_message: Callable[[str, Any], None],
                 on_subscribed: Callable[[], None]) -> bool:
    """`Lean.listen` on `r`'s lean connections; False at once when `r` has none (then use
    redis-py's `PubSub`)."""
    ln = lean(r)
    if ln is None:
        return False
    try:
        await ln.listen(channels, on_message, on_subscribed)
    except _Unusable:
        return False
    return True  # pragma: no cover - listen returns only by raising


async def exchange(r: Any, packed: bytes, n: int, *, blocking: bool) -> list[Any] | None:
    """`Lean.exchange` on `r`'s lean connections; None when `r` has none (see `lean`)."""
    ln = lean(r)
    if ln is None:
        return None
    try:
        return await ln.exchange(packed, n, blocking=blocking)
    except _Unusable:
        return None
