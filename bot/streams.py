"""Every Redis stream and consumer group of the product, named in one place.

The inbound stream's name and the routers' group come from `queue.inbound_stream` / `queue.group`
(defaults below); everything else is fixed.
"""

from __future__ import annotations

INBOUND = "inbound"  # default of queue.inbound_stream
ROUTERS = "routers"  # default of queue.group: the router workers
HANDOFF = "handoff"  # router → tickets (handoff decisions, messages of agent-owned conversations, CSAT)
TICKETS = "tickets"  # the group of the handoff consumers
SENDERS = "senders"  # the group of every channel's outbound sender
DECISIONS = "decisions"  # capped log of every decision (review queue, evaluation)
DECISIONS_MAXLEN = 100_000
REPORTS = "reports"  # the group of the handoff side that records every decision in SQL (reports)


def outbound(channel: str) -> str:
    """Replies waiting for a channel's sender."""
    return f"outbound:{channel}"


def dead(stream: str) -> str:
    """Where entries that cannot be handled go, with their error."""
    return f"{stream}:dead"


def attempts(stream: str) -> str:
    """Legacy per-entry failure counters (kept for entries queued by older versions)."""
    return f"{stream}:attempts"


def conv_log(conversation_id: str) -> str:
    """The conversation's recent turns (capped), shown in a ticket opened later."""
    return f"conv:{conversation_id}:log"


def all_consumed(inbound: str, group: str, channels: list[str]) -> list[tuple[str, str]]:
    """(stream, group) of every stream a consumer reads: for the dead-letter CLI and readiness."""
    return [(inbound, group), (HANDOFF, TICKETS), (DECISIONS, REPORTS), *[(outbound(c), SENDERS) for c in channels]]
