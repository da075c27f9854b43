"""One IMAP session on aioimaplib: connect (TLS, STARTTLS or plain), log in, select, search by
UID, fetch without setting \\Seen, mark seen, and wait with IDLE.

Two things aioimaplib does not do that a mail intake needs, added here by subclassing its
client (`create_client` is the library's own extension point, used by its IMAP4_SSL):
- **Noticing new mail at any time.** The library drops untagged `EXISTS` responses that arrive
  while a command other than IDLE/NOOP is running, but a server reports new mail exactly there
  (Dovecot does, at the end of whichever command is running). A mail that arrives while we
  search or fetch would then wait for the next IDLE renewal. Our protocol sets `changed` on every
  `EXISTS`, whatever command it came with, and the intake searches again before it idles.
- **Noticing a dead connection.** The library does not fail pending commands when the server
  goes away, so an IDLE would wait for its full renewal time. `lost` is set when the connection
  drops or the server says BYE, and every wait here also watches it.
- **STARTTLS** (RFC 3501 §6.2.1), via `loop.start_tls` on the same protocol object.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Awaitable
from typing import Any

import aioimaplib

from bot.errors import TransientError
from bot.logs import get_logger

log = get_logger("switchboard.email")

EXISTS_RE = re.compile(rb"^\* \d+ EXISTS")
UIDVALIDITY_RE = re.compile(rb"\[UIDVALIDITY (\d+)\]")
FETCH_UID_RE = re.compile(rb"UID (\d+)")
FETCH_SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")

IMAP_ERRORS: tuple[type[BaseException], ...] = (aioimaplib.AioImapException, OSError, TimeoutError, EOFError)


class ImapError(TransientError):
    """The IMAP server refused or failed a command; the session is restarted after a back-off."""


class ImapTimeout(ImapError):
    """A command got no answer in time (the connection may still be up)."""


class _Protocol(aioimaplib.IMAP4ClientProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, conn_lost_cb: Any) -> None:
        super().__init__(loop, conn_lost_cb)
        self.changed = asyncio.Event()
        self.lost = asyncio.Event()

    def _untagged_response(self, line: bytes) -> Any:
        if EXISTS_RE.match(line):
            self.changed.set()
        elif line.startswith(b"* BYE"):
            self.lost.set()
        return super()._untagged_response(line)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        super().connection_lost(exc)


class _Client(aioimaplib.IMAP4):
    protocol: _Protocol

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _Protocol(local_loop, conn_lost_cb)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )


def _ok(resp: Any, what: str) -> Any:
    if resp.result != "OK":  # NO / BAD
        text = b" ".join(x for x in resp.lines if isinstance(x, bytes))[:200].decode("utf-8", "replace")
        raise ImapError(f"{what} failed: {resp.result} {text}")
    return resp


class ImapSession:
    """A connected, logged-in session with the mailbox selected (`open`), until `close`."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str,
        username: str,
        password: str,
        mailbox: str,
        timeout: float,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self._password = username, password
        self.mailbox = mailbox
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.client: _Client | None = None
        self.uidvalidity = 0

    def __repr__(self) -> str:  # never the password
        return f"ImapSession({self.username}@{self.host}:{self.port}/{self.mailbox})"

    @property
    def c(self) -> _Client:
        if self.client is None:
            raise ImapError("not connected")
        return self.client

    @property
    def changed(self) -> asyncio.Event:
        return self.c.protocol.changed

    @property
    def lost(self) -> asyncio.Event:
        return self.c.protocol.lost

    @property
    def supports_idle(self) -> bool:
        return self.c.has_capability("IDLE")

    async def _run(self, coro: Awaitable[Any], what: str, limit_s: float | None = None) -> Any:
        """Run one command, bounded by the timeout *and* the connection: aioimaplib leaves a
        command waiting forever when the server vanishes, and not all its commands time out."""
        task = asyncio.ensure_future(coro)
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, timeout=limit_s or self.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if task in done:
            return _ok(task.result(), what)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, *IMAP_ERRORS):
            await task
        if self.lost.is_set():
            raise ImapError(f"{what}: connection lost")
        raise ImapTimeout(f"{what}: no answer within {limit_s or self.timeout:.0f} s")

    async def open(self) -> None:
        ctx = self.ssl_context if self.security == "ssl" else None
        self.client = _Client(host=self.host, port=self.port, timeout=self.timeout, ssl_context=ctx)
        # A server that accepts but never greets (shutting down, overloaded) must not hold us for
        # the full command timeout.
        await asyncio.wait_for(self.c.wait_hello_from_server(), min(self.timeout, 10.0))
        if self.security == "starttls":
            await self._starttls()
        await self._run(self.c.protocol.login(self.username, self._password), "LOGIN")
        resp = await self._run(self.c.protocol.select(_quote_mailbox(self.mailbox)), f"SELECT {self.mailbox}")
        for line in resp.lines:
            m = UIDVALIDITY_RE.search(line) if isinstance(line, bytes) else None
            if m:
                self.uidvalidity = int(m.group(1))
        if not self.uidvalidity:
            raise ImapError("SELECT returned no UIDVALIDITY")

    async def _starttls(self) -> None:
        proto = self.c.protocol
        if "STARTTLS" not in proto.capabilities:
            raise ImapError("the server does not offer STARTTLS (imap_security: starttls)")
        await self._run(proto.execute(aioimaplib.Command("STARTTLS", proto.new_tag(), loop=proto.loop)), "STARTTLS")
        ctx = self.ssl_context or ssl.create_default_context()
        loop = asyncio.get_running_loop()
        transport = await asyncio.wait_for(
            loop.start_tls(proto.transport, proto, ctx, server_hostname=self.host), self.timeout
        )
        proto.transport = transport
        # RFC 3501: capabilities from before TLS must be discarded.
        await asyncio.wait_for(proto.capability(), self.timeout)

    async def search_after(self, last_uid: int | None) -> list[int]:
        """UIDs to take in, ascending: every UID after `last_uid`, or — with no cursor (first
        start, or the mailbox's UIDVALIDITY changed) — every unseen mail."""
        criteria = ("UNSEEN",) if last_uid is None else ("UID", f"{last_uid + 1}:*")
        resp = await self._run(self.c.protocol.search(*criteria, charset=None, by_uid=True), "UID SEARCH")
        uids: set[int] = set()
        for line in resp.lines[:-1]:
            if isinstance(line, bytes):
                uids.update(int(t) for t in line.split() if t.isdigit())
        # "n:*" also matches the highest UID when n is above it (RFC 3501 §6.4.8).
        return sorted(u for u in uids if last_uid is None or u > last_uid)

    async def sizes(self, uids: list[int]) -> dict[int, int]:
        if not uids:
            return {}
        resp = await self._run(
            self.c.protocol.fetch(",".join(map(str, uids)), "(UID RFC822.SIZE)", by_uid=True), "UID FETCH"
        )
        out: dict[int, int] = {}
        for line in resp.lines:
            if isinstance(line, bytes):
                u, s = FETCH_UID_RE.search(line), FETCH_SIZE_RE.search(line)
                if u and s:
                    out[int(u.group(1))] = int(s.group(1))
        return out

    async def fetch(self, uid: int, headers_only: bool = False, size: int = 0) -> bytes | None:
        """The raw mail (BODY.PEEK: reading does not set \\Seen); None if it vanished. A big mail
        gets more time (at least 100 kB/s assumed)."""
        part = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        limit = self.timeout + (0 if headers_only else size / 100_000)
        resp = await self._run(self.c.protocol.fetch(str(uid), f"(UID {part})", by_uid=True), "UID FETCH", limit)
        for line in resp.lines:
            if isinstance(line, bytearray):
                return bytes(line)
        return None

    async def mark_seen(self, uid: int) -> None:
        await self._run(self.c.protocol.store(str(uid), "+FLAGS.SILENT", "(\\Seen)", by_uid=True), "UID STORE")

    async def idle(self, renew_s: float, stop: asyncio.Event) -> None:
        """IDLE until new mail (`changed`), `renew_s` passed, `stop`, or a lost connection (raises)."""
        if self.changed.is_set() or stop.is_set():
            return
        idle_task = await asyncio.wait_for(self.c.idle_start(timeout=renew_s + 60), self.timeout)
        waits = [asyncio.ensure_future(e.wait()) for e in (self.changed, self.lost, stop)]
        try:
            await asyncio.wait([*waits, idle_task], timeout=renew_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if self.lost.is_set():
            raise ImapError("connection lost during IDLE")
        if not idle_task.done():
            self.c.idle_done()
        await self._run(idle_task, "IDLE")
        queue = self.c.protocol.idle_queue
        while not queue.empty():
            queue.get_nowait()

    async def wait(self, seconds: float, stop: asyncio.Event) -> None:
        """Polling mode: sleep, but wake for a stop or a lost connection (raises)."""
        waits = [asyncio.ensure_future(e.wait()) for e in (self.lost, stop)]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if self.lost.is_set():
            raise ImapError("connection lost")

    async def close(self) -> None:
        """Log out politely when the connection is healthy; always drop the transport."""
        client, self.client = self.client, None
        if client is None:
            return
        proto = client.protocol
        if proto is not None and not proto.lost.is_set() and proto.state in ("AUTH", "SELECTED"):
            with contextlib.suppress(*IMAP_ERRORS):
                if client.has_pending_idle():
                    client.idle_done()
                await asyncio.wait_for(client.logout(), 2.0)
        if proto is not None and proto.transport is not None:
            proto.transport.close()
        with contextlib.suppress(*IMAP_ERRORS, asyncio.CancelledError):
            if not client._client_task.done():
                client._client_task.cancel()
        for t in list(client.tasks) + list(getattr(proto, "tasks", ())):
            t.cancel()


def _quote_mailbox(name: str) -> str:
    """Mailbox names with spaces or quotes must be sent as a quoted string (non-ASCII names
    need modified UTF-7, which we leave to the operator: INBOX is the norm)."""
    if re.fullmatch(r"[A-Za-z0-9._/-]+", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
