"""The console at incident scale, on both databases (SQLite file and the real PostgreSQL) with the
real Redis: counters equal the SQL truth, keyset pages reach every ticket in the console's order,
full-text search in English and Chinese finds exactly the tickets whose text has the words,
bulk actions reach every user once and are audited per ticket, incidents update and resolve
their linked tickets and the router's lookup recognises new messages about them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select, text

from bench.console_data import Sizes, load
from handoff.bulk import BulkActions
from handoff.db import make_engine, sessionmaker, upgrade
from handoff.incidents import IncidentBook, Incidents
from handoff.models import Agent, AuditLog, Ticket, TicketMessage
from handoff.service import TicketError, TicketService
from handoff.views import Filters
from tests.conftest import PG_URL, make_settings, reset_postgres
from tests.integration.test_tickets import event

pytestmark = [pytest.mark.redis]

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def svc(request, tmp_path: Path, aredis: aioredis.Redis) -> AsyncIterator[TicketService]:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}" if request.param == "sqlite" else PG_URL
    if request.param == "postgres":
        await reset_postgres(url)
    engine = make_engine(url)
    await upgrade(engine)
    await load(engine, Sizes(tickets=700, messages=4000, agents=4), now=NOW)
    service = TicketService(make_settings(database={"url": url}), sessionmaker(engine), aredis, clock=lambda: NOW)
    yield service
    await engine.dispose()


async def supervisor(svc: TicketService) -> Agent:
    return await svc.add_agent("boss@example.com", "Boss", "correct-horse-battery", "supervisor")


async def open_rows(svc: TicketService) -> list[Ticket]:
    async with svc.sm() as s:
        return list((await s.execute(select(Ticket).where(Ticket.status.in_(("new", "open", "pending_user")))
                                     .order_by(Ticket.priority_rank, Ticket.first_response_due, Ticket.id))).scalars())


async def bodies(svc: TicketService) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    async with svc.sm() as s:
        for tid, body in (await s.execute(select(TicketMessage.ticket_id, TicketMessage.body))).all():
            out.setdefault(tid, []).append(body)
    return out


async def test_counts_are_the_sql_truth_and_pages_reach_every_ticket_in_order(svc: TicketService) -> None:
    boss = await supervisor(svc)
    rows = await open_rows(svc)
    c = await svc.counts(boss)
    assert c["views"]["all"] == len(rows) > 200  # no longer the length of a list capped at 200
    assert c["unclaimed_urgent"] == sum(1 for t in rows if t.priority == "urgent" and t.assignee_id is None
                                        and t.status in ("new", "open"))
    due = [t for t in rows if t.status in ("new", "open")]
    assert c["sla"]["breached"] == sum(1 for t in due if t.sla_due_at.replace(tzinfo=UTC) <= NOW)  # type: ignore[union-attr]
    assert c["priority"]["urgent"] == sum(1 for t in rows if t.priority == "urgent")
    async with svc.sm() as s:
        resolved = (await s.execute(text("SELECT count(*) FROM tickets WHERE status IN ('resolved', 'closed')"))).scalar()
    assert c["views"]["resolved"] == resolved
    # every page, by cursor: all open tickets exactly once, in the console's order
    seen: list[str] = []
    cursor = None
    while True:
        page = await svc.page(Filters.parse({"view": "all"}), boss, cursor, 37)
        seen += [t["number"] for t in page["tickets"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == [t.number for t in rows]


async def test_search_finds_card_and_卡_in_messages_and_ids_with_filters_and_marks(svc: TicketService) -> None:
    boss = await supervisor(svc)
    rows = await open_rows(svc)
    texts = await bodies(svc)
    for q in ("card", "卡", "银行卡"):
        truth = [t.number for t in rows if any(q in b.lower() for b in texts.get(t.id, []))]
        page = await svc.page(Filters.parse({"view": "all", "q": q}), boss, None, 200)
        assert page["total"] == len(truth) > 0, q
        assert [t["number"] for t in page["tickets"]] == truth[:200]
        for t in page["tickets"]:
            m = t["match"]
            assert any(m["text"][a:b].lower() == q for a, b in m["marks"]), (q, m)
    # a TxID pasted from a message, and an e-mail address: exactly their ticket
    target = rows[-1]
    body = next(b for t in rows for b in texts[t.id] if "TxID" in b and "hours" in b)
    txid = body.split("TxID ")[1]
    owner = [t.number for t in rows if any(txid in b for b in texts[t.id])]
    page = await svc.page(Filters.parse({"view": "all", "q": txid}), boss)
    assert [t["number"] for t in page["tickets"]] == owner
    page = await svc.page(Filters.parse({"view": "all", "q": target.number}), boss)
    assert [t["number"] for t in page["tickets"]] == [target.number]
    # filters combine with the search
    truth = [t.number for t in rows if t.channel == "email" and t.priority in ("urgent", "high")
             and any("card" in b.lower() for b in texts[t.id])]
    page = await svc.page(Filters.parse({"view": "all", "q": "card", "channel": "email", "priority": "urgent,high"}),
                          boss, None, 200)
    assert [t["number"] for t in page["tickets"]] == truth


async def test_bulk_resolve_tells_each_user_once_in_their_language_and_audits_each_ticket(
        svc: TicketService) -> None:
    boss = await supervisor(svc)
    opened = [await svc.handle_event(event(f"my account was hacked zebra {i}", user=f"z{i}", channel=ch))
              for i, ch in enumerate(("web", "web", "email"))]
    async with svc.sm() as s, s.begin():
        t = await s.get_one(Ticket, opened[1].id)  # type: ignore[union-attr]
        t.lang = "zh"
    page = await svc.page(Filters.parse({"view": "all", "q": "zebra"}), boss)
    assert page["total"] == 3
    ids = [t.id for t in opened]  # type: ignore[union-attr]
    bulk = BulkActions(svc)
    await svc.r.delete("outbound:web", "outbound:email")
    res = await bulk.run(boss, "resolve", ids, {"canned": "resolved"})
    assert len(res.done) == 3 and not res.skipped
    again = await bulk.run(boss, "resolve", ids, {"canned": "resolved"})  # a second click: nobody hears twice
    assert not again.done and len(again.skipped) == 3
    sent = [orjson.loads(f["d"]) for st in ("outbound:web", "outbound:email") for _, f in await svc.r.xrange(st)]
    assert sorted(o["conversation_id"] for o in sent) == sorted(t.conversation_id for t in opened)  # type: ignore[union-attr]
    by_conv = {o["conversation_id"]: o for o in sent}
    assert "处理完毕" in by_conv[opened[1].conversation_id]["text"]  # type: ignore[union-attr]
    assert f"Your case {opened[0].number} is resolved" in by_conv[opened[0].conversation_id]["text"]  # type: ignore[union-attr]
    async with svc.sm() as s:
        audit = (await s.execute(select(AuditLog.ticket_id).where(AuditLog.action == "bulk_reply",
                                                                 AuditLog.detail["bulk"].as_string() == res.bulk_id))).scalars()
        assert sorted(audit) == sorted(ids)
        assert {t.status for t in (await s.execute(select(Ticket).where(Ticket.id.in_(ids)))).scalars()} == {"resolved"}


async def test_incident_update_reaches_linked_users_and_resolving_it_resolves_them(svc: TicketService) -> None:
    boss = await supervisor(svc)
    book = IncidentBook(svc, ttl_s=0)
    assert await book.incident_for("my BTC withdrawal is delayed", "en") is None
    opened = [await svc.handle_event(event(f"agent please kiwi {i}", topic="human", priority="normal", user=f"k{i}"))
              for i in range(3)]
    inc = Incidents(svc)
    created = await inc.create(boss, "BTC withdrawals delayed", ["BTC withdraw", "BTC 提币"],
                               "BTC withdrawals are delayed; funds are safe.", "BTC 提币延迟，资金安全。")
    found = await svc.page(Filters.parse({"view": "all", "q": "kiwi"}), boss)
    assert (await inc.link(boss, created["id"], [t.id for t in opened]))["linked"] == 3  # type: ignore[union-attr]
    assert found["total"] == 3
    hit = await book.incident_for("When will my btc WITHDRAWAL arrive?", "en")
    assert hit is not None and hit.message == "BTC withdrawals are delayed; funds are safe."
    hit = await book.incident_for("我的BTC提币什么时候到账", "zh")
    assert hit is not None and hit.message == "BTC 提币延迟，资金安全。"
    await svc.r.delete("outbound:web")
    assert (await inc.update(boss, created["id"], "Update: half processed.", "更新：已处理一半。"))["reached"] == 3
    sent = [orjson.loads(f["d"]) for _, f in await svc.r.xrange("outbound:web")]
    assert sorted(o["conversation_id"] for o in sent) == sorted(t.conversation_id for t in opened)  # type: ignore[union-attr]
    hit = await book.incident_for("BTC withdraw?", "en")
    assert hit is not None and hit.message == "Update: half processed."  # the bot says the latest
    assert (await inc.resolve(boss, created["id"], "All done.", "已全部完成。"))["resolved"] == 3
    async with svc.sm() as s:
        assert {t.status for t in (await s.execute(select(Ticket).where(Ticket.incident_id == created["id"]))).scalars()} \
            == {"resolved"}
    assert await book.incident_for("BTC withdraw?", "en") is None


async def test_bulk_assign_priority_tag_and_spam_are_audited_per_ticket_and_respect_ownership(
        svc: TicketService) -> None:
    boss = await supervisor(svc)
    lin = await svc.add_agent("lin@example.com", "Lin", "correct-horse-battery", "agent")
    opened = [await svc.handle_event(event(f"agent please mango {i}", topic="human", priority="normal", user=f"m{i}"))
              for i in range(4)]
    ids = [t.id for t in opened]  # type: ignore[union-attr]
    bulk = BulkActions(svc)
    await svc.claim(opened[0].number, boss)  # type: ignore[union-attr]
    res = await bulk.run(lin, "assign", ids, {"agent_id": lin.id})  # an agent: not someone else's ticket
    assert res.skipped == [{"number": opened[0].number, "reason": "assigned to someone else",  # type: ignore[union-attr]
                            "code": "assigned_elsewhere", "params": {"number": opened[0].number}}]  # the console translates it
    res = await bulk.run(boss, "priority", ids, {"priority": "urgent"})
    assert len(res.done) == 4
    res = await bulk.run(boss, "tag", ids, {"tag": "Phishing-Wave"})
    assert len(res.done) == 4
    page = await svc.page(Filters.parse({"view": "all", "q": "phishing-wave", "priority": "urgent"}), boss)
    assert sorted(t["number"] for t in page["tickets"]) == sorted(t.number for t in opened)  # type: ignore[union-attr]
    assert all(t["tags"] == ["phishing-wave"] for t in page["tickets"])
    await svc.r.delete("outbound:web")
    res = await bulk.run(boss, "spam", ids[2:], {})
    assert len(res.done) == 2 and not await svc.r.xrange("outbound:web")  # spammers hear nothing
    async with svc.sm() as s:
        rows = {t.id: t for t in (await s.execute(select(Ticket).where(Ticket.id.in_(ids)))).scalars()}
        assert [rows[i].status for i in ids] == ["open", "open", "closed", "closed"]
        assert {rows[i].priority for i in ids} == {"urgent"}
        t1 = rows[ids[1]]
        assert (t1.first_response_due - t1.created_at).total_seconds() == 15 * 60  # type: ignore[operator]
        actions = (await s.execute(select(AuditLog.ticket_id, AuditLog.action).where(AuditLog.ticket_id.in_(ids)))).all()
    for i in ids:
        mine = [a for t, a in actions if t == i]
        assert "priority" in mine and "tag" in mine
    assert [a for t, a in actions if t == ids[0]].count("transfer") == 0  # skipped, so not audited
    assert {a for t, a in actions if t in ids[2:]} >= {"spam"}
    with pytest.raises(TicketError, match="English and Chinese"):
        await bulk.run(boss, "resolve", ids[:2], {"en": "only English"})
