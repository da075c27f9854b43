"""Raw RFC 5322 bytes → `ParsedMail`: headers, sender, thread ids, body text, attachments.

Mail in the wild is messy, so every step degrades instead of failing:
- the standard library's modern parser (`policy.default`) splits the MIME tree, but we decode
  text ourselves with a charset map that widens the usual mislabels (a "GB2312" body with GBK-only
  characters decodes as GB18030, "Big5" as Big5-HKSCS, "ISO-8859-1" as CP1252) and falls back to
  guessing, so a Chinese mail never turns into mojibake or an exception;
- headers are decoded from their raw form (RFC 2047 words in any charset, and raw 8-bit headers
  some clients send), because the library's own decoding replaces what it cannot read;
- HTML-only mail is turned into text with `html.parser` (no third-party HTML stack);
- for the NLU, quoted replies and signatures are cut (`strip_reply`): the router should classify
  what the user wrote now, not our previous answer quoted below it. The full text is kept too —
  the ticket gets it (see `EmailChannel`).
"""

from __future__ import annotations

import email
import email.header
import email.utils
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from html.parser import HTMLParser

# -- charsets ---------------------------------------------------------------------------------------

# Labels mail clients get wrong, mapped to the superset that decodes what they really sent.
CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "utf-8",  # 8-bit text labelled ASCII is nearly always UTF-8
    "ascii": "utf-8",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}
# Tried in order when the label is missing, unknown or wrong.
GUESSES = ("utf-8", "gb18030", "big5hkscs")
ZH_CHARSETS = ("gb18030", "hz", "big5hkscs", "cp950")


def codec_for(charset: str | None) -> str | None:
    if not charset:
        return None
    cs = charset.strip().strip('"').lower()
    return CHARSET_ALIASES.get(cs, cs)


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode `data` labelled `charset`, never raising: the label (widened), then UTF-8, GB18030
    and Big5-HKSCS strictly, then the label (or UTF-8) with replacement characters."""
    codec = codec_for(charset)
    tried: list[str] = []
    for c in ((codec,) if codec else ()) + GUESSES:
        if c in tried:
            continue
        tried.append(c)
        try:
            return data.decode(c)
        except (UnicodeDecodeError, LookupError):
            continue
    try:
        return data.decode(codec or "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _has_surrogates(s: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in s)


def decode_header_value(raw: str | None) -> str:
    """A header's raw value → text: RFC 2047 encoded words in any charset, raw 8-bit bytes
    (which the parser keeps as surrogate escapes) guessed as UTF-8/GB18030/Big5."""
    if raw is None:
        return ""
    value = str(raw)
    if _has_surrogates(value):
        value = decode_bytes(value.encode("ascii", "surrogateescape"), None)
    if "=?" not in value:
        return _unfold(value)
    try:
        chunks = email.header.decode_header(value)
    except (email.errors.HeaderParseError, ValueError, LookupError, AssertionError):
        return _unfold(value)
    out: list[str] = []
    for chunk, cs in chunks:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, cs))
        else:
            out.append(chunk)
    return _unfold("".join(out))


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
    """(display name, lower-cased address) of the first mailbox in an address header."""
    try:
        pairs = email.utils.getaddresses([value])
    except (ValueError, IndexError, TypeError):
        pairs = []
    for name, addr in pairs:
        addr = addr.strip()
        if "@" in addr and " " not in addr and len(addr) <= 254:  # RFC 5321 path limit
            return name.strip(), addr.lower()
    return "", None


# -- HTML → text ------------------------------------------------------------------------------------

_BLOCK = frozenset(
    "p div br li ul ol tr table h1 h2 h3 h4 h5 h6 hr pre section article header footer "
    "blockquote address dd dt dl form fieldset center".split()
)
_PARAGRAPH = frozenset("p blockquote h1 h2 h3 h4 h5 h6 table ul ol pre hr".split())
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})


class _HTMLText(HTMLParser):
    """Just enough layout to read a mail: blocks and <br> become line breaks, list items get a
    bullet, <blockquote> content is prefixed "> " (so the quote stripper treats it as quoted)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.skip = 0
        self.quote = 0
        self.pre = 0

    def _break(self, blank: bool = False) -> None:
        """End the current line; `blank` also leaves an empty line (paragraph-like blocks)."""
        if self.lines[-1].strip():
            self.lines.append("")
        else:
            self.lines[-1] = ""
        if blank and len(self.lines) > 1 and self.lines[-2].strip():
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
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

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr", "p", "div"):
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _BLOCK and tag != "br":
            self._break(blank=tag in _PARAGRAPH)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            data = re.sub(r"[ \t\r\n\f\u00a0]+", " ", data)
            if not self.lines[-1].strip():
                data = data.lstrip()
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


