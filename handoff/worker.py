"""Background work of the handoff side: the `handoff` stream consumer (tickets from router
decisions) and the SLA timer."""

from __future__ import annotations

import asyncio
import os
import socket

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.logs import get_logger
from bot.queue import _entries, ensure_group
from handoff.service import TicketService

log = get_logger("switchboard.handoff")

STREAM = "handoff"
GROUP = "tickets"


async def consume_handoffs(svc: TicketService, r: aioredis.Redis, stop: asyncio.Event, *, burst: bool = False,
                           claim_idle_ms: int = 30_000) -> int:
    """Turn handoff events into tickets. At-least-once with an idempotent handler (dedupe on the
    message id), so a crash or a database outage never loses or doubles a ticket message."""
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    done = 0
    while not stop.is_set():
        try:
            await ensure_group(r, STREAM, GROUP)
            res = await r.xautoclaim(STREAM, GROUP, consumer, claim_idle_ms, "0-0", count=50)
            entries = _entries(res[1])
            if not entries:
                got = await r.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=50, block=50 if burst else 1000)
                entries = _entries(got[0][1]) if got else []
        except (RedisConnectionError, RedisTimeoutError, OSError, ResponseError) as e:
            log.warning("handoff.redis_unavailable", error=str(e))
            await asyncio.sleep(0.5)
            continue
        if not entries:
            if burst:
                info = await r.xpending(STREAM, GROUP)
                if int(info["pending"]) == 0:
                    return done
            continue
        for e in entries:
            try:
                payload = orjson.loads(e.fields.get("d", "{}"))
                await svc.handle_event(payload)
            except (OperationalError, DBAPIError, OSError) as exc:
                # The database is down or restarting: leave it pending, retry after a pause.
                log.warning("handoff.db_unavailable", error=str(exc)[:200])
                await asyncio.sleep(1.0)
                break
            except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
                log.error("handoff.bad_event", entry=e.id, error=str(exc)[:200])
                await r.xadd(f"{STREAM}:dead", {**e.fields, "error": str(exc)[:500]})
            await r.xack(STREAM, GROUP, e.id)
            done += 1
    return done


async def sla_loop(svc: TicketService, stop: asyncio.Event, every_s: float) -> None:
    while not stop.is_set():
        try:
            await svc.sla_tick()
        except (OperationalError, DBAPIError, OSError) as e:
            log.warning("sla.check_failed", error=str(e)[:200])
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass
