"""The NLU client's own HTTP/1.1 keep-alive path against small local servers that answer the way
HTTP servers may: Content-Length or chunked bodies, `Connection: close`, idle connections closed
by the server, garbage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson
import pytest

from bot.errors import NLUUnavailable
from intents.client import NLUClient

PARSE = orjson.dumps({"intent": {"name": "deposit_missing", "confidence": 0.9},
                      "intent_ranking": [{"name": "deposit_missing", "confidence": 0.9}],
                      "entities": [{"entity": "coin", "value": "USDT"}]})

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], "asyncio.Future[None] | object"]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., object]]:
    servers: list[asyncio.Server] = []

    async def start(handler) -> tuple[str, dict[str, int]]:  # type: ignore[no-untyped-def]
        stats = {"connections": 0, "requests": 0}

        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            stats["connections"] += 1
            try:
                while True:
                    body = await read_request(reader)
                    stats["requests"] += 1
                    assert orjson.loads(body)["text"]
                    if not await handler(writer, stats["requests"]):
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        srv = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        servers.append(srv)
        return f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}", stats

    yield start
    for s in servers:
        s.close()


def response(body: bytes, *, extra: bytes = b"", status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: " + \
        str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body


async def test_keep_alive_reuses_one_connection(serve) -> None:  # type: ignore[no-untyped-def]
    async def ok(w: asyncio.StreamWriter, n: int) -> bool:
        w.write(response(PARSE))
        return True

    url, stats = await serve(ok)
    async with NLUClient([url], cache_size=0) as nlu:
        for i in range(5):
            r = await nlu.parse(f"where is my usdt {i}")
            assert (r.intent, r.entity("coin")) == ("deposit_missing", "USDT")
    assert stats == {"connections": 1, "requests": 5}


async def test_chunked_bodies_and_connection_close_are_understood(serve) -> None:  # type: ignore[no-untyped-def]
    async def chunked_then_close(w: asyncio.StreamWriter, n: int) -> bool:
        a, b = PARSE[:20], PARSE[20:]
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + f"{len(a):x}\r\n".encode() + a + b"\r\n" + f"{len(b):x};ext=1\r\n".encode() + b + b"\r\n0\r\n\r\n")
        await w.drain()
        return False  # the server closes, as announced

    url, stats = await serve(chunked_then_close)
    async with NLUClient([url], cache_size=0) as nlu:
        assert (await nlu.parse("one")).intent == "deposit_missing"
        assert (await nlu.parse("two")).intent == "deposit_missing"
    assert stats["connections"] == 2  # not reused after `Connection: close`


async def test_a_connection_the_server_closed_while_idle_is_retried_on_a_new_one(serve) -> None:  # type: ignore[no-untyped-def]
    async def one_per_connection(w: asyncio.StreamWriter, n: int) -> bool:
        w.write(response(PARSE))  # says nothing about closing, then closes (a keep-alive timeout)
        await w.drain()
        return False

    url, stats = await serve(one_per_connection)
    async with NLUClient([url], cache_size=0) as nlu:
        for i in range(3):
            await asyncio.sleep(0.05)  # let the close arrive
            assert (await nlu.parse(f"q{i}")).intent == "deposit_missing"
        assert all(s.healthy for s in nlu._servers)
    assert stats["requests"] == 3


async def test_garbage_and_errors_mark_the_server_down_and_raise(serve) -> None:  # type: ignore[no-untyped-def]
    async def garbage(w: asyncio.StreamWriter, n: int) -> bool:
        w.write(b"SMTP ready\r\n\r\n" if n == 1 else response(b"oops", status=b"500 Internal Server Error"))
        return True

    url, _ = await serve(garbage)
    async with NLUClient([url], cache_size=0, backoff_max_s=0.1) as nlu:
        with pytest.raises(NLUUnavailable, match="HTTPError"):
            await nlu.parse("first")
        nlu._servers[0].healthy = True
        with pytest.raises(NLUUnavailable, match="HTTP 500"):
            await nlu.parse("second")


async def test_a_server_that_never_answers_times_out(serve) -> None:  # type: ignore[no-untyped-def]
    async def silent(w: asyncio.StreamWriter, n: int) -> bool:
        await asyncio.sleep(5)
        return False

    url, _ = await serve(silent)
    async with NLUClient([url], cache_size=0, timeout_s=0.3) as nlu:
        with pytest.raises(NLUUnavailable, match="TimeoutError"):
            await nlu.parse("anyone?")


async def test_at_most_max_in_flight_wait_at_a_server_and_a_cancelled_waiter_loses_no_slot(serve) -> None:  # type: ignore[no-untyped-def]
    """A router has many messages in flight and Rasa parses one at a time: at most
    `max_in_flight` requests wait at a server, the rest wait in the client and each freed slot
    goes to the next of them — also when a waiter was cancelled (its message's task stopped)."""
    now = {"in": 0, "max": 0}

    async def slow(w: asyncio.StreamWriter, n: int) -> bool:
        now["in"] += 1
        now["max"] = max(now["max"], now["in"])
        await asyncio.sleep(0.02)
        now["in"] -= 1
        w.write(response(PARSE))
        return True

    url, stats = await serve(slow)
    async with NLUClient([url], cache_size=0, max_in_flight=3) as nlu:
        tasks = [asyncio.create_task(nlu.parse(f"where is my deposit {i}")) for i in range(30)]
        await asyncio.sleep(0.03)
        for t in tasks[10:20]:  # some of those still waiting in the client are given up
            t.cancel()
        done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        answered = [r for r in done if not isinstance(r, BaseException)]
        assert all(r.intent == "deposit_missing" for r in answered)
        assert len(answered) >= 20 and stats["requests"] == len(answered)
        assert now["max"] == 3  # never more than max_in_flight at the server
        assert nlu._servers[0].inflight == 0
        # The slots all came back: the next parses go through at once.
        assert (await asyncio.wait_for(asyncio.gather(*(nlu.parse(f"again {i}") for i in range(6))), 5))[0].intent
