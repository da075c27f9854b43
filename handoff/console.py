"""The agent console: `/agent` (page), `/agent/api/*` (JSON), `/agent/ws` (live updates).

Sessions are server-side (Redis) behind an HttpOnly, SameSite=Strict cookie; every state-changing
request carries the session's CSRF token in `X-CSRF-Token`; the login form uses a double-submit
token. A disabled agent's requests fail at once, whatever cookie they hold, and their open
WebSockets are closed (`agents disable` announces it; each socket also re-checks its session on a
timer). The WebSocket only accepts pages of this origin. Bodies are capped before they are read,
and before any is read where authentication comes first.

Who may do what (docs/SECURITY.md): any agent reads every ticket, replies to and changes the
tickets assigned to them (or unassigned ones), and adds internal notes to any ticket (notes are
how colleagues help; each is in the ticket's audit log under the author's name). "Bot was wrong"
relabels what the user asked and feeds retraining, so on a ticket assigned to someone else only a
supervisor may do it. Linking an identity to a contact changes who may ask about a ticket's
status: supervisors only, audited on every ticket of the contact.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson
import redis.asyncio as aioredis
import yaml
from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy import select

from bot.config import Settings
from bot.errors import PermanentChannelError, TransientError
from bot.files import is_text, redact_text_file
from bot.httpbody import BodyTooLarge, read_capped
from bot.logs import get_logger
from bot.models import TOPICS
from handoff import i18n
from handoff.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Sessions, same, signed_in, verify_off_loop
from handoff.bulk import MAX_TICKETS as MAX_BULK
from handoff.bulk import BulkActions
from handoff.incidents import Incidents
from handoff.models import Agent, Ticket
from handoff.service import CONTROL, EVENTS, TicketError, TicketService
from handoff.views import BadFilter, Filters, select_ids

log = get_logger("switchboard.console")

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {".js": "application/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_FORM = 16 * 1024  # the sign-in form
_CSRF_FIELD = 'id="csrf" value=""'  # the sign-in form's token field in login.html
MAX_JSON = 256 * 1024  # an API body (a 10,000-character reply, escaped)
MAX_REVIEW_FORM = 64 * 1024


def security_headers(request: Request) -> dict[str, str]:
    """Page headers; the CSP lets the page connect to its own origin only (WebSocket included)."""
    ws = ("wss://" if request.url.scheme == "https" else "ws://") + request.url.netloc
    return {**SECURITY_HEADERS, "Content-Security-Policy":
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            f"connect-src 'self' {ws}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"}


def same_origin(origin: str | None, host: str | None, also: Sequence[str] = ()) -> bool:
    """A WebSocket's Origin names this server — its Host, or one of `also` (the public origins
    behind a proxy that rewrites Host). Browsers always send it; a page elsewhere that tries to
    use an agent's cookie shows its own origin."""
    if not origin:
        return False
    if origin.rstrip("/").lower() in {o.rstrip("/").lower() for o in also}:
        return True
    u = urlsplit(origin)
    return bool(host) and u.scheme in ("http", "https") and u.netloc.lower() == str(host).lower()


def _static(name: str) -> bytes:
    return (STATIC / name).read_bytes()


class ApiError(HTTPException):
    """A refusal the console shows in the agent's language: a stable `code` and its `params` beside
    the English text. The body is `{"error": text, "code": …, "params": {…}, "detail": text}`
    (`detail` as FastAPI clients expect it); the console translates `error.<code>`."""

    def __init__(self, status: int, code: str, text: str, **params: Any) -> None:
        super().__init__(status, text)
        self.code = code
        self.params = params


# Every response of a console route carries these unless it sets its own: pages their CSP
# (`security_headers`), static files their caching, attachments their sandbox. Nothing served under
# /agent is sniffed into another type, framed, cached by a shared cache, or rendered as a page
# (a JSON body with a user's text opened directly in a tab runs nothing).
BASELINE_HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox"}


