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

from tests.conftest import REDIS_URL, ROOT, TEST_REDIS_DB, config_copy, free_port, wait_port

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
            by_name = {c["name"]: c for c in body["consumers"]}
            assert {"sender:web", "tickets", "sla"} <= set(by_name)
            assert by_name["sender:web"]["alive"] and {"pending", "lag", "last_loop_s"} <= set(by_name["sender:web"])
        async with http.ws_connect(product + "/ws/chat") as ws:
            await hello(ws)
            await ws.send_str('{"type":"message","client_id":"m1","text":"what is the maker fee?"}')
            # Two frames per line: its echo (which confirms it) and the reply; no separate ack.
            frames = [await ws.receive_json(timeout=10)]
            while not (frames[-1]["type"] == "event" and frames[-1]["kind"] == "bot"):
                frames.append(await ws.receive_json(timeout=10))
            assert [(f["type"], f.get("kind"), f.get("client_id")) for f in frames] == [
                ("event", "user", "m1"), ("event", "bot", None)]
            # A resend of a line already taken gets no second echo: an ack confirms it.
            await ws.send_str('{"type":"message","client_id":"m1","text":"what is the maker fee?"}')
            assert await ws.receive_json(timeout=10) == {"type": "ack", "client_id": "m1"}
        async with http.get(product + "/metrics") as r:
            text = await r.text()
    assert 'switchboard_messages_in_total{channel="web"}' in text
    assert 'switchboard_stream_processed_total{stream="outbound:web"}' in text  # per-stream counters
    assert 'switchboard_stream_handler_seconds_count{stream="outbound:web"}' in text
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
                    if m["type"] == "event" and m.get("kind") == "user" and m.get("client_id") == f"r{i}":
                        codes.append("ack")  # the echo confirms a line
                        break
                    if m["type"] in ("ack", "error"):
                        codes.append(m.get("code", "ack"))
                        break
            assert codes == ["ack", "ack", "ack", "rate_limited", "rate_limited"]
    finally:
        p.terminate()
        p.wait(20)


def random_frames(n: int, seed: int = 7) -> list[str]:
    """Malformed and odd widget frames: random JSON of every shape, deep nesting, junk text,
    invalid surrogates, wrong types in the right fields."""
    import json
    import random

    rnd = random.Random(seed)

    def value(depth: int = 0) -> object:
        choices = [
            lambda: None, lambda: True, lambda: rnd.randint(-2**70, 2**70), lambda: rnd.random(),
            lambda: "".join(chr(rnd.randrange(1, 0xD7FF)) for _ in range(rnd.randrange(12))),
            lambda: [value(depth + 1) for _ in range(rnd.randrange(4))],
            lambda: {str(rnd.random()): value(depth + 1) for _ in range(rnd.randrange(4))},
            lambda: {"type": rnd.choice(["message", "hello", "ping", "x", None, 5]), "client_id": value(depth + 1),
                     "text": value(depth + 1)},
            lambda: {"type": "message", "client_id": "".join(rnd.choice("ab-_:.") for _ in range(rnd.randrange(120))),
                     "text": "x" * rnd.randrange(3000)},
        ]
        return choices[rnd.randrange(len(choices) if depth < 4 else 5)]()

    frames = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            frames.append(json.dumps(value(), ensure_ascii=rnd.random() < 0.5))
        elif kind == 1:
            d = rnd.randrange(2, 3000)
            frames.append("[" * d + "]" * d)
        elif kind == 2:
            frames.append("".join(chr(rnd.randrange(32, 0x2FFF)) for _ in range(rnd.randrange(200))))
        elif kind == 3:
            frames.append('{"type":"message","client_id":"c' + str(i) + '","text":"\\ud83d' + "?" * rnd.randrange(5) + '"}')
        else:
            frames.append(json.dumps({"type": "message", "client_id": value(), "text": value()}))
    return frames


async def test_fuzzed_widget_frames_get_answers_not_crashes(product: str) -> None:
    frames = random_frames(300)
    answered = 0
    async with aiohttp.ClientSession() as http, http.ws_connect(product + "/ws/chat") as ws:
        await hello(ws)
        for f in frames:
            await ws.send_str(f)
            while True:  # every frame gets exactly one echo, ack, error or pong (bot replies may come in between)
                m = await ws.receive_json(timeout=10)
                if m["type"] in ("ack", "error", "pong") or (m["type"] == "event" and m.get("kind") == "user"):
                    answered += 1
                    break
        await ws.send_str('{"type":"ping"}')
        assert (await next_of(ws, "pong"))["type"] == "pong"  # still alive after all of it
    assert answered == len(frames)
    async with aiohttp.ClientSession() as http, http.ws_connect(product + "/ws/chat") as ws:
        await hello(ws)
        await ws.send_str("x" * 200_000)  # over the frame limit: this connection is closed…
        msg = await ws.receive(timeout=10)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    async with aiohttp.ClientSession() as http, http.ws_connect(product + "/ws/chat") as ws:
        await hello(ws)  # …and the server goes on serving others


def _web_role(rasa_url: str, tmp_path, port: int, role: str = "web",  # type: ignore[no-untyped-def]
              redis_url: str = REDIS_URL) -> subprocess.Popen[bytes]:
    """`switchboard run --role <role>`; its log in tmp_path/web-<port>.log."""
    env = {**os.environ, "SWITCHBOARD_REDIS_URL": redis_url, "SWITCHBOARD_RASA_URL": rasa_url,
           "SWITCHBOARD_LOG_FORMAT": "json", "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/t.db"}
    return subprocess.Popen([str(ROOT / ".venv/bin/switchboard"), "run", "--role", role, "--port", str(port),
                             "--config", str(ROOT / "config.yaml")], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / f"web-{port}.log", "wb"))  # noqa: SIM115


