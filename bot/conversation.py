"""A conversation's state as the router keeps it in Redis — the `conv:<id>` hash (mode, fallbacks,
pending rating, version) and its recent turns (`conv:<id>:log`). The one way other parts (the
handoff side) read or change it, so the router's keys have a single owner."""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from bot.streams import Layout


async def set_mode(r: aioredis.Redis, conversation_id: str, mode: str, *, layout: Layout | None = None,
                   **extra: str) -> None:
    """Give the conversation to a person (`agent`) or back to the bot (`bot`), with extra fields
    (e.g. `csat_pending`). Bumps `ver`, so a router that decided on the old state decides again
    (see `bot.queue`) and never answers over a person. `layout`: the key layout (partitions)."""
    key = (layout or Layout()).conv(conversation_id)
    pipe = r.pipeline(transaction=True)
    pipe.hset(key, mapping={"mode": mode, "fallbacks": "0", **extra})
    pipe.hincrby(key, "ver", 1)
    await pipe.execute()


async def recent_turns(r: aioredis.Redis, conversation_id: str, count: int = 50, *,
                       layout: Layout | None = None) -> list[dict[str, Any]]:
    """The bot's recent exchange in the conversation, oldest first: `in` (the user's redacted text),
    `out` (the bot's reply), `intent`, `at` (ISO time). Unreadable turns are skipped."""
    out: list[dict[str, Any]] = []
    for _, f in await r.xrange((layout or Layout()).conv_log(conversation_id), count=count):
        try:
            turn = orjson.loads(f["d"])
        except (KeyError, orjson.JSONDecodeError):
            continue
        if isinstance(turn, dict):
            out.append(turn)
    return out
