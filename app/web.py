"""The web app: channel routes (widget, webhooks), health, readiness and Prometheus metrics.
The agent console mounts here too (handoff/).

Client addresses come from the TCP peer unless it is one of `web.trusted_proxies` (then from its
X-Forwarded-For); uvicorn's own proxy handling, which trusts any local client, is turned off.
Responses served over HTTPS carry HSTS; `/metrics` needs a token or a local client."""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.routing import Route, WebSocketRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from bot.channel import Channel
    from bot.config import Settings
    from bot.tasks import TaskSupervisor


class QueueLagCollector:
    """Queue lag read from Redis at scrape time (entries not yet delivered + pending per stream)."""

    def __init__(self, lag: dict[str, tuple[int, int]]) -> None:
        self.lag = lag

    def collect(self) -> Any:
        g = GaugeMetricFamily("switchboard_queue_lag", "Entries not yet delivered to a consumer", labels=["stream"])
        p = GaugeMetricFamily("switchboard_queue_pending", "Entries delivered but not acknowledged", labels=["stream"])
        for stream, (lag, pending) in self.lag.items():
            g.add_metric([stream], lag)
            p.add_metric([stream], pending)
        yield g
        yield p


async def queue_lag(r: aioredis.Redis, streams: list[str]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for s in streams:
        try:
            groups = await r.xinfo_groups(s)
        except Exception:  # stream does not exist yet
            continue
        lag = sum(int(g.get("lag") or 0) for g in groups)
        pending = sum(int(g.get("pending") or 0) for g in groups)
        out[s] = (lag, pending)
    return out


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Server options that matter for security: no proxy headers believed by uvicorn itself (it
    would trust X-Forwarded-For from any local client); `create_app` applies `trusted_proxies`."""
    return {"proxy_headers": False, "server_header": False, "ws_max_size": 64 * 1024}


class HSTSMiddleware:
    """`Strict-Transport-Security` on every HTTP response whose request came over HTTPS (as the
    TCP peer, or a trusted proxy's X-Forwarded-Proto, says)."""

    def __init__(self, app: ASGIApp, max_age_s: int) -> None:
        self.app = app
        self.value = f"max-age={max_age_s}; includeSubDomains".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"strict-transport-security", self.value)]
            await send(message)

        await self.app(scope, receive, send_hsts)


def _mount(app: FastAPI, router: APIRouter) -> None:
    """A channel's routes on the app. Plain Starlette routes (a webhook that reads its own body:
    Telegram's) go straight on the app's router, and first: FastAPI matches a request against
    each included router before them in turn, about 10 µs per router it passes (measured with 9
    routers before the webhook: 123 µs per request, against 16 µs straight), while a plain route
    costs the requests behind it one path match. Their paths are the channel's own, so going
    first shadows nothing. The others (FastAPI routes with their dependencies and validation) are
    included as usual."""
    if router.routes and all(type(rt) in (Route, WebSocketRoute) for rt in router.routes):
        app.router.routes[:0] = router.routes
    else:
        app.include_router(router)


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def consumer_report(redis: aioredis.Redis, tasks: TaskSupervisor | None, stale_s: float
                          ) -> tuple[list[dict[str, Any]], list[str]]:
    """Every task of this role and every stream consumer seen in Redis (other roles' too): alive,
    last loop, pending and lag of its group. Returns the report and what is wrong (dead or stale)."""
    from bot.consumer import HEARTBEATS

    items = tasks.status(stale_s) if tasks is not None else []
    problems = [f"{i['name']} is {'not looping' if i.get('stale') else 'dead'}" for i in items if not i["alive"]]
    local = {i["consumer"] for i in items if "consumer" in i}
    now = time.time()
    newest: dict[tuple[str, str], float] = {}
    for key, ts in (await redis.hgetall(HEARTBEATS)).items():
        stream, group, consumer = key.split("|", 2)
        age = now - float(ts)
        if age > 3600:  # a consumer gone long ago (killed, never cleaned up)
            await redis.hdel(HEARTBEATS, key)
            continue
        if consumer in local:
            continue
        newest[(stream, group)] = min(newest.get((stream, group), age), age)
        items.append({"name": f"{group}@{consumer}", "stream": stream, "group": group, "consumer": consumer,
                      "alive": age <= stale_s, "last_loop_s": round(age, 1)})
    for (stream, group), age in newest.items():
        if age > stale_s:
            problems.append(f"no consumer of {stream} ({group}) has looped for {age:.0f}s")
    groups = {(i["stream"], i["group"]) for i in items if "stream" in i}
    info: dict[tuple[str, str], dict[str, int]] = {}
    for stream in {g[0] for g in groups}:
        try:
            for g in await redis.xinfo_groups(stream):
                info[(stream, g["name"])] = {"pending": int(g.get("pending") or 0), "lag": int(g.get("lag") or 0)}
        except Exception:  # noqa: BLE001 - the stream does not exist yet
            continue
    for i in items:
        if "stream" in i:
            i.update(info.get((i["stream"], i["group"]), {"pending": 0, "lag": 0}))
    return items, problems


