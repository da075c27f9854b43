"""Telegram `Update` → our `Message`, through a dispatch table on the update type.

Pure (no I/O): the adapter feeds it the bot's identity and acts on the result — queue the message,
enqueue notices for the user, answer a callback query, record a block. Unknown update types and
messages that are not for the bot are skipped with a reason the adapter logs, never an error.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telegram import (
    CallbackQuery,
    Chat,
    ChatMemberUpdated,
    ExternalReplyInfo,
    MessageOrigin,
    TextQuote,
    Update,
    User,
)
from telegram import Message as TgMessage

from bot.files import DEFAULT_ATTACHMENT_TYPES, attachment_refusal
from bot.lang import Lang, detect_language
from bot.models import Attachment, Message, Outbound
from bot.quoting import quote_block
from bot.redact import redact
from channels.telegram import render

CHANNEL = "telegram"
# The update types we ask Telegram for (setWebhook / getUpdates `allowed_updates`).
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")
COMMANDS = frozenset({"start", "help", "status", "human"})
# Commands whose argument is an identifier (ticket number, deep-link payload), not words.
ID_COMMANDS = frozenset({"start", "status"})
CHAT_TYPES = frozenset({"private", "group", "supergroup"})
# Content that is not a file nor words: the user is told to type instead of getting silence.
UNSUPPORTED_CONTENT = ("voice", "video_note", "audio", "sticker", "location", "venue", "contact", "poll", "dice",
                       "game", "story", "invoice", "giveaway", "paid_media", "checklist")

_COMMAND_RE = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{3,64}))?(?=\s|$)(.*)$", re.S)
_LEADING_PUNCT = re.compile(r"^[\s,:;，：；、]+")
_SPACES = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who "the bot" is, to recognise mentions and replies in groups."""

    id: int
    username: str | None
    max_attachment_bytes: int
    allowed_types: tuple[str, ...] = DEFAULT_ATTACHMENT_TYPES


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # lower case, without "/" and "@bot"
    arg: str
    target: str | None  # the @bot a command was addressed to, if any
    text: str  # the message text with the "@bot" suffix of the command removed


@dataclass(frozen=True, slots=True)
class Normalized:
    """What one update becomes. `message` goes to the queue; `notices` are system replies for the
    user (put on the outbound stream before the message, so they arrive first)."""

    kind: str
    message: Message | None = None
    notices: tuple[Outbound, ...] = ()
    callback_query_id: str | None = None
    # (chat id, new status of the bot in that chat) from my_chat_member: "kicked" = blocked.
    membership: tuple[int, str] | None = None
    skipped: str | None = None
    # A secret posted in a group: (chat id, message id) — the adapter tries to delete the message
    # and tells the user (in the group, without quoting it) to delete it and move to private.
    secret_in_group: tuple[int, int] | None = None
    # A group message, "chat:message": answered once, whether Telegram sends it again as an edit.
    group_message: str | None = None
    # One file of an album (several photos sent together, one caption) in a private chat,
    # "chat:media_group_id": the adapter queues the album as one message, not one per file.
    album: str | None = None


def update_kind(update: Update) -> str:
    for t in Update.ALL_TYPES:
        if getattr(update, str(t), None) is not None:
            return str(t)
    return "unknown"


def parse_command(text: str) -> Command | None:
    m = _COMMAND_RE.match(text.strip())
    if not m:
        return None
    name, target, rest = m.group(1).lower(), m.group(2), m.group(3).strip()
    return Command(name=name, arg=rest, target=target, text=f"/{m.group(1)}" + (f" {rest}" if rest else ""))


def strip_mention(text: str, username: str) -> tuple[str, bool]:
    """Remove "@username" (any case, not inside a word or e-mail address) from `text`."""
    pat = re.compile(rf"(?<![\w@.])@{re.escape(username)}(?!\w)", re.I)
    out, n = pat.subn(" ", text)
    if not n:
        return text, False
    out = _SPACES.sub(" ", out)
    return _LEADING_PUNCT.sub("", out).strip(), True


