"""HTTP client for Rasa NLU servers (`POST /model/parse`).

Parses go over keep-alive HTTP/1.1 connections of our own (`intents/http1.py`), `/status` probes
over aiohttp. Each request goes to the healthy server with the fewest requests in flight, and at
most `max_in_flight` wait at each server (Rasa parses one message at a time, so more only queue
inside Rasa, where they cost it CPU and hide the queueing from our metrics). A server that fails
is skipped until a background probe sees it answer again. When none answers, `NLUUnavailable` is
raised so callers leave the message in the queue — never guess. Parses are cached by normalized
(already redacted) text and model version, because FAQ traffic repeats.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bot.errors import NLUUnavailable
from intents.http1 import HTTPError, Origin

_WS = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class NLUResult:
    intent: str
    confidence: float
    ranking: tuple[tuple[str, float], ...] = ()
    entities: tuple[tuple[str, str], ...] = ()
    model_version: str | None = None
    latency_s: float = 0.0
    cached: bool = False

    def entity(self, name: str) -> str | None:
        for k, v in self.entities:
            if k == name:
                return v
        return None


def normalize_for_cache(text: str) -> str:
    return _WS.sub(" ", text.strip().lower())


@dataclass
class _Server:
    url: str
    healthy: bool = True
    model_version: str | None = None
    failures: int = 0
    down_since: float = 0.0
    inflight: int = 0
    http: Origin | None = None
    head: bytes = b""


@dataclass
class NLUClient:
    urls: list[str]
    timeout_s: float = 5.0
    backoff_max_s: float = 10.0
    cache_size: int = 10_000
    max_in_flight: int = 4
    _servers: list[_Server] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None
    _rr: int = 0
    _cache: OrderedDict[tuple[str, str | None], NLUResult] = field(default_factory=OrderedDict)
    _available: asyncio.Event | None = None
    _probe_task: asyncio.Task[None] | None = None
    # Requests waiting for room at a server, first come first served: a freed slot wakes one.
    _waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    hits: int = 0
    misses: int = 0

    def __post_init__(self) -> None:
        self._servers = [_Server(u.rstrip("/")) for u in self.urls]
        for srv in self._servers:
            srv.http = Origin(srv.url)
            srv.head = srv.http.head("/model/parse")

    async def __aenter__(self) -> NLUClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._session is None:
            conn = aiohttp.TCPConnector(limit=256, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=conn,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s, connect=min(2.0, self.timeout_s)),
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )
            self._available = asyncio.Event()
            self._available.set()

    async def close(self) -> None:
        if self._probe_task:
            self._probe_task.cancel()
            try:
                await self._probe_task
            except (asyncio.CancelledError, Exception):
                pass
            self._probe_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        for srv in self._servers:
            if srv.http is not None:
                srv.http.close()

    @property
    def model_version(self) -> str | None:
        for s in self._servers:
            if s.healthy and s.model_version:
                return s.model_version
        return None

    async def status(self, url: str | None = None) -> dict[str, Any]:
        """GET /status of one server (raises NLUUnavailable)."""
        assert self._session is not None, "NLUClient.start() first"
        url = (url or self._servers[0].url).rstrip("/")
        try:
            async with self._session.get(f"{url}/status") as r:
                if r.status != 200:
                    raise NLUUnavailable(f"{url}/status answered HTTP {r.status}")
                return orjson.loads(await r.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise NLUUnavailable(f"{url} unreachable: {type(e).__name__}") from None

    async def refresh_versions(self) -> None:
        for s in self._servers:
            try:
                st = await self.status(s.url)
                s.model_version = _version_of(st)
                self._mark_up(s)
            except NLUUnavailable:
                self._mark_down(s)

    async def wait_available(self) -> None:
        """Block until some server answers again (a single shared probe with back-off)."""
        assert self._available is not None
        await self._available.wait()

    def _mark_down(self, s: _Server) -> None:
        if s.healthy:
            s.healthy = False
            s.down_since = time.monotonic()
        s.failures += 1
        if not any(x.healthy for x in self._servers) and self._available is not None:
            self._available.clear()
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.get_running_loop().create_task(self._probe())

    def _mark_up(self, s: _Server) -> None:
        s.healthy = True
        s.failures = 0
        if self._available is not None:
            self._available.set()

    async def _probe(self) -> None:
        delay = 0.2
        while any(not s.healthy for s in self._servers):
            await asyncio.sleep(delay * (0.5 + random.random()))
            for s in self._servers:
                if s.healthy:
                    continue
                try:
                    st = await self.status(s.url)
                except NLUUnavailable:
                    continue
                if st.get("model_file") or st.get("model_id") or st.get("fingerprint"):
                    s.model_version = _version_of(st)
                    self._mark_up(s)
            delay = min(delay * 2, self.backoff_max_s)

    def _pick(self) -> list[_Server]:
        """Healthy servers, least loaded first (round-robin among equals)."""
        n = len(self._servers)
        if n == 1:
            return self._servers if self._servers[0].healthy else []
        self._rr = (self._rr + 1) % n
        order = [self._servers[(self._rr + i) % n] for i in range(n)]
        return sorted((s for s in order if s.healthy), key=lambda s: s.inflight)

    async def _slot(self) -> list[_Server]:
        """Wait until the least loaded healthy server has room; returns the candidates. Each
        freed slot wakes one waiter (not all of them: with a router's 32 messages in flight and
        4 at Rasa, waking every waiter cost 28 task switches per parse)."""
        while True:
            candidates = self._pick()
            if not candidates or candidates[0].inflight < self.max_in_flight:
                return candidates
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: the slot goes to the next one
                raise

    def _wake_one(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def _release(self, s: _Server) -> None:
        s.inflight -= 1
        self._wake_one()

    async def parse(self, text: str) -> NLUResult:
        """Classify `text` (already redacted). Raises NLUUnavailable when no server answers."""
        assert self._session is not None, "NLUClient.start() first"
        key = (normalize_for_cache(text), self.model_version)
        if self.cache_size:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return NLUResult(
                    hit.intent, hit.confidence, hit.ranking, hit.entities, hit.model_version, 0.0, True
                )
        self.misses += 1
        # The NLU time includes waiting for a free slot at a server: that is Rasa's capacity.
        t0 = time.perf_counter()
        candidates = await self._slot()
        if not candidates:
            raise NLUUnavailable("no NLU server is reachable")
        body = orjson.dumps({"text": text})
        last = "no server tried"
        for s in candidates:
            s.inflight += 1
            try:
                assert s.http is not None
                async with asyncio.timeout(self.timeout_s):
                    status, raw = await s.http.post(s.head, body)
                if status != 200:
                    last = f"{s.url} answered HTTP {status}"
                    self._mark_down(s)
                    continue
                data = orjson.loads(raw)
            except (HTTPError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError,
                    orjson.JSONDecodeError) as e:
                last = f"{s.url}: {type(e).__name__}"
                self._mark_down(s)
                continue
            finally:
                self._release(s)
            res = _result(data, s.model_version, time.perf_counter() - t0)
            if self.cache_size:
                self._cache[(key[0], s.model_version)] = res
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return res
        raise NLUUnavailable(last)


def _version_of(status: dict[str, Any]) -> str | None:
    f = status.get("model_file") or status.get("model_id") or status.get("fingerprint")
    if isinstance(f, str):
        return f.rsplit("/", 1)[-1].removesuffix(".tar.gz")
    return None


def _result(data: dict[str, Any], version: str | None, latency: float) -> NLUResult:
    intent = data.get("intent") or {}
    name = intent.get("name") or "nlu_fallback"
    conf = float(intent.get("confidence") or 0.0)
    ranking = tuple(
        (str(r.get("name")), float(r.get("confidence") or 0.0)) for r in (data.get("intent_ranking") or [])[:5]
    )
    ents = tuple((str(e.get("entity")), str(e.get("value"))) for e in (data.get("entities") or []))
    return NLUResult(name, conf, ranking, ents, version, latency, False)
