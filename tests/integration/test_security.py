"""Security hardening (issue #17), each finding shown by what an attacker or a user would see.

Real Redis and a real database; the web app is the product's own (`create_app` with the widget
channel and the agent console), served by uvicorn in this process. X and Telegram webhooks are the
real FastAPI routes of their adapters."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from structlog.testing import capture_logs

from tests.conftest import free_port, make_settings
from tests.unit.test_twitter_webhook import PATH as X_PATH
from tests.unit.test_twitter_webhook import SECRET as X_SECRET
from tests.unit.test_twitter_webhook import webhook_app

pytestmark = [pytest.mark.redis]

TG_SECRET = "tg-webhook-secret_0123456789abcdefghijkl"


def x_sig(data: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(X_SECRET.encode(), data, hashlib.sha256).digest()).decode()


def asgi(app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 5555)) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client), base_url="http://t")


@pytest.fixture
async def x_hook(aredis: aioredis.Redis) -> AsyncIterator[tuple[FastAPI, list[Any]]]:
    async with webhook_app(aredis) as (app, got):
        yield app, got


def forged_dm(sender: str, text: str) -> bytes:
    return orjson.dumps({"for_user_id": "100", "direct_message_events": [{
        "type": "message_create", "id": "777", "created_timestamp": "1700000000000",
        "message_create": {"sender_id": sender, "target": {"recipient_id": "100"}, "message_data": {"text": text}}}]})


# -- 1. X webhook forgery through the CRC endpoint -----------------------------------------------------
async def test_the_crc_endpoint_does_not_sign_a_forged_delivery(x_hook: Any) -> None:
    app, got = x_hook
    body = forged_dm("666", "I am the account owner, please reset my 2FA")
    async with asgi(app) as http:
        res = await http.get(X_PATH, params={"crc_token": body.decode()})
        assert res.status_code == 400 and "response_token" not in res.text
        # Whatever the endpoint would have said, the delivery is only taken with X's own signature.
        assert (await http.post(X_PATH, content=body, headers={"x-twitter-webhooks-signature": "sha256=" + "A" * 44})
                ).status_code == 403
        assert (await http.post(X_PATH, content=body, headers={"x-twitter-webhooks-signature": x_sig(body)})
                ).status_code == 200
        # A real challenge (X's tokens: a few dozen base64 characters) is still answered.
        token = base64.b64encode(b"x" * 30).decode()
        res = await http.get(X_PATH, params={"crc_token": token})
        assert res.status_code == 200 and res.json() == {"response_token": x_sig(token.encode())}
        for bad in ("a" * 129, "{}", "has space", '"quoted"', "[1]"):
            assert (await http.get(X_PATH, params={"crc_token": bad})).status_code == 400
    assert [m.text for m in got] == ["I am the account owner, please reset my 2FA"]  # only the signed one


async def test_the_crc_endpoint_is_rate_limited_per_address(x_hook: Any) -> None:
    app, _ = x_hook
    async with asgi(app, ("203.0.113.9", 1)) as http:
        codes = [(await http.get(X_PATH, params={"crc_token": f"token{i}"})).status_code for i in range(14)]
    assert codes == [200] * 10 + [429] * 4
    async with asgi(app, ("203.0.113.10", 1)) as other:
        assert (await other.get(X_PATH, params={"crc_token": "token"})).status_code == 200


# -- 4. Unbounded request bodies --------------------------------------------------------------------------
class Endless:
    """A chunked body (no Content-Length) that counts how much the server pulled from it."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += self.chunk
            yield b" " * self.chunk


async def test_x_webhook_stops_reading_a_huge_body(x_hook: Any) -> None:
    app, got = x_hook
    body = Endless(64 * 1024 * 1024)
    async with asgi(app) as http:
        res = await http.post(X_PATH, content=body, headers={"x-twitter-webhooks-signature": "sha256=x"})
        assert res.status_code == 413
        declared = await http.post(X_PATH, content=b"{}", headers={"content-length": str(50 * 1024 * 1024)})
        assert declared.status_code == 413
    assert body.sent <= 2 * 1024 * 1024 and got == []


async def test_telegram_webhook_stops_reading_a_huge_body(aredis: aioredis.Redis) -> None:
    from channels.telegram.adapter import TelegramChannel

    s = make_settings(channels=[{"type": "telegram", "token": "123456:" + "A" * 35, "mode": "webhook",
                                 "webhook_secret": TG_SECRET}])
    ch = TelegramChannel(s, s.channel("telegram"), aredis)  # type: ignore[arg-type]
    app = FastAPI()
    router = ch.routes()
    assert router is not None
    app.include_router(router)
    body = Endless(64 * 1024 * 1024)
    async with asgi(app) as http:
        res = await http.post("/telegram/webhook", content=body,
                              headers={"x-telegram-bot-api-secret-token": TG_SECRET})
    assert res.status_code == 413 and body.sent <= 2 * 1024 * 1024