def create_app(
    settings: Settings, redis: aioredis.Redis, channels: list[Channel], extra_routers: list[APIRouter] | None = None,
    tasks: TaskSupervisor | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        try:
            yield
        finally:
            await app.state.http.close()

    app = FastAPI(title="switchboard", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    # Added last = outermost: the proxy headers are resolved before HSTS looks at the scheme.
    if settings.web.hsts_max_age_s:
        app.add_middleware(HSTSMiddleware, max_age_s=settings.web.hsts_max_age_s)
    if settings.web.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.web.trusted_proxies))
    metrics_token = settings.web.metrics_token.get_secret_value().encode() if settings.web.metrics_token else None
    mp = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    multiproc_dir = mp if mp and os.path.isdir(mp) else None
    app.state.settings = settings
    app.state.redis = redis
    for ch in channels:
        r = ch.routes()
        if r is not None:
            _mount(app, r)
    for extra in extra_routers or []:
        app.include_router(extra)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as e:
            checks["redis"] = f"unreachable: {type(e).__name__}"
        url = settings.nlu.urls[0].rstrip("/")
        try:
            async with app.state.http.get(f"{url}/status") as resp:
                checks["nlu"] = "ok" if resp.status == 200 else f"HTTP {resp.status}"
        except Exception as e:
            checks["nlu"] = f"unreachable: {type(e).__name__}"
        body: dict[str, Any] = {"checks": checks}
        problems: list[str] = []
        if checks["redis"] == "ok":
            body["consumers"], problems = await consumer_report(redis, tasks, settings.queue.stale_consumer_s)
        ok = all(v == "ok" for v in checks.values()) and not problems
        if problems:
            body["problems"] = problems
        return JSONResponse({"status": "ready" if ok else "not ready", **body}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint(request: Request) -> Response:
        if metrics_token is not None:
            auth = request.headers.get("authorization", "")
            if not hmac.compare_digest(auth.encode(), b"Bearer " + metrics_token):
                return Response("metrics need the bearer token (web.metrics_token)\n", status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        elif not _loopback(request.client.host if request.client else None):
            return Response("metrics are served to this host only unless web.metrics_token is set\n",
                            status_code=403)
        from bot.streams import Layout

        streams = [s for s, _ in Layout.of(settings).consumed(settings.queue.group, [c.name for c in channels])]
        lag = await queue_lag(redis, streams)
        registry = CollectorRegistry()
        if multiproc_dir:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
        else:
            from prometheus_client import REGISTRY

            registry = REGISTRY
        data = generate_latest(registry)
        lag_reg = CollectorRegistry()
        lag_reg.register(QueueLagCollector(lag))
        return Response(data + generate_latest(lag_reg), media_type=CONTENT_TYPE_LATEST)

    return app
