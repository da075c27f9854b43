"""Text a user shows us — a post they reply to, a message they quote — written after their own
words as "> " lines (the router and the agents read it as shown, not said: `bot.policy`), and
cutting text between grapheme clusters (what a reader sees as one character: 👨‍👩‍👧, 🇩🇪, an
accented letter written as two code points). `regex` implements the Unicode segmentation rules
(UAX #29, `\\X`); `re` does not."""

from __future__ import annotations

import regex

QUOTE_MAX_CHARS = 1000
ELLIPSIS = "…"
_GRAPHEME = regex.compile(r"\X")


def grapheme_cut(s: str, i: int) -> int:
    """`i`, moved back to the start of the grapheme cluster it falls inside, so that `s[:i]` never
    ends inside one; `i` itself when that cluster starts the text (one cluster longer than the
    room: there is no better cut)."""
    for m in _GRAPHEME.finditer(s):
        if m.end() > i:
            return m.start() or i
    return i


def quote_block(text: str, limit: int = QUOTE_MAX_CHARS) -> str:
    """`text` as "> " lines (a blank line as ">"), cut to `limit` characters between grapheme
    clusters and ended with "…" when longer."""
    text = text.strip()
    if len(text) > limit:
        text = text[: grapheme_cut(text, limit - 1)].rstrip() + ELLIPSIS
    return "\n".join(f"> {line}".rstrip() for line in text.splitlines())
