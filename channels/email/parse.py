"""Raw RFC 5322 bytes → `ParsedMail`: headers, sender, thread ids, body text, attachments.

Mail in the wild is messy, so every step degrades instead of failing:
- the standard library's modern parser (`policy.default`) splits the MIME tree, but we decode
  text ourselves with a charset map that widens the usual mislabels (a "GB2312" body with GBK-only
  characters decodes as GB18030, "Big5" as Big5-HKSCS, "ISO-8859-1" as CP1252) and falls back to
  guessing, so a Chinese mail never turns into mojibake or an exception;
- headers are decoded from their raw form (RFC 2047 words in any charset, and raw 8-bit headers
  some clients send), because the library's own decoding replaces what it cannot read;
- HTML-only mail is turned into text with `html.parser` (no third-party HTML stack); of a
  `multipart/alternative` the plain part is read unless it is not the mail the person's client
  shows (a placeholder, or most of the HTML's words missing: `plain_falls_short`);
- signatures and encryption (`crypto.py`): inline PGP armor is removed, an encrypted mail is
  marked `unreadable`; a mail attached whole (`message/rfc822`) is summarised as `forwarded`;
- for the NLU, quoted replies and signatures are cut (`strip_reply`): the router should classify
  what the user wrote now, not our previous answer quoted below it. The full text is kept too —
  the ticket gets it (see `EmailChannel`).
"""

from __future__ import annotations

import email
import email.utils
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import errors, policy
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import Any

from channels.email.calendar import CALENDAR_TYPES, Itip, read_itip
from channels.email.charset import (
    CONTROL,
    ZH_CHARSETS,
    clean_header,
    codec_for,
    decode_bytes,
    decode_header_value,
)
from channels.email.crypto import pgp_cleartext, unreadable
from channels.email.quotes import mail_language, strip_reply

# Decoding and quote stripping live in their own modules; re-exported for callers and tests.
__all__ = [
    "Bounce", "Forwarded", "ParsedMail", "RawAttachment", "codec_for", "decode_bytes", "decode_header_value", "first_address",
    "html_to_text", "mail_language", "msg_ids", "parse_headers_only", "parse_mail", "strip_reply",
]


def _unfold(s: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " ", s).strip()


# -- ids and addresses ------------------------------------------------------------------------------

MSGID_RE = re.compile(r"<([^<>\s]{1,1000})>")


def msg_ids(value: str) -> tuple[str, ...]:
    """The message ids in a Message-ID / In-Reply-To / References value, without brackets.
    Tolerates ids clients wrote without brackets."""
    ids = MSGID_RE.findall(value or "")
    if not ids and value and value.strip():
        token = value.strip().split()[0].strip("<>")
        if "@" in token:
            ids = [token]
    return tuple(ids)


def first_address(value: str) -> tuple[str, str | None]:
    """(display name, lower-cased address) of the first mailbox in an address header (lenient:
    for recovering a sender from a mail that could not be parsed)."""
    try:
        pairs = email.utils.getaddresses([value])
    except (ValueError, IndexError, TypeError):
        pairs = []
    for name, addr in pairs:
        addr = addr.strip()
        if "@" in addr and " " not in addr and len(addr) <= 254:  # RFC 5321 path limit
            return name.strip(), addr.lower()
    return "", None


# Domain labels separated by dots, each bounded: no nested quantifier that could backtrack
# exponentially on a long damaged header (`(?:[a-z0-9-]{0,62}\.?)*` did, on 40 characters).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDR_SPEC_RE = re.compile(rf"^[^@\s<>\"()\[\],;:\\]{{1,64}}@{_LABEL}(?:\.{_LABEL})*$")
_ANGLE_ADDR = re.compile(r"<\s*([^<>\s]*@[^<>\s]*)\s*>")


