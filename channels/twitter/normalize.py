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
import re
from dataclasses import dataclass
from typing import Any

from bot.intake import redacted
from bot.lang import detect_language
from bot.models import MAX_TEXT_CHARS, Attachment, Message
from bot.quoting import quote_block
from channels.twitter.text import LEADING_MENTIONS as _LEADING
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


def _expansions(entities: Any) -> dict[str, str]:
    """t.co link → the address it stands for. X shortens every link in a text; "is this site
    yours? https://t.co/…" is a question about the address, which agents (and the phishing
    guidance) need to see."""
    out: dict[str, str] = {}
    urls = entities.get("urls") if isinstance(entities, dict) else None
    for u in urls if isinstance(urls, list) else []:
        if isinstance(u, dict) and not u.get("media_key"):
            short, full = _s(u.get("url")), _s(u.get("unwound_url") or u.get("expanded_url"))
            if short and full.startswith(("http://", "https://")):
                out[short] = full
    return out


def _clean(text: str, drop_urls: list[str], entities: Any = None) -> str:
    """X HTML-escapes &, < and > in post text, appends the t.co link of attached media (dropped
    here), and shortens the other links (written out again here: `_expansions`)."""
    text = html.unescape(text)
    for u in drop_urls:
        if u:
            text = text.replace(u, "")
    for short, full in _expansions(entities).items():
        text = text.replace(short, full)
    return text.strip()[:MAX_TEXT_CHARS]


def _attachment(kind: str, key: str, url: str | None) -> Attachment:
    return Attachment(
        name=f"{kind}-{key}",
        content_type=_MEDIA_TYPES.get(kind, "application/octet-stream"),
        ref=url or key,
    )


def _best_variant(variants: Any) -> str | None:
    """The URL of the best MP4 of a video (X lists an HLS playlist and MP4s by bit rate); the
    thumbnail is never the video."""
    best: tuple[int, str] | None = None
    for v in variants if isinstance(variants, list) else []:
        if not isinstance(v, dict) or v.get("content_type") != "video/mp4" or not v.get("url"):
            continue
        rate = int(v.get("bit_rate") or v.get("bitrate") or 0)
        if best is None or rate > best[0]:
            best = (rate, _s(v["url"]))
    return best[1] if best else None


def _media_attachment(kind: str, key: str, m: dict[str, Any]) -> Attachment | None:
    """One media item (v1.1 or v2 shape) as an attachment; None for a video we cannot fetch."""
    if kind in ("video", "animated_gif"):
        url = _best_variant(m.get("variants") or (m.get("video_info") or {}).get("variants"))
        if url is not None:
            return Attachment(name=f"{kind}-{key}.mp4", content_type="video/mp4", ref=url)
        thumb = m.get("media_url_https") or m.get("preview_image_url")
        # No playable variant listed: the thumbnail is all there is, and it is called what it is.
        return Attachment(name=f"{kind}-{key}-thumbnail.jpg", content_type="image/jpeg", ref=thumb) if thumb else None
    # v1.1 `url` is the t.co link shown in the text; v2 `url` is the image itself.
    url = m.get("media_url_https") or m.get("url") or m.get("preview_image_url")
    att = _attachment(kind or "media", key, url)
    return att.model_copy(update={"name": f"{att.name}.jpg"}) if kind == "photo" else att


_TCO_TAIL = re.compile(r"\s*https://t\.co/\w+\s*$")


def _addressed(mentions: list[tuple[int, str]], account_id: str, in_reply_to: str,
               display_start: int | None, text: str) -> str | None:
    """Why a post that names us is not for us, or None when it is. A reply under one of our posts
    that answers someone else carries our handle only because X adds the handles of the thread
    it replies to (before `display_text_range`'s start, or in the leading run of handles)."""
    ours = [start for start, uid in mentions if uid == account_id]
    if in_reply_to == account_id:
        return None
    if not ours:
        return "not_addressed_to_us"
    if in_reply_to:
        if display_start is None:
            m = _LEADING.match(text)
            display_start = m.end() if m else 0
        if all(start < display_start for start in ours):
            return "reply_to_another_user"
    return None


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


def _note(obj: dict[str, Any]) -> dict[str, Any]:
    """A post longer than 280 (X Premium) comes with its first 280 characters in `text` and the
    whole post, with its own entities, in `note_tweet`."""
    note = obj.get("note_tweet")
    return note if isinstance(note, dict) else {}


