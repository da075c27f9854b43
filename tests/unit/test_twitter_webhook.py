"""The Account Activity webhook with real CRC and signature computation (HMAC-SHA256 of the
consumer secret), served by the real FastAPI routes; the queue is replaced by a list."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from structlog.testing import capture_logs

from bot.models import Message
from channels.twitter.adapter import TwitterChannel
from tests.conftest import make_settings

SECRET = "consumer-secret-for-tests"
ME = "100"
PATH = "/webhooks/x"


def independent_sig(secret: str, data: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


pytestmark = [pytest.mark.redis]


def tweet_event(tid: str, author: str, text: str, mentions: tuple[str, ...] = (ME,)) -> dict[str, Any]:
    return {"id_str": tid, "text": text, "lang": "en", "user": {"id_str": author, "screen_name": f"u{author}"},
            "entities": {"user_mentions": [{"id_str": m} for m in mentions]}}


def dm_event(eid: str, sender: str, text: str) -> dict[str, Any]:
    return {"type": "message_create", "id": eid, "created_timestamp": "1700000000000",
            "message_create": {"sender_id": sender, "target": {"recipient_id": ME}, "message_data": {"text": text}}}


@contextlib.asynccontextmanager
async def webhook_app(aredis: aioredis.Redis) -> AsyncIterator[tuple[FastAPI, list[Message]]]:
    """The X channel in webhook mode (account ME, consumer secret SECRET, at PATH) on a bare app;
    the list collects what it queues. Also used by the security tests."""
    s = make_settings(channels=[{"type": "twitter", "mode": "webhook", "webhook_path": PATH, "account_id": ME,
                                 "consumer_key": "ck", "consumer_secret": SECRET, "access_token": f"{ME}-at",
                                 "access_token_secret": "ats"}])
    # The webhook path reads Redis (blocked authors, deleted posts): the real one, our test DB.
    ch = TwitterChannel(s, s.channel("twitter"), aredis, session=object())  # type: ignore[arg-type]
    got: list[Message] = []

    async def sink(m: Message) -> str:
        got.append(m)
        return "1-0"

    await ch.start(sink)
    app = FastAPI()
    router = ch.routes()
    assert router is not None
    app.include_router(router)
    try:
        yield app, got
    finally:
        ch.client.session = None
        await ch.stop()


@pytest.fixture
async def hook(aredis: aioredis.Redis) -> Any:
    async with webhook_app(aredis) as (app, got), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        yield http, got


async def post(http: httpx.AsyncClient, payload: Any, sig: str | None = "auto", raw: bytes | None = None) -> int:
    body = raw if raw is not None else orjson.dumps(payload)
    headers = {"content-type": "application/json"}
    if sig == "auto":
        headers["x-twitter-webhooks-signature"] = independent_sig(SECRET, body)
    elif sig is not None:
        headers["x-twitter-webhooks-signature"] = sig
    return (await http.post(PATH, content=body, headers=headers)).status_code


async def test_crc_challenge_is_answered_with_the_hmac_of_the_consumer_secret(hook: Any) -> None:
    http, _ = hook
    res = await http.get(PATH, params={"crc_token": "challenge-123"})
    assert res.status_code == 200
    assert res.json() == {"response_token": independent_sig(SECRET, b"challenge-123")}
    assert (await http.get(PATH)).status_code == 400


async def test_signed_mentions_and_dms_are_taken_and_everything_else_skipped(hook: Any) -> None:
    http, got = hook
    payload = {
        "for_user_id": ME,
        "tweet_create_events": [
            tweet_event("11", "7", "@ExchangeSupport what is a stop-limit order?"),
            tweet_event("12", ME, "@u7 here is how it works"),  # our own reply
            tweet_event("13", "8", "I love crypto", mentions=()),  # not addressed to us
            {"id_str": "14", "user": "not-an-object"},  # malformed: skipped, not a crash
        ],
        "direct_message_events": [dm_event("21", "9", "hello"), dm_event("22", ME, "our echo")],
        "users": {"9": {"id": "9", "screen_name": "carol"}},
        "favorite_events": [{"id": "x"}],
        "follow_events": [{"type": "follow"}],
    }
    with capture_logs() as logs:
        assert await post(http, payload) == 200
    skipped = sorted(e["reason"] for e in logs if e["event"] == "twitter.event_skipped")
    assert skipped == ["not_a_message:follow", "not_a_message:like", "not_addressed_to_us", "own_dm", "own_post"]
    assert [e["kind"] for e in logs if e.get("reason", "").startswith("not_a_message")] == [
        "favorite_events", "follow_events"]
    assert any(e["event"] == "twitter.event_malformed" for e in logs)
    assert [(m.channel_message_id, m.conversation_id, m.text) for m in got] == [
        ("11", "twitter:mention:7", "what is a stop-limit order?"),
        ("21", "twitter:dm:9", "hello"),
    ]
    assert got[1].meta["reply_handle"] == "carol"


@pytest.mark.parametrize("sig", [
    None,
    "",
    "sha256=AAAA",
    independent_sig("wrong-secret", orjson.dumps({"for_user_id": ME})),
])
async def test_a_bad_or_missing_signature_is_rejected_and_nothing_is_taken(hook: Any, sig: str | None) -> None:
    http, got = hook
    payload = {"for_user_id": ME, "tweet_create_events": [tweet_event("11", "7", "@ExchangeSupport hi")]}
    assert await post(http, payload, sig=sig) == 403
    assert got == []


async def test_a_body_changed_after_signing_is_rejected(hook: Any) -> None:
    http, got = hook
    signed = orjson.dumps({"for_user_id": ME, "tweet_create_events": []})
    tampered = orjson.dumps({"for_user_id": ME, "tweet_create_events": [tweet_event("11", "7", "@ExchangeSupport hi")]})
    assert await post(http, None, sig=independent_sig(SECRET, signed), raw=tampered) == 403
    assert got == []


async def test_signed_garbage_is_a_400_and_another_accounts_events_are_ignored(hook: Any) -> None:
    http, got = hook
    assert await post(http, None, raw=b"{not json") == 400
    assert await post(http, {"for_user_id": "999", "tweet_create_events": [tweet_event("11", "7", "@x hi", ("999",))]}) == 200
    assert got == []


def test_polling_mode_exposes_no_webhook_route() -> None:
    s = make_settings(channels=[{"type": "twitter", "bearer_token": "b"}])
    ch = TwitterChannel(s, s.channel("twitter"), aioredis.from_url("redis://127.0.0.1:1/0"))  # type: ignore[arg-type]
    assert ch.routes() is None


async def test_the_account_is_asked_of_x_never_taken_from_a_delivery_for_another_user(aredis: aioredis.Redis) -> None:
    # Every account subscribed to the app's webhook gets deliveries. Without `account_id` in the
    # config, the first delivery after a start may be another user's: the support account must not
    # become that user (answering posts addressed to them, ignoring its own).
    s = make_settings(channels=[{"type": "twitter", "mode": "webhook", "webhook_path": PATH, "consumer_key": "ck",
                                 "consumer_secret": SECRET, "access_token": "at", "access_token_secret": "ats"}])
    ch = TwitterChannel(s, s.channel("twitter"), aredis, session=object())  # type: ignore[arg-type]
    got: list[Message] = []
    x_answers: list[Any] = [OSError("X unreachable"), {"data": {"id": ME, "username": "ExchangeSupport"}}]

    async def get_me(**_: Any) -> Any:
        answer = x_answers.pop(0) if len(x_answers) > 1 else x_answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sink(m: Message) -> str:
        got.append(m)
        return "1-0"

    ch.client.get_me = get_me  # type: ignore[method-assign]
    await ch.start(sink)
    app = FastAPI()
    app.include_router(ch.routes())  # type: ignore[arg-type]
    other = {"for_user_id": "999", "tweet_create_events": [tweet_event("31", "7", "@marketing hi", ("999",))],
             "direct_message_events": [dm_event("32", "7", "hi marketing")]}
    ours = {"for_user_id": ME, "tweet_create_events": [tweet_event("33", "7", "@ExchangeSupport what is a stop order?")]}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            assert await post(http, other) == 503  # X cannot say who we are yet: X delivers again later
            assert await post(http, other) == 200
            assert await post(http, ours) == 200
    finally:
        ch.client.session = None
        await ch.stop()
    assert ch.account_id == ME
    assert [m.channel_message_id for m in got] == ["33"]
