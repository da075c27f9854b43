"""Shared fixtures. Integration tests use the real services of this machine (Redis on 6379) and
real processes started here (Rasa from .venv-rasa, the product's roles, headless Chromium)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from bot.config import Settings, parse_settings

ROOT = Path(__file__).resolve().parent.parent
# `make soak` sets this: the fault tests run SOAK times as many messages and faults.
SOAK = max(1, int(os.environ.get("SWITCHBOARD_SOAK", "1")))
TEST_REDIS_DB = int(os.environ.get("SWITCHBOARD_TEST_REDIS_DB", "13"))
REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{TEST_REDIS_DB}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: the repo's intents, fast claim/retry timings, the test Redis DB."""
    raw: dict[str, Any] = {
        "redis": {"url": REDIS_URL, "start_if_unreachable": False},
        "queue": {"claim_idle_ms": 500, "block_ms": 100, "order_wait_ms": 2000, "max_attempts": 3},
        "nlu": {"urls": ["http://127.0.0.1:1"], "timeout_s": 3, "backoff_max_s": 0.5},
        "web": {"port": 0},
        "channels": [{"type": "web"}],
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(raw.get(k), dict):
            raw[k] = {**raw[k], **v}
        else:
            raw[k] = v
    return parse_settings(raw, base_dir=ROOT)


@pytest.fixture
def redis_sync() -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    r.flushdb()
    yield r
    r.flushdb()
    r.close()


@pytest.fixture
async def aredis(redis_sync: redis.Redis) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.from_url(REDIS_URL, decode_responses=True)
    yield r
    await r.aclose()


PG_URL = os.environ.get("SWITCHBOARD_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


async def reset_postgres(url: str) -> None:
    """Empty the test database (it belongs to the test suite) before migrating it from scratch."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    eng = create_async_engine(url)
    async with eng.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await eng.dispose()


def config_copy(dest: Path, *replace: tuple[str, str]) -> Path:
    """The repo's config.yaml written elsewhere, its relative paths made absolute to the repo."""
    text = (ROOT / "config.yaml").read_text()
    for key, rel in (("rasa_venv", ".venv-rasa"), ("project_dir", "intents"), ("model_dir", "models"),
                     ("answers_dir", "intents/answers"), ("data_dir", "data")):
        text = text.replace(f"{key}: {rel}", f"{key}: {ROOT / rel}")
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    p = dest / "config.yaml"
    p.write_text(text)
    return p
