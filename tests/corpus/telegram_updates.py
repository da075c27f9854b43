"""A replay corpus of Telegram updates, written from the Bot API's documented shapes: one or more of
every update type the Bot API lists (python-telegram-bot's `Update.ALL_TYPES`) and the message
kinds people really send — in private chats, groups and forum topics. Each entry is
(name, update); the replay test posts them through the webhook and checks that every one is
either handled (queued, or answered with a notice) or knowingly skipped with a reason logged."""

from __future__ import annotations

import itertools
from typing import Any

BOT_ID = 424242
BOT = "sb_test_bot"
GROUP = -1001987650000
FORUM = -1001987650001
CHANNEL = -1001987650002
NOW = 1764800000

_ids = itertools.count(5_000_000)
_mids = itertools.count(9000)


def _user(uid: int, lang: str | None = "en", first: str = "Wei") -> dict[str, Any]:
    u: dict[str, Any] = {"id": uid, "is_bot": False, "first_name": first}
    if lang:
        u["language_code"] = lang
    return u


BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "Switchboard", "username": BOT}


def _chat(cid: int, kind: str) -> dict[str, Any]:
    c: dict[str, Any] = {"id": cid, "type": kind}
    if kind == "private":
        c["first_name"] = "Wei"
    else:
        c["title"] = {"channel": "Exchange Announcements"}.get(kind, "Exchange Community")
    if cid == FORUM:
        c["is_forum"] = True
    return c


def _msg(uid: int = 6001, chat: int | None = None, kind: str = "private", **fields: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"message_id": next(_mids), "date": NOW, "chat": _chat(chat if chat is not None else uid, kind),
                         "from": _user(uid)}
    m.update(fields)
    return m


def _up(key: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"update_id": next(_ids), key: obj}


