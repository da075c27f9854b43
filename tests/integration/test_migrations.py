"""Every role migrates the ticket database at start, and `switchboard up` starts them together: the
migrations must serialize, so the second process finds the schema at head instead of failing with
"table … already exists" (which once killed the router in a run)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from handoff.db import make_engine, upgrade
from tests.conftest import PG_URL, reset_postgres


async def migrate_together(url: str, n: int = 4) -> list[str]:
    engines = [make_engine(url) for _ in range(n)]
    try:
        await asyncio.gather(*(upgrade(e) for e in engines))
        async with engines[0].connect() as c:
            return [r[0] for r in await c.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        for e in engines:
            await e.dispose()


async def test_roles_migrating_a_new_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    for i in range(3):
        versions = await migrate_together(f"sqlite+aiosqlite:///{tmp_path}/t{i}.db")
        assert len(versions) == 1


async def test_roles_migrating_a_new_postgres_database_at_once_all_succeed() -> None:
    await reset_postgres(PG_URL)
    versions = await migrate_together(PG_URL)
    assert len(versions) == 1
