"""The ticket page for users: `/ticket#<token>` — no login, a signed link per ticket.

A link names one ticket, its generation and its expiry, signed with HMAC-SHA256 under a key kept
in Redis (made on first use). Revoking a ticket's links bumps its generation: every older link
then says "revoked"; a link past its expiry says "expired"; anything else that does not verify
says "invalid" — and no answer ever shows another ticket. The token travels in the URL fragment
(never sent to a server, so never in a proxy's log) and reaches the API in a header.

The page shows the ticket's status, the expected reply time and the conversation (the user's
messages and the replies; never internal notes), and takes a message or a file that joins the
same ticket: the agent sees it in the console like any other message of the user.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select

from bot.config import Settings
from bot.files import (
    DEFAULT_ATTACHMENT_TYPES,
    attachment_refusal,
    is_text,
    read_inside,
    redact_text_file,
    safe_filename,
    write_atomic,
)
from bot.httpbody import BodyTooLarge, read_capped
from bot.logs import get_logger
from bot.redact import redact
from bot.sniff import matches_type
from handoff.console import CodedErrors
from handoff.models import Agent, Ticket, TicketMessage
from handoff.service import NotFound, TicketService, iso

log = get_logger("switchboard.selfservice")

STATIC = Path(__file__).resolve().parent / "static"
KEY = "selfservice:key"
TOKEN_HEADER = "X-Ticket-Token"
PAGE_CHANNEL = "ticket_page"  # the channel name of what users add on the page (and of its file store)
_TOKEN_RE = re.compile(r"^(SB-\d{6,})\.(\d{1,9})\.(\d{1,12})\.([A-Za-z0-9_-]{20,64})$")
MAX_TEXT = 4000

LINK_LINE = {
    "en": "Follow your ticket, add details or files here: {url}",
    "zh": "查看工单进度、补充信息或上传文件：{url}",
}
LINK_ONLY = {
    "en": "Your ticket number is {ticket}. Follow it, add details or files here: {url}",
    "zh": "您的工单号为 {ticket}。查看进度、补充信息或上传文件：{url}",
}


class LinkError(Exception):
    """A link that does not open a ticket: `reason` is expired, revoked or invalid."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class TicketLinks:
    """Issue, check and revoke ticket page links."""

    def __init__(self, r: aioredis.Redis, public_url: str | None, ttl_s: int) -> None:
        self.r = r
        self.public_url = public_url.rstrip("/") if public_url else None
        self.ttl_s = ttl_s
        self._key: bytes | None = None

    async def key(self) -> bytes:
        if self._key is None:
            await self.r.set(KEY, secrets.token_hex(32), nx=True)
            k = await self.r.get(KEY)
            if k is None:
                raise RuntimeError("the link key vanished from Redis as it was made")
            self._key = k.encode() if isinstance(k, str) else bytes(k)
        return self._key

    async def _generation(self, number: str) -> int:
        return int(await self.r.get(f"selfservice:gen:{number}") or 0)

    def _sign(self, key: bytes, body: str) -> str:
        return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())

    async def token(self, number: str, now: float | None = None, ttl_s: int | None = None) -> str:
        exp = int((now or time.time()) + (self.ttl_s if ttl_s is None else ttl_s))
        body = f"{number}.{await self._generation(number)}.{exp}"
        return f"{body}.{self._sign(await self.key(), body)}"

    async def url(self, number: str) -> str | None:
        """The page link for a ticket, or None when no public URL is configured."""
        if not self.public_url:
            return None
        return f"{self.public_url}/ticket#{await self.token(number)}"

    async def check(self, token: str, now: float | None = None) -> str:
        """The ticket number a token opens; LinkError otherwise."""
        m = _TOKEN_RE.match(token or "")
        if not m:
            raise LinkError("invalid")
        number, gen, exp, sig = m.groups()
        want = self._sign(await self.key(), f"{number}.{gen}.{exp}")
        if not hmac.compare_digest(want, sig):
            raise LinkError("invalid")
        if int(gen) != await self._generation(number):
            raise LinkError("revoked")
        if int(exp) < (now or time.time()):
            raise LinkError("expired")
        return number

    async def revoke(self, number: str) -> None:
        """Every link issued so far for this ticket stops working (new ones can be issued)."""
        await self.r.incr(f"selfservice:gen:{number}")
        log.info("selfservice.links_revoked", ticket=number)


