"""Language detection for the two languages we serve (zh, en).

Cheap on purpose (runs on every message): Chinese if the text has enough Han characters
relative to its letters; mixed messages like "USDT充值没到账" are Chinese.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]


def _is_han(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0xF900 <= o <= 0xFAFF
        or 0x20000 <= o <= 0x2A6DF
    )


def detect_language(text: str, hint: str | None = None) -> Lang:
    """Return "zh" or "en" for a message.

    `hint` (a channel's language code such as Telegram's ``language_code`` or a browser's
    ``navigator.language``) decides only when the text itself carries no letters.
    """
    han = 0
    latin = 0
    for ch in text:
        if _is_han(ch):
            han += 1
        elif ch.isascii() and ch.isalpha():
            latin += 1
    if han == 0 and latin == 0:
        if hint and hint.lower().startswith("zh"):
            return "zh"
        return "en"
    if han >= 2 or (han >= 1 and latin <= 6):
        return "zh"
    return "en"
