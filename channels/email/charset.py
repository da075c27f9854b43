"""Bytes of a mail → text, whatever the sender's client did with charsets.

Order of trust: the charset the part declares (widened to the superset clients really mean:
"GB2312" → GB18030, "Big5" → Big5-HKSCS, "ISO-8859-1" → CP1252), then UTF-8, then UTF-8 with a
few bad bytes replaced (one broken byte must not turn a UTF-8 body into something else), then
a detector (`charset-normalizer`) — but a Chinese (or other CJK) reading is accepted only when
the bytes *look* like CJK text: in Latin-1/CP1252 text every accented letter is one high byte
followed by an ASCII letter, which GB18030 happily reads as a two-byte character ("Frösche" →
"Fr鰏che"). Real GB/Big5 text has mostly high trail bytes. Whatever is chosen decodes with
replacement characters: this module never raises.

Headers: RFC 2047 encoded words are decoded here too (not with `email.header`, which turns raw
8-bit bytes inside or around a word into literal `\\uXXXX` escapes), and control characters
(NUL …) are removed from every decoded header.
"""

from __future__ import annotations

import base64
import binascii
import re

from charset_normalizer import from_bytes

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
    "latin-1": "cp1252",
    "us-ascii": "utf-8",  # 8-bit text labelled ASCII is nearly always UTF-8
    "ascii": "utf-8",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    # Microsoft's ISO-2022-JP (Outlook, Windows): also the NEC and IBM characters of CP932 (①, ㈱, ～).
    "iso-2022-jp-ms": "iso2022_jp_ms",
    "cp50220": "iso2022_jp_ms",
    "cp50221": "iso2022_jp_ms",
    "cp50222": "iso2022_jp_ms",
    "csiso2022jp": "iso2022_jp_ms",
}
ZH_CHARSETS = ("gb18030", "hz", "big5hkscs", "cp950")
_CJK_CODECS = re.compile(r"^(gb|big5|hz|cp93[26]|cp94[9]|cp950|shift_?jis|euc|iso2022|johab|ms9|x-)", re.I)
_DETECT_MAX = 64 * 1024  # the detector reads a sample; enough to decide, cheap on huge bodies


def codec_for(charset: str | None) -> str | None:
    """The codec to decode a declared `charset` with (widened, lower-case), or None."""
    if not charset:
        return None
    cs = charset.strip().strip('"').strip("'").lower()
    if not cs.isprintable() or len(cs) > 64:
        return None
    return CHARSET_ALIASES.get(cs, cs) or None


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError, ValueError):  # ValueError: a NUL in the label
        return None


