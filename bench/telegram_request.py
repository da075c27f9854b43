"""`python -m bench.telegram_request`: CPU per Bot API call of python-telegram-bot's transports.

The fake Bot API of the tests runs in a child process; this process makes `sendMessage` (PTB's
`Bot.send_message`, and the channel's `ReplyBot.send_text`, which builds no `Message` from the
answer) and `sendChatAction` calls, one in flight or 8 at a time, on uvloop (as the roles run),
with PTB's `HTTPXRequest`, with `channels.telegram.http.AiohttpRequest` on aiohttp alone, and with
it as the channel runs it (JSON calls over the keep-alive connections of `intents/http1.py`). It
prints this process's CPU time per call (`time.process_time`, so other people's load on the
machine barely moves it). Best of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from typing import Any

from telegram import LinkPreviewOptions, ReplyParameters
from telegram.constants import ChatAction
from telegram.request import BaseRequest, HTTPXRequest

from bench.procs import ROOT, port_open
from channels.telegram.adapter import ReplyBot
from channels.telegram.http import AiohttpRequest
from intents.rasa import free_port

FAKE = """
import asyncio, sys
from aiohttp import web
from tests.fakes.telegram_api import FakeBotAPI

async def main(port):
    api = FakeBotAPI()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", api._handle)
    async def clear():
        while True:
            await asyncio.sleep(1)
            api.calls.clear()
    asyncio.ensure_future(clear())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()

asyncio.run(main(int(sys.argv[1])))
"""


def transports() -> dict[str, Any]:
    return {
        "httpx (PTB default)": lambda: HTTPXRequest(connection_pool_size=16, read_timeout=10, write_timeout=10,
                                                    connect_timeout=5.0, pool_timeout=5.0),
        "aiohttp only": lambda: _AiohttpOnly(16, read_timeout=10, write_timeout=10, connect_timeout=5.0,
                                             pool_timeout=5.0),
        "AiohttpRequest (keep-alive)": lambda: AiohttpRequest(16, read_timeout=10, write_timeout=10,
                                                              connect_timeout=5.0, pool_timeout=5.0),
    }


class _AiohttpOnly(AiohttpRequest):
    """The channel's transport as it was before its JSON calls went over `intents/http1.py`:
    every call through aiohttp."""

    @staticmethod
    def _direct_ok(proxy: Any, files: Any, method: str) -> bool:
        return False


async def run(make: Any, base: str, calls: int, conc: int, method: str) -> float:
    from tests.fakes.telegram_api import TOKEN

    req: BaseRequest = make()
    async with ReplyBot(TOKEN, base_url=base, request=req, get_updates_request=make()) as bot:
        reply = ReplyParameters(7, allow_sending_without_reply=True)
        no_preview = LinkPreviewOptions(is_disabled=True)
        text = "Your deposit is on its way: it needs 12 confirmations."

        async def one(i: int) -> None:
            if method == "sendMessage":
                await bot.send_message(1000 + i % 50, text, reply_parameters=reply, link_preview_options=no_preview)
            elif method == "send_text":  # what the channel sends: no Message object built from the answer
                await bot.send_text(1000 + i % 50, text, reply_parameters=reply)
            else:
                await bot.send_chat_action(1000 + i % 50, ChatAction.TYPING)

        async def worker(w: int) -> None:
            for i in range(w, calls, conc):
                await one(i)

        await asyncio.gather(*(worker(w) for w in range(conc)))  # warm-up (connections, imports)
        t0 = time.process_time()
        await asyncio.gather(*(worker(w) for w in range(conc)))
        return 1000 * (time.process_time() - t0) / calls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.telegram_request", description=__doc__)
    p.add_argument("--calls", type=int, default=1500)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    port = free_port()
    fake = subprocess.Popen([sys.executable, "-c", FAKE, str(port)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while not port_open(port):
            if fake.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake Bot API did not start")
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}/bot"
        import uvloop

        for method in ("sendMessage", "send_text", "sendChatAction"):
            for conc in (1, 8):
                for name, make in transports().items():
                    best = min(uvloop.run(run(make, base, a.calls, conc, method)) for _ in range(a.repeat))
                    print(f"{method:<15} {conc} in flight  {name:<28} {best:.3f} ms CPU per call", flush=True)
    finally:
        fake.terminate()
        fake.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
