"""Files users send (e-mail attachments, widget uploads): safe names, atomic writes, text files
redacted before they are stored, and reading back only from inside a store."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from bot.redact import redact

_TEXT_EXTENSIONS = frozenset({".txt", ".csv", ".log", ".json", ".md", ".htm", ".html", ".xml", ".eml", ".tsv"})

# The files users may send on every channel that keeps them (the widget's uploads, Telegram, X):
# screenshots, statements, plain text and short screen recordings. Anything else (an .apk, an
# .exe, an archive) is not kept, and the user is told so.
DEFAULT_ATTACHMENT_TYPES: tuple[str, ...] = (
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain", "video/mp4",
)
# Never kept whatever the declared type says: programs and installers a scammer (or a victim's
# infected phone) might send along.
BLOCKED_EXTENSIONS = frozenset({
    ".apk", ".aab", ".exe", ".msi", ".bat", ".cmd", ".com", ".scr", ".js", ".jar", ".vbs", ".ps1",
    ".sh", ".dmg", ".pkg", ".app", ".ipa", ".deb", ".rpm", ".dll", ".lnk", ".hta", ".iso",
})


def attachment_refusal(content_type: str, name: str, size: int, *, allowed: tuple[str, ...],
                       max_bytes: int) -> str | None:
    """Why a file a user sent is not kept — "type" or "size" — or None when it is kept. One rule
    for every channel, so the same screenshot is accepted (and the same .apk refused) anywhere."""
    ct = content_type.split(";")[0].strip().lower()
    ext = os.path.splitext(name)[1].lower()
    family = ct.split("/", 1)[0] + "/*"
    if ext in BLOCKED_EXTENSIONS or (ct not in allowed and family not in allowed):
        return "type"
    if size > max_bytes:
        return "size"
    return None


def safe_filename(name: str) -> str:
    """A file name that is safe on any disk: no path parts, no control or shell characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f<>:\"|?*]", "_", name).strip(" .")
    stem, dot, ext = name.rpartition(".")
    if dot and len(ext) <= 10:
        return f"{stem[:100]}.{ext}" or "attachment"
    return name[:110] or "attachment"


def is_text(content_type: str, name: str) -> bool:
    """Text we can read — and must redact — whatever the sender called it."""
    ct = content_type.split(";")[0].strip().lower()
    ext = os.path.splitext(name)[1].lower()
    return ct.startswith("text/") or ct in ("application/json", "message/rfc822", "application/csv") or ext in _TEXT_EXTENSIONS


def _decode(data: bytes) -> str:
    for codec in ("utf-8", "gb18030", "big5hkscs"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def redact_text_file(data: bytes, decode: Callable[[bytes], str] = _decode) -> tuple[bytes, list[str]]:
    """A text file redacted, as UTF-8, and the kinds of secret removed. In chunks of about 64 KB
    cut between paragraphs (lines for very long ones), so that a seed phrase written one word per
    paragraph is still one phrase, while one call never holds the interpreter for a whole
    multi-megabyte log (callers run this in a worker thread)."""
    text = decode(data)
    out: list[str] = []
    kinds: set[str] = set()
    chunk: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if chunk:
            red = redact("".join(chunk))
            out.append(red.text)
            kinds.update(red.kinds)
            chunk.clear()
            size = 0

    for para in re.split(r"(\n[ \t]*\n)", text):
        for piece in (para.splitlines(keepends=True) if len(para) > _CHUNK else (para,)):
            if size + len(piece) > _CHUNK:
                flush()
            chunk.append(piece)
            size += len(piece)
    flush()
    return "".join(out).encode("utf-8"), sorted(kinds)


_CHUNK = 65536


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_inside(root: Path, ref: str) -> bytes:
    """The file `ref` (relative) under `root`; FileNotFoundError for anything outside it."""
    base = root.resolve()
    path = (base / ref).resolve()
    if base not in path.parents or not path.is_file():
        raise FileNotFoundError(ref)
    return path.read_bytes()
