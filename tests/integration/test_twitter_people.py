"""X as people really use it (issue #25): mentions that are not for us, blocked authors, videos
and photos in DMs, posts deleted before we answered, and an app revocation ops must hear about.
The real webhook route and poller, intake, router (Rasa) and sender, tweepy against the fake X API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from app.runtime import answers
from bot.models import Message
from bot.router import Brain, RouterWorker
from handoff.db import make_engine, sessionmaker, upgrade
from handoff.service import TicketService
from handoff.worker import consume_handoffs
from intents.client import NLUClient
from tests.conftest import make_settings
from tests.fakes.x_api import ACCOUNT_ID, FakeXAPI, channel_section, webhook_mention
from tests.integration import test_twitter as _base
from tests.integration.test_twitter import deliver, route_and_send, running, until, web

pytestmark = [pytest.mark.redis, pytest.mark.rasa]

fake_x = _base.fake_x  # the fake X API fixture, shared


def reply_under_our_post(tid: str, author: str, name: str, text: str, *, to_user: str, to_name: str,
                         display_from: int) -> dict[str, Any]:
    """A reply in a thread under one of our posts, answering another user: X put both handles in
    front ("@ExchangeSupport @bob …") and says where the user's own words start."""
    t = webhook_mention(tid, author, name, text)
    t["in_reply_to_status_id_str"] = "1790000000000000999"
    t["in_reply_to_user_id_str"] = to_user
    t["in_reply_to_screen_name"] = to_name
    t["display_text_range"] = [display_from, len(text)]
    t["entities"]["user_mentions"].append({"id_str": to_user, "screen_name": to_name,
                                           "indices": [17, 18 + len(to_name)]})
    return t


async def inbound(r: aioredis.Redis) -> list[Message]:
    return [Message.from_json(f["m"]) for _, f in await r.xrange("inbound")]


# -- 5. mentions that are not for us ---------------------------------------------------------------

async def test_mentions_that_are_not_for_us_get_nothing_while_a_real_question_is_answered(
    rasa_url: str, aredis: aioredis.Redis, fake_x: FakeXAPI
) -> None:
    s = make_settings(nlu={"urls": [rasa_url]}, channels=[channel_section("webhook")])
    text = "@ExchangeSupport @bob lol you got rekt, should have used a stop loss"
    async with running(s, aredis, fake_x) as ch, web(s, aredis, ch) as http:
        assert await deliver(http, {"for_user_id": ACCOUNT_ID, "tweet_create_events": [
            reply_under_our_post("701", "8101", "carl", text, to_user="8102", to_name="bob",
                                 display_from=len("@ExchangeSupport @bob ")),
            webhook_mention("702", "8103", "dora", "@ExchangeSupport"),
            webhook_mention("703", "8104", "erin", "@ExchangeSupport what is staking?"),
        ]}) == 200
        assert await deliver(http, {"for_user_id": ACCOUNT_ID, "user_has_blocked": "true", "tweet_create_events": [
            webhook_mention("704", "8105", "scammer", "@ExchangeSupport scam exchange!!! DM me for real support"),
        ]}) == 200
        await route_and_send(s, aredis, ch)
    assert [m.channel_message_id for m in await inbound(aredis)] == ["703"]
    assert [t["reply"]["in_reply_to_tweet_id"] for t in fake_x.tweets] == ["703"]
    assert fake_x.dms == []


async def test_polled_replies_to_someone_else_under_our_post_are_not_for_us(
    aredis: aioredis.Redis, fake_x: FakeXAPI
) -> None:
    s = make_settings(channels=[channel_section("polling")])
    fake_x.add_user("8202", "bob")
    text = "@ExchangeSupport @bob agreed, fees went up"
    fake_x.add_mention("8201", "carl", text, reply_to="1790000000000000999", reply_to_user="8202",
                       display_from=len("@ExchangeSupport @bob "))
    fake_x.add_mention("8203", "dora", "@ExchangeSupport @bob how do I lower my trading fees?",
                       reply_to="1790000000000000999", reply_to_user="8202", display_from=0)
    async with running(s, aredis, fake_x) as ch:
        await until(lambda: polled(ch))
    [m] = await inbound(aredis)
    assert m.user_id == "8203" and m.text == "how do I lower my trading fees?"