@dataclass(frozen=True, slots=True)
class Mailboxes:
    """What an address header really names: `addr` is the addr-spec of its one mailbox (never an
    address written in the display name), `count` how many mailboxes it lists, `problem` why it
    is not exactly one well-formed mailbox ("" when it is)."""

    name: str
    addr: str | None
    count: int
    problem: str = ""


def parse_mailboxes(raw_value: str | None) -> Mailboxes:
    """Strict RFC 5322 reading of a From/Reply-To value as it came off the wire (encoded words
    not yet decoded, so an encoded display name can never turn into an address)."""
    if not raw_value or not raw_value.strip():
        return Mailboxes("", None, 0, "no address")
    value = re.sub(r"[\udc80-\udcff]", "?", str(raw_value))
    value = CONTROL.sub("", re.sub(r"\s*[\r\n]+\s*", " ", value))
    try:
        parsed = policy.default.header_factory("from", value)
        found = [(a.display_name, a.addr_spec) for a in parsed.addresses]
        defects = [d for d in parsed.defects if isinstance(d, errors.InvalidHeaderDefect)]
    except (errors.HeaderParseError, ValueError, IndexError, TypeError, AttributeError):
        found, defects = [], [errors.InvalidHeaderDefect("unparseable")]
    if not defects:
        good = [(n, a) for n, a in found if ADDR_SPEC_RE.match(a)]
        if len(found) == 1 and good:
            name, addr = good[0]
            return Mailboxes(clean_header(name), addr.lower(), 1)
        if len(found) > 1:
            first = good[0] if good else ("", None)
            return Mailboxes(clean_header(first[0]), first[1].lower() if first[1] else None, len(found),
                             f"{len(found)} mailboxes")
    # Malformed (e.g. an unquoted address as display name: `victim@bank.test <attacker@evil.test>`):
    # the angle-addr is the mailbox; anything else is only a name.
    angles = [m for m in _ANGLE_ADDR.findall(value) if ADDR_SPEC_RE.match(m)]
    if len(angles) == 1:
        name = value[: value.find("<")].strip().strip('"').strip()
        return Mailboxes(clean_header(decode_header_value(name)), angles[0].lower(), 1, "malformed address header")
    if len(angles) > 1:
        return Mailboxes("", angles[0].lower(), len(angles), f"{len(angles)} mailboxes")
    bare = [t.strip("<>,;\"'()") for t in value.split()]
    bare = [t for t in bare if ADDR_SPEC_RE.match(t)]
    if len(bare) == 1:
        return Mailboxes("", bare[0].lower(), 1, "malformed address header")
    return Mailboxes("", bare[0].lower() if bare else None, len(bare), f"{len(bare)} mailboxes" if bare else "no address")


# -- HTML → text ------------------------------------------------------------------------------------

_BLOCK = frozenset(
    "p div br li ul ol tr table h1 h2 h3 h4 h5 h6 hr pre section article header footer "
    "blockquote address dd dt dl form fieldset center".split()
)
_PARAGRAPH = frozenset("p blockquote h1 h2 h3 h4 h5 h6 table ul ol pre hr".split())
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})


# Elements a mail client never shows: preheaders of marketing templates, tracking words, Outlook's
# `mso-hide:all`. Their text is not what the person read or wrote.
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all", re.I)
_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())


