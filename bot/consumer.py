"""The one Redis Streams consumer every worker uses: the router, each channel's outbound sender and
the handoff (tickets) worker.

It owns what every stream loop needs, so that no handler's failure can stop a stream:

- consumer-group reads (`XREADGROUP`), take-over of entries idle longer than `claim_idle_ms`
  (`XAUTOCLAIM`) and the group recreated when Redis lost it;
- handler outcomes as types: `None` (done, the consumer acknowledges), `ACKED` (the handler
  acknowledged it itself, e.g. inside a Lua commit), `AckWith(commands)` (the handler's last
  writes, the ack among them, which the consumer sends — with its next read when it can),
  `Retry(defer)` and `Permanent(reason)`;
- **any** exception that is not a transient outage counts an attempt. The attempt count is Redis's
  own delivery counter of the entry (`XPENDING`), read only on the failure path: a retry is a
  re-claim (`XCLAIM`), which increments it. After `max_attempts` the entry goes to
  `<stream>:dead` with the error, the handler and the attempt count, and is acknowledged;
- a transient outage (Redis, the database, the NLU, a channel's API: see `is_outage`) never
  counts and never dead-letters: the consumer backs off with the shared helper and tries the same
  entry again, holding it so no other worker takes it meanwhile;
- per-stream counters (processed, retried, dead-lettered, handler seconds) and a heartbeat for
  readiness (`last_loop` here, and a Redis hash that `/readyz` reads for consumers of other
  processes).

With `concurrency > 1` entries are handled in tasks (the router keeps its per-conversation order
on top, with the commit script of `bot.queue`); with 1 they are handled one after the other, in
stream order (the senders: replies go out in order).
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import metrics, redisbatch, streams
from bot.backoff import Backoff, delay_for
from bot.errors import TransientError
from bot.logs import get_logger
from bot.queue import Entry, _entries, ensure_group, report_not_replicated, trim_stream
from bot.redisconn import NotReplicated, is_cluster, one_slot, replicated

log = get_logger("switchboard.consumer")

HEARTBEATS = "consumers:heartbeat"  # hash "<stream>|<group>|<consumer>" → unix time of the last loop
HEARTBEAT_EVERY_S = 5.0
# A handler still working keeps its entry (see `StreamConsumer._keep_claimed`) for at most this many
# `claim_idle_ms`: one stuck longer is taken over, as if its worker had died.
KEEP_CLAIM_FOR = 10


@dataclass(frozen=True, slots=True)
class Retry:
    """Handle the entry again later. `defer`: seconds (None: back off by attempt). `count`: a
    failed attempt (dead-letters after max_attempts) or only a wait (e.g. for an earlier message
    of the same conversation), which never dead-letters."""

    defer: float | None = None
    count: bool = True
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Permanent:
    """The entry can never be handled (malformed, refused for good): dead-letter it now."""

    reason: str


@dataclass(frozen=True, slots=True)
class AckWith:
    """The handler is done but for these Redis writes, the entry's acknowledgement among them
    (idempotent, in order; e.g. a reply's record with its ack). The consumer sends them: with its
    next read when the entry was the last of a read (`StreamConsumer.defers`: one Redis, one entry
    at a time), so that a sender answering one message at a time makes one round trip fewer per
    reply; else at once. A failure of those writes leaves the entry pending, as a failed ack
    would: it is taken over later and its handler finds it done."""

    commands: tuple[tuple[Any, ...], ...]


class _Acked:
    def __repr__(self) -> str:
        return "ACKED"


ACKED: Final = _Acked()
"""The handler acknowledged the entry itself (atomically with its effects)."""

Outcome = None | _Acked | AckWith | Retry | Permanent
Handler = Callable[[Entry, bool], Awaitable[Outcome]]
"""`handler(entry, fresh)`: `fresh` is True on the entry's first delivery (read with `>`)."""
BatchHandler = Callable[[list[Entry]], Awaitable[list[Outcome]]]
"""`batch(entries)`: the outcomes of several freshly read entries handled together (e.g. in one
database transaction). When it raises, the entries are handled one by one with `handler`."""

_NOT_OUTAGES = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)