async def test_a_polled_quote_post_asking_is_this_real_carries_the_quoted_post(
    aredis: aioredis.Redis, fake_x: FakeXAPI
) -> None:
    # "@ExchangeSupport is this real?" over a quoted impostor's post: the question is about that post,
    # which polling asks X for (expansions=referenced_tweets.id) and writes after the user's words.
    s = make_settings(channels=[channel_section("polling")])
    scam = fake_x.add_post("8211", "exchange_supp0rt",
                           "Your account will be frozen in 24h. Verify your wallet now: https://verify-exchange.example")
    fake_x.add_mention("8212", "fay", "@ExchangeSupport is this real?", quote_of=scam)
    async with running(s, aredis, fake_x) as ch:
        await until(lambda: polled(ch))
    [m] = await inbound(aredis)
    assert m.text.startswith("is this real?\n\n> Your account will be frozen in 24h."), m.text
    assert "https://verify-exchange.example" in m.text
    assert m.meta["quoted"] == "quote_post" and m.meta["quoted_from"] == "@exchange_supp0rt"


async def polled(ch: Any) -> bool:
    return bool(ch.poll_rounds["mentions"] >= 2 and ch.poll_rounds["dms"] >= 2)


# -- 6. media in DMs -----------------------------------------------------------------------------------

async def test_a_dm_video_is_the_video_and_a_polled_dm_photo_leaves_no_link_in_the_text(
    aredis: aioredis.Redis, fake_x: FakeXAPI
) -> None:
    s = make_settings(channels=[channel_section("webhook")])
    video_dm = {"type": "message_create", "id": "1790000000000000801", "created_timestamp": "1764800000000",
                "message_create": {"target": {"recipient_id": ACCOUNT_ID}, "sender_id": "8301", "message_data": {
                    "text": "this is what I saw on my screen https://t.co/vid123",
                    "attachment": {"type": "media", "media": {
                        "id_str": "1790000000000000802", "type": "video", "url": "https://t.co/vid123",
                        "media_url_https": "https://pbs.twimg.com/dm_video_thumb/1/img/thumb.jpg",
                        "video_info": {"variants": [
                            {"content_type": "application/x-mpegURL", "url": "https://video.twimg.com/dm_video/1/pl.m3u8"},
                            {"bitrate": 256000, "content_type": "video/mp4",
                             "url": "https://video.twimg.com/dm_video/1/vid/320x568/a.mp4"},
                            {"bitrate": 832000, "content_type": "video/mp4",
                             "url": "https://video.twimg.com/dm_video/1/vid/720x1280/b.mp4"}]}}}}}}
    async with running(s, aredis, fake_x) as ch, web(s, aredis, ch) as http:
        assert await deliver(http, {"for_user_id": ACCOUNT_ID, "direct_message_events": [video_dm]}) == 200
    [m] = await inbound(aredis)
    assert m.text == "this is what I saw on my screen"
    assert [(a.content_type, a.ref) for a in m.attachments] == [
        ("video/mp4", "https://video.twimg.com/dm_video/1/vid/720x1280/b.mp4")]

    await aredis.delete("inbound")
    polling = make_settings(channels=[channel_section("polling")])
    fake_x.add_dm("8302", "fay", "my deposit page shows this", media={
        "media_key": "3_1790000000000000811", "type": "photo",
        "url": "https://ton.twitter.com/1.1/ton/data/dm/1/2/shot.jpg"})
    async with running(polling, aredis, fake_x) as ch:
        await until(lambda: polled(ch))
    [p] = await inbound(aredis)
    assert p.text == "my deposit page shows this" and "t.co" not in p.text
    assert p.attachments[0].ref == "https://ton.twitter.com/1.1/ton/data/dm/1/2/shot.jpg"


# -- 7. deleted posts, revoked access ----------------------------------------------------------------

@pytest.fixture
async def svc(tmp_path: Path, aredis: aioredis.Redis) -> AsyncIterator[TicketService]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}"
    engine = make_engine(url)
    await upgrade(engine)
    yield TicketService(make_settings(database={"url": url}), sessionmaker(engine), aredis)
    await engine.dispose()


async def test_a_post_deleted_before_we_answered_gets_no_public_reply_and_leaves_the_ticket(
    rasa_url: str, aredis: aioredis.Redis, fake_x: FakeXAPI, svc: TicketService
) -> None:
    s = make_settings(nlu={"urls": [rasa_url]}, channels=[channel_section("webhook")])
    async with running(s, aredis, fake_x) as ch, web(s, aredis, ch) as http:
        assert await deliver(http, {"for_user_id": ACCOUNT_ID, "tweet_create_events": [
            webhook_mention("901", "8401", "gina", "@ExchangeSupport what is staking?"),
            webhook_mention("902", "8402", "hank", "@ExchangeSupport my account was hacked, 2 BTC withdrawn, "
                                                   "my email is hank.w@example.com"),
        ]}) == 200
        await route(s, aredis)
        await handoffs(svc, aredis)
        # Both authors delete their posts before the replies go out.
        fake_x.deleted_tweets.update({"901", "902"})
        assert await deliver(http, {"for_user_id": ACCOUNT_ID, "tweet_delete_events": [
            {"status": {"id": "901", "user_id": "8401"}, "timestamp_ms": "1764800000000"},
            {"status": {"id": "902", "user_id": "8402"}, "timestamp_ms": "1764800000000"}]}) == 200
        await route_and_send(s, aredis, ch)
        await handoffs(svc, aredis)
    assert fake_x.tweets == []  # nothing public under a deleted post
    assert [d["to"] for d in fake_x.dms] == ["8402"]  # the theft victim still hears from us privately
    assert await aredis.xlen("outbound:twitter:dead") == 0
    agent = await svc.add_agent("ivy@example.com", "Ivy", "correct-horse-battery")
    [t] = await svc.list("all", agent)
    texts = [m["text"] for m in (await svc.detail(t["number"]))["messages"] if m["author_type"] == "user"]
    assert texts == ["[deleted by the user]"]


