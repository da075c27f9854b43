"""The load client: one process, asyncio + aiohttp (HTTP and WebSocket) + redis-py, closed loop.

Every system is driven the same way: N workers, each with one request in flight; a warm-up, then
a measured window. Throughput counts completions inside the window; latencies are those of the
requests completed inside it. CPU time of the processes under test and the router's own
histograms are read at the window's edges, so they cover exactly the same messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import orjson
import redis.asyncio as aioredis

from bench.procs import CLK_TCK, cpu_seconds
from bench.texts import Text
from bot.intake import make_sink, redacted, stamped
from bot.models import Message
from bot.queue import Queue


class TextSource(Protocol):
    def next(self) -> Text: ...


def percentile(sorted_vals: Sequence[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_vals[lo]
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


# -- router histograms (the roles' Prometheus values) ------------------------------------------------
HIST = ("switchboard_router_overhead_seconds", "switchboard_nlu_latency_seconds")


def read_metrics(source: Path | str) -> dict[str, Any]:
    """Cumulative bucket counts of the router's histograms and the cache counters: from the roles'
    multiprocess files (a directory: routers in processes of their own), or from a role's
    `/metrics` (its base URL: the web role with the router in its process, which keeps its values
    in memory, as under `switchboard up`)."""
    from prometheus_client import CollectorRegistry, Metric

    families: Iterable[Metric]
    if isinstance(source, str):
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(source + "/metrics", timeout=10) as res:  # noqa: S310 - loopback
            families = list(text_string_to_metric_families(res.read().decode()))
    else:
        from prometheus_client.multiprocess import MultiProcessCollector

        reg = CollectorRegistry()
        MultiProcessCollector(reg, path=str(source))
        families = reg.collect()
    out: dict[str, Any] = {h: {} for h in HIST}
    out["cache"] = {"hit": 0.0, "miss": 0.0}
    for fam in families:
        for s in fam.samples:
            if s.name.endswith("_bucket") and s.name[: -len("_bucket")] in HIST:
                le = float("inf") if s.labels["le"] == "+Inf" else float(s.labels["le"])
                h = out[s.name[: -len("_bucket")]]
                h[le] = h.get(le, 0.0) + s.value
            elif s.name == "switchboard_nlu_cache_total":
                out["cache"][s.labels["result"]] = out["cache"].get(s.labels["result"], 0.0) + s.value
    return out


def hist_diff(a: dict[float, float], b: dict[float, float]) -> list[tuple[float, float]]:
    """Cumulative (le, count) of the observations between two snapshots."""
    return sorted((le, b.get(le, 0.0) - a.get(le, 0.0)) for le in b)


def hist_quantile(cum: list[tuple[float, float]], q: float) -> float:
    """Quantile by linear interpolation inside the bucket (Prometheus' histogram_quantile)."""
    if not cum or cum[-1][1] <= 0:
        return float("nan")
    total = cum[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in cum:
        if c >= rank:
            if math.isinf(le):
                return prev_le  # beyond the last finite bucket: report its bound (a lower bound)
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return cum[-1][0]


def hist_share_le(cum: list[tuple[float, float]], bound: float) -> float:
    total = cum[-1][1] if cum else 0.0
    for le, c in cum:
        if abs(le - bound) < 1e-12:
            return c / total if total else float("nan")
    return float("nan")


def host_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (every process, ours or not), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


# -- measurement ------------------------------------------------------------------------------------
@dataclass
class Probe:
    """What is read at the window's edges: CPU time per process group, router metrics."""

    groups: dict[str, list[int]]
    metrics: Path | str | None = None  # where the router's values are read (`read_metrics`)

    def snap(self, *, end: bool = False) -> dict[str, Any]:
        """At a window's start the metrics are read first, at its end last: reading a role's
        /metrics costs that role CPU, which must fall outside the window."""
        m = read_metrics(self.metrics) if self.metrics and not end else None
        cpu = {g: sum(cpu_seconds(p) for p in pids) for g, pids in self.groups.items()}
        cpu["host"] = host_busy_seconds()
        t = time.perf_counter()
        if self.metrics and end:
            m = read_metrics(self.metrics)
        return {"t": t, "cpu": cpu, "m": m}


@dataclass
class Result:
    system: str
    n: int
    duration: float
    completed: int
    errors: int
    latencies_ms: list[float] = field(repr=False)
    cpu_s: dict[str, float] = field(default_factory=dict)
    overhead_cum: list[tuple[float, float]] = field(default_factory=list, repr=False)
    nlu_cum: list[tuple[float, float]] = field(default_factory=list, repr=False)
    cache: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.completed / self.duration if self.duration > 0 else 0.0

    def lat(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def cpu_ms_per_msg(self, *groups: str) -> float:
        if not self.completed:
            return float("nan")
        return 1000.0 * sum(self.cpu_s.get(g, 0.0) for g in groups) / self.completed

    def summary(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "system": self.system, "n": self.n, "window_s": round(self.duration, 3), "completed": self.completed,
            "errors": self.errors, "throughput": round(self.throughput, 2),
            "p50_ms": round(self.lat(0.5), 3), "p95_ms": round(self.lat(0.95), 3), "p99_ms": round(self.lat(0.99), 3),
            "cpu_s": {k: round(v, 3) for k, v in self.cpu_s.items()},
            "cpu_ms_per_msg": {k: round(self.cpu_ms_per_msg(k), 4) for k in self.cpu_s},
        }
        if self.overhead_cum and self.overhead_cum[-1][1] > 0:
            d["router_overhead"] = {
                "count": int(self.overhead_cum[-1][1]),
                "p50_ms": round(1000 * hist_quantile(self.overhead_cum, 0.5), 3),
                "p99_ms": round(1000 * hist_quantile(self.overhead_cum, 0.99), 3),
                "share_le_5ms": round(hist_share_le(self.overhead_cum, 0.005), 5),
                "buckets": [(le if not math.isinf(le) else "+Inf", int(c)) for le, c in self.overhead_cum],
            }
        if self.nlu_cum and self.nlu_cum[-1][1] > 0:
            d["nlu_latency_router_side"] = {
                "count": int(self.nlu_cum[-1][1]),
                "p50_ms": round(1000 * hist_quantile(self.nlu_cum, 0.5), 3),
                "p99_ms": round(1000 * hist_quantile(self.nlu_cum, 0.99), 3),
            }
        if self.cache:
            d["cache"] = self.cache
        d.update(self.extra)
        return d


Worker = Callable[[], Awaitable[bool]]


async def closed_loop(
    system: str, workers: Sequence[Worker], probe: Probe, *, warmup: float, duration: float,
    max_requests: int = 1_000_000,
) -> Result:
    """Run every worker in a loop (one request in flight each) for warmup + duration seconds."""
    samples: list[tuple[float, float, bool]] = []
    t_start = time.perf_counter()
    w0 = t_start + warmup
    w1 = w0 + duration
    budget = itertools.count()

    async def run(w: Worker) -> None:
        while time.perf_counter() < w1 and next(budget) < max_requests:
            t0 = time.perf_counter()
            try:
                ok = await w()
            except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError):
                ok = False
            samples.append((t0, time.perf_counter(), ok))

    edges: list[dict[str, Any]] = []

    async def edge_probe() -> None:
        await asyncio.sleep(max(0.0, w0 - time.perf_counter()))
        edges.append(probe.snap())
        await asyncio.sleep(max(0.0, w1 - time.perf_counter()))
        edges.append(probe.snap(end=True))

    pt = asyncio.create_task(edge_probe())
    await asyncio.gather(*(run(w) for w in workers))
    await pt
    a, b = edges
    span = b["t"] - a["t"]
    inside = [(s, e, ok) for s, e, ok in samples if a["t"] <= e <= b["t"]]
    lat = sorted(1000 * (e - s) for s, e, ok in inside if ok)
    res = Result(
        system=system, n=len(workers), duration=span, completed=len(lat),
        errors=sum(1 for *_, ok in inside if not ok), latencies_ms=lat,
        cpu_s={g: b["cpu"][g] - a["cpu"][g] for g in a["cpu"]},
    )
    if a["m"] is not None and b["m"] is not None:
        res.overhead_cum = hist_diff(a["m"][HIST[0]], b["m"][HIST[0]])
        res.nlu_cum = hist_diff(a["m"][HIST[1]], b["m"][HIST[1]])
        res.cache = {k: b["m"]["cache"].get(k, 0.0) - a["m"]["cache"].get(k, 0.0) for k in ("hit", "miss")}
    return res


# -- raw Rasa -----------------------------------------------------------------------------------------
class KeepAliveHTTP:
    """A minimal HTTP/1.1 keep-alive client for `POST /model/parse` (one connection per worker).

    aiohttp costs the load client ~0.5-1 ms of CPU per request; at 32 workers the client, not Rasa,
    was the limit of the raw row. This one only writes a fixed request and reads a
    Content-Length (or chunked) response, so the raw row measures Rasa."""

    def __init__(self, url: str) -> None:
        u = url.split("://", 1)[1]
        hostport = u.split("/", 1)[0]
        self.host, _, port = hostport.partition(":")
        self.port = int(port or 80)
        self.hostport = hostport
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None and self.writer is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.hostport}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()) + "\r\n").encode()
        try:
            self.writer.write(head + body)
            status_line = await self.reader.readuntil(b"\r\n")
            status = int(status_line.split(b" ", 2)[1])
            length = -1
            chunked = close = False
            while True:
                line = await self.reader.readuntil(b"\r\n")
                if line == b"\r\n":
                    break
                k, _, v = line.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    length = int(v)
                elif k == b"transfer-encoding" and b"chunked" in v.lower():
                    chunked = True
                elif k == b"connection" and b"close" in v.lower():
                    close = True
            if chunked:
                parts = []
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    chunk = await self.reader.readexactly(size + 2)
                    if size == 0:
                        break
                    parts.append(chunk[:-2])
                data = b"".join(parts)
            else:
                data = await self.reader.readexactly(max(0, length))
        except BaseException:
            await self.close()
            raise
        if close:
            await self.close()
        return status, data


