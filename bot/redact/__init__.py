"""Secret redaction, applied before the queue, the NLU, logs and storage ever see a text.

Seed phrases (BIP-39 word runs from every official word list), private keys (hex with key
context, WIF, extended keys, Solana-style), API secrets (and 2FA setup keys), passwords,
passphrases, one-time codes (and 2FA backup codes), and payment card numbers with their security
codes are replaced by ``[REDACTED:<kind>]``. What agents need — TxIDs, hashes, addresses, UIDs, order
ids, ticket numbers, amounts, dates, phone numbers, e-mail addresses, questions about secrets —
stays intact. Every detector is linear in the length of the text (no pattern can backtrack
catastrophically), and `redact_async` moves large texts off the event loop.

Detectors live beside this module (`seed`, `keys`, `credentials`, `cards`); each returns spans of the
original text, and overlapping spans merge under the most severe kind.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from bot.redact import cards, credentials, keys, seed
from bot.redact._doc import MARK, Doc

SEED = "seed_phrase"
PRIVATE_KEY = "private_key"
API_SECRET = credentials.API_SECRET
PASSWORD = credentials.PASSWORD
OTP = credentials.OTP
CARD = cards.CARD
KINDS = (SEED, PRIVATE_KEY, API_SECRET, PASSWORD, CARD, OTP)
# Kinds that mean the user's funds are exposed (the policy opens an urgent theft ticket).
EXPOSING = frozenset({SEED, PRIVATE_KEY, API_SECRET})
_RANK = {k: i for i, k in enumerate(KINDS)}

# Texts longer than this are redacted in a worker thread by `redact_async`.
ASYNC_THRESHOLD = 8192


def _engine() -> str:
    """These detectors, as a short hash: their source and the word lists' package version."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    try:
        h.update(importlib.metadata.version("mnemonic").encode())
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a dependency
        pass
    return h.hexdigest()[:16]


# The intake stamps every message it puts on the queue with the engine that redacted it
# (`meta[REDACTED_BY]`); the router redacts again only what this very engine did not redact
# (a message queued by an older or newer version, or by something else than the intake).
ENGINE = _engine()
REDACTED_BY = "redacted_by"


def mark(kind: str) -> str:
    return f"[REDACTED:{kind}]"


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    kinds: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.kinds)


def _spans(doc: Doc) -> list[tuple[int, int, str]]:
    out = [(s, e, SEED) for s, e in seed.find(doc)]
    out += [(s, e, PRIVATE_KEY) for s, e in keys.find(doc)]
    out += [(h.start, h.end, h.kind) for h in credentials.find(doc)]
    out += [(s, e, CARD) for s, e in cards.find(doc)]
    return [(s, e, k) for s, e, k in out if e > s and not doc.in_mark(s, e)]


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for s, e, k in sorted(spans):
        if merged and s < merged[-1][1]:
            ps, pe, pk = merged[-1]
            merged[-1] = (ps, max(pe, e), pk if _RANK[pk] <= _RANK[k] else k)
        else:
            merged.append((s, e, k))
    return merged


def redact(text: str) -> Redacted:
    """Replace every secret in `text`; returns the new text and the kinds found (in order).
    Marks already in the text (`[REDACTED:…]`) are left as they are and not counted again."""
    if not text:
        return Redacted(text, ())
    doc = Doc(text)
    spans = _merge(_spans(doc))
    if not spans:
        return Redacted(text, ())
    parts: list[str] = []
    pos = 0
    for s, e, k in spans:
        parts.append(text[pos:s])
        parts.append(mark(k))
        pos = e
    parts.append(text[pos:])
    return Redacted("".join(parts), tuple(k for _, _, k in spans))


async def redact_async(text: str) -> Redacted:
    """`redact`, in a worker thread for large texts so the event loop never waits on it."""
    if len(text) <= ASYNC_THRESHOLD:
        return redact(text)
    return await asyncio.to_thread(redact, text)


def kinds_in(text: str) -> tuple[str, ...]:
    """The kinds of the redaction marks already in `text` (what an earlier pass found)."""
    if "[REDACTED:" not in text:
        return ()
    return tuple(m.group(0)[10:-1] for m in MARK.finditer(text) if m.group(0)[10:-1] in _RANK)


def kinds_found(text: str, recorded: str | None = None, *more: tuple[str, ...]) -> tuple[str, ...]:
    """Every kind of secret a message was found to carry, whichever pass found it: the marks in
    its text (the channel or intake replaced them), the kinds intake recorded in the message's
    `meta["redacted"]` (comma-separated), and any further passes. Redacting already-redacted text
    finds nothing new — the decision must still know a seed phrase was pasted."""
    seen: dict[str, None] = {}
    for k in (*kinds_in(text), *(recorded or "").split(","), *(k for m in more for k in m)):
        if k in _RANK:
            seen.setdefault(k, None)
    return tuple(seen)


def count_marks(text: str) -> int:
    return text.count("[REDACTED:")
