"""Email channel adapter: IMAP in, SMTP out.

**Inbound, exactly once.** One long-lived IMAP session (IDLE, or polling where the server lacks
IDLE or `idle: false`) takes in mail in UID order. For each mail: fetch with BODY.PEEK (reading
does not mark it), parse, sort out automatic mail and bounces (`guards.py`), store attachments and
the full text, then hand the `Message` to the sink (redaction + the inbound queue, deduplicated on
the mail's Message-ID). Only after the sink returned is the mail marked \\Seen and the UID cursor
(UIDVALIDITY + UID, in Redis) advanced. A process killed anywhere in between finds the mail again
after a restart (the cursor did not move) and the queue's dedupe turns a second hand-over into a
no-op, so a mail is taken in once — never zero times, never twice. Connection problems restart
the session after an exponential back-off with jitter, reset once a session works again.

**Threads.** A conversation is one thread: a mail joins the conversation of the first of its
In-Reply-To / References ids we know (ours or the user's earlier mails), else the one whose ticket
token (`[SB-000123]`) is in its subject, else it starts a new `email:<uuid>` (a uuid5 of its
Message-ID, so a re-read mail gets the same id). A mail joins an existing conversation only when
it comes from that conversation's address: someone who copies a ticket token into a subject or
is forwarded a thread cannot attach themselves to another user's ticket and receive its replies.

**What the NLU sees and what the ticket keeps.** `Message.text` is the new part of the mail:
quoted replies and signatures cut, the subject in front for a new thread (people often put the
question there). The whole mail (headers summary, full body with its quotes, notes on rejected
attachments or parse problems) is written — redacted — to `message.txt` beside the attachments
and listed as the first attachment, so the ticket shows the complete mail; `meta.full_text_ref`
names it. Attachment refs are storage keys relative to `attachments_dir`.

**Outbound.** Replies go out over SMTP (`compose.py` for the headers that keep threads and stop
loops). The bot's `handoff` reply is not mailed: on email every handoff is followed by the ticket
acknowledgement (`ticket_ack`), which carries the same text plus the ticket number — two mails
saying the same thing would be noise. The handoff reply waits (`handoff_ack_wait_s`) and is
dropped when the acknowledgement for its conversation is sent; if none comes (an existing ticket
was reopened, which is not acknowledged), it is mailed on its own after the wait. Automatic
replies are rate-limited per recipient (`autoreply_max` per `autoreply_window_s`); agent replies
never are.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.backoff import Backoff
from bot.config import ChannelSettings, Settings
from bot.errors import ConfigError, PermanentChannelError, TransientChannelError
from bot.files import is_text, read_inside, redact_text_file, write_atomic
from bot.logs import get_logger
from bot.models import Attachment, Message, Outbound
from bot.redact import redact, redact_async
from channels.email.compose import (
    compose,
    message_id_for,
    references_for,
    reply_subject,
    ticket_token,
)
from channels.email.config import ADDRESS_RE, EmailChannelSettings
from channels.email.guards import Verdict, classify
from channels.email.imap import IMAP_ERRORS, ImapError, ImapSession
from channels.email.notices import unreadable_notice
from channels.email.parse import ParsedMail, decode_bytes, first_address, parse_headers_only, parse_mail
from channels.email.reading import (
    NLU_TEXT_CHARS,
    attachment_decisions,
    bot_language,
    bot_text,
    looks_like_reply,
    new_conversation_id,
    thread_candidates,
)
from channels.email.sender import SenderCheck, identify
from channels.email.smtp import send_mail
from channels.email.state import EmailState

if TYPE_CHECKING:
    from bot.intake import Sink

log = get_logger("switchboard.email")

FULL_TEXT_CHARS = 500_000
POISON_AFTER = 5
FETCH_BATCH = 100
MSGID_IN_TEXT = re.compile(r"^\s*Message-ID:\s*<([^<>\s]+)>", re.I | re.M)
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError)
RETRYABLE: tuple[type[BaseException], ...] = (*IMAP_ERRORS, ImapError, *REDIS_ERRORS)


@dataclass(frozen=True, slots=True)
class Stored:
    attachments: tuple[Attachment, ...]
    rejected: tuple[str, ...]
    full_text_ref: str | None
    secrets: tuple[str, ...] = ()  # kinds redacted from text attachments: they count for the decision


def _decode_any(data: bytes) -> str:
    return decode_bytes(data, None)  # the mail parser's charset guesses (GBK, Big5, …)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def identity(check: SenderCheck) -> str:
    """The user id of a sender: the address when the receiving server authenticated it, else a
    separate `unverified:` identity — it shares no conversation, ticket or contact (and so no
    ticket status, VIP level or history) with the address's real owner."""
    addr = check.reply_address or ""
    return addr if check.verified else f"unverified:{addr}"


