"""X end to end: a post or DM reaches the real webhook route or poller, the real intake, router and
Rasa decide, and the real outbound sender answers through tweepy — whose HTTP session is pointed
at a local fake of the X API. What users see is what the fake recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from app.runtime import answers
from app.web import create_app
from bot.channel import OutboundSender
from bot.config import Settings
from bot.intake import make_sink
from bot.models import Decision, Outbound
from bot.queue import Queue
from bot.router import Brain, RouterWorker
from channels.twitter.adapter import TwitterChannel
from intents.client import NLUClient
from tests.conftest import make_settings
from tests.fakes.x_api import (
    ACCOUNT_ID,
    HELP_URL,
    WEBHOOK_PATH,
    FakeXAPI,
    channel_section,
    sign,
    webhook_mention,
    x_weighted_length,
)

pytestmark = [pytest.mark.redis, pytest.mark.rasa]

SEED = "abandon ability able about above absent absorb abstract absurd abuse access accident"


@pytest.fixture
async def fake_x() -> AsyncIterator[FakeXAPI]:
    f = FakeXAPI()
    await f.start()
    yield f
    await f.close()


@asynccontextmanager
async def running(settings: Settings, r: aioredis.Redis, fake: FakeXAPI) -> AsyncIterator[TwitterChannel]:
    """The channel as run_web builds it, with tweepy's documented `session` seam pointed at the fake."""
    ch = TwitterChannel.from_config(settings, settings.channel("twitter"), r)  # type: ignore[arg-type]
    session = fake.session()
    ch.client.session = session
    await ch.start(make_sink(Queue(r, settings.queue)))
    try:
        yield ch
    finally:
        await ch.stop()
        await session.close()


@asynccontextmanager
async def web(settings: Settings, r: aioredis.Redis, ch: TwitterChannel) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, r, [ch])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb") as http:
        yield http


async def deliver(http: httpx.AsyncClient, payload: dict[str, Any]) -> int:
    """POST an Account Activity delivery the way X does: raw JSON signed with the consumer secret."""
    body = orjson.dumps(payload)
    res = await http.post(WEBHOOK_PATH, content=body,
                          headers={"content-type": "application/json", "x-twitter-webhooks-signature": sign(body)})
    return res.status_code


async def route_and_send(settings: Settings, r: aioredis.Redis, ch: TwitterChannel) -> None:
    """Drain the inbound queue through the real router (burst) and the outbound stream through
    the real sender (burst)."""
    async with NLUClient(settings.nlu.urls, timeout_s=5) as nlu:
        await nlu.refresh_versions()
        worker = RouterWorker(settings, r, Brain(settings, nlu, answers(settings)))
        await asyncio.wait_for(worker.run(burst=True), 60)
    await asyncio.wait_for(OutboundSender(r, ch, claim_idle_ms=500).run(asyncio.Event(), burst=True), 60)


