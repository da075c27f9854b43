"""Telegram updates → our Message: what the router gets to see (no network: pure normalization)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Update

from channels.telegram.normalize import (
    BotIdentity,
    Normalized,
    normalize,
    normalize_raw,
    parse_command,
    strip_mention,
)
from tests.fakes import telegram_api as tg

ME = BotIdentity(id=tg.BOT_ID, username=tg.BOT_USERNAME, max_attachment_bytes=5 * 1024 * 1024)


def norm(update: dict[str, Any], me: BotIdentity = ME) -> Normalized:
    return normalize(Update.de_json(update, None), me)


def test_a_private_text_message_becomes_a_message_for_the_queue() -> None:
    u = tg.message("How do I enable 2FA?", uid=555, lang="en")
    n = norm(u)
    m = n.message
    assert m is not None and n.skipped is None and n.notices == ()
    assert (m.channel, m.channel_message_id, m.conversation_id, m.user_id) == (
        "telegram", str(u["update_id"]), "telegram:555", "555")
    assert m.text == "How do I enable 2FA?" and m.lang == "en"
    assert m.meta == {"reply_chat_id": "555", "reply_chat_type": "private", "chat_type": "private",
                      "reply_to_message_id": str(u["message"]["message_id"])}


def test_language_comes_from_the_text_and_the_users_telegram_language_decides_ties() -> None:
    assert norm(tg.message("USDT充值一直没到账", lang="en")).message.lang == "zh"  # type: ignore[union-attr]
    assert norm(tg.message("how to deposit", lang="zh-hans")).message.lang == "en"  # type: ignore[union-attr]
    assert norm(tg.message("???", lang="zh-hans")).message.lang == "zh"  # type: ignore[union-attr]


def test_commands_are_normalized_into_meta_and_the_text_is_kept() -> None:
    m = norm(tg.message("/status SB-000042", lang="zh")).message
    assert m is not None and m.text == "/status SB-000042"
    assert (m.meta["command"], m.meta["command_arg"]) == ("status", "SB-000042")
    assert m.lang == "zh"  # a ticket number has no language: the user's Telegram language decides
    human = norm(tg.message("/human 我要找人工客服", lang="en")).message
    assert human is not None and human.lang == "zh"
    start = norm(tg.message("/start group_account")).message
    assert start is not None and (start.meta["command"], start.meta["command_arg"]) == ("start", "group_account")
    for cmd in ("/help", "/human", "/start"):
        m = norm(tg.message(cmd)).message
        assert m is not None and m.meta["command"] == cmd[1:] and m.meta["command_arg"] == ""
    unknown = norm(tg.message("/price btc")).message
    assert unknown is not None and "command" not in unknown.meta


def test_parse_command() -> None:
    c = parse_command("/Status@SB_test_bot  T-1 ")
    assert c is not None and (c.name, c.arg, c.target, c.text) == ("status", "T-1", "SB_test_bot", "/Status T-1")
    assert parse_command("/") is None and parse_command("hello /status") is None
    assert parse_command("/status\nT-1") is not None


def test_edited_messages_are_new_messages_marked_edited() -> None:
    first = tg.message("how do I deposit ETH", uid=9)
    edit = tg.message("how do I deposit BTC", uid=9, edited=True)
    a, b = norm(first).message, norm(edit).message
    assert a is not None and b is not None
    assert b.meta["edited"] == "1" and "edited" not in a.meta
    assert a.channel_message_id != b.channel_message_id and b.text == "how do I deposit BTC"


def test_a_photo_with_caption_keeps_the_largest_size_as_attachment() -> None:
    n = norm(tg.photo(800_000, caption="deposit screenshot, USDT not arrived"))
    m = n.message
    assert m is not None and m.text == "deposit screenshot, USDT not arrived"
    [att] = m.attachments
    assert (att.name, att.content_type, att.size, att.ref) == ("photo_big.jpg", "image/jpeg", 800_000, "big-id")


def test_a_document_over_the_limit_is_refused_but_the_text_still_counts() -> None:
    n = norm(tg.document("statement.pdf", 9 * 1024 * 1024, caption="my withdrawal is stuck", lang="en"))
    assert n.message is not None and n.message.attachments == () and n.message.text == "my withdrawal is stuck"
    [notice] = n.notices
    assert notice.kind == "system" and notice.meta["reply_public_ok"] == "1"
    assert "“statement.pdf” is too large (the limit is 5 MB)" in notice.text
    assert "Your message itself has been received" in notice.text
    small = norm(tg.document("id.pdf", 100_000)).message
    assert small is not None and small.text == "" and small.attachments[0].name == "id.pdf"


def test_only_a_too_large_file_gives_a_notice_and_nothing_to_route() -> None:
    n = norm(tg.photo(50 * 1024 * 1024, lang="zh"))
    assert n.message is None and n.skipped == "only_rejected_files"
    assert "太大" in n.notices[0].text


def test_voice_in_a_private_chat_asks_for_text_instead_of_silence() -> None:
    n = norm(tg.message(None, voice={"file_id": "v", "file_unique_id": "v", "duration": 3}))
    assert n.message is None and n.skipped == "unsupported_media"
    assert "text, photos and documents" in n.notices[0].text
    service = norm(tg.message(None, new_chat_title="x"))
    assert service.message is None and service.skipped == "no_content" and service.notices == ()


def test_in_groups_only_mentions_and_replies_to_the_bot_are_taken() -> None:
    gid = -100123
    plain = norm(tg.message("how do I deposit", chat_id=gid, chat_type="supergroup"))
    assert plain.message is None and plain.skipped == "group_not_addressed"
    other = norm(tg.message("@someone_else hi", chat_id=gid, chat_type="supergroup"))
    assert other.message is None

    m = norm(tg.message("@SB_Test_Bot, how do I deposit?", chat_id=gid, chat_type="supergroup")).message
    assert m is not None and m.text == "how do I deposit?"
    # each member of a group is their own conversation (a handoff must not silence the group)
    assert m.conversation_id == f"telegram:{gid}:{m.user_id}" and m.meta["reply_chat_type"] == "supergroup"

    reply = tg.message("and for ETH?", chat_id=gid, chat_type="group",
                       reply_to=tg.bot_message(gid, "Deposits need 12 confirmations.", chat_type="group"))
    assert norm(reply).message is not None
    to_human = tg.message("and for ETH?", chat_id=gid, chat_type="group",
                          reply_to=tg.bot_message(gid, "hi", chat_type="group", bot_id=999))
    assert norm(to_human).message is None


def test_group_commands_must_name_the_bot() -> None:
    gid = -100123
    m = norm(tg.message("/status@sb_test_bot T-1", chat_id=gid, chat_type="supergroup")).message
    assert m is not None and m.text == "/status T-1" and m.meta["command"] == "status"
    other = norm(tg.message("/status@other_bot T-1", chat_id=gid, chat_type="supergroup"))
    assert other.message is None and other.skipped == "command_for_another_bot"
    assert norm(tg.message("/help", chat_id=gid, chat_type="supergroup")).message is None


def test_a_mention_is_not_matched_inside_emails_or_longer_names() -> None:
    assert strip_mention("mail me at x@sb_test_bot.com", "sb_test_bot") == ("mail me at x@sb_test_bot.com", False)
    assert strip_mention("@sb_test_bot2 hi", "sb_test_bot")[1] is False
    assert strip_mention("你好 @sb_test_bot ，提币卡住了", "sb_test_bot") == ("你好 ，提币卡住了", True)


def test_without_a_known_username_groups_rely_on_replies() -> None:
    me = BotIdentity(id=tg.BOT_ID, username=None, max_attachment_bytes=1000)
    assert norm(tg.message("@sb_test_bot hi", chat_id=-5, chat_type="group"), me).message is None


def test_a_button_press_becomes_a_message_with_the_buttons_data() -> None:
    u = tg.callback("csat:5", uid=77, lang="en", on_text="这个回答有帮助吗？")
    n = norm(u)
    m = n.message
    assert m is not None and n.callback_query_id == u["callback_query"]["id"]
    assert m.text == "csat:5" and m.meta["callback"] == "1" and m.conversation_id == "telegram:77"
    assert m.lang == "zh"  # the message with the buttons was Chinese
    assert m.meta["reply_to_message_id"] == "77" == m.meta["callback_message_id"]


def test_unknown_updates_and_other_senders_are_skipped_not_errors() -> None:
    inline = {"update_id": 5, "inline_query": {"id": "q", "from": tg.user(), "query": "btc", "offset": ""}}
    assert norm(inline).skipped == "unsupported_update" and norm(inline).kind == "inline_query"
    post = {"update_id": 6, "channel_post": {"message_id": 1, "date": 0, "chat": {"id": -1001, "type": "channel"},
                                             "text": "news"}}
    assert norm(post).skipped == "unsupported_update"
    bot_msg = tg.message("hi")
    bot_msg["message"]["from"]["is_bot"] = True
    assert norm(bot_msg).skipped == "from_bot"
    assert norm({"update_id": 7}).skipped == "unsupported_update"


def test_being_blocked_is_reported_as_a_membership_change() -> None:
    u = {"update_id": 8, "my_chat_member": {
        "chat": {"id": 555, "type": "private"}, "from": tg.user(555), "date": 0,
        "old_chat_member": {"status": "member", "user": {"id": tg.BOT_ID, "is_bot": True, "first_name": "S"}},
        "new_chat_member": {"status": "kicked", "until_date": 0,
                            "user": {"id": tg.BOT_ID, "is_bot": True, "first_name": "S"}}}}
    n = norm(u)
    assert n.membership == (555, "kicked") and n.message is None


def test_one_file_rule_for_every_channel() -> None:
    from bot.files import DEFAULT_ATTACHMENT_TYPES, attachment_refusal

    def why(ct: str, name: str, size: int = 1000) -> str | None:
        return attachment_refusal(ct, name, size, allowed=DEFAULT_ATTACHMENT_TYPES, max_bytes=10_000)

    assert why("image/jpeg", "a.jpg") is None and why("video/mp4", "rec.mp4") is None
    assert why("application/pdf", "statement.pdf", 20_000) == "size"
    assert why("application/vnd.android.package-archive", "x.apk") == "type"
    assert why("application/pdf", "invoice.apk") == "type"  # the name betrays it
    assert why("application/zip", "logs.zip") == "type"
    assert attachment_refusal("image/heic", "a.heic", 1, allowed=("image/*",), max_bytes=2) is None


def test_a_forwarded_message_is_marked_as_shown_not_said() -> None:
    origin = {"type": "hidden_user", "date": 1, "sender_user_name": "Support"}
    m = norm(tg.message("/start your account is frozen", uid=560, forward_origin=origin)).message
    assert m is not None and m.meta["forwarded"] == "1" and m.meta["forward_origin"] == "hidden_user"
    assert "command" not in m.meta  # a command inside a forwarded message is not the user's to run
    own = norm(tg.message("my withdrawal is stuck", uid=561,
                          forward_origin={"type": "user", "date": 1, "sender_user": tg.user(561)})).message
    assert own is not None and "forwarded" not in own.meta


# -- the JSON path for plain private texts (normalize_raw) -------------------------------------------

def same(raw: Normalized | None, ptb: Normalized) -> None:
    """The JSON path took the update and made what the PTB path makes (ids and times aside)."""
    assert raw is not None
    fields = ("kind", "skipped", "notices", "callback_query_id", "membership", "secret_in_group", "group_message")
    assert [getattr(raw, f) for f in fields] == [getattr(ptb, f) for f in fields]
    assert (raw.message is None) == (ptb.message is None)
    if raw.message is not None and ptb.message is not None:
        skip = {"id", "received_at"}
        assert raw.message.model_dump(exclude=skip) == ptb.message.model_dump(exclude=skip)


def test_a_plain_private_text_is_normalized_from_the_json_exactly_as_through_ptb() -> None:
    cases = [
        tg.message("How do I enable 2FA?", uid=555), tg.message("USDT充值一直没到账怎么办", lang="zh-hans"),
        tg.message("???", lang="zh-hans"), tg.message("hi", lang=None), tg.message("/status SB-000042", lang="zh"),
        tg.message("/start group_account"), tg.message("/human 我要找人工客服"), tg.message("/help"),
        tg.message(f"@{tg.BOT_USERNAME} /status SB-000042"), tg.message(f"/status@{tg.BOT_USERNAME} SB-1"),
        tg.message("/start@other_bot hi"), tg.message("/price btc"), tg.message("   "), tg.message(""),
        tg.message(f"hey @{tg.BOT_USERNAME}, where is my deposit"), tg.message("my key is sk_live_abcdefghijklmnop1234"),
        tg.message("corrected question", edited=True),
    ]
    full = tg.message("a user with every profile field", uid=777)
    full["message"]["chat"].update(first_name="Wei", last_name="Zhang", username="wz")
    full["message"]["from"].update(last_name="Zhang", username="wz", is_premium=True)
    full["message"]["entities"] = [{"type": "url", "offset": 0, "length": 1}]
    for u in [*cases, full]:
        same(normalize_raw(u, ME), norm(u))


def test_every_other_update_takes_the_ptb_path() -> None:
    group = tg.message(f"@{tg.BOT_USERNAME} hi", uid=1, chat_id=-100, chat_type="supergroup")
    reply = tg.message("this one", reply_to=tg.bot_message(1001, "Which one did you mean?"))
    bad_date = tg.message("hi")
    bad_date["message"]["date"] = "yesterday"  # PTB refuses it: the update goes to the dead updates
    from_bot = tg.message("hi")
    from_bot["message"]["from"]["is_bot"] = True
    link = tg.message("see this")
    link["message"]["entities"] = [{"type": "text_link", "offset": 0, "length": 3, "url": "https://x.test"}]
    extra = {**tg.message("hi"), "junk": 1}
    forwarded = tg.message("hi", forward_origin={"type": "hidden_user", "sender_user_name": "X", "date": 1})
    for u in (group, reply, bad_date, from_bot, link, extra, forwarded, tg.photo(1000, caption="my card"),
              tg.callback("csat:5"), {"update_id": 1, "edited_message": tg.message("x")["message"]}):
        assert normalize_raw(u, ME) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries(
    {"text": st.one_of(st.text(max_size=60), st.sampled_from(["/status SB-000001", "/start group_x", "/human 人工",
                                                            f"@{tg.BOT_USERNAME} /help", "/start@x_bot", " , hi"])),
     "lang": st.sampled_from(["en", "zh-hans", "zh-hant", "ru", None]), "edited": st.booleans()},
    optional={"extra": st.sampled_from([("message", "caption", "x"), ("from", "is_bot", True), ("chat", "type", "group"),
                                        ("message", "date", 1.5), ("from", "first_name", None), ("chat", "title", "t"),
                                        ("message", "entities", [{"type": "mention", "offset": 0}]),
                                        ("message", "entities", "x"), ("from", "language_code", 5)])}))
def test_the_json_path_agrees_with_ptb_or_leaves_the_update_to_it(case: dict[str, Any]) -> None:
    u = tg.message(case["text"], lang=case["lang"], edited=case["edited"])
    if "extra" in case:
        where, key, value = case["extra"]
        m = u["edited_message" if case["edited"] else "message"]
        (m if where == "message" else m[where])[key] = value
    raw = normalize_raw(u, ME)
    if raw is None:
        return
    same(raw, norm(u))  # PTB parses whatever the JSON path accepts, and agrees on it


def test_a_text_links_address_is_written_after_its_words() -> None:
    # Telegram shows "this site" and hides where it goes: the address is what the question is about
    # (agents and the phishing guidance need it). Offsets count UTF-16 units: an emoji is two.
    text = "😀 is this site yours? also here"
    u = tg.message(text, entities=[{"type": "text_link", "offset": 6, "length": 9, "url": "https://binance-login.example"},
                                   {"type": "text_link", "offset": 28, "length": 4, "url": "https://x.example/a"},
                                   {"type": "bold", "offset": 0, "length": 2}])
    for n in (norm(u), normalize_raw(u, ME) or norm(u)):
        assert n.message is not None
        assert n.message.text == "😀 is this site (https://binance-login.example) yours? also here (https://x.example/a)"
    # In a caption too, and not twice when the words are the address.
    photo = [{"file_id": "f", "file_unique_id": "u", "width": 10, "height": 10, "file_size": 100}]
    cap = tg.message(None, photo=photo, caption="登录这个网站",
                     caption_entities=[{"type": "text_link", "offset": 2, "length": 2, "url": "https://phish.example"}])
    m = norm(cap).message
    assert m is not None and m.text == "登录这个 (https://phish.example)网站"
    same = tg.message("https://a.example", entities=[{"type": "text_link", "offset": 0, "length": 17, "url": "https://a.example/"}])
    m = norm(same).message
    assert m is not None and m.text == "https://a.example"


# -- real-world shapes: edits, GIFs, invisible text, captioned voice -----------------------------------

def test_an_edit_repeats_no_notice_so_a_live_location_does_not_spam_the_user() -> None:
    # A shared live location arrives as an edited_message every few seconds while it lasts.
    live = {"latitude": 1.3, "longitude": 103.8, "live_period": 900}
    first = norm(tg.message(None, uid=580, location=live))
    assert first.skipped == "unsupported_media" and len(first.notices) == 1
    for _ in range(3):
        n = norm(tg.message(None, uid=580, location=live, edited=True))
        assert n.message is None and n.notices == () and n.skipped == "edit_without_text"
    # A caption edited under a file we did not keep: the corrected words go on, the notice does not.
    doc = {"file_id": "d", "file_unique_id": "d", "file_name": "wallet.apk",
           "mime_type": "application/vnd.android.package-archive", "file_size": 2000}
    n = norm(tg.message(None, uid=581, document=doc, caption="they told me to install this app", edited=True))
    assert n.message is not None and n.message.text == "they told me to install this app" and n.notices == ()


def test_a_gif_telegram_describes_twice_is_one_attachment() -> None:
    gif = {"file_id": "an", "file_unique_id": "an", "width": 320, "height": 240, "duration": 2,
           "mime_type": "video/mp4", "file_size": 90_000}
    m = norm(tg.message(None, uid=582, animation=gif, document={k: v for k, v in gif.items() if k not in (
        "width", "height", "duration")}, caption="the app shows this")).message
    assert m is not None and [a.name for a in m.attachments] == ["animation_an.mp4"]


def test_invisible_characters_alone_are_not_a_message() -> None:
    for text in ("\u200b", "\u200b\u200c\u200d\ufeff", " \u2060 "):
        u = tg.message(text, uid=583)
        assert norm(u).skipped == "no_content"
        raw = normalize_raw(u, ME)
        assert raw is not None and raw.skipped == "no_content"
    assert norm(tg.message(f"@{tg.BOT_USERNAME}\u200b", chat_id=-100123, chat_type="supergroup")).message is None


def test_a_voice_message_with_a_caption_tells_the_user_the_voice_was_not_heard() -> None:
    voice = {"file_id": "v", "file_unique_id": "v", "duration": 12, "mime_type": "audio/ogg"}
    n = norm(tg.message(None, uid=584, voice=voice, caption="listen, this is my problem"))
    assert n.message is not None and n.message.text == "listen, this is my problem"
    [notice] = n.notices
    assert "not voice messages" in notice.text


# -- what the user shows us: replies, quotes, messages from other chats ---------------------------------

SCAM = "📢 Official airdrop! Verify your wallet at the link to claim 500 USDT"
SCAM_ENTITIES = [{"type": "text_link", "offset": 47, "length": 4, "url": "https://exchange-verify.example"}]


def scammer(gid: int, text: str = SCAM, **extra: Any) -> dict[str, Any]:
    return {"message_id": 4242, "date": 1, "chat": tg.chat(gid, "supergroup"),
            "from": {"id": 666, "is_bot": False, "first_name": "Support", "username": "exchange_help_desk"},
            "text": text, "entities": SCAM_ENTITIES, **extra}


def test_asking_about_another_members_post_carries_the_post_as_a_quote() -> None:
    gid = -100777
    u = tg.message(f"@{tg.BOT_USERNAME} is this real?", uid=590, chat_id=gid, chat_type="supergroup",
                   reply_to=scammer(gid))
    n = norm(u)
    m = n.message
    assert m is not None
    assert m.text == ("is this real?\n\n> 📢 Official airdrop! Verify your wallet at the link "
                      "(https://exchange-verify.example) to claim 500 USDT")
    assert (m.meta["quoted"], m.meta["quoted_from"], m.meta["quoted_from_id"]) == ("reply", "@exchange_help_desk", "666")
    assert m.lang == "en" and n.secret_in_group is None


def test_a_selected_quote_is_what_is_shown_and_only_mentioning_the_bot_asks_about_it() -> None:
    gid = -100778
    quote = {"text": "Verify your wallet", "position": 19}
    m = norm(tg.message(f"@{tg.BOT_USERNAME}", uid=591, chat_id=gid, chat_type="supergroup",
                        reply_to=scammer(gid), quote=quote)).message
    assert m is not None and m.text == "> Verify your wallet" and m.meta["quoted"] == "reply"


def test_a_reply_to_the_bots_own_answer_is_the_users_words_only() -> None:
    bot = tg.bot_message(1001, "Deposits need 12 confirmations on Ethereum.")
    for extra in ({}, {"quote": {"text": "12 confirmations", "position": 14}}):
        m = norm(tg.message("and for BTC?", reply_to=bot, **extra)).message
        assert m is not None and m.text == "and for BTC?" and "quoted" not in m.meta


def test_a_reply_to_a_message_from_another_chat_names_its_origin_and_keeps_its_picture() -> None:
    photo = [{"file_id": "ext-small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 1000},
             {"file_id": "ext-big", "file_unique_id": "b", "width": 900, "height": 900, "file_size": 90_000}]
    ext = {"origin": {"type": "channel", "date": 1, "message_id": 9,
                      "chat": {"id": -1009, "type": "channel", "title": "Exchange Announcements", "username": "exch_news"}},
           "chat": {"id": -1009, "type": "channel", "title": "Exchange Announcements", "username": "exch_news"},
           "message_id": 9, "photo": photo}
    quote = {"text": "Send 1 ETH, get 2 back", "position": 0}
    n = norm(tg.message("是你们的官方频道吗？", uid=592, lang="zh-hans", external_reply=ext, quote=quote))
    m = n.message
    assert m is not None and m.text == "是你们的官方频道吗？\n\n> Send 1 ETH, get 2 back" and m.lang == "zh"
    assert m.meta["quoted"] == "external" and m.meta["quoted_from"] == "Exchange Announcements (@exch_news)"
    assert m.meta["quoted_from_id"] == "-1009"
    assert [a.ref for a in m.attachments] == ["ext-big"] and n.notices == ()
    hidden = {"origin": {"type": "hidden_user", "date": 1, "sender_user_name": "Binance Support"}}
    m = norm(tg.message("is this you?", external_reply=hidden)).message
    assert m is not None and m.text == "is this you?"  # no text reached us: nothing to quote
    assert (m.meta["quoted"], m.meta["quoted_from"]) == ("external", "Binance Support") and "quoted_from_id" not in m.meta


def test_a_long_shown_message_is_cut_and_every_line_is_marked() -> None:
    long = "line one\n\n" + "x" * 3000
    m = norm(tg.message("what is this", reply_to=scammer(1001, text=long, entities=[]))).message
    assert m is not None
    quote = m.text.split("\n\n", 1)[1]
    assert quote.startswith("> line one\n>\n> xxx") and quote.endswith("x…") and len(quote) < 1020
    assert all(line.startswith(">") for line in quote.splitlines())


def test_forum_topic_replies_and_commands_quote_nothing() -> None:
    gid = -100779
    topic_start = {"message_id": 50, "date": 1, "chat": tg.chat(gid, "supergroup"), "from": tg.user(5),
                   "forum_topic_created": {"name": "Deposits", "icon_color": 1}}
    m = norm(tg.message(f"@{tg.BOT_USERNAME} deposit help", uid=593, chat_id=gid, chat_type="supergroup",
                        reply_to=topic_start, message_thread_id=50, is_topic_message=True)).message
    assert m is not None and m.text == "deposit help" and "quoted" not in m.meta
    cmd = norm(tg.message("/status SB-000042", reply_to=scammer(1001))).message
    assert cmd is not None and cmd.text == "/status SB-000042" and cmd.meta["command_arg"] == "SB-000042"


def test_replies_quotes_and_external_replies_take_the_ptb_path() -> None:
    for extra in ({"reply_to": scammer(1001)}, {"quote": {"text": "x", "position": 0}},
                  {"external_reply": {"origin": {"type": "hidden_user", "date": 1, "sender_user_name": "X"}}}):
        assert normalize_raw(tg.message("is this real?", **extra), ME) is None