def _write_once(path: Path, data: bytes) -> None:
    """A stored copy is never overwritten: its folder is derived from the mail's dedupe id, so a
    file already there is this very mail, written before a crash."""
    if not path.exists():
        write_atomic(path, data)


def _reply_to(mail: ParsedMail, address: str) -> dict[str, str]:
    """Where and how a reply to `mail` goes: the address, the subject (redacted: intake redacts the
    text only, and the subject is kept in meta and state and quoted in replies) and, to thread it,
    the mail's Message-ID."""
    meta = {"reply_to_addr": address, "reply_subject": redact(mail.subject).text[:300]}
    if mail.message_id:
        meta["reply_message_id"] = f"<{mail.message_id}>"
    return meta


class EmailChannel:
    """The email adapter: see the module docstring for the guarantees."""

    name: ClassVar[str] = "email"

    def __init__(self, settings: Settings, cfg: EmailChannelSettings, r: aioredis.Redis) -> None:
        self.settings = settings
        self.cfg = cfg
        self.r = r
        self.state = EmailState(r, cfg.address)
        self.attachments_dir = settings.path(cfg.attachments_dir)
        self._sink: Sink | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._tls: ssl.SSLContext | None = None
        self._backoff = Backoff(0.5, cfg.reconnect_max_s)
        self.connected = asyncio.Event()  # set while an IMAP session is open (tests, health)
        self.mode = "idle" if cfg.idle else "poll"  # what the current session does
        self.taken_in = 0

    @classmethod
    def from_config(cls, settings: Settings, cfg: ChannelSettings, redis: aioredis.Redis) -> EmailChannel:
        if not isinstance(cfg, EmailChannelSettings):
            raise ConfigError("email channel: expected an EmailChannelSettings section")
        return cls(settings, cfg, redis)

    def routes(self) -> None:
        return None

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self, sink: Sink) -> None:
        """Start the IMAP intake and the deferred-reply timer in the background. An unreachable
        mail server does not stop the start (the intake keeps retrying); a missing CA file does."""
        if self._sink is not None:
            raise RuntimeError("email channel already started")
        self._tls = self._ssl_context()
        self._sink = sink
        self._stop.clear()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._intake_forever(), name="email-intake"),
            loop.create_task(self._deferred_forever(), name="email-deferred"),
        ]
        log.info("email.started", address=self.cfg.address, mailbox=self.cfg.mailbox,
                 imap=f"{self.cfg.imap_host}:{self.cfg.effective_imap_port}", idle=self.cfg.idle)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop taking in mail: the mail in hand is finished within `grace_s`, else cancelled
        (safe at any point: an unfinished mail is not marked seen and is read again later)."""
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s) if grace_s > 0 else (set(), set(tasks))
            for t in pending:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        self._sink = None

    async def __aenter__(self) -> EmailChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _tls_context(self) -> ssl.SSLContext | None:
        """The TLS context, built on first use when sending starts before the intake."""
        if self._tls is None:
            self._tls = self._ssl_context()
        return self._tls

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.cfg.imap_security == "plain" and self.cfg.smtp_security == "none":
            return None
        ca = self.cfg.tls_ca_file
        if ca is not None and not self.settings.path(ca).is_file():
            raise ConfigError(f"email.tls_ca_file: {ca} not found")
        return ssl.create_default_context(cafile=str(self.settings.path(ca)) if ca else None)

    # -- inbound ----------------------------------------------------------------------------------
    def _session(self) -> ImapSession:
        c = self.cfg
        return ImapSession(
            host=c.imap_host, port=c.effective_imap_port, security=c.imap_security, username=c.username,
            password=c.password.get_secret_value(), mailbox=c.mailbox, timeout=c.imap_timeout_s,
            ssl_context=self._tls,
        )

    async def _intake_forever(self) -> None:
        while not self._stop.is_set():
            session = self._session()
            try:
                await session.open()
                self.connected.set()
                log.info("email.imap_connected", mailbox=self.cfg.mailbox, idle=self.cfg.idle and session.supports_idle)
                await self._serve(session)
            except RETRYABLE as e:
                delay = self._backoff.next()
                log.warning("email.imap_unavailable", error=f"{type(e).__name__}: {str(e)[:200]}",
                            retry_in=round(delay, 2))
                await self._sleep(delay)
            except Exception:  # noqa: BLE001 - a bug must not end the intake for good; nothing is marked, so nothing is lost
                delay = self._backoff.next()
                log.exception("email.intake_failed", retry_in=round(delay, 2))
                await self._sleep(delay)
            finally:
                self.connected.clear()
                await session.close()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _serve(self, session: ImapSession) -> None:
        use_idle = self.cfg.idle and session.supports_idle
        self.mode = "idle" if use_idle else "poll"
        if self.cfg.idle and not use_idle:
            log.info("email.idle_unsupported", poll_interval_s=self.cfg.poll_interval_s)
        while not self._stop.is_set():
            await self._drain(session)
            self._backoff.reset()
            if use_idle:
                await session.idle(self.cfg.idle_renew_s, self._stop)
            else:
                await session.wait(self.cfg.poll_interval_s, self._stop)

    async def _drain(self, session: ImapSession) -> None:
        """Take in everything after the cursor; search again while the server reported new mail
        during the pass (so nothing waits for the next IDLE renewal)."""
        while not self._stop.is_set():
            session.changed.clear()
            cur = await self.state.cursor(self.cfg.mailbox)
            last = cur[1] if cur and cur[0] == session.uidvalidity else None
            if cur and last is None:
                log.warning("email.uidvalidity_changed", mailbox=self.cfg.mailbox, old=cur[0], new=session.uidvalidity)
            uids = await session.search_after(last)
            for i in range(0, len(uids), FETCH_BATCH):  # short command lines, even for a backlog
                batch = uids[i : i + FETCH_BATCH]
                sizes = await session.sizes(batch)
                for uid in batch:
                    if self._stop.is_set():
                        return
                    await self._take_in(session, uid, sizes.get(uid, 0))
            if not session.changed.is_set():
                return

    async def _take_in(self, session: ImapSession, uid: int, size: int) -> None:
        too_big = size > self.cfg.max_message_bytes
        fallback_id = f"uid:{session.uidvalidity}:{uid}"
        try:
            raw = await session.fetch(uid, headers_only=too_big, size=size)
        except ImapError as e:
            if session.lost.is_set() or not await self._poison(session, uid, fallback_id, e):
                raise
            return
        if raw is None:  # expunged meanwhile
            await self._done(session, uid)
            return
        try:
            mail = parse_headers_only(raw) if too_big else parse_mail(raw)
            log.info("email.fetched", uid=uid, size=size, message_id=mail.message_id, parts=len(mail.attachments))
            check = identify(mail, self.cfg)
            who = identity(check)
            cmid = await self._channel_message_id(mail, fallback_id, who)
            verdict = classify(mail, self.cfg.address, frozenset(self.cfg.relay_senders))
            if verdict.action == "bounce":
                await self._record_bounce(mail, cmid)
            elif verdict.action == "suppress":
                await self._record_suppressed(mail, cmid, verdict)
            elif check.reply_address is None:
                await self._dead_letter(uid, cmid, "no sender address (From) to reply to")
            elif not check.verified and self.cfg.unverified_senders == "ignore":
                await self._record_suppressed(mail, cmid, Verdict("customer", f"sender_not_verified: {check.why}"[:300]))
            elif mail.unreadable and not too_big:
                await self._tell_unreadable(mail, cmid, check, size=size)
            else:
                await self._accept(mail, cmid, check, too_big=too_big, size=size)
        except RETRYABLE:
            raise  # the server, Redis or the disk: nothing was marked, the mail is read again later
        except Exception as e:  # noqa: BLE001 - a bug with one mail must not block the mailbox: dead-lettered below, not dropped
            await self._unparseable(session, uid, raw, fallback_id, e)
            return
        await self._done(session, uid)

    async def _done(self, session: ImapSession, uid: int) -> None:
        """Mark seen and move the cursor — only ever after the mail was handed on or recorded.
        The cursor is what counts: a server that refuses the flag (a read-only mailbox) does
        not stop the intake."""
        try:
            await session.mark_seen(uid)
        except ImapError as e:
            if session.lost.is_set():
                raise
            log.warning("email.mark_seen_failed", uid=uid, error=str(e)[:200])
        await self.state.save_cursor(self.cfg.mailbox, session.uidvalidity, uid)

    async def _poison(self, session: ImapSession, uid: int, cmid: str, exc: BaseException) -> bool:
        """A mail the server keeps failing to hand over would block every mail behind it: after
        `POISON_AFTER` failed fetches it is dead-lettered (it stays in the mailbox) and skipped."""
        key = f"{self.state.ns}:fetch_failures:{session.uidvalidity}:{uid}"
        n = int(await self.r.incr(key))
        await self.r.expire(key, 24 * 3600)
        if n < POISON_AFTER:
            return False
        await self._dead_letter(uid, cmid, f"fetch failed {n} times: {str(exc)[:300]}")
        await self._done(session, uid)
        return True

    async def _channel_message_id(self, mail: ParsedMail, fallback: str, who: str) -> str:
        """The dedupe id: the Message-ID — unless another sender's mail already carries it. A
        Message-ID is written by the sender, so anyone can reuse a customer's; such a mail gets
        an id of its own (Message-ID + a hash of its sender: the same on every re-read) instead
        of being dropped as a duplicate or taking the customer's place."""
        mid = mail.message_id
        if not mid:
            return fallback
        cmid = mid if len(mid) <= 400 else "sha256:" + hashlib.sha256(mid.encode("utf-8", "replace")).hexdigest()
        conv = await self.state.conversation_of([mid])
        if conv and not await self._owned_by(conv, who):
            return f"{cmid}#from:{hashlib.sha256(who.encode()).hexdigest()[:16]}"
        return cmid

    async def _conversation(self, mail: ParsedMail, cmid: str, sender: str, verified: bool) -> tuple[str, str]:
        """(conversation id, how it was found) — see "Threads" in the module docstring. Every
        path checks that the conversation belongs to this sender; a sender the receiving server
        did not authenticate never joins one (only the same mail read again finds its own)."""
        if mail.message_id and (conv := await self.state.conversation_of([mail.message_id])):
            if await self._owned_by(conv, sender):
                return conv, "same_mail"
            log.warning("email.message_id_reused", conversation=conv)
        if not verified:
            return new_conversation_id(cmid), "new"
        conv = await self.state.conversation_of(thread_candidates(mail))
        if conv:
            if await self._owned_by(conv, sender):
                return conv, "thread"
            log.warning("email.thread_owner_mismatch", conversation=conv)
        number = ticket_token(mail.subject)
        if number and (conv := await self.state.conversation_of_ticket(number)):
            if await self._owned_by(conv, sender):
                return conv, "ticket_token"
            log.warning("email.ticket_owner_mismatch", ticket=number)
        return new_conversation_id(cmid), "new"

    async def _owned_by(self, conv: str, sender: str) -> bool:
        return (await self.state.conv_info(conv)).get("owner") == sender

    async def _accept(self, mail: ParsedMail, cmid: str, check: SenderCheck, *, too_big: bool, size: int) -> None:
        assert self._sink is not None, "channel not started"
        sender = identity(check)
        address = check.reply_address or ""
        conv, how = await self._conversation(mail, cmid, sender, check.verified)
        text = bot_text(mail, is_reply=how != "new" or looks_like_reply(mail))
        notes: list[str] = []
        if too_big:
            notes.append(f"The mail was {_mib(size)}, over the {_mib(self.cfg.max_message_bytes)} limit: only its headers were read.")
        if mail.problems:
            notes.append("Parts of this mail could not be read: " + ", ".join(mail.problems))
        if mail.unreadable:
            notes.append(f"The mail is {mail.unreadable}: neither the bot nor this copy could read it.")
        stored = await self._store(mail, cmid, notes)
        lang = bot_language(mail, is_reply=how != "new" or looks_like_reply(mail))
        label = mail.from_name if mail.from_name and not check.relay else address
        meta = {
            **_reply_to(mail, address),
            "reply_ticket_ack": "1",
            "ticket_on_clarify": "1",
            "user_label": (label if check.verified else f"{label} (sender not verified)")[:200],
            "sender_verified": "1" if check.verified else "0",
            "sender_check": check.why[:300],
        }
        if check.relay and mail.from_addr:
            meta["sender_relay"] = mail.from_addr
        refs = references_for(" ".join(f"<{r}>" for r in mail.references), meta.get("reply_message_id", ""))
        if refs:
            meta["reply_references"] = refs
        if stored.full_text_ref:
            meta["full_text_ref"] = stored.full_text_ref
        if stored.rejected:
            meta["attachments_rejected"] = "; ".join(stored.rejected)[:1000]
        if stored.secrets:
            meta["redacted"] = ",".join(stored.secrets)  # intake adds what it finds in the text
        msg = Message(
            channel=self.name,
            channel_message_id=cmid,
            conversation_id=conv,
            user_id=sender,
            # Redacted before it is cut: a key cut in half would no longer look like one.
            text=(await redact_async(text)).text[:NLU_TEXT_CHARS],
            lang=lang,
            attachments=stored.attachments,
            meta=meta,
        )
        if how == "new":
            await self.state.set_conv(conv, owner=sender, subject=meta["reply_subject"])
        if mail.message_id:
            await self.state.remember_msgid(mail.message_id, conv, keep=True)  # never re-pointed by a reuse
        entry = await self._sink(msg)
        self.taken_in += entry is not None
        log.info("email.accepted", conversation=conv, thread=how, duplicate=entry is None, lang=lang,
                 sender_verified=check.verified, sender_check=check.method,
                 attachments=len(stored.attachments), rejected=len(stored.rejected))

    async def _tell_unreadable(self, mail: ParsedMail, cmid: str, check: SenderCheck, *, size: int) -> None:
        """An encrypted mail (or one sent in parts) has nothing the bot can read: the sender is
        told so and asked to write again, instead of being answered on the subject alone. The
        notice's id derives from the mail's, so one sent again after a crash is the same mail
        (same Message-ID). When it cannot be sent, the mail goes on as an empty one with the
        reason noted — a ticket, so a person tells them — rather than be dropped."""
        address = check.reply_address or ""
        lang = bot_language(mail, is_reply=looks_like_reply(mail))
        meta = _reply_to(mail, address)
        ob = Outbound(
            id="unreadable-" + hashlib.sha256(cmid.encode("utf-8", "replace")).hexdigest()[:32],
            channel=self.name, conversation_id=new_conversation_id(cmid), user_id=identity(check),
            text=unreadable_notice(mail.unreadable, lang), lang=lang, kind="answer", meta=meta,
        )
        try:
            await self._deliver(ob, address)
        except (TransientChannelError, PermanentChannelError) as e:
            log.warning("email.unreadable_notice_failed", error=str(e)[:200])
            await self._accept(mail, cmid, check, too_big=False, size=size)
            return
        await self.state.record_once(self.state.k_suppressed, cmid, {
            "at": _now_iso(), "from": mail.from_addr, "reason": f"unreadable: {mail.unreadable}",
            "message_id": mail.message_id,
        })
        log.info("email.unreadable_told", reason=mail.unreadable, lang=lang)

    async def _store(self, mail: ParsedMail, cmid: str, notes: list[str]) -> Stored:
        """Attachments within the limits, and the full mail as text (redacted), under a folder
        derived from the Message-ID: a mail read again after a crash overwrites the same files."""
        key = hashlib.sha256(cmid.encode("utf-8", "replace")).hexdigest()[:24]
        rel_dir = Path(key[:2]) / key
        stored: list[Attachment] = []
        rejected: list[str] = []
        secrets: list[str] = []
        for i, d in enumerate(attachment_decisions(self.cfg, mail)):
            a, fname = d.attachment, d.filename
            if not d.stored:
                rejected.append(f"{fname}: {d.reason}")
            else:
                data, content_type = a.data, a.content_type
                if is_text(content_type, fname):
                    # A text file is text too: secrets in it are redacted before it is written
                    # (stored as UTF-8). Images and PDFs are kept as sent — no OCR here.
                    data, kinds = await asyncio.to_thread(redact_text_file, data, _decode_any)
                    if kinds:
                        notes.append(f"Secrets removed from the attachment {fname}: {', '.join(kinds)}")
                        secrets.extend(kinds)
                    content_type = f"{content_type.split(';')[0].strip()}; charset=utf-8"
                rel = rel_dir / f"{i + 1:02d}-{fname}"
                await asyncio.to_thread(_write_once, self.attachments_dir / rel, data)
                stored.append(Attachment(name=a.name[:200], content_type=content_type, size=len(data), ref=rel.as_posix()))
        if rejected:
            notes.append("Attachments not stored: " + "; ".join(rejected))
            log.info("email.attachments_rejected", count=len(rejected))
        full = await asyncio.to_thread(self._full_text, mail, notes)  # up to 500,000 characters to redact
        rel = rel_dir / "00-message.txt"
        data = full.encode("utf-8")
        await asyncio.to_thread(_write_once, self.attachments_dir / rel, data)
        body = Attachment(name="message.txt", content_type="text/plain; charset=utf-8", size=len(data), ref=rel.as_posix())
        return Stored((body, *stored), tuple(rejected), body.ref, tuple(dict.fromkeys(secrets)))

    @staticmethod
    def _full_text(mail: ParsedMail, notes: list[str]) -> str:
        head = [
            f"From: {mail.header('from')}",
            f"To: {mail.header('to')}",
            f"Date: {mail.header('date')}",
            f"Subject: {mail.subject}",
        ]
        if mail.header("cc"):
            head.insert(2, f"Cc: {mail.header('cc')}")
        body = mail.body if len(mail.body) <= FULL_TEXT_CHARS else mail.body[:FULL_TEXT_CHARS] + "\n[…]"
        text = "\n".join(head) + "\n\n" + body + "\n"
        if notes:
            text += "\n---\n" + "\n".join(notes) + "\n"
        return redact(text).text  # secrets are never stored in clear, not even on disk

    async def _record_suppressed(self, mail: ParsedMail, cmid: str, verdict: Verdict) -> None:
        log.info("email.loop_suppressed", reason=verdict.reason, sender=mail.from_addr, direction="in")
        await self.state.record_once(self.state.k_suppressed, cmid, {
            "at": _now_iso(), "from": mail.from_addr, "reason": verdict.reason, "message_id": mail.message_id,
        })

    async def _record_bounce(self, mail: ParsedMail, cmid: str) -> None:
        b = mail.bounce
        original = b.original_message_id if b else None
        if original is None and (m := MSGID_IN_TEXT.search(mail.body)):
            original = m.group(1)  # a non-standard bounce quoting the original headers as text
        if original and not original.lower().endswith("@" + self.cfg.domain):
            original = None  # only a mail *we* sent can bounce back to us: never tie a forged one to a thread
        conv = await self.state.conversation_of([original]) if original else None
        ticket = (await self.state.conv_info(conv)).get("ticket") if conv else None
        recipients: list[str] = list(b.recipients) if b else []
        entry = {
            "at": _now_iso(),
            "recipients": recipients,
            "status": b.status if b else "",
            "action": b.action if b else "",
            "diagnostic": b.diagnostic if b else "",
            "original_message_id": original,
            "conversation": conv,
            "ticket": ticket,
            "from": mail.from_addr,
        }
        if await self.state.record_once(self.state.k_bounces, cmid, entry) and conv:
            await self.state.set_conv(conv, last_bounce=f"{entry['at']} {entry['status']} {','.join(recipients)}")
        log.warning("email.bounced", conversation=conv, ticket=ticket, status=entry["status"],
                    recipients=entry["recipients"])

    async def _dead_letter(self, uid: int, cmid: str, error: str) -> None:
        log.error("email.dead_lettered", uid=uid, channel_message_id=cmid, error=error)
        await self.state.dead_letter({"at": _now_iso(), "mailbox": self.cfg.mailbox, "uid": str(uid),
                                      "channel_message_id": cmid, "error": error[:500]})

    async def _unparseable(self, session: ImapSession, uid: int, raw: bytes, cmid: str, exc: BaseException) -> None:
        """Parsing or processing failed outright (a bug, or mail beyond repair). If a sender can
        still be read, the user still gets a ticket (an empty text becomes a ticket on email)
        whose note says why; the mail is dead-lettered either way, with the error, and stays in
        the mailbox."""
        error = f"could not process: {type(exc).__name__}: {str(exc)[:300]}"
        await self._dead_letter(uid, cmid, error)
        m = re.search(rb"^From:[ \t]*(.+)$", raw[:65536], re.M | re.I)
        name, addr = first_address(m.group(1).decode("utf-8", "replace")) if m else ("", None)
        if addr and addr != self.cfg.address:
            assert self._sink is not None, "channel not started"
            conv = new_conversation_id(cmid)
            key = hashlib.sha256(cmid.encode()).hexdigest()[:24]
            rel = Path(key[:2]) / key / "00-message.txt"
            note = (f"This mail could not be processed automatically ({error}).\n"
                    f"The original is still in the mailbox {self.cfg.mailbox}, UID {uid}.\n").encode()
            await asyncio.to_thread(write_atomic, self.attachments_dir / rel, note)
            who = f"unverified:{addr}"  # nothing of it could be read, its sender's authentication neither
            await self.state.set_conv(conv, owner=who, subject="")
            await self._sink(Message(
                channel=self.name, channel_message_id=cmid, conversation_id=conv, user_id=who, text="",
                attachments=(Attachment(name="message.txt", content_type="text/plain; charset=utf-8", size=len(note),
                                        ref=rel.as_posix()),),
                meta={"reply_to_addr": addr, "reply_ticket_ack": "1", "ticket_on_clarify": "1",
                      "user_label": f"{name or addr} (sender not verified)"[:200], "email_problems": error[:500],
                      "sender_verified": "0", "sender_check": "the mail could not be processed"},
            ))
        await self._done(session, uid)

    # -- outbound ---------------------------------------------------------------------------------
    async def fetch_attachment(self, ref: str) -> bytes:
        """A stored attachment (`ref` is relative to attachments_dir), for the agent console.
        Only files inside attachments_dir: FileNotFoundError for anything else."""
        return await asyncio.to_thread(read_inside, self.attachments_dir, ref)

    async def send(self, ob: Outbound) -> None:
        to = (ob.meta.get("reply_to_addr") or (ob.user_id or "").removeprefix("unverified:")).strip().lower()
        if not ADDRESS_RE.match(to):
            raise PermanentChannelError(f"no email address to reply to in conversation {ob.conversation_id}")
        try:
            if ob.kind == "handoff" and ob.meta.get("reply_ticket_ack") == "1":
                due = time.time() + self.cfg.handoff_ack_wait_s
                await self.state.defer(ob.id, ob.conversation_id, ob.to_json(), due)
                log.info("email.handoff_deferred", conversation=ob.conversation_id, wait_s=self.cfg.handoff_ack_wait_s)
                return
            if ob.meta.get("ticket_ack") == "1":
                dropped = await self.state.cancel_deferred(ob.conversation_id)
                if dropped:
                    log.info("email.handoff_replaced_by_ack", conversation=ob.conversation_id, ticket=ob.meta.get("ticket"))
            await self._deliver(ob, to)
        except REDIS_ERRORS as e:
            raise TransientChannelError(f"redis unavailable: {e}") from None

    def _automatic(self, ob: Outbound) -> str | None:
        if ob.kind == "agent":
            return None
        if ob.kind == "system" and ob.meta.get("ticket_ack") != "1":
            return "auto-generated"  # a notice (resolved, handed back), not a response to a mail
        return "auto-replied"

    async def _deliver(self, ob: Outbound, to: str) -> None:
        automatic = self._automatic(ob)
        if automatic == "auto-replied" and not await self.state.autoreply_allowed(
            to, ob.id, self.cfg.autoreply_window_s, self.cfg.autoreply_max
        ):
            log.warning("email.loop_suppressed", reason="autoreply_rate", direction="out",
                        conversation=ob.conversation_id, kind=ob.kind)
            return
        info = await self.state.conv_info(ob.conversation_id)
        ticket = ob.meta.get("ticket") or info.get("ticket") or None
        subject = reply_subject(ob.meta.get("reply_subject") or info.get("subject", ""), ticket, ob.lang)
        msgid = message_id_for(ob.id, self.cfg.domain)
        in_reply_to = ob.meta.get("reply_message_id") or None
        refs = references_for(ob.meta.get("reply_references", ""), in_reply_to or "")
        # Remember our id before sending: the user's reply may come back before we return.
        await self.state.remember_msgid(msgid, ob.conversation_id)
        if ob.meta.get("ticket"):
            await self.state.remember_ticket(ob.meta["ticket"], ob.conversation_id)
        mail = compose(
            ob, from_addr=self.cfg.address, from_name=self.cfg.from_name, to_addr=to, subject=subject,
            message_id=msgid, in_reply_to=in_reply_to, references=refs, automatic=automatic,  # type: ignore[arg-type]
        )
        await send_mail(
            mail, sender=self.cfg.address, recipient=to, host=self.cfg.smtp_host, port=self.cfg.effective_smtp_port,
            security=self.cfg.smtp_security, login=self.cfg.smtp_login, timeout_s=self.cfg.smtp_timeout_s,
            tls_context=self._tls_context(),
        )
        log.info("email.sent", conversation=ob.conversation_id, kind=ob.kind, ticket=ticket, automatic=bool(automatic))

    # -- deferred handoff replies -----------------------------------------------------------------
    async def _deferred_forever(self) -> None:
        every = min(5.0, max(0.2, self.cfg.handoff_ack_wait_s / 4))
        while not self._stop.is_set():
            try:
                await self.flush_deferred()
            except REDIS_ERRORS as e:
                log.warning("email.deferred_unavailable", error=str(e)[:200])
            except Exception:  # noqa: BLE001 - keep the timer alive; claimed replies come back when their lease ends
                log.exception("email.deferred_failed_unexpectedly")
            await self._sleep(every)

    async def flush_deferred(self, now: float | None = None) -> int:
        """Mail the handoff replies whose acknowledgement never came. Returns how many were sent."""
        now = time.time() if now is None else now
        sent = 0
        for ob_id, payload in await self.state.due_deferred(now, lease_s=120):
            try:
                ob = Outbound.from_json(payload)
            except ValueError as e:
                log.error("email.deferred_malformed", outbound=ob_id, error=str(e)[:200])
                await self.state.finish_deferred(ob_id, "")
                continue
            to = (ob.meta.get("reply_to_addr") or ob.user_id.removeprefix("unverified:")).strip().lower()
            try:
                await self._deliver(ob, to)
            except TransientChannelError as e:
                log.warning("email.deferred_retry", conversation=ob.conversation_id, error=str(e)[:200])
                await self.state.retry_deferred_at(ob_id, now + 30)
                continue
            except PermanentChannelError as e:
                log.error("email.deferred_failed", conversation=ob.conversation_id, error=str(e)[:200])
            await self.state.finish_deferred(ob_id, ob.conversation_id)
            sent += 1
        return sent
