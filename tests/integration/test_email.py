"""The email channel end to end on real servers: a private Dovecot (IMAP), an aiosmtpd capture
server (SMTP), the real Redis, the real router with a real Rasa, and tickets on SQLite.

Each test is something a user (or an ops person) notices: one acknowledgement with a ticket
number, answers in the same thread, replies that land on the same ticket, no replies to robots,
nothing lost or doubled when a process or a server goes down.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
import trustme

from app.runtime import answers
from bot.channel import OutboundSender
from bot.config import Settings
from bot.intake import make_sink
from bot.models import Message, Outbound
from bot.queue import Queue
from bot.router import Brain, RouterWorker
from channels.email.adapter import EmailChannel
from channels.email.config import EmailChannelSettings
from handoff.db import make_engine, sessionmaker, upgrade
from handoff.service import TicketService
from handoff.worker import consume_handoffs
from intents.client import NLUClient
from tests.conftest import make_settings
from tests.integration.email_peers import PASSWORD, USER, Dovecot, SmtpServer, password_auth

pytestmark = [pytest.mark.redis]

SUPPORT = USER  # the support address is the mailbox's login here
ALICE = "alice@example.org"
MX = "mx.example.test"  # the receiving server these tests play: it stamps Authentication-Results


# -- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    s = SmtpServer()
    await s.start()
    yield s
    await s.stop()


def email_section(d: Dovecot, smtp_port: int, tmp: Path, **kw: Any) -> dict[str, Any]:
    return {
        "type": "email", "address": SUPPORT, "from_name": "Exchange Support",
        "imap_host": "127.0.0.1", "imap_port": d.port, "imap_security": "plain",
        "username": USER, "password": PASSWORD,
        "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_security": "none", "smtp_auth": False,
        "attachments_dir": str(tmp / "attachments"), "max_attachment_bytes": 50_000,
        "reconnect_max_s": 0.5, "poll_interval_s": 0.3, "idle_renew_s": 30, "imap_timeout_s": 3,
        "trusted_authserv_id": MX,
        **kw,
    }


async def wait_until(cond: Callable[[], Awaitable[bool]], limit_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Rig:
    """The email channel wired like `run_web` does it, plus burst-mode router / ticket / sender."""

    settings: Settings
    r: aioredis.Redis
    dovecot: Dovecot
    smtp: SmtpServer
    svc: TicketService
    channel: EmailChannel
    extra: list[EmailChannel] = field(default_factory=list)

    @property
    def cfg(self) -> EmailChannelSettings:
        c = self.settings.channel("email")
        assert isinstance(c, EmailChannelSettings)
        return c

    def new_channel(self) -> EmailChannel:
        ch = EmailChannel.from_config(self.settings, self.cfg, self.r)
        self.extra.append(ch)
        return ch

    def sink(self) -> Callable[[Message], Awaitable[str | None]]:
        return make_sink(Queue(self.r, self.settings.queue))

    async def start(self) -> None:
        await self.channel.start(self.sink())

    async def inbound(self) -> list[Message]:
        return [Message.from_json(f["m"]) for _, f in await self.r.xrange("inbound")]

    async def wait_inbound(self, n: int, limit_s: float = 20.0) -> list[Message]:
        async def enough() -> bool:
            return len(await self.r.xrange("inbound")) >= n

        await wait_until(enough, limit_s, f"{n} inbound message(s)")
        return await self.inbound()

    async def wait_seen(self, n: int, limit_s: float = 20.0) -> None:
        async def seen() -> bool:
            f = self.dovecot.flags()
            return len(f) >= n and all("S" in x for x in f)

        await wait_until(seen, limit_s, f"{n} mail(s) marked seen")

    async def pump(self) -> None:
        """Router → tickets → sender, each until its stream is drained (arq-style burst)."""
        stop = asyncio.Event()
        async with NLUClient(self.settings.nlu.urls, timeout_s=5) as nlu:
            await nlu.refresh_versions()
            w = RouterWorker(self.settings, self.r, Brain(self.settings, nlu, answers(self.settings), self.svc))
            await asyncio.wait_for(w.run(burst=True), 60)
        await asyncio.wait_for(consume_handoffs(self.svc, self.r, stop, burst=True, claim_idle_ms=500), 30)
        await asyncio.wait_for(OutboundSender(self.r, self.channel, claim_idle_ms=500).run(stop, burst=True), 30)

    async def outbound(self) -> list[Outbound]:
        return [Outbound.from_json(f["d"]) for _, f in await self.r.xrange("outbound:email")]


async def _rig(tmp: Path, r: aioredis.Redis, d: Dovecot, s: SmtpServer, nlu_url: str, **email_kw: Any
               ) -> AsyncIterator[Rig]:
    settings = make_settings(
        nlu={"urls": [nlu_url]},
        database={"url": f"sqlite+aiosqlite:///{tmp / 'tickets.db'}"},
        channels=[email_section(d, s.port, tmp, **email_kw)],
    )
    engine = make_engine(settings.database.url)
    await upgrade(engine)
    svc = TicketService(settings, sessionmaker(engine), r)
    cfg = settings.channel("email")
    rig = Rig(settings, r, d, s, svc, EmailChannel.from_config(settings, cfg, r))  # type: ignore[arg-type]
    try:
        yield rig
    finally:
        for ch in (rig.channel, *rig.extra):
            await ch.stop(grace_s=1)
        await engine.dispose()


@pytest.fixture
async def rig(tmp_path: Path, aredis: aioredis.Redis, dovecot: Dovecot, smtp: SmtpServer, rasa_url: str
              ) -> AsyncIterator[Rig]:
    async for x in _rig(tmp_path, aredis, dovecot, smtp, rasa_url):
        yield x


@pytest.fixture
async def rig_no_nlu(tmp_path: Path, aredis: aioredis.Redis, dovecot: Dovecot, smtp: SmtpServer
                     ) -> AsyncIterator[Rig]:
    """For tests of intake and delivery that never reach the router."""
    async for x in _rig(tmp_path, aredis, dovecot, smtp, "http://127.0.0.1:1"):
        yield x


def dmarc_pass(sender: str) -> str:
    domain = sender.rsplit("@", 1)[1]
    return f"{MX}; spf=pass smtp.mailfrom={sender}; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"


def mail(subject: str, body: str, *, sender: str = ALICE, name: str = "Alice Chen", msgid: str | None = None,
         in_reply_to: str | None = None, references: str | None = None, auth: str | None = "",
         from_header: str | None = None, **headers: str) -> tuple[bytes, str]:
    """A mail as it lands in the mailbox: by default with the receiving server's verdict that the
    sender's domain passed DMARC (`auth=None`: no verdict; any other text: that verdict)."""
    m = EmailMessage()
    if auth is not None:
        m["Authentication-Results"] = auth or dmarc_pass(sender)
    m["From"] = from_header or f"{name} <{sender}>"
    m["To"] = f"Exchange Support <{SUPPORT}>"
    m["Subject"] = subject
    m["Date"] = formatdate(localtime=True)
    m["Message-ID"] = msgid or make_msgid(domain=sender.split("@")[1])
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
    if references:
        m["References"] = references
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    return m.as_bytes(), str(m["Message-ID"])


