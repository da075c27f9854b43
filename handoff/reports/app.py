"""What the web role runs for reports: the decisions recorder (its own consumer group on the
`decisions` stream), the refresh of the live-ops gauges, and the page's router."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.logs import get_logger
from bot.streams import Layout
from bot.tasks import TaskSupervisor
from handoff.reports import metrics
from handoff.reports.query import Filters, team_and_csat
from handoff.reports.store import reports_consumer
from handoff.reports.web import reports_router
from handoff.worker import db_outage

log = get_logger("switchboard.reports")
REFRESH_S = 60.0


async def refresh_loop(settings: Settings, sm: async_sessionmaker[AsyncSession], stop: asyncio.Event,
                       every_s: float = REFRESH_S) -> None:
    while not stop.is_set():
        day0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        try:
            async with sm() as s:
                metrics.set_team(await team_and_csat(s, Filters(day0, day0 + timedelta(days=1)), settings.sla))
        except Exception as e:
            if not db_outage(e) and not isinstance(e, OSError):
                raise  # a bug: the supervisor logs it and restarts the loop
            log.warning("reports.refresh_failed", error=str(e)[:200])
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass


def reports_parts(settings: Settings, sm: async_sessionmaker[AsyncSession], r: aioredis.Redis, channels: list[str],
                  tasks: TaskSupervisor) -> list[APIRouter]:
    """Start the reports' background tasks under `tasks`; the routers to mount."""
    layout = Layout.of(settings)
    for p in layout.all():  # one recorder per partition's `decisions` stream
        stream = layout.decisions(p)
        tasks.start_consumer("reports" if layout.partitions == 1 else f"reports:{stream}",
                             reports_consumer(sm, r, claim_idle_ms=settings.queue.claim_idle_ms,
                                              max_attempts=settings.queue.max_attempts, stream=stream))
    tasks.start("reports-gauges", lambda: refresh_loop(settings, sm, tasks.stop))
    return [reports_router(settings, sm, r, channels)]
