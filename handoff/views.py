"""The console's reads at incident scale: the views with their filters and full-text search,
paged with keysets (never OFFSET) in the console's order, and the true counters — all in SQL on
the indexes of migration 0002.

Orders (the same the console has always shown):
- open views (queue, mine, all): priority, then the first-response due time, then id;
- resolved: most recently resolved first.
A cursor is the last row's sort key, opaque to the client; the next page is "rows after it", so
a page costs the same at ticket 100,000 as at ticket 1 and never skips or repeats a ticket when
others arrive meanwhile.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from handoff import search
from handoff.models import CLOSED_SQL, OPEN_SQL, Agent, ContactIdentity, Ticket, TicketMessage, TicketTag

OPEN = ("new", "open", "pending_user")
ACTIVE = ("new", "open")
CLOSED = ("resolved", "closed")
VIEWS = ("queue", "mine", "all", "resolved")
PRIORITIES = ("urgent", "high", "normal", "low")
RANK = {p: i for i, p in enumerate(PRIORITIES)}
MAX_PAGE = 200


class BadFilter(ValueError):
    """A filter or cursor the console cannot have sent (shown to the caller as a 400)."""


@dataclass(frozen=True, slots=True)
class Filters:
    view: str = "queue"
    q: str = ""
    channels: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    assignee: str | None = None  # "me", "none" or an agent id
    tag: str | None = None
    incident: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    query: search.Query = field(default_factory=lambda: search.parse(""))
    now: datetime | None = None  # the service's clock (a VIP's ticket offered to their manager until then)

    @classmethod
    def parse(cls, params: dict[str, Any]) -> Filters:
        """From query parameters (lists comma-separated); unknown values are an error, not ignored."""
        view = str(params.get("view") or "queue")
        if view not in VIEWS:
            raise BadFilter(f"view must be one of {', '.join(VIEWS)}")

        def many(key: str, allowed: Sequence[str] | None = None) -> tuple[str, ...]:
            raw = params.get(key) or ""
            vals = tuple(v.strip() for v in (raw if isinstance(raw, list) else str(raw).split(",")) if v.strip())
            if allowed is not None and (bad := [v for v in vals if v not in allowed]):
                raise BadFilter(f"{key}: unknown value {bad[0]!r}")
            return vals

        def when(key: str) -> datetime | None:
            raw = params.get(key)
            if not raw:
                return None
            try:
                d = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
            except ValueError:
                raise BadFilter(f"{key} must be an ISO date or date-time") from None
            return d if d.tzinfo else d.replace(tzinfo=UTC)

        assignee = params.get("assignee") or None
        if assignee is not None and assignee not in ("me", "none") and not str(assignee).isdigit():
            raise BadFilter("assignee must be me, none or an agent id")
        incident = params.get("incident") or None
        if incident is not None and not str(incident).isdigit():
            raise BadFilter("incident must be an incident id")
        q = str(params.get("q") or "")[:500]
        from handoff.service import TRANSITIONS

        return cls(view=view, q=q, channels=many("channel"), priorities=many("priority", PRIORITIES),
                   statuses=many("status", tuple(TRANSITIONS)), topics=many("topic"),
                   assignee=str(assignee) if assignee else None, tag=(str(params.get("tag") or "").strip() or None),
                   incident=int(incident) if incident else None, since=when("since"), until=when("until"),
                   query=search.parse(q))

    @property
    def filtered(self) -> bool:
        return bool(self.channels or self.priorities or self.statuses or self.topics or self.assignee or self.tag
                    or self.incident or self.since or self.until or not self.query.empty)

    @property
    def resolved_order(self) -> bool:
        return self.view == "resolved"


# Literal, so the partial index of open tickets (ix_tickets_open_order) serves the open views.
_OPEN = text(f"tickets.{OPEN_SQL}")
_CLOSED = text(f"tickets.{CLOSED_SQL}")  # and the partial index of closed ones: no NULL resolved_at


def offered_ok(agent: Agent, now: datetime) -> ColumnElement[bool]:
    """A VIP's new ticket is offered to their account manager alone until `offer_until`
    (handoff.vip); then to everyone."""
    return or_(Ticket.offered_to_id.is_(None), Ticket.offered_to_id == agent.id, Ticket.offer_until <= now)


def _view(f: Filters, agent: Agent) -> ColumnElement[bool]:
    if f.view == "queue":
        return and_(_OPEN, text("tickets.status != 'pending_user'"),
                    or_(Ticket.assignee_id.is_(None), Ticket.assignee_id == agent.id),
                    offered_ok(agent, f.now or datetime.now(UTC)))
    if f.view == "mine":
        return and_(_OPEN, Ticket.assignee_id == agent.id)
    if f.view == "resolved":
        return _CLOSED  # type: ignore[return-value]
    return _OPEN  # type: ignore[return-value]


def where(f: Filters, agent: Agent, dialect: str) -> list[Any]:
    """Every condition of the view, its filters and its search."""
    conds: list[Any] = [_view(f, agent)]
    if f.channels:
        conds.append(Ticket.channel.in_(f.channels))
    if f.priorities:
        conds.append(Ticket.priority_rank.in_([RANK[p] for p in f.priorities]))
    if f.statuses:
        conds.append(Ticket.status.in_(f.statuses))
    if f.topics:
        conds.append(Ticket.topic.in_(f.topics))
    if f.assignee == "me":
        conds.append(Ticket.assignee_id == agent.id)
    elif f.assignee == "none":
        conds.append(Ticket.assignee_id.is_(None))
    elif f.assignee:
        conds.append(Ticket.assignee_id == int(f.assignee))
    if f.tag:
        conds.append(Ticket.id.in_(select(TicketTag.ticket_id).where(TicketTag.tag == f.tag.lower())))
    if f.incident:
        conds.append(Ticket.incident_id == f.incident)
    if f.since:
        conds.append(Ticket.created_at >= f.since)
    if f.until:
        conds.append(Ticket.created_at < f.until)
    if not f.query.empty:
        # "+id" on SQLite: walk the view's index in order and test each id against the matches
        # (stops after a page), instead of fetching every matching ticket and sorting them.
        conds.append(text(("+tickets.id" if dialect == "sqlite" else "tickets.id") + " IN ("
                          + search.match_ids_sql(dialect) + ")").bindparams(sq=search.query_param(dialect, f.query)))
    return conds


def order(f: Filters) -> list[Any]:
    if f.resolved_order:
        return [Ticket.resolved_at.desc(), Ticket.id.desc()]
    return [Ticket.priority_rank, Ticket.first_response_due, Ticket.id]


def _key(t: Ticket, f: Filters) -> list[Any]:
    if f.resolved_order:
        return [_iso(t.resolved_at), t.id]
    return [t.priority_rank, _iso(t.first_response_due), t.id]


def _iso(d: datetime | None) -> str | None:
    return d.isoformat() if d else None


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def after(f: Filters, cursor: str) -> ColumnElement[bool]:
    """Rows strictly after the cursor in the view's order."""
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if f.resolved_order:
            at, tid = datetime.fromisoformat(key[0]), int(key[1])
            return tuple_(Ticket.resolved_at, Ticket.id) < tuple_(at, tid)
        rank, due, tid = int(key[0]), datetime.fromisoformat(key[1]), int(key[2])
    except (ValueError, TypeError, IndexError, orjson.JSONDecodeError):
        raise BadFilter("cursor is not one this console handed out") from None
    return tuple_(Ticket.priority_rank, Ticket.first_response_due, Ticket.id) > tuple_(rank, due, tid)


