"""Does a file's content match the type the browser declared?

A declared `Content-Type` is whatever the sender wants it to be: an `.exe` can arrive as
`application/pdf`, an HTML page as `image/png`. Each type the widget accepts has a signature in its
first bytes (its "magic number"); text has none, so text is anything that is not binary (no NUL
bytes, not one of the binary signatures below). A type without a rule here is refused.
"""

from __future__ import annotations

from collections.abc import Callable


def _png(b: bytes) -> bool:
    return b.startswith(b"\x89PNG\r\n\x1a\n")


def _jpeg(b: bytes) -> bool:
    return b.startswith(b"\xff\xd8\xff")


def _gif(b: bytes) -> bool:
    return b.startswith((b"GIF87a", b"GIF89a"))


def _webp(b: bytes) -> bool:
    return len(b) >= 12 and b[:4] == b"RIFF" and b[8:12] == b"WEBP"


def _pdf(b: bytes) -> bool:
    # PDF readers accept the header anywhere in the first 1 KB; senders put it first.
    return b.startswith(b"%PDF-")


def _mp4(b: bytes) -> bool:
    # ISO base media: a box size, then the `ftyp` box type.
    return len(b) >= 12 and b[4:8] == b"ftyp"


_BINARY = (_png, _jpeg, _gif, _webp, _pdf, _mp4)
_OTHER_BINARY = (b"MZ", b"\x7fELF", b"PK\x03\x04", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"Rar!", b"7z\xbc\xaf")


def _text(b: bytes) -> bool:
    head = b[:8192]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a BOM has NULs
        return False
    return not head.startswith(_OTHER_BINARY) and not any(rule(head) for rule in _BINARY)


RULES: dict[str, Callable[[bytes], bool]] = {
    "image/png": _png,
    "image/jpeg": _jpeg,
    "image/gif": _gif,
    "image/webp": _webp,
    "application/pdf": _pdf,
    "video/mp4": _mp4,
    "text/plain": _text,
    "text/csv": _text,
}


def matches_type(data: bytes, content_type: str) -> bool:
    rule = RULES.get(content_type)
    return bool(data) and rule is not None and rule(data)