def html_to_text(html: str) -> str:
    p = _HTMLText()
    try:
        p.feed(html)
        p.close()
    except (AssertionError, ValueError):  # html.parser gives up on some broken markup
        pass
    return p.text()


# -- quoted replies and signatures ------------------------------------------------------------------

_ATTRIBUTION = [
    re.compile(r"^\s*On\b.{0,400}\bwrote:\s*$", re.I | re.S),
    re.compile(r"^\s*在.{0,300}(写道|寫道)\s*[:：]?\s*$", re.S),
    re.compile(r"^\s*.{0,300}\d{4}.{0,100}(写道|寫道)\s*[:：]\s*$", re.S),
    re.compile(r"^\s*Am\b.{0,300}\bschrieb\b.{0,200}:\s*$", re.I | re.S),
    re.compile(r"^\s*Le\b.{0,300}\ba écrit\s*:\s*$", re.I | re.S),
]
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(original message|原始邮件|原始郵件|原邮件|回复的原邮件)\s*-{2,}\s*$"
    r"|^\s*-{5,}\s*(原始邮件|原始郵件)\s*-{5,}\s*$"
    r"|^\s*_{10,}\s*$",
    re.I,
)
_FORWARD = re.compile(r"^\s*-{2,}\s*(forwarded message|转发的邮件|轉寄的郵件|转发邮件)\s*-{2,}\s*$", re.I)
_HEADER_FROM = re.compile(r"^\s*\*?(From|发件人|發件人|寄件者)\s*\*?\s*[:：]", re.I)
_HEADER_NEXT = re.compile(
    r"^\s*\*?(Sent|Date|To|Subject|Cc|发送时间|時間|时间|日期|收件人|主题|主旨|寄件日期)\s*\*?\s*[:：]", re.I
)
_MOBILE_SIG = re.compile(
    r"^\s*(sent from my \w+( \w+)?|sent from (mail|outlook) for \w+|get outlook for \w+|sent from yahoo mail.*"
    r"|发自我的\s?\w+|從我的\s?\w+\s?傳送|从我的\s?\w+\s?发送|发自网易邮箱.*|来自\s?\w+\s?的邮件)\s*$",
    re.I,
)


def _is_header_block(lines: list[str], i: int) -> bool:
    if not _HEADER_FROM.match(lines[i]):
        return False
    nxt = [ln for ln in lines[i + 1 : i + 6] if ln.strip()]
    return sum(1 for ln in nxt if _HEADER_NEXT.match(ln)) >= 2


def _is_attribution(lines: list[str], i: int) -> bool:
    line = lines[i].lstrip("> ").strip()
    if not line:
        return False
    candidates = [line]
    if i + 1 < len(lines):
        candidates.append(line + " " + lines[i + 1].lstrip("> ").strip())
    return any(p.match(c) for p in _ATTRIBUTION for c in candidates)


