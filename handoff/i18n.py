"""The agent console's languages: one message catalogue per language as JSON data in
`handoff/static/i18n/<code>.json`, listed in `languages.json`.

The browser renders almost everything itself (console.js `tr()`); this module serves the same
catalogues to the few pages rendered on the server (the review queue) and tells which language
codes an agent may choose. Adding a language is adding its file and one line in languages.json.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

DIR = Path(__file__).resolve().parent / "static" / "i18n"
DEFAULT = "en"


@functools.cache
def languages() -> tuple[dict[str, Any], ...]:
    """The languages offered, in menu order: `code`, `name` (in that language), `intl` (BCP 47)."""
    data = json.loads((DIR / "languages.json").read_text(encoding="utf-8"))
    return tuple(data["languages"])


def codes() -> frozenset[str]:
    return frozenset(str(lang["code"]) for lang in languages())


@functools.cache
def catalogue(code: str) -> dict[str, Any]:
    if code not in codes():
        raise KeyError(code)
    data: dict[str, Any] = json.loads((DIR / f"{code}.json").read_text(encoding="utf-8"))
    return data


def negotiate(saved: str | None, accept_language: str | None) -> str:
    """The agent's saved choice, else the first of the browser's languages we have (by prefix:
    `zh-CN` → `zh`), else English."""
    have = codes()
    if saved in have:
        return str(saved)
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        if tag:
            ranked.append((-weight, i, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        for lang in languages():
            code = str(lang["code"])
            if tag == code.lower() or tag.split("-")[0] == code.lower() or any(
                    tag == m.lower() for m in lang.get("match", [])):
                return code
    return DEFAULT


_PARAM = re.compile(r"\{(\w+)\}")


def text(code: str, key: str, **params: Any) -> str:
    """A catalogue message with its `{param}`s filled (English when the language lacks the key)."""
    v = catalogue(code).get(key)
    if v is None:
        v = catalogue(DEFAULT).get(key, key)
    if isinstance(v, dict):
        n = params.get("n", 0)
        v = v.get("one") if n == 1 and "one" in v else v.get("other", "")
    return _PARAM.sub(lambda m: str(params[m.group(1)]) if m.group(1) in params else m.group(0), str(v))
