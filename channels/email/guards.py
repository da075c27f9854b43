"""Which inbound mail the bot may see at all: a pure function of the parsed mail.

A support address receives much that is not a person asking something — out-of-office replies,
read receipts, abuse and DMARC reports, newsletters, mailing lists and their managers, bounces
of our own mail, and now and then our own mail coming back. Answering any of those risks a mail
loop (two robots replying to each other forever) or spam to a list. The verdicts:

- **loop**: our own mail (our address, or our loop header) — dropped.
- **bounce**: a delivery failure. Evidence is structural, never the local part alone: a
  `message/delivery-status` part (RFC 3464, with or without `report-type`), a mailer-daemon
  sender (`MAILER-DAEMON@`, display names "Mail Delivery System/Subsystem"…), or the null
  reverse-path (`Return-Path: <>`, RFC 5321 §4.5.5) or a `postmaster@` sender *together with*
  a bounce subject, or the stamps only non-delivery reports carry (Exchange's
  `X-MS-Exchange-Message-Is-Ndr`, Exim's `X-Failed-Recipients`). Recorded on the conversation
  of the mail that bounced; never answered.
- **auto_reply**: any other `multipart/report` (read receipts RFC 8098, abuse reports RFC 5965,
  DMARC and TLS reports), Outlook "Read:" notices in TNEF, plain-text read receipts (a "Read:",
  "Gelesen:", "已读:" or Lotus Notes "Return Receipt" subject *and* the receipt's sentence "was
  read on …" in a short body), calendar answers (iTIP REPLY/COUNTER; "Accepted:"/"Declined:"
  with a calendar or TNEF part) and invitations or cancellations a calendar service sends for
  someone (`calendar.py`), DMARC aggregate reports, RFC 3834
  `Auto-Submitted`, the non-standard auto-responder headers (`X-Autoreply`, `X-Autorespond`,
  `X-Apple-Action: VACATION`, Exchange's `X-Auto-Response-Suppress` / inbox-rule loop stamp),
  `Precedence: auto_reply`, help desks' loop stamps (`X-Loop`, `X-OTRS-Loop`), vacation subjects
  in the major languages (Outlook's localised prefixes), help desks' "request received"
  acknowledgements, mail sent with the null
  reverse-path, and no-reply senders (`noreply`, `no-reply`, `donotreply`, `ne-pas-repondre`,
  `gmail-noreply` …).
- **list**: mailing lists (RFC 2369/2919 `List-*`), bulk senders (`List-Unsubscribe` together
  with an e-mail service provider's campaign stamp: `X-Mailgun-*`, `X-SES-*`, `X-SG-EID`,
  `X-MC-User`, `X-Campaign*`, `Feedback-ID`, …; either alone is on one-to-one mail too), and list-manager notices
  (`*-owner@`, `*-request@`, Mailman/Majordomo/LISTSERV/Sympa).
- **customer**: everything else — a person wrote to us.

Only `customer` mail reaches the bot. The per-recipient rate limit on automatic replies lives on
the sending side (`EmailChannel.send`), because only there is it known whether a reply is
automatic or an agent's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from channels.email.parse import ParsedMail, first_address

LOOP_HEADER = "X-Switchboard-Loop"

Kind = Literal["customer", "auto_reply", "bounce", "list", "loop"]

DAEMON_LOCALPARTS = frozenset({"mailer-daemon", "mail-daemon", "mailerdaemon", "mailer_daemon", "maildaemon"})
_DAEMON_NAME = re.compile(
    r"mail(er)?[-_ ]?daemon|mail delivery (system|subsystem|service)|mail administrator|mail system"
    r"|delivery status notification|系统退信|邮件系统", re.I
)
_NOREPLY = re.compile(
    r"^(.*[-_.+])?(no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|ne[-_.]?pas[-_.]?repondre|nepasrepondre"
    r"|no[-_.]?responder|nicht[-_.]?antworten|noreply[-_.]?\w*)([-_.+].*)?$|^bounces?$",
    re.I,
)
_LIST_MANAGER = re.compile(
    r"^(majordomo|listserv|listproc|mailman|sympa|ecartis|lyris|smartlist|owner-.+|.+-(owner|request|admin|bounces?))$",
    re.I,
)
_LIST_MANAGER_HEADERS = ("x-mailman-version", "x-list-administrivia", "x-ecartis-version", "x-listserver")
BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
# E-mail service providers' stamps on campaign mail: Mailgun, Amazon SES, SendGrid, Mailchimp/Mandrill,
# campaign tools, Gmail's feedback loop id, the certified senders' complaint address, one-click unsubscribe.
_BULK_HEADERS = frozenset({"x-sg-eid", "x-sg-id", "x-mc-user", "feedback-id", "x-csa-complaints", "list-unsubscribe-post"})
_BULK_PREFIXES = ("x-mailgun-", "x-ses-", "x-mailchimp-", "x-campaign", "x-mandrill-")
BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|delivery status notification|delivery (has )?fail|mail delivery fail|returned mail"
    r"|failure notice|could not be delivered|delivery problem|non[- ]?remis|unzustellbar|nicht zustellbar"
    r"|no se pudo entregar|no entregado|non recapitato|недоставлен|退信|投递失败|未能送达|无法投递|無法傳遞|配信不能|送信失敗",
    re.I,
)
_AUTO_WORDS = (
    r"auto(matic|matische|matisch)?[-_ ]?(reply|response|antwort|antwoord|svar)|autoreply|autorespond(er)?|out of (the )?office"
    r"|away from (the )?office|on vacation|vacation reply|abwesenheit(snotiz)?|abwesend|im urlaub"
    r"|r[ée]ponse automatique|absence du bureau|absent du bureau|respuesta autom[aá]tica|fuera de la oficina"
    r"|risposta automatica|fuori sede|resposta autom[aá]tica|automatisch antwoord|autosvar|automaattinen vastaus"
    r"|автоответ|автоматический ответ|自動応答|自動返信|不在通知|自动回复|自動回覆|自动答复|自動回復|休假|자동 응답"
    # Outlook's "Automatic reply:" prefix in the languages it ships in, and the common vacation words.
    r"|odpowied[zź] automatyczna|automatick[áa] odpov[eě][dď]|automatikus v[áa]lasz|r[ăa]spuns automat"
    r"|automatisk svar|automatiskt svar|automatski odgovor|samodejni odgovor|automatinis atsakymas"
    r"|autom[āa]tisk[āa] atbilde|automaatvastus|resposta autom[àa]tica|otomatik (yan[ıi]t|cevap)"
    r"|автоматична відповідь|автоматичен отговор|αυτόματη απάντηση|tr[ảa] l[ờo]i t[ựu] đ[ộo]ng|balasan otomatis"
    r"|balasan automatik|ตอบกลับอัตโนมัติ|رد تلقائي|תשובה אוטומטית|자동 ?회신|자동응답|부재 ?중"
    r"|fuori ufficio|fora do escrit[óo]rio|aus[êe]ncia tempor[áa]ria|afwezig(heid)?|niet aanwezig|nieobecno[śs][ćc]( w biurze)?"
    r"|poza biurem|ofis d[ıi][şs][ıi]nda|di luar kantor|v[ắa]ng m[ặa]t|ngo[àa]i v[ăa]n ph[òo]ng|вне офиса|нет на месте"
    r"|absence|absent|不在"
)
_AUTO_SUBJECT = re.compile(
    r"^\s*([\[【(]\s*(" + _AUTO_WORDS + r")\s*[\]】)]|(" + _AUTO_WORDS + r")\s*([:：]|$|\s-))", re.I
)
# A help desk's acknowledgement of a new ticket (Zendesk, Freshdesk, Chinese mail systems): answering
# it opens a ticket over there, which acknowledges again — the classic loop between two desks.
_ACK_SUBJECT = re.compile(
    r"^\s*(\[\s*request received\s*\]|request received\s*[:：]|ticket received\s*[-:–]"
    r"|we(['’]ve| have) received your (request|e-?mail|message|ticket)"
    r"|(您的|你的)?(邮件|郵件|来信|來信|请求|請求)已(收到|收悉)|已收到(您|你)的(邮件|郵件|来信|來信|请求|請求))",
    re.I,
)
_READ_SUBJECT = re.compile(
    r"^\s*((read|not read|gelesen|ungelesen|lu|non lu|le[íi]do|no le[íi]do|letto|non letto|lido|n[ãa]o lido|gelezen"
    r"|niet gelezen|przeczytana|прочитано|не прочитано|開封済み|開封|已读|已讀|未读|未讀|읽음)\s*[:：]"
    r"|(return|read) receipt\b|回执\s*[:：]|已读回执)",
    re.I,
)
# The sentence a plain-text read receipt (no multipart/report: Outlook, Exchange, Lotus Notes, Chinese
# clients) says it with. Together with the subject: "Read: the docs but still stuck" is a person.
_RECEIPT_SENTENCE = re.compile(
    r"\bwas read on\b|\bwas read at\b|was deleted without being read|\bwas received by\s*:"
    r"|wurde am .{1,80}? gelesen|wurde .{0,40}ungelesen gelöscht|a été lu(e)? le|a été supprimé sans avoir été lu"
    r"|fue le[íi]do el|se ha le[íi]do el|è stato letto il|foi lid[oa] em|is gelezen op|została przeczytana"
    r"|было прочитано|開封されました|已于.{0,40}?(被)?(阅读|读取)|已於.{0,40}?(被)?(閱讀|讀取)|已被(阅读|閱讀|读取|讀取)"
    r"|읽었습니다|okundu",
    re.I | re.S,
)
_RECEIPT_MAX_CHARS = 2000  # receipts are a few lines; a long text is a person's
# An attendee's answer to an invitation (Outlook's prefixes; sent by the calendar, with an iTIP part
# or in TNEF from Exchange).
_CALENDAR_REPLY_SUBJECT = re.compile(
    r"^\s*(accepted|tentative|declined|angenommen|mit vorbehalt angenommen|abgelehnt|accepté|provisoire|refusé"
    r"|aceptado|provisional|rechazado|accettato|provvisorio|rifiutato|aceito|recusado|geaccepteerd|voorlopig"
    r"|geweigerd|已接受|暂定|已拒绝|已謝絕|暫訂|已婉拒|承諾|仮承諾|辞退|수락|미정|거절)\s*[:：]",
    re.I,
)
_CALENDAR_REPLY_SENTENCE = re.compile(
    r"\bhas (tentatively )?(accepted|declined) (this|the|your) (invitation|meeting|event)\b|\bhas tentatively accepted\b",
    re.I,
)
_DMARC_SUBJECT = re.compile(r"^\s*(report domain:|\[?dmarc\]? aggregate report|dmarc report|report-id:)", re.I)


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    reason: str = ""

    @property
    def action(self) -> Literal["accept", "suppress", "bounce"]:
        """What the channel does: hand to the bot, record as suppressed, or record as a bounce."""
        if self.kind == "customer":
            return "accept"
        return "bounce" if self.kind == "bounce" else "suppress"


CUSTOMER = Verdict("customer")
ACCEPT = CUSTOMER  # the name older callers use


def _localpart(addr: str | None) -> str:
    return (addr or "").split("@", 1)[0].lower()


def _null_return_path(mail: ParsedMail) -> bool:
    rp = mail.headers.get("return-path", ())
    return bool(rp) and rp[0].replace(" ", "") in ("<>", "")


def is_noreply(addr: str | None) -> bool:
    """A sender that says no one reads replies to it (by local-part pattern)."""
    return bool(_NOREPLY.match(_localpart(addr)))


def _report(mail: ParsedMail) -> Verdict | None:
    types = set(mail.part_types)
    if mail.report_type in ("delivery-status", "global-delivery-status") or types & {
        "message/delivery-status", "message/global-delivery-status"
    }:
        return Verdict("bounce", "dsn")
    if mail.content_type == "multipart/report" or types & {
        "message/disposition-notification", "message/global-disposition-notification", "message/feedback-report"
    }:
        if "message/feedback-report" in types or mail.report_type == "feedback-report":
            return Verdict("auto_reply", "abuse_report")
        if types & {"message/disposition-notification", "message/global-disposition-notification"} or (
            mail.report_type and "disposition-notification" in mail.report_type
        ):
            return Verdict("auto_reply", "read_receipt")
        return Verdict("auto_reply", f"report:{mail.report_type or 'unspecified'}")
    if "application/ms-tnef" in types and _READ_SUBJECT.match(mail.subject):
        return Verdict("auto_reply", "read_receipt")
    if _READ_SUBJECT.match(mail.subject) and len(mail.body) <= _RECEIPT_MAX_CHARS and _RECEIPT_SENTENCE.search(mail.body):
        return Verdict("auto_reply", "read_receipt")
    if _DMARC_SUBJECT.match(mail.subject) and types & {
        "application/zip", "application/gzip", "application/x-gzip", "application/xml", "text/xml",
        "application/x-zip-compressed", "application/tlsrpt+gzip", "application/tlsrpt+json",
    }:
        return Verdict("auto_reply", "dmarc_report")
    return None


def _calendar(mail: ParsedMail) -> Verdict | None:
    """Calendar traffic nobody wrote to us. An attendee's answer ("Accepted: …", iTIP REPLY) is
    generated by the attendee's calendar for the organizer's calendar: answering it tells nobody
    anything. An invitation or cancellation is a system's when a calendar service sends it for
    someone (`Sender:` another address) or a scheduling service writes for the organizer (the
    ORGANIZER is not the From: address); a person's own invitation, with their words, stays a
    customer's mail."""
    itip = mail.itip
    if itip is not None and itip.is_reply:
        return Verdict("auto_reply", f"calendar_reply:{itip.method}")
    if _CALENDAR_REPLY_SUBJECT.match(mail.subject) and (
        itip is not None or "application/ms-tnef" in mail.part_types
        or (len(mail.body) <= _RECEIPT_MAX_CHARS and _CALENDAR_REPLY_SENTENCE.search(mail.body))
    ):
        return Verdict("auto_reply", "calendar_reply")
    if itip is not None and itip.method in ("request", "cancel", "publish", "add"):
        sender = first_address(mail.header("sender"))[1]
        if sender and sender != mail.from_addr:
            return Verdict("auto_reply", f"calendar_{itip.method}:sent_by_service")
        if itip.organizer and itip.organizer not in (mail.from_addr, sender):
            return Verdict("auto_reply", f"calendar_{itip.method}:sent_for_organizer")
    return None