# A Redis failover in progress (cluster slot without a master, a demoted master, a replica still
# loading): it passes like a connection error, so it must not count against the entry. A Redis at
# `maxmemory` (`OOM command not allowed`) is an outage too: it refuses every write of every entry
# (and the dead letter itself) until memory is freed, so counting it would dead-letter good messages.
_REDIS_FAILOVER = (ClusterDownError, TryAgainError, SlotNotCoveredError, MasterDownError, ReadOnlyError,
                   BusyLoadingError, OutOfMemoryError)
# Replies of a master being demoted that redis-py leaves as a plain ResponseError: a blocked
# XREADGROUP released by the role change, and a WAIT that reached the old master.
_FAILOVER_REPLIES = ("UNBLOCKED", "WAIT cannot be used with replica")


def is_outage(exc: BaseException) -> bool:
    """A peer is down or slow (Redis, NLU, a channel's API, a socket): retried, never counted."""
    if isinstance(exc, TransientError | RedisConnectionError | RedisTimeoutError | TimeoutError):
        return True
    if isinstance(exc, _REDIS_FAILOVER):
        return True
    if isinstance(exc, ResponseError) and str(exc).startswith(_FAILOVER_REPLIES):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, _NOT_OUTAGES)


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


DeadLetter = Callable[[Entry, str, str, int], Awaitable[None]]
"""`on_dead(entry, error, handler, attempts)`: move the entry to the dead letters and ack it."""


