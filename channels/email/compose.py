"""`Outbound` → an RFC 5322 mail: threading headers, subject with the ticket token, plain text +
HTML alternative, and the stamps that keep other robots from answering us.

- **Threading**: `In-Reply-To` is the user's last mail, `References` its chain plus that mail, so
  every client (Gmail, Outlook, Apple Mail, Foxmail) shows our reply in the user's thread. Our
  Message-ID is derived from the Outbound id, so a retried send carries the *same* id and a
  receiving server or client can recognise the duplicate.
- **Subject**: `Re: <the user's subject> [SB-000123]`. Existing reply/forward prefixes (also the
  Chinese ones clients add) and older ticket tokens are removed first, so the token is never
  doubled however often the mail goes back and forth.
- **Automatic mail** (bot answers, acknowledgements, notices) says so: `Auto-Submitted` (RFC 3834:
  `auto-replied` for a response to the user's mail, `auto-generated` for notices such as "ticket
  resolved") and `X-Auto-Response-Suppress: All` (so Exchange does not send out-of-office replies
  back). Agent replies carry neither: they are a person writing. Every mail we send carries our
  loop header, so if one comes back to the support mailbox we drop it.
- **Message ids are never encoded**: `In-Reply-To` / `References` are written as plain msg-ids,
  folded between ids (never inside one). The standard library treats them as unstructured text
  and turns an id longer than a line (Exchange Online, SES and Mailchimp ids are 82–93
  characters) into an RFC 2047 encoded word, which Outlook and Apple Mail cannot match to the
  thread (CPython gh-100991); `MsgIdList` folds them itself.
- **Nothing of the user's mail is quoted back**: a reply might otherwise repeat account details
  or secrets the user typed (the bot's text is all there is).
"""

from __future__ import annotations

import html
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime
from typing import Literal

from bot.models import Outbound
from channels.email.guards import LOOP_HEADER

TICKET_TOKEN_RE = re.compile(r"\s*\[\s*(SB-\d{1,9})\s*\]", re.I)
REPLY_PREFIX_RE = re.compile(
    r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|rif|tr|r)\s*(\[\d+\])?\s*[:：]|回复\s*[:：]|回覆\s*[:：]|答复\s*[:：]|"
    r"转发\s*[:：]|轉寄\s*[:：]|转寄\s*[:：])\s*",
    re.I,
)
MAX_REFERENCES = 10

DEFAULT_SUBJECT = {"en": "Your support request", "zh": "您的咨询"}
BUTTONS_LINE = {"en": "Reply with one of: {options}", "zh": "请回复以下之一：{options}"}

Automatic = Literal["auto-replied", "auto-generated"]


def ticket_token(subject: str) -> str | None:
    """The ticket number written as `[SB-000123]` in a subject, normalised."""
    m = TICKET_TOKEN_RE.search(subject or "")
    if not m:
        return None
    digits = m.group(1).split("-", 1)[1]
    return f"SB-{int(digits):06d}"


def base_subject(subject: str) -> str:
    """The subject without reply/forward prefixes and ticket tokens."""
    s = TICKET_TOKEN_RE.sub("", subject or "")
    prev = None
    while prev != s:
        prev = s
        s = REPLY_PREFIX_RE.sub("", s, count=1)
    return re.sub(r"\s+", " ", s).strip()


def reply_subject(original: str, ticket: str | None, lang: str) -> str:
    base = base_subject(original) or DEFAULT_SUBJECT.get(lang, DEFAULT_SUBJECT["en"])
    subject = f"Re: {base}"
    return f"{subject} [{ticket}]" if ticket else subject


def message_id_for(outbound_id: str, domain: str) -> str:
    """Deterministic per Outbound: a retried send is recognisably the same mail."""
    safe = re.sub(r"[^A-Za-z0-9.-]", "", outbound_id)[:64] or "x"
    return f"<sb.{safe}@{domain}>"


