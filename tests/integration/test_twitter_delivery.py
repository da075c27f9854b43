"""X delivery guarantees on the real Redis, without the NLU: signed webhooks only, rate limits
honoured without losing or repeating a reply, polling checkpoints that survive a restart, and an
X outage that leaves the rest of the product working."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from app.runtime import build_channels
from app.web import create_app
from bot.channel import OutboundSender
from bot.errors import TransientChannelError
from bot.intake import make_sink
from bot.models import Message, Outbound
from bot.queue import Queue
from channels.twitter.adapter import TwitterChannel
from tests.conftest import make_settings
from tests.fakes.x_api import (
    ACCOUNT_ID,
    WEBHOOK_PATH,
    FakeXAPI,
    channel_section,
    sign,
    webhook_dm,
    webhook_mention,
)

pytestmark = [pytest.mark.redis]


@pytest.fixture
async def fake_x() -> AsyncIterator[FakeXAPI]:
    f = FakeXAPI()
    await f.start()
    yield f
    await f.close()


async def until(pred: Callable[[], Awaitable[bool] | bool], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while True:
        res = pred()
        if await res if isinstance(res, Awaitable) else res:
            return
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def channel(settings: Any, r: aioredis.Redis, fake: FakeXAPI) -> TwitterChannel:
    return TwitterChannel(settings, settings.channel("twitter"), r, session=fake.session())


async def close(ch: TwitterChannel) -> None:
    session = ch.client.session
    await ch.stop()
    await session.close()


async def test_only_deliveries_signed_by_x_reach_the_queue(aredis: aioredis.Redis, fake_x: FakeXAPI) -> None:
    s = make_settings(channels=[channel_section("webhook")])
    ch = channel(s, aredis, fake_x)
    await ch.start(make_sink(Queue(aredis, s.queue)))
    payload = {"for_user_id": ACCOUNT_ID,
               "tweet_create_events": [webhook_mention("701", "5001", "eve", "@ExchangeSupport what is a limit order?")],
               "direct_message_events": [webhook_dm("702", "5002", "hi")]}
    body = orjson.dumps(payload)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(s, aredis, [ch])),
                                     base_url="http://sb") as http:
            crc = await http.get(WEBHOOK_PATH, params={"crc_token": "abc"})
            assert crc.json() == {"response_token": sign(b"abc")}
            for headers in ({}, {"x-twitter-webhooks-signature": sign(body, "another-secret")},
                            {"x-twitter-webhooks-signature": sign(body + b" ")}):
                res = await http.post(WEBHOOK_PATH, content=body, headers=headers)
                assert res.status_code == 403
            assert await aredis.xlen("inbound") == 0
            good = {"x-twitter-webhooks-signature": sign(body)}
            assert (await http.post(WEBHOOK_PATH, content=body, headers=good)).status_code == 200
            # X may deliver the same event again: taken once.
            assert (await http.post(WEBHOOK_PATH, content=body, headers=good)).status_code == 200
    finally:
        await close(ch)
    msgs = [Message.from_json(f["m"]) for _, f in await aredis.xrange("inbound")]
    assert [(m.channel_message_id, m.conversation_id) for m in msgs] == [
        ("701", "twitter:mention:5001"), ("702", "twitter:dm:5002")]


async def test_rate_limited_replies_wait_for_the_reset_and_go_out_once_in_order(
    aredis: aioredis.Redis, fake_x: FakeXAPI
) -> None:
    s = make_settings(channels=[channel_section("webhook", dm_max_chars=120)])
    ch = channel(s, aredis, fake_x)
    public = Outbound(channel="twitter", conversation_id="twitter:mention:42", user_id="42", kind="answer",
                      topic="trading", text="A limit order executes only at your price or better.",
                      meta={"reply_visibility": "public", "reply_tweet_id": "900", "reply_author_id": "42",
                            "reply_handle": "dana"})
    paras = [f"Step {i}: " + "check the network and the memo before you send anything. " for i in range(3)]
    private = Outbound(channel="twitter", conversation_id="twitter:dm:43", user_id="43", kind="answer",
                       topic="deposit", text="\n\n".join(paras),
                       meta={"reply_visibility": "dm", "reply_author_id": "43"})
    for ob in (public, private):
        await aredis.xadd("outbound:twitter", {"d": ob.to_json()})
    # The first post and the second DM part hit the rate limit.
    fake_x.fail_next(1, 429, reset_in=1.0, path_prefix="/2/tweets")
    fake_x.fail_next(1, 429, reset_in=1.0, path_prefix="/2/dm_conversations", skip=1)
    t0 = time.time()
    try:
        await asyncio.wait_for(OutboundSender(aredis, ch, claim_idle_ms=60_000).run(asyncio.Event(), burst=True), 30)
    finally:
        await close(ch)

    posts = [r for r in fake_x.requests if r.method == "POST"]
    assert [r.path.split("/")[2] for r in posts] == ["tweets", "tweets"] + ["dm_conversations"] * 4
    # Each retry waited for the x-rate-limit-reset the API gave.
    (tweet_path, tweet_reset), (dm_path, dm_reset) = fake_x.rate_limited
    assert tweet_path == "/2/tweets" and posts[1].at >= tweet_reset
    assert dm_path == "/2/dm_conversations/with/43/messages" and posts[4].at >= dm_reset
    assert [t["text"] for t in fake_x.tweets] == ["@dana " + public.text]
    assert [d["text"] for d in fake_x.dms] == [p.strip() for p in paras]  # every part once, in order
    assert all(len(d["text"]) <= 120 for d in fake_x.dms)
    assert await aredis.xlen("outbound:twitter:dead") == 0
    assert time.time() - t0 < 15


async def test_polling_resumes_from_its_checkpoint_after_a_restart(aredis: aioredis.Redis, fake_x: FakeXAPI) -> None:
    s = make_settings(channels=[channel_section("polling")])
    taken: list[str] = []
    accept = make_sink(Queue(aredis, s.queue))

    async def sink(m: Message) -> str | None:
        taken.append(m.channel_message_id)
        return await accept(m)

    m1 = fake_x.add_mention("6001", "frank", "@ExchangeSupport what are the maker fees?")
    m2 = fake_x.add_mention("6002", "grace", "@ExchangeSupport 什么是杠杆？", lang="zh")
    d1 = fake_x.add_dm("6003", "heidi", "hello, a question about VIP")

    first = channel(s, aredis, fake_x)
    await first.start(sink)
    await until(lambda: first.poll_rounds["mentions"] >= 3 and first.poll_rounds["dms"] >= 3)
    await close(first)
    assert sorted(taken) == sorted([m1, m2, d1])
    assert await aredis.get(f"twitter:{ACCOUNT_ID}:since:mentions") == m2
    assert await aredis.get(f"twitter:{ACCOUNT_ID}:since:dms") == d1

    m3 = fake_x.add_mention("6001", "frank", "@ExchangeSupport and the taker fees?")
    d2 = fake_x.add_dm("6003", "heidi", "still there?")
    n_before = len(fake_x.requests)
    second = channel(s, aredis, fake_x)  # a new process: nothing in memory
    await second.start(sink)
    await until(lambda: second.poll_rounds["mentions"] >= 2 and second.poll_rounds["dms"] >= 2)
    await close(second)

    first_mentions_call = next(r for r in fake_x.requests[n_before:] if r.path.endswith("/mentions"))
    assert first_mentions_call.query.get("since_id") == m2 and "start_time" not in first_mentions_call.query
    # No double intake: every post and DM went to the sink exactly once (not even as a duplicate).
    assert sorted(taken) == sorted([m1, m2, d1, m3, d2])
    assert await aredis.xlen("inbound") == 5
    msgs = {Message.from_json(f["m"]).channel_message_id: Message.from_json(f["m"]) for _, f in await aredis.xrange("inbound")}
    assert msgs[m2].lang == "zh" and msgs[m2].conversation_id == "twitter:mention:6002"
    assert msgs[d2].conversation_id == "twitter:dm:6003"


async def test_an_x_outage_degrades_only_the_twitter_channel(aredis: aioredis.Redis, fake_x: FakeXAPI) -> None:
    fake_x.down = True
    s = make_settings(channels=[{"type": "web"}, channel_section("polling", account_id=None)])
    web, tw = build_channels(s, aredis)
    assert isinstance(tw, TwitterChannel)
    tw.client.session = fake_x.session()
    sink = make_sink(Queue(aredis, s.queue))
    t0 = time.monotonic()
    for ch in (web, tw):
        await ch.start(sink)
    assert time.monotonic() - t0 < 0.5  # nothing waits for X at start
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(s, aredis, [web, tw])),
                                     base_url="http://sb") as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/widget.js")).status_code == 200
        await until(lambda: len(fake_x.calls("GET", "/2/users/me")) >= 4)  # retried with back-off
        assert tw.poll_rounds == {"mentions": 0, "dms": 0}
        ob = Outbound(channel="twitter", conversation_id="twitter:dm:1", user_id="1", text="hi",
                      meta={"reply_visibility": "dm", "reply_author_id": "1"})
        with pytest.raises(TransientChannelError):  # the sender keeps it and retries
            await tw.send(ob)
        fake_x.down = False  # X is back: the poller recovers by itself
        await until(lambda: tw.poll_rounds["mentions"] >= 1 and tw.poll_rounds["dms"] >= 1, within_s=15)
        assert tw.account_id == ACCOUNT_ID
    finally:
        t1 = time.monotonic()
        await web.stop()
        await close(tw)
        assert time.monotonic() - t1 < 2


async def test_a_reply_x_refuses_for_good_is_dead_lettered_and_the_next_still_goes_out(
    aredis: aioredis.Redis, fake_x: FakeXAPI
) -> None:
    s = make_settings(channels=[channel_section("webhook")])
    ch = channel(s, aredis, fake_x)
    fake_x.dms_closed.add("44")  # the user closed their DMs after writing to us
    obs = [Outbound(channel="twitter", conversation_id=f"twitter:dm:{u}", user_id=u, text=f"reply to {u}",
                    meta={"reply_visibility": "dm", "reply_author_id": u}) for u in ("44", "45")]
    for ob in obs:
        await aredis.xadd("outbound:twitter", {"d": ob.to_json()})
    fake_x.fail_next(1, 503, path_prefix="/2/dm_conversations/with/45")  # a blip: retried
    try:
        await asyncio.wait_for(OutboundSender(aredis, ch, claim_idle_ms=60_000).run(asyncio.Event(), burst=True), 30)
    finally:
        await close(ch)
    assert [(d["to"], d["text"]) for d in fake_x.dms] == [("45", "reply to 45")]
    [(_, dead)] = await aredis.xrange("outbound:twitter:dead")
    assert "403" in dead["error"] and Outbound.from_json(dead["d"]).user_id == "44"
