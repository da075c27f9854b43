"""Supervisor reports in real headless Chromium against the real web role: decisions put on the
`decisions` stream are recorded in SQL by the role's own consumer group, tickets are seeded in the
database, and every figure the page shows is checked against what this test computes from the
seed by itself — before and after a filter, in the table beside each chart and in the CSV. An
agent gets 403; trimming the stream loses no figure."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import os
import random
import sqlite3
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from playwright.async_api import Browser, Page, expect

from bot.models import Decision
from intents.rasa import free_port
from tests.conftest import REDIS_URL, ROOT, wait_port

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.slow]

PASSWORD = "correct-horse-battery"
CHANNELS = ("web", "telegram", "email")
# (action, topic, router reason, silent, the reason the report must file a handoff under)
KINDS = (
    ("answer", "fees", "nlu", False, None),
    ("answer", "deposit", "nlu", False, None),
    ("clarify", "out_of_scope", "low_confidence", False, None),
    ("handoff", "theft", "safety_rule:theft_report", False, "safety_rule"),
    ("handoff", "compliance", "nlu", False, "classifier"),
    ("handoff", "human", "second_fallback", False, "second_failure"),
    ("handoff", "human", "safety_rule:ask_human", False, "user_asked"),
    ("handoff", "theft", "agent_mode", True, None),  # a message to a person-owned conversation
)
CLARIFY_INTENTS = ("out_of_scope_weather", "out_of_scope_vague", "fees_maker")
FRT_TARGET = {"urgent": 15, "high": 60, "normal": 240, "low": 1440}  # config.yaml's SLA (defaults)


@dataclass
class SeedDecision:
    d: Decision
    kind: str | None


@dataclass
class SeedTicket:
    priority: str
    created: datetime
    frt_min: int | None
    res_min: int | None
    agent: str | None
    csat: int | None
    channel: str


def day0() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def seed_decisions(rnd: random.Random, start: datetime) -> list[SeedDecision]:
    out: list[SeedDecision] = []
    for c in range(60):
        ch, lang = rnd.choice(CHANNELS), rnd.choice(("en", "zh"))
        t = start - timedelta(days=rnd.randrange(0, 6)) + timedelta(hours=rnd.randrange(0, 20), minutes=rnd.randrange(60))
        for k in range(rnd.randrange(1, 5)):
            action, topic, reason, silent, kind = rnd.choice(KINDS)
            intent = rnd.choice(CLARIFY_INTENTS) if action == "clarify" else f"{topic}_x"
            d = Decision(message_id=f"m{c}-{k}", conversation_id=f"conv-{c}", channel=ch, action=action, topic=topic,
                         intent=intent, confidence=0.5, priority="normal", reply="", lang=lang, reason=reason,
                         silent=silent, model_version="m-1" if t < start - timedelta(days=2) else "m-2",
                         decided_at=t + timedelta(minutes=k * 7))
            out.append(SeedDecision(d, kind))
    return out


def seed_tickets(rnd: random.Random, start: datetime) -> list[SeedTicket]:
    out = []
    for _ in range(40):
        created = start - timedelta(days=rnd.randrange(0, 6)) + timedelta(hours=rnd.randrange(0, 12))
        frt = rnd.choice((None, rnd.randrange(1, 600)))
        res = None if frt is None or rnd.random() < 0.3 else frt + rnd.randrange(5, 3000)
        out.append(SeedTicket(rnd.choice(list(FRT_TARGET)), created, frt, res, rnd.choice(("Ana", "Boss", None)),
                              rnd.choice((None, 1, 2, 3, 4, 5)) if res is not None else None, rnd.choice(CHANNELS)))
    return out


def pct(a: int, b: int) -> str:
    return "–" if not b else str(round(100.0 * a / b, 1))


def nearest_rank(values: list[float], p: float) -> str:
    if not values:
        return "–"
    s = sorted(values)
    return str(round(float(s[math.ceil(p * len(s)) - 1]), 1))


async def insert_tickets(db: Path, tickets: list[SeedTicket]) -> None:
    from sqlalchemy import select

    from handoff.db import make_engine, sessionmaker
    from handoff.models import Agent, Contact, Ticket

    eng = make_engine(f"sqlite+aiosqlite:///{db}")
    try:
        async with sessionmaker(eng)() as s, s.begin():
            ids = {a.name: a.id for a in (await s.execute(select(Agent))).scalars()}
            contact = Contact(name="seed", vip=0, created_at=datetime.now(UTC))
            s.add(contact)
            await s.flush()
            rank = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
            for i, t in enumerate(tickets):
                first = t.created + timedelta(minutes=t.frt_min) if t.frt_min is not None else None
                resolved = t.created + timedelta(minutes=t.res_min) if t.res_min is not None else None
                target = FRT_TARGET[t.priority]
                breached = t.frt_min is not None and t.frt_min > target
                warned = t.frt_min is not None and t.frt_min > 0.75 * target
                s.add(Ticket(number=f"T-{i}", contact_id=contact.id, channel=t.channel, conversation_id=f"tc-{i}",
                             topic="human", priority=t.priority, priority_rank=rank[t.priority],
                             status="resolved" if resolved else "open", lang="en",
                             assignee_id=ids[t.agent] if t.agent else None, channel_meta={}, created_at=t.created,
                             updated_at=t.created, first_responded_at=first, resolved_at=resolved, csat=t.csat,
                             sla_warned_at=first if warned else None, sla_breached_at=first if breached else None))
    finally:
        await eng.dispose()


@dataclass
class Site:
    url: str
    db: Path
    start: datetime
    decisions: list[SeedDecision]
    tickets: list[SeedTicket]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("reports")
    db = tmp / "tickets.db"
    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    env = {**os.environ, "SWITCHBOARD_REDIS_URL": REDIS_URL, "SWITCHBOARD_LOG_FORMAT": "json",
           "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "SWITCHBOARD_AGENT_PASSWORD": PASSWORD}
    exe = str(ROOT / ".venv/bin/switchboard")
    for email, name, role in (("boss@example.com", "Boss", "supervisor"), ("ana@example.com", "Ana", "agent")):
        p = subprocess.run([exe, "agents", "add", email, "--name", name, "--role", role], env=env,
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert p.returncode == 0, p.stderr
    start = day0()
    rnd = random.Random(20)
    decisions, tickets = seed_decisions(rnd, start), seed_tickets(rnd, start)
    asyncio.run(insert_tickets(db, tickets))
    for sd in decisions:
        r.xadd("decisions", {"d": sd.d.to_json()})
    r.xadd("decisions", {"d": decisions[0].d.to_json()})  # a redelivery: counted once
    port = free_port()
    proc = subprocess.Popen([exe, "run", "--role", "web", "--port", str(port), "--config", str(ROOT / "config.yaml")],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "web.log", "wb"))  # noqa: SIM115
    try:
        wait_port(port, 30)
        deadline = time.monotonic() + 30
        while True:  # the role's reports consumer records the stream
            with sqlite3.connect(db) as c:
                n = c.execute("SELECT count(*) FROM report_decisions").fetchone()[0]
            if n >= len(decisions) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert n == len(decisions)
        yield Site(f"http://127.0.0.1:{port}", db, start, decisions, tickets)
    finally:
        proc.terminate()
        proc.wait(20)
        r.flushdb()


async def sign_in(browser: Browser, url: str, email: str) -> Page:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    page = await ctx.new_page()
    await page.goto(url + "/agent/login")
    await page.get_by_test_id("email").fill(email)
    await page.get_by_test_id("password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(url + "/agent")
    return page


async def table(page: Page, tid: str) -> list[list[str]]:
    return await page.locator(f'[data-testid="table-{tid}"] tbody tr').evaluate_all(
        "rows => rows.map(r => Array.from(r.children).map(c => c.textContent.trim()))")


def expected_volume(ds: list[SeedDecision], channels: tuple[str, ...]) -> list[list[str]]:
    msgs, convs = Counter(), defaultdict(set)
    for sd in ds:
        msgs[sd.d.channel] += 1
        convs[sd.d.channel].add(sd.d.conversation_id)
    return [[c, str(len(convs[c])), str(msgs[c])] for c in sorted(channels) if msgs[c]]


def expected_containment(ds: list[SeedDecision]) -> list[list[str]]:
    convs, handed = defaultdict(set), defaultdict(set)
    for sd in ds:
        convs[sd.d.channel].add(sd.d.conversation_id)
        if sd.d.action == "handoff" and not sd.d.silent:
            handed[sd.d.channel].add(sd.d.conversation_id)
    rows = [[c, str(len(convs[c])), str(len(handed[c])), pct(len(convs[c]) - len(handed[c]), len(convs[c]))]
            for c in sorted(convs)]
    n, h = sum(len(v) for v in convs.values()), sum(len(v) for v in handed.values())
    return [*rows, ["all", str(n), str(h), pct(n - h, n)]]


def expected_reasons(ds: list[SeedDecision]) -> list[list[str]]:
    kinds = Counter(sd.kind for sd in ds if sd.kind)
    total = sum(kinds.values())
    return [[k, str(kinds[k]), pct(kinds[k], total)]
            for k in ("safety_rule", "classifier", "second_failure", "user_asked")]


async def test_supervisor_reads_reports_that_match_the_seed(site: Site, browser: Browser) -> None:
    page = await sign_in(browser, site.url, "boss@example.com")
    resp = await page.goto(site.url + "/agent/reports?period=7d")
    assert resp is not None and resp.status == 200
    ds = site.decisions
    assert await table(page, "volume_by_channel") == expected_volume(ds, CHANNELS)
    assert await table(page, "containment") == expected_containment(ds)
    assert await table(page, "handoff_by_reason") == expected_reasons(ds)
    clar = Counter(sd.d.intent for sd in ds if sd.d.action == "clarify")
    top = sorted(clar.items(), key=lambda kv: (-kv[1], kv[0]))
    assert await table(page, "top_unanswered") == [[i, str(n)] for i, n in top]
    await expect(page.locator("#top_unanswered a[href='/agent/review']")).to_be_visible()
    models = await table(page, "model_versions")
    assert [m[0] for m in models] == ["m-1", "m-2"]
    assert sum(int(m[3]) for m in models) == sum(1 for sd in ds if not sd.d.silent)

    # Team: first response p50/p90 per priority against the SLA targets; SLA states; per agent; CSAT.
    ts = site.tickets
    rows = {r[0]: r for r in await table(page, "response_times")}
    for prio, target in FRT_TARGET.items():
        frt = [t.frt_min for t in ts if t.priority == prio and t.frt_min is not None]
        res = [t.res_min for t in ts if t.priority == prio and t.res_min is not None]
        assert rows[prio][1:] == [str(sum(1 for t in ts if t.priority == prio)), nearest_rank(frt, .5),
                                  nearest_rank(frt, .9), str(target), rows[prio][5], rows[prio][6], rows[prio][7]]
        assert rows[prio][5:7] == [nearest_rank(res, .5), nearest_rank(res, .9)]
    sla = {r[0]: r[1:] for r in await table(page, "sla_outcomes")}
    for prio, target in FRT_TARGET.items():
        mine = [t for t in ts if t.priority == prio]
        breached = sum(1 for t in mine if t.frt_min is not None and t.frt_min > target)
        warned = sum(1 for t in mine if t.frt_min is not None and 0.75 * target < t.frt_min <= target)
        assert sla[prio] == [str(len(mine) - breached - warned), str(warned), str(breached)]
    agents = {r[0]: r for r in await table(page, "agents")}
    for name in ("Ana", "Boss"):
        mine = [t for t in ts if t.agent == name]
        rated = [t.csat for t in mine if t.csat is not None]
        assert agents[name][1] == str(len(mine))
        assert agents[name][2] == nearest_rank([t.frt_min for t in mine if t.frt_min is not None], .5)
        assert agents[name][3] == (str(round(sum(rated) / len(rated), 2)) if rated else "–")
    dist = Counter(t.csat for t in ts if t.csat is not None)
    assert await table(page, "csat_distribution") == [[str(i), str(dist[i])] for i in range(1, 6)]
    backlog = await table(page, "backlog")
    assert len(backlog) == 7
    for label, n_open in backlog:
        end = datetime.fromisoformat(label).replace(tzinfo=UTC) + timedelta(days=1)
        expect_open = sum(1 for t in ts if t.created < end
                          and (t.res_min is None or t.created + timedelta(minutes=t.res_min) > end))
        assert n_open == str(expect_open), label

    if (ROOT / "data").is_dir():
        await page.screenshot(path=str(ROOT / "data" / "reports-e2e.png"), full_page=True)
    # Charts are drawn beside the tables.
    assert await page.locator('svg[data-chart="messages_over_time"] polyline').count() == 3
    assert await page.locator('svg[data-chart="handoff_by_reason"] rect[height]').count() >= 4
    assert await page.locator('svg[data-chart="response_times"] rect').count() > 0

    # A filter changes them: Telegram only.
    await page.get_by_test_id("f-channel").select_option("telegram")
    await page.get_by_test_id("f-apply").click()
    await page.wait_for_url("**channel=telegram**")
    tg = [sd for sd in ds if sd.d.channel == "telegram"]
    assert await table(page, "volume_by_channel") == expected_volume(tg, CHANNELS)
    assert await table(page, "handoff_by_reason") == expected_reasons(tg)
    # ... and Chinese only, today only.
    await page.goto(site.url + "/agent/reports?period=today&lang=zh")
    today = [sd for sd in ds if sd.d.lang == "zh" and sd.d.decided_at >= site.start]
    assert await table(page, "volume_by_channel") == expected_volume(today, CHANNELS)

    # The stream is capped and trimmed; the figures are in SQL and stay.
    redis.Redis.from_url(REDIS_URL).xtrim("decisions", maxlen=0)
    await page.goto(site.url + "/agent/reports?period=7d")
    assert await table(page, "containment") == expected_containment(ds)
    await page.context.close()


async def test_csv_round_trip_and_chinese_page(site: Site, browser: Browser) -> None:
    page = await sign_in(browser, site.url, "boss@example.com")
    await page.goto(site.url + "/agent/reports?period=7d&ui=zh")
    await expect(page.locator("h1")).to_contain_text("报表")
    await expect(page.locator('[data-testid="table-handoff_by_reason"] thead')).to_contain_text("转人工")
    if (ROOT / "data").is_dir():
        await page.screenshot(path=str(ROOT / "data" / "reports-zh-e2e.png"))
    shown = await table(page, "handoff_by_reason")
    async with page.expect_download() as dl:
        await page.get_by_test_id("csv-handoff_by_reason").click()
    path = await (await dl.value).path()
    rows = list(csv.reader(io.StringIO(await asyncio.to_thread(Path(path).read_text, encoding="utf-8"))))
    assert rows[0] == ["reason", "handoffs", "share_pct"]
    assert [[c or "–" for c in r] for r in rows[1:]] == shown == expected_reasons(site.decisions)
    whole = await page.context.request.get(site.url + "/agent/reports/export.csv?period=7d")
    assert whole.status == 200
    every = list(csv.reader(io.StringIO(await whole.text())))
    assert {r[0] for r in every} >= {"volume_by_channel", "containment", "response_times", "csat_by_topic"}
    bad = await page.context.request.get(site.url + "/agent/reports/api?period=custom&from=2026-02-10&to=2026-01-01")
    assert bad.status == 400 and "ends before it starts" in await bad.text()
    await page.context.close()


async def test_agents_get_403(site: Site, browser: Browser) -> None:
    page = await sign_in(browser, site.url, "ana@example.com")
    resp = await page.goto(site.url + "/agent/reports")
    assert resp is not None and resp.status == 403
    for path in ("/agent/reports/api", "/agent/reports/export.csv"):
        assert (await page.context.request.get(site.url + path)).status == 403
    await page.context.close()
