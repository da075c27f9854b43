"""Web chat widget: `/widget.js` (one `<script>` tag on any page), a demo page at `/`, and chat
over a WebSocket at `/ws/chat`.

Every event of a session (the user's messages, bot and agent replies) is kept in a per-session
Redis stream — the mailbox — so a page that was offline or reloaded gets exactly the events it has
not seen, in order, from any web process. Delivery to open sockets is woken through one pub/sub
channel per process, but the mailbox is the source of truth, so a missed wake-up loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.config import ChannelSettings, Settings
from bot.errors import TransientChannelError
from bot.intake import Sink, redacted
from bot.lang import detect_language
from bot.logs import get_logger
from bot.models import Message, Outbound
from channels.web.config import WebChannelSettings

log = get_logger("switchboard.web")

NOTIFY = "web:notify"
BOX_TTL_S = 30 * 24 * 3600
SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
EVENT_ID_RE = re.compile(r"^\d{1,20}-\d{1,20}$")
MAX_FRAME = 64 * 1024

_BOX_ADD = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then return false end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return id
"""

ERRORS = {
    "too_long": {
        "en": "Your message is too long ({n} characters, the limit is {max}). Please shorten it.",
        "zh": "您的消息太长（{n} 个字符，上限 {max}），请精简后再发送。",
    },
    "rate_limited": {
        "en": "You are sending messages too quickly. Please wait a moment and try again.",
        "zh": "您发送消息过于频繁，请稍后再试。",
    },
    "invalid": {
        "en": "That message could not be read. Please try again.",
        "zh": "无法识别该消息，请重试。",
    },
    "unavailable": {
        "en": "We could not receive your message just now; it will be retried automatically.",
        "zh": "暂时无法接收您的消息，系统会自动重试。",
    },
}


def box_key(session: str) -> str:
    return f"web:box:{session}"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Hub:
    """Wakes the open sockets of a session when its mailbox grows (one pub/sub per process)."""

    def __init__(self, r: aioredis.Redis) -> None:
        self.r = r
        self.waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def register(self, session: str) -> asyncio.Event:
        ev = asyncio.Event()
        self.waiters.setdefault(session, set()).add(ev)
        return ev

    def unregister(self, session: str, ev: asyncio.Event) -> None:
        s = self.waiters.get(session)
        if s:
            s.discard(ev)
            if not s:
                self.waiters.pop(session, None)

    def wake(self, session: str) -> None:
        for ev in self.waiters.get(session, ()):
            ev.set()

    async def _listen(self) -> None:
        while True:
            ps = self.r.pubsub(ignore_subscribe_messages=True)
            try:
                await ps.subscribe(NOTIFY)
                # After a (re)subscribe wake everyone: something may have arrived meanwhile.
                for s in list(self.waiters):
                    self.wake(s)
                async for m in ps.listen():
                    data = m.get("data")
                    if isinstance(data, bytes):
                        data = data.decode()
                    if isinstance(data, str):
                        self.wake(data)
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                log.warning("web.pubsub_lost", error=str(e))
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await ps.aclose()


