"""The text being redacted, cut once into lines, sentences and tokens so that every detector
looks things up by position (binary search) instead of running wide regexes: each detector stays
linear in the length of the text whatever it contains."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

# A sentence ends at a line break, or at . ! ? ; followed by a space / the end (so "0.5", "a.b.com"
# and "v1.2" stay inside one sentence), or at CJK end punctuation.
_SENTENCE_END = re.compile(r"\n|[.!?;](?=\s|$)|[。！？；]")
# The Chinese characters every detector means by "Chinese" (CJK Unified Ideographs with
# Extension A, and the compatibility ideographs), for use inside a character class.
HAN_CHARS = "\u3400-\u9fff\uf900-\ufaff"
HAN = re.compile(f"[{HAN_CHARS}]")
# Tokens for the keyword → value rules: a run of printable ASCII (a password, a code, an e-mail
# address) with the accented Latin letters of the languages written with them ("mật khẩu là …",
# "contraseña:", "não" stay one word each), one Chinese character, or any other run of non-space
# characters.
_LATIN = "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_TOKEN = re.compile(f"[!-~{_LATIN}]+|[{HAN_CHARS}]|[^\\s!-~{_LATIN}{HAN_CHARS}]+")
# Existing redaction marks: never redacted again, never taken apart.
MARK = re.compile(r"\[REDACTED:[a-z_]{1,20}\]")
_NON_SPACE = re.compile(r"\S")
# Full-width ASCII (a Chinese input method left in full-width mode: "ａｂｃ１２３") is read as the
# ASCII it stands for in a token's text.
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FULLWIDTH_ANY = re.compile("[\uff01-\uff5e]")
# A letter or digit in full width glued to one in ASCII ("４８2９13", "abc１２３": the input method
# switched mid-value): the runs on both sides are one token.
_MIXED_WIDTH = re.compile("[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_WIDE_ALNUM = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")

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
    _found: dict[re.Pattern[str], tuple[list[int], list[int]]] = field(default_factory=dict)

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
        """The non-blank line before the one holding `pos` (looking back at most a few lines:
        "private key:\n\n<key>" is still the line before)."""
        s, _ = self.line(pos)
        for _ in range(4):
            if s == 0:
                return 0, 0
            ls, le = self.line(s - 1)
            if _NON_SPACE.search(self.text, max(ls, le - 256), le):
                return ls, le
            s = ls
        return 0, 0

    def in_mark(self, start: int, end: int) -> bool:
        if not self.marks:
            return False
        i = bisect_right(self.marks, (start, len(self.text) + 1)) - 1
        return any(s < end and start < e for s, e in self.marks[max(0, i) : i + 2])

    def nearest(self, pattern: re.Pattern[str], lo: int, start: int, end: int, hi: int) -> int | None:
        """Distance from [start, end) to the nearest match of `pattern` lying within [lo, hi) and
        outside [start, end). The matches are found once per text (linear time)."""
        if pattern not in self._found:
            ms = [m.span() for m in pattern.finditer(self.text)]
            self._found[pattern] = ([a for a, _ in ms], [b for _, b in ms])
        starts, ends = self._found[pattern]
        best: int | None = None
        i = bisect_right(starts, start) - 1  # the last match starting at or before `start`
        while i >= 0 and starts[i] >= lo:
            if ends[i] <= start:
                best = start - ends[i]
                break
            i -= 1
        j = bisect_left(starts, end)
        if j < len(starts) and ends[j] <= hi:
            d = starts[j] - end
            if best is None or d < best:
                best = d
        return best

    # -- tokens ------------------------------------------------------------------------------

    @property
    def tokens(self) -> list[Token]:
        if self._tokens is None:
            toks = []
            runs = [m.span() for m in _TOKEN.finditer(self.text)]
            if _FULLWIDTH_ANY.search(self.text):
                runs = self._join_widths(runs)
            for s, e in runs:
                raw = self.text[s:e]
                # Peel quotes, brackets and trailing punctuation off an ASCII token ("'Hunter2',").
                while s < e and self.text[s] in _EDGE_OPEN:
                    s += 1
                while e > s and self.text[e - 1] in _EDGE_CLOSE:
                    e -= 1
                if s < e:
                    text = self.text[s:e]
                    if _FULLWIDTH_ANY.search(text):
                        text = text.translate(_FULLWIDTH)  # one character for one: spans stay right
                    toks.append(Token(s, e, text, raw))
            self._tokens = toks
            self._token_starts = [t.start for t in toks]
        return self._tokens

    def _join_widths(self, runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Glued runs joined where a full-width letter or digit meets an ASCII one."""
        t = self.text
        out: list[tuple[int, int]] = []
        for s, e in runs:
            if (out and out[-1][1] == s and _MIXED_WIDTH.match(t, s - 1) and _MIXED_WIDTH.match(t, s)
                    and (_WIDE_ALNUM.match(t, s - 1) is None) != (_WIDE_ALNUM.match(t, s) is None)):
                out[-1] = (out[-1][0], e)
            else:
                out.append((s, e))
        return out

    def token_index(self, pos: int) -> int:
        """Index of the first token starting at or after `pos`."""
        self.tokens  # noqa: B018 - builds the index
        assert self._token_starts is not None
        return bisect_left(self._token_starts, pos)
