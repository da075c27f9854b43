"""The review queue: misunderstood messages from the decision log (clarify, rephrased at once)
and agents' "bot was wrong" marks, grouped by similarity with a suggested intent, for ops to accept
into the training data or discard."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select, update

from app.runtime import connect_redis, rasa_paths, ticket_service
from bot.config import Settings
from bot.redact import redact
from intents.ops import Candidate, _norm, accept, candidates_from_decisions, existing_examples, group

DISCARDED = "review:discarded"


async def gather(settings: Settings, limit: int = 20_000) -> list[Candidate]:
    from handoff.models import Feedback

    r = connect_redis(settings)
    try:
        from bot.streams import Layout

        lay = Layout.of(settings)
        raw: list[Any] = []
        for p in lay.all():  # every partition's capped log (one stream on a single Redis)
            raw += await r.xrevrange(lay.decisions(p), count=limit) or []
        decisions = []
        for _, f in raw:
            try:
                decisions.append(orjson.loads(f["d"]))
            except (KeyError, orjson.JSONDecodeError):
                continue
        cands = candidates_from_decisions(decisions)
        svc, engine = await ticket_service(settings, r, migrate=True)
        try:
            async with svc.sm() as s:
                rows = (await s.execute(select(Feedback).where(Feedback.status == "new"))).scalars()
                for fb in rows:
                    cands.append(Candidate(fb.text, fb.lang, fb.predicted_intent, fb.correct_intent,
                                           ["agent"], ids=[f"feedback:{fb.id}"]))
        finally:
            await engine.dispose()
        discarded = set(await r.smembers(DISCARDED))
    finally:
        await r.aclose()
    # Shown and accepted only redacted — with today's engine, also what an older one let through.
    for c in cands:
        c.text = redact(c.text).text
    paths = rasa_paths(settings)
    known = {lang: existing_examples(paths, lang) for lang in ("en", "zh")}
    fresh = [c for c in cands if _norm(c.text) not in discarded and _norm(c.text) not in known.get(c.lang, set())]
    return group(fresh)


async def resolve(settings: Settings, text: str, *, intent: str | None, lang: str) -> bool:
    """Accept (intent given) or discard (intent None) one reviewed message."""
    from handoff.models import Feedback

    added = False
    if intent:
        added = accept(rasa_paths(settings), text, lang, intent)
    r = connect_redis(settings)
    try:
        await r.sadd(DISCARDED, _norm(text))  # handled either way: never shown again
        svc, engine = await ticket_service(settings, r, migrate=True)
        try:
            async with svc.sm() as s, s.begin():
                await s.execute(update(Feedback).where(Feedback.text == text, Feedback.status == "new")
                                .values(status="accepted" if intent else "discarded"))
        finally:
            await engine.dispose()
    finally:
        await r.aclose()
    return added
