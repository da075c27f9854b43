"""Database engine for tickets: SQLite file by default, PostgreSQL by `database.url`. The schema is
managed by Alembic migrations (handoff/migrations), applied at start."""

from __future__ import annotations

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


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


async def upgrade(engine: AsyncEngine) -> None:
    """Apply Alembic migrations up to head on this engine's database."""
    from alembic import command
    from alembic.config import Config

    def run(sync_conn) -> None:  # type: ignore[no-untyped-def]
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        await conn.run_sync(run)
