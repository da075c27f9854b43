"""Decisions reach the report tables through the `decisions` stream's own `reports` group, on
SQLite and PostgreSQL: each counted once however often it is delivered, no message text stored,
a malformed entry dead-lettered without stopping the rest, and the router's group left alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import streams
from bot.config import SLASettings
from bot.models import Decision
from handoff.db import make_engine, sessionmaker, upgrade
from handoff.reports.models import ReportConversation, ReportDecision, ReportHourly
from handoff.reports.query import Filters, report
from handoff.reports.store import reports_consumer
from tests.conftest import PG_URL, reset_postgres

pytestmark = [pytest.mark.redis]

SECRET_TEXT = "my seed phrase is abandon ability able about"


@pytest.fixture(params=["sqlite", "postgres"])
async def sm(request, tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}"
    else:
        url = PG_URL
        await reset_postgres(url)
    engine = make_engine(url)
    await upgrade(engine)
    yield sessionmaker(engine)
    await engine.dispose()


def decision(i: int, conv: str, action: str = "answer", topic: str = "fees", reason: str = "nlu",
             at: datetime | None = None) -> Decision:
    return Decision(message_id=f"m{i}", conversation_id=conv, channel="telegram", action=action, topic=topic,
                    intent=f"{topic}_x", confidence=0.7, priority="normal", reply="ok", lang="zh", reason=reason,
                    redacted_text=SECRET_TEXT, model_version="nlu-1", decided_at=at or datetime.now(UTC))


async def test_each_decision_is_counted_once_and_without_text(sm: async_sessionmaker[AsyncSession],
                                                               aredis: aioredis.Redis) -> None:
    at = datetime.now(UTC).replace(minute=5)
    ds = [decision(1, "a", at=at), decision(2, "a", "clarify", "out_of_scope", "low_confidence", at=at),
          decision(3, "a", "handoff", "human", "second_fallback", at=at), decision(4, "b", at=at)]
    for d in [*ds, ds[0], ds[2]]:  # two redeliveries
        await aredis.xadd(streams.DECISIONS, {"d": d.to_json()})
    await aredis.xadd(streams.DECISIONS, {"d": "{not json"})
    c = reports_consumer(sm, aredis, max_attempts=1, block_ms=50)
    await c.run(asyncio.Event(), burst=True)

    async with sm() as s:
        assert (await s.execute(select(func.count()).select_from(ReportDecision))).scalar_one() == 4
        assert (await s.execute(select(func.sum(ReportHourly.n)))).scalar_one() == 4
        convs = {r.key: r for r in (await s.execute(select(ReportConversation))).scalars()}
        assert len(convs) == 2
        assert sorted(r.handed_off_at is not None for r in convs.values()) == [False, True]
        dump = ""
        for table in ("report_decisions", "report_hourly", "report_conversations"):
            dump += " ".join(str(v) for row in (await s.execute(text(f"SELECT * FROM {table}"))).all() for v in row)
        assert "seed phrase" not in dump and "abandon" not in dump
        day0 = at.replace(hour=0, minute=0, second=0, microsecond=0)
        tables = {t.id: t for t in await report(s, Filters(day0, day0 + timedelta(days=1)), SLASettings())}
    assert tables["containment"].rows[-1] == ["all", 2, 1, 50.0]
    assert tables["handoff_by_reason"].rows[2] == ["second_failure", 1, 100.0]
    assert tables["top_unanswered"].rows == [["out_of_scope_x", 1]]
    dead = await aredis.xrange(streams.dead(streams.DECISIONS))
    assert len(dead) == 1 and "malformed decision" in str(dead[0][1])
    # The router's review queue still reads the stream itself: the reports group takes nothing from it.
    assert await aredis.xlen(streams.DECISIONS) == 7