class _HTMLText(HTMLParser):
    """Just enough layout to read a mail: blocks and <br> become line breaks, list items get a
    bullet, <blockquote> content is prefixed "> " (so the quote stripper treats it as quoted), a
    link's address follows its words as plain-text mail writes it ("from Binance
    <https://…>"): "is this mail from you?" is a question about where the link goes; hidden
    elements (`display:none`, `hidden`) are left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.skip = 0
        self.hidden: tuple[str, int] | None = None  # the hidden element's tag and how deep it nests
        self.quote = 0
        self.pre = 0
        self.link: tuple[str, list[str]] | None = None  # the open <a>'s address and its words

    def _break(self, blank: bool = False) -> None:
        """End the current line; `blank` also leaves an empty line (paragraph-like blocks)."""
        if self.lines[-1].strip():
            self.lines.append("")
        else:
            self.lines[-1] = ""
        if blank and len(self.lines) > 1 and self.lines[-2].strip():
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden is not None:
            if tag == self.hidden[0]:
                self.hidden = (tag, self.hidden[1] + 1)
            return
        if tag not in _VOID and tag not in _SKIP and _is_hidden(attrs):
            self.hidden = (tag, 1)
            return
        if tag in _SKIP:
            self.skip += 1
            return
        if tag in _BLOCK:
            self._break(blank=tag in _PARAGRAPH)
        if tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "li":
            self.lines[-1] += "• "
        elif tag in ("td", "th") and self.lines[-1].strip():
            self.lines[-1] += "  "
        elif tag == "a" and not self.skip:
            href = (dict(attrs).get("href") or "").strip()
            self.link = (href, []) if re.match(r"(?i)https?://\S+$", href) else None

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden is None and tag in ("br", "hr", "p", "div"):
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if self.hidden is not None:
            if tag == self.hidden[0]:
                self.hidden = (tag, self.hidden[1] - 1) if self.hidden[1] > 1 else None
            return
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        elif tag == "a" and self.link is not None:
            href, words = self.link
            self.link = None
            shown = "".join(words).strip()
            if href.rstrip("/").lower() not in (shown.rstrip("/").lower(), "mailto:" + shown.lower()):
                self.lines[-1] += f" <{href}>"
        if tag in _BLOCK and tag != "br":
            self._break(blank=tag in _PARAGRAPH)

    def handle_data(self, data: str) -> None:
        if self.skip or self.hidden is not None:
            return
        if not self.pre:
            data = re.sub(r"[ \t\r\n\f\u00a0]+", " ", data)
            if not self.lines[-1].strip():
                data = data.lstrip()
        if self.link is not None:
            self.link[1].append(data)
        prefix = "> " * self.quote
        parts = data.split("\n") if self.pre else [data]
        for i, part in enumerate(parts):
            if i:
                self.lines.append("")
            if part and prefix and not self.lines[-1].startswith(prefix):
                self.lines[-1] = prefix + self.lines[-1]
            self.lines[-1] += part

    def text(self) -> str:
        out = "\n".join(line.rstrip() for line in self.lines)
        return re.sub(r"\n{3,}", "\n\n", out).strip()


def _is_hidden(attrs: list[tuple[str, str | None]]) -> bool:
    return any(name == "hidden" or (name == "style" and value and _HIDDEN_STYLE.search(value)) for name, value in attrs)


def html_to_text(html: str) -> str:
    p = _HTMLText()
    try:
        p.feed(html)
        p.close()
    except (AssertionError, ValueError):  # html.parser gives up on some broken markup
        pass
    return p.text()


# -- the parsed mail --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawAttachment:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Bounce:
    """What a delivery status notification says: who failed, how, and which mail it was."""

    recipients: tuple[str, ...] = ()
    status: str = ""
    action: str = ""
    diagnostic: str = ""
    original_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Forwarded:
    """A mail the user attached whole (`message/rfc822`: "is this from you?" with the mail they got)."""

    sender: str  # its From: as written (display name and address)
    subject: str


@dataclass(frozen=True, slots=True)
class ParsedMail:
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_name: str
    from_addr: str | None
    headers: dict[str, tuple[str, ...]]  # lower-case name → decoded values
    body: str  # the full text (plain part, or the HTML part as text)
    stripped: str  # quotes and signature cut (for the NLU)
    attachments: tuple[RawAttachment, ...]
    lang_hint: str | None
    content_type: str
    report_type: str | None
    bounce: Bounce | None = None
    problems: tuple[str, ...] = field(default=())
    from_count: int = 1  # mailboxes in From: (1 unless the header is odd)
    from_problem: str = ""  # why From: is not exactly one well-formed mailbox
    reply_to: Mailboxes | None = None
    part_types: tuple[str, ...] = ()  # every MIME type in the mail (report parts, TNEF …)
    header_names: tuple[str, ...] = ()  # lower-case names in the order they appear (top first)
    itip: Itip | None = None  # the calendar part's method and organizer (invitations and answers)
    forwarded: tuple[Forwarded, ...] = ()  # mails attached whole, in order
    unreadable: str = ""  # why the bot cannot read the mail (encrypted, in parts); "" when it can

    def header(self, name: str) -> str:
        vals = self.headers.get(name.lower())
        return vals[0] if vals else ""

    def has(self, name: str) -> bool:
        return name.lower() in self.headers


MAX_NESTING = 24  # MIME levels (multiparts and forwarded mails) read before the rest is kept as one .eml


def _clean(text: str) -> str:
    """Line ends normalised, control characters (NUL breaks PostgreSQL text) and byte order marks
    removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")  # byte order marks, also mid-text
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text).strip()


