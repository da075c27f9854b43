"""The one door onto the inbound queue for every channel: redact first (so no secret is ever
stored in Redis), then publish with dedupe on the channel's own message id."""

from __future__ import annotations

from typing import Protocol

from bot import metrics
from bot.logs import get_logger
from bot.models import Message, Outbound
from bot.queue import Queue, RateLimited
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


RATE_LIMITED = {
    "en": "You are sending messages faster than we can read them. Please wait a minute; messages sent "
          "meanwhile were not received.",
    "zh": "您发送消息过于频繁，请稍等一分钟再发送；在此期间发送的消息未被接收。",
}


def make_sink(queue: Queue, *, rate_per_minute: int = 0) -> Sink:
    """The intake for channels. `rate_per_minute`: per-sender limit (0 = none); over it a message is
    refused, and the first refused one of the minute gets a notice back on the sender's channel."""

    async def accept(msg: Message, *, pre_redacted: bool = False) -> str | None:
        safe = msg if pre_redacted else redacted(msg)
        try:
            entry = await queue.publish(safe, rate_per_minute=rate_per_minute)
        except RateLimited as e:
            metrics.MESSAGES_LIMITED.labels(msg.channel).inc()
            log.warning("message.rate_limited", channel=msg.channel, conversation=msg.conversation_id,
                        count=e.count, limit=e.limit)
            if e.first:
                notice = Outbound(
                    channel=msg.channel, conversation_id=msg.conversation_id, user_id=msg.user_id,
                    text=RATE_LIMITED[msg.lang], lang=msg.lang, kind="system", topic="rate_limited",
                    meta={k: v for k, v in msg.meta.items() if k.startswith("reply_")},
                )
                lay = queue.layout
                await queue.r.xadd(lay.outbound(msg.channel, lay.partition(msg.conversation_id)),
                                   {"d": notice.to_json()})
            return None
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
