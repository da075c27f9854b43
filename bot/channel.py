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
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import redis.asyncio as aioredis

from bot import metrics, streams
from bot.consumer import ACKED, AckWith, Outcome, Permanent, StreamConsumer
from bot.errors import PermanentChannelError
from bot.logs import get_logger
from bot.models import Outbound
from bot.queue import Entry
from bot.redisconn import one_slot

if TYPE_CHECKING:
    from fastapi import APIRouter

    from bot.config import ChannelSettings, Settings
    from bot.intake import Sink

log = get_logger("switchboard.channel")

SENDERS_GROUP = streams.SENDERS


class Channel(Protocol):
    name: ClassVar[str]

    @classmethod
    def from_config(cls, settings: Settings, cfg: ChannelSettings, redis: aioredis.Redis) -> Channel: ...

    async def start(self, sink: Sink) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, ob: Outbound) -> None: ...

    def routes(self) -> APIRouter | None: ...


class OutboundSender:
    """Consumes `outbound:<channel>` for one channel on the shared stream consumer: send, then
    ack, one after the other so replies go out in order. A channel's outage (`TransientError`,
    honouring its `retry_after`) is waited out and never dead-letters; a refusal for good
    (`PermanentChannelError`) goes to `outbound:<ch>:dead` at once; any other error counts an
    attempt. A reply already sent is never sent twice after a redelivery."""

    def __init__(
        self,
        redis: aioredis.Redis,
        channel: Channel,
        *,
        claim_idle_ms: int = 30_000,
        max_attempts: int = 5,
        block_ms: int = 1000,
        retention_s: int | None = None,
        stream: str | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
    ) -> None:
        self.r = redis
        self.channel = channel
        self.stream = stream or streams.outbound(channel.name)  # one partition's (see bot.streams.Layout)
        self.dead = streams.dead(self.stream)
        self.sent = 0
        self.consumer = StreamConsumer(
            redis, self.stream, SENDERS_GROUP, self._deliver, handler_name=f"sender:{channel.name}",
            max_attempts=max_attempts, claim_idle_ms=claim_idle_ms, block_ms=block_ms, batch=50,
            retention_s=retention_s, wait_replicas=wait_replicas, wait_timeout_ms=wait_timeout_ms,
        )

    async def run(self, stop: asyncio.Event, *, burst: bool = False) -> None:
        await self.consumer.run(stop, burst=burst)

    def marker(self, outbound_id: str) -> str:
        """"Sent, not yet acknowledged" of a reply: in its stream's hash slot (the partition's
        tag), so that marker, ack and attempts go to one node; `sent:<ch>:<id>` untagged."""
        tag = streams.slot_tag(self.stream)
        return f"sent:{self.channel.name}:{tag}:{outbound_id}" if tag else f"sent:{self.channel.name}:{outbound_id}"

    async def _deliver(self, e: Entry, fresh: bool) -> Outcome:
        try:
            ob = Outbound.from_json(e.fields.get("d", ""))
        except ValueError as exc:
            return Permanent(f"malformed outbound: {exc}")
        # A channel whose own store makes a send idempotent (the widget's mailbox) offers
        # `deliver`: send and acknowledge in one step, no separate sent-marker round trips; and
        # `deliver_writes` (Telegram) returns that step's last writes for the consumer to send with
        # its next read (`AckWith`).
        deliver = getattr(self.channel, "deliver", None)
        later = getattr(self.channel, "deliver_writes", None) if self.consumer.defers else None
        writes: list[tuple[Any, ...]] | None = None
        marker = self.marker(ob.id)
        # The first delivery of an entry the router's commit wrote (`streams.ONCE`): no attempt
        # can have sent any of it, so there is nothing to look up first.
        first = fresh and e.fields.get(streams.ONCE) == "1"
        if deliver is None and not first and await self.r.exists(marker):
            return None  # sent before a crash, not yet acknowledged: just ack
        try:
            if later is not None:
                writes = await later(ob, self.stream, SENDERS_GROUP, e.id, first=first)
            elif deliver is not None:
                await deliver(ob, self.stream, SENDERS_GROUP, e.id, first=first)
            else:
                await self.channel.send(ob)
        except PermanentChannelError as exc:
            return Permanent(str(exc))
        if deliver is None:
            # In any order, so no MULTI needed (an untagged stream's keys are on three slots of a
            # cluster): a marker without the ack only makes a redelivery ack, an ack without the
            # marker leaves nothing to redeliver.
            attempts = streams.attempts(self.stream)
            pipe = self.r.pipeline(transaction=one_slot(self.r, marker, self.stream, attempts))
            pipe.set(marker, "1", ex=7 * 24 * 3600)
            pipe.xack(self.stream, SENDERS_GROUP, e.id)
            pipe.hdel(attempts, e.id)
            await pipe.execute()
        self.sent += 1
        metrics.MESSAGES_OUT.labels(self.channel.name).inc()
        log.info("reply.sent", channel=self.channel.name, conversation=ob.conversation_id, kind=ob.kind)
        return AckWith(tuple(writes)) if writes else ACKED