@dataclass(slots=True)
class Page:
    tickets: list[Ticket]
    next: str | None
    total: int | None
    lasts: dict[int, TicketMessage]
    matches: dict[int, dict[str, Any]]


async def page(s: AsyncSession, f: Filters, agent: Agent, cursor: str | None = None, limit: int = 50,
               with_total: bool | None = None) -> Page:
    dialect = search.dialect_name(s)
    limit = max(1, min(limit, MAX_PAGE))
    conds = where(f, agent, dialect)
    stmt = select(Ticket).where(*conds)
    if cursor:
        stmt = stmt.where(after(f, cursor))
    rows = list((await s.execute(stmt.order_by(*order(f)).limit(limit + 1))).scalars())
    more = len(rows) > limit
    tickets = rows[:limit]
    nxt = encode_cursor(_key(tickets[-1], f)) if more and tickets else None
    total = None
    # The total of a filtered list or a search, on its first page (an unfiltered view's total is
    # one of the counters, /api/counts).
    if with_total if with_total is not None else (cursor is None and f.filtered):
        total = int((await s.execute(select(func.count()).select_from(Ticket).where(*conds))).scalar_one())
    lasts: dict[int, TicketMessage] = {}
    ids = [t.id for t in tickets]
    if ids:
        sub = (select(func.max(TicketMessage.id)).where(TicketMessage.ticket_id.in_(ids),
                                                        TicketMessage.direction != "note")
               .group_by(TicketMessage.ticket_id))
        for m in (await s.execute(select(TicketMessage).where(TicketMessage.id.in_(sub)))).scalars():
            lasts[m.ticket_id] = m
    matches = await _matches(s, tickets, f.query) if ids and not f.query.empty else {}
    return Page(tickets, nxt, total, lasts, matches)


