"""The one door onto the inbound queue for every channel: redact first (so no secret is ever
stored in Redis), then publish with dedupe on the channel's own message id."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Protocol

from bot import metrics
from bot.logs import get_logger
from bot.mailbox import Append
from bot.models import Message, Outbound
from bot.queue import Limit, Queue, RateLimited
from bot.redact import ENGINE, REDACTED_BY, Redacted, kinds_found, redact, redact_async

log = get_logger("switchboard.intake")

class Sink(Protocol):
    """Accepts one message onto the queue; returns its entry id, or None for a duplicate.
    `pre_redacted=True`: the caller already applied `redacted()` (saves a second pass).
    `limits` / `echo`: the channel's own rate counters (over one raises `OverLimit`) and an event
    for the conversation's mailbox, in the same step as the queueing; `absent` / `before`: keys
    that must not exist (one that does raises `Present`) and idempotent commands sent in the same
    round trip (`Queue.publish`)."""

    async def __call__(self, msg: Message, *, pre_redacted: bool = False, limits: tuple[Limit, ...] = (),
                       echo: Append | None = None, absent: tuple[str, ...] = (),
                       before: tuple[tuple[Any, ...], ...] = ()) -> str | None: ...


# Meta values people wrote (an e-mail subject or sender name, a command's argument, a caption):
# stored and shown like the text, so redacted like it. Ids and routing values are left alone.
_HUMAN_META = re.compile(r"subject|label|name|arg|caption|title|text")


def _meta(meta: dict[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    out = dict(meta)
    found: list[str] = []
    for k, v in meta.items():
        if k != "redacted" and isinstance(v, str) and v and _HUMAN_META.search(k) and not k.endswith(("_id", "_ref")):
            r = redact(v)
            if r.changed:
                out[k] = r.text
                found += r.kinds
    return out, tuple(found)


def _with(msg: Message, r: Redacted) -> Message:
    # Record every kind found — also those a channel already replaced in the text (e-mail redacts
    # its body itself) — so the decision knows a secret was shared even though the router only
    # ever sees marks (issue #25: a pasted seed phrase must open an urgent ticket).
    meta, in_meta = _meta(msg.meta)
    kinds = kinds_found(msg.text, msg.meta.get("redacted"), r.kinds, in_meta)
    if not kinds and not r.changed:
        return msg
    return msg.model_copy(update={"text": r.text, "meta": {**meta, "redacted": ",".join(sorted(kinds))}})


def redacted(msg: Message) -> Message:
    """The message with its text redacted and the kinds of secret found in `meta["redacted"]`."""
    return _with(msg, redact(msg.text))


async def redacted_async(msg: Message) -> Message:
    """`redacted`, off the event loop for large texts (a pasted log, a long e-mail)."""
    return _with(msg, await redact_async(msg.text))


def stamped(msg: Message) -> Message:
    """A redacted message marked with the engine that redacted it, as the intake queues it: the
    router does not redact it a second time (`bot.redact.ENGINE`)."""
    return msg.model_copy(update={"meta": {**msg.meta, REDACTED_BY: ENGINE}})


RATE_LIMITED = {
    "en": "You are sending messages faster than we can read them. Please wait a minute; messages sent "
          "meanwhile were not received.",
    "zh": "您发送消息过于频繁，请稍等一分钟再发送；在此期间发送的消息未被接收。",
}


def make_sink(queue: Queue, *, rate_per_minute: int = 0) -> Sink:
    """The intake for channels. `rate_per_minute`: per-sender limit (0 = none); over it a message is
    refused, and the first refused one of the minute gets a notice back on the sender's channel."""

    async def accept(msg: Message, *, pre_redacted: bool = False, limits: tuple[Limit, ...] = (),
                     echo: Append | None = None, absent: tuple[str, ...] = (),
                     before: tuple[tuple[Any, ...], ...] = ()) -> str | None:
        safe = stamped(msg if pre_redacted else await redacted_async(msg))
        try:
            entry = await queue.publish(safe, rate_per_minute=rate_per_minute, limits=limits, echo=echo,
                                        absent=absent, before=before)
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
        # The message is on the queue. When the router runs in this process (`switchboard up`) its
        # read of it came back in the same turn of the event loop as this reply: one turn of
        # yield lets its handling start first, so its NLU request (the long step of a reply) goes
        # out before our bookkeeping and the channel's answer to the sender, not after them.
        await asyncio.sleep(0)
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
