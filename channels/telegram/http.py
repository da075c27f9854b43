"""python-telegram-bot's HTTP layer on aiohttp (`telegram.request.BaseRequest`).

PTB stays the API layer (methods, types, the mapping of Bot API answers onto `RetryAfter`,
`Forbidden`, `BadRequest`, `ChatMigrated`, …, which happens in `BaseRequest` above `do_request`);
only the transport changes. PTB's default, `HTTPXRequest`, goes through httpx → httpcore → anyio
and cost about 1.5 ms of CPU per Bot API call here; aiohttp (already a product dependency: the
NLU client, the X channel) with a keep-alive pool does the same call for a fraction of that
(measured in bench/README.md, "Where the Telegram webhook's time goes").

Same contract as `HTTPXRequest`:
- parameters go as a JSON body (one of the four encodings the Bot API takes; PTB's own transport
  form-encodes them, JSON is cheaper to make), multipart when a file is attached; a
  `User-Agent` naming PTB;
- timeouts per call (PTB's `read_timeout` etc., or this object's defaults): a connection not
  free within `pool_timeout` → `TimedOut("Pool timeout: …")` (nothing was sent); no connection
  within `connect_timeout`, no byte of the answer within `read_timeout`, or the whole call over
  connect + write + read → `TimedOut`; any other transport failure → `NetworkError` (both are
  `TelegramError`s the adapter treats as transient);
- a proxy from the environment (`HTTPS_PROXY`, `NO_PROXY`, …) like httpx's default, certificates checked
  against certifi's bundle like httpx's default.

A call without files and without a proxy (nearly all: `sendMessage`, `sendChatAction`,
`answerCallbackQuery`, `getMe`, …) goes over the product's own keep-alive HTTP/1.1 connections
(`intents/http1.py`, the NLU client's): a reply's `sendMessage` costs half the CPU it cost
through aiohttp (bench/README.md, "The Bot API call"). Uploads and proxied calls stay on
aiohttp. Same timeouts, same errors, same pool bound either way (the exchange on a connection is
bounded by write + read timeouts).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import JSONDict, ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

from intents.http1 import HTTPError, Origin

_JSON = {"Content-Type": "application/json"}


def _ssl_context() -> ssl.SSLContext:
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with httpx, a PTB dependency
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


class AiohttpRequest(BaseRequest):
    """A PTB request object over one `aiohttp.ClientSession` with a keep-alive pool of
    `connection_pool_size` connections. Create it anywhere; it opens its session in `initialize`
    (called by `Bot.initialize`) or on first use, inside the running event loop."""

    def __init__(self, connection_pool_size: int = 16, *, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0, media_write_timeout: float | None = 20.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool_size = connection_pool_size
        self._read, self._write, self._connect, self._pool = read_timeout, write_timeout, connect_timeout, pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._timeouts: dict[tuple[float | None, float | None, float | None], aiohttp.ClientTimeout] = {}
        self._headers = {"User-Agent": self.USER_AGENT}
        self._json_headers = {**self._headers, **_JSON}
        self._proxies: dict[str, tuple[Any, Any]] = {}
        self._ssl = ssl_context
        # Per Bot API URL: its origin's connections and the request heads with and without a body.
        self._direct: dict[str, tuple[Origin, bytes, bytes]] = {}
        self._origins: dict[str, Origin] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            if self._ssl is None:
                self._ssl = _ssl_context()
            connector = aiohttp.TCPConnector(limit=self._pool_size, ssl=self._ssl)
            # Not trust_env=True: that looks up .netrc and the proxy variables in a thread on every
            # request (two thread hops per call); the proxy is looked up once per host instead.
            self._session = aiohttp.ClientSession(connector=connector)
            self._slots = asyncio.Semaphore(self._pool_size)

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        for origin in self._origins.values():
            origin.close()
        self._origins.clear()
        self._direct.clear()

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            # Invalid UTF-8 or not JSON: PTB's own parser decodes with errors="replace", and
            # raises TelegramError("Invalid server response") for what is not JSON at all.
            return BaseRequest.parse_json_payload(payload)
        if not isinstance(data, dict):
            return BaseRequest.parse_json_payload(b"not a JSON object")
        return data

    def _proxy(self, url: str) -> tuple[Any, Any]:
        """The proxy for `url`'s scheme and host from the environment (HTTPS_PROXY, NO_PROXY, …),
        as httpx would pick it; looked up once per host."""
        scheme, _, rest = url.partition("://")
        origin = f"{scheme}://{rest.split('/', 1)[0]}"
        found = self._proxies.get(origin)
        if found is None:
            try:
                found = get_env_proxy_for_url(URL(origin))
            except LookupError:
                found = (None, None)
            self._proxies[origin] = found
        return found

    def _timeout(self, read: float | None, write: float | None, connect: float | None) -> aiohttp.ClientTimeout:
        key = (read, write, connect)
        t = self._timeouts.get(key)
        if t is None:
            parts = (read, write, connect)
            total = None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
            t = aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)
            if len(self._timeouts) < 64:  # a handful of distinct values in practice
                self._timeouts[key] = t
        return t

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            await self.initialize()
        assert self._session is not None and self._slots is not None
        files = request_data.multipart_data if request_data is not None and request_data.contains_files else None
        read = self._read if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = self._pool if isinstance(pool_timeout, DefaultValue) else pool_timeout
        if isinstance(write_timeout, DefaultValue):
            write = self._media_write if files else self._write
        else:
            write = write_timeout
        body: Any = None
        headers = self._headers
        if files:
            assert request_data is not None
            body = aiohttp.FormData(quote_fields=False)
            for name, value in request_data.json_parameters.items():
                body.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                body.add_field(name, content, filename=filename, content_type=mimetype)
        elif request_data is not None:
            params = request_data.parameters  # nested objects are plain dicts/lists already
            if params:
                body = orjson.dumps(params)
                headers = self._json_headers
        try:
            if self._slots.locked():  # all connections busy: wait at most pool_timeout
                async with asyncio.timeout(pool):
                    await self._slots.acquire()
            else:
                await self._slots.acquire()
        except TimeoutError:
            raise TimedOut("Pool timeout: All connections in the connection pool are occupied. Request was *not* "
                           "sent to Telegram. Consider adjusting the connection pool size or the pool "
                           "timeout.") from None
        try:
            proxy, proxy_auth = self._proxy(url)
            if self._direct_ok(proxy, files, method):
                return await self._post_direct(url, body, connect, write, read)
            async with self._session.request(method, url, data=body, headers=headers, proxy=proxy,
                                             proxy_auth=proxy_auth, timeout=self._timeout(read, write, connect)) as res:
                return res.status, await res.read()
        except TimeoutError as err:  # aiohttp's ServerTimeoutError / ConnectionTimeoutError included
            raise TimedOut(f"Timed out: {err}" if str(err) else "Timed out") from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
        except (OSError, HTTPError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
            raise NetworkError(f"{type(err).__name__}: {err}") from err
        finally:
            self._slots.release()

    @staticmethod
    def _direct_ok(proxy: Any, files: Any, method: str) -> bool:
        """Whether a call goes over our own keep-alive connections (no proxy, no file, a POST)."""
        return proxy is None and not files and method == "POST"

    async def _post_direct(self, url: str, body: bytes | None, connect: float | None, write: float | None,
                           read: float | None) -> tuple[int, bytes]:
        """A `POST` over the keep-alive connections of `url`'s origin. The exchange (writing the
        request, reading the whole answer) is bounded by write + read timeouts, opening a
        connection by the connect timeout."""
        direct = self._direct.get(url)
        if direct is None:
            scheme, _, rest = url.partition("://")
            netloc, _, path = rest.partition("/")
            origin_url = f"{scheme}://{netloc}"
            origin = self._origins.get(origin_url)
            if origin is None:
                origin = self._origins[origin_url] = Origin(origin_url, ssl_context=self._ssl)
            direct = (origin, origin.head("/" + path, self._headers), origin.head("/" + path, self._headers, json=False))
            if len(self._direct) < 256:  # one per Bot API method in practice
                self._direct[url] = direct
        origin, json_head, empty_head = direct
        exchange = None if write is None or read is None else write + read
        if body is None:
            return await origin.post(empty_head, b"", connect_s=connect, read_s=exchange)
        return await origin.post(json_head, body, connect_s=connect, read_s=exchange)
