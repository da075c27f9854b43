"""Database engine for tickets: SQLite file by default, PostgreSQL by `database.url`. The schema is
managed by Alembic migrations (handoff/migrations), applied at start."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from bot.config import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def database_url(settings: Settings) -> str:
    url = make_url(settings.database.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        p = Path(url.database)
        if not p.is_absolute():
            p = settings.base_dir / p
        p.parent.mkdir(parents=True, exist_ok=True)
        url = url.set(database=str(p))
    return url.render_as_string(hide_password=False)


def make_engine(settings: Settings | str) -> AsyncEngine:
    url = settings if isinstance(settings, str) else database_url(settings)
    kw: dict[str, object] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kw = {"connect_args": {"timeout": 30}}
    return create_async_engine(url, **kw)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


# Any constant: the key of the PostgreSQL advisory lock that serializes migrations.
_MIGRATION_LOCK = 7_305_118_431


async def upgrade(engine: AsyncEngine) -> None:
    """Apply Alembic migrations up to head on this engine's database.

    The roles start together and each migrates at start: one process at a time (a PostgreSQL
    advisory lock, a lock file beside a SQLite file), so the second finds the schema at head
    instead of failing with "table … already exists"."""
    from alembic import command
    from alembic.config import Config

    def run(sync_conn) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    lock_fd: int | None = None
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        lock_fd = os.open(f"{url.database}.migrate.lock", os.O_CREAT | os.O_RDWR, 0o600)
        await asyncio.to_thread(fcntl.flock, lock_fd, fcntl.LOCK_EX)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            elif conn.dialect.name == "postgresql":
                await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            await conn.run_sync(run)
    finally:
        if lock_fd is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            os.close(lock_fd)
