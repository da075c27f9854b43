"""A real Rasa server, trained on the repo's intents during the session (cached by data hash)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from playwright.async_api import Browser, async_playwright

from intents.rasa import RasaPaths, RasaServer, free_port, train
from tests.conftest import REDIS_URL, ROOT, wait_port
from tests.integration.email_peers import Dovecot


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A private Dovecot (real IMAP with IDLE) with an empty mailbox, for one test."""
    d = Dovecot()
    d.start()
    yield d
    d.cleanup()


def repo_rasa_paths() -> RasaPaths:
    return RasaPaths(root=ROOT, venv=ROOT / ".venv-rasa", project=ROOT / "intents", models=ROOT / "models")


@pytest.fixture(scope="session")
def trained_model() -> object:
    model, _ = train(repo_rasa_paths())
    return model


@pytest.fixture(scope="session")
def rasa_url(trained_model, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    server = RasaServer(
        repo_rasa_paths(), trained_model, free_port(), log_path=tmp_path_factory.mktemp("rasa") / "rasa.log"
    )
    server.start()
    try:
        server.wait_ready(240)
        yield server.url
    finally:
        server.stop()


def product_env(rasa_url: str, tmp: Path) -> dict[str, str]:
    """Environment for the product's processes: the test Redis DB, this session's Rasa, and a
    SQLite ticket database in a temporary folder."""
    return {**os.environ, "SWITCHBOARD_REDIS_URL": REDIS_URL, "SWITCHBOARD_RASA_URL": rasa_url,
            "SWITCHBOARD_LOG_FORMAT": "json", "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/tickets.db"}


@pytest.fixture(scope="module")
def product_logs(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return tmp_path_factory.mktemp("roles")


@pytest.fixture(scope="module")
def product(rasa_url: str, product_logs: Path) -> Iterator[str]:
    """The product's web and router roles as real processes (repo config.yaml, test Redis DB)."""
    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    port = free_port()
    logs = product_logs
    env = product_env(rasa_url, logs)
    exe = str(ROOT / ".venv/bin/switchboard")
    cfg = str(ROOT / "config.yaml")
    procs = [
        subprocess.Popen([exe, "run", "--role", "web", "--port", str(port), "--config", cfg], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(logs / "web.log", "wb")),  # noqa: SIM115
        subprocess.Popen([exe, "run", "--role", "router", "--config", cfg], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(logs / "router.log", "wb")),  # noqa: SIM115
    ]
    try:
        wait_port(port, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
        r.flushdb()


CHROMIUM = os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
async def private() -> AsyncIterator[aioredis.Redis]:
    """A redis-server of this test's own: scripts flushed and connections killed here touch
    nobody else's (the machine's Redis on 6379 is shared)."""
    from tests.integration.test_faults import PrivateRedis

    rs = PrivateRedis()
    rs.start()
    r = aioredis.from_url(f"redis://127.0.0.1:{rs.port}/0", decode_responses=True)
    try:
        yield r
    finally:
        await r.aclose()
        await asyncio.to_thread(rs.stop)


@pytest.fixture
async def stub_nlu() -> AsyncIterator[str]:
    """The instant stand-in for Rasa (bench/stub_nlu.py), on this test's loop: for tests whose
    subject is not the NLU (the queue, the cluster keys, poison entries)."""
    from aiohttp import web

    from bench.stub_nlu import parse, status

    app = web.Application()
    app.router.add_post("/model/parse", parse)
    app.router.add_get("/status", status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await runner.cleanup()
