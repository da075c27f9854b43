"""Commands of concurrent tasks sent to Redis together: one round trip for many.

The router handles many messages at once (`router.concurrency`), and each ends in one `EVALSHA`
of the commit script (and, when its conversation had a message in flight, one `HGETALL` of the
conversation's state). Sent one by one, each pays redis-py's whole per-command path — pool
checkout, retry wrapper, observability hooks, packing a few kilobytes of arguments, a `write()`
and a read — about 0.06 ms of the router's CPU; sent together, packed here, about a third.

`Batcher.execute` queues a command and returns its reply. Commands queued in one turn of the
event loop go out together at its end, and those queued while a send is on the wire go together
in the next one (one write on one of the client's pooled connections, then the replies in
order): a lone message waits for nothing but that turn, and a busy router sends fewer, fuller
writes. Each command keeps its own reply or error (`ResponseError`; `NoScriptError`: the script is
loaded and that command sent again); a connection failure fails every command of its batch, as
it would have failed each of them alone, and the caller treats it as the outage it is (the
router's commit is idempotent: a retried commit of a message already committed is acknowledged
as a duplicate).

Only for commands that cannot block (never `XREADGROUP … BLOCK`, `WAIT`, `BLPOP`): they would hold
up every command behind them. Not for Redis Cluster (a pipeline there splits by node).
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from bot import redislean
from bot.logs import get_logger

log = get_logger("switchboard.redisbatch")

_Item = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class Batcher:
    """See the module docstring. One per client and event loop."""

    def __init__(self, r: aioredis.Redis, *, max_batch: int = 256) -> None:
        self.r = r
        self.max_batch = max_batch
        self._queued: list[_Item] = []
        self._sending = False
        self._task: asyncio.Task[None] | None = None  # the one sending (a reference keeps it alive)
        self._scripts: dict[str, str] = {}  # sha → source, to load a script Redis lost
        # counters, for tests and the bench: batches sent, commands sent
        self.batches = 0
        self.commands = 0

    async def execute(self, *args: Any) -> Any:
        """Send one command (execute_command arguments) and return its reply."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queued.append((args, fut))
        if not self._sending:
            self._sending = True
            self._task = loop.create_task(self._drain())
        return await fut

    async def evalsha(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """Run a registered script (`Redis.register_script`) by its sha."""
        self._scripts.setdefault(script.sha, script.script)
        return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)

    async def _drain(self) -> None:
        batch: list[_Item] = []
        try:
            while self._queued:
                batch = self._queued[:self.max_batch]
                del self._queued[:self.max_batch]
                await self._send(batch)
                batch = []
        except BaseException as exc:
            # Cancelled (a shutdown) or a bug: nobody may wait for a reply forever.
            for _, fut in batch + self._queued:
                if not fut.done():
                    fut.set_exception(ConnectionError(f"Redis batch not sent: {type(exc).__name__}"))
            self._queued.clear()
            if not isinstance(exc, Exception):
                raise
            log.error("redisbatch.failed", error=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            self._sending = False

    async def _send(self, batch: list[_Item]) -> None:
        live: list[tuple[tuple[Any, ...], asyncio.Future[Any], bytes]] = []
        for a, f in batch:
            if f.done():
                continue  # a waiter that was cancelled needs nothing
            try:
                live.append((a, f, redislean.pack(a)))
            except TypeError as e:  # an argument Redis cannot take: this command's own error
                f.set_exception(e)
        if not live:
            return
        self.batches += 1
        self.commands += len(live)
        try:
            replies = await self._roundtrip([(a[0], packed) for a, _, packed in live])
        except Exception as exc:
            # The connection failed: every command of the batch fails (and is retried by its
            # caller: an outage) as it would have alone.
            for _, f, _ in live:
                if not f.done():
                    f.set_exception(exc)
            return
        for (a, f, _), rep in zip(live, replies, strict=True):
            if isinstance(rep, NoScriptError) and a[0] == "EVALSHA" and a[1] in self._scripts:
                # Redis lost its scripts (a restart, a failover, SCRIPT FLUSH): the failed EVALSHA
                # wrote nothing; load the script and run this one again.
                try:
                    await self.r.script_load(self._scripts[a[1]])
                    rep = await self.r.execute_command(*a)
                except Exception as e:  # noqa: BLE001 - it becomes this command's error
                    rep = e
            if f.done():
                continue
            if isinstance(rep, Exception):
                f.set_exception(rep)
            else:
                f.set_result(rep)

    async def _roundtrip(self, commands: list[tuple[str, bytes]]) -> list[Any]:
        return await _exchange(self.r, commands)


async def roundtrip(r: aioredis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
    """`commands` (execute_command argument tuples) in one write (on the client's lean connection,
    `bot.redislean`), and their replies in order, a command's error reply (`ResponseError`,
    `NoScriptError`) in its place: what `pipeline(transaction=False).execute(raise_on_error=False)`
    returns, for about a third of redis-py's CPU (measured: 55 against 170 µs for four commands,
    the round trip included). A connection failure is raised as it is, not retried (redis-py's
    pipeline retries it): the caller decides. May block (`BLOCK`, `WAIT`): the connection is the
    call's own until the last reply. Not for Redis Cluster clients."""
    return await _exchange(r, [(c[0], redislean.pack(c)) for c in commands])


async def writes(r: aioredis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Idempotent writes of one step (a reply's record with its ack) in one round trip, in order,
    not a transaction, replies with errors in place: `roundtrip` on one Redis, a pipeline on a
    cluster (their keys live in several slots)."""
    if not isinstance(r, RedisCluster):
        return await roundtrip(r, commands)
    pipe = r.pipeline(transaction=False)
    for c in commands:
        pipe.execute_command(*c)
    return list(await pipe.execute(raise_on_error=False))


async def _exchange(r: aioredis.Redis, commands: list[tuple[str, bytes]]) -> list[Any]:
    """Packed commands (name, RESP bytes) in one write, and their replies (a command's error reply
    in its place). Packed here: redis-py's generic packing is most of its per-command cost for the
    commit's few kilobytes of arguments. Sent on the client's lean connection
    (`bot.redislean`: a blocking command on one of its own), else on one of redis-py's."""
    blocking = any(name in redislean.BLOCKING for name, _ in commands)
    raw = await redislean.exchange(r, b"".join(packed for _, packed in commands), len(commands), blocking=blocking)
    if raw is None:
        raw = await _pooled(r, commands)
    callbacks = r.response_callbacks
    replies: list[Any] = []
    for (name, _), rep in zip(commands, raw, strict=True):
        cb = callbacks.get(name)
        replies.append(rep if cb is None or isinstance(rep, ResponseError) else cb(rep))
    return replies


async def _pooled(r: aioredis.Redis, commands: list[tuple[str, bytes]]) -> list[Any]:
    """The raw replies of `commands` on one of redis-py's pooled connections (a client without
    lean connections), a command's error reply in its place."""
    pool = r.connection_pool
    conn = await pool.get_connection()
    try:
        await conn.send_packed_command([packed for _, packed in commands])
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except ResponseError as e:
                replies.append(e)
        return replies
    except BaseException:
        # Replies may be left unread: this connection must not serve anyone else.
        await conn.disconnect(nowait=True)
        raise
    finally:
        await pool.release(conn)


async def command(r: aioredis.Redis, *args: Any) -> Any:
    """One command (execute_command arguments), packed here, without redis-py's per-command
    wrappers (retry, observability hooks): for a consumer's `XREADGROUP`, once per message at the
    widget's pace. May block (`BLOCK`): it has its connection to itself. An error reply is raised
    (`ResponseError`); so is a connection error, as it is, for the caller's outage handling; not
    for Redis Cluster clients."""
    rep = (await _exchange(r, [(args[0], redislean.pack(args))]))[0]
    if isinstance(rep, ResponseError):
        raise rep
    return rep