def text_of(m: EmailMessage) -> str:
    part = m.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


# -- a new mail: acknowledgement + ticket, or a direct answer ---------------------------------------


@pytest.mark.rasa
async def test_a_new_mail_gets_one_acknowledgement_with_its_ticket_number_and_a_ticket(rig: Rig) -> None:
    await rig.start()
    raw, msgid = mail("Need a person", "Hello,\nI want to talk to a real person please.\n\n-- \nAlice Chen\nACME Ltd")
    rig.dovecot.deliver(raw)
    [msg] = await rig.wait_inbound(1)
    assert msg.text == "Need a person\n\nHello,\nI want to talk to a real person please."  # signature cut
    assert msg.user_id == ALICE and msg.meta["user_label"] == "Alice Chen"
    await rig.wait_seen(1)
    await rig.pump()

    [ack] = rig.smtp.rec.mails
    assert str(ack["Subject"]) == "Re: Need a person [SB-000001]"
    assert ack["In-Reply-To"] == msgid and msgid in str(ack["References"])
    assert ack["Auto-Submitted"] == "auto-replied" and ack["X-Switchboard-Loop"] == SUPPORT
    assert ack.get_content_type() == "multipart/alternative"
    body = text_of(ack)
    assert "SB-000001" in body and "within 4 hours" in body  # the SLA of a normal-priority ticket
    html = ack.get_body(preferencelist=("html",))
    assert html is not None and "SB-000001" in html.get_content()
    assert rig.smtp.rec.envelopes[0].rcpt_tos == [ALICE]

    detail = await rig.svc.detail("SB-000001")
    t = detail["ticket"]
    assert (t["channel"], t["topic"], t["status"]) == ("email", "human", "new")
    [user_msg] = [m for m in detail["messages"] if m["author_type"] == "user"]
    assert "real person" in user_msg["text"] and "ACME" not in user_msg["text"]
    # The full mail (with its signature) is kept for the ticket as the first attachment.
    full = user_msg["attachments"][0]
    assert full["name"] == "message.txt"
    assert "ACME Ltd" in (Path(rig.cfg.attachments_dir) / full["ref"]).read_text()


@pytest.mark.rasa
async def test_a_theft_report_by_mail_gets_only_the_handoff_and_the_ticket_number_back(rig: Rig) -> None:
    await rig.start()
    raw, _ = mail("URGENT hacked",
                  "My account was hacked and all my BTC is gone!\nMy password: Hunter2-Secret!\nMy phone is 13800138000")
    rig.dovecot.deliver(raw)
    await rig.wait_inbound(1)
    await rig.pump()
    [ack] = rig.smtp.rec.mails
    body = text_of(ack)
    assert "SB-000001" in body and "[SB-000001]" in str(ack["Subject"])
    # Nothing of the user's mail comes back: not their words, not their secret, not their phone.
    for leaked in ("Hunter2-Secret", "13800138000", "all my BTC is gone"):
        assert leaked not in ack.as_string()
    ticket = (await rig.svc.detail("SB-000001"))
    assert ticket["ticket"]["priority"] == "urgent"
    stored = [m for m in ticket["messages"] if m["author_type"] == "user"][0]
    assert "Hunter2-Secret" not in stored["text"]
    assert "Hunter2-Secret" not in (Path(rig.cfg.attachments_dir) / stored["attachments"][0]["ref"]).read_text()


@pytest.mark.rasa
async def test_a_confident_faq_question_gets_a_direct_answer_and_no_ticket(rig: Rig) -> None:
    await rig.start()
    raw, msgid = mail("Enable 2FA", "How do I enable 2FA?\n\n-- \nAlice")
    rig.dovecot.deliver(raw)
    [msg] = await rig.wait_inbound(1)
    assert msg.text == "How do I enable 2FA?"  # the subject is already in the question
    await rig.pump()
    [answer] = rig.smtp.rec.mails
    assert str(answer["Subject"]) == "Re: Enable 2FA" and answer["In-Reply-To"] == msgid
    assert answer["Auto-Submitted"] == "auto-replied"
    assert "authenticator" in text_of(answer).lower() or "2FA" in text_of(answer)
    assert await rig.svc.list("all", agent=None) == []  # type: ignore[arg-type]


