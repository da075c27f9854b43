"""Full-text search over tickets, in Chinese and English, on SQLite and PostgreSQL alike.

One search document per ticket: its number, the contact's name and identities (e-mail address,
Telegram/X handle, widget session), the e-mail subject, topic, tags and every message body
(redacted text only, as stored). The document is tokenized here, in Python, the same way for
both databases, so a search finds the same tickets on either:

- text is NFKC-normalized (full-width ＵＳＤＴ１２３ → usdt123) and case-folded;
- runs of letters/digits are one token each (`card`, a TxID, an address, an order id); `@`, `.`,
  `-`, `_` split them, so `lin@example.com` is the phrase `lin example com`;
- Chinese is indexed as every character and every pair of adjacent characters (the classic CJK
  bigram scheme): `卡` finds every ticket with the character, `银行卡` is `银行 AND 行卡`. Word
  segmentation (jieba) would miss `卡` inside `银行卡`, needs a 20 MB dictionary in the web process
  and is not in the product's environment; phrase queries over single characters were exact but
  cost PostgreSQL a re-check of every candidate document (measured: 110–600 ms at 100,000
  tickets), pairs are answered from the index alone.

SQLite: an FTS5 table `ticket_search` (rowid = ticket id) over the tokens joined by spaces, with
the `unicode61` tokenizer (which then only splits on the spaces we put). PostgreSQL: a table
`ticket_search(ticket_id, doc tsvector)` with a GIN index; the tsvector is built from our tokens
(a `'tok':pos` literal, never the server's parser, whose idea of a CJK letter depends on the
database locale). Queries: every term must match (AND); words of one term are a phrase; the last
word of each term matches as a prefix (`card` finds `cards`), so typing finds results before the
word is complete.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

MAX_DOC_CHARS = 200_000  # a ticket with a huge mail thread: the first 200k characters are searchable
MAX_TERMS = 12
# A longer run of letters/digits (a pasted token, a base64 blob) is indexed and searched by its
# first MAX_WORD_CHARS characters: PostgreSQL refuses a tsvector lexeme over 2047 bytes, which
# would fail the ticket's whole write (and dead-letter the user's handoff).
MAX_WORD_CHARS = 255
PG_MAX_POS = 16383  # tsvector positions stop there (phrases past it match less precisely)

_CJK = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
    "\U00020000-\U0002ebef"
)
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+", re.UNICODE)
_RUN = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>[^\W_{_CJK}]+)", re.UNICODE)


def normalize(s: str) -> str:
    return unicodedata.normalize("NFKC", s).casefold()


def tokens(s: str) -> list[str]:
    """The words of a text: each CJK character, each run of letters/digits (highlighting)."""
    return [t[:MAX_WORD_CHARS] for t in _TOKEN.findall(normalize(s))]


def index_tokens(s: str) -> list[str]:
    """What a document is indexed as: words, and for Chinese every character *and* every pair of
    adjacent characters (银行卡 → 银 银行 行 行卡 卡), so a one-character search (卡) and a longer one
    (银行卡 = 银行 AND 行卡) are both answered from the index alone, without phrase positions."""
    out: list[str] = []
    for m in _RUN.finditer(normalize(s)):
        run = m.group("cjk")
        if run is None:
            out.append(m.group("word")[:MAX_WORD_CHARS])
            continue
        for i, ch in enumerate(run):
            out.append(ch)
            if i + 1 < len(run):
                out.append(run[i:i + 2])
    return out


@dataclass(frozen=True, slots=True)
class Group:
    """A piece of a search term: Chinese (all its character pairs must appear) or words (a phrase)."""

    cjk: bool
    tokens: tuple[str, ...]


def groups(term: str) -> list[Group]:
    out: list[Group] = []
    for m in _RUN.finditer(normalize(term)):
        run = m.group("cjk")
        if run is not None:
            pairs = tuple(dict.fromkeys(run[i:i + 2] for i in range(len(run) - 1))) if len(run) > 1 else (run,)
            out.append(Group(True, pairs))
        elif out and not out[-1].cjk:
            out[-1] = Group(False, (*out[-1].tokens, m.group("word")))
        else:
            out.append(Group(False, (m.group("word"),)))
    return out


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed search: terms (split on whitespace, or "quoted"); all terms must match. Words of
    one term are a phrase (`lin@example.com`); the term's last word matches as a prefix."""

    raw: str
    terms: tuple[tuple[str, ...], ...]  # each term's words, for highlighting
    parts: tuple[tuple[Group, ...], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.parts

    def fts5(self) -> str:
        """The FTS5 MATCH expression, e.g. `"银行" AND "行卡" AND "card" *`."""
        out: list[str] = []
        for term in self.parts:
            for i, g in enumerate(term):
                last = i == len(term) - 1
                if g.cjk:
                    out.extend(f'"{t}"' for t in g.tokens)
                else:
                    out.append(" + ".join(f'"{t}"' for t in g.tokens) + (" *" if last else ""))
        return " AND ".join(out)

    def tsquery(self) -> str:
        """The PostgreSQL tsquery, e.g. `'银行' & '行卡' & 'card':*` (phrases `<->` for words only)."""
        out: list[str] = []
        for term in self.parts:
            for i, g in enumerate(term):
                last = i == len(term) - 1
                if g.cjk:
                    out.extend(f"'{t}'" for t in g.tokens)
                else:
                    lex = [f"'{t}'" for t in g.tokens]
                    if last:
                        lex[-1] += ":*"
                    out.append(lex[0] if len(lex) == 1 else "(" + " <-> ".join(lex) + ")")
        return " & ".join(out)


def parse(q: str | None) -> Query:
    """Split a query on whitespace into terms. Quotes group words into one phrase:
    `"withdrawal delayed"`."""
    raw = (q or "").strip()[:500]
    terms: list[tuple[str, ...]] = []
    parts: list[tuple[Group, ...]] = []
    for m in re.finditer(r'"([^"]+)"|(\S+)', raw):
        text_ = m.group(1) or m.group(2)
        toks = tuple(tokens(text_))
        if toks and toks not in terms:
            terms.append(toks)
            parts.append(tuple(groups(text_)))
    return Query(raw, tuple(terms[:MAX_TERMS]), tuple(parts[:MAX_TERMS]))


def document(parts: Iterable[str | None]) -> list[str]:
    out: list[str] = []
    size = 0
    for p in parts:
        if not p:
            continue
        size += len(p)
        out.extend(index_tokens(p))
        if size > MAX_DOC_CHARS:
            break
    return out


def ticket_number_parts(number: str | None) -> list[str]:
    """`SB-000123` is found as `SB-000123`, `000123` and `123`."""
    if not number:
        return []
    digits = number.split("-")[-1]
    return [number, digits.lstrip("0") or "0"]


def tsvector_literal(toks: Sequence[str]) -> str:
    """A tsvector in its text form with positions, built from our own tokens."""
    pos: dict[str, list[int]] = {}
    for i, t in enumerate(toks, 1):
        pos.setdefault(t, []).append(min(i, PG_MAX_POS))
    return " ".join(f"'{t}':{','.join(str(p) for p in ps[:256])}" for t, ps in pos.items())


# -- maintaining the index --------------------------------------------------------------------------
def _reads(chunk: Sequence[int]) -> list[Any]:
    from sqlalchemy import select

    from handoff.models import Contact, ContactIdentity, Ticket, TicketMessage, TicketTag

    return [
        select(Ticket.id, Ticket.number, Ticket.conversation_id, Ticket.topic, Ticket.intent, Ticket.channel_meta,
               Ticket.contact_id, Contact.name).join(Contact, Contact.id == Ticket.contact_id).where(Ticket.id.in_(chunk)),
        select(ContactIdentity.contact_id, ContactIdentity.source_id, ContactIdentity.label)
        .join(Ticket, Ticket.contact_id == ContactIdentity.contact_id).where(Ticket.id.in_(chunk)),
        select(TicketTag.ticket_id, TicketTag.tag).where(TicketTag.ticket_id.in_(chunk)),
        select(TicketMessage.ticket_id, TicketMessage.body).where(TicketMessage.ticket_id.in_(chunk))
        .order_by(TicketMessage.id),
    ]


def _docs(rows: Sequence[Any], ident_rows: Sequence[Any], tag_rows: Sequence[Any],
          body_rows: Sequence[Any]) -> list[tuple[int, list[str]]]:
    idents: dict[int, set[str]] = {}
    for ci in ident_rows:
        idents.setdefault(ci.contact_id, set()).update([ci.source_id, ci.label or ""])
    tags: dict[int, list[str]] = {}
    for tt in tag_rows:
        tags.setdefault(tt.ticket_id, []).append(tt.tag)
    bodies: dict[int, list[str]] = {}
    for m in body_rows:
        bodies.setdefault(m.ticket_id, []).append(m.body)
    docs = []
    for r in rows:
        meta = r.channel_meta or {}
        toks = document([*ticket_number_parts(r.number), r.name, *sorted(idents.get(r.contact_id, ())),
                         str(meta.get("reply_subject") or ""), r.topic, r.intent, *tags.get(r.id, []),
                         *bodies.get(r.id, [])])
        docs.append((r.id, toks))
    return docs


def _writes(dialect: str, docs: Sequence[tuple[int, Sequence[str]]]) -> list[tuple[Any, list[dict[str, Any]]]]:
    if not docs:
        return []
    if dialect == "postgresql":
        return [(text("INSERT INTO ticket_search (ticket_id, doc) VALUES (:id, CAST(:doc AS tsvector)) "
                      "ON CONFLICT (ticket_id) DO UPDATE SET doc = EXCLUDED.doc"),
                 [{"id": i, "doc": tsvector_literal(t)} for i, t in docs])]
    return [(text("DELETE FROM ticket_search WHERE rowid = :id"), [{"id": i} for i, _ in docs]),
            (text("INSERT INTO ticket_search (rowid, doc) VALUES (:id, :doc)"),
             [{"id": i, "doc": " ".join(t)} for i, t in docs])]


def _chunks(ticket_ids: Iterable[int], n: int = 500) -> list[list[int]]:
    ids = sorted(set(ticket_ids))
    return [ids[i:i + n] for i in range(0, len(ids), n)]


def dialect_name(s: AsyncSession | AsyncConnection) -> str:
    bind = s.get_bind() if isinstance(s, AsyncSession) else s
    return str(bind.dialect.name)


async def reindex(conn: AsyncConnection | AsyncSession, ticket_ids: Iterable[int]) -> None:
    """Rebuild the search documents of these tickets from the database (call it in the same
    transaction that changed them: the index is never behind what the console shows)."""
    dialect = dialect_name(conn)
    for chunk in _chunks(ticket_ids):
        res = [(await conn.execute(stmt)).all() for stmt in _reads(chunk)]
        for stmt, params in _writes(dialect, _docs(*res)):
            await conn.execute(stmt, params)


def reindex_sync(conn: Any, ticket_ids: Iterable[int]) -> None:
    """The same for a synchronous connection (migrations, the benchmark's loader)."""
    for chunk in _chunks(ticket_ids):
        res = [conn.execute(stmt).all() for stmt in _reads(chunk)]
        for stmt, params in _writes(conn.dialect.name, _docs(*res)):
            conn.execute(stmt, params)


def match_ids_sql(dialect: str) -> str:
    """SQL selecting the ids of the tickets whose document matches `:sq`."""
    if dialect == "postgresql":
        return "SELECT ticket_id FROM ticket_search WHERE doc @@ CAST(:sq AS tsquery)"
    return "SELECT rowid FROM ticket_search WHERE ticket_search MATCH :sq"


def query_param(dialect: str, q: Query) -> str:
    return q.tsquery() if dialect == "postgresql" else q.fts5()


# -- highlighting -------------------------------------------------------------------------------------
def highlight(s: str, q: Query, width: int = 160) -> dict[str, Any] | None:
    """A snippet of `s` around the first match of the query, with the matched ranges
    ([start, end) in the snippet) for the console to mark — no HTML from the server."""
    if not s or q.empty:
        return None
    norm = normalize(s)
    if len(norm) != len(s):  # NFKC changed lengths (rare ligatures): match on case-folding only
        norm = s.casefold() if len(s.casefold()) == len(s) else s.lower()
    ranges: list[tuple[int, int]] = []
    for term in q.terms:
        for needle in _needles(term):
            start = 0
            while (i := norm.find(needle, start)) >= 0 and len(ranges) < 50:
                ranges.append((i, i + len(needle)))
                start = i + len(needle)
    if not ranges:
        return None
    ranges.sort()
    first = ranges[0][0]
    lo = max(0, first - width // 3)
    hi = min(len(s), lo + width)
    snippet = s[lo:hi]
    out = [[a - lo, min(b, hi) - lo] for a, b in _merge(ranges) if a >= lo and a < hi]
    return {"text": ("…" if lo else "") + snippet + ("…" if hi < len(s) else ""),
            "marks": [[a + (1 if lo else 0), b + (1 if lo else 0)] for a, b in out]}


def _needles(term: tuple[str, ...]) -> list[str]:
    """How a term may appear in the original text: CJK characters adjacent, words separated by
    one non-word character (`lin@example.com`), or the words alone."""
    if all(len(t) == 1 and not t.isascii() for t in term):
        return ["".join(term)]
    if len(term) == 1:
        return [term[0]]
    return [*term]


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def matches(s: str, q: Query) -> bool:
    n = normalize(s)
    return all(all(t in n for t in _needles(term)) for term in q.terms)
