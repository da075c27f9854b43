"""The agent console at incident scale: 100,000 tickets and 1,000,000 messages on SQLite and on
PostgreSQL; how long a list page (first and deep, by keyset), the counters and full-text searches
(Chinese and English, with filters) take, measured through the same service calls the console's
API makes (`TicketService.page` / `.counts`, including the JSON shaping of each ticket).

    python -m bench.console_scale                       # both databases, 100k / 1M
    python -m bench.console_scale --db sqlite --tickets 20000 --messages 200000
    SWITCHBOARD_BENCH_PG_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench python -m bench.console_scale

The PostgreSQL database given is emptied first (DROP SCHEMA public CASCADE): point it at a
database that belongs to the bench. Targets: page < 100 ms, counts < 100 ms, search < 300 ms (p95).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from bench.console_data import Sizes, load
from bot.config import parse_settings
from handoff.db import make_engine, sessionmaker, upgrade
from handoff.models import Agent, ContactIdentity, Ticket, TicketMessage
from handoff.service import TicketService
from handoff.views import Filters

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"page": 100.0, "counts": 100.0, "search": 300.0}


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> tuple[list[float], list[float], Any]:
    """Wall time of each call, and the CPU time this process spent on it (all threads: on SQLite
    that includes the database's own work, and does not grow when other processes crowd the
    machine — the wall time does)."""
    out: list[float] = []
    cpu: list[float] = []
    res = None
    await fn()  # warm: plan cache, pages in memory
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        res = await fn()
        out.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return out, cpu, res


def p(vals: list[float], q: float) -> float:
    s = sorted(vals)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def reset_pg(url: str) -> None:
    """Empty the bench's database (creating it first when it does not exist)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    u = make_url(url)
    admin = create_async_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        exists = (await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": u.database})).first()
        if not exists:
            await conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    await admin.dispose()
    eng = create_async_engine(url)
    async with eng.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await eng.dispose()


async def bench_db(name: str, url: str, sizes: Sizes, rounds: int, reuse: bool = False) -> dict[str, Any]:
    if name == "postgres" and not reuse:
        await reset_pg(url)
    engine = make_engine(url)
    await upgrade(engine)
    t0 = time.perf_counter()
    if reuse:
        async with engine.connect() as c:
            n_t = (await c.execute(text("SELECT count(*) FROM tickets"))).scalar_one()
            n_m = (await c.execute(text("SELECT count(*) FROM ticket_messages"))).scalar_one()
        info = {"tickets": n_t, "messages": n_m, "agents": sizes.agents, "reused": True}
    else:
        info = await load(engine, sizes)
    load_s = time.perf_counter() - t0
    print(f"[{name}] loaded {info['tickets']:,} tickets, {info['messages']:,} messages in {load_s:.0f} s",
          file=sys.stderr)
    settings = parse_settings({"channels": [{"type": "web"}], "database": {"url": url}}, base_dir=ROOT)
    svc = TicketService(settings, sessionmaker(engine), None)  # reads need no Redis
    async with svc.sm() as s:
        agent = await s.get_one(Agent, 3)
        # needles from open tickets (the "all open" view is searched)
        def body_like(pat: str) -> Any:
            return (select(TicketMessage.body).join(Ticket, Ticket.id == TicketMessage.ticket_id)
                    .where(TicketMessage.body.like(pat), Ticket.status == "open").order_by(TicketMessage.id.desc())
                    .limit(1))

        tx = (await s.execute(body_like("%hours, TxID %"))).scalar_one()
        addr = (await s.execute(body_like("%sent USDT to 0x%"))).scalar_one()
        order = (await s.execute(body_like("%payment failed twice, order %"))).scalar_one()
        email, number = (await s.execute(
            select(ContactIdentity.source_id, Ticket.number).join(Ticket, Ticket.contact_id == ContactIdentity.contact_id)
            .where(ContactIdentity.channel == "email", Ticket.status == "open")
            .order_by(Ticket.id.desc()).limit(1))).one()
    txid = tx.split("TxID ")[1].split()[0]
    address = addr.split("to ")[1].split()[0]
    order_id = next(w for w in order.replace(",", " ").split() if w.isdigit() and len(w) == 10)
    rows: list[dict[str, Any]] = []

    async def measure(kind: str, label: str, fn: Callable[[], Awaitable[Any]]) -> None:
        ms, cpu, res = await timed(fn, rounds)
        found = res.get("total") if isinstance(res, dict) and "total" in res else None
        rows.append({"db": name, "kind": kind, "what": label, "p50_ms": round(p(ms, 0.5), 1),
                     "p95_ms": round(p(ms, 0.95), 1), "max_ms": round(max(ms), 1), "found": found,
                     "cpu_p50_ms": round(p(cpu, 0.5), 1), "cpu_p95_ms": round(p(cpu, 0.95), 1),
                     "target_ms": TARGETS[kind], "ok": p(ms, 0.95) < TARGETS[kind]})
        r = rows[-1]
        print(f"[{name}] {kind:6} {label:48} p50 {r['p50_ms']:7.1f}  p95 {r['p95_ms']:7.1f}  "
              f"cpu p95 {r['cpu_p95_ms']:6.1f}  {'' if found is None else f'found {found:,}'}", file=sys.stderr)

    def pg(view: str, **kw: str) -> Filters:
        return Filters.parse({"view": view, **kw})

    for view in ("queue", "all", "mine", "resolved"):
        f = pg(view)
        await measure("page", f"{view}: first page (50) + total", functools.partial(svc.page, f, agent, None, 50))
    # a deep page: walk 40 pages (2,000 tickets) down, then time the next one
    for view in ("all", "resolved"):
        f = pg(view)
        cur = None
        for _ in range(40):
            cur = (await svc.page(f, agent, cur, 50))["next"]
        await measure("page", f"{view}: page 41 by cursor", functools.partial(svc.page, f, agent, cur, 50))
    f = pg("all", priority="urgent", channel="email")
    await measure("page", "all: urgent + email, first page", lambda: svc.page(f, agent, None, 50))
    await measure("counts", "views, priorities, SLA", lambda: svc.counts(agent))
    searches = [
        ("all", {"q": "card"}), ("all", {"q": "卡"}), ("all", {"q": "银行卡"}), ("resolved", {"q": "card"}),
        ("all", {"q": "withdrawal pending"}), ("all", {"q": "提币 卡住"}), ("all", {"q": txid}),
        ("all", {"q": address}), ("all", {"q": order_id}), ("all", {"q": email}), ("all", {"q": number}),
        ("all", {"q": "王芳"}), ("all", {"q": "card", "priority": "urgent", "channel": "web"}),
        ("all", {"q": "卡", "topic": "human", "since": "2026-01-01"}), ("queue", {"q": "frozen"}),
        ("all", {"q": "card", "assignee": "none"}),
    ]
    for view, kw in searches:
        f = pg(view, **kw)
        label = f"{view}: " + " ".join(f"{k}={v[:18]}" for k, v in kw.items())
        await measure("search", label, functools.partial(svc.page, f, agent, None, 50))
    await engine.dispose()
    return {"db": name, "load_s": round(load_s, 1), **info, "rows": rows}


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--pg-url", default=os.environ.get("SWITCHBOARD_BENCH_PG_URL")
                    or "postgresql+asyncpg://postgres@127.0.0.1:5432/switchboard_bench")
    ap.add_argument("--keep", action="store_true", help="keep the SQLite file (its path is printed)")
    ap.add_argument("--reuse", action="store_true",
                    help="measure the databases as they are (a kept data/console-scale.db, the PostgreSQL one)")
    a = ap.parse_args()
    sizes = Sizes(tickets=a.tickets, messages=a.messages)
    results = []
    with tempfile.TemporaryDirectory(prefix="console-scale-") as tmp:
        if a.db in ("sqlite", "both"):
            path = ROOT / "data" / "console-scale.db" if a.reuse else Path(tmp) / "tickets.db"
            results.append(await bench_db("sqlite", f"sqlite+aiosqlite:///{path}", sizes, a.rounds, a.reuse))
            if a.keep and not a.reuse:
                keep = ROOT / "data" / "console-scale.db"
                keep.parent.mkdir(exist_ok=True)
                path.replace(keep)
                print(f"kept {keep}", file=sys.stderr)
        if a.db in ("postgres", "both"):
            results.append(await bench_db("postgres", a.pg_url, sizes, a.rounds, a.reuse))
    print(f"\n{'db':9} {'kind':7} {'what':50} {'p50 ms':>8} {'p95 ms':>8} {'cpu p95':>8} {'target':>7}  found")
    failed = 0
    for r in results:
        for row in r["rows"]:
            failed += not row["ok"]
            print(f"{row['db']:9} {row['kind']:7} {row['what']:50} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} "
                  f"{row['cpu_p95_ms']:8.1f} "
                  f"{'<' + str(int(row['target_ms'])):>7}  {'' if row['found'] is None else format(row['found'], ',')}"
                  f"{'' if row['ok'] else '   ← over target'}")
    out = ROOT / "bench" / "results" / f"console-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}  — the machine is shared; outliers in p95 "
          "are other processes' time slices", file=sys.stderr)
    out.write_text(json.dumps({"load_average_end": os.getloadavg(), "sizes": vars(sizes) if hasattr(sizes, "__dict__") else
                               {"tickets": sizes.tickets, "messages": sizes.messages},
                               "machine_cpus": os.cpu_count(), "results": results}, indent=1, ensure_ascii=False))
    print(f"\n{'all within target' if not failed else f'{failed} over target'}; saved {out.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
