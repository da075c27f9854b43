"""Persistent HTTP/1.1 connections to one origin, for the product's hottest JSON `POST`s: the NLU
client's `/model/parse` and the Telegram channel's Bot API calls.

Why our own and not aiohttp for these: a general client spends most of its CPU on what these
requests never need (cookies, redirects, proxies, multipart, tracing, a response object with
lazily parsed headers). Measured here, aiohttp took 244 µs of CPU per parse request, this 42 µs;
for a Bot API `sendMessage` see bench/README.md. Everything else (proxies, files, GETs) keeps
using aiohttp. This speaks only what those servers answer: a status line, headers, and a body
with Content-Length or chunked encoding (we send no `Accept-Encoding`, so nothing is compressed).

Lives in `intents/`, the bottom layer, because the NLU client needs it and `intents/` may import
nothing above it; channels may import downward.

A connection that errors or asks to close is dropped. A connection idle for longer than
`max_idle_s` is closed rather than reused (servers close idle keep-alive connections on their own
schedule), and one whose close has already arrived is dropped unused. A request on a reused
connection that the server closed as it was sent — the write fails, or the connection ends
before one byte of the answer — is sent once more on a new connection (the keep-alive race: the
server closed it without reading the request); a connection lost after an answer began is an
error, never a second request.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


class HTTPError(Exception):
    """A malformed or unexpected HTTP response."""


class _Stale(Exception):
    """A reused connection was closed by the server before it answered."""


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Origin:
    """Keep-alive connections to one `http(s)://host[:port]`. `head(path, headers)` builds the
    fixed part of a request once (callers keep it); `post(head, body)` sends it.

    No limit on connections here: callers bound their own concurrency (the NLU client's
    `max_in_flight`, the Telegram transport's pool), and at most that many stay idle."""

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None = None, max_idle_s: float = 30.0) -> None:
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"URL must be http(s)://host[:port]: {url!r}")
        self.host = u.hostname
        self.tls = u.scheme == "https"
        self.port = u.port or (443 if self.tls else 80)
        self.netloc = u.netloc
        self.base_path = u.path.rstrip("/")
        self.ssl: ssl.SSLContext | None = None
        if self.tls:
            self.ssl = ssl_context or ssl.create_default_context()
        self.max_idle_s = max_idle_s
        self._idle: list[tuple[_Conn, float]] = []

    def head(self, path: str, headers: dict[str, str] | None = None, *, json: bool = True) -> bytes:
        """The request line and headers of a `POST` to `path` (under the origin's own path), up to
        the Content-Length value, which `post` appends."""
        lines = [f"POST {self.base_path}{path} HTTP/1.1", f"Host: {self.netloc}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if json:
            lines.append("Content-Type: application/json")
        lines.append("Connection: keep-alive")
        return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    async def post(self, head: bytes, body: bytes, *, connect_s: float | None = None,
                   read_s: float | None = None) -> tuple[int, bytes]:
        """Send one request; returns (status, body). `connect_s` bounds opening a connection,
        `read_s` the exchange on it (write and the whole answer). Raises TimeoutError, OSError
        (ConnectionError, ssl.SSLError), asyncio.IncompleteReadError/LimitOverrunError or HTTPError."""
        req = head + str(len(body)).encode() + b"\r\n\r\n" + body
        now = time.monotonic()
        while self._idle:
            rw, since = self._idle.pop()
            if now - since > self.max_idle_s or rw[0].at_eof() or rw[1].is_closing():
                self._drop(rw)  # too old, or the server's close already arrived: not worth a try
                continue
            try:
                return await _within(read_s, self._exchange(rw, req, reused=True))
            except _Stale:
                continue  # try the next idle one, or a new connection
        rw = await _within(connect_s, self._open())
        return await _within(read_s, self._exchange(rw, req))

    async def _open(self) -> _Conn:
        if self.ssl is None:
            return await asyncio.open_connection(self.host, self.port)
        return await asyncio.open_connection(self.host, self.port, ssl=self.ssl, server_hostname=self.host)

    async def _exchange(self, rw: _Conn, req: bytes, *, reused: bool = False) -> tuple[int, bytes]:
        reader, writer = rw
        try:
            try:
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                if reused and not e.partial:
                    raise _Stale from None
                raise
            except ConnectionError:
                if reused:
                    raise _Stale from None
                raise
            status, length, chunked, close = parse_head(head)
            if chunked:
                body = await read_chunked(reader)
            elif length is not None:
                body = await reader.readexactly(length)
            else:
                raise HTTPError("response without Content-Length")
        except BaseException:
            self._drop(rw)
            raise
        if close:
            self._drop(rw)
        else:
            self._idle.append((rw, time.monotonic()))
        return status, body

    @staticmethod
    def _drop(rw: _Conn) -> None:
        rw[1].close()

    def close(self) -> None:
        while self._idle:
            self._drop(self._idle.pop()[0])


async def _within(seconds: float | None, aw: Awaitable[T]) -> T:
    """`aw` under a deadline of `seconds`; None: none of its own (the NLU client puts one around
    the whole call), without the cost of a timeout context per request."""
    if seconds is None:
        return await aw
    async with asyncio.timeout(seconds):
        return await aw


def parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """(status, Content-Length or None, chunked, the server closes the connection) of a
    response head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HTTPError(f"bad status line {lines[0][:80]!r}")
    length: int | None = None
    chunked = False
    close = parts[0] == b"HTTP/1.0"
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip().lower()
        value = value.strip()
        if name == b"content-length":
            if not value.isdigit():
                raise HTTPError("bad Content-Length")
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = value.lower() == b"close"
    return int(parts[1]), length, chunked, close


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise HTTPError("bad chunk size") from None
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers expected; the empty line ends the body
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)