# -- 8. Telegram webhook secret strength -----------------------------------------------------------------
@pytest.mark.parametrize("secret", ["x", "short_secret_123", "a" * 40, "ab" * 20])
def test_a_weak_telegram_webhook_secret_is_refused_with_how_to_make_one(secret: str) -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"webhook_secret: use at least 32 random characters.*secrets.token_urlsafe"):
        make_settings(channels=[{"type": "telegram", "token": "123456:" + "A" * 35, "mode": "webhook",
                                 "webhook_secret": secret}])
    import secrets

    ok = make_settings(channels=[{"type": "telegram", "token": "123456:" + "A" * 35, "mode": "webhook",
                                  "webhook_secret": secrets.token_urlsafe(32)}])
    assert ok.channel("telegram") is not None


# -- the web app in this process ----------------------------------------------------------------------
@dataclass
class Web:
    url: str
    r: aioredis.Redis
    files: Path
    svc: Any
    settings: Any
    app: FastAPI
    channels: list[Any]
    links: Any


@contextlib.asynccontextmanager
async def serve(tmp: Path, r: aioredis.Redis, *, web: dict[str, Any] | None = None,
                widget: dict[str, Any] | None = None, **over: Any) -> AsyncIterator[Web]:
    """The product's web app (widget + console) on a free port: real Redis, a SQLite ticket DB."""
    import uvicorn

    from app.review_web import review_router
    from app.runtime import build_channels, ticket_service
    from app.web import create_app, uvicorn_options
    from bot.intake import make_sink
    from bot.queue import Queue
    from handoff.console import console_router
    from handoff.reports.web import reports_router
    from handoff.selfservice import selfservice_router, ticket_page_parts

    files = tmp / "files"
    over.setdefault("data_dir", str(tmp / "data"))
    settings = make_settings(database={"url": f"sqlite+aiosqlite:///{tmp}/t.db"}, web=web or {},
                             channels=[{"type": "web", "attachments_dir": str(files), **(widget or {})}], **over)
    channels = build_channels(settings, r)
    sink = make_sink(Queue(r, settings.queue))
    for ch in channels:
        await ch.start(sink)
    svc, engine = await ticket_service(settings, r, migrate=True)
    links, page_files = ticket_page_parts(settings, svc, r)  # the ticket page, wired as the web role does
    app = create_app(settings, r, channels, extra_routers=[
        console_router(settings, svc, r, [*channels, page_files]), review_router(settings, svc, r),
        selfservice_router(settings, svc, r, links, page_files),
        reports_router(settings, svc.sm, r, [ch.name for ch in channels])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                          **uvicorn_options(settings)))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.01)
    try:
        yield Web(f"http://127.0.0.1:{port}", r, files, svc, settings, app, channels, links)
    finally:
        server.should_exit = True
        await task
        for ch in channels:
            await ch.stop()
        await engine.dispose()


async def hello(ws: aiohttp.ClientWebSocketResponse, session: str | None = None) -> dict[str, Any]:
    await ws.send_str(orjson.dumps({"type": "hello", "session": session, "last_seen": None, "lang": "en"}).decode())
    w = await ws.receive_json(timeout=5)
    assert w["type"] == "welcome"
    return w  # type: ignore[no-any-return]


async def events_until_quiet(ws: aiohttp.ClientWebSocketResponse, quiet_s: float = 0.5) -> list[dict[str, Any]]:
    out = []
    while True:
        try:
            m = await ws.receive_json(timeout=quiet_s)
        except TimeoutError:
            return out
        if m["type"] == "event":
            out.append(m)


async def say(ws: aiohttp.ClientWebSocketResponse, cid: str, text: str) -> str:
    """'ack' when the line was taken (its echo, or an `ack` for a resend), else the error code."""
    await ws.send_str(orjson.dumps({"type": "message", "client_id": cid, "text": text}).decode())
    while True:
        m = await ws.receive_json(timeout=5)
        if m["type"] == "event" and m.get("kind") == "user" and m.get("client_id") == cid:
            return "ack"
        if m["type"] in ("ack", "error"):
            return str(m.get("code", "ack"))


