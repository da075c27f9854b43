"""python-telegram-bot on our aiohttp transport (channels/telegram/http.py), for real against the
fake Bot API and against sockets that misbehave: what a Bot API call does when Telegram answers,
refuses, floods, stalls or is unreachable — and what the channel's sender makes of it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
import trustme
from telegram import Bot, InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.errors import PermanentChannelError, TransientChannelError
from bot.models import Outbound
from channels.telegram.adapter import TelegramChannel
from channels.telegram.http import AiohttpRequest
from tests.conftest import make_settings
from tests.fakes import telegram_api as tg
from tests.fakes.telegram_api import FakeBotAPI

pytestmark = pytest.mark.filterwarnings(
    # PTB 22.x warns inside RetryAfter.__init__ (its int → timedelta migration of `retry_after`).
    "ignore:.*attribute `retry_after` will be of type:telegram.warnings.PTBDeprecationWarning"
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as f:
        yield f


def request(**kw: Any) -> AiohttpRequest:
    return AiohttpRequest(kw.pop("pool", 4), **{"read_timeout": 5.0, "write_timeout": 5.0, "connect_timeout": 2.0,
                                                "pool_timeout": 2.0, **kw})


@contextlib.asynccontextmanager
async def bot_on(base_url: str, req: AiohttpRequest | None = None) -> AsyncIterator[Bot]:
    b = Bot(tg.TOKEN, base_url=base_url, base_file_url=base_url.replace("/bot", "/file/bot"),
            request=req or request(), get_updates_request=request())
    await b._request[0].initialize()
    await b._request[1].initialize()
    try:
        yield b
    finally:
        await b.shutdown()
        await b._request[0].shutdown()
        await b._request[1].shutdown()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[int, list[asyncio.StreamWriter]]]:
    """Accepts connections, reads the request, never answers."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(Exception):
            await reader.read(65536)
            await asyncio.sleep(60)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], held
    finally:
        for w in held:
            w.close()
        server.close()


async def test_calls_reach_telegram_with_their_parameters_and_results_come_back_typed(fake: FakeBotAPI) -> None:
    async with Bot(tg.TOKEN, base_url=fake.base_url, request=request(), get_updates_request=request()) as bot:
        assert bot.username == tg.BOT_USERNAME  # getMe at initialize
        sent = await bot.send_message(501, "你好 & welcome?", reply_parameters={"message_id": 7,  # type: ignore[arg-type]
                                                                               "allow_sending_without_reply": True})
        assert sent.text == "你好 & welcome?" and sent.chat.id == 501
    [p] = fake.sent()
    assert p["chat_id"] == "501" and p["text"] == "你好 & welcome?"
    assert p["reply_parameters"] == {"message_id": 7, "allow_sending_without_reply": True}
    [call] = fake.of("sendMessage")
    assert call.status == 200


async def test_telegrams_refusals_keep_their_meaning(fake: FakeBotAPI) -> None:
    fake.fail_next("sendMessage", 1, status=429, retry_after=3)
    fake.fail_next("sendMessage", 1, status=403)
    fake.fail_next("sendMessage", 1, status=400)
    fake.fail_next("sendMessage", 1, status=502)
    async with bot_on(fake.base_url) as bot:
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(1, "a")
        assert flood.value._retry_after.total_seconds() == 3  # type: ignore[attr-defined]
        with pytest.raises(Forbidden, match="(?i)blocked"):
            await bot.send_message(1, "b")
        with pytest.raises(BadRequest, match="(?i)chat not found"):
            await bot.send_message(1, "c")
        with pytest.raises(NetworkError, match="Internal Server Error|Bad Gateway"):
            await bot.send_message(1, "d")
        await bot.send_message(1, "e")
    assert [p["text"] for p in fake.sent()] == ["e"]


async def test_an_answer_that_is_not_json_is_a_clear_error() -> None:
    from aiohttp import web

    async def html(_req: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>Bad Gateway (nginx)</html>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", html)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with bot_on(f"http://127.0.0.1:{port}/bot") as bot:
            with pytest.raises(NetworkError, match="Bad Gateway"):
                await bot.send_message(1, "x")
    finally:
        await runner.cleanup()


async def test_a_stalled_answer_times_out_and_a_full_pool_refuses_without_sending() -> None:
    async with silent_server() as (port, held):
        req = request(pool=1, read_timeout=0.3, pool_timeout=0.2)
        async with bot_on(f"http://127.0.0.1:{port}/bot", req) as bot:
            with pytest.raises(TimedOut):
                await bot.send_message(1, "stalled")
            first = asyncio.ensure_future(bot.send_message(1, "holds the only connection", read_timeout=5))
            await asyncio.sleep(0.1)
            with pytest.raises(TimedOut, match="Pool timeout"):
                await bot.send_message(1, "no connection free")
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError, TelegramError):
                await first
        assert len(held) == 2  # the refused call never opened a connection


async def test_an_unreachable_api_is_a_network_error() -> None:
    async with silent_server() as (port, _):
        pass  # closed: nothing listens on the port any more
    async with bot_on(f"http://127.0.0.1:{port}/bot") as bot:
        with pytest.raises(NetworkError, match="Connect call failed|refused"):
            await bot.send_message(1, "x")


def tls_pair() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context for 127.0.0.1 signed by a private CA, and a client context trusting it."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def test_calls_go_over_tls_and_a_certificate_nobody_vouches_for_is_refused() -> None:
    server, client = tls_pair()
    async with FakeBotAPI(tls=server) as fake:
        assert fake.base_url.startswith("https://")
        async with bot_on(fake.base_url, request(ssl_context=client)) as bot:
            assert (await bot.get_me()).username == tg.BOT_USERNAME
            await bot.send_message(501, "over TLS")
            await bot.send_message(501, "same connection")
        # The default trust (certifi's bundle) does not know the private CA: nothing is sent.
        async with bot_on(fake.base_url) as bot:
            with pytest.raises(NetworkError, match="(?i)certificate"):
                await bot.send_message(501, "to an impostor")
    assert [p["text"] for p in fake.sent()] == ["over TLS", "same connection"]