# -- threads -----------------------------------------------------------------------------------------


@pytest.mark.rasa
async def test_replies_in_the_thread_land_on_the_same_ticket_and_agent_replies_stay_in_the_thread(rig: Rig) -> None:
    await rig.start()
    raw, first_id = mail("Account locked", "I want to talk to a real person")
    rig.dovecot.deliver(raw)
    await rig.wait_inbound(1)
    await rig.pump()
    [ack] = rig.smtp.rec.mails
    ack_id = str(ack["Message-ID"])

    # The user answers the acknowledgement from their mail client: quoted text below.
    reply, reply_id = mail(
        "Re: Account locked [SB-000001]",
        "It happened after I changed phones.\n\nOn Mon, 1 Dec 2026 at 10:00, Exchange Support <support@example.test> wrote:\n"
        "> Sure — a member of our support team will take over this conversation.",
        in_reply_to=ack_id, references=f"{first_id} {ack_id}",
    )
    rig.dovecot.deliver(reply)
    msgs = await rig.wait_inbound(2)
    assert msgs[1].conversation_id == msgs[0].conversation_id
    assert msgs[1].text == "It happened after I changed phones."
    await rig.pump()
    assert len(rig.smtp.rec.mails) == 1  # no second acknowledgement
    tickets = await rig.svc.list("all", agent=None)  # type: ignore[arg-type]
    assert [t["number"] for t in tickets] == ["SB-000001"]
    texts = [m["text"] for m in (await rig.svc.detail("SB-000001"))["messages"] if m["author_type"] == "user"]
    assert texts[-1] == "It happened after I changed phones."

    agent = await rig.svc.add_agent("lin@example.com", "Lin", "correct-horse-battery")
    await rig.svc.reply("SB-000001", agent, "Your account is unlocked now.")
    await rig.pump()
    agent_mail = rig.smtp.rec.mails[-1]
    assert str(agent_mail["Subject"]) == "Re: Account locked [SB-000001]"  # token once, not twice
    assert agent_mail["In-Reply-To"] == reply_id
    assert agent_mail["Auto-Submitted"] is None  # a person wrote it
    assert "Your account is unlocked now." in text_of(agent_mail) and "— Lin" in text_of(agent_mail)


@pytest.mark.rasa
async def test_a_mangled_reply_with_only_the_ticket_token_joins_the_ticket_but_not_from_a_stranger(rig: Rig) -> None:
    await rig.start()
    raw, _ = mail("Withdrawal", "I want to talk to a real person")
    rig.dovecot.deliver(raw)
    await rig.wait_inbound(1)
    await rig.pump()
    # Forwarded from another client: no In-Reply-To/References, prefixes piled up, token kept.
    fwd, _ = mail("Fwd: RE: Re: Withdrawal [SB-000001]", "Any news on this? It has been two days.")
    rig.dovecot.deliver(fwd)
    # Someone else copies the token into their subject: they must not join Alice's ticket.
    other, _ = mail("Re: Withdrawal [SB-000001]", "I want to talk to a real person", sender="mallory@example.net",
                    name="Mallory")
    rig.dovecot.deliver(other)
    msgs = await rig.wait_inbound(3)
    assert msgs[1].conversation_id == msgs[0].conversation_id
    assert msgs[2].conversation_id != msgs[0].conversation_id
    await rig.pump()
    numbers = sorted(t["number"] for t in await rig.svc.list("all", agent=None))  # type: ignore[arg-type]
    assert numbers == ["SB-000001", "SB-000002"]
    detail = await rig.svc.detail("SB-000001")
    assert "Any news on this? It has been two days." in [m["text"] for m in detail["messages"]]
    acks = [(m["To"], str(m["Subject"])) for m in rig.smtp.rec.mails]
    assert acks == [(ALICE, "Re: Withdrawal [SB-000001]"), ("mallory@example.net", "Re: Withdrawal [SB-000002]")]


# -- charsets and attachments -----------------------------------------------------------------------


def gbk_mail(png: bytes, big: bytes) -> bytes:
    def b64(s: str) -> bytes:
        return base64.b64encode(s.encode("gbk"))

    body = "您好，我的USDT充值一直没到账怎么办？\n\n发自我的iPhone\n"
    return (
        f"Authentication-Results: {dmarc_pass('zhang.wei@example.cn')}\r\n".encode() +
        b"From: =?GB2312?B?" + b64("张伟") + b"?= <zhang.wei@example.cn>\r\n"
        b"To: support@example.test\r\n"
        b"Subject: =?GBK?B?" + b64("充值未到账") + b"?=\r\n"
        b"Date: Tue, 01 Dec 2026 10:00:00 +0800\r\nMessage-ID: <gbk-1@example.cn>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\n"
        b"--BOUNDARY\r\nContent-Type: text/plain; charset=\"gb2312\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(body.encode("gbk")) +
        b"\r\n--BOUNDARY\r\nContent-Type: image/png; name=\"=?GBK?B?" + b64("截图.png") + b"?=\"\r\n"
        b"Content-Disposition: attachment; filename=\"=?GBK?B?" + b64("截图.png") + b"?=\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(png) +
        b"\r\n--BOUNDARY\r\nContent-Type: application/x-msdownload; name=\"setup.exe\"\r\n"
        b"Content-Disposition: attachment; filename=\"setup.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(b"MZ" + b"\0" * 64) +
        b"\r\n--BOUNDARY\r\nContent-Type: application/pdf; name=\"statement.pdf\"\r\n"
        b"Content-Disposition: attachment; filename=\"statement.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(big) + b"\r\n--BOUNDARY--\r\n"
    )


