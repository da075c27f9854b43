"""Many regex rules in one alternation, searched only where one of them can match.

`re` tries every branch of an alternation at every position of the text: 33 case-insensitive rules
cost 33 tries per character, almost all of them failing on the first letter. `Rules` keeps the
rules' own regexes (the same flags, the same matches) and, for each rule, a set of literal strings
one of which every match of it contains, worked out from the parsed pattern: its rarest run of
literal text ("my wallet was hacked" can only be matched by rules that need "wallet", "hack", "my
", …). One pass of a trie over the text finds which of those strings occur; a rule none of whose
strings occurs cannot match and is not run; a rule without such a set always runs. So
`Rules.search` finds a match exactly when the plain alternation does (tested against it on every
text of the tests, the NLU data and generated ones).

The strings are compared with a *folded* text, in which every character a case-insensitive literal
can match is mapped onto one (`A`-`Z`, and `İ ı ſ K`, which `re.IGNORECASE` also matches with ASCII
letters, onto `a`-`z`), every whitespace character onto a space and every run of spaces onto one —
so `\\s+` in a rule is a single space in its strings and the literal text can go on after it.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

_sre: Any = importlib.import_module("re._parser")  # the parser `re` compiles with (no public API)
_C: Any = importlib.import_module("re._constants")

# Characters `re.IGNORECASE` matches with an ASCII letter besides its other case (checked against
# every code point in tests/unit/test_prefilter.py).
_FOLD_TO_ASCII = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}
# Every character `\s` matches (str patterns) lies below U+3001 (checked in the tests too).
_SPACE_CHARS = [c for c in range(0x3001) if re.match(r"\s", chr(c))]
_TABLE: dict[int, str] = {c: chr(c).lower() for c in range(ord("A"), ord("Z") + 1)}
_TABLE.update(_FOLD_TO_ASCII)
_TABLE.update(dict.fromkeys(_SPACE_CHARS, " "))
_RUNS = re.compile(" {2,}")

# Limits of the prefix sets: beyond them a prefix simply stops growing (shorter, still correct).
_MAX_PREFIXES = 64
_MAX_CLASS = 8


def fold(text: str) -> str:
    """The text as prefixes are compared with (see the module docstring)."""
    t = text.translate(_TABLE)
    return _RUNS.sub(" ", t) if "  " in t else t


def _collapse(s: str) -> str:
    return _RUNS.sub(" ", s) if "  " in s else s


def _literal(code: int) -> str | None:
    """The folded form of a literal character, or None when folding cannot stand for the
    characters it matches (a cased letter beyond ASCII: Greek, Cyrillic, fullwidth, …)."""
    ch = chr(code)
    if code in _SPACE_CHARS:
        return " "
    if code < 128:
        return ch.lower()
    if code in _FOLD_TO_ASCII:
        return _FOLD_TO_ASCII[code]
    if code >= 0x3000 and ch.lower() == ch == ch.upper():
        return ch  # CJK and other caseless characters match only themselves
    return None


def _is_space_class(av: list[tuple[Any, Any]]) -> bool:
    return len(av) == 1 and av[0] == (_C.CATEGORY, _C.CATEGORY_SPACE)


# An element's result: (strings one of which every match of it starts with, whether every match
# of it IS one of those strings — then the next element's prefixes may be appended), or None
# when nothing is known.
_Known = tuple[set[str], bool] | None


def _element(op: Any, av: Any) -> _Known:
    if op is _C.LITERAL:
        ch = _literal(av)
        return None if ch is None else ({ch}, True)
    if op is _C.SUBPATTERN:
        return _sequence(av[3].data)
    if op is _C.ATOMIC_GROUP:
        return _sequence(av.data)
    if op is _C.BRANCH:
        strings: set[str] = set()
        complete = True
        for alt in av[1]:
            got = _sequence(alt.data)
            if got is None:
                return None
            strings |= got[0]
            complete = complete and got[1]
        if "" in strings and not complete:
            return None
        return strings, complete
    if op is _C.IN:
        if _is_space_class(av):
            return {" "}, True
        chars: set[str] = set()
        for iop, iav in av:
            if iop is _C.LITERAL and (ch := _literal(iav)) is not None:
                chars.add(ch)
            elif (iop, iav) == (_C.CATEGORY, _C.CATEGORY_SPACE):
                chars.add(" ")
            else:
                return None
        return (chars, True) if 0 < len(chars) <= _MAX_CLASS else None
    if op in (_C.MAX_REPEAT, _C.MIN_REPEAT, _C.POSSESSIVE_REPEAT):
        lo, hi, sub = av
        items = sub.data
        if len(items) == 1 and items[0][0] is _C.IN and _is_space_class(items[0][1]):
            # a run of whitespace is one space in the folded text
            return ({" "}, True) if lo >= 1 else ({"", " "}, True)
        got = _sequence(items)
        if got is None:
            return None
        if lo == 0:
            if hi == 1 and got[1]:
                return got[0] | {""}, True  # optional: absent, or one of its strings
            return None
        return got[0], got[1] and lo == hi == 1
    return None  # ANY, CATEGORY, NOT_LITERAL, GROUPREF, …


def _sequence(items: list[tuple[Any, Any]]) -> _Known:
    out = {""}
    for op, av in items:
        if op in (_C.AT, _C.ASSERT, _C.ASSERT_NOT):
            continue  # zero width: \b, ^, $, look-arounds
        got = _element(op, av)
        if got is None:
            return out, False
        strings, complete = got
        grown = {_collapse(p + s) for p in out for s in strings}
        if len(grown) > _MAX_PREFIXES:
            return out, False
        out = grown
        if not complete:
            return out, False
    return out, True


def _minimal(strings: set[str], *, anywhere: bool = False) -> frozenset[str]:
    """Shorter members stand for the longer ones they begin (`anywhere`: they are part of; one
    of a set must occur)."""
    return frozenset(s for s in strings
                     if not any(o != s and (o in s if anywhere else s.startswith(o)) for o in strings))


def prefixes(pattern: str, flags: int = 0) -> frozenset[str]:
    """Folded strings one of which every match of `pattern` starts with; empty when there is no
    such set (a match may start anywhere)."""
    got = _sequence(list(_sre.parse(pattern, flags).data))
    strings = got[0] if got else {""}
    return frozenset() if "" in strings else _minimal(strings)


def _score(strings: set[str]) -> tuple[int, int]:
    """How rare a set of strings is in text: the shortest member (spaces do not count), then
    the fewer members the better."""
    return min(len(s.strip()) for s in strings), -len(strings)


def required(pattern: str, flags: int = 0) -> frozenset[str]:
    """Folded strings one of which every match of `pattern` contains — the rarest such set among
    the runs of literal text along the pattern (its start, or a word after a gap: `\\bi\\b.{0,80}and
    then typed` needs "and then typed" more than "i"); empty when there is none."""
    best: set[str] | None = None

    def consider(strings: set[str]) -> None:
        nonlocal best
        if strings and "" not in strings and min(len(x.strip()) for x in strings) > 0 and (
                best is None or _score(strings) > _score(best)):
            best = strings

    run = {""}
    for op, av in _sre.parse(pattern, flags).data:
        if op in (_C.AT, _C.ASSERT, _C.ASSERT_NOT):
            continue  # zero width: a run of literal text goes on across it
        got = _element(op, av)
        if got is None:  # not literal text: the run ends before it
            consider(run)
            run = {""}
            continue
        strings, complete = got
        grown = {_collapse(p + x) for p in run for x in strings}
        if len(grown) > _MAX_PREFIXES:
            consider(run)
            grown = set(strings)
        if complete:
            run = grown
        else:  # it starts with one of these, then something else: the run ends inside it
            consider(grown)
            run = {""}
    consider(run)
    return frozenset() if best is None else _minimal(best, anywhere=True)


def _trie(strings: set[str]) -> str:
    """A regex matching exactly the given literal strings, as a trie: at each position `re` only
    follows the one branch of the next character, and the longest string wins (greedy `?`)."""
    root: dict[str, Any] = {}
    for s in strings:
        node = root
        for ch in s:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(root)


class Rules:
    """An alternation of `parts` (each compiled with `flags`) that only runs the parts whose
    required strings (`required`) occur in the text. `search` returns a match of the first part (in the given order)
    that matches — not necessarily the leftmost match of the whole alternation: use it as a
    yes/no."""

    __slots__ = ("_always", "_finder", "_rules", "_under", "pattern")

    def __init__(self, *parts: str, flags: int = 0) -> None:
        self.pattern = re.compile("|".join(f"(?:{p})" for p in parts), flags)  # the plain alternation
        self._rules = [re.compile(p, flags) for p in parts]
        self._always = frozenset(i for i, p in enumerate(parts) if not required(p, flags))
        by_prefix: dict[str, set[int]] = {}
        for i, p in enumerate(parts):
            for s in required(p, flags):
                by_prefix.setdefault(s, set()).add(i)
        # The finder reports, at each position, the longest of the strings found there; every
        # shorter one found at that position begins it, so each string stands for its own rules
        # and for those of the strings it begins with.
        self._under = {s: frozenset().union(*(ix for t, ix in by_prefix.items() if s.startswith(t)))
                       for s in by_prefix}
        self._finder = re.compile(_trie(set(by_prefix))) if by_prefix else None

    def candidates(self, folded: str) -> list[int]:
        """The parts that can match a text whose folded form is `folded`, in order."""
        found = set(self._always)
        if self._finder is not None:
            pos = 0
            under = self._under
            search = self._finder.search
            while (m := search(folded, pos)) is not None:
                found |= under[m.group()]
                pos = m.start() + 1
        return sorted(found) if len(found) > 1 else list(found)

    def search(self, text: str, folded: str | None = None) -> re.Match[str] | None:
        """A match of one of the parts in `text`, or None when none matches. `folded`:
        `fold(text)`, when the caller has it already."""
        for i in self.candidates(fold(text) if folded is None else folded):
            m = self._rules[i].search(text)
            if m is not None:
                return m
        return None