def _text(text: str, **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return _msg(**kw, **fields)


def _bot_msg(chat: int, kind: str, text: str = "Which one did you mean?", **kw: Any) -> dict[str, Any]:
    return {"message_id": next(_mids), "date": NOW, "chat": _chat(chat, kind), "from": BOT_USER, "text": text, **kw}


_PHOTO = [{"file_id": "AgAC-small", "file_unique_id": "AQAD-s", "width": 90, "height": 160, "file_size": 1500},
          {"file_id": "AgAC-big", "file_unique_id": "AQAD-b", "width": 720, "height": 1280, "file_size": 98000}]
_POLL = {"id": "5001", "question": "Which network do you use most?", "total_voter_count": 0, "is_closed": False,
         "is_anonymous": True, "type": "regular", "allows_multiple_answers": False, "allows_revoting": False,
         "members_only": False,
         "options": [{"text": "TRC20", "voter_count": 0, "persistent_id": "o1"},
                     {"text": "ERC20", "voter_count": 0, "persistent_id": "o2"}]}
_MEMBER = {"status": "member", "user": _user(6050)}
_ADMIN_BOT = {"status": "administrator", "user": BOT_USER, "can_be_edited": False, "is_anonymous": False,
              "can_manage_chat": True, "can_delete_messages": True, "can_manage_video_chats": False,
              "can_restrict_members": False, "can_promote_members": False, "can_change_info": False,
              "can_invite_users": True, "can_post_stories": False, "can_edit_stories": False,
              "can_delete_stories": False}


def updates() -> list[tuple[str, dict[str, Any]]]:
    """The corpus, in the order it is replayed."""
    topic_root = {**_bot_msg(FORUM, "supergroup", message_id=700),
                  "forum_topic_created": {"name": "Support", "icon_color": 7322096}}
    topic_root.pop("text")
    c: list[tuple[str, dict[str, Any]]] = [
        # -- private chats: what people type and send
        ("private question", _up("message", _text("How long does a USDT TRC20 deposit take?"))),
        ("private chinese", _up("message", _text("提币一直在审核中怎么办", uid=6002, chat=6002))),
        ("start", _up("message", _text("/start"))),
        ("start deep link", _up("message", _text("/start group_withdrawal", uid=6003, chat=6003))),
        ("help", _up("message", _text("/help"))),
        ("status", _up("message", _text("/status SB-000042"))),
        ("human", _up("message", _text("/human 我要人工", uid=6004, chat=6004))),
        ("command for another bot", _up("message", _text("/start@other_bot"))),
        ("photo with caption", _up("message", _msg(photo=_PHOTO, caption="deposit not credited, see screenshot"))),
        ("photo alone", _up("message", _msg(photo=_PHOTO))),
        ("pdf statement", _up("message", _msg(document={"file_id": "BQAC-pdf", "file_unique_id": "AgAD-pdf",
                                                        "file_name": "statement.pdf", "mime_type": "application/pdf",
                                                        "file_size": 250000}))),
        ("apk", _up("message", _msg(document={"file_id": "BQAC-apk", "file_unique_id": "AgAD-apk",
                                              "file_name": "exchange-wallet-pro.apk",
                                              "mime_type": "application/vnd.android.package-archive",
                                              "file_size": 31000000}, caption="is this your app?"))),
        ("video with caption", _up("message", _msg(video={"file_id": "BAAC-v", "file_unique_id": "AgAD-v", "width": 720,
                                                          "height": 1280, "duration": 14, "mime_type": "video/mp4",
                                                          "file_size": 4200000},
                                                   caption="my balance went to zero while I watched"))),
        ("gif", _up("message", _msg(animation={"file_id": "CgAC", "file_unique_id": "AgAD-a", "width": 320,
                                               "height": 240, "duration": 3, "mime_type": "video/mp4",
                                               "file_size": 90000}))),
        ("voice", _up("message", _msg(voice={"file_id": "AwAC", "file_unique_id": "AgAD-vo", "duration": 6,
                                             "mime_type": "audio/ogg", "file_size": 21000}))),
        ("video note", _up("message", _msg(video_note={"file_id": "DQAC", "file_unique_id": "AgAD-vn", "length": 240,
                                                       "duration": 5, "file_size": 300000}))),
        ("audio", _up("message", _msg(audio={"file_id": "CQAC", "file_unique_id": "AgAD-au", "duration": 60,
                                             "mime_type": "audio/mpeg", "file_size": 900000}))),
        ("sticker", _up("message", _msg(sticker={"file_id": "CAAC", "file_unique_id": "AgAD-st", "type": "regular",
                                                 "width": 512, "height": 512, "is_animated": False,
                                                 "is_video": False, "emoji": "😭"}))),
        ("location", _up("message", _msg(location={"latitude": 22.28, "longitude": 114.16}))),
        ("venue", _up("message", _msg(venue={"location": {"latitude": 22.28, "longitude": 114.16},
                                             "title": "Exchange office", "address": "1 Queen's Road"}))),
        ("contact", _up("message", _msg(contact={"phone_number": "+85290000000", "first_name": "Wei"}))),
        ("poll", _up("message", _msg(poll=_POLL))),
        ("dice", _up("message", _msg(dice={"emoji": "🎲", "value": 6}))),
        ("forwarded from a channel", _up("message", _msg(
            text="Exchange Security Team: your account is FROZEN. Enter your 12-word phrase to unlock it.",
            forward_origin={"type": "channel", "date": NOW - 60, "chat": _chat(CHANNEL, "channel"),
                            "message_id": 31}))),
        ("forwarded from a hidden user", _up("message", _msg(
            text="Hi, this is support. Send 0.1 BTC to verify your wallet.",
            forward_origin={"type": "hidden_user", "date": NOW - 60, "sender_user_name": "Exchange Support"}))),
        ("forwarded from themselves", _up("message", _msg(
            uid=6005, chat=6005, text="my withdrawal is stuck",
            forward_origin={"type": "user", "date": NOW - 60, "sender_user": _user(6005)}))),
        ("edited private", _up("edited_message", _text("how do I withdraw BTC", edit_date=NOW + 5))),
        ("reply to the bot", _up("message", _text("the second one", reply_to_message=_bot_msg(6001, "private")))),
        ("via inline bot", _up("message", _text("gif result", via_bot={"id": 777, "is_bot": True, "first_name": "gif",
                                                                      "username": "gif"}))),
        ("web app data", _up("message", _msg(web_app_data={"data": "{}", "button_text": "Open"}))),
        ("users shared", _up("message", _msg(users_shared={"request_id": 1, "users": [{"user_id": 6060}]}))),
        ("write access allowed", _up("message", _msg(write_access_allowed={"from_request": True}))),
        ("from a bot", _up("message", {**_msg(), "from": {"id": 778, "is_bot": True, "first_name": "x"},
                                       "text": "hello"})),
        # -- groups and forum topics
        ("group chatter", _up("message", _text("anyone else's deposit slow?", uid=6010, chat=GROUP, kind="supergroup"))),
        ("group mention", _up("message", _text(f"@{BOT} what is a stablecoin?", uid=6011, chat=GROUP,
                                               kind="supergroup"))),
        ("group account question", _up("message", _text(f"@{BOT} my withdrawal is pending for 3 hours", uid=6012,
                                                        chat=GROUP, kind="supergroup"))),
        ("group secret", _up("message", _text(f"@{BOT} my password is Hunter2-Bitcoin!", uid=6013, chat=GROUP,
                                              kind="supergroup"))),
        ("group forwarded scam", _up("message", _msg(
            uid=6014, chat=GROUP, kind="supergroup", text=f"@{BOT} is this you? 'Your account is FROZEN'",
            forward_origin={"type": "hidden_user", "date": NOW, "sender_user_name": "Support"}))),
        ("group command", _up("message", _text(f"/status@{BOT} SB-000007", uid=6015, chat=GROUP, kind="supergroup"))),
        ("group command for another bot", _up("message", _text("/start@other_bot", uid=6015, chat=GROUP,
                                                               kind="supergroup"))),
        ("group reply to the bot", _up("message", _text("thanks!", uid=6016, chat=GROUP, kind="supergroup",
                                                        reply_to_message=_bot_msg(GROUP, "supergroup")))),
        ("group location to the bot", _up("message", _msg(uid=6017, chat=GROUP, kind="supergroup",
                                                          location={"latitude": 1.0, "longitude": 2.0},
                                                          reply_to_message=_bot_msg(GROUP, "supergroup")))),
        ("anonymous admin", _up("message", {**_text(f"@{BOT} pinned the rules", chat=GROUP, kind="supergroup"),
                                            "sender_chat": _chat(GROUP, "supergroup")})),
        ("new members", _up("message", _msg(uid=6018, chat=GROUP, kind="supergroup",
                                            new_chat_members=[_user(6019), _user(6020)]))),
        ("member left", _up("message", _msg(uid=6018, chat=GROUP, kind="supergroup", left_chat_member=_user(6019)))),
        ("title changed", _up("message", _msg(uid=6018, chat=GROUP, kind="supergroup", new_chat_title="Exchange CN"))),
        ("pinned", _up("message", _msg(uid=6018, chat=GROUP, kind="supergroup",
                                       pinned_message=_bot_msg(GROUP, "supergroup")))),
        ("migrated", _up("message", _msg(uid=6018, chat=-4001, kind="group", migrate_to_chat_id=GROUP))),
        ("topic created by the bot", _up("message", topic_root)),
        ("topic chatter", _up("message", _text("gm everyone", uid=6021, chat=FORUM, kind="supergroup",
                                               message_thread_id=700, is_topic_message=True,
                                               reply_to_message=topic_root))),
        ("topic mention", _up("message", _text(f"@{BOT} how do I enable 2FA?", uid=6022, chat=FORUM,
                                               kind="supergroup", message_thread_id=700, is_topic_message=True,
                                               reply_to_message=topic_root))),
        ("topic closed", _up("message", _msg(uid=6018, chat=FORUM, kind="supergroup", message_thread_id=700,
                                             is_topic_message=True, forum_topic_closed={}))),
        ("edited group mention", _up("edited_message", _text(f"@{BOT} what is a stable coin", uid=6023, chat=GROUP,
                                                             kind="supergroup", edit_date=NOW + 9))),
        ("group button press", _up("callback_query", {"id": "cq-g1", "from": _user(6024), "chat_instance": "ci-g",
                                                      "data": "clarify:deposit",
                                                      "message": _bot_msg(GROUP, "supergroup")})),
        # -- buttons, inline mode, payments
        ("button press", _up("callback_query", {"id": "cq-1", "from": _user(6001), "chat_instance": "ci-1",
                                                "data": "5", "message": _bot_msg(6001, "private")})),
        ("game button", _up("callback_query", {"id": "cq-2", "from": _user(6001), "chat_instance": "ci-1",
                                               "game_short_name": "g", "message": _bot_msg(6001, "private")})),
        ("inline query", _up("inline_query", {"id": "iq-1", "from": _user(6030), "query": "fees", "offset": ""})),
        ("chosen inline result", _up("chosen_inline_result", {"result_id": "r1", "from": _user(6030),
                                                              "query": "fees"})),
        ("shipping query", _up("shipping_query", {"id": "sq-1", "from": _user(6031), "invoice_payload": "p",
                                                  "shipping_address": {"country_code": "HK", "state": "",
                                                                       "city": "HK", "street_line1": "1",
                                                                       "street_line2": "", "post_code": "0"}})),
        ("pre-checkout query", _up("pre_checkout_query", {"id": "pq-1", "from": _user(6031), "currency": "XTR",
                                                          "total_amount": 10, "invoice_payload": "p"})),
        ("purchased paid media", _up("purchased_paid_media", {"from": _user(6031), "paid_media_payload": "p"})),
        # -- polls, membership, reactions, boosts
        ("poll state", _up("poll", _POLL)),
        ("poll answer", _up("poll_answer", {"poll_id": "5001", "user": _user(6032), "option_ids": [0],
                                            "option_persistent_ids": ["o1"]})),
        ("bot blocked", _up("my_chat_member", {"chat": _chat(6033, "private"), "from": _user(6033), "date": NOW,
                                               "old_chat_member": {"status": "member", "user": BOT_USER},
                                               "new_chat_member": {"status": "kicked", "user": BOT_USER,
                                                                   "until_date": 0}})),
        ("bot made admin", _up("my_chat_member", {"chat": _chat(GROUP, "supergroup"), "from": _user(6034),
                                                  "date": NOW,
                                                  "old_chat_member": {"status": "member", "user": BOT_USER},
                                                  "new_chat_member": _ADMIN_BOT})),
        ("chat member", _up("chat_member", {"chat": _chat(GROUP, "supergroup"), "from": _user(6050), "date": NOW,
                                            "old_chat_member": {"status": "left", "user": _user(6050)},
                                            "new_chat_member": _MEMBER})),
        ("join request", _up("chat_join_request", {"chat": _chat(GROUP, "supergroup"), "from": _user(6051),
                                                   "user_chat_id": 6051, "date": NOW})),
        ("reaction", _up("message_reaction", {"chat": _chat(GROUP, "supergroup"), "message_id": 42, "date": NOW,
                                              "user": _user(6052),
                                              "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]})),
        ("reaction count", _up("message_reaction_count", {"chat": _chat(CHANNEL, "channel"), "message_id": 42,
                                                          "date": NOW, "reactions": [{"type": {"type": "emoji",
                                                                                               "emoji": "👍"},
                                                                                      "total_count": 3}]})),
        ("boost", _up("chat_boost", {"chat": _chat(CHANNEL, "channel"), "boost": {
            "boost_id": "b1", "add_date": NOW, "expiration_date": NOW + 86400,
            "source": {"source": "premium", "user": _user(6053)}}})),
        ("boost removed", _up("removed_chat_boost", {"chat": _chat(CHANNEL, "channel"), "boost_id": "b1",
                                                     "remove_date": NOW, "source": {"source": "premium",
                                                                                    "user": _user(6053)}})),
        # -- channels and business accounts
        ("channel post", _up("channel_post", {"message_id": 31, "date": NOW, "chat": _chat(CHANNEL, "channel"),
                                              "sender_chat": _chat(CHANNEL, "channel"),
                                              "text": "Scheduled maintenance at 02:00 UTC"})),
        ("edited channel post", _up("edited_channel_post", {"message_id": 31, "date": NOW, "edit_date": NOW + 1,
                                                            "chat": _chat(CHANNEL, "channel"),
                                                            "sender_chat": _chat(CHANNEL, "channel"),
                                                            "text": "Maintenance at 03:00 UTC"})),
        ("business connection", _up("business_connection", {"id": "bc1", "user": _user(6054), "user_chat_id": 6054,
                                                             "date": NOW, "is_enabled": True})),
        ("business message", _up("business_message", {**_text("hello shop", uid=6055, chat=6055),
                                                       "business_connection_id": "bc1"})),
        ("edited business message", _up("edited_business_message", {**_text("hello shop!", uid=6055, chat=6055),
                                                                     "business_connection_id": "bc1",
                                                                     "edit_date": NOW + 1})),
        ("deleted business messages", _up("deleted_business_messages", {"business_connection_id": "bc1",
                                                                         "chat": _chat(6055, "private"),
                                                                         "message_ids": [1, 2]})),
        ("managed bot", _up("managed_bot", {"user": _user(6056), "bot": {"id": 779, "is_bot": True,
                                                                          "first_name": "Helper",
                                                                          "username": "helper_bot"}})),
        ("guest message", _up("guest_message", _text("hi from a guest", uid=6057, chat=6057))),
        # -- shapes from a newer Bot API than ours, and garbage
        ("unknown update type", {"update_id": next(_ids), "some_future_update": {"x": 1}}),
    ]
    return c
