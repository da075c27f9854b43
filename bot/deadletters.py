"""Dead letters of every stream (`<stream>:dead`): list, show, replay, drop.

A dead letter keeps what is needed to handle it again — the original fields of the entry — plus
why it died: `entry` (its id on the stream), `error`, `handler`, `attempts` and `at` (unix time).
Replaying puts the original back on its stream as a new entry (inbound messages go through intake
again, so they get the conversation's next sequence number) and removes the dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis.asyncio as aioredis

from bot import streams
from bot.models import Message
from bot.queue import Queue, _decode

META = ("entry", "error", "handler", "attempts", "at")
SUFFIX = ":dead"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    stream: str  # the stream it came from
    id: str  # its id on `<stream>:dead`
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def error(self) -> str:
        return self.fields.get("error", "")

    @property
    def handler(self) -> str:
        return self.fields.get("handler", "")

    @property
    def attempts(self) -> str:
        return self.fields.get("attempts", "")

    @property
    def at(self) -> str:
        raw = self.fields.get("at", "")
        if not raw.isdigit():
            return raw
        return datetime.fromtimestamp(int(raw), UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    @property
    def original(self) -> dict[str, str]:
        """The entry's own fields, as they were on the stream."""
        return {k: v for k, v in self.fields.items() if k not in META}


async def dead_streams(r: aioredis.Redis, known: list[str]) -> list[str]:
    """The streams that have dead letters: the known ones first, then any other `*:dead`."""
    found: list[str] = []
    async for key in r.scan_iter(match="*" + SUFFIX, _type="STREAM"):
        k = key.decode() if isinstance(key, bytes) else key
        found.append(k.removesuffix(SUFFIX))
    out = [s for s in known if s in found]
    return out + sorted(s for s in found if s not in out)


async def list_dead(r: aioredis.Redis, stream: str, count: int = 100) -> list[DeadLetter]:
    raw = await r.xrange(streams.dead(stream), count=count)
    return [DeadLetter(stream, i.decode() if isinstance(i, bytes) else i, _decode(f)) for i, f in raw]


class Ambiguous(ValueError):
    """An id names dead letters of several streams (ids are unique per stream only)."""


async def find(r: aioredis.Redis, candidates: list[str], dead_id: str) -> DeadLetter | None:
    """The dead letter `dead_id` among the candidate streams; Ambiguous when several have it."""
    found: list[DeadLetter] = []
    for s in candidates:
        raw = await r.xrange(streams.dead(s), min=dead_id, max=dead_id)
        if raw:
            i, f = raw[0]
            found.append(DeadLetter(s, i.decode() if isinstance(i, bytes) else i, _decode(f)))
    if len(found) > 1:
        names = ", ".join(d.stream for d in found)
        raise Ambiguous(f"{dead_id} is a dead letter of several streams ({names}): add --stream")
    return found[0] if found else None


async def select(r: aioredis.Redis, where: list[str], ids: list[str] | None, limit: int) -> list[DeadLetter]:
    """The dead letters of `where` named by `ids` (unknown ids are skipped), or every one of them
    (at most `limit` per stream) when no ids are given. ValueError: an id found in several streams."""
    if ids:
        return [d for i in ids if (d := await find(r, where, i)) is not None]
    return [d for st in where for d in await list_dead(r, st, limit)]


async def replay(r: aioredis.Redis, inbound: Queue, d: DeadLetter) -> bool:
    """Put a dead letter back on its stream; False (it stays) when it cannot be: an inbound
    message that does not parse."""
    lay = inbound.layout
    if d.stream in {lay.inbound(p) for p in lay.all()}:  # intake again: into its partition, next seq
        try:
            msg = Message.from_json(d.fields.get("m", ""))
        except ValueError:
            return False
        await inbound.publish(msg, force=True)
    else:
        orig = d.original
        if not orig:
            return False
        # A copy: whatever of it was sent before it died must be found by its sender.
        orig.pop(streams.ONCE, None)
        await r.xadd(d.stream, orig)
    await r.xdel(streams.dead(d.stream), d.id)
    return True


async def drop(r: aioredis.Redis, d: DeadLetter) -> None:
    await r.xdel(streams.dead(d.stream), d.id)
