"""Pure decisions about an accepted mail, shared by the channel and `switchboard email inspect`:
the text the bot reads, which attachments are stored, and where the mail would thread."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass

from bot.files import safe_filename
from bot.lang import Lang
from channels.email.compose import base_subject, ticket_token
from channels.email.config import EmailChannelSettings
from channels.email.parse import ParsedMail, RawAttachment
from channels.email.quotes import mail_language, signature_only

NLU_TEXT_CHARS = 4000
MAX_ATTACHMENTS = 20
CONVERSATION_NS = uuid.UUID("6b1f8d4e-6a49-4c0e-9d8a-3f2b7c1e5a90")
# Never stored, whatever type the sender claims: executables and scripts.
BLOCKED_EXTENSIONS = frozenset(
    ".exe .com .bat .cmd .scr .pif .msi .dll .js .jse .vbs .vbe .wsf .wsh .ps1 .jar .hta .lnk .reg .cpl .iso".split()
)


def _contains_phrase(text: str, phrase: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", text, re.I) is not None


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def looks_like_reply(mail: ParsedMail) -> bool:
    return bool(mail.in_reply_to) or base_subject(mail.subject) != mail.subject.strip()


def bot_text(mail: ParsedMail, *, is_reply: bool) -> str:
    """What the NLU reads: the new part of the mail (quotes and signature cut), with the subject
    in front for a new thread (people often put the question there), and the sender and subject
    of each mail attached whole ("is this from you?" is a question about that mail). Nothing of
    a mail the bot cannot read (encrypted): its subject alone would be answered as if it were
    the question."""
    if mail.unreadable:
        return ""
    text = own_text(mail, is_reply=is_reply)
    shown = [f"> From: {f.sender}\n> Subject: {f.subject}" for f in mail.forwarded[:3]]
    return "\n\n".join([text, *shown]).strip()[:NLU_TEXT_CHARS]


def bot_language(mail: ParsedMail, *, is_reply: bool) -> Lang:
    """The language to answer in: of what the user wrote, not of a mail they forwarded."""
    return mail_language(own_text(mail, is_reply=is_reply), mail.lang_hint)


def own_text(mail: ParsedMail, *, is_reply: bool) -> str:
    """The words the user wrote (see `bot_text`); the mail's language is decided on these."""
    subject = base_subject(mail.subject)
    if any(base_subject(f.subject) == subject for f in mail.forwarded):
        subject = ""  # "Fwd: <its subject>": said once, with the forwarded mail
    stripped = mail.stripped or ("" if signature_only(mail.body) else mail.body)
    if not is_reply and subject and not _contains_phrase(stripped, subject):
        text = f"{subject}\n\n{stripped}".strip()
    else:
        text = stripped.strip() or subject
    return text[:NLU_TEXT_CHARS]


@dataclass(frozen=True, slots=True)
class AttachmentDecision:
    attachment: RawAttachment
    filename: str
    stored: bool
    reason: str = ""  # why not stored


def attachment_decisions(cfg: EmailChannelSettings, mail: ParsedMail) -> list[AttachmentDecision]:
    out: list[AttachmentDecision] = []
    for i, a in enumerate(mail.attachments):
        size = len(a.data)
        fname = safe_filename(a.name)
        ext = os.path.splitext(fname)[1].lower()
        if i >= MAX_ATTACHMENTS:
            out.append(AttachmentDecision(a, fname, False, f"more than {MAX_ATTACHMENTS} attachments"))
        elif not cfg.attachment_type_allowed(a.content_type) or ext in BLOCKED_EXTENSIONS:
            out.append(AttachmentDecision(a, fname, False, f"type {a.content_type} not accepted"))
        elif size > cfg.max_attachment_bytes:
            out.append(AttachmentDecision(a, fname, False, f"{_mib(size)} is over the {_mib(cfg.max_attachment_bytes)} limit"))
        else:
            out.append(AttachmentDecision(a, fname, True))
    return out


def thread_candidates(mail: ParsedMail) -> list[str]:
    """Message ids that may place this mail in a known thread, most specific first."""
    return list(dict.fromkeys([*mail.in_reply_to, *reversed(mail.references)]))


def new_conversation_id(cmid: str) -> str:
    return f"email:{uuid.uuid5(CONVERSATION_NS, cmid)}"


def subject_ticket(mail: ParsedMail) -> str | None:
    return ticket_token(mail.subject)
