"""Public vs private on X — what may be said under a user's public post, as a pure function.

Public posts are where angry users and fake-support scammers meet, so the rule is deliberately
narrow and checkable:

* A reply is posted **publicly** only when it is the bot's own `answer` (not clarify, handoff,
  agent or system) to a public mention, its topic is general knowledge — glossary, education,
  smalltalk, trading, fees, vip, security (how-to, e.g. enabling 2FA; incidents are `theft`, a
  handoff) — the user's post contained no secret, and the text carries nothing that looks like
  an account detail (redaction marks, e-mail addresses, long numbers, addresses/TxIDs/keys).
  It is shortened to `public_max_chars` with a link to the help page.
* Everything else that answers a public mention — account, deposit, withdrawal and ticket
  answers (they are about *the user's* account), every clarify (it invites the user to post more
  details) and every handoff — becomes a short public reply in the user's language that moves them
  to DM, plus a DM with the full reply when X lets us open one.
* Agent and system messages, and anything answering a DM, go by DM only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.models import Outbound
from channels.twitter.text import shorten_public, split_dm

PUBLIC_TOPICS = frozenset({"glossary", "education", "smalltalk", "trading", "fees", "vip", "security"})
# Kinds that answer the user's post, so the post deserves a visible reaction even when the
# content goes to DM. Agent/system messages arrive later in the conversation: DM only.
NUDGE_KINDS = frozenset({"answer", "clarify", "handoff"})

_PRIVATE = re.compile(
    r"\[REDACTED:"
    r"|[\w.+-]+@[\w-]+\.[\w.-]+"  # e-mail address
    r"|\b0x[0-9a-fA-F]{16,}"  # EVM address / tx hash / key
    r"|\b(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{24,}\b"  # address, TxID, API key
    r"|\d{6,}"  # UID, order or ticket number, phone
)

Route = Literal["public", "dm_with_nudge", "dm"]


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """How one Outbound goes out: `public_text` under the user's post (route public), or
    `dm_parts` by DM, followed for dm_with_nudge by a public nudge whose wording depends on
    whether the DM got through."""

    route: Route
    reason: str
    public_text: str = ""
    dm_parts: tuple[str, ...] = ()


def looks_private(text: str) -> bool:
    """True when a text carries something that must never be public (redaction marks or what
    looks like an account detail)."""
    return _PRIVATE.search(text) is not None


def public_refusal(ob: Outbound) -> str | None:
    """Why this reply may not be posted publicly, or None when it may."""
    if ob.kind != "answer":
        return f"kind:{ob.kind}"
    if ob.topic not in PUBLIC_TOPICS:
        return f"topic:{ob.topic}"
    if ob.meta.get("reply_redacted"):
        return "secret_in_post"
    if looks_private(ob.text):
        return "private_detail"
    return None


def plan_reply(ob: Outbound, *, public_max_chars: int, dm_max_chars: int, help_url: str | None) -> ReplyPlan:
    is_public = ob.meta.get("reply_visibility") == "public" and bool(ob.meta.get("reply_tweet_id"))
    if not is_public:
        return ReplyPlan("dm", "dm_conversation", dm_parts=tuple(split_dm(ob.text, dm_max_chars)))
    refusal = public_refusal(ob)
    if refusal is None:
        # The shortened text is a prefix of the checked answer plus the configured link.
        text = shorten_public(ob.text, public_max_chars, help_url)
        if text:
            return ReplyPlan("public", "general", public_text=text)
        refusal = "empty"
    parts = tuple(split_dm(ob.text, dm_max_chars))
    if ob.kind in NUDGE_KINDS:
        return ReplyPlan("dm_with_nudge", refusal, dm_parts=parts)
    return ReplyPlan("dm", refusal, dm_parts=parts)


_NUDGE = {
    # DM delivered: point to it.
    "sent": {
        "en": "Thanks for reaching out. We've sent you a Direct Message so we can help you privately — "
        "please continue there. We will never ask for your password, codes or seed phrase.",
        "zh": "感谢您的联系。我们已给您发送私信，以便私下为您处理，请在私信中继续沟通。我们绝不会索要您的密码、验证码或助记词。",
    },
    # X did not let us open a DM (the user does not accept DMs from us): ask them to write first.
    "ask": {
        "en": "Thanks for reaching out. Please send us a Direct Message so we can help you privately. "
        "Never share your password, codes or seed phrase with anyone.",
        "zh": "感谢您的联系。请给我们发送私信，以便私下为您处理。请勿向任何人透露密码、验证码或助记词。",
    },
}
_DELETE_POST = {
    "en": "Your post may contain private information; please delete it. ",
    "zh": "您的帖子可能包含敏感信息，请尽快删除。",
}


def nudge_text(lang: str, *, dm_sent: bool, secret_posted: bool) -> str:
    """The short public reply that moves a user to DM: never a detail of their case."""
    lg = "zh" if lang == "zh" else "en"
    body = _NUDGE["sent" if dm_sent else "ask"][lg]
    return (_DELETE_POST[lg] + body) if secret_posted else body
