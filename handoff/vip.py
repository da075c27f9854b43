"""VIP care: account managers and VIP SLA targets.

A contact may have an account manager (an agent) and a VIP tier. A new ticket of that contact is
offered to the manager alone (they are notified in the console: event `vip_offer`) and is hidden
from everyone else's queue until `handoff.vip_offer_min` minutes pass; unclaimed by then, it goes
to the queue like any other (`vip_offer_expired`). The tier picks the SLA targets
(`sla.vip_targets`: the entry of the highest tier not above the contact's).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import SLATarget
from bot.logs import get_logger
from bot.models import Priority
from handoff.models import Agent, Contact, ContactIdentity, Ticket
from handoff.service import OPEN_STATUSES, Forbidden, NotFound, TicketError, TicketService, iso

log = get_logger("switchboard.vip")


def vip_target(svc: TicketService, tier: int, priority: str) -> SLATarget:
    """The SLA target of a ticket of this priority for a contact of this VIP tier."""
    tiers = sorted(t for t in svc.settings.sla.vip_targets if t <= tier)
    if tier > 0 and tiers:
        table = svc.settings.sla.vip_targets[tiers[-1]]
        if Priority(priority) in table:
            return table[Priority(priority)]
    return svc.settings.sla.targets[Priority(priority)]


async def offer_first(svc: TicketService, s: AsyncSession, t: Ticket, contact: Contact) -> bool:
    """Offer a new ticket to the contact's account manager; False when there is none to offer to."""
    if contact.manager_id is None:
        return False
    manager = await s.get(Agent, contact.manager_id)
    if manager is None or not manager.active:
        return False
    t.offered_to_id = manager.id
    t.offer_until = svc.clock() + timedelta(minutes=svc.settings.handoff.vip_offer_min)
    svc._audit(s, t, "system", "vip_offered", detail_to=manager.name, until=iso(t.offer_until))
    await s.flush()
    log.info("vip.offered", ticket=t.number, agent=manager.id)
    return True


async def announce_offer(svc: TicketService, t: Ticket) -> None:
    if t.offered_to_id is not None:
        await svc.publish({"type": "vip_offer", "agent_id": t.offered_to_id, "ticket": svc.ticket_json(t)})


def hidden_from(t: Ticket, agent_id: int, now: datetime) -> bool:
    """Still offered to someone else: not in this agent's queue yet."""
    from handoff.service import aware

    until = aware(t.offer_until)
    return (t.offered_to_id is not None and t.offered_to_id != agent_id and t.assignee_id is None
            and until is not None and until > now)


async def expire_offers(svc: TicketService) -> list[str]:
    """Offers past their time go to the queue (every console is told). Returns the numbers."""
    now = svc.clock()
    out: list[dict[str, Any]] = []
    async with svc.sm() as s, s.begin():
        rows = (await s.execute(select(Ticket).where(Ticket.offered_to_id.is_not(None), Ticket.offer_until <= now,
                                                     Ticket.status.in_(OPEN_STATUSES)))).scalars()
        for t in rows:
            to = t.offered_to_id
            t.offered_to_id = None
            t.offer_until = None
            if t.assignee_id is None:
                svc._audit(s, t, "system", "vip_offer_expired", agent=to)
                await s.flush()
                await s.refresh(t, ["contact", "assignee"])
                out.append(svc.ticket_json(t))
    for tj in out:
        log.info("vip.offer_expired", ticket=tj["number"])
        await svc.publish({"type": "ticket", "ticket": tj})
        await svc.publish({"type": "vip_offer_expired", "ticket": tj})
    return [tj["number"] for tj in out]


async def find_contact(s: AsyncSession, ref: str, create_at: datetime | None = None) -> Contact:
    """A contact by id ("42") or by one of its identities ("telegram:12345", "email:a@b.c"); with
    `create_at`, an identity not seen yet becomes a new contact (a VIP onboarded before writing)."""
    if ref.isdigit():
        c = await s.get(Contact, int(ref))
    else:
        channel, _, source = ref.partition(":")
        ident = (await s.execute(select(ContactIdentity).where(ContactIdentity.channel == channel,
                                                               ContactIdentity.source_id == source))
                 ).scalar_one_or_none()
        c = await s.get(Contact, ident.contact_id) if ident else None
        if c is None and create_at is not None and channel and source:
            c = Contact(name=None, vip=0, created_at=create_at)
            s.add(c)
            await s.flush()
            s.add(ContactIdentity(contact_id=c.id, channel=channel, source_id=source))
            await s.flush()
    if c is None:
        raise NotFound(f"no contact {ref}", "contact_not_found", contact=str(ref))
    return c


async def set_manager(svc: TicketService, contact_ref: str, manager_email: str | None, tier: int | None,
                      actor: str, actor_role: str = "supervisor") -> dict[str, Any]:
    """Assign (or, with None, remove) a contact's account manager and/or set their VIP tier.
    Supervisors only; written to the audit log of the contact's open tickets."""
    if actor_role != "supervisor":
        raise Forbidden("assigning account managers is for supervisors", "supervisors_only")
    if tier is not None and not 0 <= tier <= 9:
        raise TicketError("the VIP tier is 0 (none) to 9", "vip_tier_invalid")
    async with svc.sm() as s, s.begin():
        c = await find_contact(s, contact_ref, create_at=svc.clock())
        manager = None
        if manager_email:
            manager = (await s.execute(select(Agent).where(Agent.email == manager_email.strip().lower()))
                       ).scalar_one_or_none()
            if manager is None or not manager.active:
                raise NotFound(f"no active agent {manager_email}", "agent_not_found", email=manager_email)
        c.manager_id = manager.id if manager else None
        if tier is not None:
            c.vip = tier
        for t in (await s.execute(select(Ticket).where(Ticket.contact_id == c.id,
                                                        Ticket.status.in_(OPEN_STATUSES)))).scalars():
            svc._audit(s, t, actor, "vip_manager", detail_to=manager.name if manager else None, tier=c.vip)
        log.info("vip.manager_set", contact=c.id, agent=manager.id if manager else None, tier=c.vip)
        return {"contact": c.id, "vip": c.vip, "manager": ({"id": manager.id, "name": manager.name}
                                                            if manager else None)}
