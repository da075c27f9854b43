"""Web chat widget: `/widget.js` (one `<script>` tag on any page), a demo page at `/`, and chat
over a WebSocket at `/ws/chat`.

Every event of a session (the user's messages, bot and agent replies) is kept in a per-session
Redis stream — the mailbox — so a page that was offline or reloaded gets exactly the events it has
not seen, in order, from any web process. Delivery to open sockets is woken through one pub/sub
channel per process, but the mailbox is the source of truth, so a missed wake-up loses nothing.

Two ids per visitor. The **session** is a bearer secret issued by the server only (a client-chosen
or expired one gets a fresh session, never someone else's history); Redis keeps only its SHA-256.
The **contact** id is public: it names the visitor to agents, in tickets, logs and the queue, and
keys the mailbox; knowing it gives no access to anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import redislean, streams
from bot.config import ChannelSettings, Settings
from bot.errors import TransientChannelError
from bot.files import attachment_refusal, is_text, read_inside, redact_text_file, safe_filename, write_atomic
from bot.httpbody import BodyTooLarge, read_capped
from bot.intake import Sink, redacted_async
from bot.lang import detect_language
from bot.logs import get_logger
from bot.mailbox import BOX_TTL_S, LUA_BOX_ADD, NOTIFY, Append, box_key, conversation_of, event_of, slot_key
from bot.models import Attachment, Message, Outbound
from bot.queue import Limit, OverLimit
from bot.ratelimit import WindowLimit
from bot.streams import Layout
from channels.web.config import WebChannelSettings
from channels.web.sniff import matches_type

log = get_logger("switchboard.web")

SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
EVENT_ID_RE = re.compile(r"^\d{1,20}-\d{1,20}$")
MAX_FRAME = 64 * 1024
SESSION_HEADER = "x-widget-session"
# A session nobody has written in yet is kept an hour (a page left open, a reload); the first line
# or file anchors it for BOX_TTL_S. So opening sockets costs storage only briefly.
NEW_SESSION_TTL_S = 3600
FILES_BYTES = "web:files:bytes"  # bytes of all stored widget uploads (every web process adds to it)

# The user's typed line is one step of the queue's intake script (`Queue.publish` with the session
# and IP rate limits and the echo into the mailbox): dedupe, limits, echo, queue — one round trip.
# Replies of the bot are written into the mailbox by the router's commit (`bot.mailbox`); what
# still comes through `outbound:web` (agents' replies, notices) is written by these scripts.
# Every key of one script is in the contact's hash slot (`bot.mailbox.slot_key`).

# KEYS: sent marker, mailbox ; ARGV: ttl, history, notify channel, contact, event json.
_BOX_ADD = LUA_BOX_ADD + """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then return false end
return box_add(KEYS[2], ARGV[2], ARGV[1], ARGV[3], ARGV[4], ARGV[5])
"""
# The same for a reply taken from `outbound:web`, acknowledged in the same script:
# KEYS: + outbound stream, attempts hash ; ARGV: + group, entry id. A redelivered reply whose
# marker is already set is only acknowledged.
_BOX_DELIVER = LUA_BOX_ADD + """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) ~= false then
  box_add(KEYS[2], ARGV[2], ARGV[1], ARGV[3], ARGV[4], ARGV[5])
end
redis.call('XACK', KEYS[3], ARGV[6], ARGV[7])
redis.call('HDEL', KEYS[4], ARGV[7])
return 1
"""
# An upload's admission, before anything is written: a resend of a stored file (same client id:
# the queue's dedupe marker) is 'dup' and costs nothing; then the rate limits as for typed lines;
# then the session's byte quota (reserved here; the store's total is counted apart, it is global).
# KEYS: dedupe marker, session counter, IP counter, session bytes ; ARGV: session limit, IP limit,
# size, session quota, session ttl.
_ADMIT_UPLOAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'dup' end
local ns = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 120)
local ni = redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], 120)
if ns > tonumber(ARGV[1]) or ni > tonumber(ARGV[2]) then return 'rate_limited' end
local size = tonumber(ARGV[3])
if tonumber(redis.call('GET', KEYS[4]) or '0') + size > tonumber(ARGV[4]) then return 'quota_session' end
redis.call('INCRBY', KEYS[4], size)
redis.call('EXPIRE', KEYS[4], ARGV[5])
return 'ok'
"""


