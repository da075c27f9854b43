"""The one door onto the inbound queue for every channel: redact first (so no secret is ever
stored in Redis), then publish with dedupe on the channel's own message id."""

from __future__ import annotations

from typing import Protocol

from bot import metrics
from bot.logs import get_logger
from bot.models import Message
from bot.queue import Queue
from bot.redact import redact

log = get_logger("switchboard.intake")

class Sink(Protocol):
    """Accepts one message onto the queue; returns its entry id, or None for a duplicate.
    `pre_redacted=True`: the caller already applied `redacted()` (saves a second pass)."""

    async def __call__(self, msg: Message, *, pre_redacted: bool = False) -> str | None: ...


def redacted(msg: Message) -> Message:
    r = redact(msg.text)
    if not r.changed:
        return msg
    kinds = ",".join(sorted(set(r.kinds)))
    return msg.model_copy(update={"text": r.text, "meta": {**msg.meta, "redacted": kinds}})


def make_sink(queue: Queue) -> Sink:
    async def accept(msg: Message, *, pre_redacted: bool = False) -> str | None:
        safe = msg if pre_redacted else redacted(msg)
        entry = await queue.publish(safe)
        if entry is None:
            metrics.MESSAGES_DUP.labels(msg.channel).inc()
            log.info("message.duplicate", channel=msg.channel, channel_message_id=msg.channel_message_id)
        else:
            metrics.MESSAGES_IN.labels(msg.channel).inc()
            log.info(
                "message.received",
                message_id=msg.id,
                channel=msg.channel,
                conversation=msg.conversation_id,
                lang=msg.lang,
                entry=entry,
            )
        return entry

    return accept
