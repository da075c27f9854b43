"""Every Redis stream and consumer group of the product, named in one place.

The inbound stream's name and the routers' group come from `queue.inbound_stream` / `queue.group`
(defaults below); everything else is fixed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

INBOUND = "inbound"  # default of queue.inbound_stream
ROUTERS = "routers"  # default of queue.group: the router workers
HANDOFF = "handoff"  # router → tickets (handoff decisions, messages of agent-owned conversations, CSAT)
TICKETS = "tickets"  # the group of the handoff consumers
SENDERS = "senders"  # the group of every channel's outbound sender
DECISIONS = "decisions"  # capped log of every decision (review queue, evaluation)
DECISIONS_MAXLEN = 100_000
REPORTS = "reports"  # the group of the handoff side that records every decision in SQL (reports)


# A field of the entries the router's commit writes onto work queues (outbound, handoff): the
# entry is the only one ever made of its payload (the commit is exactly-once, its ids are new).
# So on its first delivery nothing of it can have been sent yet, and a sender may skip its
# "sent before?" read. A replayed dead letter is a copy and is written without it.
ONCE = "o"


def outbound(channel: str) -> str:
    """Replies waiting for a channel's sender."""
    return f"outbound:{channel}"


def dead(stream: str) -> str:
    """Where entries that cannot be handled go, with their error."""
    return f"{stream}:dead"


def attempts(stream: str) -> str:
    """Legacy per-entry failure counters (kept for entries queued by older versions)."""
    return f"{stream}:attempts"


def slot_tag(key: str) -> str:
    """The hash tag of a key (`{p3}` of `outbound:web:{p3}`), '' when it has none: what Redis
    Cluster hashes instead of the whole key (the first `{…}` with something inside)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start:end + 1] if end > start + 1 else ""


# -- partitions and hash tags -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Layout:
    """Where a conversation's keys live: its partition and every key of it in one hash slot.

    A conversation belongs to partition `crc32(conversation id) % partitions`. In the tagged
    layout (a Redis Cluster, or more than one partition) every key a Lua script touches for that
    conversation carries the partition's hash tag `{pN}`: the inbound stream `inbound:{p3}`, its
    attempts and dead letters, the conversation's state `conv:{p3}:<id>`, skip set, log, the
    dedupe markers `seen:{p3}:…`, the per-sender rate counters and the streams the router's commit
    writes (`outbound:<ch>:{p3}`, `handoff:{p3}`, `decisions:{p3}`). So each script touches one slot
    and a partition's streams sit on one master. The untagged layout (one Redis, one partition)
    keeps the historical names (`inbound`, `conv:<id>`, `outbound:<ch>`…)."""

    partitions: int = 1
    tagged: bool = False
    inbound_base: str = INBOUND

    @classmethod
    def of(cls, settings: Any) -> Layout:
        """From `Settings` (duck-typed: bot.config imports nothing from here)."""
        n = int(settings.queue.partitions)
        return cls(n, n > 1 or bool(settings.redis.is_cluster), settings.queue.inbound_stream)

    def partition(self, conversation_id: str) -> int:
        if self.partitions == 1:
            return 0
        return zlib.crc32(conversation_id.encode("utf-8", "surrogatepass")) % self.partitions

    def tag(self, p: int) -> str:
        return f"{{p{p}}}" if self.tagged else ""

    def _suffix(self, base: str, p: int) -> str:
        return f"{base}:{self.tag(p)}" if self.tagged else base

    def inbound(self, p: int) -> str:
        return self._suffix(self.inbound_base, p)

    def outbound(self, channel: str, p: int) -> str:
        return self._suffix(outbound(channel), p)

    def handoff(self, p: int) -> str:
        return self._suffix(HANDOFF, p)

    def decisions(self, p: int) -> str:
        return self._suffix(DECISIONS, p)

    def conv(self, conversation_id: str, p: int | None = None) -> str:
        if not self.tagged:
            return f"conv:{conversation_id}"
        return f"conv:{self.tag(self.partition(conversation_id) if p is None else p)}:{conversation_id}"

    def conv_log(self, conversation_id: str) -> str:
        return self.conv(conversation_id) + ":log"

    def seen(self, dedupe_key: str, p: int) -> str:
        return f"seen:{self.tag(p)}:{dedupe_key}" if self.tagged else f"seen:{dedupe_key}"

    def user_rate(self, channel: str, user_id: str, minute: int, p: int) -> str:
        """Per-sender counter; tagged, it counts per partition (a sender's conversations of one
        channel normally share one partition: the conversation id is per user and channel)."""
        if self.tagged:
            return f"rl:user:{self.tag(p)}:{channel}:{user_id}:{minute}"
        return f"rl:user:{channel}:{user_id}:{minute}"

    def all(self) -> list[int]:
        return list(range(self.partitions))

    def outbound_streams(self, channel: str) -> list[str]:
        """Every stream a channel's senders read: each partition's, and in the tagged layout also
        the untagged `outbound:<ch>` that single-key notices of the adapters are written to."""
        out = [self.outbound(channel, p) for p in self.all()]
        return out + [outbound(channel)] if self.tagged else out

    def handoff_streams(self) -> list[str]:
        out = [self.handoff(p) for p in self.all()]
        return out + [HANDOFF] if self.tagged else out

    def consumed(self, group: str, channels: list[str]) -> list[tuple[str, str]]:
        """(stream, group) of every stream a consumer reads: for the dead-letter CLI and readiness."""
        return [*[(self.inbound(p), group) for p in self.all()], *[(s, TICKETS) for s in self.handoff_streams()],
                *[(self.decisions(p), REPORTS) for p in self.all()],
                *[(s, SENDERS) for c in channels for s in self.outbound_streams(c)]]
