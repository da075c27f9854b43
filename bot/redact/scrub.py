"""`switchboard redact`: scrub a stream of lines — for ops cleaning an export, and for checking
how a phrasing is read.

Same format out as in, line by line:
- a JSON object line (`{"text": …, …}`) comes back as JSON with every string value redacted
  (the engine leaves ids, addresses and TxIDs alone) and the kinds found under `"redacted"`;
- any other line comes back as the redacted line; the kinds found go to stderr (`line N: kinds`),
  so stdout stays a clean copy of the input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson

from bot.redact import kinds_found, redact


@dataclass
class Stats:
    lines: int = 0
    changed: int = 0
    kinds: Counter[str] = field(default_factory=Counter)


def _walk(value: Any, found: list[str]) -> Any:
    if isinstance(value, str):
        r = redact(value)
        found.extend(r.kinds)
        return r.text
    if isinstance(value, list):
        return [_walk(v, found) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, found) for k, v in value.items()}
    return value


def scrub_line(line: str) -> tuple[str, tuple[str, ...], bool]:
    """One line (without its line break) → the redacted line, the kinds found, and whether it
    was a JSON object line."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            obj = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            obj = None  # not JSON after all: treated as text, nothing lost
        if isinstance(obj, dict):
            found: list[str] = []
            out = {k: (_walk(v, found) if k != "redacted" else v) for k, v in obj.items()}
            kinds = kinds_found("", ",".join(obj["redacted"]) if isinstance(obj.get("redacted"), list) else None,
                                tuple(found))
            if kinds:
                out["redacted"] = list(kinds)
            return orjson.dumps(out).decode(), tuple(found), True
    r = redact(line)
    return r.text, r.kinds, False


def scrub(lines: Iterable[str], out: TextIO, err: TextIO) -> Stats:
    stats = Stats()
    for n, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\n") else raw
        if line.endswith("\r"):
            line = line[:-1]
        text, kinds, is_json = scrub_line(line)
        out.write(text + "\n")
        stats.lines += 1
        if kinds:
            stats.changed += 1
            stats.kinds.update(kinds)
            if not is_json:
                err.write(f"line {n}: {','.join(dict.fromkeys(kinds))}\n")
    return stats
