"""Redis Streams queue with at-least-once delivery and exactly-once *effects*.

- Intake (`publish`) is one Lua script: dedupe on the channel's own message id, assign the
  conversation's next sequence number, `XADD` to `inbound` — all or nothing.
- A worker's result (`commit`) is one Lua script: the outputs (`outbound:<channel>`, `handoff`,
  `decisions`), the conversation state and the `XACK` land together, and only if this is the next
  message of the conversation that has not been committed yet. A redelivered or duplicate entry is
  acknowledged without a second answer; a message whose predecessor is still in flight waits, so
  one conversation is handled in order even with several workers.
- Reading, take-over of a dead worker's entries, attempts and back-off are the shared stream
  consumer's (`bot.consumer`); `dead_letter` here is the router's way to dead-letter, which also
  counts as the conversation's progress so its next message is not held up
  (`switchboard deadletters list|show|replay|drop`).
- Trimming uses `XTRIM MINID` below the oldest unacknowledged entry of every group, so it never
  drops a message someone still has to handle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot import metrics
from bot.config import QueueSettings
from bot.logs import get_logger
from bot.mailbox import LUA_BOX_ADD, Append
from bot.models import Message
from bot.redisbatch import Batcher
from bot.redisconn import NotReplicated, is_cluster, replicated
from bot.streams import Layout

# KEYS: seen marker, conv, inbound, rate counter, [the channel's counters…], [keys that must not
# exist…], [mailbox] ; ARGV: dedupe ttl, message, conv id, force, conv ttl, rate limit per minute
# (0 = none), touch ('1': a duplicate still writes — refreshes its marker — so a following WAIT
# confirms the original reached a replica: replication is in order), number of channel counters,
# number of keys that must not exist, the counters' limits…, then for an echo into a mailbox
# (`bot.mailbox`): its max length, ttl, pub/sub channel, contact, event.
# Returns the entry id, false for a duplicate, {'present', i} when the i-th key that must not
# exist does (nothing is stored or counted), {'rate_limited', n} when the sender is over the
# queue's limit, or {'over', i} when over the channel's i-th limit (nothing is stored but counts).
_INTAKE = LUA_BOX_ADD + """
local nc = tonumber(ARGV[8] or '0')
local ng = tonumber(ARGV[9] or '0')
for j = 1, ng do
  if redis.call('EXISTS', KEYS[4 + nc + j]) == 1 then return {'present', j} end
end
if ARGV[4] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[7] == '1' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
  return false
end
local over = 0
for j = 1, nc do
  local n = redis.call('INCR', KEYS[4 + j])
  if n == 1 then redis.call('EXPIRE', KEYS[4 + j], 120) end
  if over == 0 and n > tonumber(ARGV[9 + j]) then over = j end
