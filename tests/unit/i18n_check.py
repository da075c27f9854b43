"""Checks of the console's message catalogues and of its code for text that bypasses them.

Used by tests/unit/test_console_i18n.py; kept apart so each check can also be shown failing on a
sample (a missing key, a new hard-coded string).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

PLACEHOLDER = re.compile(r"\{(\w+)\}")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def _forms(v: Any) -> list[str]:
    return [str(x) for x in v.values()] if isinstance(v, dict) else [str(v)]


def catalogue_problems(catalogues: dict[str, dict[str, Any]], reference: str = "en") -> list[str]:
    """Every key in every language, the same {placeholders}, plural forms with `other`, no empty text."""
    out: list[str] = []
    ref = catalogues[reference]
    for code, cat in catalogues.items():
        for key in sorted(set(ref) - set(cat)):
            out.append(f"{code}: missing key {key!r}")
        for key in sorted(set(cat) - set(ref)):
            out.append(f"{code}: key {key!r} is not in {reference}")
        for key, v in cat.items():
            if isinstance(v, dict) and "other" not in v:
                out.append(f"{code}: {key!r} has plural forms without 'other'")
            if any(not f.strip() for f in _forms(v)):
                out.append(f"{code}: {key!r} is empty")
            if key in ref:
                want = {p for f in _forms(ref[key]) for p in PLACEHOLDER.findall(f)}
                got = {p for f in _forms(v) for p in PLACEHOLDER.findall(f)}
                if got - want:
                    out.append(f"{code}: {key!r} uses {sorted(got - want)} that {reference} does not pass")
                if not got and want and code != reference:
                    out.append(f"{code}: {key!r} drops every parameter of {reference} {sorted(want)}")
    return out


# ─────────────────────────── JavaScript: string literals and where they go ───────────────────────────

def js_literals(src: str) -> Iterator[tuple[int, str, str]]:
    """(line, text, code before it on that line) of every string literal; template literals give
    their text outside `${…}`. Comments and regular expressions are skipped."""
    i, n, line = 0, len(src), 1
    prev = ""  # last significant character, to tell a regex from a division
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            line += src.count("\n", i, j)
            i = j + 2
            continue
        if c == "/" and (prev == "" or prev in "(,=:[!&|?{};+-*%<>~^"):
            j, cls = i + 1, False
            while j < n and (src[j] != "/" or cls):
                if src[j] == "\\":
                    j += 1
                elif src[j] == "[":
                    cls = True
                elif src[j] == "]":
                    cls = False
                j += 1
            i = j + 1
            while i < n and src[i].isalpha():
                i += 1
            prev = "/"
            continue
        if c in "'\"`":
            start_line = line
            before = src[src.rfind("\n", 0, i) + 1:i]
            j, parts, buf = i + 1, [], []
            while j < n and src[j] != c:
                if src[j] == "\\":
                    buf.append(src[j:j + 2])
                    j += 2
                    continue
                if c == "`" and src.startswith("${", j):
                    depth, j = 1, j + 2
                    while j < n and depth:
                        if src[j] == "{":
                            depth += 1
                        elif src[j] == "}":
                            depth -= 1
                        elif src[j] in "'\"`":  # a string inside the expression
                            q = src[j]
                            j += 1
                            while j < n and src[j] != q:
                                j += 2 if src[j] == "\\" else 1
                        j += 1
                    parts.append("".join(buf))
                    buf = []
                    continue
                if src[j] == "\n":
                    line += 1
                buf.append(src[j])
                j += 1
            parts.append("".join(buf))
            yield start_line, " ".join(p for p in parts if p), before
            i = j + 1
            prev = c
            continue
        if not c.isspace():
            prev = c
        i += 1


WORD = re.compile(r"[A-Za-z]{2,}")
CAPITALISED = re.compile(r"(?<![\w-])[A-Z][a-z]+(?![\w-])")
PLAIN_WORDS = re.compile(r"^[A-Za-z][a-z]+( [a-z]{2,})+[.!?…]?$")
COMPARED = re.compile(r"(?:[=!]==?|\bcase)\s*$")
# Where a literal becomes something an agent reads.
SINK = re.compile(
    r"""(?:\b(?:text|title|placeholder|label|alt|'aria-label'|"aria-label")\s*:\s*[^,{}()\[]*"""
    r"""|\b(?:textContent|innerText|placeholder|title|value)\s*=\s*[^;,{}()]*"""
    r"""|\btoast\(\s*[^,{}]*|\bnew\s+ApiError\(\s*\d+\s*,\s*)$""")
# Not text: class lists, selectors, keys of the catalogue, DOM/HTTP names.
CLASS_CONTEXT = re.compile(r"""(?:\bclass\s*:\s*|className\s*=\s*|classList\.\w+\(\s*|\bcls\b.*)$""")
TECHNICAL = {
    # KeyboardEvent.key values, HTTP headers and DOM event names the code compares with
    "ArrowDown", "ArrowUp", "Enter", "Escape", "Tab", "Accept", "Content-Type", "Date", "X-CSRF-Token",
    "DOMContentLoaded", "TEXTAREA", "SELECT", "INPUT", "application/json", "application/x-www-form-urlencoded",
    # key names shown on keys (as printed on the keyboard, not translated)
    "Ctrl Enter", "Ctrl K", "Esc",
    "use strict", "ts small",  # the directive; a class list passed to timeEl()
}


def js_text_problems(src: str) -> list[str]:
    """String literals that look like words for people rather than names for the program."""
    out = []
    for line, text, before in js_literals(src):
        if not text or text in TECHNICAL:
            continue
        if CJK.search(text):
            out.append(f"{line}: {text!r} (Chinese text belongs in zh.json)")
            continue
        if not WORD.search(text) or CLASS_CONTEXT.search(before) or COMPARED.search(before):
            continue
        if text.startswith(("/", "#", ".", "[", "http", "data-", "(max-width")) and " " not in text.strip():
            continue  # paths, selectors, media queries
        if CAPITALISED.search(text) or PLAIN_WORDS.match(text.strip()):
            out.append(f"{line}: {text!r}")
        elif SINK.search(before) and re.fullmatch(r"[a-z]{3,}", text.strip()):
            out.append(f"{line}: {text!r} (shown to the agent)")
    return out


# ─────────────────────────── HTML: text and readable attributes ───────────────────────────

READABLE_ATTRS = ("title", "placeholder", "aria-label", "alt", "label")
SKIP_TEXT_IN = {"script", "style", "kbd", "noscript", "svg"}


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.problems: list[str] = []

    def _skipped(self) -> bool:
        return any(tag in SKIP_TEXT_IN or no for tag, no in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in READABLE_ATTRS:
            v = a.get(name)
            if v and (WORD.search(v) or CJK.search(v)) and not self._skipped():
                self.problems.append(f"{self.getpos()[0]}: <{tag} {name}={v!r}> (use data-i18n-{name})")
        if tag not in ("meta", "link", "input", "br", "img", "hr", "source"):
            self.stack.append((tag, a.get("translate") == "no"))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if (WORD.search(data) or CJK.search(data)) and not self._skipped():
            self.problems.append(f"{self.getpos()[0]}: text {data.strip()!r} (use data-i18n)")


def html_text_problems(src: str) -> list[str]:
    p = _Scan()
    p.feed(src)
    return p.problems
