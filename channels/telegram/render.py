"""What the Telegram channel says and how a reply is cut up — pure functions, no SDK, no I/O, so
the rules (4096-character limit, group privacy, 64-byte callback data) are unit-tested directly.

Replies are sent as plain text (no parse_mode): answers and agent messages contain user-chosen
text, addresses and `*`/`_`/`<` characters that Markdown or HTML would mangle or reject.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from bot.models import Button, Outbound
from bot.quoting import grapheme_cut

# Bot API limit for one message ("1-4096 characters after entities parsing"). Counted in UTF-16
# code units, as Telegram does, so emoji-heavy text never overshoots.
MAX_MESSAGE = 4096
# Bot API limit for InlineKeyboardButton.callback_data.
MAX_CALLBACK_BYTES = 64
# A long payload travels as CALLBACK_PREFIX + digest; the payload itself waits in Redis.
CALLBACK_PREFIX = "cb#"

GROUP_CHAT_TYPES = frozenset({"group", "supergroup"})
# Topics general enough to answer in front of a group. Everything else — the user's own account,
# deposits, withdrawals, security settings, tickets, and every handoff — moves to a private chat,
# because group members read along and scammers watch groups for victims to DM.
PUBLIC_TOPICS = frozenset({"glossary", "education", "smalltalk", "trading", "fees", "vip", "out_of_scope"})

TEXTS: dict[str, dict[str, str]] = {
    "go_private": {
        "en": (
            "This is about your own account, so let's not discuss it in the group. "
            "Please continue in a private chat with me: {link}\n"
            "Official support never messages you first and never asks for passwords, codes or seed "
            "phrases. Anyone who DMs you claiming to be support is a scammer."
        ),
        "zh": (
            "这涉及您的个人账户，请不要在群里讨论。请点击链接与我私聊继续：{link}\n"
            "官方客服绝不会主动私信您，也绝不会索要密码、验证码或助记词。主动私信自称客服的都是骗子。"
        ),
    },
    "urgent_first_step": {
        "en": "\nIf someone may have access to your account, freeze it now in the app under Security settings "
              "(you can unfreeze it later) — then open the link.",
        "zh": "\n如果有人可能已经登录您的账户，请立即在 APP 的“安全设置”中冻结账户（之后可以解冻），然后点击上面的链接。",
    },
    "too_large": {
        "en": "{names} is too large (the limit is {limit}), so I could not accept it.",
        "zh": "{names} 太大（上限 {limit}），无法接收。",
    },
    "wrong_type": {
        "en": "{names} was not kept: I accept photos, PDF and text files and MP4 videos only.",
        "zh": "{names} 未被接收：我只接收图片、PDF、文本文件和 MP4 视频。",
    },
    "replied_privately": {
        "en": "I have replied to you in our private chat.",
        "zh": "我已在私聊中回复您。",
    },
    "secret_deleted": {
        "en": (
            "I removed your message: it looked like it contained a password, code, seed phrase or key, "
            "and everyone in this group could read it. Never post these anywhere. If it was real, treat it "
            "as exposed and continue in a private chat with me: {link}"
        ),
        "zh": "我已删除您的消息：其中似乎包含密码、验证码、助记词或密钥，群里所有人都能看到。请不要在任何地方发布这些信息。"
              "如果内容是真实的，请视为已泄露，并点击链接与我私聊继续：{link}",
    },
    "secret_delete_it": {
        "en": (
            "Please delete your last message now: it looks like it contains a password, code, seed phrase "
            "or key, and everyone in this group can read it. If it was real, treat it as exposed and "
            "continue in a private chat with me: {link}"
        ),
        "zh": "请立即删除您刚才的消息：其中似乎包含密码、验证码、助记词或密钥，群里所有人都能看到。"
              "如果内容是真实的，请视为已泄露，并点击链接与我私聊继续：{link}",
    },
    "too_large_text_kept": {
        "en": " Your message itself has been received.",
        "zh": "您的文字消息已收到。",
    },
    "describe": {
        "en": " Please describe the problem in a message.",
        "zh": "请用文字描述您的问题。",
    },
    "too_large_resend": {
        "en": " Please send a smaller file or describe the problem in a message.",
        "zh": "请发送更小的文件，或用文字描述您的问题。",
    },
    "unsupported": {
        "en": "I can read text, photos and documents, but not voice messages, stickers, locations, contacts, "
              "polls or dice. Please type your question in a message.",
        "zh": "我可以读取文字、图片和文件，但无法读取语音、贴纸、位置、联系人、投票或骰子。请用文字描述您的问题。",
    },
    "agent": {"en": "support agent", "zh": "客服"},
}


def text(key: str, lang: str, **kw: str) -> str:
    t = TEXTS[key]
    return (t.get(lang) or t["en"]).format(**kw)


def human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.0f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


def too_large_notice(names: Sequence[str], limit: int, lang: str, *, text_kept: bool) -> str:
    return not_kept_notice([(n, "size") for n in names], limit, lang, text_kept=text_kept)


def not_kept_notice(files: Sequence[tuple[str, str]], limit: int, lang: str, *, text_kept: bool) -> str:
    """What the user is told about files we did not keep (`why`: "size" or "type")."""
    parts = []
    big = [n for n, why in files if why == "size"]
    odd = [n for n, why in files if why != "size"]
    sep = "" if lang == "zh" else " "
    if big:
        parts.append(text("too_large", lang, names=", ".join(f"“{n}”" for n in big), limit=human_size(limit)))
    if odd:
        parts.append(text("wrong_type", lang, names=", ".join(f"“{n}”" for n in odd)))
    tail = text("too_large_text_kept" if text_kept else ("too_large_resend" if big else "describe"), lang)
    return sep.join(parts) + tail


def is_group(chat_type: str | None) -> bool:
    return chat_type in GROUP_CHAT_TYPES


def needs_private_chat(ob: Outbound) -> bool:
    """True when `ob` must not be posted where it is going (a group) and the user is asked to
    continue in a private chat instead. Our own notices (file too large) are marked public."""
    if not is_group(ob.meta.get("reply_chat_type")):
        return False
    if ob.meta.get("reply_public_ok") == "1":
        return False
    if ob.meta.get("reply_redacted"):
        return True  # the user posted a secret there: nothing more about it in front of the group
    if ob.kind in ("agent", "system"):
        return True  # a person's messages and ticket notices are about the user's own case
    return ob.topic not in PUBLIC_TOPICS


def start_payload(topic: str | None) -> str:
    """Deep-link payload (`/start <payload>`; Telegram allows [A-Za-z0-9_-], ≤ 64 chars) that tells
    the router where the user came from."""
    safe = "".join(c for c in (topic or "") if c.isascii() and (c.isalnum() or c in "_-"))
    return f"group_{safe}"[:64] if safe else "group"


def deep_link(bot_username: str, payload: str) -> str:
    return f"https://t.me/{bot_username}?start={payload}"


def go_private_text(lang: str, bot_username: str, topic: str | None) -> str:
    body = text("go_private", lang, link=deep_link(bot_username, start_payload(topic)))
    if topic == "theft":
        # The one step that cannot wait for the private chat, and says nothing about the case.
        first, _, rest = body.partition("\n")
        body = first + text("urgent_first_step", lang) + "\n" + rest
    return body


def with_author(ob: Outbound) -> str:
    """Agent messages say who wrote them (the bot's own answers do not)."""
    if ob.kind == "agent" and ob.author:
        return f"{ob.author} ({text('agent', ob.lang)}):\n{ob.text}"
    return ob.text


def utf16_len(s: str) -> int:
    """Length in UTF-16 code units, Telegram's measure (a lone surrogate counts one)."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def _fit(s: str, limit: int) -> int:
    """Index of the longest prefix of `s` within `limit` UTF-16 units."""
    n = 0
    for i, c in enumerate(s):
        n += 2 if ord(c) > 0xFFFF else 1
        if n > limit:
            return i
    return len(s)


def split_text(s: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Cut `s` into messages of at most `limit` (UTF-16 units), preferring paragraph breaks, then
    line breaks, then sentence ends, then spaces; a hard cut only for one giant word. The cut
    whitespace is dropped, nothing else is, so the parts read as the original."""
    s = s.strip()
    parts: list[str] = []
    while utf16_len(s) > limit:
        end = _fit(s, limit)
        window = s[:end]
        cut = -1
        for sep in ("\n\n", "\n", "。", ". ", "！", "？", "! ", "? ", " "):
            i = window.rfind(sep)
            if i > end // 4:  # never leave a tiny first part because of an early break
                cut = i + (len(sep) if sep.strip() else 0)
                break
        if cut <= 0:
            cut = grapheme_cut(s, end)
        parts.append(s[:cut].rstrip())
        s = s[cut:].lstrip()
    if s:
        parts.append(s)
    return parts


def keyboard_rows(buttons: Sequence[Button]) -> list[list[Button]]:
    """Short labels (ratings 1-5, 👍/👎) share one row; longer choices get a row each so they are
    never truncated on a phone."""
    if buttons and all(len(b.label) <= 3 for b in buttons) and len(buttons) <= 8:
        return [list(buttons)]
    return [[b] for b in buttons]


def fits_callback(payload: str) -> bool:
    return 0 < len(payload.encode("utf-8")) <= MAX_CALLBACK_BYTES


def callback_digest(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]
