"""`python -m bench.telegram_light PORT NOTIFY_PORT`: the Bot API the Telegram rows of the bench talk
to — Telegram's side of the wire, in a process of its own, as light as an HTTP server gets.

The tests' fake (tests/fakes/telegram_api.py) is strict and records everything, on aiohttp, and
ran on a thread of the load client: its CPU (≈ 0.2–0.3 ms per reply) and its share of the
client's GIL were charged to the Telegram rows, while on a real deployment Telegram's servers
cost the machine nothing. This one parses requests with httptools (uvicorn's parser), answers
`getMe`, `sendMessage` (with a real `Message` object) and anything else with `true`, checks the
token (401 as Telegram answers), keeps connections alive, and tells the load client about every
`sendMessage` by writing its chat id as one line to each client connected on `NOTIFY_PORT`.
Its CPU is reported on its own ("telegram" in `bench.telegram_cpu`).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httptools
import orjson

from tests.fakes.telegram_api import BOT_ID, BOT_USERNAME, TOKEN

_BOT = {"id": BOT_ID, "is_bot": True, "first_name": "Switchboard", "username": BOT_USERNAME,
        "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
_HEAD = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
_PREFIX = f"/bot{TOKEN}/".encode()


class _Notify:
    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []

    async def accept(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)

    def sent(self, chat_id: int) -> None:
        line = b"%d\n" % chat_id
        for w in list(self.writers):
            if w.is_closing():
                self.writers.remove(w)
                continue
            try:
                w.write(line)
            except (ConnectionError, RuntimeError):
                self.writers.remove(w)


class _BotAPI(asyncio.Protocol):
    def __init__(self, notify: _Notify, ids: list[int]) -> None:
        self.notify = notify
        self.ids = ids
        self.transport: Any = None  # uvloop's TCPTransport is not an asyncio.Transport subclass
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url, body = self.url, b"".join(self.body)
        self.url, self.body = b"", []
        status, payload, chat = self.answer(url, body)
        self.transport.write((_HEAD % (status, b"OK" if status == 200 else b"Error", len(payload))) + payload)
        if chat is not None:
            self.notify.sent(chat)

    def answer(self, url: bytes, body: bytes) -> tuple[int, bytes, int | None]:
        if not url.startswith(_PREFIX):
            return 401, b'{"ok":false,"error_code":401,"description":"Unauthorized"}', None
        method = url[len(_PREFIX):].split(b"?", 1)[0]
        try:
            params: dict[str, Any] = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            return 400, b'{"ok":false,"error_code":400,"description":"Bad Request: can\'t parse JSON"}', None
        if method == b"getMe":
            return 200, orjson.dumps({"ok": True, "result": _BOT}), None
        if method == b"sendMessage":
            chat = int(params["chat_id"])
            self.ids[0] += 1
            msg = {"message_id": self.ids[0], "date": int(time.time()), "from": _BOT,
                   "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"}, "text": params.get("text", "")}
            return 200, orjson.dumps({"ok": True, "result": msg}), chat
        return 200, b'{"ok":true,"result":true}', None


async def serve(port: int, notify_port: int) -> None:
    loop = asyncio.get_running_loop()
    notify = _Notify()
    ids = [1000]
    await asyncio.start_server(notify.accept, "127.0.0.1", notify_port)  # first: PORT open = both are
    await loop.create_server(lambda: _BotAPI(notify, ids), "127.0.0.1", port)
    await asyncio.Event().wait()


def main() -> None:
    try:
        import uvloop

        uvloop.run(serve(int(sys.argv[1]), int(sys.argv[2])))
    except ImportError:  # pragma: no cover - uvloop is a product dependency
        asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))


if __name__ == "__main__":
    main()