class PageFiles:
    """Files users add on the ticket page; the console reads them back through
    `fetch_attachment` like a channel's (messages carry the channel name PAGE_CHANNEL)."""

    name = PAGE_CHANNEL

    def __init__(self, root: Path) -> None:
        self.root = root

    async def store(self, number: str, name: str, data: bytes) -> str:
        rel = f"{number}/{uuid.uuid4().hex[:16]}-{name}"
        await asyncio.to_thread(write_atomic, self.root / rel, data)
        return rel

    async def fetch_attachment(self, ref: str) -> bytes:
        return await asyncio.to_thread(read_inside, self.root, ref)

    async def remove(self, ref: str) -> None:
        """A stored file that joined no message (its ticket closed meanwhile) is not kept."""
        path = (self.root / ref).resolve()
        if self.root.resolve() in path.parents:
            await asyncio.to_thread(path.unlink, missing_ok=True)


class TicketPage:
    """What the page reads and writes, by ticket number (the caller checked the link)."""

    def __init__(self, svc: TicketService, files: PageFiles) -> None:
        self.svc = svc
        self.files = files

    async def view(self, number: str) -> dict[str, Any]:
        async with self.svc.sm() as s:
            t = (await s.execute(select(Ticket).where(Ticket.number == number))).scalar_one()
            msgs = (await s.execute(select(TicketMessage).where(TicketMessage.ticket_id == t.id,
                                                               TicketMessage.direction != "note")
                                    .order_by(TicketMessage.created_at, TicketMessage.id))).scalars()
            waiting = t.status in ("new", "open") and t.first_responded_at is None
            return {
                "number": t.number,
                "status": t.status,
                "lang": t.lang if t.lang in ("zh", "en") else "en",
                "created_at": iso(t.created_at),
                # The promise made in the acknowledgement: the first reply by this time.
                "reply_due": iso(t.first_response_due) if waiting else None,
                "replied": t.first_responded_at is not None,
                "can_write": t.status != "closed",
                "messages": [
                    {"from": "user" if m.direction == "in" else ("agent" if m.author_type == "agent" else "bot"),
                     "author": m.author.name if m.author_type == "agent" and m.author else None,
                     "text": m.body, "at": iso(m.created_at),
                     "files": [{"name": str(a.get("name") or "file")} for a in (m.attachments or [])]}
                    for m in msgs
                ],
            }

    async def add(self, number: str, text: str, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The user's message (redacted) joins the ticket; a resolved ticket reopens."""
        body = redact(text.strip()).text if text.strip() else ""
        async with self.svc.sm() as s, s.begin():
            q = select(Ticket).where(Ticket.number == number)
            if s.get_bind().dialect.name == "postgresql":
                q = q.with_for_update()
            t = (await s.execute(q)).scalar_one()
            if t.status == "closed":
                raise PermissionError("closed")
            now = self.svc.clock()
            if t.status == "pending_user":
                self.svc._transition(s, t, "open", "user", "user_replied")
            elif t.status == "resolved":
                self.svc._transition(s, t, "open", "user", "reopened")
            t.updated_at = now
            t.waiting_since = t.waiting_since or now
            m = TicketMessage(ticket_id=t.id, direction="in", author_type="user", channel=PAGE_CHANNEL, body=body,
                              attachments=list(attachments or []), created_at=now)
            s.add(m)
            self.svc._audit(s, t, "user", "page_message", files=len(attachments or []))
            await s.flush()
            await s.refresh(m, ["author"])
            await s.refresh(t, ["contact", "assignee"])
            await self.svc._announce(s, t)
            await self.svc.publish({"type": "message", "message": self.svc.message_json(m, t.number)})
            log.info("selfservice.message", ticket=number, files=len(attachments or []))
            return {"ok": True, "at": iso(m.created_at)}

    async def writable(self, number: str) -> bool:
        """Whether the page may still add to this ticket (a closed ticket's link only reads)."""
        async with self.svc.sm() as s:
            status = (await s.execute(select(Ticket.status).where(Ticket.number == number))).scalar_one_or_none()
            return status is not None and status != "closed"

    async def file_count(self, number: str) -> int:
        async with self.svc.sm() as s:
            t = (await s.execute(select(Ticket).where(Ticket.number == number))).scalar_one()
            rows = (await s.execute(select(TicketMessage.attachments).where(TicketMessage.ticket_id == t.id,
                                                                          TicketMessage.channel == PAGE_CHANNEL)))
            return sum(len(a or []) for (a,) in rows)


ERRORS = {
    "expired": {"en": "This link has expired. Ask us for a new one in the chat or by e-mail.",
                "zh": "此链接已过期。请在对话或邮件中向我们索取新的链接。"},
    "revoked": {"en": "This link is no longer valid (it was revoked). Ask us for a new one.",
                "zh": "此链接已被撤销，不再有效。请向我们索取新的链接。"},
    "invalid": {"en": "This link is not valid. Check that you copied all of it.",
                "zh": "此链接无效，请确认复制了完整的链接。"},
    "closed": {"en": "This ticket is closed. Write to us again to open a new one.",
               "zh": "此工单已关闭。如需帮助请重新联系我们。"},
    "empty": {"en": "Write a message or choose a file.", "zh": "请输入内容或选择文件。"},
    "too_long": {"en": "The message is too long.", "zh": "内容过长。"},
    "file_type": {"en": "This kind of file cannot be added. Screenshots (PNG, JPEG), PDF and text files can.",
                  "zh": "不支持此类文件。可上传截图（PNG、JPEG）、PDF 和文本文件。"},
    "file_too_large": {"en": "The file is too large.", "zh": "文件过大。"},
    "too_many_files": {"en": "This ticket has as many files as it can take.", "zh": "此工单的文件数量已达上限。"},
    "rate_limited": {"en": "Too many messages; wait a minute.", "zh": "发送过于频繁，请稍候再试。"},
}


def selfservice_router(settings: Settings, svc: TicketService, r: aioredis.Redis, links: TicketLinks,
                       files: PageFiles) -> APIRouter:
    cfg = settings.selfservice
    page = TicketPage(svc, files)
    router = APIRouter(prefix="/ticket", route_class=CodedErrors)  # its baseline headers on every answer
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
               "X-Frame-Options": "DENY"}

    def lang_of(request: Request) -> str:
        return "zh" if request.query_params.get("lang") == "zh" else "en"

    def refuse(request: Request, status: int, code: str) -> JSONResponse:
        return JSONResponse({"error": code, "message": ERRORS[code][lang_of(request)]}, status, headers=headers)

    async def opened(request: Request) -> str | JSONResponse:
        try:
            return await links.check(request.headers.get(TOKEN_HEADER, ""))
        except LinkError as e:
            return refuse(request, 410 if e.reason in ("expired", "revoked") else 403, e.reason)

    async def limited(number: str) -> bool:
        key = f"rl:ticketpage:{number}:{int(time.time() // 60)}"
        n = await r.incr(key)
        if n == 1:
            await r.expire(key, 120)
        return n > cfg.rate_per_minute

    @router.get("", include_in_schema=False)
    async def ticket_page() -> HTMLResponse:
        return HTMLResponse((STATIC / "ticket.html").read_text(), headers={
            **headers, "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"})

    @router.get("/static/ticket.js", include_in_schema=False)
    async def ticket_js() -> Response:
        return Response((STATIC / "ticket.js").read_bytes(), media_type="application/javascript",
                        headers={"Cache-Control": "no-cache"})

    @router.get("/api", include_in_schema=False)
    async def view(request: Request) -> Response:
        number = await opened(request)
        if isinstance(number, JSONResponse):
            return number
        return JSONResponse(await page.view(number), headers=headers)

    @router.post("/api/message", include_in_schema=False)
    async def message(request: Request) -> Response:
        number = await opened(request)
        if isinstance(number, JSONResponse):
            return number
        try:
            body = await read_capped(request, 64 * 1024)
            text = str(orjson.loads(body or b"{}").get("text") or "")
        except (BodyTooLarge, ValueError, AttributeError):
            return refuse(request, 400, "too_long")
        if not text.strip():
            return refuse(request, 400, "empty")
        if len(text) > MAX_TEXT:
            return refuse(request, 400, "too_long")
        if await limited(number):
            return refuse(request, 429, "rate_limited")
        try:
            return JSONResponse(await page.add(number, text), headers=headers)
        except PermissionError:
            return refuse(request, 409, "closed")

    @router.post("/api/upload", include_in_schema=False)
    async def upload(request: Request) -> Response:
        """One file as the body (`?name=`), its type in Content-Type; its first bytes must match it."""
        number = await opened(request)
        if isinstance(number, JSONResponse):
            return number
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        name = safe_filename(request.query_params.get("name") or "file")
        if attachment_refusal(ctype, name, 0, allowed=DEFAULT_ATTACHMENT_TYPES, max_bytes=1) == "type":
            return refuse(request, 415, "file_type")
        if not await page.writable(number):
            # Refused before the body is read: a closed ticket's link must not keep filling the disk.
            return refuse(request, 409, "closed")
        try:
            data = await read_capped(request, cfg.max_upload_bytes)
        except BodyTooLarge:
            return refuse(request, 413, "file_too_large")
        if not data:
            return refuse(request, 400, "empty")
        if not matches_type(data, ctype):
            log.warning("selfservice.upload_refused", ticket=number, reason="content_mismatch", content_type=ctype)
            return refuse(request, 415, "file_type")
        if await limited(number):
            return refuse(request, 429, "rate_limited")
        if await page.file_count(number) >= cfg.max_files_per_ticket:
            return refuse(request, 413, "too_many_files")
        if is_text(ctype, name):
            data, _ = await asyncio.to_thread(redact_text_file, data)
        ref = await files.store(number, name, data)
        att = {"name": name, "content_type": ctype, "size": len(data), "ref": ref}
        try:
            return JSONResponse(await page.add(number, "", [att]), headers=headers)
        except PermissionError:
            await files.remove(ref)  # closed while the file was read: it joins nothing, so it is not kept
            return refuse(request, 409, "closed")

    return router


