"""Background work of the handoff side: the `handoff` stream handler (tickets from router
decisions, on the shared stream consumer) and the SLA timer."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import redis.asyncio as aioredis
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from bot import streams
from bot.consumer import Outcome, Permanent, StreamConsumer
from bot.logs import get_logger
from bot.queue import Entry
from handoff.callbacks import due_tick as callbacks_due
from handoff.service import TicketService
from handoff.vip import expire_offers

log = get_logger("switchboard.handoff")

STREAM = streams.HANDOFF
GROUP = streams.TICKETS
# SQLSTATE classes of a database that is down, restarting or overloaded (not of a bad statement).
_OUTAGE_SQLSTATES = ("08", "53", "57", "58", "40001", "40P01")


def db_outage(exc: BaseException) -> bool:
    """The database is unreachable or restarting: wait, never count it against the event."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or ""
        return bool(code) and code.startswith(_OUTAGE_SQLSTATES)
    return False


def _without_nul(v: Any) -> Any:
    if isinstance(v, str):
        return v.replace("\x00", "")
    if isinstance(v, dict):
        return {_without_nul(k): _without_nul(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_without_nul(x) for x in v]
    return v


def handoff_handler(svc: TicketService):
    async def handle(e: Entry, fresh: bool) -> Outcome:
        raw = e.fields.get("d", "")
        try:
            payload: Any = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return Permanent(f"malformed handoff event: {exc}")
        if not isinstance(payload, dict):
            return Permanent("malformed handoff event: not an object")
        if "\\u0000" in raw:
            # A NUL character a user typed (or a channel let through): PostgreSQL cannot store it
            # in text, and refusing it would dead-letter the user's ticket. Only events that have
            # one are walked.
            payload = _without_nul(payload)
        # Idempotent on the message id: a redelivery never doubles a ticket message.
        await svc.handle_event(payload)
        return None

    return handle


def handoff_consumer(svc: TicketService, r: aioredis.Redis, *, claim_idle_ms: int = 30_000, max_attempts: int = 5,
                     block_ms: int = 1000, retention_s: int | None = None, stream: str = STREAM,
                     wait_replicas: int = 0, wait_timeout_ms: int = 1000) -> StreamConsumer:
    """The `handoff` stream → tickets. At-least-once with an idempotent handler; a database outage
    waits, a bad event (a CSAT for a ticket that is gone, say) is dead-lettered after
    `max_attempts` and never stops the tickets of everyone else."""
    return StreamConsumer(r, stream, GROUP, handoff_handler(svc), handler_name="tickets", max_attempts=max_attempts,
                          claim_idle_ms=claim_idle_ms, block_ms=block_ms, outage=db_outage, retention_s=retention_s,
                          wait_replicas=wait_replicas, wait_timeout_ms=wait_timeout_ms)


async def consume_handoffs(svc: TicketService, r: aioredis.Redis, stop: asyncio.Event, *, burst: bool = False,
                           claim_idle_ms: int = 30_000, max_attempts: int = 5) -> int:
    """Run the handoff consumer until `stop` (or, with burst, until nothing is pending); returns
    how many events it handled."""
    c = handoff_consumer(svc, r, claim_idle_ms=claim_idle_ms, max_attempts=max_attempts,
                         block_ms=50 if burst else 1000)
    await c.run(stop, burst=burst)
    return c.processed


async def sla_loop(svc: TicketService, stop: asyncio.Event, every_s: float) -> None:
    while not stop.is_set():
        try:
            await svc.sla_tick()
            await expire_offers(svc)  # VIP tickets unclaimed by their manager join the queue
            await callbacks_due(svc)  # callbacks past their due time: the consoles are told
        except Exception as e:
            if not db_outage(e) and not isinstance(e, OSError):
                raise  # a bug: the task supervisor logs it and restarts the loop
            log.warning("sla.check_failed", error=str(e)[:200])
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass
