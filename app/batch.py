"""`switchboard route`: batch routing for evaluation and ops (the contract in DESIGN.md).

Reads JSON lines `{"channel", "user", "text"}`, writes one JSON decision per line in input order.
Each distinct (channel, user) is its own conversation, with the same policy and state rules as
the live router (so a second failed understanding escalates). Uses the Rasa server configured in
`nlu.urls` when one answers, otherwise starts one on the trained model and stops it afterwards.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import IO, Any

import orjson

from app.runtime import answers, rasa_paths
from bot.config import Settings
from bot.errors import SwitchboardError
from bot.lang import detect_language
from bot.models import Message
from bot.policy import ConvState
from bot.router import Brain
from intents.client import NLUClient
from intents.rasa import RasaError, RasaServer, free_port, model_for_data, newest_model, rasa_status, train


def _err(msg: str) -> None:
    print(f"switchboard route: {msg}", file=sys.stderr, flush=True)


def ensure_rasa(settings: Settings) -> tuple[str, RasaServer | None]:
    """URL of a ready Rasa server, and the server we started (to stop) if we had to."""
    for url in settings.nlu.urls:
        st = rasa_status(url)
        if st and (st.get("model_file") or st.get("model_id")):
            return url, None
    from intents.ops import find_model, live_version

    paths = rasa_paths(settings)
    model = model_for_data(paths)
    live = live_version(paths)
    if live:
        try:
            model = find_model(paths, live)
        except FileNotFoundError:
            pass
    try:
        if not model.exists():
            m = newest_model(paths)
            if m is None:
                _err("no trained model under models/; training one first")
                model, _ = train(paths)
            else:
                model = m
        server = RasaServer(paths, model, free_port(), log_path=settings.path(settings.data_dir) / "logs" / "rasa-route.log")
        _err(f"no Rasa server answers at {settings.nlu.urls[0]}; starting one on {model.name} at {server.url} (~20 s)")
        server.start()
        server.wait_ready(300)
    except RasaError as e:
        raise SwitchboardError(str(e)) from None
    return server.url, server


async def route_lines(settings: Settings, src: IO[str], out: IO[str]) -> int:
    url, server = await asyncio.to_thread(ensure_rasa, settings)
    try:
        return await _route(settings, url, src, out)
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)


async def _route(settings: Settings, url: str, src: IO[str], out: IO[str]) -> int:
    lines = src.read().splitlines()
    results: list[dict[str, Any] | None] = [None] * len(lines)
    by_conv: dict[str, list[tuple[int, Message]]] = {}
    bad = 0
    for i, line in enumerate(lines):
        if not line.strip():
            results[i] = {"error": "empty line"}
            bad += 1
            continue
        try:
            obj = orjson.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("a JSON object is expected")
            text, user = obj.get("text"), obj.get("user")
            channel = obj.get("channel") or "api"
            if not isinstance(text, str) or not isinstance(user, str | int) or not isinstance(channel, str):
                raise ValueError('needs "text" (string) and "user"')
            msg = Message(
                channel=channel,
                channel_message_id=f"route-{i}",
                conversation_id=f"{channel}:{user}",
                user_id=str(user),
                text=text,
                lang=detect_language(text, obj.get("lang") if isinstance(obj.get("lang"), str) else None),
            )
        except (ValueError, orjson.JSONDecodeError) as e:
            results[i] = {"error": f"line {i + 1}: {str(e).splitlines()[0][:200]}"}
            _err(f"line {i + 1}: invalid input: {str(e).splitlines()[0][:200]}")
            bad += 1
            continue
        by_conv.setdefault(msg.conversation_id, []).append((i, msg))

    for i, d in (await decide_conversations(settings, url, by_conv)).items():
        results[i] = d
    for r in results:
        out.write(orjson.dumps(r).decode() + "\n")
    out.flush()
    return 1 if bad else 0


async def decide_conversations(
    settings: Settings, url: str, by_conv: dict[str, list[tuple[int, Message]]]
) -> dict[int, dict[str, Any]]:
    """Decide every message, conversations in parallel, each conversation's messages in order."""
    results: dict[int, dict[str, Any]] = {}
    async with NLUClient([url], timeout_s=settings.nlu.timeout_s, cache_size=settings.nlu.cache_size) as nlu:
        await nlu.refresh_versions()
        brain = Brain(settings, nlu, answers(settings))
        sem = asyncio.Semaphore(16)

        async def conversation(items: list[tuple[int, Message]]) -> None:
            state = ConvState()
            for i, msg in items:
                async with sem:
                    d, state, _ = await brain.decide(msg, state)
                results[i] = d.public()

        await asyncio.gather(*(conversation(v) for v in by_conv.values()))
    return results


async def evaluate(settings: Settings, paths: list[Path], url: str | None = None) -> tuple[Any, list[Any]]:
    """Route every held-out item as its own conversation; returns (report, items)."""
    from intents.evaluate import load_items, score

    items = load_items(paths)
    server = None
    if url is None:
        url, server = await asyncio.to_thread(ensure_rasa, settings)
    assert url is not None
    try:
        by_conv = {
            f"eval:{i}": [(i, Message(channel="eval", channel_message_id=str(i), conversation_id=f"eval:{i}",
                                      user_id=str(i), text=it.text, lang=it.lang))]  # type: ignore[arg-type]
            for i, it in enumerate(items)
        }
        res = await decide_conversations(settings, url, by_conv)
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)
    return score(items, [res[i] for i in range(len(items))]), items