def is_blank(text: str) -> bool:
    """Nothing a person could read: whitespace and invisible format characters only (zero-width
    spaces and joiners, a byte order mark), which `str.strip` keeps."""
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in text)


def _replies_to_bot(m: TgMessage, me: BotIdentity) -> bool:
    """A reply to one of the bot's messages. In a forum topic every message "replies" to the
    topic's creation message: when the bot created the topic, that is not talking to the bot."""
    r = m.reply_to_message
    if r is None or r.from_user is None or r.from_user.id != me.id:
        return False
    return not (r.forum_topic_created is not None or (m.is_topic_message and r.message_id == m.message_thread_id))


# Files Telegram describes with a type of their own: (attribute, default MIME type, name stem).
_FILE_KINDS = (
    ("video", "video/mp4", "video"),
    ("animation", "video/mp4", "animation"),
    ("document", "application/octet-stream", "document"),
)
_EXT = {"video/mp4": ".mp4", "video/quicktime": ".mov"}


def _attachments(m: TgMessage | ExternalReplyInfo, me: BotIdentity) -> tuple[list[Attachment], list[tuple[Attachment, str]]]:
    """(kept, [(not kept, why: "type" | "size")]), with the same rule as every other channel
    (`bot.files.attachment_refusal`). A photo arrives in several sizes: the largest is kept."""
    found: list[Attachment] = []
    if m.photo:
        p = max(m.photo, key=lambda s: (s.file_size or 0, s.width * s.height))
        found.append(Attachment(name=f"photo_{p.file_unique_id}.jpg", content_type="image/jpeg",
                                size=p.file_size or 0, ref=p.file_id))
    seen: set[str] = set()
    for attr, default_type, stem in _FILE_KINDS:
        f = getattr(m, attr, None)
        # A GIF arrives as `animation` and, for older clients, as `document` too: one file.
        if f is None or f.file_unique_id in seen:
            continue
        seen.add(f.file_unique_id)
        ctype = getattr(f, "mime_type", None) or default_type
        name = getattr(f, "file_name", None) or f"{stem}_{f.file_unique_id}{_EXT.get(ctype, '')}"
        found.append(Attachment(name=name[:255], content_type=ctype, size=f.file_size or 0, ref=f.file_id))
    kept: list[Attachment] = []
    refused: list[tuple[Attachment, str]] = []
    for a in found:
        why = attachment_refusal(a.content_type, a.name, a.size, allowed=me.allowed_types,
                                 max_bytes=me.max_attachment_bytes)
        if why is None:
            kept.append(a)
        else:
            refused.append((a, why))
    return kept, refused


def _reply_meta(chat: Chat, message_id: int | None, thread_id: int | None) -> dict[str, str]:
    meta = {"reply_chat_id": str(chat.id), "reply_chat_type": chat.type, "chat_type": chat.type}
    if message_id is not None:
        meta["reply_to_message_id"] = str(message_id)
    if thread_id is not None:
        meta["reply_thread_id"] = str(thread_id)
    return meta


def _notice(update_id: int, key: str, chat: Chat, user: User, text: str, lang: Lang,
            reply_meta: dict[str, str]) -> Outbound:
    # A deterministic id: if Telegram delivers the update twice, the count of parts sent, kept
    # under the outbound id (adapter `_send_text`), keeps the notice from going out twice.
    return Outbound(
        id=f"tg-{update_id}-{key}",
        channel=CHANNEL,
        conversation_id=f"{CHANNEL}:{chat.id}",
        user_id=str(user.id),
        text=text,
        lang=lang,
        kind="system",
        meta={**reply_meta, "reply_public_ok": "1"},
    )


def _words(text: str, me: BotIdentity, group: bool) -> tuple[Command | None, str, bool] | None:
    """(command, text without "@bot", mentioned); None: a group command for another bot."""
    cmd = parse_command(text)
    if cmd is not None and cmd.target is not None:
        if me.username is None or cmd.target.lower() != me.username.lower():
            if group:
                return None
            cmd = None  # "/start@otherbot" in a private chat: just text
        else:
            text = cmd.text
    mentioned = False
    if me.username:
        text, mentioned = strip_mention(text, me.username)
    return cmd, text, mentioned


