"""X payloads (API v2 from polling, v1.1 from the Account Activity webhook) → Message."""

from __future__ import annotations

from bot.models import Message
from channels.twitter.normalize import (
    Skipped,
    dm_from_v2,
    dm_from_webhook,
    mention_from_v2,
    mention_from_webhook,
)

ME = "100"


def v2_tweet(**kw: object) -> dict[str, object]:
    t: dict[str, object] = {"id": "2001", "text": "@ExchangeSupport what is staking?", "author_id": "7",
                            "conversation_id": "1999", "lang": "en"}
    t.update(kw)
    return t


def v1_tweet(**kw: object) -> dict[str, object]:
    t: dict[str, object] = {
        "id_str": "3001", "text": "@ExchangeSupport &amp; hello, how do fees work?", "lang": "en",
        "user": {"id_str": "8", "screen_name": "bob"},
        "entities": {"user_mentions": [{"id_str": ME, "screen_name": "ExchangeSupport"}]},
    }
    t.update(kw)
    return t


def test_a_v2_mention_becomes_a_public_conversation_of_its_author() -> None:
    inc = {"users": [{"id": "7", "username": "alice"}],
           "media": [{"media_key": "3_9", "type": "photo", "url": "https://pbs.twimg.com/media/a.jpg"}]}
    m = mention_from_v2(v2_tweet(attachments={"media_keys": ["3_9"]},
                                 text="@ExchangeSupport @bob what is staking? https://t.co/abc",
                                 entities={"urls": [{"url": "https://t.co/abc", "media_key": "3_9"}]}), inc, ME)
    assert not isinstance(m, Skipped)
    assert (m.channel, m.channel_message_id, m.conversation_id, m.user_id) == ("twitter", "2001", "twitter:mention:7", "7")
    assert m.text == "what is staking?"
    assert m.meta == {"reply_visibility": "public", "reply_tweet_id": "2001", "reply_author_id": "7",
                      "conversation_tweet_id": "1999", "reply_handle": "alice"}
    [a] = m.attachments
    assert (a.content_type, a.ref) == ("image/jpeg", "https://pbs.twimg.com/media/a.jpg")


def test_language_comes_from_the_text_and_the_posts_lang() -> None:
    zh = mention_from_v2(v2_tweet(text="@ExchangeSupport USDT充值没到账", lang="zh"), None, ME)
    assert not isinstance(zh, Skipped) and zh.lang == "zh"
    emoji = mention_from_v2(v2_tweet(text="@ExchangeSupport 🙏🙏", lang="zh"), None, ME)
    assert not isinstance(emoji, Skipped) and emoji.lang == "zh"


def test_own_posts_and_retweets_are_skipped() -> None:
    assert mention_from_v2(v2_tweet(author_id=ME), None, ME) == Skipped("own_post")
    assert mention_from_v2(v2_tweet(referenced_tweets=[{"type": "retweeted", "id": "1"}]), None, ME) == Skipped("retweet")


def test_a_secret_in_a_post_is_redacted_before_the_queue_and_flagged_for_the_sender() -> None:
    seed = "abandon ability able about above absent absorb abstract absurd abuse access accident"
    m = mention_from_v2(v2_tweet(text=f"@ExchangeSupport hacked! my seed phrase was {seed}"), None, ME)
    assert not isinstance(m, Skipped)
    assert "abandon" not in m.text and "[REDACTED:seed_phrase]" in m.text
    assert m.meta["reply_redacted"] == "seed_phrase"


def test_a_v2_dm_event_becomes_the_users_dm_conversation() -> None:
    m = dm_from_v2({"id": "4001", "event_type": "MessageCreate", "text": "hi", "sender_id": "7",
                    "dm_conversation_id": "7-100"}, {"users": [{"id": "7", "username": "alice"}]}, ME)
    assert not isinstance(m, Skipped)
    assert (m.channel_message_id, m.conversation_id, m.user_id) == ("4001", "twitter:dm:7", "7")
    assert m.meta["reply_visibility"] == "dm" and m.meta["reply_author_id"] == "7" and m.meta["reply_handle"] == "alice"
    assert dm_from_v2({"id": "4002", "event_type": "MessageCreate", "text": "x", "sender_id": ME}, None, ME) == Skipped("own_dm")
    assert dm_from_v2({"id": "4003", "event_type": "ParticipantsJoin"}, None, ME) == Skipped("dm_event:ParticipantsJoin")


