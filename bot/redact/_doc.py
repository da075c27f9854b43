"""The text being redacted, cut once into lines, sentences and tokens so that every detector
looks things up by position (binary search) instead of running wide regexes: each detector stays
linear in the length of the text whatever it contains."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

# A sentence ends at a line break, or at . ! ? ; followed by a space / the end (so "0.5", "a.b.com"
# and "v1.2" stay inside one sentence), or at CJK end punctuation.
_SENTENCE_END = re.compile(r"\n|[.!?;](?=\s|$)|[。！？；]")
# Tokens for the keyword → value rules: a run of printable ASCII (a password, a code, an e-mail
# address), one CJK character, or any other run of non-space characters.
_TOKEN = re.compile(r"[!-~]+|[\u3400-\u9fff\uf900-\ufaff]|[^\s!-~\u3400-\u9fff\uf900-\ufaff]+")
# Existing redaction marks: never redacted again, never taken apart.
MARK = re.compile(r"\[REDACTED:[a-z_]{1,20}\]")

_EDGE_OPEN = "([{<\"'`“‘「『【"
_EDGE_CLOSE = ")]}>\"'`”’」』】,.;:!?，。；：！？、"


@dataclass(frozen=True, slots=True)
class Token:
    start: int
    end: int
    text: str  # without surrounding quotes, brackets and trailing punctuation
    raw: str


@dataclass(slots=True)
class Doc:
    text: str
    sent_starts: list[int] = field(default_factory=list)
    line_starts: list[int] = field(default_factory=list)
    marks: list[tuple[int, int]] = field(default_factory=list)
    _tokens: list[Token] | None = None
    _token_starts: list[int] | None = None

    def __post_init__(self) -> None:
        t = self.text
        self.sent_starts = [0] + [m.end() for m in _SENTENCE_END.finditer(t)]
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", t)]
        self.marks = [m.span() for m in MARK.finditer(t)] if "[REDACTED:" in t else []

    # -- positions ---------------------------------------------------------------------------

    def sentence(self, pos: int) -> tuple[int, int]:
        i = bisect_right(self.sent_starts, pos) - 1
        end = self.sent_starts[i + 1] if i + 1 < len(self.sent_starts) else len(self.text)
        return self.sent_starts[i], end

    def prev_sentence(self, pos: int) -> tuple[int, int]:
        s, _ = self.sentence(pos)
        if s == 0:
            return 0, 0
        return self.sentence(s - 1)

    def line(self, pos: int) -> tuple[int, int]:
        i = bisect_right(self.line_starts, pos) - 1
        end = self.line_starts[i + 1] if i + 1 < len(self.line_starts) else len(self.text)
        return self.line_starts[i], end

    def prev_line(self, pos: int) -> tuple[int, int]:
        s, _ = self.line(pos)
        if s == 0:
            return 0, 0
        # Skip blank lines: "private key:\n\n<key>" is still the line before.
        p = s - 1
        while p > 0:
            ls, le = self.line(p)
            if self.text[ls:le].strip():
                return ls, le
            p = ls - 1
        return self.line(0)

    def in_mark(self, start: int, end: int) -> bool:
        return any(s < end and start < e for s, e in self.marks)

    # -- tokens ------------------------------------------------------------------------------

    @property
    def tokens(self) -> list[Token]:
        if self._tokens is None:
            toks = []
            for m in _TOKEN.finditer(self.text):
                raw = m.group(0)
                s, e = m.span()
                # Peel quotes, brackets and trailing punctuation off an ASCII token ("'Hunter2',").
                while s < e and self.text[s] in _EDGE_OPEN:
                    s += 1
                while e > s and self.text[e - 1] in _EDGE_CLOSE:
                    e -= 1
                if s < e:
                    toks.append(Token(s, e, self.text[s:e], raw))
            self._tokens = toks
            self._token_starts = [t.start for t in toks]
        return self._tokens

    def token_index(self, pos: int) -> int:
        """Index of the first token starting at or after `pos`."""
        self.tokens  # noqa: B018 - builds the index
        assert self._token_starts is not None
        from bisect import bisect_left

        return bisect_left(self._token_starts, pos)