class WebChannel:
    name: ClassVar[str] = "web"

    def __init__(self, settings: Settings, cfg: WebChannelSettings, r: aioredis.Redis) -> None:
        self.settings = settings
        self.cfg = cfg
        self.r = r
        self.hub = Hub(r)
        self.sink: Sink | None = None
        self._box_add = r.register_script(_BOX_ADD)

    @classmethod
    def from_config(cls, settings: Settings, cfg: ChannelSettings, redis: aioredis.Redis) -> WebChannel:
        assert isinstance(cfg, WebChannelSettings)
        return cls(settings, cfg, redis)

    async def start(self, sink: Sink) -> None:
        self.sink = sink
        self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()

    # -- outbound ---------------------------------------------------------------------------------
    async def add_event(self, session: str, marker: str, event: dict[str, Any]) -> str | None:
        res = await self._box_add(
            keys=[f"web:sent:{marker}", box_key(session)],
            args=[BOX_TTL_S, self.settings.web.history, NOTIFY, session, orjson.dumps(event).decode()],
        )
        return res.decode() if isinstance(res, bytes) else res

    async def send(self, ob: Outbound) -> None:
        session = ob.user_id
        event = {
            "kind": "agent" if ob.kind == "agent" else ("system" if ob.kind == "system" else "bot"),
            "text": ob.text,
            "ts": ob.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "client_id": None,
            "author": ob.author,
            "buttons": [b.model_dump() for b in ob.buttons],
            "in_reply_to": ob.in_reply_to,
        }
        try:
            await self.add_event(session, f"out:{ob.id}", event)
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            raise TransientChannelError(f"mailbox write failed: {e}") from None

    # -- HTTP -------------------------------------------------------------------------------------
    def routes(self) -> APIRouter:
        router = APIRouter()
        static = Path(__file__).resolve().parent / "static"

        @router.get("/widget.js", include_in_schema=False)
        async def widget_js() -> Response:
            body = (static / "widget.js").read_bytes()
            return Response(
                body,
                media_type="application/javascript; charset=utf-8",
                headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
            )

        @router.get("/", include_in_schema=False)
        async def demo() -> HTMLResponse:
            return HTMLResponse((static / "demo.html").read_text(encoding="utf-8"))

        @router.websocket("/ws/chat")
        async def ws_chat(ws: WebSocket) -> None:
            await self._serve(ws)

        return router

    def _origin_ok(self, ws: WebSocket) -> bool:
        allowed = self.cfg.allowed_origins
        if "*" in allowed:
            return True
        return ws.headers.get("origin", "") in allowed

    async def _rate_ok(self, session: str, ip: str) -> bool:
        minute = int(time.time() // 60)
        pipe = self.r.pipeline(transaction=False)
        for key in (f"rl:web:s:{session}:{minute}", f"rl:web:ip:{ip}:{minute}"):
            pipe.incr(key)
            pipe.expire(key, 120)
        n_s, _, n_ip, _ = await pipe.execute()
        return n_s <= self.settings.web.rate_per_session and n_ip <= self.settings.web.rate_per_ip

    async def _serve(self, ws: WebSocket) -> None:
        if not self._origin_ok(ws):
            await ws.close(code=1008)
            return
        await ws.accept()
        ip = ws.client.host if ws.client else "?"
        try:
            hello = await asyncio.wait_for(ws.receive_text(), timeout=15)
            h = orjson.loads(hello)
            if not isinstance(h, dict) or h.get("type") != "hello":
                raise ValueError("first frame must be hello")
        except (TimeoutError, ValueError, orjson.JSONDecodeError, WebSocketDisconnect):
            with contextlib.suppress(Exception):
                await ws.close(code=1002)
            return
        session = h.get("session")
        if not (isinstance(session, str) and SESSION_RE.match(session)):
            session = secrets.token_urlsafe(18)
        lang_hint = h.get("lang") if h.get("lang") in ("zh", "en") else "en"
        last = h.get("last_seen")
        last_seen = last if isinstance(last, str) and EVENT_ID_RE.match(last) else None
        await ws.send_text(orjson.dumps({"type": "welcome", "session": session}).decode())
        wake = self.hub.register(session)
        wake.set()  # send the backlog at once
        state = {"last": last_seen, "lang": lang_hint}
        writer = asyncio.create_task(self._writer(ws, session, wake, state))
        try:
            await self._reader(ws, session, ip, state)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            self.hub.unregister(session, wake)

    async def _writer(self, ws: WebSocket, session: str, wake: asyncio.Event, state: dict[str, Any]) -> None:
        ping_every = self.cfg.ping_interval_s
        while True:
            try:
                await asyncio.wait_for(wake.wait(), timeout=ping_every)
            except TimeoutError:
                await ws.send_text('{"type":"ping"}')
                continue
            wake.clear()
            while True:
                start = f"({state['last']}" if state["last"] else "-"
                try:
                    items = await self.r.xrange(box_key(session), min=start, count=200)
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    await asyncio.sleep(0.5)
                    wake.set()
                    break
                for eid, fields in items:
                    eid = eid.decode() if isinstance(eid, bytes) else eid
                    ev = orjson.loads(fields[b"e"] if b"e" in fields else fields["e"])
                    ev.update({"type": "event", "id": eid})
                    await ws.send_text(orjson.dumps(ev).decode())
                    state["last"] = eid
                if len(items) < 200:
                    break

    async def _error(self, ws: WebSocket, code: str, lang: str, client_id: str | None, **kw: Any) -> None:
        msg = ERRORS[code][lang].format(**kw) if kw else ERRORS[code][lang]
        await ws.send_text(orjson.dumps({"type": "error", "code": code, "client_id": client_id, "message": msg}).decode())

    async def _reader(self, ws: WebSocket, session: str, ip: str, state: dict[str, Any]) -> None:
        limit = self.settings.web.max_message_chars
        while True:
            try:
                raw = await ws.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return
            if len(raw) > MAX_FRAME:
                await self._error(ws, "too_long", state["lang"], None, n=len(raw), max=limit)
                continue
            try:
                f = orjson.loads(raw)
                if not isinstance(f, dict):
                    raise ValueError
            except (orjson.JSONDecodeError, ValueError):
                await self._error(ws, "invalid", state["lang"], None)
                continue
            kind = f.get("type")
            if kind == "ping":
                await ws.send_text('{"type":"pong"}')
                continue
            if kind == "pong":
                continue
            if kind != "message":
                await self._error(ws, "invalid", state["lang"], None)
                continue
            cid = f.get("client_id")
            text = f.get("text")
            if not (isinstance(cid, str) and CLIENT_ID_RE.match(cid)) or not isinstance(text, str):
                await self._error(ws, "invalid", state["lang"], cid if isinstance(cid, str) else None)
                continue
            text = text.strip()
            if not text:
                await self._error(ws, "invalid", state["lang"], cid)
                continue
            lang = detect_language(text, state["lang"])
            if len(text) > limit:
                await self._error(ws, "too_long", lang, cid, n=len(text), max=limit)
                continue
            try:
                if not await self._rate_ok(session, ip):
                    await self._error(ws, "rate_limited", lang, cid)
                    continue
                await self._accept(session, cid, text, lang)
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                log.warning("web.intake_failed", error=str(e))
                await self._error(ws, "unavailable", lang, cid)
                continue
            await ws.send_text(orjson.dumps({"type": "ack", "client_id": cid}).decode())

    async def _accept(self, session: str, client_id: str, text: str, lang: str) -> None:
        assert self.sink is not None, "channel not started"
        msg = redacted(
            Message(
                channel="web",
                channel_message_id=f"{session}:{client_id}",
                conversation_id=f"web:{session}",
                user_id=session,
                text=text,
                lang=lang,  # type: ignore[arg-type]
            )
        )
        # The user's own line goes into the mailbox (redacted) so history survives a reload;
        # it is written before the queue so it always precedes the reply.
        await self.add_event(
            session,
            f"in:{session}:{client_id}",
            {"kind": "user", "text": msg.text, "ts": _now_iso(), "client_id": client_id, "author": None, "buttons": []},
        )
        await self.sink(msg)