def _lang(cmd: Command | None, text: str, language_code: str | None) -> Lang:
    if cmd is not None and cmd.name in ID_COMMANDS:
        return detect_language("", language_code)  # "SB-000123", "group_account": no language
    if cmd is not None and cmd.name in COMMANDS:
        return detect_language(cmd.arg, language_code)  # "/human 我要人工": the words, not "/human"
    return detect_language(text, language_code)


def _command_meta(meta: dict[str, str], cmd: Command | None) -> None:
    if cmd is not None and cmd.name in COMMANDS:
        meta["command"] = cmd.name
        meta["command_arg"] = redact(cmd.arg).text  # intake redacts `text` only; meta is stored too


def _text_of(m: TgMessage) -> str:
    """A message's text, or its caption, with its text links' addresses written out."""
    if m.text is not None:
        return with_link_addresses(m.text, m.entities)
    return with_link_addresses(m.caption or "", m.caption_entities)


def _user_name(u: User) -> str:
    return f"@{u.username}" if u.username else u.full_name


def _chat_name(c: Chat) -> str:
    title = c.title or c.full_name or ""
    return f"{title} (@{c.username})" if title and c.username else (f"@{c.username}" if c.username else title)


def _origin_author(origin: MessageOrigin | None, chat: Chat | None) -> tuple[str, str]:
    """(name, id) of who wrote a message from elsewhere, as far as Telegram tells."""
    sender_user = getattr(origin, "sender_user", None)
    if sender_user is not None:
        return _user_name(sender_user), str(sender_user.id)
    if getattr(origin, "sender_user_name", None):
        return str(origin.sender_user_name), ""  # type: ignore[union-attr]
    src = getattr(origin, "sender_chat", None) or getattr(origin, "chat", None) or chat
    if src is None:
        return "", ""
    name = _chat_name(src)
    sig = getattr(origin, "author_signature", None)
    return (f"{name} ({sig})" if sig else name), str(src.id)


@dataclass(frozen=True, slots=True)
class _Shown:
    """What a message points at: another message's text (or the part the user selected), who
    wrote it, and its files."""

    kind: str  # "reply" | "external"
    text: str
    author: str
    author_id: str
    media: Any  # the replied-to Message or ExternalReplyInfo (photo, video, document, …)


def _shown(m: TgMessage, me: BotIdentity) -> _Shown | None:
    """The message the user replies to or quotes, unless it is the bot's own answer: quoting that
    back would feed the classifier our own topic words (a `quote` of it is dropped too)."""
    q: TextQuote | None = m.quote
    quoted = with_link_addresses(q.text, q.entities) if q is not None else None
    ext: ExternalReplyInfo | None = m.external_reply
    if ext is not None:
        author, author_id = _origin_author(ext.origin, ext.chat)
        return _Shown("external", quoted or "", author, author_id, ext)
    r = m.reply_to_message
    if r is None or r.forum_topic_created is not None or (m.is_topic_message and r.message_id == m.message_thread_id):
        return None  # in a forum topic every message "replies" to the topic's first message
    if r.from_user is not None and r.from_user.id == me.id:
        return None
    if quoted is None:
        quoted = _text_of(r)
    if r.sender_chat is not None:
        author, author_id = _chat_name(r.sender_chat), str(r.sender_chat.id)
    elif r.from_user is not None:
        author, author_id = _user_name(r.from_user), str(r.from_user.id)
    else:
        author, author_id = "", ""
    return _Shown("reply", quoted, author, author_id, r)