@pytest.mark.rasa
async def test_a_gbk_mail_with_attachments_is_read_correctly_and_answered_in_chinese(rig: Rig) -> None:
    await rig.start()
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    rig.dovecot.deliver(gbk_mail(png, b"%PDF-1.4\n" + b"x" * 80_000))
    [msg] = await rig.wait_inbound(1)
    assert msg.text == "充值未到账\n\n您好，我的USDT充值一直没到账怎么办？"  # "发自我的iPhone" cut
    assert msg.lang == "zh" and msg.meta["user_label"] == "张伟" and msg.user_id == "zhang.wei@example.cn"
    stored = {a.name: a for a in msg.attachments}
    assert set(stored) == {"message.txt", "截图.png"}
    assert (Path(rig.cfg.attachments_dir) / str(stored["截图.png"].ref)).read_bytes() == png
    assert stored["截图.png"].content_type == "image/png" and stored["截图.png"].size == len(png)
    rejected = msg.meta["attachments_rejected"]
    assert "setup.exe: type application/x-msdownload not accepted" in rejected
    assert "statement.pdf" in rejected and "limit" in rejected
    full = (Path(rig.cfg.attachments_dir) / str(stored["message.txt"].ref)).read_text()
    assert "发自我的iPhone" in full and "setup.exe" in full  # the ticket's copy keeps everything

    await rig.pump()
    [reply] = rig.smtp.rec.mails
    assert str(reply["Subject"]).startswith("Re: 充值未到账")
    assert any("\u4e00" <= c <= "\u9fff" for c in text_of(reply))
    assert reply["Content-Language"] == "zh-CN"


# -- loops, lists and bounces -----------------------------------------------------------------------


@pytest.mark.rasa
async def test_auto_responders_lists_and_our_own_mail_get_no_reply(rig: Rig) -> None:
    await rig.start()
    robots = [
        mail("Out of office", "I am away until Monday.", Auto_Submitted="auto-replied", sender="bob@example.org"),
        mail("Weekly digest", "I want to talk to a real person", List_Id="<crypto.lists.example.org>",
             sender="list@lists.example.org"),
        mail("Newsletter", "How do I enable 2FA?", Precedence="bulk", sender="news@example.com"),
        mail("Automatic reply: x", "Away", X_Auto_Response_Suppress="All", sender="carol@example.org"),
        mail("Re: x", "How do I enable 2FA?", X_Switchboard_Loop=SUPPORT, sender="dave@example.org"),
        mail("Loop", "How do I enable 2FA?", sender=SUPPORT),
    ]
    for raw, _ in robots:
        rig.dovecot.deliver(raw)
    person, _ = mail("2FA", "How do I enable 2FA?")
    rig.dovecot.deliver(person)
    [msg] = await rig.wait_inbound(1)  # only the person is queued
    assert msg.user_id == ALICE
    await rig.wait_seen(len(robots) + 1)
    await rig.pump()
    assert [m["To"] for m in rig.smtp.rec.mails] == [ALICE]
    reasons = sorted(orjson.loads(x)["reason"] for x in await rig.r.lrange(rig.channel.state.k_suppressed, 0, -1))
    assert reasons == sorted(["auto_submitted:auto-replied", "mailing_list", "precedence:bulk",
                              "x_auto_response_suppress", "own_loop_header", "own_address"])


def dsn(original_id: str, recipient: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n"
        f"To: {SUPPORT}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <dsn-1@mx.example.test>\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {SUPPORT}\r\nTo: {recipient}\r\nSubject: Re: help [SB-000007]\r\nMessage-ID: {original_id}\r\n\r\n"
        "--B--\r\n"
    ).encode()


async def test_a_bounce_is_recorded_on_its_conversation_and_never_answered(rig_no_nlu: Rig) -> None:
    rig = rig_no_nlu
    await rig.start()
    ack = Outbound(channel="email", conversation_id="email:conv-7", user_id="gone@example.org", text="Ticket SB-000007",
                   kind="system", meta={"reply_to_addr": "gone@example.org", "reply_subject": "help",
                                        "ticket": "SB-000007", "ticket_ack": "1"})
    await rig.channel.send(ack)
    [sent] = rig.smtp.rec.mails
    rig.dovecot.deliver(dsn(str(sent["Message-ID"]), "gone@example.org"))

    async def recorded() -> bool:
        return await rig.r.llen(rig.channel.state.k_bounces) == 1

    await wait_until(recorded, what="the bounce record")
    [entry] = [orjson.loads(x) for x in await rig.r.lrange(rig.channel.state.k_bounces, 0, -1)]
    assert entry["conversation"] == "email:conv-7" and entry["ticket"] == "SB-000007"
    assert entry["recipients"] == ["gone@example.org"] and entry["status"] == "5.1.1"
    assert "last_bounce" in await rig.channel.state.conv_info("email:conv-7")
    await rig.wait_seen(1)
    assert await rig.inbound() == [] and len(rig.smtp.rec.mails) == 1


async def test_an_encrypted_mail_gets_a_notice_to_write_again_and_is_not_handed_to_the_bot(rig_no_nlu: Rig) -> None:
    # The mailbox has no key: the bot answered the subject alone, and the user never learned why.
    rig = rig_no_nlu
    await rig.start()
    raw, msgid = mail("Withdrawal pending", "x")
    head = raw.split(b"\n\n", 1)[0].replace(b"Content-Type: text/plain; charset=\"utf-8\"", b"Content-Type: text/plain")
    head = b"\n".join(ln for ln in head.split(b"\n") if not ln.lower().startswith((b"content-", b"mime-version")))
    p7m = base64.encodebytes(b"\x30\x82\x01\x00" + b"\x01" * 200)
    rig.dovecot.deliver(head + b"\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data;"
                        b" name=smime.p7m\nContent-Transfer-Encoding: base64\n\n" + p7m)
    await rig.wait_seen(1)

    async def told() -> bool:
        return len(rig.smtp.rec.mails) == 1

    await wait_until(told, what="the notice")
    [notice] = rig.smtp.rec.mails
    assert notice["To"] == ALICE and str(notice["In-Reply-To"]) == msgid
    assert "encrypted (S/MIME)" in text_of(notice) and notice["Auto-Submitted"] == "auto-replied"
    assert await rig.inbound() == []
    [entry] = [orjson.loads(x) for x in await rig.r.lrange(rig.channel.state.k_suppressed, 0, -1)]
    assert entry["reason"] == "unreadable: encrypted with S/MIME"


