"""Tables the reports read. Decisions outlive the capped `decisions` stream here — never a message's
text: one row per decision (idempotent on the message id), hourly roll-ups the reports sum, and one
row per conversation (when it started, whether it reached a person)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from handoff.models import Base


class ReportDecision(Base):
    """One router decision, without text: the dedupe key of the roll-ups and the source of the
    per-intent figures (top misunderstood intents)."""

    __tablename__ = "report_decisions"
    __table_args__ = (Index("ix_report_decisions_action_at", "action", "decided_at", "intent"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    decided_at: Mapped[datetime] = mapped_column(index=True)
    channel: Mapped[str] = mapped_column(String(32))
    lang: Mapped[str] = mapped_column(String(5))
    action: Mapped[str] = mapped_column(String(10))  # answer | clarify | handoff | agent (silent)
    topic: Mapped[str] = mapped_column(String(32))
    intent: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(20))  # see store.reason_kind
    confidence: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(100))


class ReportHourly(Base):
    """Decisions counted per hour and dimension: what every volume and bot chart sums."""

    __tablename__ = "report_hourly"
    # Clustered on its key in SQLite: a period's rows are read in one range, without a lookup each.
    __table_args__ = {"sqlite_with_rowid": False}
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    lang: Mapped[str] = mapped_column(String(5), primary_key=True)
    topic: Mapped[str] = mapped_column(String(32), primary_key=True)
    action: Mapped[str] = mapped_column(String(10), primary_key=True)
    reason: Mapped[str] = mapped_column(String(20), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(100), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class ReportConversation(Base):
    """A conversation as the reports see it: its channel, language, topic (of its handoff, else of
    its first message), the hour it started and when it first reached a person."""

    __tablename__ = "report_conversations"
    # Covers the report's query (no table lookup per conversation).
    __table_args__ = (Index("ix_report_conversations_started", "started_hour", "channel", "lang", "topic",
                            "handed_off_at"),)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of channel + conversation id
    channel: Mapped[str] = mapped_column(String(32))
    lang: Mapped[str] = mapped_column(String(5))
    topic: Mapped[str] = mapped_column(String(32))
    started_hour: Mapped[datetime]
    handed_off_at: Mapped[datetime | None]
