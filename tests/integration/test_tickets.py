"""Tickets on both databases (SQLite file and the real PostgreSQL) with the real Redis: opening
from handoff decisions, atomic claims, replies through the outbound stream, SLA timers on a
controllable clock, resolve + CSAT, status lookups that never reveal someone else's ticket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from bot.models import Action, Decision, Message, Outbound, Priority
from handoff.db import make_engine, sessionmaker, upgrade
from handoff.service import Conflict, Forbidden, TicketService
from tests.conftest import PG_URL, make_settings, reset_postgres

pytestmark = [pytest.mark.redis]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture(params=["sqlite", "postgres"])
async def svc(request, tmp_path: Path, aredis: aioredis.Redis) -> AsyncIterator[TicketService]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}"
    else:
        url = PG_URL
        await reset_postgres(url)
    settings = make_settings(database={"url": url}, handoff={"vip": {"web:vip-user": 1}})
    engine = make_engine(url)
    await upgrade(engine)
    service = TicketService(settings, sessionmaker(engine), aredis, clock=Clock())
    yield service
    await engine.dispose()


def event(text: str, topic: str = "theft", priority: str = "urgent", user: str = "u1", silent: bool = False,
          channel: str = "web", **meta: str) -> dict:  # type: ignore[type-arg]
    m = Message(channel=channel, channel_message_id=text[:20] + user, conversation_id=f"{channel}:{user}",
                user_id=user, text=text, lang="en", meta=meta)
    d = Decision(message_id=m.id, conversation_id=m.conversation_id, channel=channel, action=Action.HANDOFF,
                 topic=topic, intent=f"{topic}_x", confidence=0.9, priority=Priority(priority),  # type: ignore[arg-type]
                 reply="" if silent else "A person will take over.", lang="en", silent=silent)
    return orjson.loads('{"decision":' + d.to_json() + ',"message":' + m.to_json() + "}")


async def agent(svc: TicketService, name: str, role: str = "agent"):  # type: ignore[no-untyped-def]
    return await svc.add_agent(f"{name.lower()}@example.com", name, "correct-horse-battery", role)


async def test_theft_opens_an_urgent_ticket_and_later_messages_join_it(svc: TicketService) -> None:
    await svc.r.xadd("conv:web:u1:log", {"d": orjson.dumps({"in": "hello", "out": "Hi! How can I help?",
                                                             "at": "2026-11-28T11:59:00+00:00"}).decode()})
    await svc.r.xadd("conv:web:u1:log", {"d": "{}"})
    ev = event("my account was hacked", reply_chat="c1")
    t = await svc.handle_event(ev)
    assert t is not None and t.number == "SB-000001" and t.status == "new" and t.priority == "urgent"
    assert t.first_response_due == svc.clock() + timedelta(minutes=15)
    assert await svc.handle_event(ev) is None  # the same entry redelivered: nothing doubled
    t2 = await svc.handle_event(event("anyone there?", silent=True))
    assert t2 is not None and t2.number == t.number
    d = await svc.detail(t.number)
    assert [(m["author_type"], m["text"]) for m in d["messages"]] == [
        ("user", "hello"), ("bot", "Hi! How can I help?"), ("user", "my account was hacked"),
        ("bot", "A person will take over."), ("user", "anyone there?")]
    assert d["audit"][0]["action"] == "opened"


async def test_queue_orders_by_priority_then_sla(svc: TicketService) -> None:
    a = await agent(svc, "Lin")
    await svc.handle_event(event("talk to a human", topic="human", priority="normal", user="h"))
    svc.clock.advance(minutes=1)  # type: ignore[attr-defined]
    await svc.handle_event(event("account frozen", topic="compliance", priority="high", user="c"))
    await svc.handle_event(event("hacked!!", user="t"))
    await svc.handle_event(event("agent please", topic="human", priority="normal", user="vip-user"))
    rows = await svc.list("queue", a)
    # The VIP's ticket is high too, and due sooner: VIP tiers have their own SLA (sla.vip_targets).
    assert [(r["topic"], r["priority"]) for r in rows] == [
        ("theft", "urgent"), ("human", "high"), ("compliance", "high"), ("human", "normal")]


async def test_claim_is_atomic_under_concurrency(svc: TicketService) -> None:
    agents = [await agent(svc, f"A{i}") for i in range(8)]
    t = await svc.handle_event(event("hacked"))
    results = await asyncio.gather(*(svc.claim(t.number, a) for a in agents), return_exceptions=True)  # type: ignore[union-attr]
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) and "already claimed by" in str(r) for r in results if r not in winners)
    d = await svc.detail(t.number)  # type: ignore[union-attr]
    assert d["ticket"]["status"] == "open" and [a["action"] for a in d["audit"]].count("claimed") == 1


async def test_reply_reaches_the_users_channel_and_stops_the_first_response_clock(svc: TicketService) -> None:
    lin, mei = await agent(svc, "Lin"), await agent(svc, "Mei")
    t = await svc.handle_event(event("hacked", channel="telegram", reply_chat_id="777"))
    await svc.claim(t.number, lin)  # type: ignore[union-attr]
    with pytest.raises(Forbidden):
        await svc.reply(t.number, mei, "hi")  # type: ignore[union-attr]
    await svc.reply(t.number, lin, "Hi, I'm Lin. My password: hunter2x is not needed")  # type: ignore[union-attr]
    [(_, f)] = await svc.r.xrange("outbound:telegram")
    ob = Outbound.from_json(f["d"])
    assert (ob.kind, ob.author, ob.meta["reply_chat_id"], ob.user_id) == ("agent", "Lin", "777", "u1")
    d = await svc.detail(t.number)  # type: ignore[union-attr]
    assert d["ticket"]["first_responded_at"] is not None and d["ticket"]["sla"] == "ok"
    assert "hunter2x" not in d["messages"][-1]["text"]  # stored redacted


async def test_sla_warning_then_breach_once_each(svc: TicketService) -> None:
    t = await svc.handle_event(event("hacked"))
    ps = svc.r.pubsub()
    await ps.subscribe("agent:events")
    assert await svc.sla_tick() == []
    svc.clock.advance(minutes=11)  # type: ignore[attr-defined]  # 73 % of 15 min
    assert await svc.sla_tick() == []
    svc.clock.advance(minutes=1)  # type: ignore[attr-defined]  # 80 %
    assert await svc.sla_tick() == [(t.number, "warning")]  # type: ignore[union-attr]
    assert await svc.sla_tick() == []
    svc.clock.advance(minutes=4)  # type: ignore[attr-defined]
    assert await svc.sla_tick() == [(t.number, "breached")]  # type: ignore[union-attr]
    assert await svc.sla_tick() == []
    seen = []
    for _ in range(20):
        m = await ps.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if m:
            seen.append(orjson.loads(m["data"]))
    assert [e["event"] for e in seen if e["type"] == "sla"] == ["warning", "breached"]
    await ps.aclose()


async def test_resolve_tells_the_user_asks_for_csat_and_hands_back_to_the_bot(svc: TicketService) -> None:
    lin = await agent(svc, "Lin")
    t = await svc.handle_event(event("hacked"))
    await svc.r.hset("conv:web:u1", mapping={"mode": "agent"})
    await svc.claim(t.number, lin)  # type: ignore[union-attr]
    await svc.resolve(t.number, lin)  # type: ignore[union-attr]
    [(_, f)] = await svc.r.xrange("outbound:web")
    ob = Outbound.from_json(f["d"])
    assert "SB-000001" in ob.text and [b.payload for b in ob.buttons] == ["1", "2", "3", "4", "5"]
    assert await svc.r.hget("conv:web:u1", "mode") == "bot"
    assert await svc.r.hget("conv:web:u1", "csat_pending") == "SB-000001"
    await svc.handle_event({"csat": {"ticket": "SB-000001", "score": 4}})
    assert (await svc.detail("SB-000001"))["ticket"]["csat"] == 4
    # A new handoff in the same conversation within a week reopens the ticket.
    again = await svc.handle_event(event("they took more!", user="u1"))
    assert again.number == "SB-000001" and again.status == "open"  # type: ignore[union-attr]


async def test_status_lookup_only_for_the_owner(svc: TicketService) -> None:
    t = await svc.handle_event(event("hacked", user="owner"))
    assert (await svc.status_for(t.number, "web", "owner")).number == t.number  # type: ignore[union-attr]
    assert await svc.status_for(t.number, "web", "stranger") is None  # type: ignore[union-attr]
    assert await svc.status_for("SB-999999", "web", "owner") is None


async def test_state_machine_refuses_impossible_transitions(svc: TicketService) -> None:
    lin = await agent(svc, "Lin")
    t = await svc.handle_event(event("hacked"))
    await svc.set_status(t.number, lin, "closed")  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="closed ticket cannot become open"):
        await svc.set_status(t.number, lin, "open")  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        await svc.claim(t.number, lin)  # type: ignore[union-attr]
