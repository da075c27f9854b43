"""The web role as operators and the widget's protocol see it: health, readiness, metrics, and
clear errors for bad frames (nothing crashes, nothing is queued)."""

from __future__ import annotations

import asyncio
import os
import subprocess

import aiohttp
import orjson
import pytest
import redis

from tests.conftest import REDIS_URL, ROOT, config_copy, free_port, wait_port

pytestmark = [pytest.mark.redis, pytest.mark.rasa]


async def hello(ws: aiohttp.ClientWebSocketResponse, lang: str = "en") -> str:
    await ws.send_str(orjson.dumps({"type": "hello", "session": None, "last_seen": None, "lang": lang}).decode())
    w = await ws.receive_json(timeout=5)
    assert w["type"] == "welcome"
    return str(w["session"])


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str, limit_s: float = 20) -> dict:  # type: ignore[type-arg]
    async with asyncio.timeout(limit_s):
        while True:
            m = await ws.receive_json()
            if m["type"] == kind:
                return m  # type: ignore[no-any-return]


async def test_health_ready_and_metrics(product: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(product + "/healthz") as r:
            assert r.status == 200
        async with http.get(product + "/readyz") as r:
            body = await r.json()
            assert r.status == 200 and body["checks"] == {"redis": "ok", "nlu": "ok"}
        async with http.ws_connect(product + "/ws/chat") as ws:
            await hello(ws)
            await ws.send_str('{"type":"message","client_id":"m1","text":"what is the maker fee?"}')
            assert (await next_of(ws, "ack"))["client_id"] == "m1"
            reply = await next_of(ws, "event")
            while reply["kind"] != "bot":
                reply = await next_of(ws, "event")
        async with http.get(product + "/metrics") as r:
            text = await r.text()
    assert 'switchboard_messages_in_total{channel="web"}' in text
    assert "switchboard_queue_lag" in text


async def test_bad_frames_get_clear_errors_and_are_not_queued(product: str) -> None:
    r = redis.Redis.from_url(REDIS_URL)
    before = r.xlen("inbound")
    async with aiohttp.ClientSession() as http, http.ws_connect(product + "/ws/chat") as ws:
        await hello(ws, "zh")
        await ws.send_str("{not json")
        assert (await next_of(ws, "error"))["code"] == "invalid"
        await ws.send_str('{"type":"message","client_id":"x1","text":"' + "长" * 2500 + '"}')
        err = await next_of(ws, "error")
        assert err["code"] == "too_long" and err["client_id"] == "x1" and "2000" in err["message"]
        await ws.send_str('{"type":"message","client_id":"x2","text":42}')
        assert (await next_of(ws, "error"))["code"] == "invalid"
        await ws.send_str('{"type":"message","client_id":"x3","text":"\\ud800 broken surrogate"}')
        assert (await next_of(ws, "error"))["code"] == "invalid"  # invalid UTF-16 in JSON
        await ws.send_str('{"type":"ping"}')
        assert (await next_of(ws, "pong"))["type"] == "pong"
    assert r.xlen("inbound") == before


async def test_widget_rate_limit(rasa_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_copy(tmp_path, ("rate_per_session: 30", "rate_per_session: 3"))
    port = free_port()
    env = {**os.environ, "SWITCHBOARD_REDIS_URL": REDIS_URL, "SWITCHBOARD_RASA_URL": rasa_url}
    p = subprocess.Popen([str(ROOT / ".venv/bin/switchboard"), "run", "--role", "web", "--port", str(port),  # noqa: ASYNC220
                          "--config", str(cfg)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 30)
        async with aiohttp.ClientSession() as http, http.ws_connect(f"http://127.0.0.1:{port}/ws/chat") as ws:
            await hello(ws)
            codes = []
            for i in range(5):
                await ws.send_str(orjson.dumps({"type": "message", "client_id": f"r{i}", "text": f"hi {i}"}).decode())
                while True:
                    m = await ws.receive_json(timeout=5)
                    if m["type"] in ("ack", "error"):
                        codes.append(m.get("code", "ack"))
                        break
            assert codes == ["ack", "ack", "ack", "rate_limited", "rate_limited"]
    finally:
        p.terminate()
        p.wait(20)