async def test_automatic_replies_to_one_address_are_rate_limited_but_agent_replies_never(tmp_path: Path,
        aredis: aioredis.Redis, dovecot: Dovecot, smtp: SmtpServer) -> None:
    async for rig in _rig(tmp_path, aredis, dovecot, smtp, "http://127.0.0.1:1", autoreply_max=2):
        meta = {"reply_to_addr": ALICE, "reply_subject": "hi"}
        for i in range(4):
            await rig.channel.send(Outbound(channel="email", conversation_id=f"email:c{i}", user_id=ALICE,
                                            text=f"answer {i}", kind="answer", meta=meta))
        await rig.channel.send(Outbound(channel="email", conversation_id="email:c9", user_id=ALICE, text="from Lin",
                                        kind="agent", author="Lin", meta=meta))
        bodies = [text_of(m).split("\n")[0] for m in rig.smtp.rec.mails]
        assert bodies == ["answer 0", "answer 1", "from Lin"]


async def test_a_handoff_reply_is_replaced_by_the_ack_or_mailed_alone_when_no_ack_follows(rig_no_nlu: Rig) -> None:
    rig = rig_no_nlu
    meta = {"reply_to_addr": ALICE, "reply_subject": "help", "reply_ticket_ack": "1"}

    def ob(conv: str, kind: str, text: str, **extra: str) -> Outbound:
        return Outbound(channel="email", conversation_id=conv, user_id=ALICE, text=text, kind=kind,  # type: ignore[arg-type]
                        meta={**meta, **extra})

    # A new ticket: the handoff reply waits, the acknowledgement replaces it.
    await rig.channel.send(ob("email:new", "handoff", "A person will take over."))
    assert rig.smtp.rec.mails == []
    await rig.channel.send(ob("email:new", "system", "A person will take over.\n\nYour ticket number is SB-000003",
                              ticket="SB-000003", ticket_ack="1"))
    # A reopened ticket is not acknowledged: its handoff reply goes out alone after the wait.
    await rig.channel.send(ob("email:reopened", "handoff", "A person will take over again."))
    assert await rig.channel.flush_deferred(time.time() + 3600) == 1
    assert await rig.channel.flush_deferred(time.time() + 7200) == 0
    assert [text_of(m).strip() for m in rig.smtp.rec.mails] == [
        "A person will take over.\n\nYour ticket number is SB-000003", "A person will take over again."]


# -- nothing lost, nothing doubled -------------------------------------------------------------------


@pytest.mark.rasa
async def test_a_mail_is_taken_in_exactly_once_when_the_process_dies_before_or_after_queueing(rig: Rig) -> None:
    real = rig.sink()
    # 1. Killed after the fetch, before the mail reached the queue.
    reached = asyncio.Event()

    async def dies_before_queue(msg: Message) -> str | None:
        reached.set()
        await asyncio.Event().wait()  # hangs until the process is killed
        return None

    first = rig.new_channel()
    await first.start(dies_before_queue)
    raw, msgid = mail("Help", "I want to talk to a real person")
    rig.dovecot.deliver(raw)
    await asyncio.wait_for(reached.wait(), 20)
    await first.stop(grace_s=0)  # kill
    assert await rig.inbound() == [] and rig.dovecot.flags() == [""]

    # 2. Killed after the mail was queued, before it was marked seen.
    queued = asyncio.Event()

    async def dies_after_queue(msg: Message) -> str | None:
        await real(msg)
        queued.set()
        await asyncio.Event().wait()
        return None

    second = rig.new_channel()
    await second.start(dies_after_queue)
    await asyncio.wait_for(queued.wait(), 20)
    await second.stop(grace_s=0)
    assert len(await rig.inbound()) == 1 and rig.dovecot.flags() == [""]

    # 3. A healthy restart: the mail is marked seen, and it was queued once.
    await rig.start()
    await rig.wait_seen(1)
    await asyncio.sleep(0.5)
    [msg] = await rig.inbound()
    assert msg.channel_message_id == msgid.strip("<>")
    await rig.pump()
    assert len(rig.smtp.rec.mails) == 1 and len(await rig.svc.list("all", agent=None)) == 1  # type: ignore[arg-type]


async def test_intake_resumes_after_the_imap_server_restarts(rig_no_nlu: Rig) -> None:
    rig = rig_no_nlu
    await rig.start()
    rig.dovecot.deliver(mail("one", "first mail")[0])
    await rig.wait_inbound(1)
    await asyncio.to_thread(rig.dovecot.stop)  # the channel's loop keeps running meanwhile
    await wait_until(lambda: _false_when(rig.channel.connected), what="the channel to notice the outage")
    rig.dovecot.deliver(mail("two", "written while the server was down")[0])
    await asyncio.sleep(1.0)  # a few failed reconnects
    rig.dovecot.start()
    msgs = await rig.wait_inbound(2, limit_s=30)
    rig.dovecot.deliver(mail("three", "after the restart")[0])
    msgs = await rig.wait_inbound(3, limit_s=30)
    assert [m.text.split("\n")[0] for m in msgs] == ["one", "two", "three"]
    await rig.wait_seen(3)


