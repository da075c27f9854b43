"""The web widget on a Redis Cluster (3 masters + 3 replicas started from the `redis-server`
binary) with `queue.partitions: 4`: real web and router processes (`switchboard run`), the stub NLU
(bench/stub_nlu.py — the keys and scripts are under test, not Rasa). Every widget script touches
one hash slot (the contact's partition tag, `bot.mailbox.slot_key`), so typed lines, rate limits,
bot replies written by the router's commit, agents' replies through `outbound:web:{pN}`, uploads,
resends and a reload all work as on one Redis."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from bench.procs import Cluster as Procs
from bench.redis_ha import RedisCluster
from bot.config import load_settings
from bot.mailbox import box_key
from bot.models import Outbound
from bot.redisconn import connect
from bot.streams import Layout

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.timeout(240)]

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def product() -> Iterator[dict[str, Any]]:
    with Procs() as procs:
        ha = RedisCluster(procs.tmp / "cluster").start()
        try:
            stub = procs.start_stub()
            cfg = procs.write_config("widget-cluster", [stub], redis={"url": ha.url},
                                     queue={"user_rate_per_minute": 0, "partitions": 4},
                                     web={"host": "127.0.0.1", "port": 0, "rate_per_session": 6, "rate_per_ip": 1000})
            procs.start_routers(cfg, 1)
            procs.start_web(cfg)
            yield {"url": f"http://127.0.0.1:{procs.web_port}", "settings": load_settings(cfg)}
        finally:
            procs.stop_all()
            ha.stop()


class Widget:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.session: str | None = None
        self.contact = ""

    async def open(self, last_seen: str | None = None) -> None:
        self.ws = await self.http.ws_connect(self.base + "/ws/chat")
        await self.ws.send_str(orjson.dumps({"type": "hello", "session": self.session, "last_seen": last_seen,
                                             "lang": "en"}).decode())
        f = await self.frame()
        assert f["type"] == "welcome"
        self.session, self.contact = f["session"], f["contact"]

    async def frame(self, wait: float = 20) -> dict[str, Any]:
        assert self.ws is not None
        m = await self.ws.receive(timeout=wait)
        assert m.type is aiohttp.WSMsgType.TEXT, m
        f: dict[str, Any] = orjson.loads(m.data)
        return f if f["type"] != "ping" else await self.frame(wait)

    async def say(self, cid: str, text: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(orjson.dumps({"type": "message", "client_id": cid, "text": text}).decode())

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def test_lines_replies_limits_and_a_reload_on_a_cluster(product: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http:
        async def conversation(i: int) -> tuple[Widget, list[dict[str, Any]]]:
            w = Widget(http, product["url"])
            await w.open()
            events: list[dict[str, Any]] = []
            for n in range(3):
                await w.say(f"c{n}", f"my deposit {i}-{n} has not arrived")
                got = [await w.frame(), await w.frame()]
                assert [(f["type"], f["kind"]) for f in got] == [("event", "user"), ("event", "bot")], got
                assert got[0]["client_id"] == f"c{n}" and got[1]["in_reply_to"]
                events += got
            return w, events

        sessions = await asyncio.gather(*(conversation(i) for i in range(8)))
        # The contacts spread over the partitions, so over the cluster's masters.
        lay = Layout.of(product["settings"])
        assert len({lay.partition(f"web:{w.contact}") for w, _ in sessions}) > 1

        w, events = sessions[0]
        # A resend of a line already taken (same client id) is acknowledged, never stored twice.
        await w.say("c1", "my deposit 0-1 has not arrived")
        assert await w.frame() == {"type": "ack", "client_id": "c1"}
        # Over the session's limit (6 a minute): refused with an error, nothing stored.
        await w.say("c3", "one more")
        assert [(f["type"], f["kind"]) for f in [await w.frame(), await w.frame()]] == [("event", "user"), ("event", "bot")]
        for n in (4, 5, 6):
            await w.say(f"c{n}", "one more")
        frames = [await w.frame() for _ in range(5)]
        assert sorted((f["type"], f.get("kind") or f.get("code")) for f in frames) == \
            [("error", "rate_limited"), ("event", "bot"), ("event", "bot"), ("event", "user"), ("event", "user")]
        assert next(f for f in frames if f["type"] == "error")["client_id"] == "c6"
        await w.close()

        # A reload: the whole history once, in order, from the mailbox on its master.
        again = Widget(http, product["url"])
        again.session = w.session
        await again.open()
        history = [await again.frame() for _ in range(len(events) + 6)]
        assert [f["id"] for f in history] == sorted((f["id"] for f in history), key=lambda x: tuple(map(int, x.split("-"))))
        assert [f["id"] for f in history[:len(events)]] == [f["id"] for f in events]
        await again.close()
        for s, _ in sessions[1:]:
            await s.close()


async def test_agent_reply_and_upload_on_a_cluster(product: dict[str, Any]) -> None:
    settings = product["settings"]
    lay = Layout.of(settings)
    r: aioredis.Redis = connect(settings.redis.url)
    async with aiohttp.ClientSession() as http:
        w = Widget(http, product["url"])
        await w.open()
        await w.say("c1", "hello")
        assert [(await w.frame())["kind"], (await w.frame())["kind"]] == ["user", "bot"]

        # An agent's reply goes through the partition's outbound stream and the web sender.
        conv = f"web:{w.contact}"
        ob = Outbound(channel="web", conversation_id=conv, user_id=w.contact, text="Hi, this is Lin from support",
                      kind="agent", author="Lin")
        await r.xadd(lay.outbound("web", lay.partition(conv)), {"d": ob.to_json()})
        f = await w.frame()
        assert (f["kind"], f["text"], f["author"]) == ("agent", "Hi, this is Lin from support", "Lin")

        # A file: admitted (limits, quotas), stored, echoed; the same file again is a duplicate.
        for _ in range(2):
            async with http.post(product["url"] + "/widget/upload?client_id=f1&name=shot.png&lang=en", data=PNG,
                                 headers={"content-type": "image/png", "x-widget-session": w.session or ""}) as resp:
                assert resp.status == 200, await resp.text()
        f = await w.frame()
        assert f["kind"] == "user" and f["attachments"][0]["name"] == "shot.png"
        assert (await w.frame())["kind"] == "bot"
        await w.close()
        events = await r.xrange(box_key(w.contact, lay))
        assert [orjson.loads(e["e"])["kind"] for _, e in events] == \
            ["user", "bot", "agent", "user", "bot"]
    await r.aclose()
