"""A switchboard role with timestamps at the steps of a message's path (for `bench.timeline`).

Run as the role command (`BENCH_ROLE_CMD="<python> bench/trace_role.py"`): it wraps a few product
methods so that each records `perf_counter_ns` when it starts (`name>`) and returns (`name<`), or
when it is called (a plain function), then runs `switchboard` itself. The events are written to
`$BENCH_TRACE_OUT` when the role exits. A wrapper costs about a microsecond: a timeline shows where
the path waits and in which order the event loop runs its steps, not CPU totals (`bench.widget_cpu`).
"""

from __future__ import annotations

import atexit
import functools
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

EVENTS: list[tuple[int, str]] = []
_now = time.perf_counter_ns


def _async(cls: Any, name: str, label: str) -> None:
    f = getattr(cls, name)

    @functools.wraps(f)
    async def wrapped(*a: Any, **k: Any) -> Any:
        EVENTS.append((_now(), label + ">"))
        try:
            return await f(*a, **k)
        finally:
            EVENTS.append((_now(), label + "<"))

    setattr(cls, name, wrapped)


def _sync(cls: Any, name: str, label: str) -> None:
    f = getattr(cls, name)

    @functools.wraps(f)
    def wrapped(*a: Any, **k: Any) -> Any:
        EVENTS.append((_now(), label))
        return f(*a, **k)

    setattr(cls, name, wrapped)


def install() -> None:
    from starlette.websockets import WebSocket

    import bot.consumer as consumer
    import bot.queue as queue
    import bot.router as router
    import channels.telegram.adapter as telegram
    import channels.web.adapter as web
    import intents.client as nlu

    _async(web.WebChannel, "_accept", "accept")  # a widget line, from its frame to the queue
    _async(telegram.TelegramChannel, "handle_raw", "accept")  # a Telegram update, the same
    _async(telegram.TelegramChannel, "webhook", "hook")  # the webhook request around it
    _async(queue.Queue, "publish", "publish")  # the intake script
    _async(consumer.StreamConsumer, "_read", "read")  # every consumer's XREADGROUP
    _async(router.RouterWorker, "_handle", "handle")  # the router's handling of one entry
    _async(router.Brain, "decide", "decide")
    _async(nlu.NLUClient, "parse", "nlu")  # the NLU request
    _async(queue.Queue, "commit", "commit")  # the router's commit script
    _sync(web.Hub, "_on_message", "push")  # a mailbox wake-up (echo, reply) from pub/sub
    _async(WebSocket, "send_text", "send")  # a frame to the widget
    _async(telegram.TelegramChannel, "_send_text", "reply")  # the Telegram sender's reply
    _async(telegram.ReplyBot, "send_text", "sendMessage")  # its Bot API call


def _dump() -> None:
    out = os.environ.get("BENCH_TRACE_OUT")
    if out:
        Path(out).write_text("".join(f"{t} {label}\n" for t, label in EVENTS))


if __name__ == "__main__":
    install()
    atexit.register(_dump)
    from app.cli import main

    sys.argv[0] = "switchboard"
    main()