class CodedErrors(APIRoute):
    """Routes of the console: an ApiError becomes the coded JSON body (no app-level handler needed),
    and every response gets the `BASELINE_HEADERS` it does not set itself."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                resp = await handler(request)
            except ApiError as e:
                resp = JSONResponse({"error": e.detail, "code": e.code, "params": e.params, "detail": e.detail},
                                    e.status_code, headers=e.headers)
            except HTTPException as e:  # FastAPI's own answer, with the headers below
                resp = await http_exception_handler(request, e)
            for k, v in BASELINE_HEADERS.items():
                resp.headers.setdefault(k, v)
            return resp

        return route


# Shown in the browser (same origin, behind the session): raster images only. Everything else
# (PDF, HTML, text, SVG…) is downloaded, never rendered inside the console's origin.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def _disposition(kind: str, name: str) -> str:
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:100] or "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name[:200], safe='')}"


def console_router(
    settings: Settings, svc: TicketService, r: aioredis.Redis, channels: Sequence[Any] = ()
) -> APIRouter:
    hs = settings.handoff
    sessions = Sessions(r, hs.session_hours * 3600, hs.max_login_failures, hs.lockout_min * 60,
                        hs.max_account_failures)
    router = APIRouter(prefix="/agent", route_class=CodedErrors)
    bulk = BulkActions(svc)
    incidents = Incidents(svc)

    def secure(request: Request) -> bool:
        # The scheme the client used: the TCP connection's, or a trusted proxy's X-Forwarded-Proto
        # (web.trusted_proxies) — never the header of an arbitrary client.
        return request.url.scheme == "https"

    async def agent_of(token: str | None) -> tuple[Agent, str] | None:
        return await signed_in(sessions, svc.sm, token)

    async def current(request: Request, write: bool = False) -> Agent:
        got = await agent_of(request.cookies.get(SESSION_COOKIE))
        if got is None:
            raise ApiError(401, "sign_in", "sign in first")
        agent, csrf = got
        if write and not same(request.headers.get("x-csrf-token"), csrf):
            raise ApiError(403, "csrf", "missing or wrong CSRF token")
        return agent

    def page(name: str, request: Request) -> HTMLResponse:
        return HTMLResponse(_static(name).decode(), headers=security_headers(request))

    @router.get("/login", include_in_schema=False)
    async def login_page(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        # The form carries its token from the start (double submit: the cookie and this field), so
        # a form sent before the page's script has run — a password manager's fill-and-submit, a
        # slow network — is a valid sign-in, not a "wrong password".
        html = _static("login.html").decode().replace(_CSRF_FIELD, f'id="csrf" value="{token}"', 1)
        resp = HTMLResponse(html, headers=security_headers(request))
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=False, samesite="strict", secure=secure(request),
                        path="/agent", max_age=3600)
        return resp

    @router.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        try:
            raw = await read_capped(request, MAX_FORM)
        except BodyTooLarge:
            return Response("sign-in form too large\n", status_code=413)
        form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        email = form.get("email", "").strip().lower()[:320]
        ip = request.client.host if request.client else "?"
        if not same(form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE)):
            # Not the form this browser was given (expired, or from another page): say so, it is
            # not a wrong password.
            return RedirectResponse("/agent/login?error=csrf", 303)
        if not await sessions.attempt(email, ip):
            log.warning("agent.login_locked", email=email, ip=ip)
            return RedirectResponse("/agent/login?error=locked", 303)
        async with svc.sm() as s:
            a = (await s.execute(select(Agent).where(Agent.email == email))).scalar_one_or_none()
        ok = await verify_off_loop(a.password_hash if a else None, form.get("password", "")[:1024])
        if not ok or a is None:
            log.warning("agent.login_failed", email=email, ip=ip)
            return RedirectResponse("/agent/login?error=invalid", 303)
        if not a.active:
            return RedirectResponse("/agent/login?error=disabled", 303)
        await sessions.succeeded(email, ip)
        sess = await sessions.create(a.id)
        log.info("agent.login", agent=a.name)
        resp = RedirectResponse("/agent", 303)
        resp.set_cookie(SESSION_COOKIE, sess.token, httponly=True, samesite="strict", secure=secure(request),
                        path="/agent", max_age=hs.session_hours * 3600)
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/agent")
        return resp

    @router.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        await current(request, write=True)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await sessions.drop(token)
            # Open consoles of this session (another tab) close now, not at their next recheck.
            await r.publish(CONTROL, orjson.dumps({"type": "signed_out"}).decode())
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(SESSION_COOKIE, path="/agent")
        return resp

    @router.get("", include_in_schema=False)
    async def console(request: Request) -> Response:
        if await agent_of(request.cookies.get(SESSION_COOKIE)) is None:
            return RedirectResponse("/agent/login", 303)
        return page("console.html", request)

    @router.get("/static/i18n/{name}", include_in_schema=False)
    async def catalogue(name: str) -> Response:
        """The message catalogues (public: the sign-in page needs them too)."""
        if name != "languages.json" and not (name.endswith(".json") and name.removesuffix(".json") in i18n.codes()):
            raise HTTPException(404)
        return Response((i18n.DIR / name).read_bytes(), media_type="application/json",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @router.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        # Scripts, styles and images only: a page is served by its own route, with its headers
        # (CSP, frame-ancestors) and its sign-in check — never as a bare file at a second address.
        if "/" in name or name.startswith(".") or name.endswith(".html") or not (STATIC / name).is_file():
            raise HTTPException(404)
        ext = name[name.rfind("."):]
        return Response(_static(name), media_type=CONTENT_TYPES.get(ext, "application/octet-stream"),
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    # -- API ---------------------------------------------------------------------------------------
    @router.get("/api/me")
    async def me(request: Request) -> dict[str, Any]:
        got = await agent_of(request.cookies.get(SESSION_COOKIE))
        if got is None:
            raise ApiError(401, "sign_in", "sign in first")
        a, csrf = got
        locale = i18n.negotiate(a.locale, request.headers.get("accept-language"))
        return {"id": a.id, "name": a.name, "email": a.email, "role": a.role, "csrf": csrf,
                "locale": locale, "locale_saved": a.locale is not None}

    @router.put("/api/me/locale")
    async def set_locale(request: Request) -> dict[str, Any]:
        """The agent's interface language, kept on their profile (every browser they sign in on)."""
        a = await current(request, write=True)
        code = (await body(request)).get("locale")
        if not isinstance(code, str) or code not in i18n.codes():
            raise ApiError(400, "locale_invalid", "locale must be one of " + ", ".join(sorted(i18n.codes())))
        async with svc.sm() as s, s.begin():
            agent = await s.get(Agent, a.id)
            if agent is not None:
                agent.locale = code
        log.info("agent.locale", agent=a.id, locale=code)
        return {"locale": code}

    @router.get("/api/tickets")
    async def tickets(request: Request, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
        """A page of a view: filters (channel, priority, status, topic, assignee, tag, incident,
        since, until — lists comma-separated), full-text `q`, keyset `cursor` from the last page."""
        a = await current(request)
        try:
            f = Filters.parse(dict(request.query_params))
            return await svc.page(f, a, cursor, limit)
        except BadFilter as e:
            raise ApiError(400, "bad_filter", str(e), why=str(e)) from None

    @router.get("/api/counts")
    async def counts(request: Request) -> dict[str, Any]:
        """True counters: per view, per priority, unclaimed urgent, SLA breached / at risk."""
        a = await current(request)
        return await svc.counts(a)

    async def selection(a: Agent, b: dict[str, Any]) -> list[int]:
        """The tickets a bulk request means: `numbers` (a selection) or `all` (the filters and
        search of a view: every matching ticket — supervisors only)."""
        if isinstance(b.get("all"), dict):
            if a.role != "supervisor":
                raise ApiError(403, "bulk_all_supervisors", "acting on everything that matches a search is for supervisors")
            try:
                f = Filters.parse({k: v for k, v in b["all"].items() if isinstance(v, str | list)})
            except BadFilter as e:
                raise ApiError(400, "bad_filter", str(e), why=str(e)) from None
            async with svc.sm() as s:
                ids = await select_ids(s, f, a, MAX_BULK)
            if len(ids) > MAX_BULK:
                raise ApiError(400, "bulk_too_many", f"more than {MAX_BULK} tickets match; narrow the search", max=MAX_BULK)
            return ids
        numbers = b.get("numbers")
        if not isinstance(numbers, list) or not numbers or not all(isinstance(n, str) for n in numbers):
            raise ApiError(400, "bulk_selection", "numbers must be a non-empty list of ticket numbers (or all: filters)")
        if len(numbers) > MAX_BULK:
            raise ApiError(400, "bulk_too_many", f"at most {MAX_BULK} tickets at once", max=MAX_BULK)
        async with svc.sm() as s:
            return list((await s.execute(select(Ticket.id).where(Ticket.number.in_([n.upper() for n in numbers])))).scalars())

    @router.post("/api/bulk")
    async def bulk_action(request: Request) -> dict[str, Any]:
        a = await current(request, write=True)
        b = await body(request)
        ids = await selection(a, b)
        params = b.get("params") if isinstance(b.get("params"), dict) else {}
        res = await run(bulk.run, a, str(b.get("action")), ids, params)
        return res.json()

    @router.get("/api/incidents")
    async def incidents_list(request: Request) -> dict[str, Any]:
        await current(request)
        return {"incidents": await incidents.list()}

    @router.post("/api/incidents")
    async def incident_create(request: Request) -> dict[str, Any]:
        a = await current(request, write=True)
        b = await body(request)
        kws = b.get("keywords") or []
        if isinstance(kws, str):
            kws = [k for k in kws.replace("，", ",").split(",")]
        if not isinstance(kws, list):
            raise ApiError(400, "keywords_list", "keywords must be a list")
        return await run(incidents.create, a, str(b.get("title") or ""), [str(k) for k in kws],
                         b.get("en"), b.get("zh"))

    @router.post("/api/incidents/{incident_id}/link")
    async def incident_link(request: Request, incident_id: int) -> dict[str, Any]:
        a = await current(request, write=True)
        ids = await selection(a, await body(request))
        return await run(incidents.link, a, incident_id, ids)

    @router.post("/api/incidents/{incident_id}/update")
    async def incident_update(request: Request, incident_id: int) -> dict[str, Any]:
        a = await current(request, write=True)
        b = await body(request)
        return await run(incidents.update, a, incident_id, b.get("en"), b.get("zh"))

    @router.post("/api/incidents/{incident_id}/resolve")
    async def incident_resolve(request: Request, incident_id: int) -> dict[str, Any]:
        a = await current(request, write=True)
        b = await body(request)
        return await run(incidents.resolve, a, incident_id, b.get("en"), b.get("zh"))

    async def run(fn, *args: Any) -> Any:
        try:
            return await fn(*args)
        except TicketError as e:
            raise ApiError(e.status_code, e.code, str(e), **e.params) from None

    async def body(request: Request) -> dict[str, Any]:
        try:
            data = orjson.loads(await read_capped(request, MAX_JSON) or b"{}")
        except BodyTooLarge:
            raise ApiError(413, "body_too_large", "request body too large") from None
        except orjson.JSONDecodeError:
            raise ApiError(400, "body_json", "body must be JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "body_json", "body must be a JSON object")
        return data

    @router.get("/api/tickets/{number}")
    async def ticket(request: Request, number: str) -> dict[str, Any]:
        await current(request)
        return await run(svc.detail, number)

    @router.get("/api/tickets/{number}/messages/{message_id}/attachments/{index}")
    async def attachment(request: Request, number: str, message_id: int, index: int) -> Response:
        """A file the user sent, fetched from where its channel keeps it (the e-mail attachment
        store, Telegram's file servers). Read access to the ticket is enough; every download is logged."""
        a = await current(request)
        channel, att = await run(svc.attachment, number, message_id, index)
        ref = att.get("ref")
        fetchers = [f for ch in channels if ch.name == channel and (f := getattr(ch, "fetch_attachment", None))]
        if not ref or not fetchers:
            raise ApiError(404, "attachment_channel", f"files sent on {channel} cannot be opened here", channel=channel)
        data: bytes | None = None
        for fetch in fetchers:  # several mailboxes of one channel type: the one that has it
            try:
                data = await fetch(ref)
                break
            except FileNotFoundError:
                continue
            except (TransientError, PermanentChannelError, OSError) as e:
                log.warning("console.attachment_failed", ticket=number, channel=channel, error=str(e)[:200])
                # The reason stays in the log: an upstream error can name a server path or a URL
                # with a channel's credentials, which are not the agent's to see.
                raise ApiError(502, "attachment_upstream", f"{channel} did not return the file", channel=channel) from None
        if data is None:
            raise ApiError(404, "attachment_gone", "the file is no longer available")
        body: bytes = data
        if is_text(str(att.get("content_type") or ""), str(att.get("name") or "")):
            # Telegram and X files come straight from their servers: a text file is shown redacted
            # like everything else (the e-mail store's copies already are; redacting is idempotent).
            body, _ = await asyncio.to_thread(redact_text_file, body)
        ctype = str(att.get("content_type") or "").split(";")[0].strip().lower()
        inline = ctype in INLINE_TYPES
        log.info("console.attachment", agent=a.id, ticket=number, message=message_id, bytes=len(body))
        return Response(body, media_type=ctype if inline else "application/octet-stream", headers={
            "Content-Disposition": _disposition("inline" if inline else "attachment", str(att.get("name") or "attachment")),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
        })

    @router.post("/api/tickets/{number}/claim")
    async def claim(request: Request, number: str) -> dict[str, Any]:
        a = await current(request, write=True)
        t = await run(svc.claim, number, a)
        return svc.ticket_json(t)

    @router.post("/api/tickets/{number}/reply")
    async def reply(request: Request, number: str) -> dict[str, Any]:
        a = await current(request, write=True)
        text = str((await body(request)).get("text") or "")[:10_000]
        return await run(svc.reply, number, a, text)

    @router.post("/api/tickets/{number}/note")
    async def note(request: Request, number: str) -> dict[str, Any]:
        a = await current(request, write=True)
        text = str((await body(request)).get("text") or "")[:10_000]
        return await run(svc.note, number, a, text)

    @router.post("/api/tickets/{number}/transfer")
    async def transfer(request: Request, number: str) -> dict[str, Any]:
        a = await current(request, write=True)
        to = (await body(request)).get("agent_id")
        if not isinstance(to, int):
            raise ApiError(400, "agent_id", "agent_id must be a number")
        return svc.ticket_json(await run(svc.transfer, number, a, to))

    @router.post("/api/tickets/{number}/status")
    async def status(request: Request, number: str) -> dict[str, Any]:
        a = await current(request, write=True)
        return svc.ticket_json(await run(svc.set_status, number, a, str((await body(request)).get("status"))))

    @router.post("/api/tickets/{number}/resolve")
    async def resolve(request: Request, number: str) -> dict[str, Any]:
        a = await current(request, write=True)
        return svc.ticket_json(await run(svc.resolve, number, a))

    @router.post("/api/tickets/{number}/handback")
    async def handback(request: Request, number: str) -> dict[str, Any]:
        a = await current(request, write=True)
        return svc.ticket_json(await run(svc.handback, number, a))

    @router.post("/api/tickets/{number}/feedback")
    async def feedback(request: Request, number: str) -> dict[str, Any]:
        a = await current(request, write=True)
        b = await body(request)
        topic = b.get("topic")
        if topic not in TOPICS:
            raise ApiError(400, "topic_invalid", "topic must be one of " + ", ".join(TOPICS))
        intent = b.get("intent") if isinstance(b.get("intent"), str) else None
        await run(svc.feedback, number, a, topic, intent)  # refuses another agent's ticket unless supervisor
        return {"ok": True}

    @router.post("/api/contacts/{contact_id}/link")
    async def link(request: Request, contact_id: int) -> dict[str, Any]:
        a = await current(request, write=True)
        b = await body(request)
        ch, sid = b.get("channel"), b.get("source_id")
        if not (isinstance(ch, str) and isinstance(sid, str) and ch and sid):
            raise ApiError(400, "link_fields", "channel and source_id are required")
        if a.role != "supervisor":
            raise ApiError(403, "supervisors_only", "linking identities is for supervisors")
        await run(svc.link_identity, contact_id, ch, sid, a)
        return {"ok": True}

    @router.get("/api/agents")
    async def agents(request: Request) -> dict[str, Any]:
        await current(request)
        online = set(await r.smembers("agent:online"))
        async with svc.sm() as s:
            rows = (await s.execute(select(Agent).where(Agent.active).order_by(Agent.name))).scalars()
            return {"agents": [{"id": a.id, "name": a.name, "role": a.role, "online": str(a.id) in online}
                               for a in rows]}

    @router.get("/api/canned")
    async def canned(request: Request) -> dict[str, Any]:
        await current(request)
        path = settings.path(hs.canned_file)
        items = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else []
        out = []
        for it in items or []:
            for lang in ("en", "zh"):
                if it.get(lang):
                    titles = _titles(it)
                    out.append({"key": it["key"], "title": titles.get("en") or next(iter(titles.values()), it["key"]),
                                "titles": titles, "lang": lang, "text": it[lang]})
        return {"canned": out}

    @router.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        if not same_origin(websocket.headers.get("origin"), websocket.headers.get("host"), hs.console_origins):
            log.warning("console.ws_origin_refused", origin=(websocket.headers.get("origin") or "")[:200])
            await websocket.close(code=4403)
            return
        token = websocket.cookies.get(SESSION_COOKIE)
        got = await agent_of(token)
        if got is None:
            await websocket.close(code=4401)
            return
        agent, _ = got
        await websocket.accept()
        await r.sadd("agent:online", agent.id)
        ps = r.pubsub(ignore_subscribe_messages=True)
        await ps.subscribe(EVENTS, CONTROL)

        async def pump() -> None:
            async for m in ps.listen():
                data = m.get("data")
                if not isinstance(data, str):
                    continue
                if m.get("channel") == CONTROL:
                    if await agent_of(token) is None:
                        return  # disabled or signed out: the socket closes
                    continue
                await websocket.send_text(data)

        async def recheck() -> None:
            while True:
                await asyncio.sleep(hs.ws_recheck_s)
                if await agent_of(token) is None:
                    return

        async def receive() -> None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                while True:
                    raw = await websocket.receive_text()
                    if raw == '{"type":"ping"}' or '"ping"' in raw:
                        await websocket.send_text('{"type":"pong"}')
                        await r.sadd("agent:online", agent.id)

        tasks = [asyncio.create_task(t()) for t in (pump, recheck, receive)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[2] not in done:  # the session ended under an open socket
                log.info("console.ws_closed", agent=agent.id, reason="session_ended")
                with contextlib.suppress(Exception):
                    await websocket.close(code=4401)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            with contextlib.suppress(Exception):
                await ps.aclose()
            await r.srem("agent:online", agent.id)

    from handoff.care import care_routes  # VIP managers and callbacks (#21)

    care_routes(router, svc, current, run, body, page)
    return router


def _titles(item: dict[str, Any]) -> dict[str, str]:
    """A canned answer's title per interface language: `title: {en: …, zh: …}` (or one string)."""
    t = item.get("title")
    if isinstance(t, dict):
        return {str(k): str(v) for k, v in t.items() if v}
    return {"en": str(t or item.get("key", ""))}