async def until(pred: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await pred():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def decisions(r: aioredis.Redis) -> dict[str, list[Decision]]:
    out: dict[str, list[Decision]] = {}
    for _, f in await r.xrange("decisions"):
        d = Decision.from_json(f["d"])
        out.setdefault(d.conversation_id, []).append(d)
    return out


async def test_a_general_question_in_a_mention_gets_a_short_public_answer(
    rasa_url: str, aredis: aioredis.Redis, fake_x: FakeXAPI
) -> None:
    s = make_settings(nlu={"urls": [rasa_url]}, channels=[channel_section("webhook")])
    async with running(s, aredis, fake_x) as ch, web(s, aredis, ch) as http:
        assert await deliver(http, {"for_user_id": ACCOUNT_ID, "tweet_create_events": [
            webhook_mention("501", "7001", "alice", "@ExchangeSupport what is staking?"),
            webhook_mention("502", "7002", "xiaoli", "@ExchangeSupport 什么是质押？", lang="zh"),
        ]}) == 200
        await route_and_send(s, aredis, ch)
    ds = await decisions(aredis)
    assert [(d.action.value, d.topic) for d in ds["twitter:mention:7001"]] == [("answer", "glossary")]
    assert [(d.action.value, d.topic) for d in ds["twitter:mention:7002"]] == [("answer", "glossary")]
    replies = {t["reply"]["in_reply_to_tweet_id"]: t["text"] for t in fake_x.tweets}
    assert set(replies) == {"501", "502"}
    en, zh = replies["501"], replies["502"]
    # The answers are longer than a post: whole first sentences, then the help page.
    assert en.startswith("@alice Staking means locking coins") and en.endswith(" " + HELP_URL)
    assert zh.startswith("@xiaoli 质押") and zh.endswith(" " + HELP_URL)
    assert x_weighted_length(en) <= 280 and x_weighted_length(zh) <= 280
    assert len(zh) < 200  # counted double by X, so much shorter than 280 code points
    assert fake_x.dms == []


async def test_a_theft_report_in_public_is_moved_to_dm_without_any_detail_in_public(
    rasa_url: str, aredis: aioredis.Redis, fake_x: FakeXAPI
) -> None:
    s = make_settings(nlu={"urls": [rasa_url]}, channels=[channel_section("webhook")])
    fake_x.dms_closed.add("8002")  # this user does not accept DMs from us
    async with running(s, aredis, fake_x) as ch, web(s, aredis, ch) as http:
        assert await deliver(http, {"for_user_id": ACCOUNT_ID, "tweet_create_events": [
            webhook_mention("601", "8001", "victim",
                            f"@ExchangeSupport my account was hacked and my BTC is gone!! my seed phrase was {SEED}"),
            webhook_mention("602", "8002", "closed", "@ExchangeSupport my account has been hacked, help"),
        ]}) == 200
        await route_and_send(s, aredis, ch)

    ds = await decisions(aredis)
    for conv in ("twitter:mention:8001", "twitter:mention:8002"):
        assert [(d.action.value, d.topic) for d in ds[conv]] == [("handoff", "theft")]
    assert len(await aredis.xrange("handoff")) == 2
    # The full handoff reply went by DM to the victim...
    [dm] = fake_x.dms
    assert dm["to"] == "8001" and "15 minutes" in dm["text"]
    # ...and in public only a nudge: no handoff text, no secret, no detail of the case.
    public = {t["reply"]["in_reply_to_tweet_id"]: t for t in fake_x.tweets}
    victim, closed = public["601"], public["602"]
    for t in (victim, closed):
        text = t["text"]
        assert x_weighted_length(text) <= 280
        assert "15 minutes" not in text and "[REDACTED" not in text and "abandon" not in text
        assert "BTC" not in text and "hacked" not in text
        assert t["direct_message_deep_link"].endswith(f"recipient_id={ACCOUNT_ID}")
    assert victim["text"].startswith("@victim ") and "sent you a Direct Message" in victim["text"]
    assert "delete it" in victim["text"]  # the post contained a seed phrase
    assert closed["text"].startswith("@closed ") and "Please send us a Direct Message" in closed["text"]
    # The DM went out before the public nudge that points to it.
    posts = [r for r in fake_x.requests if r.method == "POST"]
    dm_at = next(i for i, r in enumerate(posts) if r.path == "/2/dm_conversations/with/8001/messages")
    nudge_at = next(i for i, r in enumerate(posts)
                    if r.path == "/2/tweets" and r.json["reply"]["in_reply_to_tweet_id"] == "601")
    assert dm_at < nudge_at
    assert await aredis.xlen("outbound:twitter:dead") == 0


async def test_a_dm_conversation_is_answered_privately_and_handed_to_an_agent(
    rasa_url: str, aredis: aioredis.Redis, fake_x: FakeXAPI
) -> None:
    s = make_settings(nlu={"urls": [rasa_url]}, channels=[channel_section("polling")])

    async def inbound(n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return int(await aredis.xlen("inbound")) >= n
        return check

    async with running(s, aredis, fake_x) as ch:
        fake_x.add_dm("9001", "carol", "How do I deposit USDT on TRC20?")
        await until(await inbound(1))
        await route_and_send(s, aredis, ch)
        from bot.models import Decision

        [d] = [Decision.from_json(f["d"]) for _, f in await aredis.xrange("decisions")]
        assert (d.action.value, d.topic) == ("answer", "deposit")  # which deposit intent is the model's call
        assert len(fake_x.dms) == 1 and fake_x.dms[0]["text"].startswith(d.reply[:40])

        fake_x.add_dm("9001", "carol", "I want to talk to a real person")
        await until(await inbound(2))
        await route_and_send(s, aredis, ch)
        assert len(fake_x.dms) == 2 and "take over" in fake_x.dms[1]["text"]

        # The agent owns the conversation now: the bot stays quiet...
        fake_x.add_dm("9001", "carol", "hello? anyone there?")
        await until(await inbound(3))
        await route_and_send(s, aredis, ch)
        assert len(fake_x.dms) == 2
        # ...and the agent's reply (no reply_* meta from the console) reaches the user by DM.
        agent = Outbound(channel="twitter", conversation_id="twitter:dm:9001", user_id="9001", kind="agent",
                         author="Ann", text="Hi Carol, Ann here from support. Let me look into it.")
        await aredis.xadd("outbound:twitter", {"d": agent.to_json()})
        await asyncio.wait_for(OutboundSender(aredis, ch, claim_idle_ms=500).run(asyncio.Event(), burst=True), 30)
        await asyncio.sleep(0.3)  # a few more polls: our own DMs (listed by X) must not come back in

    assert [d["to"] for d in fake_x.dms] == ["9001"] * 3
    assert fake_x.dms[2]["text"].startswith("Hi Carol, Ann here")
    ds = (await decisions(aredis))["twitter:dm:9001"]
    assert [(d.action.value, d.topic, d.silent) for d in ds] == [
        ("answer", "deposit", False), ("handoff", "human", False), ("handoff", "human", True)]
    assert await aredis.xlen("inbound") == 3
    assert fake_x.tweets == []  # nothing of a DM conversation is ever public


async def test_agents_get_the_media_users_sent_and_nothing_else(aredis: aioredis.Redis, fake_x: FakeXAPI) -> None:
    settings = make_settings(channels=[channel_section("webhook")])
    photo = "https://pbs.twimg.com/media/Fx1.jpg"
    dm = "https://ton.twitter.com/1.1/ton/data/dm/1790/1791/abc.jpg"
    fake_x.media.update({photo: b"\xff\xd8public", dm: b"\xff\xd8private"})
    async with running(settings, aredis, fake_x) as ch:
        assert await ch.fetch_attachment(photo) == b"\xff\xd8public"
        assert await ch.fetch_attachment(dm) == b"\xff\xd8private"
        signed = [q for q in fake_x.requests if q.path.startswith("/_media/ton.twitter.com/")]
        assert signed and signed[-1].auth.startswith("OAuth ") and "oauth_signature=" in signed[-1].auth
        for ref in ("https://pbs.twimg.com/media/gone.jpg", "https://evil.example/x.jpg", "http://pbs.twimg.com/media/Fx1.jpg",
                    "file:///etc/passwd", "Fx1"):
            with pytest.raises(FileNotFoundError):
                await ch.fetch_attachment(ref)
