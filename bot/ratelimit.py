"""Per-IP limit on failed webhook authentications.

Telegram and X deliver every update from a handful of their own addresses, so a plain per-IP
request limit on a webhook would throttle real traffic at exactly the busiest moment. What is
limited instead is *failed* authentication (wrong Telegram secret token, bad X signature): an
address that fails more than `limit` times in a minute gets 429 for the rest of that minute,
before any body is read. The count is shared through Redis by every web process; the block
itself is cached in the process, so a legitimate delivery costs no Redis round trip.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.logs import get_logger

log = get_logger("switchboard.ratelimit")

MAX_TRACKED = 10_000


class AuthFailureLimit:
    def __init__(self, r: aioredis.Redis, name: str, *, limit: int = 20, window_s: int = 60) -> None:
        self.r = r
        self.name = name
        self.limit = limit
        self.window_s = window_s
        self._blocked: dict[str, float] = {}  # ip -> monotonic time the block ends

    def blocked(self, ip: str | None) -> bool:
        if not ip or self.limit <= 0:
            return False
        until = self._blocked.get(ip)
        if until is None:
            return False
        if until <= time.monotonic():
            self._blocked.pop(ip, None)
            return False
        return True

    async def failed(self, ip: str | None) -> int:
        """Count one failed authentication from `ip`; returns the count of this window."""
        if not ip or self.limit <= 0:
            return 0
        now = time.time()
        window = int(now // self.window_s)
        key = f"rl:authfail:{self.name}:{ip}:{window}"
        pipe = self.r.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, 2 * self.window_s)
        try:
            n, _ = await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return 0  # counting is best effort: the request itself is refused either way
        if int(n) > self.limit:
            if len(self._blocked) >= MAX_TRACKED:
                self._blocked.clear()
            left = (window + 1) * self.window_s - now
            if ip not in self._blocked:
                log.warning("webhook.ip_blocked", webhook=self.name, client=ip, failures=int(n), for_s=round(left))
            self._blocked[ip] = time.monotonic() + left
        return int(n)


class WindowLimit:
    """At most `limit` hits per key per fixed window, counted in Redis (shared by every web
    process). Used where any request, good or bad, costs something worth bounding (the X CRC
    challenge signs what it is given). Counting fails open: when Redis is unreachable the request
    is judged on its own merits."""

    def __init__(self, r: aioredis.Redis, name: str, *, limit: int, window_s: int = 60) -> None:
        self.r = r
        self.name = name
        self.limit = limit
        self.window_s = window_s

    async def hit(self, key: str) -> bool:
        """Count one request for `key`; False when it is over the limit of this window."""
        window = int(time.time() // self.window_s)
        k = f"rl:{self.name}:{key}:{window}"
        pipe = self.r.pipeline(transaction=False)
        pipe.incr(k)
        pipe.expire(k, 2 * self.window_s)
        try:
            n, _ = await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return True
        return int(n) <= self.limit