# -- 2. The widget session id is a bearer token ------------------------------------------------------------
async def test_a_client_chosen_or_leaked_id_never_opens_someone_elses_history(
        tmp_path: Path, aredis: aioredis.Redis) -> None:
    async with serve(tmp_path, aredis) as web, aiohttp.ClientSession() as http:
        async with http.ws_connect(web.url + "/ws/chat") as ws:
            victim = await hello(ws)
            assert await say(ws, "v1", "my UID is 4417 and my withdrawal is stuck") == "ack"
        # What agents, tickets, logs and the queue see is the public contact id, not the session.
        [(_, fields)] = await aredis.xrange("inbound")
        msg = orjson.loads(fields["m"])
        assert msg["user_id"] == victim["contact"] and victim["session"] not in fields["m"]
        for chosen in ("attacker-chosen-id-123", victim["contact"], "A" * 64):
            async with http.ws_connect(web.url + "/ws/chat") as ws:
                w = await hello(ws, chosen)
                assert w["session"] != chosen and w["session"] != victim["session"]
                assert w["contact"] != victim["contact"]
                assert await events_until_quiet(ws) == []  # a fresh, empty conversation
        async with http.ws_connect(web.url + "/ws/chat") as ws:  # the real owner resumes
            w = await hello(ws, victim["session"])
            assert (w["session"], w["contact"]) == (victim["session"], victim["contact"])
            assert [e["text"] for e in await events_until_quiet(ws)] == ["my UID is 4417 and my withdrawal is stuck"]
        assert victim["session"] not in " ".join(await aredis.keys("*"))  # stored only as a hash


async def test_opening_sockets_costs_storage_only_briefly_and_is_rate_limited_per_address(
        tmp_path: Path, aredis: aioredis.Redis) -> None:
    from channels.web.adapter import session_key

    async with serve(tmp_path, aredis, web={"rate_per_ip": 4}) as web, aiohttp.ClientSession() as http:
        async with http.ws_connect(web.url + "/ws/chat") as ws:
            w = await hello(ws)
            assert 0 < await aredis.ttl(session_key(w["session"])) <= 3600  # nobody wrote yet: an hour
            assert await say(ws, "m1", "hello") == "ack"
            assert await aredis.ttl(session_key(w["session"])) > 29 * 24 * 3600  # a conversation: 30 days
        for _ in range(3):
            async with http.ws_connect(web.url + "/ws/chat") as ws:
                await hello(ws)
        async with http.ws_connect(web.url + "/ws/chat") as ws:  # the 5th new session this minute
            await ws.send_str('{"type":"hello","session":null,"last_seen":null,"lang":"en"}')
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1013  # "try again later"
        async with http.ws_connect(web.url + "/ws/chat") as ws:  # an existing session still resumes
            assert (await hello(ws, w["session"]))["contact"] == w["contact"]


async def test_a_resent_line_does_not_spend_the_rate_limit(tmp_path: Path, aredis: aioredis.Redis) -> None:
    async with serve(tmp_path, aredis, web={"rate_per_session": 3}) as web, aiohttp.ClientSession() as http:
        async with http.ws_connect(web.url + "/ws/chat") as ws:
            await hello(ws)
            codes = [await say(ws, "m1", "hello") for _ in range(5)]  # a flaky network resends m1
            codes += [await say(ws, "m2", "are you there"), await say(ws, "m3", "what is the maker fee")]
            codes.append(await say(ws, "m4", "one too many"))
    assert codes == ["ack"] * 7 + ["rate_limited"]
    assert await aredis.xlen("inbound") == 3


# -- 3. Uploads --------------------------------------------------------------------------------------------
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def stored(files: Path) -> list[Path]:
    return [p for p in files.rglob("*") if p.is_file()] if files.exists() else []


async def upload(http: aiohttp.ClientSession, web: Web, session: str, cid: str, body: bytes,
                 ctype: str = "image/png", name: str = "shot.png") -> tuple[int, str]:
    async with http.post(web.url + "/widget/upload", params={"client_id": cid, "name": name, "lang": "en"},
                         data=body, headers={"content-type": ctype, "x-widget-session": session}) as res:
        return res.status, str((await res.json()).get("error", "ok"))


async def test_uploads_over_the_rate_limit_are_refused_before_anything_is_written(
        tmp_path: Path, aredis: aioredis.Redis) -> None:
    async with serve(tmp_path, aredis, web={"rate_per_session": 3}) as web, aiohttp.ClientSession() as http:
        async with http.ws_connect(web.url + "/ws/chat") as ws:
            session = (await hello(ws))["session"]
        got = [await upload(http, web, session, f"f{i}", PNG + bytes([i])) for i in range(6)]
        assert [c for c, _ in got] == [200, 200, 200, 429, 429, 429]
        assert len(stored(web.files)) == 3
        assert await upload(http, web, session, "f0", PNG + b"\x00") == (200, "ok")  # a resend: free, not stored twice
        assert len(stored(web.files)) == 3 and await aredis.xlen("inbound") == 3


@pytest.mark.parametrize(("body", "ctype", "name"), [
    (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 200, "application/pdf", "invoice.pdf"),
    (b"<!doctype html><script>alert(document.cookie)</script>", "image/png", "screenshot.png"),
    (b"%PDF-1.7 but declared as an image", "image/jpeg", "photo.jpg"),
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "text/plain", "notes.txt"),
    (PNG, "application/pdf", "statement.pdf"),
])
async def test_a_file_whose_content_is_not_its_declared_type_is_refused(
        tmp_path: Path, aredis: aioredis.Redis, body: bytes, ctype: str, name: str) -> None:
    async with serve(tmp_path, aredis) as web, aiohttp.ClientSession() as http:
        async with http.ws_connect(web.url + "/ws/chat") as ws:
            session = (await hello(ws))["session"]
        assert await upload(http, web, session, "x1", body, ctype, name) == (415, "file_type")
        assert stored(web.files) == [] and await aredis.xlen("inbound") == 0
        assert (await upload(http, web, session, "ok", b"%PDF-1.4\n1 0 obj", "application/pdf", "s.pdf"))[0] == 200