def _raw_text_fallback(raw: bytes) -> str:
    sep = raw.find(b"\r\n\r\n")
    sep, skip = (sep, 4) if sep >= 0 else (raw.find(b"\n\n"), 2)
    payload = raw[sep + skip :] if sep >= 0 else raw
    lines = decode_bytes(payload, None).splitlines()
    keep = [ln for ln in lines if not ln.startswith("--") and not re.match(r"^[A-Za-z-]+:\s", ln)]
    return "\n".join(keep)


def _part_text(part: Message) -> tuple[str, str | None]:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError, TypeError, AssertionError):
        payload = None
    if not isinstance(payload, bytes):
        payload = str(_payload(part) or "").encode("utf-8", "surrogateescape")
    cs = part.get_content_charset()
    text = decode_bytes(payload, cs)
    if part.get_content_type() == "text/plain" and str(part.get_param("format") or "").lower() == "flowed":
        text = unflow(text, delsp=str(part.get_param("delsp") or "").lower() == "yes")
    return text, codec_for(cs)


def unflow(text: str, *, delsp: bool = False) -> str:
    """RFC 3676 `format=flowed` (Thunderbird's and Apple Mail's plain text): a line that ends in
    a space goes on in the next one — a paragraph wrapped at about 72 characters, a key or an
    address cut in two — and one leading space is stuffing. Lines join only within one quote
    depth; the signature separator "-- " never joins. Quoted lines come out as "> …"."""
    out: list[str] = []
    para: list[str] = []
    depth_of_para = 0

    def flush() -> None:
        if para:
            joined = "".join(para)
            out.append(">" * depth_of_para + " " + joined if depth_of_para else joined)
            para.clear()

    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        if body.startswith(" "):
            body = body[1:]
        if para and depth != depth_of_para:
            flush()
        depth_of_para = depth
        soft = body.endswith(" ") and body != "-- "
        para.append(body[:-1] if soft and delsp else body)
        if not soft:
            flush()
    flush()
    return "\n".join(out)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, LookupError, TypeError, IndexError):
        name = None
    if name is None:
        raw = part.get_param("name", header="content-type")
        name = raw if isinstance(raw, str) else None
    return decode_header_value(name) if name else None


def _payload(part: Message) -> Any:
    """`part.get_payload()`, or "" when the email package cannot turn the part's 8-bit text into
    a string with the charset the part declares: it raises ValueError for a charset name with a
    NUL in it (found by tests/unit/test_fuzz.py), where an unknown charset only falls back."""
    try:
        return part.get_payload()
    except (ValueError, LookupError):
        return ""


def _children(part: Message) -> list[Message]:
    if not part.is_multipart():
        return []
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def _depth(msg: Message) -> int:
    """How deep the MIME tree goes (iteratively: the tree may be deeper than Python's stack)."""
    deepest = 0
    stack = [(msg, 1)]
    while stack:
        part, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_NESTING:
            return deepest
        stack.extend((c, d + 1) for c in _children(part))
    return deepest


