"""Ticket data model (SQLAlchemy 2). Names follow Chatwoot's: contact, contact identity per
channel (`source_id`), ticket (conversation) with assignee, status, priority, `waiting_since` and
the applied SLA due times. Messages hold redacted text only; the audit log is append-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Open tickets, as literal SQL: a partial index is used only by queries that state its condition
# the same way (a bound parameter would not do), see handoff/views.py.
OPEN_SQL = "status IN ('new', 'open', 'pending_user')"
CLOSED_SQL = "status IN ('resolved', 'closed')"
FILTER_COLUMNS = ("status", "assignee_id", "channel", "topic", "created_at", "incident_id")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    vip: Mapped[int] = mapped_column(Integer, default=0)
    # The VIP's account manager: their new tickets are offered to them first (handoff.vip).
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    identities: Mapped[list[ContactIdentity]] = relationship(back_populates="contact", lazy="selectin")


class ContactIdentity(Base):
    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("channel", "source_id", name="uq_identity_channel_source"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(512))
    label: Mapped[str | None] = mapped_column(String(200))
    contact: Mapped[Contact] = relationship(back_populates="identities")


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="agent")  # agent | supervisor
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # The console's language (handoff/static/i18n/<code>.json); None: the browser's, until chosen.
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True, default=None)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_priority", "status", "priority_rank"),
        Index("ix_tickets_conversation", "channel", "conversation_id"),
        # The console's orders (keyset pagination): open tickets by priority, due time, id — a
        # partial index over the open ones only — and resolved ones by resolution time. Both carry
        # the filter columns, so a filtered page or its total never reads the table.
        Index("ix_tickets_open_order", "priority_rank", "first_response_due", "id", *FILTER_COLUMNS,
              sqlite_where=text(OPEN_SQL), postgresql_where=text(OPEN_SQL)),
        Index("ix_tickets_resolved_order", "resolved_at", "id", *FILTER_COLUMNS,
              sqlite_where=text(CLOSED_SQL), postgresql_where=text(CLOSED_SQL)),
        # Covers the counters (per view, priority and SLA state) without reading the table.
        Index("ix_tickets_counts", "status", "priority_rank", "assignee_id", "sla_due_at", "sla_warn_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[str] = mapped_column(String(512))
    topic: Mapped[str] = mapped_column(String(32))
    intent: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(10))
    priority_rank: Mapped[int] = mapped_column(Integer)  # 0 urgent … 3 low, for ordering
    status: Mapped[str] = mapped_column(String(20), default="new")
    lang: Mapped[str] = mapped_column(String(5), default="en")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    channel_meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    waiting_since: Mapped[datetime | None]
    first_response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    first_responded_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    sla_warned_at: Mapped[datetime | None]
    sla_breached_at: Mapped[datetime | None]
    csat: Mapped[int | None] = mapped_column(Integer)
    # The SLA clock in two columns the counters can compare with `now` in SQL: the due time that
    # currently applies (first response, then resolution) and when its warning starts.
    sla_due_at: Mapped[datetime | None]
    sla_warn_at: Mapped[datetime | None]
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), index=True)
    # Offered to the contact's account manager alone until offer_until; then to the queue.
    offered_to_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    offer_until: Mapped[datetime | None]
    contact: Mapped[Contact] = relationship(lazy="selectin")
    assignee: Mapped[Agent | None] = relationship(lazy="selectin", foreign_keys=[assignee_id])
    tags: Mapped[list[TicketTag]] = relationship(lazy="selectin", cascade="all, delete-orphan",
                                                 order_by="TicketTag.tag")


class TicketTag(Base):
    __tablename__ = "ticket_tags"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Incident(Base):
    """A known problem many users write about ("BTC withdrawals delayed"): linked tickets get its
    updates, and the bot answers new messages that match its keywords with its message."""

    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="active", index=True)  # active | resolved
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)  # each: words that must all appear
    message_en: Mapped[str] = mapped_column(Text)
    message_zh: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class TicketMessage(Base):
    __tablename__ = "ticket_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # in | out | note
    author_type: Mapped[str] = mapped_column(String(10))  # user | bot | agent | system
    author_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    channel: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)  # redacted
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    source_message_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # dedupe
    created_at: Mapped[datetime]
    author: Mapped[Agent | None] = relationship(lazy="selectin")


class AuditLog(Base):
    """Append-only: every state change of a ticket, who did it and when."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime]


class Feedback(Base):
    """An agent's correction of the bot ("bot was wrong": the right topic/intent), for retraining."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    text: Mapped[str] = mapped_column(Text)  # redacted
    lang: Mapped[str] = mapped_column(String(5))
    predicted_intent: Mapped[str | None] = mapped_column(String(100))
    correct_topic: Mapped[str] = mapped_column(String(32))
    correct_intent: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(20))  # agent | csat | fallback | rephrase
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    status: Mapped[str] = mapped_column(String(12), default="new")  # new | accepted | discarded
    created_at: Mapped[datetime]


class Callback(Base):
    """A phone call back the user asked for (handoff.callbacks): the number (personal data, kept
    for the call, never logged), the window in the user's time zone, its own due time."""

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_status_due", "status", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    tz: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | claimed | done | no_answer
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ticket: Mapped[Ticket] = relationship(lazy="selectin")
    assignee: Mapped[Agent | None] = relationship(lazy="selectin", foreign_keys=[assignee_id])