def _from_message(update: Update, me: BotIdentity, *, edited: bool) -> Normalized:
    kind = "edited_message" if edited else "message"
    m = update.edited_message if edited else update.message
    assert m is not None
    user, chat = m.from_user, m.chat
    if user is None or m.sender_chat is not None:
        return Normalized(kind, skipped="no_user")  # channel posts, anonymous group admins
    if user.is_bot:
        return Normalized(kind, skipped="from_bot")
    if chat.type not in CHAT_TYPES:
        return Normalized(kind, skipped=f"chat_type_{chat.type}")
    text = _text_of(m)
    group = render.is_group(chat.type)
    words = _words(text, me, group)
    if words is None:
        return Normalized(kind, skipped="command_for_another_bot")
    cmd, text, mentioned = words
    if group and not (mentioned or _replies_to_bot(m, me) or (cmd is not None and cmd.target is not None)):
        return Normalized(kind, skipped="group_not_addressed")
    if cmd is None and mentioned:
        cmd = parse_command(text)  # "@bot /status SB-000123"
    origin = m.forward_origin
    # The user forwarding their own earlier message is still their own words.
    forwarded = origin is not None and getattr(getattr(origin, "sender_user", None), "id", None) != user.id
    if forwarded:
        cmd = None  # a command inside something the user shows us is not theirs to run
    shown = None if forwarded else _shown(m, me)
    shown_text = shown.text if shown is not None and not is_blank(shown.text) else ""
    # Only "@bot" under a post shown to it: the post is the question, and its language the user's.
    lang = _lang(cmd, text if not is_blank(text) or not shown_text else shown_text, user.language_code)
    thread_id = m.message_thread_id if m.is_topic_message else None
    # A secret posted in a group must not be quoted back (a reply shows the quoted message).
    secret = group and redact(text).changed
    reply_meta = _reply_meta(chat, None if secret else m.message_id, thread_id)
    accepted, refused = _attachments(m, me)
    if shown is not None:
        # The files of what the user points at (a scam post's screenshot) go with it; one we would
        # not keep is not the user's to be told about.
        refs = {a.ref for a in accepted}
        accepted += [a for a in _attachments(shown.media, me)[0] if a.ref not in refs]
    notices: list[Outbound] = []
    # The original message got its notices. An edit repeats its files, and a shared live location
    # is "edited" every few seconds while it lasts: an edit tells the user nothing again.
    if refused and not edited:
        body = render.not_kept_notice([(a.name, why) for a, why in refused], me.max_attachment_bytes, lang,
                                      text_kept=bool(text.strip()))
        notices.append(_notice(update.update_id, "not_kept", chat, user, body, lang, reply_meta))
    other = next((a for a in UNSUPPORTED_CONTENT if getattr(m, a, None)), None)
    if other is not None and not edited and not is_blank(text):
        # A voice message (or a sticker, a location, …) with a caption: the caption goes on, and
        # the user learns that what they said or showed beside it was not heard.
        notices.append(_notice(update.update_id, "unsupported", chat, user, render.text("unsupported", lang), lang,
                               reply_meta))
    if is_blank(text) and not accepted and not shown_text:
        if refused:
            return Normalized(kind, notices=tuple(notices), skipped="only_rejected_files")
        if other is not None and edited:
            return Normalized(kind, skipped="edit_without_text")
        if other is not None:
            body = render.text("unsupported", lang)
            return Normalized(kind, notices=(_notice(update.update_id, "unsupported", chat, user, body, lang,
                                                     reply_meta),), skipped="unsupported_media")
        return Normalized(kind, skipped="no_content")
    meta = dict(reply_meta)
    if edited:
        meta["edited"] = "1"
    if forwarded:
        # Something the user shows us (a message they received), not their own words: the router
        # answers "is this from you?" with the anti-phishing guidance, never opens a case on it.
        meta["forwarded"] = "1"
        meta["forward_origin"] = str(origin.type)  # type: ignore[union-attr]
    if shown is not None:
        # Something the user points at ("is this real?" under a post): shown, not said. Its text
        # follows their words as a quote, so the router reads the question with what it is about.
        meta["quoted"] = shown.kind
        if shown.author:
            meta["quoted_from"] = shown.author[:200]
        if shown.author_id:
            meta["quoted_from_id"] = shown.author_id
        if shown_text and cmd is None:
            block = quote_block(shown_text)
            text = f"{text.strip()}\n\n{block}" if not is_blank(text) else block
    _command_meta(meta, cmd)
    if secret:
        meta["reply_redacted"] = "1"  # whatever the answer, it goes to the private chat
    msg = Message(
        channel=CHANNEL,
        channel_message_id=str(update.update_id),
        # In a group every member is their own conversation: one user's handoff must not silence
        # the bot for the whole group.
        conversation_id=f"{CHANNEL}:{chat.id}" if chat.type == "private" else f"{CHANNEL}:{chat.id}:{user.id}",
        user_id=str(user.id),
        text=text,
        lang=lang,
        attachments=tuple(accepted),
        meta=meta,
    )
    return Normalized(kind, message=msg, notices=tuple(notices),
                      secret_in_group=(chat.id, m.message_id) if secret else None,
                      group_message=f"{chat.id}:{m.message_id}" if group else None,
                      album=f"{chat.id}:{m.media_group_id}" if m.media_group_id and not group and not edited else None)