def test_a_webhook_tweet_is_unescaped_stripped_and_threaded() -> None:
    m = mention_from_webhook(v1_tweet(in_reply_to_status_id_str="2999"), ME)
    assert not isinstance(m, Skipped)
    assert m.text == "& hello, how do fees work?"
    assert (m.conversation_id, m.meta["reply_tweet_id"], m.meta["reply_handle"]) == ("twitter:mention:8", "3001", "bob")
    assert m.meta["conversation_tweet_id"] == "2999"


def test_a_long_webhook_tweet_uses_its_full_text_and_media() -> None:
    m = mention_from_webhook(v1_tweet(truncated=True, text="@ExchangeSupport short…", extended_tweet={
        "full_text": "@ExchangeSupport the full question about margin https://t.co/m",
        "entities": {"user_mentions": [{"id_str": ME}]},
        "extended_entities": {"media": [{"id_str": "55", "type": "video", "url": "https://t.co/m",
                                         "media_url_https": "https://pbs.twimg.com/v.jpg",
                                         "video_info": {"variants": [
                                             {"content_type": "application/x-mpegURL",
                                              "url": "https://video.twimg.com/v/pl.m3u8"},
                                             {"bitrate": 832000, "content_type": "video/mp4",
                                              "url": "https://video.twimg.com/v/640x360.mp4"},
                                             {"bitrate": 2176000, "content_type": "video/mp4",
                                              "url": "https://video.twimg.com/v/1280x720.mp4"}]}}]},
    }), ME)
    assert not isinstance(m, Skipped)
    assert m.text == "the full question about margin"
    # The video itself (its best MP4), never the thumbnail labelled as a video.
    assert [(a.name, a.content_type, a.ref) for a in m.attachments] == [
        ("video-55.mp4", "video/mp4", "https://video.twimg.com/v/1280x720.mp4")]


def test_webhook_tweets_not_addressed_to_us_are_skipped() -> None:
    assert mention_from_webhook(v1_tweet(user={"id_str": ME}), ME) == Skipped("own_post")
    assert mention_from_webhook(v1_tweet(retweeted_status={}), ME) == Skipped("retweet")
    assert mention_from_webhook(v1_tweet(entities={"user_mentions": []}), ME) == Skipped("not_addressed_to_us")
    reply = mention_from_webhook(v1_tweet(entities={}, in_reply_to_user_id_str=ME), ME)
    assert not isinstance(reply, Skipped)


def test_a_webhook_dm_with_media_and_our_own_echo() -> None:
    ev = {"type": "message_create", "id": "5001", "message_create": {
        "sender_id": "8", "target": {"recipient_id": ME},
        "message_data": {"text": "screenshot https://t.co/s", "attachment": {"type": "media", "media": {
            "id_str": "66", "type": "photo", "url": "https://t.co/s", "media_url_https": "https://ton.twimg.com/s.jpg"}}}}}
    m = dm_from_webhook(ev, {"8": {"screen_name": "bob"}}, ME)
    assert not isinstance(m, Skipped)
    assert (m.text, m.conversation_id, m.meta["reply_handle"]) == ("screenshot", "twitter:dm:8", "bob")
    assert m.attachments[0].ref == "https://ton.twimg.com/s.jpg"
    ev["message_create"]["sender_id"] = ME  # type: ignore[index]
    assert dm_from_webhook(ev, {}, ME) == Skipped("own_dm")


def test_a_reply_to_someone_else_under_our_post_is_not_for_us_whatever_the_wire_format() -> None:
    text = "@ExchangeSupport @bob you should have used a stop loss"
    v1 = v1_tweet(text=text, in_reply_to_user_id_str="9", in_reply_to_status_id_str="5",
                  display_text_range=[22, len(text)],
                  entities={"user_mentions": [{"id_str": ME, "indices": [0, 16]}, {"id_str": "9", "indices": [17, 21]}]})
    assert mention_from_webhook(v1, ME) == Skipped("reply_to_another_user")
    v2 = v2_tweet(text=text, in_reply_to_user_id="9",
                  entities={"mentions": [{"start": 0, "end": 16, "id": ME}, {"start": 17, "end": 21, "id": "9"}]})
    assert mention_from_v2(v2, None, ME) == Skipped("reply_to_another_user")  # no display_text_range: leading run
    # Naming us in their own words, or replying to us, is for us.
    asked = v2_tweet(text="@bob @ExchangeSupport is this true?", in_reply_to_user_id="9", display_text_range=[5, 35],
                     entities={"mentions": [{"start": 0, "end": 4, "id": "9"}, {"start": 5, "end": 21, "id": ME}]})
    assert not isinstance(mention_from_v2(asked, None, ME), Skipped)
    to_us = v1_tweet(text="@ExchangeSupport thanks", in_reply_to_user_id_str=ME, display_text_range=[17, 23])
    assert not isinstance(mention_from_webhook(to_us, ME), Skipped)


