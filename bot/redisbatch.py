"""Commands of concurrent tasks sent to Redis together: one round trip for many.

The router handles many messages at once (`router.concurrency`), and each ends in one `EVALSHA`
of the commit script (and, when its conversation had a message in flight, one `HGETALL` of the
conversation's state). Sent one by one, each pays redis-py's whole per-command path — pool
checkout, retry wrapper, observability hooks, a `write()` and a read — about 0.06 ms of the
router's CPU; in one pipeline the same commands cost a third of that each.

`Batcher.execute` queues a command and returns its reply. Commands queued in one turn of the
event loop go out together at its end, and those queued while a send is on the wire go together
in the next one (a non-transactional pipeline; a single command is sent on its own): a lone
message waits for nothing but that turn, and a busy router sends fewer, fuller writes. Each command keeps its own reply or error (`ResponseError`,
`NoScriptError`: a script is loaded and that command sent again); a connection failure fails
every command of its batch, as it would have failed each of them alone.

Only for commands that cannot block (never `XREADGROUP … BLOCK`, `WAIT`, `BLPOP`): they would hold up
every command behind them. Not for Redis Cluster (a pipeline there splits by node).
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from bot.logs import get_logger

log = get_logger("switchboard.redisbatch")

_Item = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class Batcher:
    """See the module docstring. One per client and event loop."""

    def __init__(self, r: aioredis.Redis, *, max_batch: int = 256) -> None:
        self.r = r
        self.max_batch = max_batch
        self._queued: list[_Item] = []
        self._sending = False
        self._task: asyncio.Task[None] | None = None  # the one sending (a reference keeps it alive)
        self._scripts: dict[str, str] = {}  # sha → source, to load a script Redis lost
        # counters, for tests and the bench: batches sent, commands sent
        self.batches = 0
        self.commands = 0

    async def execute(self, *args: Any) -> Any:
        """Send one command (execute_command arguments) and return its reply."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queued.append((args, fut))
        if not self._sending:
            self._sending = True
            self._task = loop.create_task(self._drain())
        return await fut

    async def evalsha(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """Run a registered script (`Redis.register_script`) by its sha."""
        self._scripts.setdefault(script.sha, script.script)
        return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)

    async def _drain(self) -> None:
        batch: list[_Item] = []
        try:
            while self._queued:
                batch = self._queued[:self.max_batch]
                del self._queued[:self.max_batch]
                await self._send(batch)
                batch = []
        except BaseException as exc:
            # Cancelled (a shutdown) or a bug: nobody may wait for a reply forever.
            for _, fut in batch + self._queued:
                if not fut.done():
                    fut.set_exception(ConnectionError(f"Redis batch not sent: {type(exc).__name__}"))
            self._queued.clear()
            if not isinstance(exc, Exception):
                raise
            log.error("redisbatch.failed", error=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            self._sending = False

    async def _send(self, batch: list[_Item]) -> None:
        live = [(a, f) for a, f in batch if not f.done()]  # a waiter that was cancelled needs nothing
        if not live:
            return
        self.batches += 1
        self.commands += len(live)
        try:
            if len(live) == 1:
                try:
                    replies: list[Any] = [await self.r.execute_command(*live[0][0])]
                except NoScriptError as e:
                    replies = [e]
            else:
                pipe = self.r.pipeline(transaction=False)
                for a, _ in live:
                    pipe.execute_command(*a)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            # The connection failed: every command of the batch fails (and is retried by its
            # caller) as it would have alone.
            for _, f in live:
                if not f.done():
                    f.set_exception(exc)
            return
        for (a, f), rep in zip(live, replies, strict=True):
            if isinstance(rep, NoScriptError) and a[0] == "EVALSHA" and a[1] in self._scripts:
                # Redis lost its scripts (a restart, a failover, SCRIPT FLUSH): the failed EVALSHA
                # wrote nothing; load the script and run this one again.
                try:
                    await self.r.script_load(self._scripts[a[1]])
                    rep = await self.r.execute_command(*a)
                except Exception as e:  # noqa: BLE001 - it becomes this command's error
                    rep = e
            if f.done():
                continue
            if isinstance(rep, Exception):
                f.set_exception(rep)
            else:
                f.set_result(rep)
