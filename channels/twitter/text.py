"""Text rules of X, as pure functions: how X counts a post's length, how an answer is shortened
for a public reply, how a long answer is split into DMs, and how a mention loses its @handles.

Why our own counter: X does not count characters. It weighs them (twitter-text v3 config): code
points in U+0000–U+10FF and three ranges of general punctuation weigh 1, everything else (CJK,
emoji, …) 2; an emoji sequence (a flag, a skin tone, a family joined with ZWJ) weighs 2 as one;
and every URL counts 23 (it is wrapped in t.co) — also a bare domain with a known top-level
domain ("example.com/fees"), and a URL ends where X's URL pattern ends it (not at the next space:
"详情见 https://example.com/faq。请…" is a URL and eleven CJK characters). A 200-character Chinese
answer is 400 on X and would be refused, so shortening must use the same weights. The maintained
ports of twitter-text for Python are not: `twitter-text-parser` (last release 2023) imports
`pkg_resources` and carries Unicode 12 emoji and a 2019 TLD list; the rules below follow
twitter-text's `parseTweet` and `extractUrls`, with the top-level domains taken from the Public
Suffix List the project already ships (`publicsuffixlist`).
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata

import regex

URL_WEIGHT = 23
# twitter-text v3: code point ranges of weight 1 (scaled 100); everything else weighs 2 (200).
_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
ELLIPSIS = "…"

# A sentence ends at .!?: followed by whitespace, right after a CJK full stop, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?:])[ \t]+|(?<=[。！？；：])[ \t]*|[ \t]*\n\s*")
# Units that may not be cut: a run of non-space non-CJK characters (a word, a number, a URL),
# a single CJK character, or whitespace.
_TOKEN = re.compile(r"\s+|[^\s\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+|.", re.S)
# X handles are ASCII: "@ExchangeSupport你好" must lose the handle, not the Chinese.
LEADING_MENTIONS = re.compile(r"^(?:[\s.]*@[A-Za-z0-9_]{1,15}(?![A-Za-z0-9_])[,:，：]?)+\s*")


def _char_weight(ch: str) -> int:
    o = ord(ch)
    for lo, hi in _LIGHT_RANGES:
        if lo <= o <= hi:
            return 1
    return 2


@functools.cache
def _tlds() -> str:
    """The top-level domains (ICANN section of the Public Suffix List), longest first, as one
    alternation: X counts "example.com" as a URL and "example.zzz" as text."""
    import publicsuffixlist

    path = os.path.join(os.path.dirname(publicsuffixlist.__file__), "public_suffix_list.dat")
    with open(path, encoding="utf-8") as f:
        icann = f.read().split("===END ICANN DOMAINS===")[0]
    tlds = {line.strip().lstrip("!*.").rsplit(".", 1)[-1] for line in icann.splitlines()
            if line.strip() and not line.startswith("//")}
    return "|".join(regex.escape(t) for t in sorted(tlds, key=lambda t: (-len(t), t)))


# twitter-text's URL pattern (extractUrls), pieces named as there.
_PUNCT = r"!'#%&()*+,\\\-./:;<=>?@\[\]^_{|}~$"
_SPACES = r"\x09-\x0D\x20\x85\xA0\u1680\u180E\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
_INVALID = r"\uFFFE\uFEFF\uFFFF"
_DIRECTIONAL = r"\u202A-\u202E\u061C\u200E\u200F\u2066-\u2069"
_LATIN = r"\xC0-\xD6\xD8-\xF6\xF8-\xFF\u0100-\u024F\u0253\u0254\u0256\u0257\u0259\u025B\u0263\u0268\u026F\u0272" \
         r"\u0289\u028B\u02BB\u0300-\u036F\u1E00-\u1EFF"
_CYRILLIC = r"\u0400-\u04FF"


@functools.cache
def _url_pattern() -> regex.Pattern[str]:
    dc = f"[^{_PUNCT}{_SPACES}{_INVALID}{_DIRECTIONAL}]"  # a domain character: CJK and accents too
    tld = f"(?:(?:{_tlds()})(?=[^0-9a-zA-Z@+-]|$)|xn--[-0-9a-z]+)"
    domain = f"(?:(?:(?:{dc}(?:[_-]|{dc})*)?{dc}\\.)*(?:(?:{dc}(?:-|{dc})*)?{dc}\\.){tld})"
    path_char = f"[a-z{_CYRILLIC}0-9!*';:=+,.$/%#\\[\\]\\-\u2013_~@|&{_LATIN}]"
    parens = f"\\((?:{path_char}+|(?:{path_char}*\\({path_char}+\\){path_char}*))\\)"
    path_end = f"(?:[+\\-a-z{_CYRILLIC}0-9=_#/{_LATIN}]|{parens})"
    path = f"(?:(?:{path_char}*(?:{parens}{path_char}*)*{path_end})|(?:@{path_char}+/))"
    query = r"\?[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]*[a-z0-9\-_&=#/]"
    return regex.compile(
        # The character before a URL is part of the match, as in twitter-text (a URL right after
        # another starts one character later).
        f"(?P<before>[^A-Za-z0-9@＠$#＃{_INVALID}]|[{_DIRECTIONAL}]|^)"
        f"(?P<url>(?P<protocol>https?://)?(?P<domain>{domain})(?::[0-9]+)?(?P<path>/{path}*)?(?:{query})?)",
        regex.I | regex.V0,
    )


_ASCII_DOMAIN = f"(?:[-a-z0-9{_LATIN}]+\\.)+"
_TCO = regex.compile(r"https?://t\.co/[a-z0-9]+", regex.I)


@functools.cache
def _ascii_domain() -> regex.Pattern[str]:
    return regex.compile(f"{_ASCII_DOMAIN}(?:(?:{_tlds()})(?=[^0-9a-zA-Z@+-]|$)|xn--[-0-9a-z]+)", regex.I)


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every URL X finds in `text` (twitter-text `extractUrlsWithIndices`): with a
    protocol any valid domain; without one only an ASCII domain with a known top-level domain,
    not right after "-", "_", "." or "/"; a t.co link ends after its slug."""
    if "." not in text:
        return []
    out: list[tuple[int, int]] = []
    for m in _url_pattern().finditer(text):
        start, end = m.span("url")
        if m.group("protocol") is None:
            if m.group("before") in ("-", "_", ".", "/"):
                continue
            dstart = m.start("domain")
            last: tuple[int, int] | None = None
            for d in _ascii_domain().finditer(m.group("domain")):
                last = (dstart + d.start(), dstart + d.end())
                out.append(last)
            if last is not None and m.group("path"):
                out[-1] = (last[0], end)
        else:
            tco = _TCO.match(text, start)
            out.append((start, tco.end() if tco else end))
    return out