def _bounce(mail: ParsedMail) -> Verdict | None:
    local = _localpart(mail.from_addr)
    bounce_subject = BOUNCE_SUBJECT.search(mail.subject) is not None
    if local in DAEMON_LOCALPARTS:
        return Verdict("bounce", "mailer_daemon")
    if _DAEMON_NAME.search(mail.from_name):
        return Verdict("bounce", "mailer_daemon_name")
    if mail.has("x-ms-exchange-message-is-ndr") or mail.has("x-failed-recipients"):
        # Exchange's non-delivery report stamp; Exim's list of the addresses that failed.
        return Verdict("bounce", "ndr_header")
    if bounce_subject and (_null_return_path(mail) or local == "postmaster" or not mail.from_addr):
        return Verdict("bounce", "bounce_subject_from_daemon")
    return None


def _auto_reply(mail: ParsedMail) -> Verdict | None:
    auto = mail.header("auto-submitted").split(";", 1)[0].strip().lower()
    if auto and auto != "no":
        return Verdict("auto_reply", f"auto_submitted:{auto}")
    for name in ("x-autoreply", "x-autorespond", "x-autogenerated", "x-auto-reply", "x-autoresponder",
                 "x-mail-autoreply", "x-autoreply-from", "x-vacation"):
        if mail.has(name):
            return Verdict("auto_reply", f"header:{name}")
    if mail.has("x-apple-action"):
        return Verdict("auto_reply", f"x_apple_action:{mail.header('x-apple-action').strip().lower()[:30]}")
    suppress = {v.strip().lower() for v in mail.header("x-auto-response-suppress").split(",")}
    if suppress & {"all", "oof", "autoreply"}:
        # Set by Exchange/Outlook on automatic mail (out-of-office replies, alerts, rules): it asks
        # for no auto-response, and nothing a person types in a mail client carries it.
        return Verdict("auto_reply", "x_auto_response_suppress")
    if mail.has("x-ms-exchange-inbox-rules-loop") or mail.has("x-ms-exchange-generated-message-source"):
        return Verdict("auto_reply", "exchange_rule")
    for name in ("x-loop", "x-otrs-loop", "x-zammad-loop"):
        # The loop stamps of procmail, OTRS/Znuny and other help desks on what they send by themselves.
        if mail.has(name) and mail.header(name).strip().lower() not in ("no", "false"):
            return Verdict("auto_reply", f"header:{name}")
    precedence = mail.header("precedence").strip().lower()
    if precedence == "auto_reply":
        return Verdict("auto_reply", "precedence:auto_reply")
    subject = _without_reply_prefix(mail.subject)
    if _AUTO_SUBJECT.match(subject):
        return Verdict("auto_reply", "auto_reply_subject")
    if _ACK_SUBJECT.match(subject):
        return Verdict("auto_reply", "ticket_acknowledgement")
    if _null_return_path(mail):
        return Verdict("auto_reply", "null_return_path")
    return None