def _from_callback(update: Update, me: BotIdentity) -> Normalized:
    q: CallbackQuery | None = update.callback_query
    assert q is not None
    if q.data is None:  # game buttons carry no data
        return Normalized("callback_query", callback_query_id=q.id, skipped="no_callback_data")
    user = q.from_user
    src = q.message  # the bot's message that carried the keyboard (may be inaccessible when old)
    if src is not None:
        chat_id, chat_type, src_id = src.chat.id, src.chat.type, src.message_id
    else:  # an inline-mode message: answer the user privately
        chat_id, chat_type, src_id = user.id, "private", None
    # The button's message is the bot's own text in the user's language; the data is machine text.
    lang = detect_language(getattr(src, "text", None) or "", user.language_code)
    meta = {"reply_chat_id": str(chat_id), "reply_chat_type": chat_type, "chat_type": chat_type,
            "callback": "1"}
    if src_id is not None:
        meta["reply_to_message_id"] = str(src_id)
        meta["callback_message_id"] = str(src_id)
    thread = getattr(src, "message_thread_id", None) if getattr(src, "is_topic_message", False) else None
    if thread is not None:
        meta["reply_thread_id"] = str(thread)
    msg = Message(
        channel=CHANNEL,
        channel_message_id=str(update.update_id),
        # In a group the press belongs to whoever pressed, like their messages there.
        conversation_id=f"{CHANNEL}:{chat_id}:{user.id}" if render.is_group(chat_type) else f"{CHANNEL}:{chat_id}",
        user_id=str(user.id),
        text=q.data,
        lang=lang,
        meta=meta,
    )
    return Normalized("callback_query", message=msg, callback_query_id=q.id)


def _from_my_chat_member(update: Update, me: BotIdentity) -> Normalized:
    """The bot's own membership changed: "kicked" in a private chat means the user blocked it."""
    cm: ChatMemberUpdated | None = update.my_chat_member
    assert cm is not None
    return Normalized("my_chat_member", membership=(cm.chat.id, str(cm.new_chat_member.status)),
                      skipped="membership_update")


HANDLERS: dict[str, Callable[[Update, BotIdentity], Normalized]] = {
    "message": lambda u, me: _from_message(u, me, edited=False),
    "edited_message": lambda u, me: _from_message(u, me, edited=True),
    "callback_query": _from_callback,
    "my_chat_member": _from_my_chat_member,
}


# -- the common case straight from the JSON ---------------------------------------------------------
# Most updates are a user typing in their private chat with the bot. For exactly that shape (every
# field below, nothing else: no reply, forward, file, topic, caption, …) the webhook skips PTB's
# object tree (`Update.de_json` costs more CPU than the rest of the webhook). Anything else —
# or a field of an unexpected type, which PTB may refuse (→ the dead updates) — takes the PTB
# path. tests/unit/test_telegram_normalize.py checks both paths agree on every such update.
_PLAIN_MESSAGE = frozenset({"message_id", "date", "chat", "from", "text", "entities", "edit_date"})
_PLAIN_CHAT = frozenset({"id", "type", "first_name", "last_name", "username"})
_PLAIN_USER = frozenset({"id", "is_bot", "first_name", "last_name", "username", "language_code", "is_premium",
                         "added_to_attachment_menu"})
_USER_TEXT = ("first_name", "last_name", "username", "language_code")
_PLAIN_ENTITY = frozenset({"type", "offset", "length"})