def _leaves(part: Message) -> Iterator[Message]:
    """Leaf parts in order; a message/rfc822 part (a forwarded mail) is one leaf, not descended."""
    stack = [part]
    while stack:
        p = stack.pop()
        if p.get_content_type() == "message/rfc822" or not p.is_multipart():
            yield p
        else:
            stack.extend(reversed(_children(p)))


def _walk(msg: Message) -> Iterator[Message]:
    stack = [msg]
    while stack:
        p = stack.pop()
        yield p
        stack.extend(reversed(_children(p)))


def _rfc822_bytes(part: Message) -> bytes:
    payload = _payload(part)
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, Message):
        try:
            return inner.as_bytes(policy=policy.default.clone(linesep="\r\n"))
        except (ValueError, LookupError, TypeError, UnicodeError, IndexError, RecursionError):
            return inner.as_string().encode("utf-8", "replace")
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _parse_bounce(msg: Message) -> Bounce:
    recipients: list[str] = []
    status = action = diagnostic = ""
    original: str | None = None
    for part in _walk(msg):
        ct = part.get_content_type()
        if ct in ("message/delivery-status", "message/global-delivery-status"):
            blocks = _payload(part)
            if not isinstance(blocks, list):
                blocks = [email.message_from_string(str(blocks), policy=policy.compat32)]
            for b in blocks:
                if not isinstance(b, Message):
                    continue
                fr = b.get("Final-Recipient") or b.get("Original-Recipient")
                if fr:
                    recipients.append(clean_header(str(fr).split(";", 1)[-1]).lower())
                status = status or clean_header(str(b.get("Status") or ""))
                action = action or clean_header(str(b.get("Action") or "")).lower()
                diagnostic = diagnostic or clean_header(str(b.get("Diagnostic-Code") or ""))[:300]
        elif ct in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers") and original is None:
            if ct == "message/rfc822":
                inner = _payload(part)
                hdrs = inner[0] if isinstance(inner, list) and inner else None
            else:
                text, _ = _part_text(part)
                hdrs = email.message_from_string(text, policy=policy.compat32)
            if isinstance(hdrs, Message):
                ids = msg_ids(str(hdrs.get("Message-ID") or ""))
                original = ids[0] if ids else None
    return Bounce(tuple(dict.fromkeys(recipients)), status, action, diagnostic, original)