def ticket_page_parts(settings: Settings, svc: TicketService, r: aioredis.Redis) -> tuple[TicketLinks, PageFiles]:
    """The links and the file store, wired once per process (runtime)."""
    links = TicketLinks(r, settings.web.public_url, settings.selfservice.link_days * 86400)
    files = PageFiles(settings.path(settings.data_dir) / "ticket_page")
    return links, files


async def _existing(svc: TicketService, number: str) -> str:
    number = number.strip().upper()
    async with svc.sm() as s:
        if (await s.execute(select(Ticket.id).where(Ticket.number == number))).scalar_one_or_none() is None:
            raise NotFound(f"ticket {number} not found", "ticket_not_found", ticket=number)
    return number


async def cli_link(svc: TicketService, number: str) -> str:
    """`switchboard tickets link`: a fresh link (needs web.public_url)."""
    links, _ = ticket_page_parts(svc.settings, svc, svc.r)
    url = await links.url(await _existing(svc, number))
    if url is None:
        raise ValueError("set web.public_url (the address users reach this server at) to issue links")
    return url


async def agent_link(svc: TicketService, number: str, agent: Agent) -> str:
    """A fresh link an agent asks for, to give a user who lost theirs. Whoever holds it reads the
    ticket and writes to it as its user, so issuing one is an action on the ticket like a reply:
    on an unassigned ticket or the agent's own, or by a supervisor; and it is in the audit log."""
    number = number.strip().upper()
    async with svc.sm() as s, s.begin():
        t = await svc._get(s, number)
        svc._may_act(t, agent)
        links, _ = ticket_page_parts(svc.settings, svc, svc.r)
        url = await links.url(number)
        if url is None:
            raise ValueError("set web.public_url (the address users reach this server at) to issue links")
        svc._audit(s, t, agent.name, "page_link_issued")
    return url


async def cli_revoke(svc: TicketService, number: str) -> None:
    """`switchboard tickets revoke-links`."""
    links, _ = ticket_page_parts(svc.settings, svc, svc.r)
    await links.revoke(await _existing(svc, number))