async def _ready(http: aiohttp.ClientSession, base: str, want: int, within: float = 30) -> dict:  # type: ignore[type-arg]
    async with asyncio.timeout(within):
        while True:
            async with http.get(base + "/readyz") as r:
                body = await r.json()
                if r.status == want:
                    return body  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)


async def test_a_crashed_sender_is_restarted_and_readyz_names_it_while_it_is_down(
    rasa_url: str, tmp_path, redis_sync: redis.Redis  # type: ignore[no-untyped-def]
) -> None:
    """A fault no handler expects (the widget's reply stream replaced by a plain key) crashes its
    sender: /readyz answers 503 naming it, the crash is logged with its traceback, and once the
    fault is gone the restarted sender is ready again. A task that keeps failing stops the role
    with a non-zero exit, so `switchboard up` or the orchestrator restarts the process."""
    redis_sync.set("outbound:web", "not a stream")
    port = free_port()
    p = _web_role(rasa_url, tmp_path, port)  # noqa: ASYNC220
    try:
        wait_port(port, 30)
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            down = await _ready(http, base, 503)
            assert "sender:web is dead" in down["problems"], down
            redis_sync.delete("outbound:web")
            up = await _ready(http, base, 200)
            [sender] = [c for c in up["consumers"] if c["name"] == "sender:web"]
            assert sender["alive"] and sender["restarts"] >= 1 and sender["stream"] == "outbound:web"
            assert {"tickets", "sla"} <= {c["name"] for c in up["consumers"]}
    finally:
        p.terminate()
        p.wait(20)
    events = [orjson.loads(line) for line in (tmp_path / f"web-{port}.log").read_text().splitlines()
              if line.startswith("{")]
    crashed = [e for e in events if e["event"] == "task.crashed"]
    assert crashed and crashed[0]["task"] == "sender:web" and "WRONGTYPE" in crashed[0]["traceback"]
    assert len(crashed) == len([e for e in events if e["event"] == "task.restarting"])  # once per crash

    redis_sync.set("outbound:web", "not a stream")  # now it stays broken
    port = free_port()
    p = _web_role(rasa_url, tmp_path, port)  # noqa: ASYNC220
    assert p.wait(60) == 1
    assert "switchboard: web: task sender:web kept failing" in (tmp_path / f"web-{port}.log").read_text()


async def test_the_web_role_with_the_router_in_its_process_answers_and_stops_cleanly(
    rasa_url: str, tmp_path, redis_sync: redis.Redis  # type: ignore[no-untyped-def]
) -> None:
    """`--role web+router` (what `switchboard up` runs): no router process anywhere, yet the
    widget is answered — the web role's own router takes the queue; /readyz lists it; SIGTERM
    stops both roles with exit 0. A router that fails for good stops the process with exit 1
    (the web role must not go on taking messages nobody answers)."""
    port = free_port()
    # A Redis database of its own: a router that another test left running on the shared one
    # would take the message (answered, but counted in that process's /metrics, not this one's).
    own = REDIS_URL.rsplit("/", 1)[0] + f"/{(TEST_REDIS_DB + 1) % 16}"
    redis.Redis.from_url(own).flushdb()
    p = _web_role(rasa_url, tmp_path, port, "web+router", redis_url=own)  # noqa: ASYNC220
    try:
        wait_port(port, 30)
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            body = await _ready(http, base, 200)
            names = {c["name"] for c in body["consumers"] if c["alive"]}
            assert {"router", "sender:web", "tickets"} <= names, body
            async with http.ws_connect(base + "/ws/chat") as ws:
                await hello(ws)
                await ws.send_str('{"type":"message","client_id":"w1","text":"How do I enable 2FA?"}')
                while True:
                    m = await next_of(ws, "event")
                    if m["kind"] == "bot":
                        break
            # One process, as `switchboard up` runs it: its values in memory, and /metrics shows
            # the router's as well as the web role's. (The router counts its decision just after
            # the commit that already sent the reply: wait for it.)
            from prometheus_client.parser import text_string_to_metric_families

            decided = ("switchboard_decisions_total", (("action", "answer"), ("topic", "security")))
            async with asyncio.timeout(10):
                while True:
                    async with http.get(base + "/metrics") as r:
                        values = {(s.name, tuple(sorted(s.labels.items()))): s.value
                                  for f in text_string_to_metric_families(await r.text()) for s in f.samples}
                    if values.get(decided, 0) >= 1:
                        break
                    await asyncio.sleep(0.05)
        assert "2FA" in m["text"] or "authenticator" in m["text"].lower(), m
        assert values[("switchboard_router_overhead_seconds_count", ())] >= 1
        assert values[("switchboard_messages_in_total", (("channel", "web"),))] >= 1
    finally:
        p.terminate()
        code = p.wait(30)
        redis.Redis.from_url(own).flushdb()
    log = (tmp_path / f"web-{port}.log").read_text()
    assert code == 0, log[-2000:]
    events = [orjson.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
    assert "router.stopped" in events and "web.started" in events

    redis_sync.set("inbound", "not a stream")  # the router cannot read its queue, and stays so
    port = free_port()
    p = _web_role(rasa_url, tmp_path, port, "web+router")  # noqa: ASYNC220
    assert p.wait(90) == 1
    assert "kept failing" in (tmp_path / f"web-{port}.log").read_text()