async def test_upload_quotas_per_session_and_in_total(tmp_path: Path, aredis: aioredis.Redis) -> None:
    widget = {"max_upload_bytes_per_session": 3000, "max_upload_bytes_total": 5000}
    async with serve(tmp_path, aredis, widget=widget) as web, aiohttp.ClientSession() as http:
        sessions = []
        for _ in range(3):
            async with http.ws_connect(web.url + "/ws/chat") as ws:
                sessions.append((await hello(ws))["session"])
        a, b, c = sessions
        big = PNG + b"\x01" * (2000 - len(PNG))
        assert await upload(http, web, a, "a1", big) == (200, "ok")
        assert await upload(http, web, a, "a2", big) == (413, "quota_session")
        assert await upload(http, web, b, "b1", big) == (200, "ok")
        assert await upload(http, web, c, "c1", big) == (507, "quota_total")
        assert len(stored(web.files)) == 2


# -- the agent console ---------------------------------------------------------------------------------------
PW = "correct-horse-battery"


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PW,
                  forwarded_for: str | None = None) -> str:
    """The sign-in form as a browser posts it; returns where it redirects ("/agent" = signed in)."""
    await http.get("/agent/login")
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    res = await http.post("/agent/login", data={"email": email, "password": password,
                                                 "csrf": http.cookies.get("sb_login_csrf") or ""}, headers=headers)
    assert res.status_code == 303, res.text
    return res.headers["location"]


async def test_parallel_wrong_passwords_are_throttled_atomically_and_do_not_lock_out_the_agent(
        tmp_path: Path, aredis: aioredis.Redis) -> None:
    async with serve(tmp_path, aredis, web={"trusted_proxies": ["127.0.0.1"]}) as web:
        await web.svc.add_agent("lin@example.com", "Lin", PW)
        async with asgi(web.app) as attacker:
            outcomes = await asyncio.gather(*[sign_in(attacker, "lin@example.com", f"guess-{i}",
                                                      forwarded_for="198.51.100.7") for i in range(24)])
        # Only max_login_failures (5) guesses were ever checked; the rest were refused unchecked.
        assert sorted(outcomes).count("/agent/login?error=invalid") == 5
        assert outcomes.count("/agent/login?error=locked") == 19
        async with asgi(web.app) as lin:  # the real agent, from her own address, is not locked out
            assert await sign_in(lin, "lin@example.com", forwarded_for="203.0.113.20") == "/agent"


async def test_many_addresses_guessing_one_account_hit_the_softer_account_limit(
        tmp_path: Path, aredis: aioredis.Redis) -> None:
    handoff = {"max_login_failures": 2, "max_account_failures": 6}
    async with serve(tmp_path, aredis, web={"trusted_proxies": ["127.0.0.1"]}, handoff=handoff) as web:
        await web.svc.add_agent("mei@example.com", "Mei", PW)
        async with asgi(web.app) as http:
            for n in range(3):
                for _ in range(2):
                    assert await sign_in(http, "mei@example.com", "nope", f"198.51.100.{n}") == "/agent/login?error=invalid"
            assert await sign_in(http, "mei@example.com", PW, "203.0.113.5") == "/agent/login?error=locked"


async def test_x_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path, aredis: aioredis.Redis) -> None:
    async with serve(tmp_path, aredis, handoff={"max_login_failures": 2}) as web:  # default: no trusted proxy
        await web.svc.add_agent("bob@example.com", "Bob", PW)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async def real_sign_in(password: str, xff: str) -> str:
                async with http.get(web.url + "/agent/login"):
                    pass
                csrf = next(c.value for c in http.cookie_jar if c.key == "sb_login_csrf")
                async with http.post(web.url + "/agent/login", data={"email": "bob@example.com", "password": password,
                                                                     "csrf": csrf},
                                     headers={"x-forwarded-for": xff}, allow_redirects=False) as res:
                    return res.headers["location"]

            # A local client cannot pose as a new address for every guess: its own address is
            # what is counted and logged.
            with capture_logs() as logs:
                assert await real_sign_in("nope", "198.51.100.1") == "/agent/login?error=invalid"
                assert await real_sign_in("nope", "198.51.100.2") == "/agent/login?error=invalid"
                assert await real_sign_in("nope", "198.51.100.3") == "/agent/login?error=locked"
            assert [e["ip"] for e in logs if e["event"].startswith("agent.login_")] == ["127.0.0.1"] * 3
            async with http.get(web.url + "/agent/login", headers={"x-forwarded-proto": "https"}) as res:
                assert "Secure" not in res.headers["set-cookie"]  # nor claim HTTPS it did not use
                assert "strict-transport-security" not in res.headers


