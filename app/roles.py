"""The roles: `router` (router workers) and `web` (HTTP app, channels, senders, ticket writer, SLA
timer), or both in one process (`web+router`). Every long-running task starts through the role's
TaskSupervisor."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from app.runtime import answers, build_channels, connect_redis, nlu_client, read_more, ticket_service
from bot.channel import OutboundSender
from bot.config import Settings
from bot.intake import make_sink
from bot.logs import get_logger
from bot.queue import Durability, Queue
from bot.router import Brain, RouterWorker
from bot.streams import Layout
from bot.tasks import TaskSupervisor

log = get_logger("switchboard.roles")


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)



async def run_router(settings: Settings, stop: asyncio.Event | None = None,
                     tasks: TaskSupervisor | None = None) -> None:
    """The router role: one supervised router consumer (on `tasks` when given, a supervisor of
    its own). Raises TaskFailed when it kept failing."""
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    r = connect_redis(settings)
    tickets, engine = await ticket_service(settings, r, migrate=True)
    tasks = tasks or TaskSupervisor(stop)
    try:
        async with nlu_client(settings) as nlu:
            await nlu.refresh_versions()
            from handoff.incidents import IncidentBook

            brain = Brain(settings, nlu, answers(settings), tickets, incidents=IncidentBook(tickets),
                          read_more=read_more(settings), offer_callback=settings.selfservice.callbacks)
            owned = settings.queue.partitions_owned or Layout.of(settings).all()
            for p in owned:  # one consumer per partition; a conversation lives in one partition
                worker = RouterWorker(settings, r, brain, partition=p)
                name = "router" if len(owned) == 1 else f"router:{p}"
                tasks.start(name, lambda w=worker: w.run(tasks.stop), consumer=worker.consumer)  # type: ignore[misc]
            await tasks.wait()
            await tasks.close(grace_s=15)
    finally:
        await r.aclose()
        await engine.dispose()


async def run_web(settings: Settings, stop: asyncio.Event | None = None, port: int | None = None,
                  beside: tuple[TaskSupervisor, ...] = ()) -> None:
    """The edge role: HTTP app (widget, webhooks, health, metrics), channel adapters, their
    outbound senders, the ticket writer and the SLA timer — every background task supervised.
    Raises TaskFailed when one kept failing."""
    import uvicorn

    from app.web import create_app, uvicorn_options

    stop = stop or asyncio.Event()
    tasks = TaskSupervisor(stop)
    tasks.beside.extend(beside)  # other roles of this process: in /readyz too
    r = connect_redis(settings)
    layout = Layout.of(settings)
    durability = Durability.of(settings)
    queue = Queue(r, settings.queue, layout=layout, durability=durability)
    sink = make_sink(queue, rate_per_minute=settings.queue.user_rate_per_minute)
    channels = build_channels(settings, r)
    for ch in channels:
        # The channel's own long-running tasks (pollers, IMAP IDLE, the widget's pub/sub hub) are
        # created in `start`: the supervisor watches them, so that none dies silently.
        before = asyncio.all_tasks()
        await ch.start(sink)
        for t in asyncio.all_tasks() - before:
            tasks.adopt(f"{ch.name}:{t.get_name()}", t)
    wait = {"wait_replicas": durability.replicas, "wait_timeout_ms": durability.timeout_ms}
    for ch in channels:
        for stream in layout.outbound_streams(ch.name):
            sender = OutboundSender(r, ch, claim_idle_ms=settings.queue.claim_idle_ms,
                                    max_attempts=settings.queue.max_attempts, retention_s=settings.queue.retention_s,
                                    stream=stream, **wait)
            tasks.start_consumer(f"sender:{ch.name}" if stream == f"outbound:{ch.name}" else f"sender:{stream}",
                                 sender.consumer)
    from app.review_web import review_router
    from handoff.console import console_router
    from handoff.worker import handoff_consumer, sla_loop

    svc, engine = await ticket_service(settings, r, migrate=True)
    for stream in layout.handoff_streams():
        tasks.start_consumer("tickets" if stream == "handoff" else f"tickets:{stream}",
                             handoff_consumer(svc, r, claim_idle_ms=settings.queue.claim_idle_ms,
                                              max_attempts=settings.queue.max_attempts,
                                              retention_s=settings.queue.retention_s, stream=stream, **wait))
    tasks.start("sla", lambda: sla_loop(svc, tasks.stop, settings.handoff.sla_check_s))
    from handoff.reports.app import reports_parts

    report_routers = reports_parts(settings, svc.sm, r, [ch.name for ch in channels], tasks)
    from handoff.helpcentre import HelpCentre, help_router
    from handoff.selfservice import selfservice_router, ticket_page_parts

    links, page_files = ticket_page_parts(settings, svc, r)
    svc.ticket_link = links.url
    routers = [console_router(settings, svc, r, [*channels, page_files]), review_router(settings, svc, r),
               selfservice_router(settings, svc, r, links, page_files), *report_routers]
    help_root = settings.path(settings.selfservice.help_dir)
    if help_root.is_dir():
        routers.append(help_router(settings, await asyncio.to_thread(HelpCentre, help_root)))
    app = create_app(settings, r, channels, extra_routers=routers,
                     tasks=tasks)
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
    # uvicorn re-raises the SIGTERM it captured once it has shut down; without a handler of ours
    # that kills the process before the senders, channels and database are closed (exit 143).
    _stop_on_signals(stop)
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


async def run_web_and_router(settings: Settings, stop: asyncio.Event | None = None, port: int | None = None) -> None:
    """`web+router`: both roles in one process and one event loop — what `switchboard up` runs on
    one machine. Nothing changes in what they do: the router still takes every message from the
    queue (its consumer group, exactly-once commit, order, take-over) and more routers elsewhere
    can share it. What goes is a process: per message, the router's wake-ups happen in a process
    that is awake anyway, so less CPU per message and more of the machine left to Rasa (measured
    in bench/README.md, "One process for the web role and the router"). When either role ends
    (stopped, or failed for good) the other is stopped too; a failure is raised."""
    stop = stop or asyncio.Event()
    router_tasks = TaskSupervisor(stop)
    web = asyncio.create_task(run_web(settings, stop, port=port, beside=(router_tasks,)), name="web")
    router = asyncio.create_task(run_router(settings, stop, router_tasks), name="router")
    await asyncio.wait([web, router], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    results = await asyncio.gather(web, router, return_exceptions=True)
    for res in results:
        if isinstance(res, BaseException):
            raise res