async def _false_when(ev: asyncio.Event) -> bool:
    return not ev.is_set()


async def test_a_reply_is_retried_while_smtp_is_down_and_delivered_once(rig_no_nlu: Rig) -> None:
    rig = rig_no_nlu
    await rig.smtp.stop()  # the relay is down
    ob = Outbound(channel="email", conversation_id="email:x", user_id=ALICE, text="Here is your answer.",
                  kind="answer", meta={"reply_to_addr": ALICE, "reply_subject": "question"})
    await rig.r.xadd("outbound:email", {"d": ob.to_json()})
    stop = asyncio.Event()
    sender = asyncio.create_task(OutboundSender(rig.r, rig.channel, claim_idle_ms=500).run(stop, burst=True))
    await asyncio.sleep(1.5)  # several refused connections
    # An outage is waited out: the reply stays pending, is never counted against, never dead-lettered.
    assert (await rig.r.xpending("outbound:email", "senders"))["pending"] == 1
    assert await rig.r.xlen("outbound:email:dead") == 0
    await rig.smtp.start()
    await asyncio.wait_for(sender, 30)
    assert [text_of(m).strip() for m in rig.smtp.rec.mails] == ["Here is your answer."]


async def test_mail_is_polled_when_the_server_offers_no_idle(tmp_path: Path, aredis: aioredis.Redis, smtp: SmtpServer
                                                             ) -> None:
    d = Dovecot(idle=False)
    d.start()
    try:
        async for rig in _rig(tmp_path, aredis, d, smtp, "http://127.0.0.1:1"):
            await rig.start()
            d.deliver(mail("poll", "polled mail")[0])
            [msg] = await rig.wait_inbound(1)
            assert msg.text == "poll\n\npolled mail"
            assert rig.channel.mode == "poll"
    finally:
        d.cleanup()


async def test_imap_starttls_and_smtp_starttls_with_login(tmp_path: Path, aredis: aioredis.Redis) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    pem, key, ca_pem = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(pem))
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_pem))
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(sctx)
    d = Dovecot(tls=(pem, key))
    d.start()
    s = SmtpServer(tls_context=sctx, require_starttls=True, authenticator=password_auth("bot", "smtp-pw"),
                   auth_require_tls=True)
    await s.start()
    try:
        async for rig in _rig(tmp_path, aredis, d, s, "http://127.0.0.1:1", imap_security="starttls",
                              smtp_security="starttls", smtp_auth=True, smtp_username="bot", smtp_password="smtp-pw",
                              tls_ca_file=str(ca_pem)):
            await rig.start()
            d.deliver(mail("tls", "over TLS")[0])
            await rig.wait_inbound(1)
            assert "TLS" in [ln for ln in d.log().splitlines() if "Login: user=" in ln][-1]
            await rig.channel.send(Outbound(channel="email", conversation_id="email:t", user_id=ALICE, text="ok",
                                            kind="agent", author="Lin", meta={"reply_to_addr": ALICE}))
            assert len(s.rec.envelopes) == 1
    finally:
        await s.stop()
        d.cleanup()


async def test_a_recreated_mailbox_new_uidvalidity_takes_nothing_in_twice(rig_no_nlu: Rig) -> None:
    rig = rig_no_nlu
    await rig.start()
    rig.dovecot.deliver(mail("one", "first mail")[0])
    await rig.wait_inbound(1)
    await rig.wait_seen(1)

    async def cursor_moved(than: tuple[int, int] | None) -> tuple[int, int]:
        # The cursor is saved right after the mail is marked seen (a Redis write after the IMAP
        # STORE): wait for it, not for the flag.
        async def moved() -> bool:
            cur = await rig.channel.state.cursor(rig.cfg.mailbox)
            return cur is not None and cur != than

        await wait_until(moved, 20, "the IMAP cursor to move")
        cur = await rig.channel.state.cursor(rig.cfg.mailbox)
        assert cur is not None
        return cur

    old = await cursor_moved(None)
    # The server loses its index (restored from backup, migrated): every mail gets a new UID.
    await asyncio.to_thread(rig.dovecot.stop)
    for f in rig.dovecot.maildir.iterdir():
        if f.name.startswith("dovecot"):
            f.unlink()
    await asyncio.sleep(1.1)  # UIDVALIDITY is a timestamp
    rig.dovecot.start()
    rig.dovecot.deliver(mail("two", "after the move")[0])
    msgs = await rig.wait_inbound(2, limit_s=30)
    await rig.wait_seen(2)
    new = await cursor_moved(old)
    assert new[0] != old[0]
    await asyncio.sleep(0.5)
    assert [m.text.split("\n")[0] for m in await rig.inbound()] == ["one", "two"] == [m.text.split("\n")[0] for m in msgs]