def with_link_addresses(text: str, entities: Any) -> str:
    """`text` with the address of each text link written after its words: Telegram shows a text
    link's words and hides where it goes, and "is this site yours?" is a question about the
    address (agents and the phishing guidance need it). Offsets count UTF-16 code units."""
    links = sorted((e for e in entities or () if e.type == "text_link" and e.url), key=lambda e: e.offset)
    if not links:
        return text
    u16 = text.encode("utf-16-le")
    out: list[str] = []
    pos = 0
    for e in links:
        start, end = 2 * e.offset, 2 * (e.offset + e.length)
        if start < pos or end > len(u16):
            continue  # overlapping or out of range: Telegram never sends it; nothing to add
        words = u16[start:end].decode("utf-16-le", "replace").strip()
        out.append(u16[pos:end].decode("utf-16-le", "replace"))
        if e.url.rstrip("/") != words.rstrip("/"):
            out.append(f" ({e.url})")
        pos = end
    out.append(u16[pos:].decode("utf-16-le", "replace"))
    return "".join(out)


def _is_int(v: object) -> bool:
    return type(v) is int


def _plain_private_text(data: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(kind, message) when `data` is a plain text message in a private chat, else None."""
    if len(data) != 2 or not _is_int(data.get("update_id")):
        return None
    kind = "message" if "message" in data else "edited_message"
    m = data.get(kind)
    if not isinstance(m, dict) or not m.keys() <= _PLAIN_MESSAGE or (("edit_date" in m) != (kind == "edited_message")):
        return None
    chat, user, text = m.get("chat"), m.get("from"), m.get("text")
    if not (_is_int(m.get("message_id")) and _is_int(m.get("date")) and isinstance(text, str)
            and isinstance(chat, dict) and isinstance(user, dict)):
        return None
    if not (chat.keys() <= _PLAIN_CHAT and chat.get("type") == "private" and _is_int(chat.get("id"))
            and all(isinstance(chat.get(k, ""), str) for k in ("first_name", "last_name", "username"))):
        return None
    if not (user.keys() <= _PLAIN_USER and _is_int(user.get("id")) and user.get("is_bot") is False
            and isinstance(user.get("first_name"), str)
            and all(isinstance(user.get(k, ""), str) for k in _USER_TEXT)
            and all(isinstance(user.get(k, False), bool) for k in ("is_premium", "added_to_attachment_menu"))):
        return None
    if "edit_date" in m and not _is_int(m["edit_date"]):
        return None
    entities = m.get("entities", [])
    if not isinstance(entities, list) or not all(
            isinstance(e, dict) and e.keys() == _PLAIN_ENTITY and isinstance(e["type"], str)
            and _is_int(e["offset"]) and _is_int(e["length"]) for e in entities):
        return None
    return kind, m


def normalize_raw(data: dict[str, Any], me: BotIdentity) -> Normalized | None:
    """`normalize` for a plain text message in a private chat, from the update's JSON; None for
    every other update (normalize it through PTB)."""
    plain = _plain_private_text(data)
    if plain is None:
        return None
    kind, m = plain
    chat_id, uid = m["chat"]["id"], m["from"]["id"]
    words = _words(m["text"], me, False)
    assert words is not None  # None is only for a group
    cmd, text, mentioned = words
    if cmd is None and mentioned:
        cmd = parse_command(text)
    if is_blank(text):
        return Normalized(kind, skipped="no_content")
    meta = {"reply_chat_id": str(chat_id), "reply_chat_type": "private", "chat_type": "private",
            "reply_to_message_id": str(m["message_id"])}
    if kind == "edited_message":
        meta["edited"] = "1"
    _command_meta(meta, cmd)
    msg = Message(channel=CHANNEL, channel_message_id=str(data["update_id"]), conversation_id=f"{CHANNEL}:{chat_id}",
                  user_id=str(uid), text=text, lang=_lang(cmd, text, m["from"].get("language_code")), meta=meta)
    return Normalized(kind, message=msg)


def normalize(update: Update, me: BotIdentity) -> Normalized:
    kind = update_kind(update)
    handler = HANDLERS.get(kind)
    if handler is None:
        return Normalized(kind, skipped="unsupported_update")
    return handler(update, me)
