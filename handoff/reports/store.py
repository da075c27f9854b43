"""Every router decision into SQL, read from the `decisions` stream by the handoff side with its
own consumer group (the core's one stream consumer: claims, attempts, dead letters, outages).

At-least-once delivery, exactly-once counting: the decision row is keyed on the message id and the
roll-ups move only when that row is new, all in one transaction. No message text is stored."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError
from sqlalchemy import Table, bindparam, update
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
DECISIONS: Table = ReportDecision.__table__  # type: ignore[assignment]
HOURLY: Table = ReportHourly.__table__  # type: ignore[assignment]
CONVERSATIONS: Table = ReportConversation.__table__  # type: ignore[assignment]
# Reports may be a moment behind: reading at most once a second, up to BATCH decisions a read, turns
# the stream into a few large transactions instead of many small ones. A transaction costs about
# 2 ms of CPU whatever its size (the session, four statements, aiosqlite's thread hand-offs, the
# commit) and a decision about 20 µs more: 75 µs a decision in batches of 50, 27 in batches of 500
# (SQLite, this repo's 2-core machine).
LINGER_S = 1.0
BATCH = 500

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
    return bool(await record_many(session, [d]))


async def record_many(session: AsyncSession, ds: list[Decision]) -> int:
    """Count decisions, in stream order, inside the caller's transaction, in a few statements
    whatever their number: the rows (those already counted are skipped), the hourly roll-ups
    summed per key, each conversation's first appearance and first handoff. Returns how many were
    new."""
    rows: dict[str, tuple[Decision, datetime, str, str, str]] = {}
    for d in ds:  # a redelivered entry may sit twice in one batch
        rows.setdefault(d.message_id[:64], (d, d.decided_at.astimezone(UTC), action_of(d), reason_kind(d),
                                            (d.model_version or "")[:100]))
    if not rows:
        return 0
    # Statements with bound parameters (executemany, "insertmanyvalues" for the RETURNING one):
    # compiled once and cached, whatever the batch size.
    ins = (_insert(session, DECISIONS).on_conflict_do_nothing(index_elements=["message_id"])
           .returning(DECISIONS.c.message_id))
    new = set((await session.execute(ins, [
        {"message_id": mid, "decided_at": at, "channel": d.channel[:32], "lang": d.lang, "action": action,
         "topic": d.topic, "intent": (d.intent or "")[:100], "reason": reason, "confidence": float(d.confidence),
         "model_version": version}
        for mid, (d, at, action, reason, version) in rows.items()
    ])).scalars())
    if not new:
        return 0
    fresh = [v for mid, v in rows.items() if mid in new]
    hourly: dict[tuple[Any, ...], int] = {}
    convs: dict[str, dict[str, Any]] = {}
    handoffs: list[dict[str, Any]] = []
    for d, at, action, reason, version in fresh:
        hour = hour_of(at)
        k = (hour, d.channel[:32], d.lang, d.topic, action, reason, version)
        hourly[k] = hourly.get(k, 0) + 1
        key = conversation_key(d.channel, d.conversation_id)
        convs.setdefault(key, {"key": key, "channel": d.channel[:32], "lang": d.lang, "topic": d.topic,
                               "started_hour": hour, "handed_off_at": None})
        if action == "handoff":
            handoffs.append({"k": key, "at": at, "topic": d.topic})
        metrics.observe(d, action, reason)
    up = _insert(session, HOURLY)
    await session.execute(up.on_conflict_do_update(
        index_elements=["hour", "channel", "lang", "topic", "action", "reason", "model_version"],
        set_={"n": HOURLY.c.n + up.excluded.n},
    ), [{"hour": h, "channel": c, "lang": lg, "topic": t, "action": a, "reason": r, "model_version": v, "n": n}
        for (h, c, lg, t, a, r, v), n in hourly.items()])
    await session.execute(_insert(session, CONVERSATIONS).on_conflict_do_nothing(index_elements=["key"]),
                          list(convs.values()))
    if handoffs:  # in order: the first handoff of a conversation is the one kept
        await session.execute(
            update(CONVERSATIONS)
            .where(CONVERSATIONS.c.key == bindparam("k"), CONVERSATIONS.c.handed_off_at.is_(None))
            .values(handed_off_at=bindparam("at"), topic=bindparam("topic")),
            handoffs,
        )
    return len(fresh)


def _parse(e: Entry) -> Decision | Permanent:
    try:
        return Decision.from_json(e.fields.get("d", ""))
    except ValidationError as exc:
        # Locations and messages only: the input (a user's redacted words) stays out of logs.
        why = "; ".join(f"{'.'.join(map(str, er['loc'])) or '-'}: {er['msg']}"
                        for er in exc.errors(include_input=False)[:5])
        return Permanent(f"malformed decision: {why}"[:500])


def decisions_handler(sm: async_sessionmaker[AsyncSession]) -> Callable[[Entry, bool], Awaitable[Outcome]]:
    async def handle(e: Entry, fresh: bool) -> Outcome:
        d = _parse(e)
        if isinstance(d, Permanent):
            return d
        async with sm() as s, s.begin():
            await record(s, d)
        return None

    return handle


def batch_handler(sm: async_sessionmaker[AsyncSession]) -> Callable[[list[Entry]], Awaitable[list[Outcome]]]:
    """Every decision of one read in one transaction (the consumer falls back to one at a time
    when the batch fails, so one bad entry cannot hold up the others)."""

    async def handle(entries: list[Entry]) -> list[Outcome]:
        parsed = [_parse(e) for e in entries]
        async with sm() as s, s.begin():
            await record_many(s, [d for d in parsed if isinstance(d, Decision)])
        return [d if isinstance(d, Permanent) else None for d in parsed]

    return handle


def reports_consumer(sm: async_sessionmaker[AsyncSession], r: aioredis.Redis, *, claim_idle_ms: int = 30_000,
                     max_attempts: int = 5, block_ms: int = 1000, stream: str = STREAM) -> StreamConsumer:
    """The `decisions` stream → report tables, in the `reports` group (the review queue keeps
    reading the stream itself; trimming it no longer loses a figure)."""
    return StreamConsumer(r, stream, GROUP, decisions_handler(sm), handler_name="reports", max_attempts=max_attempts,
                          claim_idle_ms=claim_idle_ms, block_ms=block_ms, outage=db_outage,
                          batch_handler=batch_handler(sm), linger_s=LINGER_S, batch=BATCH)
