"""One owner for every long-running task of a role (stream consumers, the SLA timer, senders, …).

A task that ends unexpectedly is logged once with its traceback and restarted with the shared
back-off; one that keeps failing (`max_failures` times in a row, none of them running longer than
`healthy_after_s`) stops the role, and the role exits non-zero so that `switchboard up` or an
orchestrator restarts the process. `status()` is what `/readyz` reports.
"""

from __future__ import annotations

import asyncio
import functools
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.backoff import Backoff
from bot.consumer import StreamConsumer
from bot.errors import SwitchboardError
from bot.logs import get_logger

log = get_logger("switchboard.tasks")


async def _adopted() -> None:  # the factory of an adopted task: never called
    raise RuntimeError("an adopted task is not restarted here")


class TaskFailed(SwitchboardError):
    """A supervised task kept failing; the role stops so that the process is restarted."""


@dataclass
class Supervised:
    name: str
    factory: Callable[[], Awaitable[None]]
    consumer: StreamConsumer | None = None
    task: asyncio.Task[None] | None = None
    running: bool = False  # inside the task's coroutine (not waiting to be restarted)
    restarts: int = 0
    failures: int = 0  # in a row
    last_error: str = ""
    started: float = field(default=0.0)


class TaskSupervisor:
    def __init__(self, stop: asyncio.Event | None = None, *, max_failures: int = 5, healthy_after_s: float = 60.0,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0) -> None:
        self.stop = stop or asyncio.Event()
        self.max_failures = max_failures
        self.healthy_after_s = healthy_after_s
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.tasks: dict[str, Supervised] = {}
        self.failed: Supervised | None = None
        # Supervisors of other roles in this process (the router in the web role's process): their
        # tasks are reported with these (`status`), so /readyz shows them too.
        self.beside: list[TaskSupervisor] = []

    def start(self, name: str, factory: Callable[[], Awaitable[None]], *, consumer: StreamConsumer | None = None
              ) -> None:
        """Run `factory()` as the task `name` until the role stops, restarting it when it ends."""
        if name in self.tasks:
            raise ValueError(f"a task named {name!r} is already supervised")
        s = Supervised(name, factory, consumer)
        self.tasks[name] = s
        s.task = asyncio.get_running_loop().create_task(self._keep(s), name=name)

    def start_consumer(self, name: str, consumer: StreamConsumer) -> None:
        self.start(name, lambda: consumer.run(self.stop), consumer=consumer)

    def adopt(self, name: str, task: asyncio.Task[Any]) -> None:
        """Watch a task someone else created (a channel's poller, IMAP IDLE loop or pub/sub hub,
        started inside the channel's `start`): it cannot be restarted here, so when it dies with
        an error the crash is logged once with its traceback and the role stops with an error —
        the process is restarted (`switchboard up`, the orchestrator) instead of running on
        without it."""
        if name in self.tasks:
            name = f"{name}#{len(self.tasks)}"
        s = Supervised(name, _adopted, task=task, running=not task.done())
        self.tasks[name] = s
        task.add_done_callback(functools.partial(self._adopted_done, s))

    def _adopted_done(self, s: Supervised, task: asyncio.Task[Any]) -> None:
        s.running = False
        if self.stop.is_set() or task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return  # a channel's own short task finished its work
        s.last_error = f"{type(exc).__name__}: {exc}"[:500]
        s.failures = self.max_failures
        log.critical("task.crashed", task=s.name, error=s.last_error, adopted=True,
                     traceback="".join(traceback.format_exception(exc))[-4000:])
        self.failed = self.failed or s
        self.stop.set()

    async def _keep(self, s: Supervised) -> None:
        backoff = Backoff(self.backoff_base, self.backoff_cap)
        while not self.stop.is_set():
            s.started = time.monotonic()
            s.running = True
            try:
                await s.factory()
                if self.stop.is_set():
                    return
                s.last_error = "ended unexpectedly"
                log.error("task.ended", task=s.name)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                s.last_error = f"{type(e).__name__}: {e}"[:500]
                log.error("task.crashed", task=s.name, error=s.last_error,
                          traceback="".join(traceback.format_exception(e))[-4000:])
            finally:
                s.running = False
            if time.monotonic() - s.started >= self.healthy_after_s:
                backoff.reset()
                s.failures = 0
            s.failures += 1
            if s.failures >= self.max_failures:
                log.critical("task.gave_up", task=s.name, failures=s.failures, error=s.last_error)
                self.failed = self.failed or s
                self.stop.set()
                return
            delay = backoff.next()
            s.restarts += 1
            log.warning("task.restarting", task=s.name, restart=s.restarts, in_s=round(delay, 2))
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def wait(self) -> None:
        """Until the role is asked to stop or a task gave up."""
        await self.stop.wait()

    async def close(self, grace_s: float = 10.0) -> None:
        """Stop every task (they see `stop`), cancelling what does not end within `grace_s`;
        raises TaskFailed when a task had given up."""
        self.stop.set()
        tasks = [s.task for s in self.tasks.values() if s.task is not None and s.factory is not _adopted]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace_s)
            for t in late:
                t.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        if self.failed is not None:
            raise TaskFailed(f"task {self.failed.name} kept failing: {self.failed.last_error}")

    def status(self, stale_s: float) -> list[dict[str, Any]]:
        """Each task: alive, restarts, last error; consumers also their stream and last loop."""
        now = time.time()
        out: list[dict[str, Any]] = []
        for s in self.tasks.values():
            if s.factory is _adopted and not s.running and not s.last_error:
                continue  # a channel's task that finished its work (or was stopped by it)
            item: dict[str, Any] = {"name": s.name, "alive": s.running, "restarts": s.restarts}
            if s.last_error:
                item["last_error"] = s.last_error
            c = s.consumer
            if c is not None:
                age = now - c.last_loop if c.last_loop else None
                item.update(stream=c.stream, group=c.group, consumer=c.name,
                            last_loop_s=None if age is None else round(age, 1))
                if s.running and (age is None or age > stale_s):
                    item["alive"] = False
                    item["stale"] = True
            out.append(item)
        for other in self.beside:
            out.extend(other.status(stale_s))
        return out
