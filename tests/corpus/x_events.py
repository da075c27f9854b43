"""A replay corpus of X Account Activity deliveries, written from the documented v1.1-shaped
payloads: every event type the Account Activity API sends (posts, deletes, likes, follows,
blocks, mutes, the app revocation `user_event`, DMs, typing and read indicators), plus the
posts and DMs people really send. Each entry is (name, payload, expected ids): the ids that
must reach the queue; everything else in a delivery must be skipped with a logged reason."""

from __future__ import annotations

import itertools
from typing import Any

ME = "100000000000000001"
HANDLE = "ExchangeSupport"
CREATED = "Thu Dec 04 20:00:00 +0000 2026"

_ids = itertools.count(1_795_000_000_000_000_000, 1_000)


def _id() -> str:
    return str(next(_ids))


def _user(uid: str, name: str) -> dict[str, Any]:
    return {"id": int(uid), "id_str": uid, "name": name.title(), "screen_name": name, "protected": False,
            "verified": False, "followers_count": 10, "friends_count": 20, "created_at": CREATED}


US = _user(ME, HANDLE)


def _tweet(author: str, name: str, text: str, *, mentions: tuple[tuple[str, str], ...] = ((ME, HANDLE),),
           **extra: Any) -> dict[str, Any]:
    tid = _id()
    ums = []
    for uid, screen in mentions:
        at = text.find("@" + screen)
        ums.append({"screen_name": screen, "name": screen, "id": int(uid), "id_str": uid,
                    "indices": [max(at, 0), max(at, 0) + len(screen) + 1]})
    t: dict[str, Any] = {
        "created_at": CREATED, "id": int(tid), "id_str": tid, "text": text, "truncated": False,
        "source": "<a href=\"https://mobile.twitter.com\">Twitter Web App</a>", "lang": "en",
        "in_reply_to_status_id": None, "in_reply_to_status_id_str": None, "in_reply_to_user_id": None,
        "in_reply_to_user_id_str": None, "in_reply_to_screen_name": None, "user": _user(author, name),
        "is_quote_status": False, "quote_count": 0, "reply_count": 0, "retweet_count": 0, "favorite_count": 0,
        "entities": {"hashtags": [], "urls": [], "user_mentions": ums, "symbols": []},
        "favorited": False, "retweeted": False, "filter_level": "low", "timestamp_ms": "1764878400000",
        "display_text_range": [0, len(text)],
    }
    t.update(extra)
    return t


def _dm(sender: str, text: str, **data: Any) -> dict[str, Any]:
    return {"type": "message_create", "id": _id(), "created_timestamp": "1764878400000",
            "message_create": {"target": {"recipient_id": ME}, "sender_id": sender,
                               "source_app_id": "268278", "message_data": {"text": text, "entities": {
                                   "hashtags": [], "symbols": [], "user_mentions": [], "urls": []}, **data}}}