async def test_sign_in_and_review_bodies_are_capped_before_reading(tmp_path: Path, aredis: aioredis.Redis) -> None:
    async with serve(tmp_path, aredis) as web, asgi(web.app) as http:
        body = Endless(64 * 1024 * 1024)
        res = await http.post("/agent/login", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
        assert res.status_code == 413 and body.sent <= 2 * 1024 * 1024
        body = Endless(64 * 1024 * 1024)
        res = await http.post("/agent/review", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
        assert res.status_code == 401 and body.sent <= 2 * 1024 * 1024  # not signed in: nothing read at all
        await web.svc.add_agent("sup@example.com", "Sue", PW, "supervisor")
        assert await sign_in(http, "sup@example.com") == "/agent"
        body = Endless(64 * 1024 * 1024)
        res = await http.post("/agent/review", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
        assert res.status_code == 413 and body.sent <= 2 * 1024 * 1024
        csrf = (await http.get("/agent/api/me")).json()["csrf"]
        body = Endless(64 * 1024 * 1024)
        res = await http.post("/agent/api/tickets/SB-000001/note", content=body, headers={"x-csrf-token": csrf})
        assert res.status_code == 413 and body.sent <= 2 * 1024 * 1024


async def console_ws(web: Web, cookie: str, origin: str | None) -> aiohttp.ClientWebSocketResponse:
    http = aiohttp.ClientSession(cookies={"sb_session": cookie})
    headers = {"origin": origin} if origin else {}
    try:
        ws = await http.ws_connect(web.url + "/agent/ws", headers=headers)
    except Exception:
        await http.close()
        raise
    ws._test_session = http  # type: ignore[attr-defined]
    return ws


async def closed_with(ws: aiohttp.ClientWebSocketResponse, within_s: float = 10) -> int | None:
    """Read until the server closes the socket; its close code (None if it stayed open)."""
    try:
        async with asyncio.timeout(within_s):
            while True:
                m = await ws.receive()
                if m.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    return ws.close_code
    except TimeoutError:
        return None
    finally:
        await ws.close()
        await ws._test_session.close()  # type: ignore[attr-defined]


async def test_console_websocket_refuses_other_origins(tmp_path: Path, aredis: aioredis.Redis) -> None:
    async with serve(tmp_path, aredis) as web, asgi(web.app) as http:
        await web.svc.add_agent("lin@example.com", "Lin", PW)
        assert await sign_in(http, "lin@example.com") == "/agent"
        cookie = http.cookies["sb_session"]
        for origin in ("https://evil.example", "null", None, web.url.replace("127.0.0.1", "localhost")):
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await console_ws(web, cookie, origin)
        ws = await console_ws(web, cookie, web.url)  # the console's own page
        await ws.send_str('{"type":"ping"}')
        assert (await ws.receive_json(timeout=5)) == {"type": "pong"}
        assert await closed_with(ws, 0.3) is None
    # Behind a proxy that rewrites Host, the public origin is configured.
    async with serve(tmp_path, aredis, handoff={"console_origins": ["https://support.example.com"]}) as web, \
            asgi(web.app) as http:
        assert await sign_in(http, "lin@example.com") == "/agent"
        ws = await console_ws(web, http.cookies["sb_session"], "https://support.example.com")
        assert await closed_with(ws, 0.3) is None
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await console_ws(web, http.cookies["sb_session"], "https://evil.example")


async def test_disabling_an_agent_closes_their_open_console(tmp_path: Path, aredis: aioredis.Redis) -> None:
    from tests.conftest import ROOT, config_copy

    async with serve(tmp_path, aredis) as web, asgi(web.app) as http:
        await web.svc.add_agent("bob@example.com", "Bob", PW)
        assert await sign_in(http, "bob@example.com") == "/agent"
        ws = await console_ws(web, http.cookies["sb_session"], web.url)
        cfg = config_copy(tmp_path)
        env = {"SWITCHBOARD_REDIS_URL": str(web.settings.redis.url),
               "SWITCHBOARD_DATABASE_URL": str(web.settings.database.url)}
        import os
        proc = await asyncio.create_subprocess_exec(str(ROOT / ".venv/bin/switchboard"), "agents", "disable",
                                                    "bob@example.com", "--config", str(cfg),
                                                    env={**os.environ, **env})
        assert await proc.wait() == 0
        assert await closed_with(ws) == 4401  # at once, not at the next re-check (30 s)
        assert (await http.get("/agent/api/me")).status_code == 401


async def test_an_open_console_rechecks_its_session(tmp_path: Path, aredis: aioredis.Redis) -> None:
    from sqlalchemy import update

    from handoff.models import Agent

    async with serve(tmp_path, aredis, handoff={"ws_recheck_s": 0.5}) as web, asgi(web.app) as http:
        await web.svc.add_agent("mei@example.com", "Mei", PW)
        assert await sign_in(http, "mei@example.com") == "/agent"
        ws = await console_ws(web, http.cookies["sb_session"], web.url)
        async with web.svc.sm() as s, s.begin():  # disabled behind the app's back (another tool, a DB admin)
            await s.execute(update(Agent).where(Agent.email == "mei@example.com").values(active=False))
        assert await closed_with(ws) == 4401


# -- 7. Authorization ------------------------------------------------------------------------------------------
async def test_relabelling_others_tickets_and_linking_identities_need_a_supervisor_and_are_audited(
        tmp_path: Path, aredis: aioredis.Redis) -> None:
    from tests.integration.test_tickets import event

    async with serve(tmp_path, aredis) as web:
        svc = web.svc
        lin = await svc.add_agent("lin@example.com", "Lin", PW)
        await svc.add_agent("bob@example.com", "Bob", PW)
        await svc.add_agent("sue@example.com", "Sue", PW, "supervisor")
        t = await svc.handle_event(event("my account was hacked", user="victim"))
        other = await svc.handle_event(event("I want to talk to a person", topic="human", priority="normal",
                                             user="attacker"))
        await svc.claim(t.number, lin)
        async with asgi(web.app) as bob, asgi(web.app) as sue:
            assert await sign_in(bob, "bob@example.com") == "/agent"
            assert await sign_in(sue, "sue@example.com") == "/agent"
            hb = {"x-csrf-token": (await bob.get("/agent/api/me")).json()["csrf"]}
            hs = {"x-csrf-token": (await sue.get("/agent/api/me")).json()["csrf"]}
            base = f"/agent/api/tickets/{t.number}"
            # Bob may leave a note on Lin's ticket (that is how colleagues help)…
            assert (await bob.post(base + "/note", json={"text": "saw this user yesterday"}, headers=hb)).status_code == 200
            # …but not relabel what the user asked, which feeds retraining; a supervisor may.
            assert (await bob.post(base + "/feedback", json={"topic": "account"}, headers=hb)).status_code == 403
            assert (await sue.post(base + "/feedback", json={"topic": "account"}, headers=hs)).status_code == 200
            # Linking the attacker's identity to the victim's contact would let them ask about the
            # victim's tickets: agents cannot; a supervisor can, and it is on the record.
            contact = (await bob.get(base)).json()["ticket"]["contact"]["id"]
            link = {"channel": "web", "source_id": "attacker"}
            assert (await bob.post(f"/agent/api/contacts/{contact}/link", json=link, headers=hb)).status_code == 403
            assert (await sue.post(f"/agent/api/contacts/{contact}/link", json=link, headers=hs)).status_code == 200
            audit = [(a["actor"], a["action"]) for a in (await sue.get(base)).json()["audit"]]
            assert ("Bob", "note") in audit and ("Sue", "bot_wrong") in audit and ("Sue", "identity_linked") in audit
            moved = (await sue.get(f"/agent/api/tickets/{other.number}")).json()["audit"]
            assert any(a["action"] == "identity_linked" and "source_id: attacker" in a["detail"] for a in moved)


# -- 8. Metrics, HSTS, CSP ----------------------------------------------------------------------------------------
async def test_metrics_need_the_token_or_a_local_client(tmp_path: Path, aredis: aioredis.Redis) -> None:
    token = "metrics-token-0123456789abcdefgh"
    async with serve(tmp_path, aredis) as web:
        async with asgi(web.app, ("198.51.100.9", 1)) as remote:
            assert (await remote.get("/metrics")).status_code == 403
        async with asgi(web.app) as local:
            assert (await local.get("/metrics")).status_code == 200
    async with serve(tmp_path, aredis, web={"metrics_token": token}) as web, asgi(web.app) as local:
        assert (await local.get("/metrics")).status_code == 401
        assert (await local.get("/metrics", headers={"authorization": "Bearer wrong"})).status_code == 401
        res = await local.get("/metrics", headers={"authorization": f"Bearer {token}"})
        assert res.status_code == 200 and "switchboard_queue_lag" in res.text


async def test_https_gets_hsts_and_the_console_csp_names_only_its_own_origin(
        tmp_path: Path, aredis: aioredis.Redis) -> None:
    async with serve(tmp_path, aredis, web={"trusted_proxies": ["10.0.0.0/8"]}) as web:
        async with asgi(web.app, ("10.1.2.3", 1)) as via_proxy:  # TLS ends at the trusted proxy
            res = await via_proxy.get("/agent/login", headers={"x-forwarded-proto": "https", "host": "support.example.com"})
            assert res.headers["strict-transport-security"].startswith("max-age=31536000")
            assert "Secure" in res.headers["set-cookie"]
            csp = res.headers["content-security-policy"]
            connect = next(d for d in csp.split(";") if d.strip().startswith("connect-src")).split()[1:]
            assert connect == ["'self'", "wss://support.example.com"]
        async with asgi(web.app, ("198.51.100.9", 1)) as direct:  # not a proxy: its header is ignored
            res = await direct.get("/agent/login", headers={"x-forwarded-proto": "https"})
            assert "strict-transport-security" not in res.headers


def test_security_settings_are_checked_and_never_echo_a_secret() -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"metrics_token: use at least 24 random characters") as e:
        make_settings(web={"metrics_token": "hunter2-metrics"})
    assert "hunter2" not in str(e.value)
    with pytest.raises(ConfigError, match=r"web.trusted_proxies.*'proxy.internal' is not an IP address or CIDR"):
        make_settings(web={"trusted_proxies": ["10.0.0.0/8", "proxy.internal"]})
    with pytest.raises(ConfigError, match=r"allowed_attachment_types.*application/zip: no content check"):
        make_settings(channels=[{"type": "web", "allowed_attachment_types": ["image/png", "application/zip"]}])


# -- 9. The web entry points, reviewed as an attacker (console, ticket page, reports) -----------------------
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_a_closed_tickets_page_link_stores_no_more_files(tmp_path: Path, aredis: aioredis.Redis) -> None:
    """A ticket page link keeps reading after the ticket is closed; before, every upload through
    it was written to disk and only then refused (409), so one old link filled the disk."""
    from sqlalchemy import update

    from handoff.models import Ticket
    from handoff.selfservice import TOKEN_HEADER
    from tests.integration.test_tickets import event

    async with serve(tmp_path, aredis, web={"public_url": "http://t"}) as web, asgi(web.app) as user:
        t = await web.svc.handle_event(event("I want to talk to a person", topic="human", priority="normal"))
        h = {TOKEN_HEADER: await web.links.token(t.number), "content-type": "image/png"}
        store = Path(web.settings.data_dir) / "ticket_page"
        res = await user.post("/ticket/api/upload?name=a.png", content=PNG, headers=h)
        assert res.status_code == 200 and len([p for p in store.rglob("*") if p.is_file()]) == 1
        async with web.svc.sm() as s, s.begin():
            await s.execute(update(Ticket).where(Ticket.id == t.id).values(status="closed"))
        for i in range(5):
            res = await user.post(f"/ticket/api/upload?name=b{i}.png", content=PNG, headers=h)
            assert res.status_code == 409 and res.json()["error"] == "closed"
        assert len([p for p in store.rglob("*") if p.is_file()]) == 1  # refused, and nothing kept
        body = Endless(64 * 1024 * 1024)
        res = await user.post("/ticket/api/upload?name=c.png", content=body, headers=h)
        assert res.status_code == 409 and body.sent <= 2 * 1024 * 1024  # refused before the file is read
        assert len([p for p in store.rglob("*") if p.is_file()]) == 1
        assert (await user.get("/ticket/api", headers={TOKEN_HEADER: h[TOKEN_HEADER]})).json()["can_write"] is False


async def test_issuing_a_ticket_page_link_is_an_action_on_the_ticket(tmp_path: Path, aredis: aioredis.Redis) -> None:
    """Whoever holds a ticket page link reads the conversation and writes to it as the user. An
    agent could get one for a colleague's ticket (and hand it to a caller who "lost theirs")
    though they may not even reply on it; now only the assignee, or anyone on an unassigned ticket,
    or a supervisor, and each link issued is in the ticket's audit log."""
    from tests.integration.test_tickets import event

    async with serve(tmp_path, aredis, web={"public_url": "http://t"}) as web:
        svc = web.svc
        lin = await svc.add_agent("lin@example.com", "Lin", PW)
        await svc.add_agent("bob@example.com", "Bob", PW)
        await svc.add_agent("sue@example.com", "Sue", PW, "supervisor")
        t = await svc.handle_event(event("my account was hacked", user="victim"))
        await svc.claim(t.number, lin)
        link = f"/agent/api/tickets/{t.number}/page-link"
        async with asgi(web.app) as bob, asgi(web.app) as lin_http, asgi(web.app) as sue:
            heads = {}
            for http, email in ((bob, "bob@example.com"), (lin_http, "lin@example.com"), (sue, "sue@example.com")):
                assert await sign_in(http, email) == "/agent"
                heads[email] = {"x-csrf-token": (await http.get("/agent/api/me")).json()["csrf"]}
            res = await bob.post(link, headers=heads["bob@example.com"])
            assert res.status_code == 403 and res.json()["code"] == "assigned_elsewhere"
            for http, email in ((lin_http, "lin@example.com"), (sue, "sue@example.com")):
                res = await http.post(link, headers=heads[email])
                assert res.status_code == 200 and res.json()["url"].startswith("http://t/ticket#" + t.number)
            audit = [(a["actor"], a["action"]) for a in (await sue.get(f"/agent/api/tickets/{t.number}")).json()["audit"]]
            assert ("Lin", "page_link_issued") in audit and ("Sue", "page_link_issued") in audit
            assert ("Bob", "page_link_issued") not in audit


async def test_console_answers_carry_the_security_headers_and_pages_come_only_from_their_routes(
        tmp_path: Path, aredis: aioredis.Redis) -> None:
    """The console's pages were also served as bare files (`/agent/static/console.html`,
    `login.html`, `ticket.html`) without their CSP and frame-ancestors, and the JSON and error
    answers carried no nosniff or no-store; an unknown catalogue name was a 500."""
    async with serve(tmp_path, aredis) as web, asgi(web.app) as http:
        await web.svc.add_agent("lin@example.com", "Lin", PW)
        for name in ("console.html", "login.html", "ticket.html", "callbacks.html"):
            assert (await http.get(f"/agent/static/{name}")).status_code == 404
        assert (await http.get("/agent/static/i18n/en")).status_code == 404
        assert (await http.get("/agent/static/i18n/zh.json")).status_code == 200

        def hardened(res: httpx.Response) -> bool:
            return (res.headers.get("x-content-type-options") == "nosniff"
                    and "frame-ancestors 'none'" in res.headers.get("content-security-policy", ""))

        for path in ("/agent/api/me", "/agent/api/tickets", "/agent/static/nothing.js", "/agent/reports/api",
                     "/ticket/api", "/agent/login"):
            res = await http.get(path)
            assert hardened(res), (path, res.status_code, res.headers)
        assert await sign_in(http, "lin@example.com") == "/agent"
        for path in ("/agent/api/me", "/agent/api/tickets", "/agent/api/canned", "/agent/reports/api",
                     "/agent/static/console.js"):
            res = await http.get(path)
            assert hardened(res), (path, res.status_code, res.headers)
            if path.startswith("/agent/api"):
                assert res.headers["cache-control"] == "no-store"
        page = await http.get("/agent")  # a page keeps its own CSP: its scripts and its socket
        assert page.headers["content-security-policy"].startswith("default-src 'self'")


async def test_an_attachment_fetch_error_is_logged_not_shown_to_the_agent(
        tmp_path: Path, aredis: aioredis.Redis) -> None:
    """The console passed the channel's error text to the agent: a server path, or a URL
    carrying a channel's credentials (Telegram puts its bot token in file URLs)."""
    from bot.errors import PermanentChannelError
    from tests.integration.test_tickets import event

    secret_url = "https://api.telegram.org/file/bot123456:AAE-secret-token/photos/1.jpg"
    async with serve(tmp_path, aredis) as web, asgi(web.app) as http:
        ev = event("here is my screenshot", user="victim")
        ev["message"]["attachments"] = [{"name": "a.png", "content_type": "image/png", "size": 9, "ref": "x/a.png"}]
        t = await web.svc.handle_event(ev)
        msg = next(m for m in (await web.svc.detail(t.number))["messages"] if m["attachments"])

        async def broken(ref: str) -> bytes:
            raise PermanentChannelError(f"{secret_url} answered 500 (/srv/switchboard/data/{ref})")

        [widget] = web.channels
        widget.fetch_attachment = broken
        await web.svc.add_agent("lin@example.com", "Lin", PW)
        assert await sign_in(http, "lin@example.com") == "/agent"
        with capture_logs() as logs:
            res = await http.get(f"/agent/api/tickets/{t.number}/messages/{msg['id']}/attachments/0")
        assert res.status_code == 502 and res.json()["code"] == "attachment_upstream"
        assert "secret" not in res.text and "/srv/" not in res.text
        assert any(e["event"] == "console.attachment_failed" for e in logs)  # the reason is in the log


async def test_signing_out_closes_the_sessions_open_consoles_at_once(tmp_path: Path, aredis: aioredis.Redis) -> None:
    """Signed out, another tab of the same session kept receiving every ticket's messages live
    until its next session recheck (`handoff.ws_recheck_s`, 30 s)."""
    async with serve(tmp_path, aredis, handoff={"ws_recheck_s": 60}) as web, asgi(web.app) as http:
        await web.svc.add_agent("lin@example.com", "Lin", PW)
        assert await sign_in(http, "lin@example.com") == "/agent"
        ws = await console_ws(web, http.cookies["sb_session"], web.url)
        await ws.send_str('{"type":"ping"}')
        assert (await ws.receive_json(timeout=5)) == {"type": "pong"}
        csrf = (await http.get("/agent/api/me")).json()["csrf"]
        assert (await http.post("/agent/logout", headers={"x-csrf-token": csrf})).status_code == 200
        assert await closed_with(ws, 5) == 4401
