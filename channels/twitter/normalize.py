"""X payloads → `bot.models.Message`, as pure functions (no tweepy, no I/O).

Two wire formats reach us: API v2 objects from polling (GET /2/users/:id/mentions,
GET /2/dm_events, with `includes`) and the v1.1-shaped objects the Account Activity webhook
delivers (`tweet_create_events`, `direct_message_events`). Both become the same Message:

* conversation: `twitter:mention:<author id>` for public posts (one user's public back-and-forth
  is one conversation, whichever thread it is in) and `twitter:dm:<user id>` for DMs;
* channel_message_id: the tweet id or DM event id — X's ids are unique across both, and intake
  dedupes on them, so a post seen by polling and webhook alike is handled once;
* meta `reply_*` keys tell the sender where and how to answer (the router copies them onto the
  Outbound): `reply_visibility` public|dm, `reply_tweet_id`, `reply_author_id`, `reply_handle`,
  `reply_redacted` (the post contained a secret: never answer it in public).

A payload we do not handle returns `Skipped(reason)`; the caller logs it. Never an exception for
a well-formed-but-unexpected event.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from bot.intake import redacted
from bot.lang import detect_language
from bot.models import MAX_TEXT_CHARS, Attachment, Message
from channels.twitter.text import strip_leading_mentions

CHANNEL = "twitter"

_MEDIA_TYPES = {"photo": "image/jpeg", "video": "video/mp4", "animated_gif": "video/mp4"}


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str


def mention_conversation(author_id: str) -> str:
    return f"twitter:mention:{author_id}"


def dm_conversation(user_id: str) -> str:
    return f"twitter:dm:{user_id}"


def _clean(text: str, drop_urls: list[str]) -> str:
    """X HTML-escapes &, < and > in post text, and appends the t.co link of attached media."""
    text = html.unescape(text)
    for u in drop_urls:
        if u:
            text = text.replace(u, "")
    return text.strip()[:MAX_TEXT_CHARS]


def _attachment(kind: str, key: str, url: str | None) -> Attachment:
    return Attachment(
        name=f"{kind}-{key}",
        content_type=_MEDIA_TYPES.get(kind, "application/octet-stream"),
        ref=url or key,
    )


def _finish(msg: Message) -> Message:
    """Redact here as well as in intake, so a post that contained a secret is marked
    `reply_redacted` and the sender never answers it in public."""
    safe = redacted(msg)
    kinds = safe.meta.get("redacted")
    if kinds:
        return safe.model_copy(update={"meta": {**safe.meta, "reply_redacted": kinds}})
    return safe


def _s(v: Any) -> str:
    return "" if v is None else str(v)


# -- API v2 (polling) -------------------------------------------------------------------------------


def _v2_includes(includes: dict[str, Any] | None) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    inc = includes or {}
    users = {_s(u.get("id")): u for u in inc.get("users") or [] if isinstance(u, dict)}
    media = {_s(m.get("media_key")): m for m in inc.get("media") or [] if isinstance(m, dict)}
    return users, media


def _v2_media(obj: dict[str, Any], media: dict[str, dict[str, Any]]) -> tuple[tuple[Attachment, ...], list[str]]:
    keys = (obj.get("attachments") or {}).get("media_keys") or []
    atts = []
    for k in keys:
        m = media.get(_s(k), {})
        atts.append(_attachment(_s(m.get("type")) or "media", _s(k), m.get("url") or m.get("preview_image_url")))
    # v2 lists the t.co link of attached media among the url entities, with its media_key.
    drop = [_s(u.get("url")) for u in (obj.get("entities") or {}).get("urls") or [] if u.get("media_key")]
    return tuple(atts), drop


def mention_from_v2(tweet: dict[str, Any], includes: dict[str, Any] | None, account_id: str) -> Message | Skipped:
    """A post from GET /2/users/:id/mentions."""
    tid, author = _s(tweet.get("id")), _s(tweet.get("author_id"))
    if not tid or not author:
        return Skipped("mention_without_id_or_author")
    if author == account_id:
        return Skipped("own_post")
    if any(r.get("type") == "retweeted" for r in tweet.get("referenced_tweets") or []):
        return Skipped("retweet")
    users, media = _v2_includes(includes)
    atts, drop = _v2_media(tweet, media)
    text = strip_leading_mentions(_clean(_s(tweet.get("text")), drop))
    meta = {
        "reply_visibility": "public",
        "reply_tweet_id": tid,
        "reply_author_id": author,
        "conversation_tweet_id": _s(tweet.get("conversation_id")) or tid,
    }
    handle = _s(users.get(author, {}).get("username"))
    if handle:
        meta["reply_handle"] = handle
    return _finish(
        Message(
            channel=CHANNEL,
            channel_message_id=tid,
            conversation_id=mention_conversation(author),
            user_id=author,
            text=text,
            lang=detect_language(text, tweet.get("lang")),
            attachments=atts,
            meta=meta,
        )
    )


def dm_from_v2(event: dict[str, Any], includes: dict[str, Any] | None, account_id: str) -> Message | Skipped:
    """An event from GET /2/dm_events."""
    if event.get("event_type", "MessageCreate") != "MessageCreate":
        return Skipped(f"dm_event:{event.get('event_type')}")
    eid, sender = _s(event.get("id")), _s(event.get("sender_id"))
    if not eid or not sender:
        return Skipped("dm_without_id_or_sender")
    if sender == account_id:
        return Skipped("own_dm")
    users, media = _v2_includes(includes)
    atts, drop = _v2_media(event, media)
    text = _clean(_s(event.get("text")), drop)
    meta = {"reply_visibility": "dm", "reply_author_id": sender}
    if event.get("dm_conversation_id"):
        meta["dm_conversation_id"] = _s(event["dm_conversation_id"])
    handle = _s(users.get(sender, {}).get("username"))
    if handle:
        meta["reply_handle"] = handle
    return _finish(
        Message(
            channel=CHANNEL,
            channel_message_id=eid,
            conversation_id=dm_conversation(sender),
            user_id=sender,
            text=text,
            lang=detect_language(text),
            attachments=atts,
            meta=meta,
        )
    )


# -- Account Activity webhook (v1.1 objects) ----------------------------------------------------------


def _v1_media(entities: dict[str, Any]) -> tuple[tuple[Attachment, ...], list[str]]:
    atts = []
    drop = []
    for m in entities.get("media") or []:
        if not isinstance(m, dict):
            continue
        atts.append(_attachment(_s(m.get("type")) or "media", _s(m.get("id_str") or m.get("id")), m.get("media_url_https")))
        drop.append(_s(m.get("url")))
    return tuple(atts), drop


def mention_from_webhook(tweet: dict[str, Any], account_id: str) -> Message | Skipped:
    """One item of `tweet_create_events`. X delivers every post by *or to* the account there
    (our own replies, retweets, quotes); only posts addressed to us — mentioning us or replying
    to us — become messages."""
    tid = _s(tweet.get("id_str") or tweet.get("id"))
    user = tweet.get("user") or {}
    author = _s(user.get("id_str") or user.get("id"))
    if not tid or not author:
        return Skipped("tweet_without_id_or_author")
    if author == account_id:
        return Skipped("own_post")
    if "retweeted_status" in tweet:
        return Skipped("retweet")
    ext = tweet.get("extended_tweet") if tweet.get("truncated") else None
    src = ext if isinstance(ext, dict) else tweet
    entities = src.get("entities") or {}
    mentioned = {_s(m.get("id_str") or m.get("id")) for m in entities.get("user_mentions") or []}
    if account_id not in mentioned and _s(tweet.get("in_reply_to_user_id_str")) != account_id:
        return Skipped("not_addressed_to_us")
    atts, drop = _v1_media(src.get("extended_entities") or entities)
    raw = _s(src.get("full_text") or src.get("text"))
    text = strip_leading_mentions(_clean(raw, drop))
    meta = {
        "reply_visibility": "public",
        "reply_tweet_id": tid,
        "reply_author_id": author,
        # v1.1 objects carry no conversation id; a post that replies to nothing starts one.
        "conversation_tweet_id": _s(tweet.get("in_reply_to_status_id_str")) or tid,
    }
    if user.get("screen_name"):
        meta["reply_handle"] = _s(user["screen_name"])
    return _finish(
        Message(
            channel=CHANNEL,
            channel_message_id=tid,
            conversation_id=mention_conversation(author),
            user_id=author,
            text=text,
            lang=detect_language(text, tweet.get("lang")),
            attachments=atts,
            meta=meta,
        )
    )


def dm_from_webhook(event: dict[str, Any], users: dict[str, Any], account_id: str) -> Message | Skipped:
    """One item of `direct_message_events` (both directions are delivered: skip our own)."""
    if event.get("type") != "message_create":
        return Skipped(f"dm_event:{event.get('type')}")
    mc = event.get("message_create") or {}
    eid, sender = _s(event.get("id")), _s(mc.get("sender_id"))
    if not eid or not sender:
        return Skipped("dm_without_id_or_sender")
    if sender == account_id:
        return Skipped("own_dm")
    data = mc.get("message_data") or {}
    att = data.get("attachment") or {}
    media = att.get("media") if att.get("type") == "media" else None
    atts, drop = _v1_media({"media": [media]} if isinstance(media, dict) else {})
    text = _clean(_s(data.get("text")), drop)
    meta = {"reply_visibility": "dm", "reply_author_id": sender}
    handle = (users.get(sender) or {}).get("screen_name") if isinstance(users, dict) else None
    if handle:
        meta["reply_handle"] = _s(handle)
    return _finish(
        Message(
            channel=CHANNEL,
            channel_message_id=eid,
            conversation_id=dm_conversation(sender),
            user_id=sender,
            text=text,
            lang=detect_language(text),
            attachments=atts,
            meta=meta,
        )
    )