def deliveries() -> list[tuple[str, dict[str, Any], set[str]]]:
    q1 = _tweet("7101", "alice", "@ExchangeSupport how do I enable 2FA?")
    q2 = _tweet("7102", "bo", "@ExchangeSupport 提币一直在审核中", lang="zh")
    ours = _tweet(ME, HANDLE, "@alice here is how", mentions=(("7101", "alice"),))
    rt = _tweet("7103", "carl", "RT @ExchangeSupport: maintenance tonight", retweeted_status={"id_str": "1"})
    reply_other_text = "@ExchangeSupport @dana you should have used a stop loss"
    reply_other = _tweet("7104", "eve", reply_other_text, mentions=((ME, HANDLE), ("7105", "dana")),
                         in_reply_to_status_id_str="1790000000000000999", in_reply_to_user_id_str="7105",
                         in_reply_to_screen_name="dana", display_text_range=[22, len(reply_other_text)])
    reply_us = _tweet("7106", "finn", "thanks, that worked", mentions=(),
                      in_reply_to_status_id_str="1790000000000000998", in_reply_to_user_id_str=ME,
                      in_reply_to_screen_name=HANDLE)
    bare = _tweet("7107", "gus", "@ExchangeSupport")
    long_text = "@ExchangeSupport " + "my futures position was liquidated even though the mark price never " \
        "reached my liquidation price, can someone explain how the insurance fund works here?"
    long = _tweet("7108", "hana", long_text[:140] + "…", truncated=True, extended_tweet={
        "full_text": long_text, "display_text_range": [0, len(long_text)],
        "entities": {"hashtags": [], "urls": [], "symbols": [], "user_mentions": [
            {"screen_name": HANDLE, "id_str": ME, "id": int(ME), "indices": [0, 17]}]}})
    photo = _tweet("7109", "ivan", "@ExchangeSupport my deposit is missing https://t.co/ph0to", extended_entities={
        "media": [{"id": 1, "id_str": "1795000000000000001", "type": "photo", "url": "https://t.co/ph0to",
                   "media_url_https": "https://pbs.twimg.com/media/Gx1.jpg", "indices": [39, 62]}]})
    quote = _tweet("7110", "jo", "@ExchangeSupport is this account yours?", is_quote_status=True,
                   quoted_status={"id_str": "1790000000000000997", "text": "DM me for support",
                                  "user": _user("7199", "exchange_supp0rt")})
    dm_text = _dm("7201", "How do I change my withdrawal address whitelist?")
    dm_video = _dm("7202", "screen recording https://t.co/v1d", attachment={"type": "media", "media": {
        "id_str": "1795000000000000002", "type": "video", "url": "https://t.co/v1d",
        "media_url_https": "https://pbs.twimg.com/dm_video_thumb/1/img/t.jpg",
        "video_info": {"variants": [{"bitrate": 832000, "content_type": "video/mp4",
                                     "url": "https://video.twimg.com/dm_video/1/vid/720x1280/v.mp4"}]}}})
    dm_quick = _dm("7203", "Deposit", quick_reply_response={"type": "options", "metadata": "deposit"})
    dm_ours = {**_dm(ME, "our own reply"), "message_create": {**_dm(ME, "x")["message_create"], "sender_id": ME}}
    users = {"7201": _user("7201", "kim"), "7202": _user("7202", "lu"), "7203": _user("7203", "max"), ME: US}
    return [
        ("mentions", {"for_user_id": ME, "tweet_create_events": [q1, q2, long, photo, quote, reply_us]},
         {q1["id_str"], q2["id_str"], long["id_str"], photo["id_str"], quote["id_str"], reply_us["id_str"]}),
        ("our own post, a retweet, a reply to someone else, a bare handle",
         {"for_user_id": ME, "tweet_create_events": [ours, rt, reply_other, bare]}, set()),
        ("a blocked author", {"for_user_id": ME, "user_has_blocked": "true",
                              "tweet_create_events": [_tweet("7111", "scam", "@ExchangeSupport scam exchange DM me")]},
         set()),
        ("a post deleted", {"for_user_id": ME, "tweet_delete_events": [
            {"status": {"id": q1["id_str"], "user_id": "7101"}, "timestamp_ms": "1764878500000"}]}, set()),
        ("likes", {"for_user_id": ME, "favorite_events": [{"id": "a7", "created_at": CREATED,
                                                           "timestamp_ms": 1764878400000,
                                                           "favorited_status": ours, "user": _user("7112", "nia")}]},
         set()),
        ("follows", {"for_user_id": ME, "follow_events": [{"type": "follow", "created_timestamp": "1764878400000",
                                                           "target": US, "source": _user("7113", "oli")}]}, set()),
        ("unfollows", {"for_user_id": ME, "unfollow_events": [{"type": "unfollow",
                                                               "created_timestamp": "1764878400000",
                                                               "target": US, "source": _user("7113", "oli")}]},
         set()),
        ("blocks", {"for_user_id": ME, "block_events": [{"type": "block", "created_timestamp": "1764878400000",
                                                         "source": US, "target": _user("7114", "pat")}]}, set()),
        ("a blocked user's later post", {"for_user_id": ME, "tweet_create_events": [
            _tweet("7114", "pat", "@ExchangeSupport you blocked me?")]}, set()),
        ("unblocks", {"for_user_id": ME, "unblock_events": [{"type": "unblock", "created_timestamp": "1764878400000",
                                                             "source": US, "target": _user("7114", "pat")}]}, set()),
        ("mutes", {"for_user_id": ME, "mute_events": [{"type": "mute", "created_timestamp": "1764878400000",
                                                       "source": US, "target": _user("7115", "quinn")}]}, set()),
        ("unmutes", {"for_user_id": ME, "unmute_events": [{"type": "unmute", "created_timestamp": "1764878400000",
                                                           "source": US, "target": _user("7115", "quinn")}]}, set()),
        ("app revoked", {"user_event": {"revoke": {"date_time": "2026-12-04T20:00:00.000Z",
                                                   "target": {"app_id": "13090192"},
                                                   "source": {"user_id": ME}}}}, set()),
        ("dms", {"for_user_id": ME, "direct_message_events": [dm_text, dm_video, dm_quick, dm_ours], "users": users,
                 "apps": {"268278": {"id": "268278", "name": "Twitter Web App", "url": "https://twitter.com"}}},
         {dm_text["id"], dm_video["id"], dm_quick["id"]}),
        ("typing", {"for_user_id": ME, "direct_message_indicate_typing_events": [
            {"created_timestamp": "1764878400000", "sender_id": "7201", "target": {"recipient_id": ME}}],
            "users": users}, set()),
        ("read receipts", {"for_user_id": ME, "direct_message_mark_read_events": [
            {"created_timestamp": "1764878400000", "sender_id": "7201", "target": {"recipient_id": ME},
             "last_read_event_id": dm_text["id"]}], "users": users}, set()),
        ("another account's events", {"for_user_id": "999", "tweet_create_events": [
            _tweet("7116", "rae", "@someone hi", mentions=(("999", "someone"),))]}, set()),
        ("an event type from the future", {"for_user_id": ME, "community_note_events": [{"id": "1"}]}, set()),
    ]
