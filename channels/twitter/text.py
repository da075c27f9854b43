"""Text rules of X, as pure functions: how X counts a post's length, how an answer is shortened
for a public reply, how a long answer is split into DMs, and how a mention loses its @handles.

Why our own counter: X does not count characters. It weighs them (twitter-text v3 config): Latin
and most punctuation weigh 1, CJK, emoji and everything else 2, and every URL counts as 23 (it is
wrapped in t.co). A 200-character Chinese answer is 400 on X and would be rejected, so shortening
must use the same weights.
"""

from __future__ import annotations

import re
import unicodedata

URL_WEIGHT = 23
# twitter-text v3: code point ranges of weight 1 (scaled 100); everything else weighs 2 (200).
_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
URL_RE = re.compile(r"https?://[^\s<>\"]+", re.I)
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


def weighted_length(text: str) -> int:
    """The length X computes for a post (NFC-normalized, URLs = 23, CJK/emoji = 2)."""
    text = unicodedata.normalize("NFC", text)
    n = 0
    pos = 0
    for m in URL_RE.finditer(text):
        n += sum(_char_weight(c) for c in text[pos : m.start()]) + URL_WEIGHT
        pos = m.end()
    return n + sum(_char_weight(c) for c in text[pos:])


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