def line_id(contact: str, client_id: str) -> str:
    """A line's or file's message id on the queue (its dedupe key is `web:<this>`): the widget's
    own client id, so a resend is the same message."""
    return f"{contact}:{client_id}"


def _id_key(eid: str) -> tuple[int, int]:
    ms, _, seq = eid.partition("-")
    return int(ms), int(seq or 0)


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
    "file_too_large": {
        "en": "That file is too large ({n} MB, the limit is {max} MB).",
        "zh": "文件太大（{n} MB，上限 {max} MB）。",
    },
    "file_type": {
        "en": "That kind of file cannot be sent here. Images (PNG, JPEG, GIF, WebP), PDF, text files and MP4 videos are accepted.",
        "zh": "不支持该文件类型。可以发送图片（PNG、JPEG、GIF、WebP）、PDF、文本文件和 MP4 视频。",
    },
    "quota_session": {
        "en": "You have sent as many files as this chat can take. Please describe the rest in a message.",
        "zh": "本次会话可发送的文件已达上限，请用文字描述其余内容。",
    },
    "quota_total": {
        "en": "Files cannot be received just now. Please describe it in a message or try again later.",
        "zh": "暂时无法接收文件，请用文字描述或稍后再试。",
    },
    "session": {
        "en": "Your chat session has expired. Please reload the page.",
        "zh": "会话已过期，请刷新页面。",
    },
}


def session_key(session: str) -> str:
    """Where a session's contact id is kept: under a hash, so the bearer secret is not stored."""
    return "web:session:" + hashlib.sha256(session.encode()).hexdigest()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Waiter:
    """One open socket's wake-up: an event plus the mailbox events announced since it last looked."""

    __slots__ = ("event", "items")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.items: list[tuple[str, str, str]] = []  # (previous id, id, event json)

    def set(self) -> None:
        self.event.set()


# How the mailbox event of a user's own line starts (`WebChannel._accept` writes it).
_ECHO = '{"kind":"user"'


