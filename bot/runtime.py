"""Wiring for the roles: Redis connection, NLU client, channels, router and web processes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import redis.asyncio as aioredis

from bot.channel import Channel, OutboundSender
from bot.config import Settings
from bot.intake import make_sink
from bot.logs import get_logger
from bot.queue import Queue
from bot.registry import channel_adapter
from bot.router import Brain, RouterWorker
from bot.tasks import TaskSupervisor
from intents.answers import Answers
from intents.client import NLUClient
from intents.help import ReadMore
from intents.rasa import RasaPaths

log = get_logger("switchboard.runtime")
T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a role's main coroutine on uvloop when it is installed (it comes with
    uvicorn[standard]): about 8 % less CPU per routed message than asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(main)
    return uvloop.run(main)


def connect_redis(settings: Settings) -> aioredis.Redis:
    return aioredis.from_url(
        settings.redis.url, decode_responses=True, health_check_interval=30, socket_connect_timeout=2,
        max_connections=settings.redis.max_connections,
    )


def rasa_paths(settings: Settings) -> RasaPaths:
    return RasaPaths(
        root=settings.base_dir.resolve(),
        venv=settings.path(settings.nlu.rasa_venv),
        project=settings.path(settings.nlu.project_dir),
        models=settings.path(settings.nlu.model_dir),
    )


def redis_host_port(settings: Settings) -> tuple[str, int] | None:
    u = urlparse(settings.redis.url)
    if u.scheme not in ("redis", "rediss"):
        return None
    return (u.hostname or "127.0.0.1", u.port or 6379)


def nlu_client(settings: Settings) -> NLUClient:
    n = settings.nlu
    return NLUClient(list(n.urls), timeout_s=n.timeout_s, backoff_max_s=n.backoff_max_s, cache_size=n.cache_size,
                     max_in_flight=n.max_in_flight)


def answers(settings: Settings) -> Answers:
    """The answer texts; a missing or empty answers folder stops the start (the bot would
    otherwise reply with nothing)."""
    from bot.errors import ConfigError

    root = settings.path(settings.router.answers_dir)
    try:
        ans = Answers(root)
    except ValueError as e:
        raise ConfigError(f"router.answers_dir: {e}") from None
    for lang in ("en", "zh"):
        if not ans.has("clarify", lang):
            raise ConfigError(f"router.answers_dir: no {lang} answers (with `clarify`) under {root}")
    return ans


def build_channels(settings: Settings, r: aioredis.Redis) -> list[Channel]:
    out: list[Channel] = []
    for cfg in settings.channels:
        cls = channel_adapter(cfg.type)
        out.append(cls.from_config(settings, cfg, r))
    return out


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def read_more(settings: Settings) -> ReadMore | None:
    """The answers' "Read more" links to help-centre articles (with web.public_url set)."""
    from intents.help import HelpArticles

    root = settings.path(settings.selfservice.help_dir)
    if not settings.web.public_url or not root.is_dir():
        return None
    try:
        return ReadMore(HelpArticles(root), settings.web.public_url)
    except ValueError as e:
        from bot.errors import ConfigError

        raise ConfigError(f"help articles: {e}") from None


async def ticket_service(settings: Settings, r: aioredis.Redis, migrate: bool = False):  # type: ignore[no-untyped-def]
    """The ticket service on the configured database (applying migrations when asked)."""
    from handoff.db import make_engine, sessionmaker, upgrade
    from handoff.service import TicketService

    engine = make_engine(settings)
    if migrate:
        await upgrade(engine)
    return TicketService(settings, sessionmaker(engine), r), engine


async def run_router(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """The router role: one supervised router consumer. Raises TaskFailed when it kept failing."""
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    r = connect_redis(settings)
    tickets, engine = await ticket_service(settings, r, migrate=True)
    tasks = TaskSupervisor(stop)
    try:
        async with nlu_client(settings) as nlu:
            await nlu.refresh_versions()
            worker = RouterWorker(settings, r, Brain(settings, nlu, answers(settings), tickets,
                                                     read_more=read_more(settings),
                                                     offer_callback=settings.selfservice.callbacks))
            tasks.start("router", lambda: worker.run(tasks.stop), consumer=worker.consumer)
            await tasks.wait()
            await tasks.close(grace_s=15)
    finally:
        await r.aclose()
        await engine.dispose()


async def run_web(settings: Settings, stop: asyncio.Event | None = None, port: int | None = None) -> None:
    """The edge role: HTTP app (widget, webhooks, health, metrics), channel adapters, their
    outbound senders, the ticket writer and the SLA timer — every background task supervised.
    Raises TaskFailed when one kept failing."""
    import uvicorn

    from bot.web import create_app, uvicorn_options

    stop = stop or asyncio.Event()
    tasks = TaskSupervisor(stop)
    r = connect_redis(settings)
    queue = Queue(r, settings.queue)
    sink = make_sink(queue, rate_per_minute=settings.queue.user_rate_per_minute)
    channels = build_channels(settings, r)
    for ch in channels:
        await ch.start(sink)
    for ch in channels:
        sender = OutboundSender(r, ch, claim_idle_ms=settings.queue.claim_idle_ms,
                                max_attempts=settings.queue.max_attempts)
        tasks.start_consumer(f"sender:{ch.name}", sender.consumer)
    from handoff.console import console_router
    from handoff.worker import handoff_consumer, sla_loop

    svc, engine = await ticket_service(settings, r, migrate=True)
    tasks.start_consumer("tickets", handoff_consumer(svc, r, claim_idle_ms=settings.queue.claim_idle_ms,
                                                     max_attempts=settings.queue.max_attempts))
    tasks.start("sla", lambda: sla_loop(svc, tasks.stop, settings.handoff.sla_check_s))
    from handoff.helpcentre import HelpCentre, help_router
    from handoff.selfservice import selfservice_router, ticket_page_parts

    links, page_files = ticket_page_parts(settings, svc, r)
    svc.ticket_link = links.url
    routers = [console_router(settings, svc, r, [*channels, page_files]),
               selfservice_router(settings, svc, r, links, page_files)]
    help_root = settings.path(settings.selfservice.help_dir)
    if help_root.is_dir():
        routers.append(help_router(settings, await asyncio.to_thread(HelpCentre, help_root)))
    app = create_app(settings, r, channels, extra_routers=routers, tasks=tasks)
    config = uvicorn.Config(
        app,
        host=settings.web.host,
        port=settings.web.port if port is None else port,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=5,  # a stuck client must not hold a restart hostage
        **uvicorn_options(settings),
    )
    server = uvicorn.Server(config)
    serve = asyncio.create_task(server.serve())
    log.info("web.started", url=f"http://{settings.web.host}:{config.port}/")
    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait([serve, stop_wait], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stop.set()
    with contextlib.suppress(Exception):
        await serve
    try:
        await tasks.close(grace_s=5)
    finally:
        for ch in channels:
            await ch.stop()
        await engine.dispose()
        await r.aclose()


def data_dir(settings: Settings) -> Path:
    d = settings.path(settings.data_dir)
    d.mkdir(parents=True, exist_ok=True)
    return d
