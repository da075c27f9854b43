"""Secrets planted in user messages never reach Redis, the ticket database, the logs or the NLU
request — checked on the real product processes, with a recording proxy in front of Rasa."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import orjson
import pytest
import redis
from aiohttp import web

from tests.conftest import REDIS_URL, ROOT, free_port, wait_port

pytestmark = [pytest.mark.redis, pytest.mark.rasa, pytest.mark.slow]

SEED = "abandon ability able about above absent absorb abstract absurd abuse access accident"
SECRETS = {
    "seed": SEED,
    "password": "Hunter2!xq",
    "hexkey": "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
    "api": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
    "otp": "482913",
}
MESSAGES = [
    f"I think I was phished, my seed phrase is {SEED} and now my coins are gone",
    f"can't log in, my password is {SECRETS['password']}",
    f"here is my private key {SECRETS['hexkey']} please check my wallet",
    f"my api secret: {SECRETS['api']} is it safe?",
    f"验证码 {SECRETS['otp']} 给你，帮我提币",
    f"is my wallet safe? my words are {SEED}",  # issue #25.2: no theft words, only the pasted phrase
]


def wallet_ticket(db: Path) -> list[tuple[str, str]]:
    """(topic, priority) of the ticket holding the "is my wallet safe?" message, if any yet."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT t.topic, t.priority FROM tickets t JOIN ticket_messages m ON m.ticket_id = t.id "
                           "WHERE instr(m.body, 'is my wallet safe? my words are [REDACTED:seed_phrase]') > 0").fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return []
    finally:
        con.close()


async def start_proxy(target: str, seen: list[bytes]) -> tuple[web.AppRunner, int]:
    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(body)
        async with aiohttp.ClientSession() as http, http.request(
            request.method, target + request.path_qs, data=body, headers={"Content-Type": "application/json"}
        ) as r:
            return web.Response(body=await r.read(), status=r.status, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


def redis_dump(r: redis.Redis) -> str:
    out = []
    for k in r.scan_iter(count=1000):
        t = r.type(k)
        out.append(k)
        if t == "string":
            out.append(str(r.get(k)))
        elif t == "hash":
            out.append(str(r.hgetall(k)))
        elif t == "list":
            out.append(str(r.lrange(k, 0, -1)))
        elif t == "set":
            out.append(str(r.smembers(k)))
        elif t == "stream":
            out.append(str(r.xrange(k)))
        elif t == "zset":
            out.append(str(r.zrange(k, 0, -1)))
    return "\n".join(out)


async def test_planted_secrets_appear_nowhere(rasa_url: str, tmp_path: Path) -> None:
    rs = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    rs.flushdb()
    seen: list[bytes] = []
    runner, proxy_port = await start_proxy(rasa_url, seen)
    port = free_port()
    env = {**os.environ, "SWITCHBOARD_REDIS_URL": REDIS_URL, "SWITCHBOARD_RASA_URL": f"http://127.0.0.1:{proxy_port}",
           "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/t.db", "SWITCHBOARD_LOG_FORMAT": "json"}
    exe = str(ROOT / ".venv/bin/switchboard")
    logs = [tmp_path / "web.log", tmp_path / "router.log"]
    procs = [
        subprocess.Popen([exe, "run", "--role", "web", "--port", str(port)], env=env, cwd=ROOT,  # noqa: ASYNC220
                         stdout=subprocess.DEVNULL, stderr=open(logs[0], "wb")),  # noqa: SIM115, ASYNC230
        subprocess.Popen([exe, "run", "--role", "router"], env=env, cwd=ROOT,  # noqa: ASYNC220
                         stdout=subprocess.DEVNULL, stderr=open(logs[1], "wb")),  # noqa: SIM115, ASYNC230
    ]
    try:
        await asyncio.to_thread(wait_port, port, 30)
        async with aiohttp.ClientSession() as http:
            for i, text in enumerate(MESSAGES):
                async with http.ws_connect(f"http://127.0.0.1:{port}/ws/chat") as ws:
                    await ws.send_str('{"type":"hello","session":null,"last_seen":null,"lang":"en"}')
                    await ws.receive_json(timeout=5)
                    await ws.send_str(orjson.dumps({"type": "message", "client_id": f"s{i}", "text": text}).decode())
                    async with asyncio.timeout(30):
                        while True:
                            m = await ws.receive_json()
                            if m["type"] == "event" and m["kind"] == "bot":
                                break
        for _ in range(100):  # the theft cases become tickets
            db_ready = (tmp_path / "t.db").exists()  # noqa: ASYNC240
            if db_ready and rs.xpending("handoff", "tickets")["pending"] == 0 and rs.xlen("handoff") \
                    and await asyncio.to_thread(wallet_ticket, tmp_path / "t.db"):
                break
            await asyncio.sleep(0.1)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
        await runner.cleanup()
    stores = {
        "redis": redis_dump(rs),
        "database": b"".join(f.read_bytes() for f in tmp_path.glob("t.db*")).decode("utf-8", "replace"),  # noqa: ASYNC240
        "logs": "".join(f.read_text(errors="replace") for f in logs),
        "nlu requests": b"\n".join(seen).decode("utf-8", "replace"),
    }
    rs.flushdb()
    assert "[REDACTED:" in stores["nlu requests"] and "[REDACTED:" in stores["redis"]
    assert "phished" in stores["database"]  # the ticket exists and holds the (redacted) message
    # A pasted phrase alone, no theft words, is an urgent theft case (#25.2).
    assert wallet_ticket(tmp_path / "t.db") == [("theft", "urgent")]
    for where, blob in stores.items():
        for kind, secret in SECRETS.items():
            probe = secret if kind != "seed" else "absurd abuse access"
            assert probe not in blob, f"{kind} secret found in {where}"
