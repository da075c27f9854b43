"""Seed phrases: runs of BIP-39 words from every word list the `mnemonic` package ships (English,
Chinese simplified and traditional, Japanese, Korean, Spanish, French, Italian, Portuguese, Czech,
Russian, Turkish), whatever stands between the words (spaces, commas, new lines, numbering such
as `1. word` / `1) word`, quotes, JSON lists; nothing at all between Chinese characters), in any
case and with or without accents.

One pass over the words of the text: a run grows while the next word is on a list and only
punctuation, digits or space stand between. A run of 12 or more words is a seed phrase with no
keyword; 8 are enough when the text speaks of a seed/mnemonic/recovery phrase (a partial phrase
still leaks most of the wallet). One typo per six words does not end a run.

Chinese is the hard case: each list is 2,048 of the most frequent characters, so ordinary Chinese
prose is also a run of list characters. Characters written apart (`齿 截 炼 …`) are a phrase like
any other. Glued together (`齿截炼麻纺禁…`) they are a phrase only when they do not read as
prose — prose is dense in the most frequent characters (的 是 了 我 …, the head of the list), a
random phrase is not (`_randomness`) — and either a seed keyword is in the same sentence or the
line before, or a whole stretch of 12–24 characters between punctuation has a valid BIP-39
checksum (1 chance in 16 or less for prose), judged more loosely when it stands alone on its line.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from bot.redact._doc import HAN, HAN_CHARS, Doc

# Letters only: digits, punctuation and spaces are what may stand between seed words.
# (JSON's \\uXXXX escapes count as the letters they stand for: a phrase exported as an ASCII-only
# JSON list.)
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u3099-\u309c"  # combining marks: part of a word
_WORD = re.compile(rf"(?:[^\W\d_]|[{_MARKS}]|\\u[0-9a-fA-F]{{4}})+")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_HAN = HAN
_HAN_RUN = re.compile(f"[{HAN_CHARS}]+")
_SEED_CONTEXT = re.compile(
    r"seed|mnemonic|recovery[\s_-]{0,2}(?:phrase|words?)|secret[\s_-]{0,2}(?:phrase|words?)|"
    r"backup[\s_-]{0,2}(?:phrase|words?)|wallet[\s_-]{0,2}(?:phrase|words?)|(?:12|24|twelve|twenty[\s-]four)[\s-]{0,2}words?|"
    r"my[\s]{1,3}words|words[\s]{1,3}(?:are|were)|phrase|"
    r"助记词|助記詞|种子|種子|恢复短语|恢復短語|恢复词|恢復詞|备份词|備份詞|钱包词|錢包詞|密语|密語|助词|12个词|24个词|十二个词|单词|單詞",
    re.I,
)
# Between two words of a phrase: no letters (guaranteed by the tokenizer) and not a long gap.
_MAX_GAP = 16
_GAP_COPULA = "是为為如下分别依次：:"


@dataclass(frozen=True, slots=True)
class _Lists:
    alpha: dict[str, int]  # normalized word → bitmask of the languages that list it
    han: frozenset[str]
    han_rank: dict[str, int]  # position in the (frequency-ordered) Chinese lists; chat particles 1


@lru_cache(maxsize=65536)
def _norm(word: str) -> str:
    w = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in w if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def lists() -> _Lists:
    from mnemonic import Mnemonic

    alpha: dict[str, int] = {}
    han: set[str] = set()
    rank: dict[str, int] = {}
    for bit, lang in enumerate(sorted(Mnemonic.list_languages())):
        words = Mnemonic(lang).wordlist
        if lang.startswith("chinese"):
            han.update(words)
            for r, w in enumerate(words, 1):
                rank.setdefault(w, r)
            continue
        for w in words:
            alpha[_norm(w)] = alpha.get(_norm(w), 0) | (1 << bit)
    # Chat particles and pronouns (Chinese conversation, not in the head of a corpus-ordered list).
    for c in "吗呢吧啊么怎什你您请帮谢哪谁没被还很想看问":
        rank[c] = 1
    return _Lists(alpha, frozenset(han), rank)


_HARMONIC = sum(1 / r for r in range(1, 2049))
_LLR = [0.0] + [math.log(2048 / (_HARMONIC * r)) for r in range(1, 2049)]
# Thresholds on `_randomness` (see there): with a seed keyword nearby, and without one (where a
# valid checksum is required too).
_RANDOM_WITH_KEYWORD = -0.1
_RANDOM_WITH_KEYWORD_CHECKSUM = 0.3
_RANDOM_ALONE = -0.25
_RANDOM_ALONE_LINE = 0.0
_ALONE_REST = re.compile(r"[\s\d\W]*")


@lru_cache(maxsize=1)
def _zh_indexes() -> tuple[dict[str, int], ...]:
    from mnemonic import Mnemonic

    return tuple({w: i for i, w in enumerate(Mnemonic(lang).wordlist)}
                 for lang in ("chinese_simplified", "chinese_traditional"))


def _valid_zh(chars: str) -> bool:
    """A valid BIP-39 phrase: the checksum holds (1 chance in 16 or less for random characters).
    Computed here with index lookups — `Mnemonic.check` searches the list for every word."""
    n = len(chars)
    if n not in (12, 15, 18, 21, 24):
        return False
    for index in _zh_indexes():
        try:
            bits = 0
            for c in chars:
                bits = (bits << 11) | index[c]
        except KeyError:
            continue
        cs = n * 11 // 33
        entropy = (bits >> cs).to_bytes(n * 11 // 33 * 4, "big")
        if hashlib.sha256(entropy).digest()[0] >> (8 - cs) == bits & ((1 << cs) - 1):
            return True
    return False


def _randomness(chars: str) -> float:
    """Mean log-likelihood ratio per character of "prose" (Zipf over the frequency-ordered list:
    p ∝ 1/rank) against "random BIP-39 words" (uniform). Random phrases score about -1.1 and
    rarely above -0.3; Chinese prose, dense in the most frequent characters, scores above 0."""
    ranks = lists().han_rank
    return sum(_LLR[ranks.get(c, 2048)] for c in chars) / max(1, len(chars))


def _random_words(chars: str, threshold: float) -> bool:
    return _randomness(chars) < threshold


@dataclass(slots=True)
class _W:
    start: int
    end: int
    mask: int  # 0 = not a list word
    han: bool


def _words(text: str) -> list[_W]:
    L = lists()
    out: list[_W] = []
    for m in _WORD.finditer(text):
        s, e = m.span()
        w = m.group(0)
        if "\\u" in w:
            w = _ESCAPE.sub(lambda x: chr(int(x.group(1), 16)), w)
            han = _HAN.fullmatch(w) is not None
            out.append(_W(s, e, (1 if w in L.han else 0) if han else L.alpha.get(_norm(w), 0), han))
            continue
        if _HAN.search(w) is None:
            out.append(_W(s, e, L.alpha.get(_norm(w), 0), False))
            continue
        # Split mixed runs: every Chinese character is a word of its own.
        i = 0
        for h in _HAN.finditer(w):
            if h.start() > i:
                part = w[i : h.start()]
                out.append(_W(s + i, s + h.start(), L.alpha.get(_norm(part), 0), False))
            out.append(_W(s + h.start(), s + h.end(), 1 if h.group(0) in L.han else 0, True))
            i = h.end()
        if i < len(w):
            out.append(_W(s + i, e, L.alpha.get(_norm(w[i:]), 0), False))
    return out


def _typo(text: str, w: _W) -> bool:
    """A word that may be a misspelt list word (lowercase letters, list-word length)."""
    t = text[w.start : w.end]
    b = _norm(t)  # (accents may be combining marks: "éprouvex" as the word lists spell it)
    return not w.han and 3 <= len(b) <= 9 and b.isalpha() and (t.islower() or t.isupper())


_REACH = 400  # how far around a run a keyword is looked for (bounded: linear time)


def _has_context(doc: Doc, start: int, end: int) -> bool:
    """A seed keyword in the same sentence (near the run) or the line before."""
    s, e = doc.sentence(start)
    ls, le = doc.prev_line(start)
    text = doc.text
    if _SEED_CONTEXT.search(text, max(s, start - _REACH), min(max(e, end), end + _REACH)):
        return True
    return le > ls and _SEED_CONTEXT.search(text, max(ls, le - _REACH), le) is not None


# What a text must hold for `_find` to find anything: most texts hold none of it, and these
# checks cost a fraction of `_words`. A Chinese span is 8 characters each set apart from the
# next by 1–16 characters that are not letters, or holds 12 characters written together
# (`_glued_han` looks at nothing shorter); a span of other languages is 8 list words. (The gaps
# here may hold characters `_WORD` counts as letters, the combining marks: that only lets more
# texts through to `_find`.)
_HAN_APART_8 = re.compile(rf"[{HAN_CHARS}](?:[\W\d_]{{1,{_MAX_GAP}}}[{HAN_CHARS}]){{7}}")
_HAN_GLUED_12 = re.compile(rf"[{HAN_CHARS}]{{12}}")
# The words of `_words` that are not Chinese characters: letter runs with every Chinese character
# a separator.
_NON_HAN_WORD = re.compile(rf"(?:(?![{HAN_CHARS}])[^\W\d_]|[{_MARKS}])+")


def _may_hold(text: str) -> bool:
    """False when `text` cannot hold a seed phrase (see above); True when `_find` must look."""
    if "\\u" in text or _HAN_APART_8.search(text) or _HAN_GLUED_12.search(text):
        return True
    alpha = lists().alpha
    n = 0
    for w in _NON_HAN_WORD.findall(text):
        if alpha.get(_norm(w)):
            n += 1
            if n >= 8:
                return True
    return False


def find(doc: Doc) -> list[tuple[int, int]]:
    """Spans of seed phrases in `doc`."""
    return _find(doc) if _may_hold(doc.text) else []


def _find(doc: Doc) -> list[tuple[int, int]]:
    text = doc.text
    words = _words(text)
    spans: list[tuple[int, int]] = []
    if sum(1 for w in words if w.mask) < 8:
        return spans  # every span below holds at least 8 list words (most texts: none to find)
    anywhere = _SEED_CONTEXT.search(text) is not None
    n = len(words)
    i = 0
    while i < n:
        w = words[i]
        if not w.mask:
            i += 1
            continue
        # Grow a run from word i.
        hits = 1
        misses = 0
        last_hit = i
        glued = 0
        mask = w.mask
        j = i
        while j + 1 < n:
            nxt = words[j + 1]
            gap = text[words[j].end : nxt.start]
            if len(gap) > _MAX_GAP or nxt.han != w.han or (gap == "" and not nxt.han):
                break
            if nxt.mask and (nxt.mask & mask or nxt.han):
                mask = mask & nxt.mask if not nxt.han else 1
                hits += 1
                last_hit = j + 1
                glued += gap == ""
            elif hits >= 4 and misses * 6 < hits and j == last_hit and _typo(text, nxt):
                misses += 1  # one typo in a phrase still leaks the phrase
            else:
                break
            j += 1
        end = words[last_hit].end
        if w.han:
            # Characters written apart ("齿 截 炼 …") inside a run that also holds glued prose
            # ("我的助记词是 齿 截 炼 …，钱包里的币不见了"): each separated stretch on its own.
            k = i
            while k <= last_hit:
                m = k
                while m + 1 <= last_hit and text[words[m].end : words[m + 1].start] != "":
                    m += 1
                a, b = k, m
                # An edge character glued to its outer neighbour is prose ("…助记词是 齿 …").
                if a < b and a > 0 and text[words[a - 1].end : words[a].start] == "":
                    a += 1
                if a < b and b + 1 < len(words) and text[words[b].end : words[b + 1].start] == "":
                    b -= 1
                n_sep = b - a + 1
                if n_sep >= 12 or (n_sep >= 8 and anywhere):
                    spans.append((words[a].start, words[b].end))
                k = m + 1
            if glued * 2 >= hits - 1 and hits > 1:
                span = _glued_han(doc, words, i, last_hit)
                if span:
                    spans.append(span)
        elif hits >= 12 or (hits >= 8 and anywhere):
            spans.append((_back(text, words, i, mask), end))
        i = last_hit + 1
    return spans


_NO_DIGITS = str.maketrans("", "", "0123456789")


def _back(text: str, words: list[_W], i: int, mask: int) -> int:
    """Where a phrase starting at word i really starts: a typo among its first words ended the
    run that began before it ("chimney task eyebrox bottom …" grew only from "bottom"), so step
    back over one typo and the list words of the same language before it (a few words: linear),
    each set apart as the phrase's own words are ("my secret words: abandon …" stays outside)."""
    if i + 1 >= len(words):
        return words[i].start
    sep = text[words[i].end : words[i + 1].start].translate(_NO_DIGITS)
    k = i
    typo = False
    for _ in range(6):
        p = k - 1
        if p < 0 or words[p].han:
            break
        gap = text[words[p].end : words[k].start]
        if gap == "" or len(gap) > _MAX_GAP or gap.translate(_NO_DIGITS) != sep:
            break
        if words[p].mask & mask:
            k = p
        elif not typo and p > 0 and words[p - 1].mask & mask and _typo(text, words[p]):
            typo = True
            k = p
        else:
            break
    if typo and not words[k].mask:
        k += 1  # (a typo with no list word before it stays outside)
    return words[k].start