async def route(s: Any, r: aioredis.Redis) -> None:
    async with NLUClient(s.nlu.urls, timeout_s=5) as nlu:
        await nlu.refresh_versions()
        await asyncio.wait_for(RouterWorker(s, r, Brain(s, nlu, answers(s))).run(burst=True), 60)


async def handoffs(svc: TicketService, r: aioredis.Redis) -> None:
    await asyncio.wait_for(consume_handoffs(svc, r, asyncio.Event(), burst=True, claim_idle_ms=500), 30)


async def test_an_app_revocation_alerts_ops(aredis: aioredis.Redis, fake_x: FakeXAPI) -> None:
    s = make_settings(channels=[channel_section("webhook")])
    before = REGISTRY.get_sample_value("switchboard_channel_alerts_total",
                                       {"channel": "twitter", "event": "app_revoked"}) or 0.0
    async with running(s, aredis, fake_x) as ch, web(s, aredis, ch) as http:
        with capture_logs() as logs:
            assert await deliver(http, {"user_event": {"revoke": {
                "date_time": "2026-12-04T20:00:00.000Z", "target": {"app_id": "13090192"},
                "source": {"user_id": ACCOUNT_ID}}}}) == 200
    [alert] = [e for e in logs if e["event"] == "twitter.app_revoked"]
    assert alert["log_level"] == "error" and alert["app"] == "13090192"
    assert REGISTRY.get_sample_value("switchboard_channel_alerts_total",
                                     {"channel": "twitter", "event": "app_revoked"}) == before + 1


# -- the replay corpus -----------------------------------------------------------------------------

NOTED = {"twitter.event_skipped", "twitter.post_deleted", "twitter.block_recorded", "twitter.app_revoked"}


async def test_every_account_activity_event_of_the_corpus_is_handled_or_skipped_with_a_reason(
    rasa_url: str, aredis: aioredis.Redis, fake_x: FakeXAPI
) -> None:
    from tests.corpus.x_events import deliveries

    s = make_settings(nlu={"urls": [rasa_url]}, channels=[channel_section("webhook")])
    corpus = deliveries()
    kinds = {k for _, p, _ in corpus for k in p} - {"for_user_id", "users", "apps", "user_has_blocked"}
    assert {"tweet_create_events", "tweet_delete_events", "favorite_events", "follow_events", "unfollow_events",
            "block_events", "unblock_events", "mute_events", "unmute_events", "user_event",
            "direct_message_events", "direct_message_indicate_typing_events",
            "direct_message_mark_read_events"} <= kinds
    async with running(s, aredis, fake_x) as ch, web(s, aredis, ch) as http:
        for name, payload, want in corpus:
            before = await aredis.xlen("inbound")
            with capture_logs() as logs:
                assert await deliver(http, payload) == 200, name
            got = {m.channel_message_id for m in (await inbound(aredis))[before:]}
            assert got == want, name
            events = sum(len(v) if isinstance(v, list) else 1 for k, v in payload.items()
                         if k not in ("for_user_id", "users", "apps", "user_has_blocked"))
            noted = [e for e in logs if e["event"] in NOTED]
            assert len(got) + len(noted) >= events, (name, logs)
            assert not [e for e in logs if e["event"] == "twitter.event_malformed"], name
            assert not [e for e in logs if e["log_level"] == "error" and e["event"] != "twitter.app_revoked"], name
        await route_and_send(s, aredis, ch)
    assert await aredis.xlen("inbound:dead") == 0 and await aredis.xlen("outbound:twitter:dead") == 0
    # The deleted post got no public reply; the others that were answered in public did.
    answered = {t["reply"]["in_reply_to_tweet_id"] for t in fake_x.tweets}
    deleted = corpus[3][1]["tweet_delete_events"][0]["status"]["id"]
    assert deleted not in answered and answered