async def _matches(s: AsyncSession, tickets: list[Ticket], q: search.Query) -> dict[int, dict[str, Any]]:
    """Where each ticket of the page matched: the newest message that contains the search, else
    the contact, the subject or the number — a snippet with the matched ranges."""
    out: dict[int, dict[str, Any]] = {}
    ids = [t.id for t in tickets]
    rows = (await s.execute(select(TicketMessage.ticket_id, TicketMessage.id, TicketMessage.body)
                            .where(TicketMessage.ticket_id.in_(ids)).order_by(TicketMessage.id.desc()))).all()
    best: dict[int, tuple[int, dict[str, Any], int]] = {}
    for r in rows:
        hl = search.highlight(r.body, q)
        if hl is None:
            continue
        score = sum(1 for term in q.terms if search.matches(r.body, search.Query("", (term,), ((),))))
        if r.ticket_id not in best or score > best[r.ticket_id][2]:
            best[r.ticket_id] = (r.id, hl, score)
    for t in tickets:
        if t.id in best:
            mid, hl, _ = best[t.id]
            out[t.id] = {"field": "message", "message_id": mid, **hl}
            continue
        idents: list[ContactIdentity] = list(t.contact.identities) if t.contact else []
        for fld, val in [("contact", t.contact.name if t.contact else None),
                         *[("identity", i.label) for i in idents], *[("identity", i.source_id) for i in idents],
                         ("subject", str((t.channel_meta or {}).get("reply_subject") or "")),
                         ("number", t.number), ("tag", " ".join(tt.tag for tt in t.tags))]:
            if val and (hl := search.highlight(val, q)):
                out[t.id] = {"field": fld, **hl}
                break
    return out


async def counts(s: AsyncSession, agent: Agent, now: datetime) -> dict[str, Any]:
    """Per view, per priority (open tickets) and per SLA state — one pass over the covering index."""
    active = Ticket.status.in_(ACTIVE)
    cols = [
        func.count().filter(and_(active, or_(Ticket.assignee_id.is_(None), Ticket.assignee_id == agent.id),
                                 offered_ok(agent, now))),
        func.count().filter(Ticket.assignee_id == agent.id),
        func.count(),
        func.count().filter(and_(active, Ticket.assignee_id.is_(None), Ticket.priority_rank == 0)),
        func.count().filter(and_(active, Ticket.sla_due_at <= now)),
        func.count().filter(and_(active, Ticket.sla_warn_at <= now, Ticket.sla_due_at > now)),
        *[func.count().filter(Ticket.priority_rank == i) for i in range(len(PRIORITIES))],
    ]
    row = (await s.execute(select(*cols).where(Ticket.status.in_(OPEN)))).one()
    resolved = (await s.execute(select(func.count()).select_from(Ticket).where(Ticket.status.in_(CLOSED))))
    return {
        "views": {"queue": row[0], "mine": row[1], "all": row[2], "resolved": resolved.scalar_one()},
        "unclaimed_urgent": row[3],
        "sla": {"breached": row[4], "warning": row[5]},
        "priority": dict(zip(PRIORITIES, row[6:], strict=True)),
        "at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


async def select_ids(s: AsyncSession, f: Filters, agent: Agent, cap: int) -> list[int]:
    """Every ticket matching the view, filters and search (for "select all matching"), in order,
    at most `cap`."""
    stmt = select(Ticket.id).where(*where(f, agent, search.dialect_name(s))).order_by(*order(f)).limit(cap + 1)
    return list((await s.execute(stmt)).scalars())