def strip_reply(text: str) -> str:
    """What the user wrote this time: cut at the first reply attribution ("On … wrote:",
    "在 … 写道："), an "Original Message" separator, an Outlook header block or the signature
    delimiter; drop ">"-quoted lines. Returns "" when nothing is left (callers fall back)."""
    lines = text.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith(">"):
            continue
        if line.rstrip("\r") in ("-- ", "--") or _MOBILE_SIG.match(s):
            break
        if _SEPARATOR.match(line) or _FORWARD.match(line) or _is_attribution(lines, i) or _is_header_block(lines, i):
            break
        out.append(line.rstrip())
    result = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", result).strip()


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

    def header(self, name: str) -> str:
        vals = self.headers.get(name.lower())
        return vals[0] if vals else ""

    def has(self, name: str) -> bool:
        return name.lower() in self.headers


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(text: str) -> str:
    """Line ends normalised, control characters (NUL breaks PostgreSQL text) removed."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _raw_text_fallback(raw: bytes) -> str:
    sep = raw.find(b"\r\n\r\n")
    sep, skip = (sep, 4) if sep >= 0 else (raw.find(b"\n\n"), 2)
    payload = raw[sep + skip :] if sep >= 0 else raw
    lines = decode_bytes(payload, None).splitlines()
    keep = [ln for ln in lines if not ln.startswith("--") and not re.match(r"^[A-Za-z-]+:\s", ln)]
    return "\n".join(keep)


def _part_text(part: Message) -> tuple[str, str | None]:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = str(part.get_payload() or "").encode("utf-8", "surrogateescape")
    cs = part.get_content_charset()
    return decode_bytes(payload, cs), codec_for(cs)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, LookupError, TypeError, IndexError):
        name = None
    if name is None:
        raw = part.get_param("name", header="content-type")
        name = raw if isinstance(raw, str) else None
    return decode_header_value(name) if name else None


def _leaves(part: Message) -> Iterator[Message]:
    """Leaf parts in order; a message/rfc822 part (a forwarded mail) is one leaf, not descended."""
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        yield part
        return
    payload = part.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                yield from _leaves(sub)


def _rfc822_bytes(part: Message) -> bytes:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, Message):
        try:
            return inner.as_bytes(policy=policy.default.clone(linesep="\r\n"))
        except (ValueError, LookupError, TypeError, UnicodeError, IndexError):
            return inner.as_string().encode("utf-8", "replace")
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _parse_bounce(msg: Message) -> Bounce:
    recipients: list[str] = []
    status = action = diagnostic = ""
    original: str | None = None
    for part in msg.walk():
        ct = part.get_content_type()
        if ct in ("message/delivery-status", "message/global-delivery-status"):
            blocks = part.get_payload()
            if not isinstance(blocks, list):
                blocks = [email.message_from_string(str(blocks), policy=policy.compat32)]
            for b in blocks:
                if not isinstance(b, Message):
                    continue
                fr = b.get("Final-Recipient") or b.get("Original-Recipient")
                if fr:
                    recipients.append(str(fr).split(";", 1)[-1].strip().lower())
                status = status or str(b.get("Status") or "").strip()
                action = action or str(b.get("Action") or "").strip().lower()
                diagnostic = diagnostic or _unfold(str(b.get("Diagnostic-Code") or ""))[:300]
        elif ct in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers") and original is None:
            if ct == "message/rfc822":
                inner = part.get_payload()
                hdrs = inner[0] if isinstance(inner, list) and inner else None
            else:
                text, _ = _part_text(part)
                hdrs = email.message_from_string(text, policy=policy.compat32)
            if isinstance(hdrs, Message):
                ids = msg_ids(str(hdrs.get("Message-ID") or ""))
                original = ids[0] if ids else None
    return Bounce(tuple(dict.fromkeys(recipients)), status, action, diagnostic, original)


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one mail. Never raises for malformed MIME; what could not be read is listed in
    `problems` (the channel writes it into the ticket's copy of the mail)."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    problems: list[str] = [type(d).__name__ for d in msg.defects][:10]
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), []).append(decode_header_value(value))

    def h(name: str) -> str:
        vals = headers.get(name)
        return vals[0] if vals else ""

    from_name, from_addr = first_address(h("from"))
    own_ids = msg_ids(h("message-id"))
    content_type = msg.get_content_type()
    rt = msg.get_param("report-type") if content_type == "multipart/report" else None
    report_type = rt if isinstance(rt, str) else None

    plain_part: Message | None = None
    html_part: Message | None = None
    try:
        plain_part = msg.get_body(preferencelist=("plain",))
        html_part = msg.get_body(preferencelist=("html",))
    except (ValueError, LookupError, TypeError, IndexError, AttributeError, KeyError) as e:
        problems.append(f"body: {type(e).__name__}")

    body = ""
    charsets: list[str] = []
    if plain_part is not None:
        body, cs = _part_text(plain_part)
        charsets.append(cs or "")
    if not body.strip() and html_part is not None:
        html, cs = _part_text(html_part)
        charsets.append(cs or "")
        body = html_to_text(html)
    if not body.strip() and plain_part is None and html_part is None and problems:
        # Broken structure (no boundary, truncated parts): read what text there is.
        body = _raw_text_fallback(raw)
        problems.append("body read from the raw message")
    body = _clean(body)

    attachments: list[RawAttachment] = []
    body_parts = {id(p) for p in (plain_part, html_part) if p is not None}
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
        except (ValueError, LookupError, TypeError, IndexError, UnicodeError) as e:
            problems.append(f"attachment {i}: {type(e).__name__}")
            continue
        if not isinstance(data, bytes):
            data = b""
        ext = ".eml" if ct == "message/rfc822" else ""
        attachments.append(RawAttachment(name or f"attachment-{len(attachments) + 1}{ext}", ct, data))

    lang_hint: str | None = None
    content_language = h("content-language").lower()
    if content_language.startswith("zh") or any(c in ZH_CHARSETS for c in charsets):
        lang_hint = "zh"
    elif content_language.startswith("en"):
        lang_hint = "en"

    bounce = _parse_bounce(msg) if report_type and report_type.lower() == "delivery-status" else None
    return ParsedMail(
        message_id=own_ids[0] if own_ids else None,
        in_reply_to=msg_ids(h("in-reply-to")),
        references=msg_ids(h("references")),
        subject=h("subject"),
        from_name=from_name,
        from_addr=from_addr,
        headers={k: tuple(v) for k, v in headers.items()},
        body=body,
        stripped=strip_reply(body),
        attachments=tuple(attachments),
        lang_hint=lang_hint,
        content_type=content_type,
        report_type=report_type.lower() if report_type else None,
        bounce=bounce,
        problems=tuple(problems),
    )


def parse_headers_only(raw: bytes) -> ParsedMail:
    """For a mail too large to download: the same fields from its header block, no body."""
    return parse_mail(raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
