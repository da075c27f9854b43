"""Answers are data, not code: `intents/answers/<lang>/*.yml` map an intent (or a system key in
`_system.yml`) to its reply text. Ops edit the files; the router notices the change and reloads
without retraining or restarting.

Placeholders `{coin}`, `{network}`, `{eta}`, `{ticket}` … are filled from the entities the user
named or from the context; missing ones take the file's `_defaults`.
"""

from __future__ import annotations

import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LANGS = ("en", "zh")


class _Defaulting(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass
class Answers:
    root: Path
    check_every_s: float = 2.0
    _texts: dict[str, dict[str, str]] = field(default_factory=dict)
    _defaults: dict[str, dict[str, str]] = field(default_factory=dict)
    _stamp: tuple[tuple[str, float], ...] = ()
    _checked: float = 0.0

    def __post_init__(self) -> None:
        self.reload()

    def _scan(self) -> tuple[tuple[str, float], ...]:
        files: list[tuple[str, float]] = []
        for lang in LANGS:
            d = self.root / lang
            if d.is_dir():
                files.extend((str(p), p.stat().st_mtime) for p in sorted(d.glob("*.yml")))
        return tuple(files)

    def reload(self) -> None:
        """Read every answers file; raises ValueError naming the file on bad content."""
        texts: dict[str, dict[str, str]] = {lang: {} for lang in LANGS}
        defaults: dict[str, dict[str, str]] = {lang: {} for lang in LANGS}
        stamp = self._scan()
        for path_s, _ in stamp:
            path = Path(path_s)
            lang = path.parent.name
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as e:
                raise ValueError(f"{path}: not valid YAML ({e})") from None
            if not isinstance(data, dict):
                raise ValueError(f"{path}: must map intent names to texts")
            for key, val in data.items():
                if key == "_defaults":
                    if isinstance(val, dict):
                        defaults[lang].update({str(k): str(v) for k, v in val.items()})
                    continue
                if isinstance(val, dict) and "text" in val:
                    val = val["text"]
                if not isinstance(val, str) or not val.strip():
                    raise ValueError(f"{path}: {key}: answer must be a non-empty text")
                texts[lang][str(key)] = val.strip()
        self._texts, self._defaults, self._stamp = texts, defaults, stamp
        self._checked = time.monotonic()

    def maybe_reload(self) -> bool:
        """Reload when a file changed (checked at most every `check_every_s`)."""
        now = time.monotonic()
        if now - self._checked < self.check_every_s:
            return False
        self._checked = now
        if self._scan() != self._stamp:
            try:
                self.reload()
            except ValueError:
                return False  # keep serving the last good answers; `switchboard answers check` says why
            return True
        return False

    def has(self, key: str, lang: str) -> bool:
        return key in self._texts.get(lang, {})

    def keys(self, lang: str) -> set[str]:
        return set(self._texts.get(lang, {}))

    def get(self, key: str, lang: str, **slots: Any) -> str | None:
        text = self._texts.get(lang, {}).get(key)
        if text is None:
            return None
        values = _Defaulting(self._defaults.get(lang, {}))
        values.update({k: str(v) for k, v in slots.items() if v})
        try:
            return string.Formatter().vformat(text, (), values)
        except (ValueError, IndexError):
            return text