def _mostly_utf8(data: bytes) -> bool:
    """Valid multi-byte UTF-8 sequences clearly outnumber the invalid bytes: a UTF-8 text with a
    broken byte or two (a truncated line, a stray Latin-1 byte)."""
    good = len(re.findall(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}", data))
    if good == 0:
        return False
    bad = data.decode("utf-8", errors="replace").count("\ufffd") - data.count(b"\xef\xbf\xbd")
    return bad <= max(1, good // 4)


def _is_cjk_char(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FA1F
        or 0x3000 <= o <= 0x30FF  # CJK punctuation, hiragana, katakana
        or 0xFF01 <= o <= 0xFF5E  # full-width forms (，：！)
        or 0xAC00 <= o <= 0xD7AF  # Hangul
    )


def looks_cjk(data: bytes, text: str) -> bool:
    """Whether a CJK reading of `data` is plausible: most double-byte pairs have a high trail byte
    (Latin-1 text read as GB has an ASCII letter after nearly every high byte) and most of the
    non-ASCII characters it gives are CJK."""
    pairs = ascii_trail = 0
    i, n = 0, len(data)
    while i < n:
        if data[i] >= 0x81:
            pairs += 1
            if i + 1 < n and data[i + 1] < 0x80:
                ascii_trail += 1
            i += 2
        else:
            i += 1
    if pairs == 0 or ascii_trail * 2 > pairs:
        return False
    non_ascii = [ch for ch in text if not ch.isascii()]
    cjk = sum(1 for ch in non_ascii if _is_cjk_char(ch))
    return cjk * 10 >= len(non_ascii) * 8


_LATIN_SINGLE_BYTE = re.compile(r"^(cp125[02347]|iso8859_(1|2|3|4|9|10|13|14|15|16)|latin_1|mac_(roman|latin2|iceland)"
                                r"|cp850|cp437|windows-125[02347]|iso-8859-(1|2|3|4|9|10|13|14|15|16))$")
_SHORT = 16  # fewer high bytes than this: too little for a statistical detector
_WIDE = re.compile(r"^utf[-_]?(16|32)")
# Charsets that write non-ASCII text in 7-bit bytes (escape sequences, "~{…~}", "+…-"): ASCII-only
# data in one of them still has to be decoded with it.
_SEVEN_BIT = re.compile(r"^(iso[-_]?2022|csiso2022|hz|utf[-_]?7)")


def _detect(data: bytes) -> str:
    """The detector's best reading that is not a false CJK one. Among the Latin single-byte
    code pages the detector cannot tell apart on a few accents, CP1252 (Western Europe) is taken;
    CP1252 also when nothing fits."""
    sample = data[:_DETECT_MAX]
    try:
        matches = list(from_bytes(sample))
    except (ValueError, LookupError, RuntimeError):  # a detector bug must not lose the mail
        matches = []
    for m in matches:
        codec = codec_for(m.encoding) or "utf-8"
        if _WIDE.match(codec) and b"\x00" not in sample:
            continue  # UTF-16/32 without a single NUL: two 8-bit bytes read as one character
        text = _strict(sample, codec)
        if text is None:
            continue
        if _CJK_CODECS.match(codec) and not looks_cjk(sample, text):
            continue
        if _LATIN_SINGLE_BYTE.match(codec) and _strict(sample, "cp1252") is not None:
            return "cp1252"
        return codec
    return "cp1252"


def _common_hanzi(data: bytes, codec: str) -> bool:
    """Short unlabelled text read as Chinese only when most double-byte characters are common
    ones (GB2312 level 1: lead bytes B0–D7; Big5 frequent: A4–C6) — Cyrillic or Greek in a
    single-byte code page falls mostly outside."""
    lo, hi = (0xB0, 0xD7) if codec == "gb18030" else (0xA4, 0xC6)
    leads = common = 0
    i = 0
    while i < len(data):
        if data[i] >= 0x81:
            leads += 1
            common += (lo <= data[i] <= hi) or (0xA1 <= data[i] <= 0xA3)  # + CJK punctuation
            i += 2
        else:
            i += 1
    return leads > 0 and common * 10 >= leads * 8


def _cjk_ratio_ok(text: str) -> bool:
    non_ascii = [ch for ch in text if not ch.isascii()]
    return bool(non_ascii) and sum(1 for ch in non_ascii if _is_cjk_char(ch)) * 10 >= len(non_ascii) * 8


def _short_guess(data: bytes) -> str:
    """A few 8-bit bytes with no usable label (a raw header, a one-line body): too little for a
    statistical detector. Chinese when the bytes have its shape (unlabelled Chinese is the most
    common unlabelled 8-bit text a support desk here receives); Cyrillic CP1251 when the high
    bytes come in runs (words) of letters; else CP1252, where an accented letter is one high
    byte between ASCII letters."""
    if (text := _strict(data, "gb18030")) is not None and looks_cjk(data, text) and _common_hanzi(data, "gb18030"):
        return text
    if (text := _strict(data, "big5hkscs")) is not None and _cjk_ratio_ok(text) and _common_hanzi(data, "big5hkscs"):
        return text
    runs = [len(r) for r in re.findall(rb"[\x80-\xff]+", data)]
    if runs and sum(runs) / len(runs) >= 2.5 and sum(1 for b in data if b >= 0xC0) * 10 >= sum(runs) * 8:
        return data.decode("cp1251", errors="replace")
    return data.decode("cp1252", errors="replace")


_JIS_ESCAPE = re.compile(rb"\x1b(\(B|\(J|\(I|\$@|\$B)")


def iso2022jp_ms(data: bytes) -> str | None:
    """ISO-2022-JP as Windows writes it (CP50220/50221/50222): the JIS X 0208 code space also holds
    CP932's extensions (circled numbers ①, ㈱, NEC and IBM kanji), which Python's ISO-2022-JP codecs
    refuse. Each two-byte segment is turned into its Shift_JIS bytes and the whole read as CP932.
    None when the data uses other escapes (JIS X 0212, ISO-2022-JP-2's charsets) or is not valid."""
    out = bytearray()
    mode = "ascii"
    pos = 0
    for m in [*_JIS_ESCAPE.finditer(data), None]:
        end = m.start() if m else len(data)
        chunk = data[pos:end]
        if b"\x1b" in chunk:
            return None  # an escape this reading does not know
        chunk = bytes(b for b in chunk if b not in (0x0E, 0x0F))  # SO/SI around katakana (CP50222)
        if mode == "ascii":
            out += chunk
        elif mode == "kana":
            out += bytes(b + 0x80 if 0x21 <= b <= 0x5F else b for b in chunk)
        else:
            text = re.sub(rb"[\r\n]", b"", chunk)
            if len(text) % 2:
                return None
            for j1, j2 in zip(text[::2], text[1::2], strict=True):
                if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
                    return None
                s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
                s2 = j2 + 0x7E if j1 % 2 == 0 else j2 + 0x1F + (j2 >= 0x60)
                out += bytes([s1, s2])
        if m is None:
            break
        esc = m.group(1)
        mode = "kana" if esc == b"(I" else "jis" if esc.startswith(b"$") else "ascii"
        pos = m.end()
    return _strict(bytes(out), "cp932")


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode `data` labelled `charset`, never raising (see the module docstring for the order)."""
    codec = codec_for(charset)
    if data.isascii():
        if codec and _SEVEN_BIT.match(codec) and (text := _strict(data, codec)) is not None:
            return text
        if b"\x1b$" in data and (text := _strict(data, "iso2022_jp_ext")) is not None:
            return text  # unlabelled ISO-2022-JP (escape sequences: nothing else has them)
        if b"\x1b$" in data and (text := iso2022jp_ms(data)) is not None:
            return text  # Windows' ISO-2022-JP, labelled or not, with its CP932 characters
        return data.decode("ascii")
    if codec and (text := _strict(data, codec)) is not None:
        if not _CJK_CODECS.match(codec) or codec in ZH_CHARSETS or looks_cjk(data, text):
            return text
    if (text := _strict(data, "utf-8")) is not None:
        return text
    if _mostly_utf8(data):
        return data.decode("utf-8", errors="replace")
    high = sum(1 for b in data if b >= 0x80)
    if high < _SHORT:
        return _short_guess(data)
    guess = _detect(data)
    try:
        return data.decode(guess, errors="replace")
    except (LookupError, ValueError):
        return data.decode("cp1252", errors="replace")


# -- headers ----------------------------------------------------------------------------------------

# Control characters (C0 but tab/newline, DEL, C1) and bidi overrides never belong in a header.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_ENCODED_WORD = re.compile(rb"=\?([^?\s]{1,64})\?([bBqQ])\?([^?]*?)\?=")
_BETWEEN_WORDS = re.compile(rb"^[ \t\r\n]*$")


def _word_bytes(enc: bytes, payload: bytes) -> bytes | None:
    if enc in (b"b", b"B"):
        payload = re.sub(rb"[^A-Za-z0-9+/]", b"", payload)
        payload += b"=" * (-len(payload) % 4)
        try:
            return base64.b64decode(payload)
        except (binascii.Error, ValueError):
            return None
    # Q: "_" is a space, =XX a byte; raw 8-bit bytes some clients put inside are kept as bytes.
    payload = payload.replace(b"_", b" ")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), payload)


def decode_header_bytes(raw: bytes) -> str:
    """A header value's bytes → text: encoded words in their charset (RFC 2231 language suffix
    ignored), adjacent words joined, and the raw 8-bit text around them decoded on its own."""
    out: list[str] = []
    pos = 0
    pending: list[tuple[bytes, str | None]] = []  # consecutive words of one charset decode together

    def flush() -> None:
        if pending:
            cs = pending[0][1]
            out.append(decode_bytes(b"".join(b for b, _ in pending), cs))
            pending.clear()

    for m in _ENCODED_WORD.finditer(raw):
        between = raw[pos : m.start()]
        data = _word_bytes(m.group(2), m.group(3))
        if data is None:  # not decodable: keep the word as written
            continue
        cs = m.group(1).decode("ascii", "replace").split("*", 1)[0].lower()
        if not (pending and _BETWEEN_WORDS.match(between)):  # RFC 2047 §6.2: space between words is dropped
            flush()
            out.append(decode_bytes(between, None))
        if pending and pending[0][1] != cs:
            flush()
        pending.append((data, cs))
        pos = m.end()
    flush()
    out.append(decode_bytes(raw[pos:], None))
    return clean_header("".join(out))


def clean_header(value: str) -> str:
    """Unfolded onto one line, control characters removed, outer whitespace trimmed."""
    value = re.sub(r"\s*[\r\n]+\s*", " ", value)
    return CONTROL.sub("", value.replace("\t", " ")).strip()


def decode_header_value(raw: str | None) -> str:
    """A header's value as the stdlib parser keeps it (raw 8-bit bytes as surrogate escapes) →
    text. See `decode_header_bytes`."""
    if raw is None:
        return ""
    return decode_header_bytes(str(raw).encode("utf-8", "surrogateescape"))