class Hub:
    """Wakes the open sockets of a session when its mailbox grows (one pub/sub per process)."""

    def __init__(self, r: aioredis.Redis) -> None:
        self.r = r
        self.waiters: dict[str, set[Waiter]] = {}
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

    def register(self, session: str) -> Waiter:
        w = Waiter()
        self.waiters.setdefault(session, set()).add(w)
        return w

    def unregister(self, session: str, w: Waiter) -> None:
        s = self.waiters.get(session)
        if s:
            s.discard(w)
            if not s:
                self.waiters.pop(session, None)

    def wake(self, session: str, item: tuple[str, str, str] | None = None) -> None:
        for w in self.waiters.get(session, ()):
            if item is not None and len(w.items) < 100:
                w.items.append(item)
            w.event.set()

    def _wake_all(self) -> None:
        # After a (re)subscribe wake everyone: something may have arrived meanwhile.
        for s in list(self.waiters):
            self.wake(s)

    def _on_push(self, _channel: Any, data: Any) -> None:
        """A message on `NOTIFY`, from the lean subscriber or redis-py's PubSub."""
        if isinstance(data, bytes):
            data = data.decode()
        if isinstance(data, str):
            self._on_message(data)

    def _on_message(self, data: str) -> None:
        session, sep, rest = data.partition("\n")
        if not sep:
            self.wake(session)
            return
        prev, _, rest = rest.partition("\n")
        eid, _, event = rest.partition("\n")
        if event.startswith(_ECHO):
            # The echo of a line just taken: its socket is woken one turn of the event loop later,
            # so that the router's handling of the same line (woken in the same turn when it runs
            # in this process) sends its NLU request first. A reply is woken at once.
            asyncio.get_running_loop().call_soon(self.wake, session, (prev, eid, event))
            return
        self.wake(session, (prev, eid, event))

    async def _listen(self) -> None:
        while True:
            try:
                # A Redis Cluster client learns its slots on its first command; its pub/sub needs them.
                await self.r.initialize()
                ps = self.r.pubsub(ignore_subscribe_messages=True)
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                log.warning("web.pubsub_lost", error=str(e))
                await asyncio.sleep(0.5)
                continue
            try:
                # On one Redis: a lean subscriber connection (bot/redislean.py: two wake-ups per
                # line, each without redis-py's read path); returns only by raising. Else (a
                # cluster) redis-py's PubSub.
                if await redislean.listen(self.r, (NOTIFY,), self._on_push, self._wake_all):
                    continue  # pragma: no cover - listen returns only by raising
                await ps.subscribe(NOTIFY)
                self._wake_all()
                async for m in ps.listen():
                    self._on_push(m.get("channel"), m.get("data"))
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                log.warning("web.pubsub_lost", error=str(e))
                await asyncio.sleep(0.5)
            except Exception as e:  # noqa: BLE001 - never die silently: open sockets would stop getting replies
                log.error("web.pubsub_failed", error=f"{type(e).__name__}: {e}"[:300])
                await asyncio.sleep(1.0)
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
        self.layout = Layout.of(settings)
        self._box_add = r.register_script(_BOX_ADD)
        self._box_deliver = r.register_script(_BOX_DELIVER)
        self._admit_upload = r.register_script(_ADMIT_UPLOAD)
        self._new_sessions = WindowLimit(r, "web:newsess", limit=settings.web.rate_per_ip)
        self.attachments_dir = settings.path(cfg.attachments_dir or Path(settings.data_dir) / "web" / "attachments")

    @classmethod
    def from_config(cls, settings: Settings, cfg: ChannelSettings, redis: aioredis.Redis) -> WebChannel:
        assert isinstance(cfg, WebChannelSettings)
        return cls(settings, cfg, redis)

    async def start(self, sink: Sink) -> None:
        self.sink = sink
        self.hub.start()
        await self._count_stored_files()

    async def _count_stored_files(self) -> None:
        """The total-bytes quota counter starts from what is on disk (first process to start)."""
        try:
            if await self.r.exists(FILES_BYTES):
                return
            used = await asyncio.to_thread(_dir_bytes, self.attachments_dir)
            await self.r.set(FILES_BYTES, used, nx=True)
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            log.warning("web.files_count_failed", error=str(e)[:200])

    # -- sessions ---------------------------------------------------------------------------------
    async def resume(self, session: object, ip: str) -> tuple[str, str] | None:
        """(session, contact) for a hello: the same pair for a session this server issued and
        that has not expired, a fresh pair for anything else (absent, malformed, made up). None
        when `ip` opened more new sessions this minute than `web.rate_per_ip`."""
        if isinstance(session, str) and SESSION_RE.match(session):
            got = await self.r.get(session_key(session))
            if got:
                contact = got.decode() if isinstance(got, bytes) else str(got)
                if await self.r.exists(self.box(contact)):  # a conversation: keep it as long as its mailbox
                    await self.r.expire(session_key(session), BOX_TTL_S)
                return session, contact
        if not await self._new_sessions.hit(ip):
            return None
        session = secrets.token_urlsafe(24)
        contact = "w" + secrets.token_hex(8)
        await self.r.set(session_key(session), contact, ex=NEW_SESSION_TTL_S)
        return session, contact

    def box(self, contact: str) -> str:
        return box_key(contact, self.layout)

    def _key(self, prefix: str, contact: str, name: str) -> str:
        """A key of the contact's in its mailbox's hash slot."""
        return slot_key(prefix, contact, name, self.layout)

    def _ip_key(self, contact: str, ip: str, minute: int) -> str:
        """The per-IP counter. On one Redis it counts everything from the address; in the tagged
        layout (Redis Cluster) a script may only touch the contact's hash slot, so it counts per
        partition: the address's limit then holds within each partition (see docs/DEPLOY.md)."""
        return self._key("rl:web:ip", contact, f"{ip}:{minute}")

    def _limits(self, contact: str, ip: str) -> tuple[Limit, Limit]:
        minute = int(time.time() // 60)
        return (Limit(self._key("rl:web:s", contact, f"{contact}:{minute}"), self.settings.web.rate_per_session),
                Limit(self._ip_key(contact, ip, minute), self.settings.web.rate_per_ip))

    async def _anchor(self, session: str) -> None:
        """The visitor wrote: their session lives as long as the conversation's mailbox."""
        await self.r.expire(session_key(session), BOX_TTL_S)

    async def contact_of(self, session: str) -> str | None:
        if not SESSION_RE.match(session):
            return None
        contact = await self.r.get(session_key(session))
        if not contact:
            return None
        return contact.decode() if isinstance(contact, bytes) else str(contact)

    async def stop(self) -> None:
        await self.hub.stop()

    # -- outbound ---------------------------------------------------------------------------------
    async def add_event(self, session: str, marker: str, event: dict[str, Any]) -> str | None:
        res = await self._box_add(
            keys=[self._key("web:sent", session, marker), self.box(session)],
            args=[BOX_TTL_S, self.settings.web.history, NOTIFY, session, orjson.dumps(event).decode()],
        )
        return res.decode() if isinstance(res, bytes) else res

    async def send(self, ob: Outbound) -> None:
        try:
            await self.add_event(ob.user_id, f"out:{ob.id}", event_of(ob))
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            raise TransientChannelError(f"mailbox write failed: {e}") from None

    async def deliver(self, ob: Outbound, stream: str, group: str, entry_id: str, *, first: bool = False) -> None:
        """`send` and the acknowledgement of the outbound entry in one script (the mailbox marker
        makes it idempotent): what `OutboundSender` uses when a channel offers it. `first` changes
        nothing here: the script's marker is its own check."""
        try:
            lay = self.layout
            if stream != lay.outbound(self.name, lay.partition(ob.conversation_id)):
                # A stream outside the mailbox's hash slot (the untagged `outbound:web` on a
                # cluster): the marker keeps the two steps idempotent.
                await self.send(ob)
                await self.r.xack(stream, group, entry_id)
                await self.r.hdel(streams.attempts(stream), entry_id)
                return
            await self._box_deliver(
                keys=[self._key("web:sent:out", ob.user_id, ob.id), self.box(ob.user_id), stream, streams.attempts(stream)],
                args=[BOX_TTL_S, self.settings.web.history, NOTIFY, ob.user_id,
                      orjson.dumps(event_of(ob)).decode(), group, entry_id],
            )
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

        @router.options("/widget/upload", include_in_schema=False)
        async def upload_preflight(request: Request) -> Response:
            return Response(status_code=204, headers={
                **self._cors(request), "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": f"content-type, {SESSION_HEADER}", "Access-Control-Max-Age": "600",
            })

        @router.post("/widget/upload", include_in_schema=False)
        async def upload(request: Request) -> Response:
            return await self._upload(request)

        return router

    # -- files ------------------------------------------------------------------------------------
    def _cors(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if "*" in self.cfg.allowed_origins:
            return {"Access-Control-Allow-Origin": "*"}
        if origin and origin in self.cfg.allowed_origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    async def _upload(self, request: Request) -> Response:
        """One file from the widget: `POST /widget/upload?client_id=…&name=…&lang=…` with the
        session in the `X-Widget-Session` header (never in the URL, which proxies log) and the file
        as the body. It becomes a message of the session (no text, the file attached), behind the
        same rate limits and duplicate check as typed lines plus byte quotas per session and in
        total — all checked before anything is written. The file's first bytes must match the type
        it claims. The widget sees it come back in the mailbox like its other lines."""
        q = request.query_params
        cors = self._cors(request)
        lang = q.get("lang") or "en"
        if lang not in ("zh", "en"):
            lang = "en"

        def refuse(status: int, code: str, **kw: Any) -> JSONResponse:
            msg = ERRORS[code][lang].format(**kw) if kw else ERRORS[code][lang]
            return JSONResponse({"error": code, "message": msg}, status, headers=cors)

        if request.headers.get("origin") and not cors:
            return JSONResponse({"error": "origin"}, 403)
        session, cid = request.headers.get(SESSION_HEADER) or "", q.get("client_id") or ""
        if not CLIENT_ID_RE.match(cid):
            return refuse(400, "invalid")
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        name = safe_filename(q.get("name") or "file")
        # One rule for every channel (bot.files): the type, and never a program whatever its type.
        if attachment_refusal(ctype, name, 0, allowed=self.cfg.allowed_attachment_types, max_bytes=1) == "type":
            return refuse(415, "file_type")
        limit = self.cfg.max_attachment_bytes
        try:
            contact = await self.contact_of(session)
            if contact is None:
                return refuse(403, "session")
            try:
                data = await read_capped(request, limit)
            except BodyTooLarge:
                declared = request.headers.get("content-length") or ""
                n = int(declared) if declared.isdigit() else limit + 1
                return refuse(413, "file_too_large", n=f"{n / 1048576:.1f}", max=f"{limit / 1048576:.0f}")
            if not data:
                return refuse(400, "invalid")
            name = safe_filename(q.get("name") or "file")
            if not matches_type(data, ctype):
                log.warning("web.upload_refused", reason="content_mismatch", content_type=ctype, contact=contact)
                return refuse(415, "file_type")
            ip = request.client.host if request.client else "?"
            verdict = await self._admit(contact, cid, ip, len(data))
            if verdict == "dup":
                return JSONResponse({"ok": True, "client_id": cid}, headers=cors)
            if verdict == "rate_limited":
                return refuse(429, "rate_limited")
            if verdict in ("quota_session", "quota_total"):
                log.warning("web.upload_refused", reason=verdict, contact=contact, bytes=len(data))
                return refuse(413 if verdict == "quota_session" else 507, verdict)
            found: list[str] = []
            if is_text(ctype, name):
                data, found = await asyncio.to_thread(redact_text_file, data)
            key = hashlib.sha256(contact.encode()).hexdigest()[:24]
            rel = f"{key[:2]}/{key}/{hashlib.sha256(cid.encode()).hexdigest()[:12]}-{name}"
            await asyncio.to_thread(write_atomic, self.attachments_dir / rel, data)
            att = Attachment(name=name, content_type=ctype, size=len(data), ref=rel)
            await self._anchor(session)
            await self._accept(contact, ip, cid, "", lang, (att,), counted=True, found_kinds=found)
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            log.warning("web.upload_failed", error=str(e)[:200])
            return refuse(503, "unavailable")
        log.info("web.upload", contact=contact, bytes=len(data), content_type=ctype)
        return JSONResponse({"ok": True, "client_id": cid}, headers=cors)

    async def _admit(self, contact: str, cid: str, ip: str, size: int) -> str:
        """'ok', 'dup', 'rate_limited', 'quota_session' or 'quota_total' for an upload of `size`
        bytes. The store's total is one global counter (its own hash slot): taken after the
        session's share and given back, with the session's, when it would go over."""
        lay = self.layout
        conv = conversation_of(contact)
        quota = self._key("web:quota", contact, contact)
        s_limit, ip_limit = self._limits(contact, ip)
        verdict = await self._admit_upload(
            keys=[lay.seen(Message.dedupe_key_of(self.name, line_id(contact, cid)), lay.partition(conv)), s_limit.key,
                  ip_limit.key,
                  quota],
            args=[s_limit.limit, ip_limit.limit, size, self.cfg.max_upload_bytes_per_session, BOX_TTL_S],
        )
        verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        if verdict != "ok":
            return verdict
        if int(await self.r.incrby(FILES_BYTES, size)) > self.cfg.max_upload_bytes_total:
            await self.r.decrby(FILES_BYTES, size)
            await self.r.decrby(quota, size)
            return "quota_total"
        return "ok"

    async def fetch_attachment(self, ref: str) -> bytes:
        """A file a widget user sent, for the agent console (only from inside the store)."""
        return await asyncio.to_thread(read_inside, self.attachments_dir, ref)

    def _origin_ok(self, ws: WebSocket) -> bool:
        allowed = self.cfg.allowed_origins
        if "*" in allowed:
            return True
        return ws.headers.get("origin", "") in allowed

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
        try:
            pair = await self.resume(h.get("session"), ip)
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            log.warning("web.session_unavailable", error=str(e)[:200])
            pair = None
        if pair is None:
            with contextlib.suppress(Exception):
                await ws.close(code=1013)  # try again later
            return
        session, contact = pair
        lang_hint = h.get("lang") if h.get("lang") in ("zh", "en") else "en"
        last = h.get("last_seen")
        last_seen = last if isinstance(last, str) and EVENT_ID_RE.match(last) else None
        await ws.send_text(orjson.dumps({"type": "welcome", "session": session, "contact": contact}).decode())
        wake = self.hub.register(contact)
        wake.set()  # send the backlog at once
        state = {"last": last_seen, "lang": lang_hint, "session": session, "anchored": False}
        writer = asyncio.create_task(self._writer(ws, contact, wake, state))
        try:
            await self._reader(ws, contact, ip, state)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            self.hub.unregister(contact, wake)

    async def _writer(self, ws: WebSocket, session: str, wake: Waiter, state: dict[str, Any]) -> None:
        ping_every = self.cfg.ping_interval_s
        while True:
            try:
                # Not asyncio.wait_for: on 3.11 it can swallow the cancel that ends this writer when
                # the wake-up fires at the same moment, leaving a closed socket's task for a ping period.
                async with asyncio.timeout(ping_every):
                    await wake.event.wait()
            except TimeoutError:
                await ws.send_text('{"type":"ping"}')
                continue
            wake.event.clear()
            items, wake.items = wake.items, []
            # Announced events that directly follow what this socket has seen go out as they are;
            # anything else (a gap, a plain wake-up, a reconnect) reads the mailbox from `last`.
            behind = not items
            for prev, eid, event in items:
                last = state["last"]
                if last is not None and _id_key(eid) <= _id_key(last):
                    continue  # already sent from the mailbox
                if prev != (last or ""):
                    behind = True
                    break
                await ws.send_text(event[:-1] + f',"type":"event","id":"{eid}"}}')
                state["last"] = eid
            if behind:
                if not await self._catch_up(ws, session, state):
                    wake.set()

    async def _catch_up(self, ws: WebSocket, session: str, state: dict[str, Any]) -> bool:
        while True:
            start = f"({state['last']}" if state["last"] else "-"
            try:
                items = await self.r.xrange(self.box(session), min=start, count=200)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await asyncio.sleep(0.5)
                return False
            for eid, fields in items:
                eid = eid.decode() if isinstance(eid, bytes) else eid
                ev = orjson.loads(fields[b"e"] if b"e" in fields else fields["e"])
                ev.update({"type": "event", "id": eid})
                await ws.send_text(orjson.dumps(ev).decode())
                state["last"] = eid
            if len(items) < 200:
                return True

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
                if not state["anchored"]:
                    # The visitor writes: the session lives as long as the conversation's mailbox
                    # (before the line, so its echo never precedes it).
                    await self._anchor(state["session"])
                    state["anchored"] = True
                taken = await self._accept(session, ip, cid, text, lang)
                if taken == "rate_limited":
                    await self._error(ws, "rate_limited", lang, cid)
                    continue
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                log.warning("web.intake_failed", error=str(e))
                await self._error(ws, "unavailable", lang, cid)
                continue
            # A line stored now is confirmed by its echo (the mailbox event with kind `user` and
            # this client id), which every socket of the session gets anyway: no separate frame.
            # A resend of a line stored before gets no new echo, so it gets an `ack`.
            if taken == "duplicate":
                await ws.send_text(orjson.dumps({"type": "ack", "client_id": cid}).decode())

    async def _accept(
        self, session: str, ip: str, client_id: str, text: str, lang: str, attachments: tuple[Attachment, ...] = (),
        *, counted: bool = False, found_kinds: Sequence[str] = (),
    ) -> str:
        """Rate limits, the user's line into the mailbox, the message onto the queue — one intake
        script: 'stored' (the mailbox echo follows), 'duplicate' (a resend of a line already taken,
        same client id: it costs no rate-limit budget and stores nothing) or 'rate_limited'
        (nothing stored). `session` is the contact id (public); `counted`: the limits were
        already applied (an upload's admission); `found_kinds`: secrets redacted before (a text
        file's), so the decision knows."""
        assert self.sink is not None, "channel not started"
        msg = await redacted_async(
            Message(
                channel="web",
                channel_message_id=line_id(session, client_id),
                conversation_id=conversation_of(session),
                user_id=session,
                text=text,
                lang=lang,  # type: ignore[arg-type]
                attachments=attachments,
                # What was redacted from an uploaded text file counts for the decision (#25.2).
                meta={"redacted": ",".join(found_kinds)} if found_kinds else {},
            )
        )
        # The user's own line goes into the mailbox (redacted) so history survives a reload. "kind"
        # stays the first key: the Hub knows an echo by how it starts (`_ECHO`).
        event: dict[str, Any] = {"kind": "user", "text": msg.text, "ts": _now_iso(), "client_id": client_id,
                                 "author": None, "buttons": []}
        if attachments:
            event["attachments"] = [{"name": a.name, "size": a.size, "content_type": a.content_type} for a in attachments]
        echo = Append(self.box(session), session, orjson.dumps(event).decode(), self.settings.web.history)
        try:
            entry = await self.sink(msg, pre_redacted=True, limits=() if counted else self._limits(session, ip),
                                    echo=echo)
        except OverLimit:
            return "rate_limited"
        return "duplicate" if entry is None else "stored"


def _dir_bytes(root: Path) -> int:
    if not root.exists():
        return 0
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