def references_for(reply_references: str, reply_message_id: str) -> str:
    """The user's chain plus their mail, trimmed to the first and the latest ids (RFC 5322
    suggests keeping the root; clients only need the recent ones)."""
    ids = re.findall(r"<[^<>\s]+>", reply_references or "")
    if reply_message_id and reply_message_id not in ids:
        ids.append(reply_message_id)
    ids = list(dict.fromkeys(ids))
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1) :]]
    return " ".join(ids)


MAX_LINE = 78  # RFC 5322 §2.1.1 SHOULD; an id longer than that stays whole on its own line (MUST ≤ 998)
MAX_ID_CHARS = 900


class MsgIdList(str):
    """A header value of msg-ids that folds itself: `EmailPolicy` stores any value with a `name`
    as is and asks it to `fold()` when the mail is written, so no encoder ever touches it."""

    name: str

    def __new__(cls, name: str, ids: list[str]) -> MsgIdList:
        ids = [i for i in ids if len(i) <= MAX_ID_CHARS and re.fullmatch(r"<[^<>\s]+>", i)]
        obj = super().__new__(cls, " ".join(ids))
        obj.name = name
        return obj

    @property
    def defects(self) -> tuple[()]:
        return ()

    def fold(self, *, policy: Policy) -> str:
        lines: list[str] = []
        line = f"{self.name}:"
        for msgid in self.split():
            if len(line) + 1 + len(msgid) > MAX_LINE and line.strip() and not line.endswith(":"):
                lines.append(line)
                line = ""
            line += " " + msgid
        lines.append(line)
        return str(policy.linesep).join(lines) + str(policy.linesep)


def render_text(ob: Outbound, from_name: str) -> str:
    """The plain-text body: the reply, the agent's name under their reply, the button options
    as a line (mail has no buttons)."""
    parts = [ob.text.strip()]
    if ob.buttons:
        options = " / ".join(b.label for b in ob.buttons)
        parts.append(BUTTONS_LINE.get(ob.lang, BUTTONS_LINE["en"]).format(options=options))
    if ob.kind == "agent" and ob.author:
        parts.append(f"— {ob.author}\n{from_name}")
    return "\n\n".join(p for p in parts if p) + "\n"


def render_html(text: str, lang: str) -> str:
    """The same text as HTML: everything escaped (a reply can contain `<` or a user's words),
    paragraphs at blank lines, `<br>` at line breaks; no links, scripts or remote images."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    body = "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.splitlines()) + "</p>" for p in paragraphs
    )
    html_lang = "zh-CN" if lang == "zh" else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{html_lang}"><head><meta charset="utf-8"></head>\n'
        '<body style="font-family: -apple-system, Segoe UI, Helvetica, Arial, \'PingFang SC\', '
        "'Microsoft YaHei', sans-serif; font-size: 14px; line-height: 1.5;\">\n"
        f"{body}\n</body></html>\n"
    )


def compose(
    ob: Outbound,
    *,
    from_addr: str,
    from_name: str,
    to_addr: str,
    subject: str,
    message_id: str,
    in_reply_to: str | None,
    references: str,
    automatic: Automatic | None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = Address(display_name=from_name, addr_spec=from_addr)
    msg["To"] = Address(addr_spec=to_addr)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(ob.created_at)
    msg["Message-ID"] = message_id
    if in_reply_to and (irt := MsgIdList("In-Reply-To", re.findall(r"<[^<>\s]+>", in_reply_to)[:1])):
        msg["In-Reply-To"] = irt
    if references and (refs := MsgIdList("References", re.findall(r"<[^<>\s]+>", references))):
        msg["References"] = refs
    if automatic:
        msg["Auto-Submitted"] = automatic
        msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = from_addr
    text = render_text(ob, from_name)
    msg.set_content(text, charset="utf-8")
    msg.add_alternative(render_html(text, ob.lang), subtype="html", charset="utf-8")
    # After the body: making the alternative moves every Content-* header into the first part.
    msg["Content-Language"] = "zh-CN" if ob.lang == "zh" else "en"
    return msg