@pytest.mark.rasa
async def test_a_mail_that_cannot_be_processed_still_gets_a_ticket_and_does_not_block_the_rest(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import channels.email.adapter as adapter

    real_parse = adapter.parse_mail

    def fragile_parse(raw: bytes) -> Any:  # fault injection: a parser bug on one mail
        if b"POISON" in raw:
            raise IndexError("injected parser bug")
        return real_parse(raw)

    monkeypatch.setattr(adapter, "parse_mail", fragile_parse)
    await rig.start()
    rig.dovecot.deliver(mail("POISON", "whatever")[0])
    rig.dovecot.deliver(mail("2FA", "How do I enable 2FA?", sender="bob@example.org")[0])
    msgs = await rig.wait_inbound(2)
    await rig.wait_seen(2)
    # Nothing of it could be read, so neither could its sender's authentication: its own identity.
    assert msgs[0].user_id == f"unverified:{ALICE}" and msgs[0].meta["reply_to_addr"] == ALICE
    assert msgs[0].text == "" and "injected parser bug" in msgs[0].meta["email_problems"]
    [dead] = [f for _, f in await rig.r.xrange(rig.channel.state.k_dead)]
    assert "IndexError: injected parser bug" in dead["error"]
    await rig.pump()
    by_rcpt = {m["To"]: m for m in rig.smtp.rec.mails}
    assert "SB-000001" in text_of(by_rcpt[ALICE])  # the user is not left without an answer
    assert "bob@example.org" in by_rcpt
    detail = await rig.svc.detail("SB-000001")
    note = [m for m in detail["messages"] if m["author_type"] == "user"][0]["attachments"][0]
    assert "injected parser bug" in (Path(rig.cfg.attachments_dir) / note["ref"]).read_text()


# -- real-world threading and loops (#18) --------------------------------------------------------------

EXCHANGE_ID = "<AM9PR01MB8523F1D7C2A4E9B6F3D81C2A4E9B6F3D8@AM9PR01MB8523.eurprd01.prod.exchangelabs.com>"


def outlook_reply(subject: str, body: str, in_reply_to: str, references: str) -> bytes:
    """What Outlook (Exchange Online) sends: its own long Message-ID, Thread-Index, the quote as a
    "From: / Sent: / To: / Subject:" block under a line of underscores."""
    return (
        f"Authentication-Results: {dmarc_pass(ALICE)}\r\nFrom: Alice Chen <{ALICE}>\r\nTo: {SUPPORT}\r\n"
        f"Subject: {subject}\r\nDate: {formatdate()}\r\nMessage-ID: <AM9PR01MB8523R2{time.time_ns()}@AM9PR01MB8523."
        f"eurprd01.prod.exchangelabs.com>\r\nIn-Reply-To: {in_reply_to}\r\nReferences: {references}\r\n"
        "Thread-Topic: Withdrawal\r\nThread-Index: AQHZ1234abcd==\r\nContent-Language: en-US\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n\r\n" + body
    ).encode()


@pytest.mark.rasa
async def test_an_outlook_reply_to_our_long_id_mail_joins_the_ticket_and_a_vacation_reply_gets_nothing(rig: Rig) -> None:
    await rig.start()
    assert 82 <= len(EXCHANGE_ID) <= 93
    raw, _ = mail("Withdrawal", "I want to talk to a real person", msgid=EXCHANGE_ID)
    rig.dovecot.deliver(raw)
    await rig.wait_inbound(1)
    await rig.pump()
    [ack] = rig.smtp.rec.envelopes
    head = ack.content.split(b"\r\n\r\n", 1)[0]
    # On the wire: the long id as a plain msg-id, never an RFC 2047 word (CPython gh-100991).
    assert f"In-Reply-To: {EXCHANGE_ID}\r\n".encode() in head and b"=?" not in head
    ack_id = str(rig.smtp.rec.mails[0]["Message-ID"])

    rig.dovecot.deliver(outlook_reply(
        "RE: Withdrawal [SB-000001]",
        "It is the USDT withdrawal from yesterday.\r\n\r\n________________________________\r\n"
        f"From: Exchange Support <{SUPPORT}>\r\nSent: Tuesday, December 1, 2026 10:00 AM\r\nTo: Alice Chen <{ALICE}>\r\n"
        "Subject: Re: Withdrawal [SB-000001]\r\n\r\nA member of our support team will take over.\r\n",
        in_reply_to=ack_id, references=f"{EXCHANGE_ID} {ack_id}",
    ))
    # Out of office answers to our acknowledgement: Apple Mail (no Auto-Submitted) and Exchange.
    vacation, _ = mail("Auto reply: Re: Withdrawal [SB-000001]", "I am on vacation until Monday.",
                       in_reply_to=ack_id, X_Apple_Action="VACATION")
    rig.dovecot.deliver(vacation)
    oof, _ = mail("Automatic reply: Re: Withdrawal [SB-000001]", "Out of office", in_reply_to=ack_id,
                  X_MS_Exchange_Inbox_Rules_Loop=ALICE)
    rig.dovecot.deliver(oof)
    msgs = await rig.wait_inbound(2)
    await rig.wait_seen(4)
    assert len(await rig.inbound()) == 2  # the two automatic replies never reach the bot
    assert msgs[1].conversation_id == msgs[0].conversation_id
    assert msgs[1].text == "It is the USDT withdrawal from yesterday."
    await rig.pump()
    assert len(rig.smtp.rec.mails) == 1  # no answer to anything after the acknowledgement
    assert [t["number"] for t in await rig.svc.list("all", agent=None)] == ["SB-000001"]  # type: ignore[arg-type]
    reasons = sorted(orjson.loads(x)["reason"] for x in await rig.r.lrange(rig.channel.state.k_suppressed, 0, -1))
    assert reasons == ["exchange_rule", "x_apple_action:vacation"]


async def test_a_reused_message_id_from_another_sender_gets_its_own_conversation_and_overwrites_nothing(
    rig_no_nlu: Rig,
) -> None:
    rig = rig_no_nlu
    await rig.start()
    raw, msgid = mail("Deposit", "My deposit of 2 BTC is missing.")
    rig.dovecot.deliver(raw)
    [first] = await rig.wait_inbound(1)
    stored = Path(rig.cfg.attachments_dir) / first.attachments[0].ref  # type: ignore[operator]
    before = stored.read_bytes()
    copy, _ = mail("Deposit", "Send the 2 BTC to bc1qattacker instead.", sender="mallory@example.net", name="Mallory",
                   msgid=msgid)
    rig.dovecot.deliver(copy)
    msgs = await rig.wait_inbound(2)
    assert msgs[1].user_id == "mallory@example.net" and msgs[1].conversation_id != first.conversation_id
    assert stored.read_bytes() == before and b"bc1qattacker" not in before
    assert await rig.channel.state.conversation_of([msgid.strip("<>")]) == first.conversation_id


# -- sender identity (#24) -----------------------------------------------------------------------------


@pytest.mark.rasa
async def test_a_forged_sender_never_joins_the_victims_ticket_nor_learns_its_status(rig: Rig) -> None:
    await rig.start()
    raw, _ = mail("Withdrawal", "I want to talk to a real person")
    rig.dovecot.deliver(raw)
    await rig.wait_inbound(1)
    await rig.pump()
    ack_id = str(rig.smtp.rec.mails[0]["Message-ID"])
    n_mails = len(rig.smtp.rec.mails)

    def forged(body: str, auth: str | None, **kw: Any) -> bytes:
        return mail("Re: Withdrawal [SB-000001]", body, in_reply_to=ack_id, references=ack_id, auth=auth, **kw)[0]

    attempts = [
        # A verdict from some other server, not ours: it may be the sender's own.
        forged("I want to talk to a real person: change my withdrawal address to bc1qattacker", "mx.evil.test; dmarc=pass header.from=example.org"),
        # Our server's verdict: signed, but by another domain.
        forged("I want to talk to a real person: change my withdrawal address to bc1qattacker", f"{MX}; dkim=pass header.d=evil.test; dmarc=none"),
        # No verdict at all.
        forged("I want to talk to a real person: change my withdrawal address to bc1qattacker", None),
    ]
    for a in attempts:
        rig.dovecot.deliver(a)
    msgs = await rig.wait_inbound(1 + len(attempts))
    for m in msgs[1:]:
        assert m.conversation_id != msgs[0].conversation_id and m.user_id == f"unverified:{ALICE}"
        assert m.meta["sender_verified"] == "0" and "not verified" in m.meta["user_label"]
    # The display-name trick: the real address is the attacker's, verified for *their* domain.
    trick, _ = mail("Re: Withdrawal [SB-000001]", "please change my withdrawal address", in_reply_to=ack_id,
                    from_header=f'"{ALICE}" <mallory@evil.test>', auth=dmarc_pass("mallory@evil.test"))
    rig.dovecot.deliver(trick)
    # Status questions: Alice (verified, new thread) learns it; a forged Alice does not.
    rig.dovecot.deliver(mail("ticket SB-000001 status", "ticket SB-000001 status")[0])
    rig.dovecot.deliver(mail("ticket SB-000001 status", "ticket SB-000001 status", auth=None)[0])
    msgs = await rig.wait_inbound(len(attempts) + 4)
    assert msgs[-3].user_id == "mallory@evil.test" and msgs[-3].meta["sender_verified"] == "1"
    await rig.pump()

    detail = await rig.svc.detail("SB-000001")
    texts = [m["text"] for m in detail["messages"] if m["author_type"] == "user"]
    assert texts == ["Withdrawal\n\nI want to talk to a real person"]  # nothing of the forgeries on Alice's ticket
    outs = await rig.outbound()
    real, fake = msgs[-2], msgs[-1]
    [real_reply] = [o.text for o in outs if o.conversation_id == real.conversation_id]
    fake_replies = [o.text for o in outs if o.conversation_id == fake.conversation_id]
    assert "Your ticket SB-000001 is" in real_reply
    assert fake_replies and not any("Your ticket SB-000001 is" in t for t in fake_replies)
    # The agent sees, on each message, whether its sender was verified and why.
    others = [t for t in await rig.svc.list("all", agent=None) if t["number"] != "SB-000001"]  # type: ignore[arg-type]
    assert others
    checks = []
    for t in others:
        for m in (await rig.svc.detail(t["number"]))["messages"]:
            if m["author_type"] == "user" and m.get("sender_check"):
                checks.append(m["sender_check"])
    assert any(not c["verified"] and "mx.evil.test" in c["why"] for c in checks)
    assert any(not c["verified"] and "dkim=pass d=evil.test (not aligned)" in c["why"] for c in checks)
    assert len(rig.smtp.rec.mails) > n_mails and all(m["To"] in (ALICE, "mallory@evil.test") for m in rig.smtp.rec.mails)


async def test_a_contact_form_relay_is_answered_at_its_reply_to_and_shown_as_not_verified(
    tmp_path: Path, aredis: aioredis.Redis, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    relay = "ne-pas-repondre@forms.example.test"
    async for rig in _rig(tmp_path, aredis, dovecot, smtp, "http://127.0.0.1:1", relay_senders=[relay]):
        await rig.start()
        form, _ = mail("Contact form", "Name: Carol\nMy KYC is stuck.", sender=relay, name="Formulaire",
                       Reply_To="Carol <carol@example.net>")
        rig.dovecot.deliver(form)
        noreply, _ = mail("Notification", "Your statement is ready", sender="ne-pas-repondre@bank.example.test")
        rig.dovecot.deliver(noreply)
        [msg] = await rig.wait_inbound(1)
        await rig.wait_seen(2)
        assert msg.meta["reply_to_addr"] == "carol@example.net" and msg.user_id == "unverified:carol@example.net"
        assert msg.meta["sender_relay"] == relay and msg.meta["sender_verified"] == "0"
        await rig.channel.send(Outbound(channel="email", conversation_id=msg.conversation_id, user_id=msg.user_id,
                                        text="We are looking into it.", kind="agent", meta={"reply_to_addr": "carol@example.net"}))
        assert rig.smtp.rec.envelopes[0].rcpt_tos == ["carol@example.net"]