def _glued_han(doc: Doc, words: list[_W], i: int, j: int) -> tuple[int, int] | None:
    """A run of list characters written without separators (see the module docstring)."""
    text = doc.text
    start, end = words[i].start, words[j].end
    run = text[start:end]
    chars = "".join(c for c in run if _HAN.match(c))
    if len(chars) < 12:
        return None
    if _has_context(doc, start, end):
        # The keyword itself may be glued to the phrase ("助记词是齿截炼…"): start after it.
        kw = None
        for m in _SEED_CONTEXT.finditer(text, max(doc.sentence(start)[0], start - _REACH), min(end, start + _REACH)):
            if m.end() > start:
                kw = m
        base = kw.end() - start if kw is not None and kw.end() > start else 0
        # After the keyword: maybe a copula ("是", "为", "：") — or a phrase that starts with 是/为.
        offs = []
        for skip_copula in (False, True):
            off = base
            while off < len(run) and (not _HAN.match(run[off]) or (skip_copula and run[off] in _GAP_COPULA)):
                off += 1
            offs.append(off)
        valid: list[tuple[int, int]] = []
        fallback: tuple[int, int] | None = None
        for off in offs:
            # Written without separators, the phrase ends where the characters stop ("…净睛，帮我看看").
            k = off
            while k < len(run) and _HAN.match(run[k]):
                k += 1
            rest = run[off:k]
            for n in (24, 21, 18, 15, 12):
                if len(rest) >= n and _valid_zh(rest[:n]) and _random_words(rest[:n], _RANDOM_WITH_KEYWORD_CHECKSUM):
                    valid.append((start + off, start + off + n))
                    break
            # No valid checksum (a typo, a partial phrase): the longest prefix that does not read
            # as prose, at least 12 characters.
            for n in range(12, min(len(rest), 24) + 1):
                if _random_words(rest[:n], _RANDOM_WITH_KEYWORD):
                    fallback = (start + off, start + off + n)
        if valid:
            # With and without the copula both may check (1 chance in 16): cover both.
            return min(v[0] for v in valid), max(v[1] for v in valid)
        return fallback
    # No keyword: a whole stretch of 12–24 characters (between punctuation, spaces or characters
    # that are not list words) with a valid checksum that does not read as prose.
    for m in _HAN_RUN.finditer(run):
        seg = m.group(0)
        if len(seg) not in (12, 15, 18, 21, 24):
            continue
        s, e = start + m.start(), start + m.end()
        ls, le = doc.line(s)
        # Alone on its line (a phrase pasted by itself): prose that long without a single
        # punctuation mark is rare, so the randomness test may be looser.
        alone = (le - ls <= len(seg) + 64  # bounded: a megabyte-long line is not "alone"
                 and _ALONE_REST.fullmatch(text, ls, s) is not None and _ALONE_REST.fullmatch(text, e, le) is not None)
        if _random_words(seg, _RANDOM_ALONE_LINE if alone else _RANDOM_ALONE) and _valid_zh(seg):
            return s, e
    return None