@contextlib.asynccontextmanager
async def one_answer_per_connection(mode: str) -> AsyncIterator[tuple[int, dict[str, int]]]:
    """Answers one `sendMessage` per connection, then, by `mode`:
    - "close": closes it, as a server does when its keep-alive timeout expires (without saying
      `Connection: close`);
    - "race": waits for the next request on it and closes without answering it (the close
      crossed the request on the wire);
    - "cut": reads the next request on it and cuts the connection in the middle of its answer."""
    seen = {"connections": 0, "requests": 0, "answered": 0}
    body = orjson.dumps({"ok": True, "result": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}})
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async def read_request(reader: asyncio.StreamReader) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0]))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["connections"] += 1
        try:
            await read_request(reader)
            seen["requests"] += 1
            writer.write(answer)
            await writer.drain()
            seen["answered"] += 1
            if mode == "race":
                await reader.readuntil(b"\r\n\r\n")
            elif mode == "cut":
                await read_request(reader)
                seen["requests"] += 1
                writer.write(answer[:30])
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()


@pytest.mark.parametrize("mode", ["close", "race"])
async def test_a_connection_the_server_closed_while_idle_is_replaced_and_nothing_goes_twice(mode: str) -> None:
    async with one_answer_per_connection(mode) as (port, seen), bot_on(f"http://127.0.0.1:{port}/bot") as bot:
        for i in range(3):
            await bot.send_message(1, f"reply {i}")
            await asyncio.sleep(0.05)  # "close": the server's close arrives before the next call
        # "race": calls 2 and 3 each went out on the previous call's connection, were dropped
        # unanswered, and went again on a new one.
        assert seen == {"connections": 3, "requests": 3, "answered": 3}


async def test_an_answer_cut_short_is_a_network_error_and_the_call_is_not_sent_again() -> None:
    async with one_answer_per_connection("cut") as (port, seen), bot_on(f"http://127.0.0.1:{port}/bot") as bot:
        await bot.send_message(1, "answered")
        with pytest.raises(NetworkError):
            await bot.send_message(1, "cut")  # on the same, reused connection
        assert seen == {"connections": 1, "requests": 2, "answered": 1}
async def test_files_go_up_as_multipart_and_come_down_as_bytes(fake: FakeBotAPI) -> None:
    fake.files["f1"] = b"%PDF-1.4 statement"
    async with bot_on(fake.base_url) as bot:
        await bot.send_document(501, InputFile(b"hello file", filename="note.txt"), caption="see attached")
        f = await bot.get_file("f1")
        assert bytes(await f.download_as_bytearray()) == b"%PDF-1.4 statement"
    [call] = fake.of("sendDocument")
    assert call.params["chat_id"] == "501" and call.params["caption"] == "see attached"
    doc = call.params["document"]
    assert doc["filename"] == "note.txt" and doc["data"] == b"hello file"


async def test_a_proxy_from_the_environment_is_used_unless_the_host_is_exempt(
    fake: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with silent_server() as (port, _):
        pass
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with bot_on(fake.base_url) as bot:
        with pytest.raises(NetworkError):
            await bot.send_message(1, "through the proxy")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with bot_on(fake.base_url) as bot:
        await bot.send_message(1, "direct")
    assert [p["text"] for p in fake.sent()] == ["direct"]


# -- what the channel's sender makes of it ---------------------------------------------------------

@pytest.mark.redis
async def test_the_sender_retries_transport_failures_and_waits_out_flood_control(
    aredis: aioredis.Redis, fake: FakeBotAPI
) -> None:
    s = make_settings(channels=[{"type": "telegram", "token": tg.TOKEN, "mode": "webhook",
                                 "webhook_secret": "tg-webhook_Secret42-kQ7vXz9LmN3pR5tW",
                                 "base_url": fake.base_url, "base_file_url": fake.base_file_url,
                                 "request_timeout_s": 0.3}])
    ch = TelegramChannel.from_config(s, s.channel("telegram"), aredis)  # type: ignore[arg-type]

    async def sink(_m: Any) -> str:
        return "0-1"

    await ch.start(sink)
    ob = Outbound(channel="telegram", conversation_id="telegram:501", user_id="501", text="hi",
                  meta={"reply_chat_id": "501", "reply_chat_type": "private"})
    try:
        fake.fail_next("sendMessage", 1, status=429, retry_after=2)
        with pytest.raises(TransientChannelError) as e:
            await ch.send(ob)
        assert e.value.retry_after == 2
        fake.fail_next("sendMessage", 1, status=500)
        with pytest.raises(TransientChannelError, match="telegram unavailable"):
            await ch.send(ob)
        fake.fail_next("sendMessage", 1, status=403)
        with pytest.raises(PermanentChannelError, match="forbidden"):
            await ch.send(ob)
        await ch.send(ob)
        assert [p["text"] for p in fake.sent()] == ["hi"]
        async with silent_server() as (port, _):
            assert ch._bot is not None
            ch._bot._base_url = f"http://127.0.0.1:{port}/bot{tg.TOKEN}"  # Telegram stops answering
            with pytest.raises(TransientChannelError, match="Timed out") as stalled:
                await ch.send(ob.model_copy(update={"id": "another"}))
            assert tg.TOKEN not in str(stalled.value)
    finally:
        await ch.stop()