def raw_workers(urls: list[str], texts: TextSource, n: int) -> tuple[list[Worker], list[KeepAliveHTTP]]:
    clients = [KeepAliveHTTP(urls[i % len(urls)]) for i in range(n)]

    def make(c: KeepAliveHTTP) -> Worker:
        async def one() -> bool:
            status, data = await c.post("/model/parse", orjson.dumps({"text": texts.next().text}))
            return status == 200 and b'"intent"' in data

        return one

    return [make(c) for c in clients], clients


# -- peer: opsdroid's websocket connector + rasanlu parser ----------------------------------------------
class OpsdroidSession:
    """One opsdroid websocket: `POST /connector/websocket` for a socket id, then text frames
    `{"message", "user", "socket"}` answered by one text frame (the skill's reply)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, texts: TextSource, user: str,
                 timeout: float = 15.0) -> None:
        self.http = http
        self.base = base
        self.texts = texts
        self.user = user
        self.timeout = timeout
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.sid = ""

    async def open(self) -> None:
        async with self.http.post(f"{self.base}/connector/websocket") as r:
            self.sid = orjson.loads(await r.read())["socket"]
        self.ws = await self.http.ws_connect(f"{self.base.replace('http', 'ws', 1)}/connector/websocket/{self.sid}",
                                             autoping=True, heartbeat=None)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
            self.ws = None

    async def one(self) -> bool:
        if self.ws is None:
            await self.open()
        assert self.ws is not None
        await self.ws.send_str(orjson.dumps({"message": self.texts.next().text, "user": self.user,
                                             "socket": self.sid}).decode())
        m = await self.ws.receive(timeout=self.timeout)
        if m.type is aiohttp.WSMsgType.TEXT:
            return True
        await self.close()
        return False


async def opsdroid_workers(
    http: aiohttp.ClientSession, base: str, texts: TextSource, n: int
) -> tuple[list[Worker], list[OpsdroidSession]]:
    sessions = [OpsdroidSession(http, base, texts, f"u{i}") for i in range(n)]
    await asyncio.gather(*(s.open() for s in sessions))
    return [s.one for s in sessions], sessions


# -- end to end, Telegram: webhook update → sendMessage on the fake Bot API ---------------------------
def telegram_workers(
    web_url: str, fake: Any, texts: TextSource, n: int, timeout: float = 15.0
) -> tuple[list[Worker], list[KeepAliveHTTP]]:
    """One private chat per worker: POST an update to the web role's webhook (Telegram's own
    shape and secret header), done when the reply's `sendMessage` reaches the fake Bot API."""
    clients = [KeepAliveHTTP(web_url) for _ in range(n)]
    update_ids = itertools.count(int(time.time()) % 1_000_000 * 1000)

    def make(i: int, c: KeepAliveHTTP) -> Worker:
        uid = 700_000_000 + i * 1000 + int(time.time()) % 1000

        async def one() -> bool:
            t = texts.next()
            uid_ = next(update_ids)
            update = {"update_id": uid_, "message": {
                "message_id": uid_, "date": int(time.time()), "chat": {"id": uid, "type": "private"},
                "from": {"id": uid, "is_bot": False, "first_name": "Bench", "language_code": t.lang},
                "text": t.text}}
            fut = fake.expect(uid)
            try:
                status, _ = await c.post("/telegram/webhook", orjson.dumps(update),
                                         {"X-Telegram-Bot-Api-Secret-Token": fake.SECRET})
                if status != 200:
                    return False
                await asyncio.wait_for(fut, timeout)
                return True
            except TimeoutError:
                return False
            finally:
                fake.waiting.pop(uid, None)

        return one

    return [make(i, c) for i, c in enumerate(clients)], clients


