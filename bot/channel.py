"""The small interface every channel adapter implements, and the outbound sender loop that feeds
it from `outbound:<channel>`.

A channel is built from its config only (`from_config`, no I/O in `__init__`), has an explicit
lifecycle (`start(sink)` / `stop()`), sends with `send(outbound)`, and may expose HTTP routes
(the widget, webhooks) that the web app mounts. A channel whose users send files may also offer
`async fetch_attachment(ref) -> bytes` (FileNotFoundError when it is gone): the agent console uses
it to open a file from a ticket.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import metrics
from bot.errors import PermanentChannelError, TransientError
from bot.logs import get_logger
from bot.models import Outbound
from bot.queue import Entry, _entries, ensure_group

if TYPE_CHECKING:
    from fastapi import APIRouter

    from bot.config import ChannelSettings, Settings
    from bot.intake import Sink

log = get_logger("switchboard.channel")

SENDERS_GROUP = "senders"


class Channel(Protocol):
    name: ClassVar[str]

    @classmethod
    def from_config(cls, settings: Settings, cfg: ChannelSettings, redis: aioredis.Redis) -> Channel: ...

    async def start(self, sink: Sink) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, ob: Outbound) -> None: ...

    def routes(self) -> APIRouter | None: ...


class OutboundSender:
    """Consumes `outbound:<channel>` for one channel: send, then ack. Transient failures are
    retried with back-off (the entry stays pending), permanent ones go to `outbound:<ch>:dead`,
    and a reply already sent is never sent twice after a redelivery."""

    def __init__(
        self,
        redis: aioredis.Redis,
        channel: Channel,
        *,
        claim_idle_ms: int = 30_000,
        max_attempts: int = 50,
        block_ms: int = 1000,
    ) -> None:
        self.r = redis
        self.channel = channel
        self.stream = f"outbound:{channel.name}"
        self.dead = f"{self.stream}:dead"
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.claim_idle_ms = claim_idle_ms
        self.max_attempts = max_attempts
        self.block_ms = block_ms
        self.sent = 0

    async def run(self, stop: asyncio.Event, *, burst: bool = False) -> None:
        while True:
            try:
                await ensure_group(self.r, self.stream, SENDERS_GROUP)
                break
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await asyncio.sleep(0.5)
        last_claim = 0.0
        backoff = 0.0
        while not stop.is_set():
            try:
                entries: list[Entry] = []
                now = time.monotonic()
                if now - last_claim >= self.claim_idle_ms / 2000:
                    last_claim = now
                    res = await self.r.xautoclaim(
                        self.stream, SENDERS_GROUP, self.consumer, self.claim_idle_ms, "0-0", count=50
                    )
                    entries = _entries(res[1])
                if not entries:
                    res = await self.r.xreadgroup(
                        SENDERS_GROUP, self.consumer, {self.stream: ">"}, count=50,
                        block=50 if burst else self.block_ms,
                    )
                    entries = _entries(res[0][1]) if res else []
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                log.warning("redis.unavailable", error=str(e))
                await asyncio.sleep(0.5)
                continue
            except ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                await ensure_group(self.r, self.stream, SENDERS_GROUP)
                continue
            if burst and not entries:
                info = await self.r.xpending(self.stream, SENDERS_GROUP)
                if int(info["pending"] if isinstance(info, dict) else info[0]) == 0:
                    return
                await asyncio.sleep(0.05)
                continue
            for i, e in enumerate(entries):
                wait = await self._deliver(e)
                if wait is not None:
                    # Transient failure: wait what the API asked for, else back off exponentially.
                    # The failed entry and the rest of the batch are retried in order.
                    backoff = min(max(backoff * 2, 0.2), 10.0)
                    await self._retry_in_order(entries[i:], wait if wait > 0 else backoff, stop)
                    break
                backoff = 0.0

    async def _retry_in_order(self, entries: list[Entry], first_wait: float, stop: asyncio.Event) -> None:
        """Keep retrying the failed entry (then the rest) so replies go out in order."""
        wait: float | None = first_wait
        backoff = max(first_wait, 0.2)
        idx = 0
        while idx < len(entries) and not stop.is_set():
            if wait is not None:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                    return
                except TimeoutError:
                    pass
            wait = await self._deliver(entries[idx])
            if wait is None:
                idx += 1
                backoff = 0.2
            else:
                backoff = min(backoff * 2, 30.0)
                wait = wait if wait > 0 else backoff

    async def _deliver(self, e: Entry) -> float | None:
        """Send one entry. None = done (sent, duplicate or dead-lettered); a number = transient
        failure, retry after that many seconds (0 = use back-off)."""
        try:
            ob = Outbound.from_json(e.fields.get("d", ""))
        except ValueError as exc:
            await self._dead(e, f"malformed outbound: {exc}")
            return None
        # A channel whose own store makes a send idempotent (the widget's mailbox) offers
        # `deliver`: send and acknowledge in one step, no separate sent-marker round trips.
        deliver = getattr(self.channel, "deliver", None)
        marker = f"sent:{self.channel.name}:{ob.id}"
        if deliver is None and await self.r.exists(marker):
            await self.r.xack(self.stream, SENDERS_GROUP, e.id)
            return None
        try:
            if deliver is not None:
                await deliver(ob, self.stream, SENDERS_GROUP, e.id)
            else:
                await self.channel.send(ob)
        except TransientError as exc:
            n = await self.r.hincrby(f"{self.stream}:attempts", e.id, 1)
            metrics.RETRIES.labels(self.stream).inc()
            retry_after = getattr(exc, "retry_after", None)
            log.warning("outbound.retry", channel=self.channel.name, attempt=n, retry_after=retry_after,
                        error=str(exc)[:200])
            if n >= self.max_attempts:
                await self._dead(e, f"gave up after {n} transient failures: {exc}")
                return None
            return float(retry_after) if retry_after else 0.0
        except PermanentChannelError as exc:
            await self._dead(e, str(exc))
            return None
        except Exception as exc:  # a bug in an adapter must not kill the sender or drop the reply
            n = await self.r.hincrby(f"{self.stream}:attempts", e.id, 1)
            log.exception("outbound.failed", channel=self.channel.name, attempt=n, error=type(exc).__name__)
            if n >= self.max_attempts:
                await self._dead(e, f"{type(exc).__name__}: {exc}")
                return None
            return 0.0
        if deliver is None:
            pipe = self.r.pipeline(transaction=True)
            pipe.set(marker, "1", ex=7 * 24 * 3600)
            pipe.xack(self.stream, SENDERS_GROUP, e.id)
            pipe.hdel(f"{self.stream}:attempts", e.id)
            await pipe.execute()
        self.sent += 1
        metrics.MESSAGES_OUT.labels(self.channel.name).inc()
        log.info("reply.sent", channel=self.channel.name, conversation=ob.conversation_id, kind=ob.kind)
        return None

    async def _dead(self, e: Entry, reason: str) -> None:
        fields: dict[Any, Any] = {**e.fields, "error": reason[:2000], "entry": e.id}
        pipe = self.r.pipeline(transaction=True)
        pipe.xadd(self.dead, fields)
        pipe.xack(self.stream, SENDERS_GROUP, e.id)
        await pipe.execute()
        metrics.DEAD_LETTERS.labels(self.stream).inc()
        log.error("outbound.dead_lettered", channel=self.channel.name, entry=e.id, error=reason[:200])