def _v2_text(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A v2 post's whole text and the entities that go with it (`note_tweet`'s when it has one)."""
    note = _note(obj)
    if note.get("text"):
        return _s(note["text"]), note.get("entities") or {}
    return _s(obj.get("text")), obj.get("entities") or {}


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
        a = _media_attachment(_s(m.get("type")), _s(k), m)
        if a is not None:
            atts.append(a)
    # v2 lists the t.co link of attached media among the url entities, with its media_key.
    urls = [*((obj.get("entities") or {}).get("urls") or []), *((_note(obj).get("entities") or {}).get("urls") or [])]
    drop = [_s(u.get("url")) for u in urls if isinstance(u, dict) and u.get("media_key")]
    return tuple(atts), drop


def _with_shown(text: str, meta: dict[str, str], kind: str, shown: str, author: str, author_id: str,
                post_id: str) -> str:
    """Mark what the user shows us (a quoted post, the post they reply under) in `meta`, and put
    its text after their words as a quote: "is this real?" is a question about that post."""
    meta["quoted"] = kind
    if author:
        meta["quoted_from"] = f"@{author}"
    if author_id:
        meta["quoted_from_id"] = author_id
    if post_id:
        meta["quoted_post_id"] = post_id
    if not shown.strip():
        return text
    block = quote_block(shown)
    return f"{text}\n\n{block}" if text else block


def _v2_shown(tweet: dict[str, Any], includes: dict[str, Any] | None,
              account_id: str) -> tuple[str, str, str, str, str] | None:
    """(kind, text, author handle, author id, post id) of the post a v2 mention quotes, or replies
    under when that post is not ours (our own answer is never quoted back). The post's text is
    in `includes.tweets` when asked for with the expansion `referenced_tweets.id`."""
    refs = {_s(r.get("type")): _s(r.get("id")) for r in tweet.get("referenced_tweets") or [] if isinstance(r, dict)}
    if refs.get("quoted"):
        kind, ref = "quote_post", refs["quoted"]
    elif refs.get("replied_to") and _s(tweet.get("in_reply_to_user_id")) != account_id:
        kind, ref = "reply", refs["replied_to"]
    else:
        return None
    inc = includes or {}
    post = next((t for t in inc.get("tweets") or [] if isinstance(t, dict) and _s(t.get("id")) == ref), {})
    author_id = _s(post.get("author_id")) or (_s(tweet.get("in_reply_to_user_id")) if kind == "reply" else "")
    if kind == "quote_post" and author_id == account_id:
        return None  # a quote of our own post: our words, not something shown to us
    users, media = _v2_includes(includes)
    raw, entities = _v2_text(post)
    _, drop = _v2_media(post, media)
    text = strip_leading_mentions(_clean(raw, drop, entities)) if raw else ""
    return kind, text, _s(users.get(author_id, {}).get("username")), author_id, ref


def mention_from_v2(tweet: dict[str, Any], includes: dict[str, Any] | None, account_id: str) -> Message | Skipped:
    """A post from GET /2/users/:id/mentions."""
    tid, author = _s(tweet.get("id")), _s(tweet.get("author_id"))
    if not tid or not author:
        return Skipped("mention_without_id_or_author")
    if author == account_id:
        return Skipped("own_post")
    if any(r.get("type") == "retweeted" for r in tweet.get("referenced_tweets") or []):
        return Skipped("retweet")
    raw_text, entities = _v2_text(tweet)
    mentions = [(int(m.get("start") or 0), _s(m.get("id"))) for m in entities.get("mentions") or []
                if isinstance(m, dict) and m.get("id")]
    rng = tweet.get("display_text_range")
    start = int(rng[0]) if isinstance(rng, list) and rng else None
    if mentions:  # without mention ids (an older field set) every post the endpoint lists is for us
        why = _addressed(mentions, account_id, _s(tweet.get("in_reply_to_user_id")), start, raw_text)
        if why:
            return Skipped(why)
    users, media = _v2_includes(includes)
    atts, drop = _v2_media(tweet, media)
    urls = [*(entities.get("urls") or []), *((tweet.get("entities") or {}).get("urls") or [])]
    text = strip_leading_mentions(_clean(raw_text, drop, {"urls": urls}))
    shown = _v2_shown(tweet, includes, account_id)
    # "@Support" alone quoting a post asks about that post; alone under one, it is only a tag.
    if not text and not atts and not (shown and shown[0] == "quote_post" and shown[1]):
        return Skipped("empty_mention")
    meta = {
        "reply_visibility": "public",
        "reply_tweet_id": tid,
        "reply_author_id": author,
        "conversation_tweet_id": _s(tweet.get("conversation_id")) or tid,
    }
    handle = _s(users.get(author, {}).get("username"))
    if handle:
        meta["reply_handle"] = handle
    lang = detect_language(text or (shown[1] if shown else ""), tweet.get("lang"))
    if shown is not None:
        text = _with_shown(text, meta, *shown)[:MAX_TEXT_CHARS]
    return _finish(
        Message(
            channel=CHANNEL,
            channel_message_id=tid,
            conversation_id=mention_conversation(author),
            user_id=author,
            text=text,
            lang=lang,
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
    text = _clean(_s(event.get("text")), drop, event.get("entities"))
    if (event.get("attachments") or {}).get("media_keys"):
        # A DM with media ends with the media's t.co link, and dm_events lists no entity for it.
        text = _TCO_TAIL.sub("", text)
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
        a = _media_attachment(_s(m.get("type")), _s(m.get("id_str") or m.get("id")), m)
        if a is not None:
            atts.append(a)
        drop.append(_s(m.get("url")))
    return tuple(atts), drop


def _v1_source(tweet: dict[str, Any]) -> dict[str, Any]:
    """Where a v1.1 post's whole text is: `extended_tweet` when X truncated it (over 140)."""
    ext = tweet.get("extended_tweet") if tweet.get("truncated") else None
    return ext if isinstance(ext, dict) else tweet