# -- end to end, direct: the product's intake → inbound → router → outbound:<channel> -----------------
class OutboundWaiter:
    """Resolves a future per message when its reply shows up on `outbound:<channel>`."""

    def __init__(self, r: aioredis.Redis, stream: str) -> None:
        self.r = r
        self.stream = stream
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self._task: asyncio.Task[None] | None = None
        self.last = "$"
        self.seen = 0

    async def start(self) -> None:
        info = await self.r.xrevrange(self.stream, count=1)
        self.last = info[0][0] if info else "0-0"
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _read(self) -> None:
        while True:
            res = await self.r.xread({self.stream: self.last}, count=1000, block=500)
            if not res:
                continue
            now = time.perf_counter()
            for eid, fields in res[0][1]:
                self.last = eid
                self.seen += 1
                try:
                    rid = orjson.loads(fields["d"]).get("in_reply_to")
                except (KeyError, orjson.JSONDecodeError):
                    continue
                fut = self.waiting.pop(rid, None)
                if fut is not None and not fut.done():
                    fut.set_result(now)

    def expect(self, message_id: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[message_id] = fut
        return fut


def direct_workers(
    queue: Queue, waiter: OutboundWaiter, texts: TextSource, n: int, channel: str, timeout: float = 15.0
) -> list[Worker]:
    sink = make_sink(queue)  # the product's intake: redaction, then the dedupe + sequence Lua script

    def make(i: int) -> Worker:
        async def one() -> bool:
            t = texts.next()
            mid = uuid.uuid4().hex
            # A new conversation per message: what is measured is routing, not a conversation
            # drifting into agent mode after a handoff (where the bot stays silent on purpose).
            msg = Message(channel=channel, channel_message_id=mid, conversation_id=f"{channel}:{mid}",
                          user_id=f"u{i}", text=t.text, lang=t.lang)  # type: ignore[arg-type]
            fut = waiter.expect(msg.id)
            try:
                if await sink(msg) is None:
                    return False
                await asyncio.wait_for(fut, timeout)
                return True
            except TimeoutError:
                return False
            finally:
                waiter.waiting.pop(msg.id, None)

        return one

    return [make(i) for i in range(n)]


def interleaved(texts: TextSource, convs: Sequence[str], slots: Sequence[int],
                channel: str) -> tuple[list[Message], dict[str, tuple[int, int]]]:
    """Messages in send order (`slots`: a conversation index each), numbered in order within each
    conversation, redacted and stamped as the intake does (before any clock starts); and each
    message's (conversation index, number), to check exactly-once and order afterwards."""
    seqno = [0] * len(convs)
    expected: dict[str, tuple[int, int]] = {}
    msgs: list[Message] = []
    for ci in slots:
        t = texts.next()
        k = seqno[ci]
        seqno[ci] += 1
        m = Message(channel=channel, channel_message_id=f"{convs[ci]}:{k}", conversation_id=convs[ci],
                    user_id=convs[ci], text=t.text, lang=t.lang)  # type: ignore[arg-type]
        msgs.append(stamped(redacted(m)))
        expected[m.id] = (ci, k)
    return msgs, expected


@dataclass
class Exactness:
    """Every expected message's decisions on the `decisions` stream: missing, answered twice, out
    of its conversation's order, and the actions taken."""

    missing: int
    dups: int
    out_of_order: int
    actions: dict[str, int]
    decided: int  # decisions of expected messages, duplicates included


async def check_decisions(r: aioredis.Redis, after_id: str, expected: dict[str, tuple[int, int]],
                          n_convs: int) -> Exactness:
    """Reads the `decisions` stream after `after_id` (see `interleaved` for `expected`)."""
    seen: dict[str, int] = {}
    last_k = [-1] * n_convs
    out_of_order = 0
    actions: dict[str, int] = {}
    start = f"({after_id}"
    for _ in range(10_000):
        page = await r.xrange("decisions", min=start, count=2000)
        if not page:
            break
        for eid, f in page:
            start = f"({eid}"
            d = orjson.loads(f["d"])
            mid = d.get("message_id")
            if mid not in expected:
                continue
            seen[mid] = seen.get(mid, 0) + 1
            ci, k = expected[mid]
            out_of_order += k < last_k[ci]
            last_k[ci] = max(last_k[ci], k)
            a = "silent" if d.get("silent") else d.get("action", "?")
            actions[a] = actions.get(a, 0) + 1
    return Exactness(sum(1 for mid in expected if mid not in seen), sum(1 for v in seen.values() if v > 1),
                     out_of_order, actions, sum(seen.values()))


# -- end to end, widget: WebSocket message → bot reply event ------------------------------------------
class WidgetSession:
    def __init__(self, http: aiohttp.ClientSession, url: str, texts: TextSource, timeout: float = 15.0) -> None:
        self.http = http
        self.url = url
        self.texts = texts
        self.timeout = timeout
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.session: str | None = None
        self._cid = itertools.count(1)
        self.timeouts = 0
        self.errors = 0

    async def open(self) -> None:
        self.ws = await self.http.ws_connect(self.url, autoping=True, heartbeat=None, max_msg_size=1 << 20)
        await self.ws.send_str(orjson.dumps({"type": "hello", "session": None, "last_seen": None, "lang": "en"}).decode())
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            f = await self._recv(deadline - time.monotonic())
            if f.get("type") == "welcome":
                self.session = f["session"]
                return
        raise TimeoutError("no welcome")

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
            self.ws = None

    async def _recv(self, left: float) -> dict[str, Any]:
        assert self.ws is not None
        m = await self.ws.receive(timeout=max(0.01, left))
        if m.type is aiohttp.WSMsgType.TEXT:
            return orjson.loads(m.data)
        raise ConnectionError(f"websocket {m.type.name}")

    async def one(self, text: str | None = None) -> bool:
        """Send a message, wait for the bot's reply event. A session that gets no reply (it drifted
        into agent mode, say) is replaced by a new one."""
        if self.ws is None:
            await self.open()
        assert self.ws is not None
        cid = f"c{next(self._cid)}"
        await self.ws.send_str(orjson.dumps({"type": "message", "client_id": cid,
                                             "text": text or self.texts.next().text}).decode())
        deadline = time.monotonic() + self.timeout
        try:
            for _ in range(1000):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                f = await self._recv(left)
                typ = f.get("type")
                if typ == "event" and f.get("kind") in ("bot", "agent", "system"):
                    return True
                if typ == "error":
                    self.errors += 1
                    return False
        except TimeoutError:
            pass
        self.timeouts += 1
        await self.close()
        return False


async def widget_workers(
    http: aiohttp.ClientSession, url: str, texts: TextSource, n: int
) -> tuple[list[Worker], list[WidgetSession]]:
    sessions = [WidgetSession(http, url, texts) for _ in range(n)]
    await asyncio.gather(*(s.open() for s in sessions))
    return [s.one for s in sessions], sessions
