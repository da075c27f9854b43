"""Incidents: one known problem many users write about ("BTC withdrawals delayed").

A supervisor opens an incident (title, keywords, the message users get in English and Chinese),
links tickets to it (a selection or everything matching a search), sends updates that reach every
linked user on their own channel in their language, and resolves it, which resolves the linked
open tickets with a final message. While it is active, the router answers new messages matching
its keywords with its message instead of opening more tickets (`IncidentBook`, the router's
`IncidentLookup`). Every change is audited per ticket.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.logs import get_logger
from bot.redact import redact
from handoff import search
from handoff.models import Agent, Incident, Ticket, TicketMessage
from handoff.service import OPEN_STATUSES, Forbidden, NotFound, TicketError, TicketService, iso

log = get_logger("switchboard.handoff")

CHUNK = 200


@dataclass(frozen=True, slots=True)
class KnownIncident:
    """What the router needs to answer a message about an active incident."""

    id: int
    title: str
    message: str  # in the language asked for


def keyword_groups(keywords: Sequence[str]) -> list[list[str]]:
    """Each keyword line is a group of words that must all appear: "BTC withdraw", "提币 延迟"."""
    groups = []
    for k in keywords:
        words = [search.normalize(w) for w in str(k).split() if w.strip()]
        if words:
            groups.append(words)
    return groups


def matches(text: str, groups: list[list[str]]) -> bool:
    n = search.normalize(text)
    return any(all(w in n for w in g) for g in groups)


class IncidentBook:
    """The active incidents, cached for a few seconds: the router asks on every message."""

    def __init__(self, svc: TicketService, ttl_s: float = 3.0) -> None:
        self.svc = svc
        self.ttl_s = ttl_s
        self._at = 0.0
        self._active: list[tuple[Incident, list[list[str]]]] = []

    def invalidate(self) -> None:
        self._at = 0.0

    async def active(self) -> list[tuple[Incident, list[list[str]]]]:
        if time.monotonic() - self._at > self.ttl_s:
            try:
                async with self.svc.sm() as s:
                    rows = list((await s.execute(select(Incident).where(Incident.status == "active")
                                                 .order_by(Incident.id.desc()))).scalars())
            except (OperationalError, DBAPIError, OSError) as e:
                # The ticket database is down: the bot keeps answering, with what it knew.
                log.warning("incidents.unavailable", error=str(e)[:200])
                self._at = time.monotonic()
                return self._active
            self._active = [(i, keyword_groups(i.keywords or [])) for i in rows]
            self._at = time.monotonic()
        return self._active

    async def incident_for(self, text: str, lang: str) -> KnownIncident | None:
        if not text.strip():
            return None
        for inc, groups in await self.active():
            if groups and matches(text, groups):
                msg = inc.message_zh if lang == "zh" else inc.message_en
                return KnownIncident(inc.id, inc.title, msg)
        return None


class Incidents:
    def __init__(self, svc: TicketService) -> None:
        self.svc = svc

    @staticmethod
    def _supervisor(actor: Agent) -> None:
        if actor.role != "supervisor":
            raise Forbidden("incidents are managed by supervisors", "supervisors_only")

    @staticmethod
    def _texts(en: Any, zh: Any, what: str) -> tuple[str, str]:
        en_s, zh_s = str(en or "").strip(), str(zh or "").strip()
        if not en_s or not zh_s:
            raise TicketError(f"the {what} needs its text in English and in Chinese", "texts_both_languages")
        if len(en_s) > 4000 or len(zh_s) > 4000:
            raise TicketError(f"the {what} is too long (4,000 characters at most)", "text_too_long", max=4000)
        return en_s, zh_s

    def json(self, i: Incident, linked: int = 0, open_linked: int = 0) -> dict[str, Any]:
        return {"id": i.id, "title": i.title, "status": i.status, "keywords": list(i.keywords or []),
                "message_en": i.message_en, "message_zh": i.message_zh, "created_by": i.created_by,
                "created_at": iso(i.created_at), "updated_at": iso(i.updated_at), "resolved_at": iso(i.resolved_at),
                "linked": linked, "open_linked": open_linked}

    async def list(self) -> list[dict[str, Any]]:
        async with self.svc.sm() as s:
            incs = list((await s.execute(select(Incident).order_by(Incident.status, Incident.id.desc())
                                         .limit(100))).scalars())
            counts: dict[Any, tuple[int, int]] = {}
            if incs:
                rows = await s.execute(
                    select(Ticket.incident_id, func.count(),
                           func.count().filter(Ticket.status.in_(OPEN_STATUSES)))
                    .where(Ticket.incident_id.in_([i.id for i in incs])).group_by(Ticket.incident_id))
                counts = {r[0]: (r[1], r[2]) for r in rows}
            return [self.json(i, *counts.get(i.id, (0, 0))) for i in incs]

    async def create(self, actor: Agent, title: str, keywords: Sequence[str], en: str, zh: str) -> dict[str, Any]:
        self._supervisor(actor)
        title = str(title or "").strip()[:200]
        if not title:
            raise TicketError("an incident needs a title", "incident_title_missing")
        kws = [str(k).strip()[:100] for k in keywords if str(k).strip()][:20]
        en, zh = self._texts(en, zh, "incident message")
        now = self.svc.clock()
        async with self.svc.sm() as s, s.begin():
            inc = Incident(title=title, status="active", keywords=kws, message_en=en, message_zh=zh,
                           created_by=actor.name, created_at=now, updated_at=now)
            s.add(inc)
            await s.flush()
            out = self.json(inc)
        log.info("incident.opened", incident=out["id"], title=title, by=actor.name)
        await self.svc.publish({"type": "incident", "incident": out})
        return out

    async def _get(self, s: Any, incident_id: int, active: bool = True) -> Incident:
        inc = await s.get(Incident, incident_id)
        if inc is None:
            raise NotFound(f"no incident {incident_id}", "incident_not_found", id=incident_id)
        if active and inc.status != "active":
            raise TicketError(f"incident {incident_id} is {inc.status}", "incident_not_active", id=incident_id,
                              status=inc.status)
        return inc

    async def link(self, actor: Agent, incident_id: int, ticket_ids: Sequence[int]) -> dict[str, Any]:
        """Link open tickets (already linked elsewhere: moved here, audited)."""
        self._supervisor(actor)
        linked, skipped = 0, 0
        ids = sorted(set(ticket_ids))
        for i in range(0, len(ids), CHUNK):
            async with self.svc.sm() as s, s.begin():
                inc = await self._get(s, incident_id)
                for t in (await s.execute(select(Ticket).where(Ticket.id.in_(ids[i:i + CHUNK])))).scalars():
                    if t.status not in OPEN_STATUSES or t.incident_id == inc.id:
                        skipped += 1
                        continue
                    prev = t.incident_id
                    t.incident_id = inc.id
                    t.updated_at = self.svc.clock()
                    self.svc._audit(s, t, actor.name, "incident_linked", incident=inc.id, title=inc.title,
                                    detail_from=prev)
                    linked += 1
        log.info("incident.linked", incident=incident_id, tickets=linked, by=actor.name)
        await self.svc.publish({"type": "bulk", "action": "incident_link", "count": linked})
        return {"linked": linked, "skipped": skipped}

    async def _each_linked(self, actor: Agent, inc_id: int, texts: tuple[str, str], action: str,
                           resolve: bool) -> int:
        """Send `texts` to every open linked ticket's user (their language, their channel), and
        resolve those tickets when asked. Chunked; messages leave after their chunk commits."""
        reached = 0
        last_id = 0
        while True:
            sends: list[tuple[Ticket, str]] = []
            async with self.svc.sm() as s, s.begin():
                q = (select(Ticket).where(Ticket.incident_id == inc_id, Ticket.status.in_(OPEN_STATUSES),
                                          Ticket.id > last_id).order_by(Ticket.id).limit(CHUNK))
                if search.dialect_name(s) == "postgresql":
                    q = q.with_for_update()
                rows = list((await s.execute(q)).scalars())
                if not rows:
                    break
                now = self.svc.clock()
                for t in rows:
                    last_id = t.id
                    body = texts[1] if t.lang == "zh" else texts[0]
                    # stored redacted, like every agent reply (the user gets what was written)
                    s.add(TicketMessage(ticket_id=t.id, direction="out", author_type="agent", author_id=actor.id,
                                        channel=t.channel, body=redact(body).text, attachments=[], created_at=now))
                    if t.first_responded_at is None:
                        t.first_responded_at = now
                        self.svc._sla_clock(t)
                    if resolve:
                        self.svc._transition(s, t, "resolved", actor.name, "incident_resolved")
                        t.waiting_since = None
                    else:
                        t.updated_at = now
                    self.svc._audit(s, t, actor.name, action, incident=inc_id)
                    sends.append((t, body))
                await s.flush()
                await search.reindex(s, [t.id for t, _ in sends])
            for t, body in sends:
                await self.svc._outbound(t, body, "agent", author=actor.name)
                if resolve:
                    await self.svc._set_mode(t.conversation_id, "bot")
            reached += len(sends)
        return reached

    async def update(self, actor: Agent, incident_id: int, en: str, zh: str) -> dict[str, Any]:
        """One update to every linked user; it also becomes what the bot tells new users."""
        self._supervisor(actor)
        texts = self._texts(en, zh, "update")
        async with self.svc.sm() as s, s.begin():
            inc = await self._get(s, incident_id)
            inc.message_en, inc.message_zh = texts
            inc.updated_at = self.svc.clock()
        reached = await self._each_linked(actor, incident_id, texts, "incident_update", resolve=False)
        log.info("incident.updated", incident=incident_id, reached=reached, by=actor.name)
        await self.svc.publish({"type": "bulk", "action": "incident_update", "count": reached})
        return {"reached": reached}

    async def resolve(self, actor: Agent, incident_id: int, en: str, zh: str) -> dict[str, Any]:
        """The incident is over: every linked open ticket is resolved with the final message, and
        the bot stops answering with the incident."""
        self._supervisor(actor)
        texts = self._texts(en, zh, "final message")
        async with self.svc.sm() as s, s.begin():
            inc = await self._get(s, incident_id)
            inc.status = "resolved"
            inc.resolved_at = inc.updated_at = self.svc.clock()
        reached = await self._each_linked(actor, incident_id, texts, "incident_final", resolve=True)
        log.info("incident.resolved", incident=incident_id, resolved=reached, by=actor.name)
        await self.svc.publish({"type": "bulk", "action": "incident_resolve", "count": reached})
        return {"resolved": reached}
