"""The ticket service: every state change goes through here (no side effects in ORM hooks).

Statuses follow one transition table; each change is written to the append-only audit log and
announced to the agent console (Redis pub/sub `agent:events`). Replies to users leave through
the `outbound:<channel>` streams — the handoff side never calls a channel directly.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis
from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import conversation
from bot.config import Settings
from bot.errors import SwitchboardError
from bot.logs import get_logger
from bot.models import Button, Outbound, Priority
from bot.streams import Layout
from handoff import search, views
from handoff.models import (
    Agent,
    AuditLog,
    Contact,
    ContactIdentity,
    Feedback,
    Ticket,
    TicketMessage,
)

SENDER_CHECKS = "sender_checks"
SENDER_CHECKS_MAX = 200


def _sender_checks(channel_meta: dict[str, Any] | None, m: dict[str, Any]) -> dict[str, Any]:
    """The per-message sender verification a channel reported (`sender_verified` / `sender_check`
    in the message meta), kept on the ticket by message id so the console can show it on each
    message; the newest SENDER_CHECKS_MAX."""
    old = dict((channel_meta or {}).get(SENDER_CHECKS) or {})
    meta = m.get("meta") or {}
    if "sender_verified" in meta:
        old[m["id"]] = {"verified": meta["sender_verified"] == "1", "why": str(meta.get("sender_check", ""))[:300],
                        **({"relay": str(meta["sender_relay"])} if meta.get("sender_relay") else {})}
    if not old:
        return {}
    return {SENDER_CHECKS: dict(list(old.items())[-SENDER_CHECKS_MAX:])}

log = get_logger("switchboard.handoff")

EVENTS = "agent:events"
# Agent-control messages for open consoles (an agent was disabled: their sockets close).
CONTROL = "agent:control"
OPEN_STATUSES = ("new", "open", "pending_user")
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "pending_user", "resolved", "closed"}),
    "open": frozenset({"pending_user", "resolved", "closed"}),
    "pending_user": frozenset({"open", "resolved", "closed"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
BASE_PRIORITY = {"theft": Priority.URGENT, "compliance": Priority.HIGH}
REOPEN_WINDOW = timedelta(days=7)

RESOLVED_TEXT = {
    "en": "Your ticket {ticket} has been resolved. How satisfied are you with our support? Reply with a number from 1 (very unhappy) to 5 (very happy).",
    "zh": "您的工单 {ticket} 已处理完毕。您对本次服务满意吗？请回复 1（非常不满意）到 5（非常满意）之间的数字。",
}
ACK_LINE = {
    "en": "Your ticket number is {ticket} — keep it in the subject when you write to us about this case.",
    "zh": "您的工单号为 {ticket}，就此事来信时请在主题中保留该工单号。",
}
DELIVERY_NOTES = {
    "waiting_private": "Not delivered yet: the user wrote in a group and has not opened the private chat with "
                       "the bot. They were sent an invitation link; this message is delivered when they open it.",
    "delivered_private": "Delivered: the user opened the private chat, and the waiting message reached them there.",
}
RETRACTED_TEXT = "[deleted by the user]"
# Texts the product itself writes into a thread, by the code the console translates them with.
TEXT_CODES = {**{v: f"delivery_{k}" for k, v in DELIVERY_NOTES.items()}, RETRACTED_TEXT: "retracted"}
HANDBACK_TEXT = {
    "en": "Our agent has handed this conversation back to the assistant. Ask me anything, or write \"agent\" to reach a person again.",
    "zh": "客服已将对话交还给智能助手。您可以继续提问，如需人工请回复“人工”。",
}


class TicketError(SwitchboardError):
    """A refused ticket operation. The message is English (API clients, logs); `code` and `params`
    are stable, so the console shows it in the agent's language (catalogue key `error.<code>`)."""

    status_code = 400
    default_code = "bad_request"

    def __init__(self, message: str, code: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.params = params


class NotFound(TicketError):
    status_code = 404
    default_code = "not_found"


class Conflict(TicketError):
    status_code = 409
    default_code = "conflict"


class Forbidden(TicketError):
    status_code = 403
    default_code = "forbidden"


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def iso(dt: datetime | None) -> str | None:
    d = aware(dt)
    return d.isoformat(timespec="seconds").replace("+00:00", "Z") if d else None


def ticket_number(ticket_id: int) -> str:
    return f"SB-{ticket_id:06d}"


class TicketService:
    # The user's ticket page link for a ticket number (handoff.selfservice), when one is wired.
    ticket_link: Callable[[str], Awaitable[str | None]] | None = None

    def __init__(
        self,
        settings: Settings,
        sm: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.sm = sm
        self.r = redis
        self.clock = clock

    # -- serialization ----------------------------------------------------------------------------
    def sla_state(self, t: Ticket, now: datetime | None = None) -> str:
        if t.status not in ("new", "open"):
            return "ok"
        now = now or self.clock()
        start = aware(t.created_at)
        due = aware(t.first_response_due if t.first_responded_at is None else t.resolution_due)
        if start is None or due is None:
            return "ok"
        if now >= due:
            return "breached"
        if (now - start) >= (due - start) * self.settings.sla.warn_at:
            return "warning"
        return "ok"

    def ticket_json(self, t: Ticket, last: TicketMessage | None = None) -> dict[str, Any]:
        out = self._ticket_json(t, last)
        if "tags" in t.__dict__:  # loaded with the ticket; never a lazy load (async session)
            out["tags"] = [x.tag for x in t.tags]
        return out

    def _ticket_json(self, t: Ticket, last: TicketMessage | None = None) -> dict[str, Any]:
        c = t.contact
        return {
            "number": t.number,
            "status": t.status,
            "priority": t.priority,
            "topic": t.topic,
            "intent": t.intent,
            "channel": t.channel,
            "lang": t.lang,
            "contact": {
                "id": c.id,
                "name": c.name,
                "vip": c.vip,
                "identities": [
                    {"channel": i.channel, "source_id": i.source_id, "label": i.label} for i in c.identities
                ],
            },
            "assignee": {"id": t.assignee.id, "name": t.assignee.name} if t.assignee else None,
            "created_at": iso(t.created_at),
            "updated_at": iso(t.updated_at),
            "first_response_due": iso(t.first_response_due),
            "resolution_due": iso(t.resolution_due),
            "first_responded_at": iso(t.first_responded_at),
            "resolved_at": iso(t.resolved_at),
            "sla": self.sla_state(t),
            "csat": t.csat,
            "incident_id": t.incident_id,
            "offered_to": t.offered_to_id,
            "offer_until": iso(t.offer_until),
            "last_message": (
                {"text": last.body[:200], "at": iso(last.created_at), "author_type": last.author_type}
                if last
                else None
            ),
        }

    @staticmethod
    def message_json(m: TicketMessage, number: str | None, checks: dict[str, Any] | None = None) -> dict[str, Any]:
        check = (checks or {}).get(m.source_message_id or "") if m.direction == "in" else None
        return {
            "id": m.id,
            "ticket": number,
            "direction": m.direction,
            "author_type": m.author_type,
            "author": m.author.name if m.author else None,
            "channel": m.channel,
            "text": m.body,
            **({"text_code": TEXT_CODES[m.body]} if m.body in TEXT_CODES else {}),
            "attachments": m.attachments or [],
            "at": iso(m.created_at),
            # Channels that authenticate senders (e-mail): whether this message's sender was, and why.
            **({"sender_check": check} if check else {}),
        }

    async def publish(self, event: dict[str, Any]) -> None:
        try:
            await self.r.publish(EVENTS, orjson.dumps(event).decode())
        except Exception as e:  # the console catches up on reconnect; never fail a write for it
            log.warning("console.publish_failed", error=str(e))

    # -- helpers ----------------------------------------------------------------------------------
    async def _get(self, s: AsyncSession, number: str, lock: bool = False) -> Ticket:
        q = select(Ticket).where(Ticket.number == number)
        if lock and s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        t = (await s.execute(q)).scalar_one_or_none()
        if t is None:
            raise NotFound(f"ticket {number} not found", "ticket_not_found", number=number)
        return t

    def _audit(self, s: AsyncSession, t: Ticket, actor: str, action: str, frm: str | None = None,
               to: str | None = None, **detail: Any) -> None:
        s.add(AuditLog(ticket_id=t.id, actor=actor, action=action, from_status=frm, to_status=to,
                       detail=detail, at=self.clock()))

    def _transition(self, s: AsyncSession, t: Ticket, to: str, actor: str, action: str = "status") -> None:
        if to == t.status:
            return
        if to not in TRANSITIONS[t.status]:
            raise Conflict(f"a {t.status} ticket cannot become {to}", "transition_refused", status=t.status, to=to)
        frm = t.status
        t.status = to
        t.updated_at = self.clock()
        if to == "resolved" or (to == "closed" and t.resolved_at is None):
            t.resolved_at = self.clock()
        self._audit(s, t, actor, action, frm, to)

    async def _last_message(self, s: AsyncSession, t: Ticket) -> TicketMessage | None:
        return (
            await s.execute(
                select(TicketMessage).where(TicketMessage.ticket_id == t.id, TicketMessage.direction != "note")
                .order_by(TicketMessage.id.desc()).limit(1)
            )
        ).scalar_one_or_none()

    async def _announce(self, s: AsyncSession, t: Ticket) -> None:
        await self.publish({"type": "ticket", "ticket": self.ticket_json(t, await self._last_message(s, t))})

    async def _contact_for(self, s: AsyncSession, channel: str, source_id: str, label: str | None) -> Contact:
        ident = (
            await s.execute(
                select(ContactIdentity).where(ContactIdentity.channel == channel, ContactIdentity.source_id == source_id)
            )
        ).scalar_one_or_none()
        if ident is not None:
            return await s.get_one(Contact, ident.contact_id)
        vip = self.settings.handoff.vip.get(f"{channel}:{source_id}", 0)
        c = Contact(name=None, vip=vip, created_at=self.clock())
        s.add(c)
        await s.flush()
        s.add(ContactIdentity(contact_id=c.id, channel=channel, source_id=source_id, label=label))
        await s.flush()
        await s.refresh(c, ["identities"])
        return c

    def _priority(self, decided: str, topic: str, contact: Contact) -> str:
        p = Priority(decided)
        if contact.vip > 0:
            base = BASE_PRIORITY.get(topic, Priority.NORMAL)
            p = max(p, base.raised(), key=lambda x: -PRIORITY_RANK[x.value])
        return p.value

    def _sla(self, t: Ticket, vip: int = 0) -> None:
        from handoff.vip import vip_target

        target = vip_target(self, vip, t.priority)
        start = aware(t.created_at) or self.clock()
        t.first_response_due = start + timedelta(minutes=target.first_response_min)
        t.resolution_due = start + timedelta(minutes=target.resolution_min)
        t.sla_warned_at = None
        t.sla_breached_at = None
        self._sla_clock(t)

    def _sla_clock(self, t: Ticket) -> None:
        """Keep `sla_due_at` / `sla_warn_at` (what the counters compare with `now` in SQL) in step
        with the due times and the first response — the same rule as `sla_state`."""
        start = aware(t.created_at)
        due = aware(t.first_response_due if t.first_responded_at is None else t.resolution_due)
        t.sla_due_at = due
        t.sla_warn_at = start + (due - start) * self.settings.sla.warn_at if start and due else None

    async def _outbound(self, t: Ticket, text: str, kind: str, author: str | None = None,
                        buttons: tuple[Button, ...] = (), extra_meta: dict[str, str] | None = None) -> None:
        meta = {k: str(v) for k, v in (t.channel_meta or {}).items() if k.startswith("reply_")}
        ob = Outbound(
            channel=t.channel,
            conversation_id=t.conversation_id,
            user_id=str((t.channel_meta or {}).get("user_id", "")),
            text=text,
            lang=t.lang if t.lang in ("zh", "en") else "en",  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            topic=t.topic,
            author=author,
            buttons=buttons,
            meta={**meta, "ticket": t.number or "", **(extra_meta or {})},
        )
        lay = Layout.of(self.settings)  # the conversation's partition: in order with the bot's replies
        await self.r.xadd(lay.outbound(t.channel, lay.partition(t.conversation_id)), {"d": ob.to_json()})

    async def _ack(self, t: Ticket, handoff_reply: str, link: str | None = None) -> None:
        """Channels that ask for it (email) get one acknowledgement per new ticket, carrying the
        ticket number and the expected reply time; it replaces the bot's handoff reply there."""
        from handoff.selfservice import LINK_LINE

        lang = t.lang if t.lang in ("zh", "en") else "en"
        line = ACK_LINE[lang].format(ticket=t.number)
        if link:
            line += "\n" + LINK_LINE[lang].format(url=link)
        text = f"{handoff_reply.strip()}\n\n{line}" if handoff_reply.strip() else line
        await self._outbound(t, text, "system", extra_meta={"ticket_ack": "1"})

    async def _link_ack(self, t: Ticket) -> None:
        """Channels without an acknowledgement of their own (widget, Telegram, X): the ticket
        number and the ticket page link, once per new ticket, when links are wired."""
        from handoff.selfservice import LINK_ONLY

        link = await self.ticket_link(t.number or "") if self.ticket_link else None
        if link:
            lang = t.lang if t.lang in ("zh", "en") else "en"
            await self._outbound(t, LINK_ONLY[lang].format(ticket=t.number, url=link), "system",
                                 extra_meta={"ticket_link": "1"})

    async def _set_mode(self, conversation_id: str, mode: str, **extra: str) -> None:
        await conversation.set_mode(self.r, conversation_id, mode, layout=Layout.of(self.settings), **extra)

    # -- intake from the router ------------------------------------------------------------------
    async def handle_event(self, payload: dict[str, Any]) -> Ticket | None:
        """One entry of the `handoff` stream: a handoff decision, a message from a conversation an
        agent owns, or a CSAT answer. Idempotent on the message id."""
        if "csat" in payload:
            c = payload["csat"]
            await self.record_csat(c["ticket"], int(c["score"]), conversation_id=c.get("conversation"))
            return None
        if "delivery" in payload:
            await self.record_delivery(payload["delivery"])
            return None
        if "retract" in payload:
            await self.retract(payload["retract"])
            return None
        d, m = payload["decision"], payload["message"]
        async with self.sm() as s, s.begin():
            dup = (
                await s.execute(select(TicketMessage.id).where(TicketMessage.source_message_id == m["id"]))
            ).scalar_one_or_none()
            if dup is not None:
                return None
            label = (m.get("meta") or {}).get("user_label")
            contact = await self._contact_for(s, m["channel"], m["user_id"], label)
            t = (
                await s.execute(
                    select(Ticket).where(Ticket.channel == m["channel"], Ticket.conversation_id == m["conversation_id"],
                                         Ticket.status.in_(OPEN_STATUSES)).order_by(Ticket.id.desc()).limit(1)
                )
            ).scalar_one_or_none()
            now = self.clock()
            created = False
            if t is None and not d.get("silent"):
                recent = (
                    await s.execute(
                        select(Ticket).where(Ticket.channel == m["channel"], Ticket.conversation_id == m["conversation_id"],
                                             Ticket.status == "resolved", Ticket.resolved_at >= now - REOPEN_WINDOW)
                        .order_by(Ticket.id.desc()).limit(1)
                    )
                ).scalar_one_or_none()
                if recent is not None:
                    t = recent
                    self._transition(s, t, "open", "bot", "reopened")
                    t.priority = self._priority(d["priority"], d["topic"], contact)
                    t.priority_rank = PRIORITY_RANK[t.priority]
                    t.created_at = now
                    t.first_responded_at = None
                    self._sla(t, contact.vip)
            if t is None:
                priority = self._priority(d["priority"], d["topic"], contact)
                t = Ticket(
                    contact_id=contact.id, channel=m["channel"], conversation_id=m["conversation_id"],
                    topic=d["topic"], intent=d.get("intent"), priority=priority, priority_rank=PRIORITY_RANK[priority],
                    status="new", lang=m.get("lang", "en"), channel_meta={}, created_at=now, updated_at=now,
                    waiting_since=now,
                )
                self._sla(t, contact.vip)
                s.add(t)
                await s.flush()
                t.number = ticket_number(t.id)
                self._audit(s, t, "bot", "opened", None, "new", topic=t.topic, priority=t.priority,
                            reason=d.get("reason"), confidence=d.get("confidence"))
                created = True
                await self._import_history(s, t, m["conversation_id"])
            elif t.status == "pending_user":
                self._transition(s, t, "open", "user", "user_replied")
            t.channel_meta = {**{k: v for k, v in (m.get("meta") or {}).items() if k.startswith("reply_")},
                              "user_id": m["user_id"], **_sender_checks(t.channel_meta, m)}
            t.updated_at = now
            t.waiting_since = t.waiting_since or now
            msg = TicketMessage(
                ticket_id=t.id, direction="in", author_type="user", channel=m["channel"], body=m["text"],
                attachments=list(m.get("attachments") or []), source_message_id=m["id"], created_at=now,
            )
            s.add(msg)
            if not d.get("silent") and d.get("reply"):
                s.add(TicketMessage(ticket_id=t.id, direction="out", author_type="bot", channel=m["channel"],
                                    body=d["reply"], attachments=[], created_at=now))
            await s.flush()
            await search.reindex(s, [t.id])
            await s.refresh(t, ["contact", "assignee"])
            if created:
                log.info("ticket.opened", ticket=t.number, topic=t.topic, priority=t.priority, channel=t.channel)
                from handoff.vip import announce_offer, offer_first

                if not await offer_first(self, s, t, contact):  # a VIP's manager first (handoff.vip)
                    await self._auto_assign(s, t)
                if (m.get("meta") or {}).get("reply_ticket_ack") == "1":
                    link = await self.ticket_link(t.number or "") if self.ticket_link else None
                    await self._ack(t, d.get("reply") or "", link)
                else:
                    await self._link_ack(t)
            number = t.number
            await self._announce(s, t)
            from handoff import callbacks

            if created:
                await announce_offer(self, t)
                await callbacks.offer(self, t, contact, "callback" in (d.get("offers") or ()))
            else:
                await callbacks.on_user_message(self, s, t, m["text"])
            checks = (t.channel_meta or {}).get(SENDER_CHECKS)
            await self.publish({"type": "message", "message": self.message_json(msg, number, checks)})
            return t

    async def record_delivery(self, ev: dict[str, Any]) -> None:
        """A channel could not deliver a message yet, or delivered it later (a Telegram group
        member who has not opened the private chat): the agent sees it as a note on the ticket,
        so a reply is never taken for read when it is still waiting."""
        status = str(ev.get("status", ""))
        text = DELIVERY_NOTES.get(status)
        if text is None:
            raise ValueError(f"unknown delivery status {status!r}")
        async with self.sm() as s, s.begin():
            if ev.get("ticket"):
                q = select(Ticket).where(Ticket.number == str(ev["ticket"]))
            else:  # the handoff reply, sent before the ticket had a number: its conversation's ticket
                q = (select(Ticket).where(Ticket.channel == str(ev.get("channel")),
                                          Ticket.conversation_id == str(ev.get("conversation")),
                                          Ticket.status.in_(OPEN_STATUSES)).order_by(Ticket.id.desc()).limit(1))
            t = (await s.execute(q)).scalar_one_or_none()
            if t is None:
                log.warning("ticket.delivery_unknown_ticket", ticket=str(ev.get("ticket"))[:20], status=status)
                return
            m = TicketMessage(ticket_id=t.id, direction="note", author_type="system", channel=t.channel,
                              body=text, attachments=[], created_at=self.clock())
            s.add(m)
            self._audit(s, t, "system", f"delivery_{status}", kind=ev.get("kind"))
            await s.flush()
            await s.refresh(m, ["author"])
            log.info("ticket.delivery", ticket=t.number, status=status)
            await self.publish({"type": "message", "message": self.message_json(m, t.number)})

    async def retract(self, ev: dict[str, Any]) -> None:
        """The user deleted what they posted (an X post): its text leaves the ticket too."""
        async with self.sm() as s, s.begin():
            m = (
                await s.execute(select(TicketMessage).where(TicketMessage.source_message_id == str(ev["message_id"])))
            ).scalar_one_or_none()
            if m is None:
                return
            m.body = RETRACTED_TEXT
            m.attachments = []
            t = await s.get_one(Ticket, m.ticket_id)
            self._audit(s, t, "user", "message_deleted", reason=ev.get("reason"))
            await s.flush()
            await s.refresh(m, ["author"])
            log.info("ticket.message_retracted", ticket=t.number)
            await self.publish({"type": "message", "message": self.message_json(m, t.number)})

    async def _import_history(self, s: AsyncSession, t: Ticket, conversation_id: str) -> None:
        """Bring the bot's earlier exchange of this conversation into the ticket, so the agent
        sees what the user already said and was told."""
        try:
            turns = await conversation.recent_turns(self.r, conversation_id, 50, layout=Layout.of(self.settings))
        except Exception:  # noqa: BLE001 - the history is a courtesy: a ticket opens without it
            return
        for turn in turns[:-1]:  # the last one is the handoff message itself
            at = datetime.fromisoformat(turn["at"]) if turn.get("at") else self.clock()
            s.add(TicketMessage(ticket_id=t.id, direction="in", author_type="user", channel=t.channel,
                                body=turn.get("in", ""), attachments=[], created_at=at))
            if turn.get("out"):
                s.add(TicketMessage(ticket_id=t.id, direction="out", author_type="bot", channel=t.channel,
                                    body=turn["out"], attachments=[], created_at=at))

    async def _auto_assign(self, s: AsyncSession, t: Ticket) -> None:
        if not self.settings.handoff.auto_assign:
            return
        online = sorted(int(x) for x in await self.r.smembers("agent:online"))
        agents = [a for a in (await s.execute(select(Agent).where(Agent.id.in_(online), Agent.active))).scalars()]
        if not agents:
            return
        i = int(await self.r.incr("agent:rr")) % len(agents)
        a = agents[i]
        t.assignee_id = a.id
        self._transition(s, t, "open", "system", "auto_assigned")
        self._audit(s, t, "system", "assigned", detail_agent=a.name)
        await s.flush()
        await s.refresh(t, ["assignee"])

    # -- agent actions ----------------------------------------------------------------------------
    async def claim(self, number: str, agent: Agent) -> Ticket:
        """Atomic: of two agents claiming at once, exactly one wins; the other gets a Conflict."""
        async with self.sm() as s, s.begin():
            res = await s.execute(
                update(Ticket)
                .where(Ticket.number == number, Ticket.assignee_id.is_(None), Ticket.status.in_(OPEN_STATUSES))
                .values(assignee_id=agent.id, updated_at=self.clock(),
                        status=case((Ticket.status == "new", "open"), else_=Ticket.status))
                .execution_options(synchronize_session=False)
            )
            t = await self._get(s, number)
            if res.rowcount != 1:  # type: ignore[attr-defined]
                if t.assignee_id == agent.id:
                    return t
                if t.assignee_id is not None:
                    await s.refresh(t, ["assignee"])
                    raise Conflict(f"already claimed by {t.assignee.name if t.assignee else 'someone'}", "already_claimed",
                                   name=t.assignee.name if t.assignee else "")
                raise Conflict(f"a {t.status} ticket cannot be claimed", "claim_refused", status=t.status)
            await s.refresh(t)
            self._audit(s, t, agent.name, "claimed", None, t.status)
            await s.flush()
            await s.refresh(t, ["assignee"])
            log.info("ticket.claimed", ticket=number, agent=agent.name)
            await self._announce(s, t)
            return t

    def _may_act(self, t: Ticket, agent: Agent) -> None:
        if agent.role != "supervisor" and t.assignee_id not in (None, agent.id):
            raise Forbidden(f"{t.number} is assigned to someone else; ask them or a supervisor to transfer it",
                            "assigned_elsewhere", number=t.number)

    async def reply(self, number: str, agent: Agent, text: str) -> dict[str, Any]:
        from bot.redact import redact

        text = text.strip()
        if not text:
            raise TicketError("a reply needs text", "reply_empty")
        async with self.sm() as s, s.begin():
            t = await self._get(s, number, lock=True)
            if t.status == "closed":
                raise Conflict("the ticket is closed", "ticket_closed")
            self._may_act(t, agent)
            if t.assignee_id is None:
                t.assignee_id = agent.id
                self._audit(s, t, agent.name, "claimed", None, t.status)
            now = self.clock()
            if t.status in ("new", "resolved"):
                self._transition(s, t, "open", agent.name)
            if t.first_responded_at is None:
                t.first_responded_at = now
                self._sla_clock(t)
            t.waiting_since = None
            t.updated_at = now
            body = redact(text).text
            m = TicketMessage(ticket_id=t.id, direction="out", author_type="agent", author_id=agent.id,
                              channel=t.channel, body=body, attachments=[], created_at=now)
            s.add(m)
            await s.flush()
            await search.reindex(s, [t.id])
            await s.refresh(m, ["author"])
            await s.refresh(t, ["assignee"])
            # An agent may paste a secret too: the user gets what the ticket keeps, never more.
            await self._outbound(t, body, "agent", author=agent.name)
            log.info("ticket.replied", ticket=number, agent=agent.name)
            out = self.message_json(m, t.number)
            await self._announce(s, t)
            await self.publish({"type": "message", "message": out})
            return out

    async def note(self, number: str, agent: Agent, text: str) -> dict[str, Any]:
        from bot.redact import redact

        if not text.strip():
            raise TicketError("a note needs text", "note_empty")
        async with self.sm() as s, s.begin():
            t = await self._get(s, number)
            m = TicketMessage(ticket_id=t.id, direction="note", author_type="agent", author_id=agent.id,
                              channel=t.channel, body=redact(text.strip()).text, attachments=[], created_at=self.clock())
            s.add(m)
            self._audit(s, t, agent.name, "note")
            await s.flush()
            await search.reindex(s, [t.id])
            await s.refresh(m, ["author"])
            out = self.message_json(m, t.number)
            await self.publish({"type": "message", "message": out})
            return out

    async def transfer(self, number: str, actor: Agent, to_agent_id: int) -> Ticket:
        async with self.sm() as s, s.begin():
            t = await self._get(s, number, lock=True)
            self._may_act(t, actor)
            to = await s.get(Agent, to_agent_id)
            if to is None or not to.active:
                raise NotFound("no such active agent", "agent_not_found")
            frm = t.assignee.name if t.assignee else None
            t.assignee_id = to.id
            t.updated_at = self.clock()
            if t.status == "new":
                self._transition(s, t, "open", actor.name)
            self._audit(s, t, actor.name, "transfer", detail_from=frm, detail_to=to.name)
            await s.flush()
            await s.refresh(t, ["assignee"])
            await self._announce(s, t)
            return t

    async def set_status(self, number: str, actor: Agent, status: str) -> Ticket:
        if status not in TRANSITIONS:
            raise TicketError(f"unknown status {status!r}", "status_invalid", status=str(status)[:40])
        if status == "resolved":
            return await self.resolve(number, actor)
        async with self.sm() as s, s.begin():
            t = await self._get(s, number, lock=True)
            self._may_act(t, actor)
            self._transition(s, t, status, actor.name)
            await s.flush()
            await self._announce(s, t)
            return t

    async def resolve(self, number: str, actor: Agent, *, ask_csat: bool = True, handback: bool = False) -> Ticket:
        """Resolve: the user is told (and asked for a 1–5 rating), the bot takes the conversation back."""
        async with self.sm() as s, s.begin():
            t = await self._get(s, number, lock=True)
            self._may_act(t, actor)
            self._transition(s, t, "resolved", actor.name, "handback" if handback else "status")
            lang = t.lang if t.lang in ("zh", "en") else "en"
            if handback:
                await self._outbound(t, HANDBACK_TEXT[lang], "system")
                await self._set_mode(t.conversation_id, "bot")
            else:
                buttons = tuple(Button(label=str(i), payload=str(i)) for i in range(1, 6)) if ask_csat else ()
                await self._outbound(t, RESOLVED_TEXT[lang].format(ticket=t.number), "system", buttons=buttons)
                await self._set_mode(t.conversation_id, "bot", csat_pending=t.number or "")
            await s.flush()
            await s.refresh(t, ["assignee"])
            log.info("ticket.resolved", ticket=number, agent=actor.name, handback=handback)
            await self._announce(s, t)
            return t

    async def handback(self, number: str, actor: Agent) -> Ticket:
        return await self.resolve(number, actor, handback=True)

    async def record_csat(self, number: str, score: int, *, conversation_id: str | None = None) -> None:
        """The user's 1–5 rating. With `conversation_id`, only a ticket of that conversation is
        rated: a number alone may belong to someone else's ticket after a restore."""
        async with self.sm() as s, s.begin():
            t = await self._get(s, number)
            if conversation_id is not None and t.conversation_id != conversation_id:
                raise NotFound(f"ticket {number} not found", "ticket_not_found", number=number)
            if not 1 <= score <= 5:
                return
            t.csat = score
            self._audit(s, t, "user", "csat", score=score)
            log.info("ticket.csat", ticket=number, score=score)
            await s.flush()
            await self._announce(s, t)

    async def feedback(self, number: str, agent: Agent, topic: str, intent: str | None) -> None:
        """An agent marks the bot's understanding wrong, with the right topic/intent. It relabels
        the ticket and feeds retraining, so on a ticket assigned to someone else only a supervisor
        may do it; every use is audited."""
        async with self.sm() as s, s.begin():
            t = await self._get(s, number)
            if t.assignee_id not in (None, agent.id) and agent.role != "supervisor":
                raise Forbidden("this ticket is assigned to someone else; ask them or a supervisor", "assigned_elsewhere",
                                number=t.number)
            first = (
                await s.execute(select(TicketMessage).where(TicketMessage.ticket_id == t.id,
                                                           TicketMessage.author_type == "user")
                                .order_by(TicketMessage.id).limit(1))
            ).scalar_one_or_none()
            s.add(Feedback(ticket_id=t.id, text=first.body if first else "", lang=t.lang, predicted_intent=t.intent,
                           correct_topic=topic, correct_intent=intent, source="agent", agent_id=agent.id,
                           created_at=self.clock()))
            prev = t.topic
            t.topic = topic
            self._audit(s, t, agent.name, "bot_wrong", detail_from=prev, detail_to=topic, intent=intent)
            await s.flush()
            await search.reindex(s, [t.id])

    async def link_identity(self, contact_id: int, channel: str, source_id: str, actor: Agent) -> None:
        """Link another channel identity to a contact (merging the contact it belonged to). Who
        may ask about a contact's tickets follows its identities, so this is for supervisors, and
        it is written to the audit log of every ticket of the contacts involved."""
        if actor.role != "supervisor":
            raise Forbidden("linking identities is for supervisors", "supervisors_only")
        async with self.sm() as s, s.begin():
            c = await s.get(Contact, contact_id)
            if c is None:
                raise NotFound("no such contact", "contact_not_found")
            ident = (
                await s.execute(select(ContactIdentity).where(ContactIdentity.channel == channel,
                                                              ContactIdentity.source_id == source_id))
            ).scalar_one_or_none()
            if ident is None:
                s.add(ContactIdentity(contact_id=c.id, channel=channel, source_id=source_id))
            elif ident.contact_id != c.id:
                old = ident.contact_id
                await s.execute(update(ContactIdentity).where(ContactIdentity.contact_id == old)
                                .values(contact_id=c.id))
                await s.execute(update(Ticket).where(Ticket.contact_id == old).values(contact_id=c.id))
            else:
                return  # already linked: nothing changes, nothing to audit
            tickets = list((await s.execute(select(Ticket).where(Ticket.contact_id == c.id))).scalars())
            for t in tickets:
                self._audit(s, t, actor.name, "identity_linked", channel=channel, source_id=source_id[:200],
                            contact=c.id)
            await s.flush()
            await search.reindex(s, [t.id for t in tickets])
            log.info("contact.linked", contact=contact_id, channel=channel, by=actor.name)

    # -- reads ------------------------------------------------------------------------------------
    async def page(self, f: views.Filters, agent: Agent, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
        """One page of a view (filters, search, keyset cursor), with the total on the first page
        and, when searching, where each ticket matched."""
        async with self.sm() as s:
            pg = await views.page(s, replace(f, now=self.clock()), agent, cursor, limit)
            out = []
            for t in pg.tickets:
                tj = self.ticket_json(t, pg.lasts.get(t.id))
                if t.id in pg.matches:
                    tj["match"] = pg.matches[t.id]
                out.append(tj)
            return {"tickets": out, "next": pg.next, "total": pg.total}

    async def list(self, view: str, agent: Agent, q: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The first `limit` tickets of a view (CLI and older callers; the console pages)."""
        return list((await self.page(views.Filters.parse({"view": view, "q": q or ""}), agent, None, limit))["tickets"])

    async def counts(self, agent: Agent) -> dict[str, Any]:
        async with self.sm() as s:
            return await views.counts(s, agent, self.clock())

    async def detail(self, number: str) -> dict[str, Any]:
        async with self.sm() as s:
            t = await self._get(s, number)
            others = list(
                (await s.execute(select(Ticket).where(Ticket.contact_id == t.contact_id).order_by(Ticket.id))).scalars()
            )
            ids = {o.id: o.number for o in others}
            msgs = list(
                (await s.execute(select(TicketMessage).where(TicketMessage.ticket_id.in_(list(ids)))
                                 .order_by(TicketMessage.created_at, TicketMessage.id))).scalars()
            )
            audit = list(
                (await s.execute(select(AuditLog).where(AuditLog.ticket_id == t.id).order_by(AuditLog.id))).scalars()
            )
            checks: dict[str, Any] = {}
            for o in others:
                checks.update((o.channel_meta or {}).get(SENDER_CHECKS) or {})
            return {
                "ticket": self.ticket_json(t, await self._last_message(s, t)),
                "messages": [self.message_json(m, ids.get(m.ticket_id), checks) for m in msgs],
                "audit": [
                    {"at": iso(a.at), "actor": a.actor, "action": a.action,
                     "detail": _audit_detail(a)} for a in audit
                ],
                "other_tickets": [self.ticket_json(o) for o in others if o.id != t.id],
            }

    async def attachment(self, number: str, message_id: int, index: int) -> tuple[str, dict[str, Any]]:
        """(channel, attachment record) of the `index`-th file of a message of ticket `number`."""
        async with self.sm() as s:
            t = await self._get(s, number)
            m = await s.get(TicketMessage, message_id)
            if m is None or m.ticket_id != t.id:
                raise NotFound(f"message {message_id} is not in ticket {number}", "message_not_found", number=number)
            atts = m.attachments or []
            if not 0 <= index < len(atts):
                raise NotFound(f"message {message_id} has no attachment {index}", "attachment_not_found")
            return m.channel, dict(atts[index])

    async def status_for(self, number: str, channel: str, user_id: str) -> Ticket | None:
        """The ticket if it belongs to whoever asks from (channel, user_id); None otherwise — the
        caller must answer the same way whether the ticket exists or not."""
        async with self.sm() as s:
            t = (await s.execute(select(Ticket).where(Ticket.number == number.upper()))).scalar_one_or_none()
            if t is None:
                return None
            owns = (
                await s.execute(select(ContactIdentity.id).where(ContactIdentity.contact_id == t.contact_id,
                                                                 ContactIdentity.channel == channel,
                                                                 ContactIdentity.source_id == user_id))
            ).scalar_one_or_none()
            return t if owns is not None else None

    # -- SLA --------------------------------------------------------------------------------------
    async def sla_tick(self) -> builtins.list[tuple[str, str]]:
        """Emit each ticket's SLA warning and breach once. Returns [(number, event)]."""
        now = self.clock()
        events: list[tuple[str, str, dict[str, Any]]] = []
        async with self.sm() as s, s.begin():
            rows = (await s.execute(select(Ticket).where(Ticket.status.in_(("new", "open"))))).scalars()
            for t in rows:
                st = self.sla_state(t, now)
                if st == "breached" and t.sla_breached_at is None:
                    t.sla_breached_at = now
                    t.sla_warned_at = t.sla_warned_at or now
                    self._audit(s, t, "system", "sla_breached")
                    events.append((t.number or "", "breached", self.ticket_json(t)))
                elif st == "warning" and t.sla_warned_at is None:
                    t.sla_warned_at = now
                    self._audit(s, t, "system", "sla_warning")
                    events.append((t.number or "", "warning", self.ticket_json(t)))
        for number, ev, tj in events:
            log.warning(f"sla.{ev}", ticket=number, priority=tj["priority"], topic=tj["topic"])
            await self.publish({"type": "sla", "event": ev, "ticket": tj})
            if self.settings.handoff.sla_webhook:
                asyncio.get_running_loop().create_task(self._webhook({"event": f"sla.{ev}", "ticket": tj}))
        return [(n, e) for n, e, _ in events]

    async def _webhook(self, body: dict[str, Any]) -> None:
        import aiohttp

        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                await http.post(str(self.settings.handoff.sla_webhook), json=body)
        except Exception as e:
            log.warning("sla.webhook_failed", error=str(e))

    # -- agents -----------------------------------------------------------------------------------
    async def disable_agent(self, email: str) -> bool:
        """Disable an agent: every session ends and open consoles are told to close (CONTROL)."""
        from handoff.auth import drop_agent_sessions

        async with self.sm() as s, s.begin():
            a = (await s.execute(select(Agent).where(Agent.email == email.strip().lower()))).scalar_one_or_none()
            if a is None:
                return False
            a.active = False
        await drop_agent_sessions(self.r, a.id)
        await self.r.publish(CONTROL, orjson.dumps({"type": "agent_disabled", "agent_id": a.id}).decode())
        log.info("agent.disabled", agent=a.id)
        return True

    async def add_agent(self, email: str, name: str, password: str, role: str = "agent") -> Agent:
        from handoff.auth import hash_password

        if role not in ("agent", "supervisor"):
            raise TicketError("role must be agent or supervisor", "role_invalid")
        async with self.sm() as s, s.begin():
            a = Agent(email=email.strip().lower(), name=name, password_hash=hash_password(password), role=role,
                      active=True, created_at=self.clock())
            s.add(a)
            try:
                await s.flush()
            except IntegrityError:
                raise Conflict(f"an agent with email {email} exists", "agent_exists") from None
            return a


def _audit_detail(a: AuditLog) -> str:
    parts = []
    if a.from_status or a.to_status:
        parts.append(f"{a.from_status or '∅'} → {a.to_status or '∅'}")
    for k, v in (a.detail or {}).items():
        if v is not None:
            parts.append(f"{k.removeprefix('detail_')}: {v}")
    return ", ".join(parts)