class StreamConsumer:
    """Consumes one stream as one member of a consumer group; see the module docstring."""

    def __init__(
        self,
        redis: aioredis.Redis,
        stream: str,
        group: str,
        handler: Handler,
        *,
        handler_name: str | None = None,
        name: str | None = None,
        max_attempts: int = 5,
        claim_idle_ms: int = 30_000,
        block_ms: int = 1_000,
        batch: int = 50,
        concurrency: int = 1,
        retention_s: int | None = None,
        outage: Callable[[BaseException], bool] | None = None,
        on_dead: DeadLetter | None = None,
        gate: Callable[[], Awaitable[None]] | None = None,
        retry_base_s: float = 0.5,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
        batch_handler: BatchHandler | None = None,
        linger_s: float = 0.0,
    ) -> None:
        self.r = redis
        self.batch_handler = batch_handler
        # After a read of fewer than `batch` entries, wait this long before reading again, so that
        # a consumer nobody waits on (the reports recorder) handles entries in batches at any rate.
        self.linger_s = linger_s
        self.stream = stream
        self.group = group
        self.handler = handler
        self.handler_name: str = handler_name or str(getattr(handler, "__qualname__", repr(handler)))
        self.name = name or consumer_name()
        self.max_attempts = max_attempts
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = block_ms
        self.batch = batch
        self.concurrency = max(1, concurrency)
        self.retention_s = retention_s
        self._outage = outage
        self._on_dead = on_dead
        self._gate = gate
        self.retry_base_s = retry_base_s
        # Durability on failover: act on newly read entries only once `wait_replicas` replicas have
        # them (a WAIT after the read, on its connection; replication is in order, so this covers
        # the write that produced them). A reply is then never sent for a commit a failover loses.
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.dead_stream = streams.dead(stream)
        # counters of this process (the Prometheus ones are per stream across processes)
        self.processed = 0
        self.retried = 0
        self.dead_lettered = 0
        self.last_loop = 0.0  # time.time() of the last loop iteration
        self.running = False
        # entries handled in tasks (concurrency > 1) and the ones among them only waiting
        self.inflight: dict[str, asyncio.Task[None]] = {}
        self.waiting = 0
        self._retry_at: dict[str, tuple[float, Entry, bool, float]] = {}  # id → (due, entry, counted, defer)
        self._m_processed = metrics.PROCESSED.labels(stream)
        self._m_seconds = metrics.HANDLER_SECONDS.labels(stream)
        self._m_retried = metrics.RETRIES.labels(stream)
        self._m_dead = metrics.DEAD_LETTERS.labels(stream)
        self._m_outage = metrics.OUTAGES.labels(stream)
        self._stop: asyncio.Event = asyncio.Event()
        self._lean = not is_cluster(redis) and hasattr(redis, "connection_pool")
        # `AckWith` writes waiting for the next read, and whether the entry being handled is the
        # last of its read (its writes may wait for that read).
        self._deferred: list[tuple[Any, ...]] = []
        self._defer_this = False
        self.crashed = 0  # handler tasks (concurrency > 1) that raised, each logged with its traceback

    @property
    def defers(self) -> bool:
        """`AckWith` writes of a read's last entry ride with the next read (see `AckWith`)."""
        return self._lean and self.concurrency == 1 and self.wait_replicas <= 0

    # -- classification ---------------------------------------------------------------------------
    def outage(self, exc: BaseException) -> bool:
        return is_outage(exc) or (self._outage is not None and self._outage(exc))

    @property
    def heartbeat_field(self) -> str:
        return f"{self.stream}|{self.group}|{self.name}"

    # -- the loop ---------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None, *, burst: bool = False) -> None:
        """Consume until `stop` is set (or, with burst=True, until nothing is pending)."""
        self._stop = stop = stop or asyncio.Event()
        self.running = True
        self.last_loop = time.time()
        backoff = Backoff(cap=10.0)
        last_claim = 0.0
        last_trim = time.monotonic()
        last_beat = 0.0
        await self._until_up(lambda: ensure_group(self.r, self.stream, self.group), stop)
        try:
            own = await self._until_up(self._own_pending, stop)
            for e in own or []:
                await self._dispatch(e, fresh=False)
            while not stop.is_set():
                self.last_loop = now_wall = time.time()
                if now_wall - last_beat >= HEARTBEAT_EVERY_S:
                    last_beat = now_wall
                    await self._flush()
                    await self._beat(now_wall)
                if self._gate is not None:
                    # e.g. the router waits here while no NLU server answers (then it does not
                    # loop, and readiness says so)
                    await self._gate()
                room = self._room()
                if room <= 0:
                    await asyncio.wait(list(self.inflight.values()), timeout=0.05,
                                       return_when=asyncio.FIRST_COMPLETED)
                    continue
                fresh = False
                now = time.monotonic()
                try:
                    if self._deferred and (self._retry_at or now - last_claim >= self.claim_idle_ms / 2000
                                           or (self.retention_s is not None and now - last_trim > 10)):
                        await self._flush()  # before anything but the read they can ride with
                    entries = await self._due_retries(now, room)
                    if not entries and now - last_claim >= self.claim_idle_ms / 2000:
                        last_claim = now
                        entries = await self._autoclaim(room)
                    if not entries:
                        entries = await self._read(room, self._block_ms(burst, now))
                        fresh = True
                    if self.retention_s is not None and now - last_trim > 10:
                        last_trim = now
                        await trim_stream(self.r, self.stream, self.retention_s)
                except Exception as exc:
                    if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                        # The stream or group vanished (Redis restarted without persistence, a manual
                        # cleanup): recreate it and carry on rather than crash-looping.
                        log.warning("consumer.group_recreated", stream=self.stream, group=self.group)
                        await self._until_up(lambda: ensure_group(self.r, self.stream, self.group), stop)
                        continue
                    if not self.outage(exc):
                        raise
                    wait = backoff.next()
                    if backoff.n == 1:
                        log.warning("redis.unavailable", stream=self.stream, error=str(exc)[:200])
                    await self._sleep(wait)
                    continue
                backoff.reset()
                if not (fresh and len(entries) > 1 and self.concurrency == 1 and await self._batch(entries)):
                    last = len(entries) - 1
                    for i, e in enumerate(entries):
                        if stop.is_set():  # stop promptly; the rest is released to the next consumer
                            await self._release([x.id for x in entries[i:]])
                            break
                        self._defer_this = fresh and i == last and self.defers and not stop.is_set()
                        await self._dispatch(e, fresh=fresh)
                    self._defer_this = False
                    if fresh and entries and self.concurrency > 1:
                        # The handlers were started as tasks: let them take their first steps
                        # (the router's NLU request) before this loop sends its next read.
                        await asyncio.sleep(0)
                if fresh and entries and self.linger_s and len(entries) < self.batch and not burst:
                    await self._flush()
                    await self._sleep(self.linger_s)
                if not entries:
                    if burst and not self.inflight and not self._retry_at:
                        if await self._pending() == 0:
                            break
                        await self._sleep(min(0.2, self.claim_idle_ms / 4000))
                    elif self.inflight:
                        await asyncio.sleep(0)
        finally:
            await self._finish()

    async def _finish(self) -> None:
        await self._flush()
        if self.inflight:
            # Finish what is in flight, but never hang a shutdown: whatever still waits stays
            # pending in Redis and is taken over later.
            _, late = await asyncio.wait(list(self.inflight.values()), timeout=10)
            for t in late:
                t.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        self.running = False
        if self._retry_at:
            await self._release(list(self._retry_at))
            self._retry_at.clear()
        try:
            await self.r.hdel(HEARTBEATS, self.heartbeat_field)
        except Exception as e:  # noqa: BLE001 - Redis may be gone at shutdown; the entry just ages out
            log.debug("consumer.heartbeat_not_removed", error=type(e).__name__)

    async def _release(self, ids: list[str]) -> None:
        """Entries delivered to this consumer that it will not handle (it is stopping): mark them
        idle for `claim_idle_ms` so that the next consumer takes them over at once instead of
        after the idle time (no delivery is counted)."""
        if not ids:
            return
        try:
            await self.r.xclaim(self.stream, self.group, self.name, 0, ids, idle=self.claim_idle_ms, justid=True)
        except Exception as e:
            if not self.outage(e):
                raise
            log.warning("redis.unavailable", stream=self.stream, error=str(e)[:200])

    def _room(self) -> int:
        if self.concurrency == 1:
            return self.batch
        limit = self.concurrency
        busy = len(self.inflight) - self.waiting
        if busy >= limit or len(self.inflight) >= 4 * limit:
            return 0
        return min(limit - busy, self.batch, 4 * limit - len(self.inflight))

    def _block_ms(self, burst: bool, now: float) -> int:
        block = 50 if (burst or self.inflight) else self.block_ms
        if self._retry_at:
            due = min(v[0] for v in self._retry_at.values())
            block = min(block, max(1, int((due - now) * 1000)))
        return block

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _until_up(self, fn: Callable[[], Awaitable[Any]], stop: asyncio.Event) -> Any:
        backoff = Backoff(base=0.2, cap=5.0)
        while not stop.is_set():
            try:
                return await fn()
            except Exception as e:
                if not self.outage(e):
                    raise
                log.warning("redis.unavailable", stream=self.stream, error=str(e)[:200])
                await self._sleep(backoff.next())
        return None

    async def _beat(self, now: float) -> None:
        try:
            await self.r.hset(HEARTBEATS, self.heartbeat_field, str(now))
        except Exception as e:
            if not self.outage(e):
                raise

    # -- reading ----------------------------------------------------------------------------------
    async def _read(self, count: int, block_ms: int) -> list[Entry]:
        if self.wait_replicas > 0:
            return await self._read_replicated(count, block_ms)
        if self._lean:  # once per message at the widget's pace: without redis-py's wrappers
            read = ("XREADGROUP", "GROUP", self.group, self.name, "COUNT", count, "BLOCK", block_ms, "STREAMS",
                    self.stream, ">")
            if self._deferred:  # the last entry's AckWith writes, in the same write as this read
                writes, self._deferred = self._deferred, []
                *done, res = await redisbatch.roundtrip(self.r, [*writes, read])
                self._check_writes(done)
                if isinstance(res, Exception):
                    raise res
            else:
                res = await redisbatch.command(self.r, *read)
        else:
            res = await self.r.xreadgroup(self.group, self.name, {self.stream: ">"}, count=count, block=block_ms)
        return _entries(res[0][1]) if res else []

    async def _read_replicated(self, count: int, block_ms: int) -> list[Entry]:
        cmd = ("XREADGROUP", "GROUP", self.group, self.name, "COUNT", count, "BLOCK", block_ms, "STREAMS",
               self.stream, ">")
        res, acked = await replicated(self.r, self.stream, [cmd], self.wait_replicas, self.wait_timeout_ms)
        got = res[0]
        if isinstance(got, dict):  # RESP3 shape
            got = list(got.items())
        entries = _entries(got[0][1]) if got else []
        if entries and acked < self.wait_replicas:
            # Held in this consumer's pending list: taken over (and checked again) after claim_idle_ms.
            report_not_replicated("read", self.stream, acked, self.wait_replicas, self.wait_timeout_ms)
            raise NotReplicated(f"{self.stream}: read entries on {acked} of {self.wait_replicas} replicas")
        return entries

    async def _own_pending(self) -> list[Entry]:
        res = await self.r.xreadgroup(self.group, self.name, {self.stream: "0"}, count=1000)
        return _entries(res[0][1]) if res else []

    async def _autoclaim(self, count: int) -> list[Entry]:
        """Take over entries idle longer than `claim_idle_ms` (their worker died)."""
        start = "0-0"
        got: list[Entry] = []
        for _ in range(10):
            res = await self.r.xautoclaim(self.stream, self.group, self.name, self.claim_idle_ms, start, count=count)
            start = res[0].decode() if isinstance(res[0], bytes) else res[0]
            got.extend(e for e in _entries(res[1]) if e.id not in self.inflight and e.id not in self._retry_at)
            if len(res) > 2 and res[2]:
                # Entries deleted from the stream while pending: nothing left to handle.
                ids = [d.decode() if isinstance(d, bytes) else d for d in res[2]]
                await self.r.xack(self.stream, self.group, *ids)
            if start == "0-0" or len(got) >= count:
                break
        return got

    async def _due_retries(self, now: float, room: int) -> list[Entry]:
        due = [(i, v) for i, v in self._retry_at.items() if v[0] <= now][:room]
        if not due:
            return []
        out: list[Entry] = []
        for eid, (_, entry, counted, defer) in due:
            del self._retry_at[eid]
            # Only if it is still ours: idle at least (most of) the time we waited. A counted
            # retry re-delivers it (the delivery counter is the attempt count); a wait does not.
            min_idle = int(defer * 900)
            if counted:
                res = await self.r.xclaim(self.stream, self.group, self.name, min_idle, [eid])
                out.extend(_entries(res))
            else:
                res = await self.r.xclaim(self.stream, self.group, self.name, min_idle, [eid], justid=True)
                if res:
                    out.append(entry)
        return out

    async def _pending(self) -> int:
        info = await self.r.xpending(self.stream, self.group)
        return int(info["pending"] if isinstance(info, dict) else info[0])

    async def _times_delivered(self, eid: str) -> int | None:
        rows = await self.r.xpending_range(self.stream, self.group, eid, eid, 1)
        if not rows:
            return None  # no longer pending: acknowledged meanwhile
        return int(rows[0]["times_delivered"])

    # -- handling ---------------------------------------------------------------------------------
    async def _dispatch(self, e: Entry, *, fresh: bool) -> None:
        if self.concurrency == 1:
            await self._process(e, fresh)
            return
        if e.id in self.inflight:
            return
        t = asyncio.get_running_loop().create_task(self._process(e, fresh))
        self.inflight[e.id] = t
        t.add_done_callback(functools.partial(self._done, e.id))

    def _done(self, eid: str, t: asyncio.Task[None]) -> None:
        self.inflight.pop(eid, None)
        if not t.cancelled() and (exc := t.exception()) is not None:
            # What `_process` raised (a bug, an unexpected Redis error while settling) is told,
            # with its traceback — never a task that dies unseen. The entry stays pending and is
            # taken over again, as before.
            self.crashed += 1
            log.error("consumer.task_crashed", stream=self.stream, entry=eid, handler=self.handler_name,
                      error=_describe(exc)[:300], traceback="".join(traceback.format_exception(exc))[-4000:])

    def _keep_claimed(self, eid: str) -> Callable[[], None]:
        """While a handler works on `eid`, reset the entry's idle time every third of
        `claim_idle_ms` (without counting a delivery), so that no other consumer takes over an
        entry that is being handled: a Bot API or SMTP call slower than `claim_idle_ms` would
        otherwise be made twice. For at most `KEEP_CLAIM_FOR` × `claim_idle_ms`: a handler stuck
        longer is taken over, as one whose worker died. Returns the function that stops it. A
        handler done within the first third (nearly all) costs one timer, nothing in Redis."""
        loop = asyncio.get_running_loop()
        step = self.claim_idle_ms / 3000
        state: dict[str, Any] = {"done": False, "task": None, "sleeping": False}

        async def refresh() -> None:
            end = time.monotonic() + KEEP_CLAIM_FOR * self.claim_idle_ms / 1000
            while not state["done"] and time.monotonic() < end:
                try:
                    await self.r.xclaim(self.stream, self.group, self.name, 0, [eid], justid=True)
                except Exception as exc:  # noqa: BLE001 - an outage or a stopping client: the entry stays pending
                    log.debug("consumer.keep_claim_failed", stream=self.stream, entry=eid, error=_describe(exc)[:200])
                if state["done"]:
                    return
                state["sleeping"] = True
                await asyncio.sleep(step)
                state["sleeping"] = False

        def start() -> None:
            if not state["done"]:
                state["task"] = loop.create_task(refresh())

        handle = loop.call_later(step, start)

        def stop() -> None:
            state["done"] = True
            handle.cancel()
            if state["task"] is not None and state["sleeping"]:
                state["task"].cancel()  # never in the middle of a Redis call: the connection stays sound

        return stop

    async def _process(self, e: Entry, fresh: bool) -> None:
        """Handle one entry: outages are retried here (held, never counted); everything else is
        an outcome or a counted failure. The entry stays claimed while its handler works."""
        stop_keeping = self._keep_claimed(e.id)
        try:
            await self._process_kept(e, fresh)
        finally:
            stop_keeping()

    async def _process_kept(self, e: Entry, fresh: bool) -> None:
        backoff: Backoff | None = None
        while True:
            t0 = time.perf_counter()
            try:
                outcome = await self.handler(e, fresh)
            except Exception as exc:
                if self.outage(exc):
                    self._m_outage.inc()
                    if backoff is None:
                        backoff = Backoff(base=0.2, cap=10.0)
                        log.warning("consumer.outage", stream=self.stream, entry=e.id, handler=self.handler_name,
                                    error=_describe(exc)[:300])
                    after = getattr(exc, "retry_after", None)
                    await self._hold(e, float(after) if after else backoff.next())
                    if self._stop.is_set():
                        return  # stays pending; taken over after a restart
                    fresh = False
                    continue
                await self._failed(e, exc, None)
                return
            finally:
                self._m_seconds.observe(time.perf_counter() - t0)
            break
        try:
            await self._settle(e, outcome)
        except Exception as exc:
            if not self.outage(exc):
                raise
            # Redis went away while settling: the entry is still pending and will be retried.
            log.warning("redis.unavailable", stream=self.stream, entry=e.id, error=str(exc)[:200])

    async def _batch(self, entries: list[Entry]) -> bool:
        """Handle freshly read entries with `batch_handler`, one acknowledgement for all. False
        (nothing settled) when there is none or it failed: then each entry is handled alone, with
        its own outcome, attempts and outage handling."""
        if self.batch_handler is None:
            return False
        t0 = time.perf_counter()
        try:
            outcomes = await self.batch_handler(entries)
        except Exception as exc:  # noqa: BLE001 - handled one by one next, where it counts
            log.info("consumer.batch_split", stream=self.stream, handler=self.handler_name, entries=len(entries),
                     error=_describe(exc)[:300])
            return False
        per = (time.perf_counter() - t0) / len(entries)
        for _ in entries:
            self._m_seconds.observe(per)
        done = [e.id for e, o in zip(entries, outcomes, strict=True) if o is None]
        try:
            if done:
                await self._ack(done)
            for e, o in zip(entries, outcomes, strict=True):
                if o is not None:
                    await self._settle(e, o)
        except Exception as exc:
            if not self.outage(exc):
                raise
            # Redis went away while settling: the entries are still pending and will be retried
            # (the handler's effects are idempotent, as for one entry).
            log.warning("redis.unavailable", stream=self.stream, error=str(exc)[:200])
        return True

    async def _hold(self, e: Entry, seconds: float) -> None:
        """Wait out an outage while keeping the entry: its idle time is reset (without counting a
        delivery) so that no other consumer takes it over meanwhile."""
        end = time.monotonic() + seconds
        step = max(0.05, self.claim_idle_ms / 3000)
        while not self._stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            await self._sleep(min(left, step))
            try:
                await self.r.xclaim(self.stream, self.group, self.name, 0, [e.id], justid=True)
            except Exception as exc:
                if not self.outage(exc):
                    raise

    async def _ack(self, ids: list[str]) -> None:
        """Acknowledge handled entries (and drop their legacy attempt counters)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.xack(self.stream, self.group, *ids)
        pipe.hdel(streams.attempts(self.stream), *ids)
        await pipe.execute()
        self.processed += len(ids)
        self._m_processed.inc(len(ids))

    async def _flush(self) -> None:
        """Send `AckWith` writes still waiting for a read (one round trip; a pipeline on a
        cluster). Failing, they leave their entries pending (taken over later): logged, not raised."""
        if not self._deferred:
            return
        writes, self._deferred = self._deferred, []
        try:
            self._check_writes(await redisbatch.writes(self.r, writes))
        except Exception as exc:
            if not self.outage(exc):
                raise
            log.warning("redis.unavailable", stream=self.stream, error=str(exc)[:200])

    def _check_writes(self, replies: list[Any]) -> None:
        for rep in replies:
            if isinstance(rep, Exception):
                log.error("consumer.ack_failed", stream=self.stream, handler=self.handler_name,
                          error=_describe(rep)[:300])

    async def _settle(self, e: Entry, outcome: Outcome) -> None:
        if outcome is None:
            await self._ack([e.id])
        elif outcome is ACKED:
            self.processed += 1
            self._m_processed.inc()
        elif isinstance(outcome, AckWith):
            self._deferred.extend(outcome.commands)
            if not self._defer_this:
                await self._flush()
            self.processed += 1
            self._m_processed.inc()
        elif isinstance(outcome, Permanent):
            n = await self._times_delivered(e.id)
            if n is not None:
                await self._dead(e, outcome.reason, n)
        elif isinstance(outcome, Retry):
            if outcome.count:
                await self._failed(e, None, outcome)
            else:
                defer = outcome.defer if outcome.defer is not None else self.claim_idle_ms / 2000
                self._retry_at[e.id] = (time.monotonic() + defer, e, False, defer)
        else:  # pragma: no cover - a handler returning something else is a bug
            raise TypeError(f"{self.handler_name} returned {outcome!r}")

    async def _failed(self, e: Entry, exc: BaseException | None, retry: Retry | None) -> None:
        """A counted failure: dead-letter after `max_attempts` deliveries, else retry later."""
        error = _describe(exc) if exc is not None else (retry.reason if retry else "") or "retry requested"
        try:
            n = await self._times_delivered(e.id)
            if n is None:
                return
            if exc is not None:
                log.error("consumer.handler_failed", stream=self.stream, entry=e.id, handler=self.handler_name,
                          attempt=n, max_attempts=self.max_attempts, error=error[:300],
                          traceback="".join(traceback.format_exception(exc))[-4000:])
            if n >= self.max_attempts:
                await self._dead(e, error, n)
                return
            self.retried += 1
            self._m_retried.inc()
            cap = self.claim_idle_ms / 2000
            defer = retry.defer if retry and retry.defer is not None else delay_for(n, self.retry_base_s, cap)
            self._retry_at[e.id] = (time.monotonic() + defer, e, True, defer)
        except Exception as exc2:
            if not self.outage(exc2):
                raise
            # Redis is down: the entry stays pending and is taken over after claim_idle_ms.
            log.warning("redis.unavailable", stream=self.stream, entry=e.id, error=str(exc2)[:200])

    async def _dead(self, e: Entry, error: str, attempts: int) -> None:
        if self._on_dead is not None:
            await self._on_dead(e, error, self.handler_name, attempts)
        else:
            fields: dict[Any, Any] = {**e.fields, "entry": e.id, "error": error[:2000], "handler": self.handler_name,
                                      "attempts": attempts, "at": int(time.time())}
            attempts_key = streams.attempts(self.stream)
            if one_slot(self.r, self.dead_stream, self.stream, attempts_key):
                pipe = self.r.pipeline(transaction=True)
                pipe.xadd(self.dead_stream, fields)
                pipe.xack(self.stream, self.group, e.id)
                pipe.hdel(attempts_key, e.id)
                await pipe.execute()
            else:
                # An untagged stream on a Redis Cluster (`handoff`, `outbound:<ch>`): its dead
                # letters are on another slot, so no MULTI. The dead letter is written first: a
                # crash in between leaves the entry pending (dead-lettered again later, at worst
                # twice), never acknowledged without its dead letter.
                await self.r.xadd(self.dead_stream, fields)
                pipe = self.r.pipeline(transaction=False)
                pipe.xack(self.stream, self.group, e.id)
                pipe.hdel(attempts_key, e.id)
                await pipe.execute()
        self.dead_lettered += 1
        self._m_dead.inc()
        log.error("consumer.dead_lettered", stream=self.stream, entry=e.id, handler=self.handler_name,
                  attempts=attempts, error=error[:300])
