"""Files users send (e-mail attachments, widget uploads): safe names, atomic writes, text files
redacted before they are stored, and reading back only from inside a store."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from bot.redact import redact

_TEXT_EXTENSIONS = frozenset({".txt", ".csv", ".log", ".json", ".md", ".htm", ".html", ".xml", ".eml", ".tsv"})


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
