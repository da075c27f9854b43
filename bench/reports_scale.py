"""Reports at scale: N decisions (default 1,000,000) and M tickets (default 100,000) in a fresh
database at head, then the time of a 30-day report (every figure of the page: the SQL, the
assembly, the HTML) — median and max of `--runs`, on SQLite and/or PostgreSQL.

    .venv/bin/python -m bench.reports_scale --sqlite
    .venv/bin/python -m bench.reports_scale --pg postgresql+asyncpg://postgres@127.0.0.1:5432/bench_reports

The data is generated the way the recorder writes it (`handoff.reports.store`: one row per
decision, the hourly roll-up, one row per conversation) over `--days` of history (default 90:
the 30-day report reads a third of it; `--days 30` puts everything inside the period). The mix is
skewed the way support traffic is: most messages on the widget, a few topics dominate, about one
handoff in eight.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import SLASettings
from bot.models import ANSWER_TOPICS
from handoff.db import make_engine, sessionmaker, upgrade
from handoff.reports.query import Filters, report
from handoff.reports.store import conversation_key
from handoff.reports.web import page_html

CHANNELS = (("web", 50), ("telegram", 25), ("email", 15), ("twitter", 10))
TOPIC_W = [(t, w) for t, w in zip(ANSWER_TOPICS, (20, 14, 14, 12, 8, 6, 3, 2, 3, 2, 6), strict=True)]
HANDOFF = (("theft", "safety_rule", 3), ("compliance", "classifier", 3), ("human", "user_asked", 4),
           ("human", "second_failure", 2))
PRIORITIES = (("urgent", 10), ("high", 20), ("normal", 50), ("low", 20))


def pick(rnd: random.Random, pairs: Any) -> Any:
    items, weights = zip(*[(p[:-1] if len(p) > 2 else p[0], p[-1]) for p in pairs], strict=True)
    return rnd.choices(items, weights)[0]


def generate(n_dec: int, n_tix: int, days: int, now: datetime, seed: int = 1):
    rnd = random.Random(seed)
    span = days * 86400
    t0 = now - timedelta(seconds=span)
    dec: list[tuple[Any, ...]] = []
    hourly: Counter[tuple[Any, ...]] = Counter()
    convs: dict[str, tuple[Any, ...]] = {}
    i = 0
    while i < n_dec:
        ch, lang = pick(rnd, CHANNELS), rnd.choice(("en", "zh"))
        start = t0 + timedelta(seconds=rnd.random() * span)
        key = conversation_key(ch, f"c{i}")
        version = "nlu-a" if start < now - timedelta(days=12) else "nlu-b"
        handed = None
        first_topic = None
        for k in range(rnd.choice((1, 2, 3, 3, 4, 5))):
            at = start + timedelta(minutes=3 * k)
            r = rnd.random()
            if handed is not None:
                action, topic, reason, intent = "agent", handed[1], "agent_mode", "human_x"
            elif r < 0.12:
                topic, reason = pick(rnd, HANDOFF)
                action, intent = "handoff", f"{topic}_x"
            elif r < 0.24:
                action, topic, reason, intent = "clarify", "out_of_scope", "low_confidence", f"oos_{rnd.randrange(40)}"
            else:
                topic = pick(rnd, TOPIC_W)
                action, reason, intent = "answer", "nlu", f"{topic}_{rnd.randrange(6)}"
            first_topic = first_topic or topic
            if action == "handoff":
                handed = (at, topic)
            hour = at.replace(minute=0, second=0, microsecond=0)
            dec.append((f"m{i}", at, ch, lang, action, topic, intent, reason, 0.8, version))
            hourly[(hour, ch, lang, topic, action, reason, version)] += 1
            i += 1
        convs[key] = (key, ch, lang, handed[1] if handed else first_topic,
                      start.replace(minute=0, second=0, microsecond=0), handed[0] if handed else None)
    tix = []
    for j in range(n_tix):
        created = t0 + timedelta(seconds=rnd.random() * span)
        prio = pick(rnd, PRIORITIES)
        frt = rnd.expovariate(1 / 90) if rnd.random() < 0.95 else None
        res = frt + rnd.expovariate(1 / 600) if frt is not None and rnd.random() < 0.85 else None
        first = created + timedelta(minutes=frt) if frt is not None else None
        resolved = created + timedelta(minutes=res) if res is not None else None
        tix.append((j + 1, f"T{j + 1}", pick(rnd, CHANNELS), f"t{j}", rnd.choice(("human", "theft", "compliance")), prio,
                    {"urgent": 0, "high": 1, "normal": 2, "low": 3}[prio], "resolved" if resolved else "open",
                    rnd.choice(("en", "zh")), rnd.randrange(1, 21), created, created, first, resolved,
                    first if frt and frt > 60 else None, first if frt and frt > 240 else None,
                    rnd.randrange(1, 6) if resolved and rnd.random() < 0.3 else None))
    hourly_rows = [(*k, n) for k, n in hourly.items()]
    return dec, hourly_rows, list(convs.values()), tix


TICKET_COLS = ("id", "number", "channel", "conversation_id", "topic", "priority", "priority_rank", "status", "lang",
               "assignee_id", "created_at", "updated_at", "first_responded_at", "resolved_at", "sla_warned_at",
               "sla_breached_at", "csat")


async def load(engine: AsyncEngine, data: Any, now: datetime) -> None:
    dec, hourly, convs, tix = data
    cols_dec = ("message_id", "decided_at", "channel", "lang", "action", "topic", "intent", "reason", "confidence",
                "model_version")
    cols_h = ("hour", "channel", "lang", "topic", "action", "reason", "model_version", "n")
    cols_c = ("key", "channel", "lang", "topic", "started_hour", "handed_off_at")
    agents = [(i, f"a{i}@example.com", f"Agent {i}", "x", "agent", True, now) for i in range(1, 21)]
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            raw: Any = (await conn.get_raw_connection()).driver_connection
            await raw.copy_records_to_table("agents", records=agents,
                                            columns=("id", "email", "name", "password_hash", "role", "active",
                                                     "created_at"))
            await raw.execute("INSERT INTO contacts (id, vip, created_at) VALUES (1, 0, now())")
            await raw.copy_records_to_table("report_decisions", records=dec, columns=cols_dec)
            await raw.copy_records_to_table("report_hourly", records=hourly, columns=cols_h)
            await raw.copy_records_to_table("report_conversations", records=convs, columns=cols_c)
            await raw.copy_records_to_table("tickets", records=[(*t[:2], 1, *t[2:], "{}") for t in tix],
                                            columns=("id", "number", "contact_id", *TICKET_COLS[2:], "channel_meta"))
            return
    # SQLite: the stdlib driver on the same file, in one transaction (the async path adds nothing here).
    import sqlite3

    path = engine.url.database
    assert path
    fmt = "%Y-%m-%d %H:%M:%S.%f"

    def ts(v: Any) -> Any:
        return v.strftime(fmt) if isinstance(v, datetime) else v

    c = sqlite3.connect(path)
    try:
        with c:
            c.executemany("INSERT INTO agents (id, email, name, password_hash, role, active, created_at) "
                          "VALUES (?,?,?,?,?,?,?)", [tuple(ts(v) for v in a) for a in agents])
            c.execute("INSERT INTO contacts (id, vip, created_at) VALUES (1, 0, '2026-01-01 00:00:00.000000')")
            for table, cols, rows in (("report_decisions", cols_dec, dec), ("report_hourly", cols_h, hourly),
                                      ("report_conversations", cols_c, convs)):
                c.executemany(f"INSERT INTO {table} ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                              ([ts(v) for v in r] for r in rows))
            cols_t = ("id", "number", "contact_id", *TICKET_COLS[2:], "channel_meta")
            c.executemany(f"INSERT INTO tickets ({','.join(cols_t)}) VALUES ({','.join('?' * len(cols_t))})",
                          ([*(ts(v) for v in t[:2]), 1, *(ts(v) for v in t[2:]), "{}"] for t in tix))
        c.execute("ANALYZE")
    finally:
        c.close()


async def vacuum_pg(url: str) -> None:
    """What autovacuum does on a live database: statistics and the visibility map (index-only scans)."""
    engine = make_engine(url)
    async with engine.connect() as conn:
        raw: Any = (await conn.get_raw_connection()).driver_connection
        await raw.execute("VACUUM ANALYZE")
    await engine.dispose()


async def measure(url: str, data: Any, now: datetime, runs: int) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        await upgrade(engine)
        t = time.perf_counter()
        await load(engine, data, now)
        if engine.dialect.name == "postgresql":
            await vacuum_pg(url)
        load_s = time.perf_counter() - t
        day0 = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        sm = sessionmaker(engine)
        out: dict[str, Any] = {"load_s": round(load_s, 1)}
        for label, f in (("30d", Filters(day0 - timedelta(days=30), day0)),
                         ("30d channel=telegram lang=zh", Filters(day0 - timedelta(days=30), day0, "telegram", "zh")),
                         ("30d topic=human", Filters(day0 - timedelta(days=30), day0, topic="human")),
                         ("today", Filters(day0 - timedelta(days=1), day0))):
            times, cpu = [], []
            for _ in range(runs):
                t, c = time.perf_counter(), time.process_time()
                async with sm() as s:
                    tables = await report(s, f, SLASettings())
                page_html(tables, {}, f, False, ["web"], "bench")
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            out[label] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
                          "cpu_median_s": round(statistics.median(cpu), 3)}
            print(f"  {label:32s} wall median {statistics.median(times):.3f} s  min {min(times):.3f} s   "
                  f"this process's CPU median {statistics.median(cpu):.3f} s   (load average "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
        return out
    finally:
        await engine.dispose()


async def reset_pg(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=90, help="history the data is spread over")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sqlite", action="store_true", help="measure on a temporary SQLite file")
    ap.add_argument("--pg", metavar="URL", help="measure on this PostgreSQL database (its public schema is DROPPED)")
    a = ap.parse_args(argv)
    if not a.sqlite and not a.pg:
        ap.error("choose --sqlite and/or --pg URL")
    now = datetime.now(UTC)
    t = time.perf_counter()
    data = generate(a.decisions, a.tickets, a.days, now)
    print(f"generated {len(data[0]):,} decisions ({len(data[1]):,} hourly rows, {len(data[2]):,} conversations), "
          f"{len(data[3]):,} tickets over {a.days} days in {time.perf_counter() - t:.0f} s", flush=True)
    if a.sqlite:
        with tempfile.TemporaryDirectory() as d:
            print("SQLite:", flush=True)
            asyncio.run(measure(f"sqlite+aiosqlite:///{Path(d) / 'bench.db'}", data, now, a.runs))
    if a.pg:
        print("PostgreSQL:", flush=True)
        asyncio.run(reset_pg(a.pg))
        asyncio.run(measure(a.pg, data, now, a.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
