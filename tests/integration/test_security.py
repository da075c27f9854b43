"""Security hardening (issue #17), each finding shown by what an attacker or a user would see.

Real Redis and a real database; the web app is the product's own (`create_app` with the widget
channel and the agent console), served by uvicorn in this process. X and Telegram webhooks are the
real FastAPI routes of their adapters."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from tests.conftest import make_settings

pytestmark = [pytest.mark.redis]

X_SECRET = "consumer-secret-for-tests"
X_PATH = "/webhooks/x"
TG_SECRET = "tg-webhook-secret_0123456789abcdefghijkl"


def x_sig(data: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(X_SECRET.encode(), data, hashlib.sha256).digest()).decode()


def asgi(app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 5555)) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client), base_url="http://t")


@pytest.fixture
async def x_hook(aredis: aioredis.Redis) -> AsyncIterator[tuple[FastAPI, list[Any]]]:
    from channels.twitter.adapter import TwitterChannel

    s = make_settings(channels=[{"type": "twitter", "mode": "webhook", "webhook_path": X_PATH, "account_id": "100",
                                 "consumer_key": "ck", "consumer_secret": X_SECRET, "access_token": "100-at",
                                 "access_token_secret": "ats"}])
    ch = TwitterChannel(s, s.channel("twitter"), aredis, session=object())  # type: ignore[arg-type]
    got: list[Any] = []

    async def sink(m: Any) -> str:
        got.append(m)
        return "1-0"

    await ch.start(sink)
    app = FastAPI()
    router = ch.routes()
    assert router is not None
    app.include_router(router)
    yield app, got
    ch.client.session = None
    await ch.stop()


def forged_dm(sender: str, text: str) -> bytes:
    return orjson.dumps({"for_user_id": "100", "direct_message_events": [{
        "type": "message_create", "id": "777", "created_timestamp": "1700000000000",
        "message_create": {"sender_id": sender, "target": {"recipient_id": "100"}, "message_data": {"text": text}}}]})


# -- 1. X webhook forgery through the CRC endpoint -----------------------------------------------------
async def test_the_crc_endpoint_does_not_sign_a_forged_delivery(x_hook: Any) -> None:
    app, got = x_hook
    body = forged_dm("666", "I am the account owner, please reset my 2FA")
    async with asgi(app) as http:
        res = await http.get(X_PATH, params={"crc_token": body.decode()})
        assert res.status_code == 400 and "response_token" not in res.text
        # Whatever the endpoint would have said, the delivery is only taken with X's own signature.
        assert (await http.post(X_PATH, content=body, headers={"x-twitter-webhooks-signature": "sha256=" + "A" * 44})
                ).status_code == 403
        assert (await http.post(X_PATH, content=body, headers={"x-twitter-webhooks-signature": x_sig(body)})
                ).status_code == 200
        # A real challenge (X's tokens: a few dozen base64 characters) is still answered.
        token = base64.b64encode(b"x" * 30).decode()
        res = await http.get(X_PATH, params={"crc_token": token})
        assert res.status_code == 200 and res.json() == {"response_token": x_sig(token.encode())}
        for bad in ("a" * 129, "{}", "has space", '"quoted"', "[1]"):
            assert (await http.get(X_PATH, params={"crc_token": bad})).status_code == 400
    assert [m.text for m in got] == ["I am the account owner, please reset my 2FA"]  # only the signed one


async def test_the_crc_endpoint_is_rate_limited_per_address(x_hook: Any) -> None:
    app, _ = x_hook
    async with asgi(app, ("203.0.113.9", 1)) as http:
        codes = [(await http.get(X_PATH, params={"crc_token": f"token{i}"})).status_code for i in range(14)]
    assert codes == [200] * 10 + [429] * 4
    async with asgi(app, ("203.0.113.10", 1)) as other:
        assert (await other.get(X_PATH, params={"crc_token": "token"})).status_code == 200


# -- 4. Unbounded request bodies --------------------------------------------------------------------------
class Endless:
    """A chunked body (no Content-Length) that counts how much the server pulled from it."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += self.chunk
            yield b" " * self.chunk


async def test_x_webhook_stops_reading_a_huge_body(x_hook: Any) -> None:
    app, got = x_hook
    body = Endless(64 * 1024 * 1024)
    async with asgi(app) as http:
        res = await http.post(X_PATH, content=body, headers={"x-twitter-webhooks-signature": "sha256=x"})
        assert res.status_code == 413
        declared = await http.post(X_PATH, content=b"{}", headers={"content-length": str(50 * 1024 * 1024)})
        assert declared.status_code == 413
    assert body.sent <= 2 * 1024 * 1024 and got == []


async def test_telegram_webhook_stops_reading_a_huge_body(aredis: aioredis.Redis) -> None:
    from channels.telegram.adapter import TelegramChannel

    s = make_settings(channels=[{"type": "telegram", "token": "123456:" + "A" * 35, "mode": "webhook",
                                 "webhook_secret": TG_SECRET}])
    ch = TelegramChannel(s, s.channel("telegram"), aredis)  # type: ignore[arg-type]
    app = FastAPI()
    router = ch.routes()
    assert router is not None
    app.include_router(router)
    body = Endless(64 * 1024 * 1024)
    async with asgi(app) as http:
        res = await http.post("/telegram/webhook", content=body,
                              headers={"x-telegram-bot-api-secret-token": TG_SECRET})
    assert res.status_code == 413 and body.sent <= 2 * 1024 * 1024


# -- 8. Telegram webhook secret strength -----------------------------------------------------------------
@pytest.mark.parametrize("secret", ["x", "short_secret_123", "a" * 40, "ab" * 20])
def test_a_weak_telegram_webhook_secret_is_refused_with_how_to_make_one(secret: str) -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"webhook_secret: use at least 32 random characters.*secrets.token_urlsafe"):
        make_settings(channels=[{"type": "telegram", "token": "123456:" + "A" * 35, "mode": "webhook",
                                 "webhook_secret": secret}])
    import secrets

    ok = make_settings(channels=[{"type": "telegram", "token": "123456:" + "A" * 35, "mode": "webhook",
                                  "webhook_secret": secrets.token_urlsafe(32)}])
    assert ok.channel("telegram") is not None
