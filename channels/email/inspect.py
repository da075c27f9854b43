"""`switchboard email inspect`: why did (or didn't) the bot answer this mail?

Runs a saved mail (.eml) through the same parser and guards as the channel — no IMAP, SMTP,
Redis or NLU — and prints one JSON line per mail: the verdict and why, the sender (and whether
the receiving server authenticated it), where it would thread, the language and the text the bot
would read, and each attachment with whether it would be stored.

Thread state lives in Redis and is not consulted: `thread.key` is what the channel would look
up (the ids of the mails it answers, else its ticket token), or the conversation a new thread
gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from bot.redact import redact
from channels.email.config import EmailChannelSettings
from channels.email.guards import classify
from channels.email.parse import ParsedMail, parse_mail
from channels.email.reading import (
    attachment_decisions,
    bot_language,
    bot_text,
    looks_like_reply,
    new_conversation_id,
    subject_ticket,
    thread_candidates,
)
from channels.email.sender import identify

MAX_INPUT_BYTES = 100 * 1024 * 1024


def default_settings(address: str | None = None) -> EmailChannelSettings:
    """Channel settings for inspecting without a config file: only what decides how a mail is
    read matters here; the server fields are placeholders that are never used."""
    return EmailChannelSettings(
        address=address or "support@inspect.invalid", imap_host="-", username="-", password="-", smtp_host="-",  # type: ignore[arg-type]
    )


def _thread(mail: ParsedMail, cmid: str) -> dict[str, Any]:
    candidates = thread_candidates(mail)
    ticket = subject_ticket(mail)
    if candidates:
        key, how = candidates[0], "reply_to"
    elif ticket:
        key, how = ticket, "ticket_token"
    else:
        key, how = new_conversation_id(cmid), "new"
    return {"key": key, "how": how, "message_id": mail.message_id, "in_reply_to": list(mail.in_reply_to),
            "references": list(mail.references), "ticket_token": ticket}


def inspect_mail(raw: bytes, cfg: EmailChannelSettings, source: str = "") -> dict[str, Any]:
    """One mail → the report (see the module docstring). Never raises for a bad mail: a mail the
    parser cannot read gets the verdict `unparseable` and the error."""
    out: dict[str, Any] = {"file": source}
    try:
        mail = parse_mail(raw)
    except Exception as e:  # noqa: BLE001 - this is exactly what the operator asks about
        return {**out, "verdict": "unparseable", "why": f"{type(e).__name__}: {str(e)[:300]}"}
    verdict = classify(mail, cfg.address, frozenset(cfg.relay_senders))
    sender = identify(mail, cfg)
    kind: str = verdict.kind
    why = verdict.reason or "a person wrote: no automatic-mail, bounce, list or loop sign"
    if kind == "customer" and not sender.reply_address:
        kind, why = "unparseable", "no sender address (From) to reply to"
    elif kind == "customer" and mail.unreadable:
        why = f"a person wrote, but the mail is {mail.unreadable}: the sender is asked to write again"
    cmid = mail.message_id or "no-message-id"
    text = bot_text(mail, is_reply=looks_like_reply(mail))
    attachments = [
        {"name": d.attachment.name, "content_type": d.attachment.content_type, "size": len(d.attachment.data),
         "stored": d.stored, **({"reason": d.reason} if d.reason else {})}
        for d in attachment_decisions(cfg, mail)
    ]
    return {
        **out,
        "verdict": kind,
        "why": why,
        "sender": mail.from_addr,
        "sender_name": mail.from_name,
        "reply_to": sender.reply_address,
        "sender_verified": sender.verified,
        "sender_verification": sender.why,
        "subject": mail.subject,
        "thread": _thread(mail, cmid),
        "language": bot_language(mail, is_reply=looks_like_reply(mail)),
        "text": redact(text).text if kind == "customer" else "",
        "attachments": attachments,
        "problems": list(mail.problems),
        **({"bounce": {"recipients": list(mail.bounce.recipients), "status": mail.bounce.status,
                       "original_message_id": mail.bounce.original_message_id}} if mail.bounce else {}),
    }


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    data: bytes | None
    error: str = ""


def read_sources(paths: Iterable[str], stdin: BinaryIO) -> Iterator[Source]:
    """Each named file, or standard input for "-" (one mail)."""
    for p in paths:
        if p == "-":
            yield Source("-", stdin.read(MAX_INPUT_BYTES))
            continue
        try:
            path = Path(p)
            if path.stat().st_size > MAX_INPUT_BYTES:
                yield Source(p, None, f"larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB")
                continue
            yield Source(p, path.read_bytes())
        except OSError as e:
            yield Source(p, None, f"{type(e).__name__}: {e.strerror or e}")