def _without_reply_prefix(subject: str) -> str:
    return re.sub(r"^\s*((re|aw|sv|fw|fwd|回复|答复)\s*[:：]\s*)+", "", subject, flags=re.I)


def _list(mail: ParsedMail) -> Verdict | None:
    precedence = mail.header("precedence").strip().lower()
    if precedence in BULK_PRECEDENCE:
        return Verdict("list", f"precedence:{precedence}")
    if mail.has("list-id") or mail.has("list-post"):
        return Verdict("list", "mailing_list")
    if _LIST_MANAGER.match(_localpart(mail.from_addr)) or any(mail.has(h) for h in _LIST_MANAGER_HEADERS):
        return Verdict("list", "list_manager")
    if mail.has("list-unsubscribe") and (esp := _bulk_header(mail)):
        return Verdict("list", f"bulk_sender:{esp}")
    return None


def _bulk_header(mail: ParsedMail) -> str | None:
    """The first header that marks mail sent in bulk by an e-mail service provider. Alone, some of
    them are on one-to-one mail too (SES and Mailgun also send a shop's receipts, a CRM's mail), and
    `List-Unsubscribe` alone is on a CRM's one-to-one mail: only together do they make a campaign."""
    for name in mail.header_names:
        if name in _BULK_HEADERS or name.startswith(_BULK_PREFIXES):
            return name
    return None


def classify(mail: ParsedMail, own_address: str, relay_senders: frozenset[str] = frozenset()) -> Verdict:
    """The verdict for one inbound mail (see the module docstring). `relay_senders` are no-reply
    addresses of our own contact forms: their mail is a customer's (answered at Reply-To)."""
    own = own_address.lower()
    if mail.has(LOOP_HEADER):
        return Verdict("loop", "own_loop_header")
    if mail.from_addr == own:
        return Verdict("loop", "own_address")
    for rule in (_report, _bounce, _auto_reply, _calendar, _list):
        if (v := rule(mail)) is not None:
            return v
    if is_noreply(mail.from_addr) and (mail.from_addr or "") not in relay_senders:
        return Verdict("auto_reply", "noreply_sender")
    return CUSTOMER