def test_a_bare_handle_is_not_a_question() -> None:
    assert mention_from_webhook(v1_tweet(text="@ExchangeSupport "), ME) == Skipped("empty_mention")
    assert mention_from_v2(v2_tweet(text="@ExchangeSupport"), None, ME) == Skipped("empty_mention")


def test_a_polled_dm_with_a_video_keeps_the_video_and_drops_the_link() -> None:
    inc = {"media": [{"media_key": "7_1", "type": "video", "preview_image_url": "https://pbs.twimg.com/t.jpg",
                      "variants": [{"bit_rate": 632000, "content_type": "video/mp4", "url": "https://video.twimg.com/a.mp4"},
                                   {"content_type": "application/x-mpegURL", "url": "https://video.twimg.com/a.m3u8"}]}]}
    m = dm_from_v2({"id": "1", "event_type": "MessageCreate", "sender_id": "8", "text": "look https://t.co/xyz",
                    "attachments": {"media_keys": ["7_1"]}}, inc, ME)
    assert not isinstance(m, Skipped)
    assert m.text == "look" and [(a.content_type, a.ref) for a in m.attachments] == [
        ("video/mp4", "https://video.twimg.com/a.mp4")]


def test_shortened_links_are_written_as_the_addresses_they_stand_for() -> None:
    # X turns every link into t.co: "is this site yours?" is about the address behind it.
    urls = {"urls": [{"url": "https://t.co/x1", "expanded_url": "https://binance-login.example/verify"},
                     {"url": "https://t.co/m9", "media_key": "3_9"}]}
    m = mention_from_v2(v2_tweet(text="@ExchangeSupport is this yours? https://t.co/x1 https://t.co/m9", entities=urls),
                        None, ME)
    assert not isinstance(m, Skipped) and m.text == "is this yours? https://binance-login.example/verify"
    dm = dm_from_v2({"id": "9", "event_type": "MessageCreate", "sender_id": "7", "text": "got this https://t.co/x1",
                     "entities": urls}, None, ME)
    assert not isinstance(dm, Skipped) and dm.text == "got this https://binance-login.example/verify"
    v1 = mention_from_webhook(v1_tweet(text="@ExchangeSupport legit? https://t.co/x1",
                                       entities={"user_mentions": [{"id_str": ME}], "urls": urls["urls"][:1]}), ME)
    assert not isinstance(v1, Skipped) and v1.text == "legit? https://binance-login.example/verify"
    v1dm = dm_from_webhook({"type": "message_create", "id": "5", "message_create": {
        "sender_id": "8", "message_data": {"text": "is https://t.co/x1 you", "entities": urls}}}, {}, ME)
    assert not isinstance(v1dm, Skipped) and v1dm.text == "is https://binance-login.example/verify you"


def test_a_long_post_polled_through_v2_is_read_whole_from_note_tweet() -> None:
    # X Premium posts run past 280: `text` holds the first 280 characters, `note_tweet` the post.
    full = ("@ExchangeSupport I tried to withdraw 0.5 BTC to my hardware wallet yesterday and the app said "
            "error 5003, and now my balance shows zero although the withdrawal history lists nothing at all. "
            "I checked the address twice and my 2FA was fine. The site I used is https://t.co/Long1 — please "
            "tell me whether my funds are safe and what I should do next, this is urgent for me.")
    cut = full[:275] + "…"
    m = mention_from_v2(v2_tweet(text=cut, entities={"mentions": [{"start": 0, "end": 16, "id": ME}]},
                                 note_tweet={"text": full, "entities": {
                                     "mentions": [{"start": 0, "end": 16, "username": "ExchangeSupport", "id": ME}],
                                     "urls": [{"start": 0, "end": 0, "url": "https://t.co/Long1",
                                               "expanded_url": "https://exchange-help.example/login"}]}}), None, ME)
    assert not isinstance(m, Skipped)
    assert m.text.startswith("I tried to withdraw") and m.text.endswith("this is urgent for me.")
    assert "https://exchange-help.example/login" in m.text and "…" not in m.text


# -- what the user shows us: quote posts and replies under someone else's post -------------------------

IMPOSTOR = {"id": "900", "author_id": "66", "text": "DM us your seed phrase to unlock your account: https://t.co/abc",
            "entities": {"urls": [{"url": "https://t.co/abc", "expanded_url": "https://exchange-unlock.example"}]}}