def _read(raw: bytes) -> tuple[Message, list[str]]:
    """The MIME tree. The modern parser first; when it could not split a multipart (Outlook's
    unquoted `boundary=----=_NextPart…` trips its header parser) the compat32 parser, which
    reads those boundaries, is tried and kept if it did better."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    problems = [type(d).__name__ for d in msg.defects][:10]
    if msg.get_content_maintype() == "multipart" and (
        not msg.is_multipart() or any(isinstance(d, errors.StartBoundaryNotFoundDefect) for d in msg.defects)
    ):
        legacy = email.message_from_bytes(raw, _class=EmailMessage, policy=policy.compat32)
        if legacy.is_multipart() and not any(isinstance(d, errors.StartBoundaryNotFoundDefect) for d in legacy.defects):
            return legacy, []
    return msg, problems


def _bodies(msg: Message, problems: list[str]) -> tuple[Message | None, Message | None]:
    try:
        get_body = msg.get_body  # type: ignore[attr-defined]
        return get_body(preferencelist=("plain",)), get_body(preferencelist=("html",))
    except (ValueError, LookupError, TypeError, IndexError, AttributeError, KeyError, RecursionError) as e:
        problems.append(f"body: {type(e).__name__}")
        return None, None


def _first_text_leaf(msg: Message) -> Message | None:
    """For a tree too deep to read normally: the first text part, in document order."""
    for part in _leaves(msg):
        if part.get_content_type() in ("text/plain", "text/html") and part.get_content_disposition() != "attachment":
            return part
    return None


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one mail. Never raises for malformed MIME; what could not be read is listed in
    `problems` (the channel writes it into the ticket's copy of the mail)."""
    msg, problems = _read(raw)
    headers: dict[str, list[str]] = {}
    raw_headers: dict[str, list[str]] = {}
    names: list[str] = []
    for name, value in msg.raw_items():
        key = CONTROL.sub("", name).strip().lower()
        names.append(key)
        headers.setdefault(key, []).append(decode_header_value(value))
        raw_headers.setdefault(key, []).append(str(value))

    def h(name: str) -> str:
        vals = headers.get(name)
        return vals[0] if vals else ""

    sender = parse_mailboxes(raw_headers.get("from", [""])[0])
    from_name = sender.name
    if "?" in from_name and "\udc80" <= max(raw_headers.get("from", [""])[0] or " ") <= "\udcff":
        from_name = first_address(h("from"))[0] or from_name  # an 8-bit display name: our decoder reads it
    reply_to = parse_mailboxes(raw_headers["reply-to"][0]) if raw_headers.get("reply-to") else None
    own_ids = msg_ids(h("message-id"))
    content_type = msg.get_content_type()
    report_type = None
    if content_type == "multipart/report":
        rt = msg.get_param("report-type")
        report_type = clean_header(rt if isinstance(rt, str) else "").lower() or "unspecified"

    depth = _depth(msg)
    too_deep = depth > MAX_NESTING
    plain_part: Message | None = None
    html_part: Message | None = None
    if too_deep:
        problems.append(f"nested more than {MAX_NESTING} levels deep: kept whole as original.eml")
        leaf = _first_text_leaf(msg)
        if leaf is not None and leaf.get_content_type() == "text/html":
            html_part = leaf
        else:
            plain_part = leaf
    else:
        plain_part, html_part = _bodies(msg, problems)

    body = ""
    charsets: list[str] = []
    if plain_part is not None:
        body, cs = _part_text(plain_part)
        charsets.append(cs or "")
    if html_part is not None and (not body.strip() or plain_part is not None):
        html, cs = _part_text(html_part)
        html_text = html_to_text(html)
        if not body.strip() or plain_falls_short(body, html_text):
            charsets.append(cs or "")
            body = html_text
    if not body.strip() and plain_part is None and html_part is None and problems:
        # Broken structure (no boundary, truncated parts): read what text there is.
        body = _raw_text_fallback(raw)
        problems.append("body read from the raw message")
    body = pgp_cleartext(_clean(body))

    attachments: list[RawAttachment] = []
    part_types: list[str] = []
    if too_deep:
        attachments.append(RawAttachment("original.eml", "message/rfc822", raw))
        part_types = sorted({p.get_content_type() for p in _walk(msg)})
    else:
        _collect_attachments(msg, {id(p) for p in (plain_part, html_part) if p is not None}, attachments, problems)
        part_types = sorted({p.get_content_type() for p in _walk(msg)})

    lang_hint: str | None = None
    content_language = h("content-language").lower()
    if content_language.startswith("zh") or any(c in ZH_CHARSETS for c in charsets):
        lang_hint = "zh"
    elif content_language.startswith("en"):
        lang_hint = "en"

    itip = None if too_deep else _itip(msg)
    leaves = [] if too_deep else list(_leaves(msg))
    forwarded = tuple(f for p in leaves if p.get_content_type() == "message/rfc822" and (f := _forwarded(p)))
    why_unreadable = unreadable(content_type, tuple(p.get_content_type() for p in leaves), body)
    has_dsn = any(t in ("message/delivery-status", "message/global-delivery-status") for t in part_types)
    bounce = _parse_bounce(msg) if report_type in ("delivery-status", "global-delivery-status") or has_dsn else None
    return ParsedMail(
        message_id=own_ids[0] if own_ids else None,
        in_reply_to=msg_ids(h("in-reply-to")),
        references=msg_ids(h("references")),
        subject=h("subject"),
        from_name=from_name,
        from_addr=sender.addr,
        headers={k: tuple(v) for k, v in headers.items()},
        body=body,
        stripped=strip_reply(body),
        attachments=tuple(attachments),
        lang_hint=lang_hint,
        content_type=content_type,
        report_type=report_type,
        bounce=bounce,
        problems=tuple(problems),
        from_count=sender.count,
        from_problem=sender.problem,
        reply_to=reply_to,
        part_types=tuple(part_types),
        header_names=tuple(names),
        itip=itip,
        forwarded=forwarded if report_type is None else (),
        unreadable=why_unreadable,
    )