_GRAPHEME = regex.compile(r"\X")
# A cluster X counts as one emoji (weight 2): a pictograph with modifiers, variation selector or
# ZWJ partners, a flag (two regional indicators), a keycap.
_EMOJI_SEQUENCE = regex.compile(r"\p{Extended_Pictographic}|[\U0001F1E6-\U0001F1FF]{2}|\u20E3")


def _text_weight(text: str) -> int:
    n = 0
    for m in _GRAPHEME.finditer(text):
        g = m.group()
        n += 2 if len(g) > 1 and _EMOJI_SEQUENCE.search(g) else sum(_char_weight(c) for c in g)
    return n


def weighted_length(text: str) -> int:
    """The length X computes for a post (twitter-text v3 `parseTweet`): NFC-normalized, every URL
    23, an emoji sequence 2, other code points 1 or 2 by range."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n")
    n = 0
    pos = 0
    for start, end in url_spans(text):
        n += _text_weight(text[pos:start]) + URL_WEIGHT
        pos = end
    return n + _text_weight(text[pos:])


# What a user shows us (a quoted or replied-to post) is cut to this many characters.
def strip_leading_mentions(text: str) -> str:
    """'@support @alice how do I deposit?' → 'how do I deposit?'. Handles later in the text stay:
    they may be part of what the user asks ("is @fake_support yours?")."""
    return LEADING_MENTIONS.sub("", text, count=1).strip()


def _sentences(text: str) -> list[tuple[str, str]]:
    """(sentence, separator before it) pairs; the separator is '', ' ' or '\\n'."""
    out: list[tuple[str, str]] = []
    pos = 0
    sep = ""
    for m in _SENTENCE_END.finditer(text):
        chunk = text[pos : m.start()].strip()
        raw = m.group()
        if chunk:
            out.append((chunk, sep))
            sep = ""
        if "\n" in raw:
            sep = "\n"
        elif raw and sep != "\n":
            sep = " "
        pos = m.end()
    tail = text[pos:].strip()
    if tail:
        out.append((tail, sep))
    return out


def _cut_words(text: str, budget: int) -> str:
    """The longest prefix of whole words (whole CJK characters) that fits `budget` with an
    ellipsis; never ends inside a word, a number or a URL."""
    kept = ""
    for tok in _TOKEN.findall(text):
        cand = kept + tok
        if weighted_length(cand.rstrip() + ELLIPSIS) > budget:
            break
        kept = cand
    kept = kept.rstrip()
    if not kept:
        # One "word" longer than the whole budget (a pasted hash, a run of letters) is not a
        # word a reader could lose; cut it by characters rather than post nothing.
        for ch in text:
            if weighted_length(kept + ch + ELLIPSIS) > budget:
                break
            kept += ch
    return kept + ELLIPSIS if kept else ""


def shorten_public(text: str, limit: int, url: str | None = None) -> str:
    """Fit an answer into one public post of at most `limit` (weighted) characters.

    Whole sentences are kept from the start as long as they fit with " " + url appended (the
    link is where the rest of the answer lives); if not even the first sentence fits, it is cut
    at the last whole word with an ellipsis. An answer that fits is returned unchanged.
    """
    text = text.strip()
    if weighted_length(text) <= limit:
        return text
    suffix = f" {url}" if url else ""
    if weighted_length(suffix) >= limit // 2:
        suffix = ""
    budget = limit - weighted_length(suffix)
    kept = ""
    for sentence, sep in _sentences(text):
        cand = f"{kept}{sep}{sentence}" if kept else sentence
        if weighted_length(cand) > budget:
            break
        kept = cand
    if not kept:
        kept = _cut_words(text, budget)
    return (kept + suffix).strip()


_SPLITTERS = (
    re.compile(r"(\n[ \t]*\n\s*)"),  # paragraphs
    re.compile(r"(\n)"),  # lines (bullets)
    re.compile(r"((?<=[.!?])\s+|(?<=[。！？；]))"),  # sentences
    re.compile(r"(\s+)"),  # words
)


def _pieces(text: str, level: int) -> list[str]:
    parts = _SPLITTERS[level].split(text)
    # [p0, sep0, p1, sep1, ..., pn] → pieces that keep their trailing separator
    return [p for p in (parts[i] + (parts[i + 1] if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)) if p]


def _pack(text: str, limit: int, level: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    if level >= len(_SPLITTERS):
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    out: list[str] = []
    cur = ""
    for piece in _pieces(text, level):
        if len(piece.rstrip()) > limit:
            if cur.strip():
                out.append(cur)
            cur = ""
            out.extend(_pack(piece.rstrip(), limit, level + 1))
        elif len((cur + piece).rstrip()) <= limit:
            cur += piece
        else:
            if cur.strip():
                out.append(cur)
            cur = piece
    if cur.strip():
        out.append(cur)
    return out


def split_dm(text: str, limit: int) -> list[str]:
    """Split a long reply into DMs of at most `limit` characters, at paragraph breaks first,
    then lines, sentences and words — a DM never ends in the middle of a word."""
    text = text.strip()
    if not text:
        return []
    return [p.strip() for p in _pack(text, limit, 0) if p.strip()]