def test_a_v2_quote_post_carries_the_quoted_post_after_the_users_words() -> None:
    inc = {"users": [{"id": "7", "username": "alice"}, {"id": "66", "username": "Exchange_Helpdesk"}],
           "tweets": [IMPOSTOR]}
    m = mention_from_v2(v2_tweet(text="@ExchangeSupport is this real?", referenced_tweets=[{"type": "quoted", "id": "900"}]),
                        inc, ME)
    assert isinstance(m, Message)
    assert m.text == ("is this real?\n\n> DM us your seed phrase to unlock your account: "
                      "https://exchange-unlock.example")
    assert (m.meta["quoted"], m.meta["quoted_from"], m.meta["quoted_from_id"], m.meta["quoted_post_id"]) == (
        "quote_post", "@Exchange_Helpdesk", "66", "900")
    # "@Support" alone on a quote post asks about the post.
    only = mention_from_v2(v2_tweet(text="@ExchangeSupport", referenced_tweets=[{"type": "quoted", "id": "900"}]), inc, ME)
    assert isinstance(only, Message) and only.text.startswith("> DM us your seed phrase") and only.lang == "en"


def test_a_v2_reply_under_someone_elses_post_carries_that_post_but_never_our_own() -> None:
    inc = {"users": [{"id": "66", "username": "Exch_Helpdesk"}], "tweets": [
        {**IMPOSTOR, "text": "@victim We can restore your funds, send us a DM"}]}
    tweet = v2_tweet(text="@Exch_Helpdesk @ExchangeSupport is this your account?", in_reply_to_user_id="66",
                     display_text_range=[15, 54], referenced_tweets=[{"type": "replied_to", "id": "900"}],
                     entities={"mentions": [{"start": 0, "end": 14, "id": "66"}, {"start": 15, "end": 31, "id": ME}]})
    m = mention_from_v2(tweet, inc, ME)
    assert isinstance(m, Message)
    assert m.text == "is this your account?\n\n> We can restore your funds, send us a DM"
    assert (m.meta["quoted"], m.meta["quoted_from"]) == ("reply", "@Exch_Helpdesk")
    ours = mention_from_v2(v2_tweet(text="@ExchangeSupport thanks, and for BTC?", in_reply_to_user_id=ME,
                                    referenced_tweets=[{"type": "replied_to", "id": "800"}]),
                           {"tweets": [{"id": "800", "author_id": ME, "text": "Deposits need 12 confirmations."}]}, ME)
    assert isinstance(ours, Message) and ours.text == "thanks, and for BTC?" and "quoted" not in ours.meta


def test_a_webhook_quote_post_and_reply_are_marked_as_shown() -> None:
    quoted = {"id_str": "900", "text": "Claim your airdrop &amp; verify here https://t.co/abc",
              "entities": {"urls": [{"url": "https://t.co/abc", "expanded_url": "https://airdrop.example"}]},
              "user": {"id_str": "66", "screen_name": "fake_exchange"}}
    m = mention_from_webhook(v1_tweet(text="@ExchangeSupport 这是你们的活动吗？", lang="zh", is_quote_status=True,
                                      quoted_status_id_str="900", quoted_status=quoted), ME)
    assert isinstance(m, Message) and m.lang == "zh"
    assert m.text == "这是你们的活动吗？\n\n> Claim your airdrop & verify here https://airdrop.example"
    assert (m.meta["quoted"], m.meta["quoted_from"], m.meta["quoted_post_id"]) == ("quote_post", "@fake_exchange", "900")
    # A v1.1 reply names the post it is under, not its text.
    r = mention_from_webhook(v1_tweet(text="@ExchangeSupport is this account yours?", in_reply_to_status_id_str="900",
                                      in_reply_to_user_id_str="66", in_reply_to_screen_name="fake_exchange", display_text_range=[0, 39],
                                      entities={"user_mentions": [{"id_str": ME, "indices": [0, 16]}]}), ME)
    assert isinstance(r, Message) and r.text == "is this account yours?"
    assert (r.meta["quoted"], r.meta["quoted_from"], r.meta["quoted_from_id"]) == ("reply", "@fake_exchange", "66")


def test_a_secret_in_a_quoted_post_keeps_the_reply_out_of_public() -> None:
    leak = {"id": "901", "author_id": "66", "text": "my password is Hunter2Hunter2!"}
    m = mention_from_v2(v2_tweet(text="@ExchangeSupport look what he posted",
                                 referenced_tweets=[{"type": "quoted", "id": "901"}]), {"tweets": [leak]}, ME)
    assert isinstance(m, Message) and "Hunter2Hunter2" not in m.text and m.meta.get("reply_redacted")
