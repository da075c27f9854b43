"""Every router decision into SQL, read from the `decisions` stream by the handoff side with its
own consumer group (the core's one stream consumer: claims, attempts, dead letters, outages).

At-least-once delivery, exactly-once counting: the decision row is keyed on the message id and the
roll-ups move only when that row is new, all in one transaction. No message text is stored."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import redis.asyncio as aioredis
from pydantic import ValidationError
from sqlalchemy import CursorResult, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import streams
from bot.consumer import Outcome, Permanent, StreamConsumer
from bot.models import Action, Decision
from bot.queue import Entry
from handoff.reports import metrics
from handoff.reports.models import ReportConversation, ReportDecision, ReportHourly
from handoff.worker import db_outage

STREAM = streams.DECISIONS
GROUP = streams.REPORTS

# Why a conversation reached a person, as the reports group it.
REASONS = ("safety_rule", "classifier", "second_failure", "user_asked")


def reason_kind(d: Decision) -> str:
    """The report's reason of a decision: for handoffs one of REASONS; otherwise the router's own
    short reason ("nlu", "low_confidence", "out_of_scope", "agent_mode", ...)."""
    r = d.reason or "nlu"
    if d.action is not Action.HANDOFF or d.silent:
        return r.split(":", 1)[0][:20]
    if r in ("second_fallback", "clarify_to_ticket"):
        return "second_failure"
    if d.topic == "human":
        return "user_asked"  # an explicit request for a person, by rule or by the classifier
    if r.startswith("safety_rule") or r == "secret_exposed":
        return "safety_rule"
    return "classifier"


def action_of(d: Decision) -> str:
    """`agent` for a message of a conversation a person owns (the bot stayed silent)."""
    return "agent" if d.silent else d.action.value


def conversation_key(channel: str, conversation_id: str) -> str:
    return hashlib.sha256(f"{channel}\0{conversation_id}".encode()).hexdigest()


def hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _insert(session: AsyncSession, table: Any) -> Any:
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


async def record(session: AsyncSession, d: Decision) -> bool:
    """Count one decision (inside the caller's transaction). False when it was already counted."""
    at = d.decided_at.astimezone(UTC)
    action, reason, version = action_of(d), reason_kind(d), (d.model_version or "")[:100]
    ins = _insert(session, ReportDecision).values(
        message_id=d.message_id[:64], decided_at=at, channel=d.channel[:32], lang=d.lang, action=action,
        topic=d.topic, intent=(d.intent or "")[:100], reason=reason, confidence=float(d.confidence),
        model_version=version,
    ).on_conflict_do_nothing(index_elements=["message_id"])
    if cast(CursorResult[Any], await session.execute(ins)).rowcount == 0:
        return False
    hour = hour_of(at)
    up = _insert(session, ReportHourly).values(
        hour=hour, channel=d.channel[:32], lang=d.lang, topic=d.topic, action=action, reason=reason,
        model_version=version, n=1,
    )
    await session.execute(up.on_conflict_do_update(
        index_elements=["hour", "channel", "lang", "topic", "action", "reason", "model_version"],
        set_={"n": ReportHourly.n + 1},
    ))
    key = conversation_key(d.channel, d.conversation_id)
    conv = _insert(session, ReportConversation).values(
        key=key, channel=d.channel[:32], lang=d.lang, topic=d.topic, started_hour=hour, handed_off_at=None,
    ).on_conflict_do_nothing(index_elements=["key"])
    await session.execute(conv)
    if action == "handoff":
        await session.execute(
            update(ReportConversation)
            .where(ReportConversation.key == key, ReportConversation.handed_off_at.is_(None))
            .values(handed_off_at=at, topic=d.topic)
        )
    metrics.observe(d, action, reason)
    return True


def decisions_handler(sm: async_sessionmaker[AsyncSession]) -> Callable[[Entry, bool], Awaitable[Outcome]]:
    async def handle(e: Entry, fresh: bool) -> Outcome:
        try:
            d = Decision.from_json(e.fields.get("d", ""))
        except ValidationError as exc:
            # Locations and messages only: the input (a user's redacted words) stays out of logs.
            why = "; ".join(f"{'.'.join(map(str, er['loc'])) or '-'}: {er['msg']}"
                            for er in exc.errors(include_input=False)[:5])
            return Permanent(f"malformed decision: {why}"[:500])
        async with sm() as s, s.begin():
            await record(s, d)
        return None

    return handle


def reports_consumer(sm: async_sessionmaker[AsyncSession], r: aioredis.Redis, *, claim_idle_ms: int = 30_000,
                     max_attempts: int = 5, block_ms: int = 1000, stream: str = STREAM) -> StreamConsumer:
    """The `decisions` stream → report tables, in the `reports` group (the review queue keeps
    reading the stream itself; trimming it no longer loses a figure)."""
    return StreamConsumer(r, stream, GROUP, decisions_handler(sm), handler_name="reports", max_attempts=max_attempts,
                          claim_idle_ms=claim_idle_ms, block_ms=block_ms, outage=db_outage)
