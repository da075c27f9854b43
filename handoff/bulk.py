"""Bulk actions on many tickets at once (a selection, or everything matching a search): assign /
transfer, set priority, add a tag, resolve with a canned reply, close as spam.

Each ticket is checked and changed on its own terms — the same permission rule and state machine
as a single action, one audit row per ticket carrying the bulk operation's id — in transactions of
`CHUNK` tickets, so thousands of tickets never hold one long lock. Replies leave through the
outbound streams only after their chunk is committed: a user hears about a change that happened,
once; a ticket already resolved is skipped, never messaged again.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.logs import get_logger
from bot.redact import redact
from handoff import search
from handoff.models import Agent, Ticket, TicketMessage, TicketTag
from handoff.service import (
    OPEN_STATUSES,
    PRIORITY_RANK,
    Forbidden,
    NotFound,
    TicketError,
    TicketService,
)

log = get_logger("switchboard.handoff")

ACTIONS = ("assign", "priority", "tag", "untag", "resolve", "spam")
CHUNK = 200
MAX_TICKETS = 20_000
TAG_RE = re.compile(r"^[\w][\w.-]{0,63}$", re.UNICODE)


def load_canned(path: Path) -> dict[str, dict[str, str]]:
    """canned.yml → {key: {"en": …, "zh": …, "title": …}}."""
    items = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else []
    out: dict[str, dict[str, str]] = {}
    for it in items or []:
        entry = {k: str(v) for k, v in it.items() if k in ("en", "zh")}
        title = it.get("title")  # one string, or per interface language ({en: …, zh: …})
        entry["title"] = str((title.get("en") or next(iter(title.values()), "")) if isinstance(title, dict) else title or it["key"])
        out[str(it["key"])] = entry
    return out


@dataclass(slots=True)
class Result:
    bulk_id: str
    action: str
    done: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {"bulk": self.bulk_id, "action": self.action, "done": len(self.done), "numbers": self.done[:1000],
                "skipped": self.skipped[:1000], "skipped_count": len(self.skipped)}


@dataclass(frozen=True, slots=True)
class _Send:
    ticket: Ticket
    text: str


class BulkActions:
    def __init__(self, svc: TicketService) -> None:
        self.svc = svc

    def _texts(self, params: dict[str, Any]) -> dict[str, str]:
        """The reply of a bulk resolve, per language: a canned answer's key, or text in both."""
        key = params.get("canned")
        if key:
            canned = load_canned(self.svc.settings.path(self.svc.settings.handoff.canned_file)).get(str(key))
            if canned is None:
                raise NotFound(f"no canned answer {key!r}", "canned_not_found", key=str(key))
            texts = {lang: canned[lang] for lang in ("en", "zh") if canned.get(lang)}
        else:
            texts = {lang: str(params.get(lang) or "").strip() for lang in ("en", "zh")}
        if not texts.get("en") or not texts.get("zh"):
            raise TicketError("a bulk reply needs its text in English and Chinese (a canned answer with both)",
                              "bulk_reply_languages")
        return texts

    async def run(self, actor: Agent, action: str, ticket_ids: list[int], params: dict[str, Any]) -> Result:
        if action not in ACTIONS:
            raise TicketError(f"action must be one of {', '.join(ACTIONS)}", "bulk_action_invalid")
        if len(ticket_ids) > MAX_TICKETS:
            raise TicketError(f"at most {MAX_TICKETS} tickets at once; narrow the search", "bulk_too_many", max=MAX_TICKETS)
        # Validate the parameters once, before touching any ticket.
        texts: dict[str, str] = {}
        to: Agent | None = None
        tag = ""
        if action == "resolve":
            texts = self._texts(params)
        elif action == "priority":
            if params.get("priority") not in PRIORITY_RANK:
                raise TicketError("priority must be one of " + ", ".join(PRIORITY_RANK), "priority_invalid")
        elif action in ("tag", "untag"):
            tag = str(params.get("tag") or "").strip().lower()
            if not TAG_RE.match(tag):
                raise TicketError("a tag is 1–64 letters, digits, '_', '-' or '.'", "tag_invalid")
        elif action == "assign":
            aid = params.get("agent_id")
            async with self.svc.sm() as s:
                to = await s.get(Agent, aid) if isinstance(aid, int) else None
            if to is None or not to.active:
                raise NotFound("no such active agent", "agent_not_found")
        res = Result(bulk_id=secrets.token_hex(6), action=action)
        seen: set[int] = set()
        ids = [i for i in ticket_ids if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]
        for i in range(0, len(ids), CHUNK):
            sends: list[_Send] = []
            async with self.svc.sm() as s, s.begin():
                q = select(Ticket).where(Ticket.id.in_(ids[i:i + CHUNK])).order_by(Ticket.id)
                if search.dialect_name(s) == "postgresql":
                    q = q.with_for_update()
                changed: list[int] = []
                for t in (await s.execute(q)).scalars():
                    try:
                        self.svc._may_act(t, actor)
                        await self._one(s, t, actor, action, res.bulk_id, texts=texts, to=to, tag=tag,
                                        priority=str(params.get("priority") or ""), sends=sends)
                    except Forbidden:
                        res.skipped.append({"number": t.number or "", "reason": "assigned to someone else",
                                            "code": "assigned_elsewhere", "params": {"number": t.number or ""}})
                        continue
                    except TicketError as e:
                        res.skipped.append({"number": t.number or "", "reason": str(e), "code": e.code,
                                            "params": e.params})
                        continue
                    res.done.append(t.number or "")
                    changed.append(t.id)
                await s.flush()
                if action in ("tag", "untag", "resolve"):
                    await search.reindex(s, changed)
            for snd in sends:  # committed: now tell the users, and give the bot their conversations back
                if snd.text:
                    await self.svc._outbound(snd.ticket, snd.text, "agent", author=actor.name)
                await self.svc._set_mode(snd.ticket.conversation_id, "bot")
        log.info("tickets.bulk", action=action, by=actor.name, done=len(res.done), skipped=len(res.skipped),
                 bulk=res.bulk_id)
        await self.svc.publish({"type": "bulk", "action": action, "count": len(res.done), "bulk": res.bulk_id})
        return res

    async def _one(self, s: AsyncSession, t: Ticket, actor: Agent, action: str, bulk: str, *, texts: dict[str, str],
                   to: Agent | None, tag: str, priority: str, sends: list[_Send]) -> None:
        svc = self.svc
        now = svc.clock()
        if action == "assign":
            assert to is not None
            if t.status not in OPEN_STATUSES:
                raise TicketError(f"a {t.status} ticket cannot be assigned", "assign_refused", status=t.status)
            frm = t.assignee.name if t.assignee else None
            t.assignee_id = to.id
            t.updated_at = now
            if t.status == "new":
                svc._transition(s, t, "open", actor.name)
            svc._audit(s, t, actor.name, "transfer", detail_from=frm, detail_to=to.name, bulk=bulk)
        elif action == "priority":
            if t.status not in OPEN_STATUSES:
                raise TicketError(f"a {t.status} ticket keeps its priority", "priority_refused", status=t.status)
            if t.priority == priority:
                raise TicketError(f"already {priority}", "already_priority", priority=priority)
            frm = t.priority
            t.priority, t.priority_rank = priority, PRIORITY_RANK[priority]
            t.updated_at = now
            svc._sla(t)  # the SLA follows the new priority, from when the ticket was opened
            svc._audit(s, t, actor.name, "priority", detail_from=frm, detail_to=priority, bulk=bulk)
        elif action == "tag":
            if any(x.tag == tag for x in t.tags):
                raise TicketError(f"already tagged {tag}", "already_tagged", tag=tag)
            s.add(TicketTag(ticket_id=t.id, tag=tag))
            svc._audit(s, t, actor.name, "tag", tag=tag, bulk=bulk)
        elif action == "untag":
            if not any(x.tag == tag for x in t.tags):
                raise TicketError(f"not tagged {tag}", "not_tagged", tag=tag)
            await s.execute(delete(TicketTag).where(TicketTag.ticket_id == t.id, TicketTag.tag == tag))
            svc._audit(s, t, actor.name, "untag", tag=tag, bulk=bulk)
        elif action == "resolve":
            if t.status not in OPEN_STATUSES:
                raise TicketError(f"already {t.status}", "already_status", status=t.status)
            lang = t.lang if t.lang in texts else "en"
            body = texts[lang].replace("{ticket}", t.number or "")
            if t.first_responded_at is None:
                t.first_responded_at = now
            svc._transition(s, t, "resolved", actor.name, "bulk_resolve")
            t.waiting_since = None
            s.add(TicketMessage(ticket_id=t.id, direction="out", author_type="agent", author_id=actor.id,
                                channel=t.channel, body=redact(body).text, attachments=[], created_at=now))
            svc._audit(s, t, actor.name, "bulk_reply", bulk=bulk, lang=lang)
            sends.append(_Send(t, body))
        elif action == "spam":
            if t.status == "closed":
                raise TicketError("already closed", "already_status", status="closed")
            svc._transition(s, t, "closed", actor.name, "spam")
            if not any(x.tag == "spam" for x in t.tags):
                s.add(TicketTag(ticket_id=t.id, tag="spam"))
            svc._audit(s, t, actor.name, "spam", bulk=bulk)
            sends.append(_Send(t, ""))  # back to the bot, without a word to the sender