end
if over > 0 then return {'over', over} end
local limit = tonumber(ARGV[6])
if limit > 0 then
  local n = redis.call('INCR', KEYS[4])
  if n == 1 then redis.call('EXPIRE', KEYS[4], 120) end
  if n > limit then return {'rate_limited', n} end
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq_in', 1)
redis.call('EXPIRE', KEYS[2], ARGV[5])
local fields = {'m', ARGV[2], 'seq', seq, 'c', ARGV[3]}
-- Nothing earlier of this conversation is still in flight: the state the router needs is final
-- now, so it travels with the entry (field 's') and the router skips reading it back. The commit
-- checks `ver` (bumped by anyone else who changes the state, e.g. an agent) and refuses a stale one.
local flat = redis.call('HGETALL', KEYS[2])
local st = {}
for i = 1, #flat, 2 do st[flat[i]] = flat[i + 1] end
if tonumber(st['seq_done'] or '0') == seq - 1 then
  fields[#fields + 1] = 's'
  fields[#fields + 1] = cjson.encode(st)
end
if KEYS[5 + nc + ng] then
  local a = 10 + nc
  box_add(KEYS[5 + nc + ng], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
end
local id = redis.call('XADD', KEYS[3], '*', unpack(fields))
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
return id
"""

_ADVANCE = """
local function advance(conv, skip, seq)
  local newdone = seq
  while redis.call('SISMEMBER', skip, newdone + 1) == 1 do
    redis.call('SREM', skip, newdone + 1)
    newdone = newdone + 1
  end
  return newdone
end
"""

# KEYS: conv, inbound, attempts, skip, out1..outN
# ARGV: group, entry, seq, nstate, expected ver ('' = any), k1, v1, ..., then per output: payload,
# maxlen, and for a mailbox (`bot.mailbox`) its pub/sub channel, contact and ttl ('' for a stream).
# A work queue's entry (maxlen 0) carries `o` = 1 (`bot.streams.ONCE`).
# Returns 1 committed, 0 duplicate (acked), -1 a predecessor is not done, -2 the state changed
# since it was read (decide again).
_COMMIT = _ADVANCE + LUA_BOX_ADD + """
local done = tonumber(redis.call('HGET', KEYS[1], 'seq_done') or '0')
local seq = tonumber(ARGV[3])
if done >= seq then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
  return 0
end
if done ~= seq - 1 then return -1 end
if ARGV[5] ~= '' and (redis.call('HGET', KEYS[1], 'ver') or '0') ~= ARGV[5] then return -2 end
local i = 6
local st = {}
for j = 1, tonumber(ARGV[4]) do
  st[#st + 1] = ARGV[i]; st[#st + 1] = ARGV[i + 1]; i = i + 2
end
for k = 5, #KEYS do
  if ARGV[i + 2] ~= '' then
    box_add(KEYS[k], ARGV[i + 1], ARGV[i + 4], ARGV[i + 2], ARGV[i + 3], ARGV[i])
  elseif ARGV[i + 1] ~= '0' then
    redis.call('XADD', KEYS[k], 'MAXLEN', '~', ARGV[i + 1], '*', 'd', ARGV[i])
  else
    redis.call('XADD', KEYS[k], '*', 'd', ARGV[i], 'o', '1')
  end
  i = i + 5
end
st[#st + 1] = 'seq_done'; st[#st + 1] = advance(KEYS[1], KEYS[4], seq)
redis.call('HSET', KEYS[1], unpack(st))
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""

# KEYS: conv, inbound, attempts, skip, dead
# ARGV: group, entry, seq, m, error, attempts, conv id, at, handler
_DEAD = _ADVANCE + """
redis.call('XADD', KEYS[5], '*', 'entry', ARGV[2], 'm', ARGV[4], 'error', ARGV[5], 'attempts', ARGV[6],
           'c', ARGV[7], 'at', ARGV[8], 'handler', ARGV[9])
if ARGV[3] ~= '' then
  local seq = tonumber(ARGV[3])
  -- A corrupt `seq_done` (not a number) must not fail the dead letter: the XADD above is kept
  -- when a script errors, so every attempt would add one more and never acknowledge the entry.
  local done = tonumber(redis.call('HGET', KEYS[1], 'seq_done') or '0') or 0
  if done == seq - 1 then
    redis.call('HSET', KEYS[1], 'seq_done', advance(KEYS[1], KEYS[4], seq))
  elseif done < seq - 1 then
    redis.call('SADD', KEYS[4], seq)
  end
end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""

CONV_TTL_S = 90 * 24 * 3600
NOT_REPLICATED_LOG_EVERY_S = 10.0

log = get_logger("switchboard.queue")
_short_since: dict[tuple[str, str], tuple[float, int]] = {}  # (op, stream) → (last logged, shortfalls since)


def report_not_replicated(op: str, stream: str, acked: int, wanted: int, timeout_ms: int) -> None:
    """A `WAIT` came back with fewer replicas than `redis.wait_replicas` (a replica is down,
    lagging or re-syncing): counted in `switchboard_redis_not_replicated_total{op}` and logged as
    `redis.not_replicated` — at most once per `NOT_REPLICATED_LOG_EVERY_S` per (op, stream), with
    how many happened since, so a replica outage is one line every few seconds, not one per message."""
    metrics.NOT_REPLICATED.labels(op).inc()
    now = time.monotonic()
    last, n = _short_since.get((op, stream), (float("-inf"), 0))
    n += 1
    if now - last < NOT_REPLICATED_LOG_EVERY_S:
        _short_since[(op, stream)] = (last, n)
        return
    _short_since[(op, stream)] = (now, 0)
    log.warning("redis.not_replicated", op=op, stream=stream, replicas=acked, wanted=wanted, timeout_ms=timeout_ms,
                count=n)


class RateLimited(Exception):
    """The sender went over the per-user message limit of the current minute."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} messages this minute (limit {limit})")
        self.count = count
        self.limit = limit

    @property
    def first(self) -> bool:
        """The first refused message of the window: the one the sender is told about."""
        return self.count == self.limit + 1


def parse_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    fields: dict[str, str]

    @property
    def conversation(self) -> str:
        return self.fields.get("c", "")

    @property
    def seq(self) -> int | None:
        s = self.fields.get("seq")
        return int(s) if s and s.isdigit() else None

    @property
    def state(self) -> dict[str, str] | None:
        """The conversation state as of intake, when nothing earlier was in flight then."""
        raw = self.fields.get("s")
        if not raw:
            return None
        try:
            st = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(st, dict):  # cjson encodes an empty table as {} but be strict
            return None
        return {str(k): str(v) for k, v in st.items()}


class Present(Exception):
    """A key given to `publish` as one that must not exist (`absent[index]`) does; nothing was
    stored or counted (the caller takes its slower path, which handles what that key means)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"key #{index} exists")
        self.index = index


class OverLimit(Exception):
    """The message went over one of the channel's own limits given to `publish` (`limits[index]`);
    nothing was stored."""

    def __init__(self, index: int) -> None:
        super().__init__(f"over limit #{index}")
        self.index = index


@dataclass(frozen=True, slots=True)
class Limit:
    """A per-minute counter of the channel's (a widget session's, an IP address's) checked by the
    intake script before anything is stored; its key must be in the conversation's hash slot."""

    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class Output:
    stream: str
    payload: str
    maxlen: int = 0  # 0 = a work queue (never trimmed by length); >0 = a capped log
    box: Append | None = None  # a mailbox event instead of a stream entry (`stream` is the mailbox)

    @classmethod
    def mailbox(cls, a: Append) -> Output:
        return cls(a.box, a.event, a.maxlen, a)


def _decode(fields: dict[Any, Any]) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }


def _entries(raw: Any) -> list[Entry]:
    out: list[Entry] = []
    for eid, fields in raw or []:
        if fields is None:
            continue
        out.append(Entry(eid.decode() if isinstance(eid, bytes) else eid, _decode(fields)))
    return out


@dataclass(frozen=True, slots=True)
class Durability:
    """`redis.wait_replicas` / `redis.wait_timeout_ms`: 0 replicas = no WAIT."""

    replicas: int = 0
    timeout_ms: int = 1000

    @classmethod
    def of(cls, settings: Any) -> Durability:
        return cls(settings.redis.wait_replicas, settings.redis.wait_timeout_ms)


class Queue:
    """The inbound queue and its dead letters: publishing to every partition, consuming one
    (`partition`; see `bot.streams.Layout`)."""

    def __init__(self, r: aioredis.Redis, settings: QueueSettings, *, layout: Layout | None = None,
                 partition: int = 0, durability: Durability | None = None, batch: Batcher | None = None) -> None:
        self.r = r
        # Scripts of concurrent callers in one round trip (`bot.redisbatch`; not with WAIT, which
        # needs its own connection's writes).
        self.batch = batch
        self._one_redis = not is_cluster(r)
        self.s = settings
        # Without a layout: the one of these settings on this client (tagged on a cluster).
        self.layout = layout or Layout(settings.partitions, settings.partitions > 1 or is_cluster(r),
                                       settings.inbound_stream)
        self.partition = partition
        self.durability = durability or Durability()
        self.stream = self.layout.inbound(partition)
        self.group = settings.group
        self.dead_stream = f"{self.stream}:dead"
        self.attempts_key = f"{self.stream}:attempts"
        self._intake = r.register_script(_INTAKE)
        self._commit = r.register_script(_COMMIT)
        self._dead = r.register_script(_DEAD)
        self.not_replicated = 0  # commits whose WAIT came back short (logged; the reader side waits)

    async def _run(self, script: Any, keys: list[str], args: list[Any],
                   before: tuple[tuple[Any, ...], ...] = ()) -> tuple[Any, int]:
        """Run a script; with durability on, WAIT on the same connection. Returns (result,
        replicas that have it; -1 without WAIT). `before`: commands sent first in the same round
        trip (idempotent: they are sent again if the script had to be loaded)."""
        d = self.durability
        if self.batch is not None and d.replicas <= 0 and not before:
            return await self.batch.evalsha(script, keys, args), -1
        if d.replicas > 0 or before or self._one_redis:
            # One round trip on one Redis (bot/redisbatch.py, bot/redislean.py): a channel's intake
            # once per message, without redis-py's per-command path.
            res, n = await replicated(self.r, keys[0], [*before, ("EVALSHA", script.sha, len(keys), *keys, *args)],
                                      d.replicas, d.timeout_ms, scripts=(script.script,))
            return res[-1], n
        return await script(keys=keys, args=args), -1

    # -- producers -------------------------------------------------------------------------------
    async def publish(self, msg: Message, *, force: bool = False, rate_per_minute: int = 0,
                      limits: tuple[Limit, ...] = (), echo: Append | None = None,
                      absent: tuple[str, ...] = (), before: tuple[tuple[Any, ...], ...] = ()) -> str | None:
        """Put `msg` on the inbound stream; returns the entry id, or None for a duplicate.

        With `rate_per_minute`, a sender (channel + user) over that many messages in the current
        minute raises `RateLimited` and nothing is queued. `limits`: the channel's own counters,
        checked first (over one raises `OverLimit`). `echo`: an event written to the
        conversation's mailbox in the same step, before the message is queued (so it precedes
        the reply). A duplicate counts nothing and writes no echo. `absent`: keys that must not
        exist (one that does raises `Present` and nothing is stored); `before`: idempotent
        commands sent in the same round trip, just before (both: one Redis only, not a cluster —
        the keys are anywhere)."""
        minute = int(time.time() // 60)
        lay = self.layout
        p = lay.partition(msg.conversation_id)
        wait = self.durability.replicas > 0
        keys = [lay.seen(msg.dedupe_key, p), lay.conv(msg.conversation_id, p), lay.inbound(p),
                lay.user_rate(msg.channel, msg.user_id, minute, p), *(x.key for x in limits), *absent]
        args: list[Any] = [self.s.dedupe_ttl_s, msg.to_json(), msg.conversation_id, "1" if force else "0", CONV_TTL_S,
                           0 if force else rate_per_minute, "1" if wait else "0", len(limits), len(absent),
                           *(x.limit for x in limits)]
        if echo is not None:
            keys.append(echo.box)
            args += [echo.maxlen, echo.ttl_s, echo.notify, echo.contact, echo.event]
        res, acked = await self._run(self._intake, keys, args, before)
        if wait and acked < self.durability.replicas:
            # Not acknowledged to the channel: it sends again and dedupe keeps the message once.
            report_not_replicated("intake", lay.inbound(p), acked, self.durability.replicas, self.durability.timeout_ms)
            raise NotReplicated(f"intake on {acked} of {self.durability.replicas} replicas "
                                f"within {self.durability.timeout_ms} ms")
        if res is None:
            return None
        if isinstance(res, list):
            kind = res[0].decode() if isinstance(res[0], bytes) else res[0]
            if kind == "over":
                raise OverLimit(int(res[1]) - 1)
            if kind == "present":
                raise Present(int(res[1]) - 1)
            raise RateLimited(int(res[1]), rate_per_minute)
        return res.decode() if isinstance(res, bytes) else str(res)

    # -- consumers -------------------------------------------------------------------------------
    async def ensure_group(self, stream: str | None = None, group: str | None = None) -> None:
        await ensure_group(self.r, stream or self.stream, group or self.group)

    async def read(self, consumer: str, count: int, block_ms: int | None) -> list[Entry]:
        res = await self.r.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=block_ms)
        return _entries(res[0][1]) if res else []

    async def read_own_pending(self, consumer: str, count: int) -> list[Entry]:
        res = await self.r.xreadgroup(self.group, consumer, {self.stream: "0"}, count=count)
        return _entries(res[0][1]) if res else []

    async def autoclaim(self, consumer: str, count: int, min_idle_ms: int | None = None) -> list[Entry]:
        """Take over entries idle longer than `claim_idle_ms` (their worker died or gave up)."""
        idle = self.s.claim_idle_ms if min_idle_ms is None else min_idle_ms
        start = "0-0"
        got: list[Entry] = []
        for _ in range(10):
            res = await self.r.xautoclaim(self.stream, self.group, consumer, idle, start, count=count)
            start = res[0].decode() if isinstance(res[0], bytes) else res[0]
            got.extend(_entries(res[1]))
            if len(res) > 2 and res[2]:
                # Entries deleted from the stream while pending: nothing left to handle.
                ids = [d.decode() if isinstance(d, bytes) else d for d in res[2]]
                await self.r.xack(self.stream, self.group, *ids)
            if start == "0-0" or len(got) >= count:
                break
        return got

    async def touch(self, consumer: str, ids: list[str]) -> None:
        """Reset the idle time of entries this worker still holds (waiting for Rasa, say)."""
        if ids:
            await self.r.xclaim(self.stream, self.group, consumer, 0, ids, justid=True)

    async def conv_progress(self, conversation_id: str) -> int:
        v = await self.r.hget(self.layout.conv(conversation_id), "seq_done")
        return int(v) if v else 0

    async def commit(
        self, entry: Entry, state: dict[str, str], outputs: list[Output], *, ver: str | None = None
    ) -> int:
        """1 = committed, 0 = duplicate (acked, nothing sent), -1 = a predecessor is not done yet,
        -2 = the state's `ver` is no longer `ver` (someone else changed it: decide again)."""
        seq = entry.seq or 0
        conv = self.layout.conv(entry.conversation, self.partition)
        keys = [conv, self.stream, self.attempts_key, conv + ":skip", *[o.stream for o in outputs]]
        args: list[Any] = [self.group, entry.id, seq, len(state), "" if ver is None else ver]
        for k, v in state.items():
            args += [k, v]
        for o in outputs:
            b = o.box
            args += [o.payload, o.maxlen, *((b.notify, b.contact, b.ttl_s) if b else ("", "", 0))]
        res, acked = await self._run(self._commit, keys, args)
        if 0 <= acked < self.durability.replicas:
            # The commit is in (and acked) on the master; a reader of its outputs waits for the
            # replicas itself before acting (`StreamConsumer`), so this is only reported.
            self.not_replicated += 1
            report_not_replicated("commit", self.stream, acked, self.durability.replicas, self.durability.timeout_ms)
        return int(res)

    async def dead_letter(self, entry: Entry, error: str, attempts: int = 1, handler: str = "router") -> None:
        """Move the entry to the dead letters and acknowledge it; it also counts as its
        conversation's progress, so the next message of that conversation is not held up."""
        conv = entry.conversation or "unknown"
        ck = self.layout.conv(conv, self.partition)
        await self._dead(
            keys=[ck, self.stream, self.attempts_key, ck + ":skip", self.dead_stream],
            args=[
                self.group, entry.id, "" if entry.seq is None else entry.seq, entry.fields.get("m", ""),
                error[:2000], attempts, conv, str(int(time.time())), handler,
            ],
        )

    async def pending_count(self) -> int:
        try:
            info = await self.r.xpending(self.stream, self.group)
        except ResponseError:
            return 0
        return int(info["pending"] if isinstance(info, dict) else info[0])

    # -- dead letters ----------------------------------------------------------------------------
    async def dead_letters(self, count: int = 100) -> list[Entry]:
        return _entries(await self.r.xrange(self.dead_stream, count=count))

    async def replay(self, dead_ids: list[str] | None = None) -> int:
        """Re-queue dead letters (all, or the given ids) as new inbound entries."""
        items = await self.dead_letters(10_000)
        n = 0
        for e in items:
            if dead_ids and e.id not in dead_ids:
                continue
            raw = e.fields.get("m", "")
            try:
                msg = Message.from_json(raw)
            except ValueError:
                continue  # unparseable: stays dead (list shows why)
            await self.publish(msg, force=True)
            await self.r.xdel(self.dead_stream, e.id)
            n += 1
        return n

    # -- housekeeping ----------------------------------------------------------------------------
    async def trim(self, stream: str | None = None) -> int:
        return await trim_stream(self.r, stream or self.stream, self.s.retention_s)


async def ensure_group(r: aioredis.Redis, stream: str, group: str) -> None:
    try:
        await r.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


async def trim_stream(r: aioredis.Redis, stream: str, retention_s: int) -> int:
    """Drop entries older than `retention_s` that every consumer group has acknowledged."""
    try:
        groups = await r.xinfo_groups(stream)
    except ResponseError:
        return 0
    cutoff = (int(time.time() * 1000) - retention_s * 1000, 0)
    safe = cutoff
    for g in groups:
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        last = g.get("last-delivered-id") or b"0-0"
        last = last.decode() if isinstance(last, bytes) else last
        ms, sq = parse_id(last)
        bound = (ms, sq + 1)
        if int(g.get("pending") or 0) > 0:
            p = await r.xpending(stream, name)
            mn = p.get("min") if isinstance(p, dict) else p[1]
            if mn:
                bound = min(bound, parse_id(mn.decode() if isinstance(mn, bytes) else mn))
        safe = min(safe, bound)
    if safe <= (0, 0):
        return 0
    return int(await r.xtrim(stream, minid=f"{safe[0]}-{safe[1]}", approximate=False))
