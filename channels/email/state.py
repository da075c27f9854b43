"""What the email channel keeps in Redis, in one place (keys under `email:<our address>:`; on a
Redis Cluster the deferred replies under `{email:<our address>:deferred}`, see `EmailState`).

- **Threads**: Message-ID → conversation for every mail of a conversation, ours and the user's
  (so a reply to any of them joins it), ticket number → conversation (the subject-token fallback),
  and per conversation its owner (the user's address: only they can add to it) and ticket.
- **The IMAP cursor**: UIDVALIDITY + the last UID taken in, per mailbox. Restarting resumes after
  it; a new UIDVALIDITY (mailbox recreated) resets it, and the Message-ID dedupe of the intake
  keeps that from taking anything in twice.
- **Loop guard**: automatic replies per recipient in a sliding window.
- **Deferred handoff replies** waiting for the ticket acknowledgement that replaces them.
- **Records** for ops: bounces, suppressed (automatic/bulk) mail, mails that could not be taken
  in (dead letters). Capped lists/streams; headers and reasons only, never bodies.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from bot.redisconn import co_slot

THREAD_TTL_S = 180 * 24 * 3600
RECORD_TTL_S = 14 * 24 * 3600
RECORDS_MAX = 1000

_CLAIM = """
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""

# KEYS: zset ; ARGV: member, now, window start, max → 1 allowed, 0 over the limit. Idempotent per
# member, so a retried send of the same reply is not counted twice.
_AUTOREPLY = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if rank < tonumber(ARGV[4]) then return 1 end
return 0
"""


def _key_part(s: str) -> str:
    """Message-IDs are user-controlled and may be long: keep keys short and safe."""
    s = s.strip()
    return s if len(s) <= 200 and s.isprintable() else "h:" + hashlib.sha256(s.encode("utf-8", "replace")).hexdigest()


class EmailState:
    def __init__(self, r: aioredis.Redis, address: str) -> None:
        self.r = r
        self.ns = f"email:{address.lower()}"
        # The deferred replies' schedule, payloads and per-conversation sets change together (one
        # MULTI): on a cluster they share the slot of `{email:<address>:deferred}` — small state
        # (replies waiting seconds to minutes for their ticket acknowledgement), and the schedule
        # spans every conversation, so no conversation's partition tag would do.
        self._deferred = co_slot(r, f"{self.ns}:deferred")
        self._claim = r.register_script(_CLAIM)
        self._autoreply = r.register_script(_AUTOREPLY)

    # -- keys -------------------------------------------------------------------------------------
    def k_msgid(self, msgid: str) -> str:
        return f"{self.ns}:msgid:{_key_part(msgid.strip('<>'))}"

    def k_ticket(self, number: str) -> str:
        return f"{self.ns}:ticket:{number.upper()}"

    def k_conv(self, conv: str) -> str:
        return f"{self.ns}:conv:{conv}"

    def k_cursor(self, mailbox: str) -> str:
        return f"{self.ns}:cursor:{mailbox}"

    @property
    def k_bounces(self) -> str:
        return f"{self.ns}:bounces"

    @property
    def k_suppressed(self) -> str:
        return f"{self.ns}:suppressed"

    @property
    def k_dead(self) -> str:
        return f"{self.ns}:dead"

    @property
    def k_deferred(self) -> str:
        return self._deferred

    # -- threads ----------------------------------------------------------------------------------
    async def conversation_of(self, msgids: list[str]) -> str | None:
        """The conversation of the first of `msgids` we know (callers pass the most specific
        first: In-Reply-To, then References newest to oldest)."""
        if not msgids:
            return None
        # One GET each in a pipeline, not MGET: on a cluster the ids hash to different slots.
        pipe = self.r.pipeline(transaction=False)
        for m in msgids:
            pipe.get(self.k_msgid(m))
        vals = await pipe.execute()
        return next((v for v in vals if v), None)

    async def remember_msgid(self, msgid: str, conv: str, *, keep: bool = False) -> None:
        """`keep`: a Message-ID already known stays with its conversation (ids of inbound mail
        are written by the sender; a reused one must not move a thread)."""
        await self.r.set(self.k_msgid(msgid), conv, ex=THREAD_TTL_S, nx=keep)

    async def conversation_of_ticket(self, number: str) -> str | None:
        v: str | None = await self.r.get(self.k_ticket(number))
        return v

    async def conv_info(self, conv: str) -> dict[str, str]:
        h: dict[str, str] = await self.r.hgetall(self.k_conv(conv))
        return h

    async def set_conv(self, conv: str, **fields: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.k_conv(conv), mapping=fields)
        pipe.expire(self.k_conv(conv), THREAD_TTL_S)
        await pipe.execute()

    async def remember_ticket(self, number: str, conv: str) -> None:
        # Two keys of two slots on a cluster, so no MULTI; each write is idempotent and the next
        # reply of the ticket writes both again.
        pipe = self.r.pipeline(transaction=False)
        pipe.set(self.k_ticket(number), conv, ex=THREAD_TTL_S)
        pipe.hset(self.k_conv(conv), "ticket", number)
        pipe.expire(self.k_conv(conv), THREAD_TTL_S)
        await pipe.execute()

    # -- IMAP cursor ------------------------------------------------------------------------------
    async def cursor(self, mailbox: str) -> tuple[int, int] | None:
        h = await self.r.hgetall(self.k_cursor(mailbox))
        try:
            return int(h["uidvalidity"]), int(h["uid"])
        except (KeyError, ValueError):
            return None

    async def save_cursor(self, mailbox: str, uidvalidity: int, uid: int) -> None:
        await self.r.hset(self.k_cursor(mailbox), mapping={"uidvalidity": str(uidvalidity), "uid": str(uid)})

    # -- loop guard -------------------------------------------------------------------------------
    async def autoreply_allowed(self, addr: str, outbound_id: str, window_s: int, limit: int) -> bool:
        now = time.time()
        res = await self._autoreply(
            keys=[f"{self.ns}:autoreply:{_key_part(addr.lower())}"],
            args=[outbound_id, now, now - window_s, limit, window_s + 60],
        )
        return bool(int(res))

    # -- deferred handoff replies -----------------------------------------------------------------
    async def defer(self, ob_id: str, conv: str, payload: str, due: float) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(f"{self.k_deferred}:data", ob_id, payload)
        pipe.sadd(f"{self.k_deferred}:conv:{conv}", ob_id)
        pipe.expire(f"{self.k_deferred}:conv:{conv}", RECORD_TTL_S)
        pipe.zadd(self.k_deferred, {ob_id: due})
        await pipe.execute()

    async def cancel_deferred(self, conv: str) -> int:
        """Drop the handoff replies waiting in `conv` (their acknowledgement is being sent)."""
        key = f"{self.k_deferred}:conv:{conv}"
        ids: set[str] = await self.r.smembers(key)
        if not ids:
            return 0
        pipe = self.r.pipeline(transaction=True)
        pipe.zrem(self.k_deferred, *ids)
        pipe.hdel(f"{self.k_deferred}:data", *ids)
        pipe.delete(key)
        res = await pipe.execute()
        return int(res[0])

    async def due_deferred(self, now: float, lease_s: float) -> list[tuple[str, str]]:
        """Claim the deferred replies that are due (a lease, so a crashed sender's claim runs
        out and another process sends them). Returns [(outbound id, payload)]."""
        ids: list[str] = await self.r.zrangebyscore(self.k_deferred, "-inf", now, start=0, num=50)
        out: list[tuple[str, str]] = []
        for ob_id in ids:
            if int(await self._claim(keys=[self.k_deferred], args=[ob_id, now, now + lease_s])):
                payload = await self.r.hget(f"{self.k_deferred}:data", ob_id)
                if payload is None:
                    await self.r.zrem(self.k_deferred, ob_id)
                    continue
                out.append((ob_id, payload))
        return out

    async def finish_deferred(self, ob_id: str, conv: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.zrem(self.k_deferred, ob_id)
        pipe.hdel(f"{self.k_deferred}:data", ob_id)
        pipe.srem(f"{self.k_deferred}:conv:{conv}", ob_id)
        await pipe.execute()

    async def retry_deferred_at(self, ob_id: str, due: float) -> None:
        await self.r.zadd(self.k_deferred, {ob_id: due}, xx=True)

    # -- records ----------------------------------------------------------------------------------
    async def record_once(self, key: str, marker: str, entry: dict[str, Any]) -> bool:
        """Append `entry` to the capped list `key` unless `marker` was recorded already (a mail
        seen again after a restart is recorded once)."""
        if not await self.r.set(f"{self.ns}:recorded:{_key_part(marker)}", "1", nx=True, ex=RECORD_TTL_S):
            return False
        pipe = self.r.pipeline(transaction=True)
        pipe.lpush(key, orjson.dumps(entry).decode())
        pipe.ltrim(key, 0, RECORDS_MAX - 1)
        await pipe.execute()
        return True

    async def dead_letter(self, fields: dict[str, str]) -> None:
        await self.r.xadd(self.k_dead, fields, maxlen=RECORDS_MAX, approximate=True)