def _forwarded(part: Message) -> Forwarded | None:
    payload = _payload(part)
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        return None
    sender = clean_header(decode_header_value(inner.get("From")))[:200]
    subject = clean_header(decode_header_value(inner.get("Subject")))[:300]
    return Forwarded(sender, subject) if sender or subject else None


# What a template writes in the plain part of an HTML mail for clients that show no HTML.
_PLAIN_PLACEHOLDER = re.compile(
    r"enable html|html (version|format|e-?mail)|view (this|the) (e-?mail|message|newsletter) (in|online|as)"
    r"|(does not|doesn't|cannot|can't) (support|display|show) html|to view this (e-?mail|message)"
    r"|(此|本)(邮件|郵件)为\s*html|支持\s*html|html\s*(格式|形式)",
    re.I,
)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def plain_falls_short(plain: str, html_text: str) -> bool:
    """In a `multipart/alternative`, the plain part is read unless it is not the same mail as the
    HTML part that the person's client showed (and the agent's shows): a placeholder ("enable
    HTML to read this message"), or a text that lacks most of the HTML's words — then a reader of
    the plain part alone would answer something the person never saw, or miss what they wrote."""
    html_words = _words(html_text)
    plain_words = _words(plain)
    if not html_words:
        return False
    if len(plain_words) < 40 and _PLAIN_PLACEHOLDER.search(plain):
        return True
    seen = set(plain_words)
    missing = sum(1 for w in html_words if w not in seen)
    return len(html_words) >= 8 and missing * 2 > len(html_words)


def _itip(msg: Message) -> Itip | None:
    """The first calendar part's iTIP facts (an inline `text/calendar` or an attached `.ics`)."""
    for part in _walk(msg):
        name = (_filename(part) or "").lower()
        if part.get_content_type() in CALENDAR_TYPES or (name.endswith(".ics") and not part.is_multipart()):
            method = part.get_param("method")
            text, _ = _part_text(part)
            return read_itip(text, method if isinstance(method, str) else None)
    return None


def _collect_attachments(msg: Message, body_parts: set[int], out: list[RawAttachment], problems: list[str]) -> None:
    for i, part in enumerate(_leaves(msg)):
        if id(part) in body_parts:
            continue
        ct = part.get_content_type()
        name = _filename(part) or ""
        disp = part.get_content_disposition()
        if ct in ("text/plain", "text/html") and not name and disp != "attachment":
            continue  # the other half of an alternative, or an inline text fragment
        if ct.startswith("multipart/") or ct in (
            "message/delivery-status", "text/rfc822-headers", "message/global-delivery-status"
        ):
            continue
        try:
            data = _rfc822_bytes(part) if ct == "message/rfc822" else part.get_payload(decode=True)
        except (ValueError, LookupError, TypeError, IndexError, UnicodeError, AssertionError) as e:
            problems.append(f"attachment {i}: {type(e).__name__}")
            continue
        if not isinstance(data, bytes):
            data = b""
        ext = ".eml" if ct == "message/rfc822" else ""
        out.append(RawAttachment(name or f"attachment-{len(out) + 1}{ext}", ct, data))


def parse_headers_only(raw: bytes) -> ParsedMail:
    """For a mail too large to download: the same fields from its header block, no body."""
    return parse_mail(raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