def _v1_shown(tweet: dict[str, Any], account_id: str) -> tuple[str, str, str, str, str] | None:
    """The v1.1 counterpart of `_v2_shown`: a quote post carries the quoted post whole
    (`quoted_status`); a reply carries only who and which post it replies to, not its text."""
    q = tweet.get("quoted_status")
    if isinstance(q, dict):
        qu = q.get("user") or {}
        qid = _s(qu.get("id_str") or qu.get("id"))
        if qid == account_id:
            return None
        src = _v1_source(q)
        ents = src.get("entities") or {}
        _, drop = _v1_media(src.get("extended_entities") or ents)
        text = strip_leading_mentions(_clean(_s(src.get("full_text") or src.get("text")), drop, ents))
        return "quote_post", text, _s(qu.get("screen_name")), qid, _s(q.get("id_str") or q.get("id"))
    if tweet.get("is_quote_status") and tweet.get("quoted_status_id_str"):
        return "quote_post", "", "", "", _s(tweet["quoted_status_id_str"])  # quoted post withheld or deleted
    to_user = _s(tweet.get("in_reply_to_user_id_str"))
    if tweet.get("in_reply_to_status_id_str") and to_user and to_user != account_id:
        return ("reply", "", _s(tweet.get("in_reply_to_screen_name")), to_user,
                _s(tweet["in_reply_to_status_id_str"]))
    return None


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
    src = _v1_source(tweet)
    entities = src.get("entities") or {}
    raw = _s(src.get("full_text") or src.get("text"))
    mentions = [(int((m.get("indices") or [0])[0]), _s(m.get("id_str") or m.get("id")))
                for m in entities.get("user_mentions") or [] if isinstance(m, dict)]
    rng = src.get("display_text_range") or tweet.get("display_text_range")
    start = int(rng[0]) if isinstance(rng, list) and rng else None
    why = _addressed(mentions, account_id, _s(tweet.get("in_reply_to_user_id_str")), start, raw)
    if why:
        return Skipped(why)
    atts, drop = _v1_media(src.get("extended_entities") or entities)
    text = strip_leading_mentions(_clean(raw, drop, entities))
    shown = _v1_shown(tweet, account_id)
    if not text and not atts and not (shown and shown[0] == "quote_post" and shown[1]):
        return Skipped("empty_mention")
    meta = {
        "reply_visibility": "public",
        "reply_tweet_id": tid,
        "reply_author_id": author,
        # v1.1 objects carry no conversation id; a post that replies to nothing starts one.
        "conversation_tweet_id": _s(tweet.get("in_reply_to_status_id_str")) or tid,
    }
    if user.get("screen_name"):
        meta["reply_handle"] = _s(user["screen_name"])
    lang = detect_language(text or (shown[1] if shown else ""), tweet.get("lang"))
    if shown is not None:
        text = _with_shown(text, meta, *shown)[:MAX_TEXT_CHARS]
    return _finish(
        Message(
            channel=CHANNEL,
            channel_message_id=tid,
            conversation_id=mention_conversation(author),
            user_id=author,
            text=text,
            lang=lang,
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
    text = _clean(_s(data.get("text")), drop, data.get("entities"))
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
