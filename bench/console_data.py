"""A realistic ticket database for the console at incident scale, loaded fast (executemany on
SQLite, COPY on PostgreSQL) into a database already migrated to head.

Deterministic for a seed. Users write in English and Chinese about withdrawals, deposits, cards,
frozen accounts, hacked accounts; messages carry TxIDs, addresses, order ids and e-mail
addresses. The word "card" appears only as the words card/cards and 卡 only inside 银行卡/卡住/信用卡,
so a test can compute the truth of a search from the text alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from handoff import search

CHANNELS = ("web", "email", "telegram", "twitter")
TOPICS = (("theft", "urgent"), ("compliance", "high"), ("human", "normal"), ("human", "low"))
NAMES = ("Lin Wei", "Mei Chen", "Alice Moore", "Bob Stone", "张伟", "王芳", "李娜", "Carlos Diaz", "Ivan Petrov",
         "Sara Kim", None, None)
EN = (
    "My BTC withdrawal has been pending for {h} hours, TxID {tx}",
    "I sent USDT to {addr} on TRC20 and it never arrived",
    "My card payment failed twice, order {order}, please help",
    "Someone logged into my account and withdrew {n} ETH to {addr}",
    "Why is my account frozen? I need my funds for rent",
    "I want to talk to a real person about order {order}",
    "Bank cards are declined when I buy crypto, what is going on",
    "Please check deposit {tx}, the explorer says confirmed",
    "Hello, any update on my case? It has been {h} hours",
    "I got an e-mail from {email} asking for my 2FA code, is it you?",
)
ZH = (
    "我的BTC提币已经等了{h}个小时，交易哈希 {tx}",
    "我用银行卡买币失败了，订单号 {order}",
    "充值到 {addr} 一直没有到账",
    "我的账户被盗了，有人提走了 {n} ETH",
    "为什么我的账户被冻结了？请尽快处理",
    "提币卡住了，订单 {order} 还在处理中",
    "我要人工客服，信用卡扣款了但是没有到账",
    "请帮我查一下这笔充值 {tx}",
    "你好，请问我的问题有进展吗？已经{h}小时了",
    "收到 {email} 发来的邮件要验证码，是你们吗？",
)
AGENT_EN = ("Thanks, I'm looking into it now.", "Could you send the TxID and the network?",
            "We have escalated this to our wallet team.")
AGENT_ZH = ("您好，我正在为您查询。", "请提供交易哈希和网络。", "已升级给钱包团队处理。")


@dataclass(frozen=True, slots=True)
class Sizes:
    tickets: int
    messages: int
    agents: int = 20
    open_share: float = 0.3


def _tx(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(64))


def _addr(rng: random.Random) -> str:
    return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40))


def _fill(tpl: str, rng: random.Random) -> str:
    return tpl.format(h=rng.randint(2, 72), tx=_tx(rng), addr=_addr(rng), order=rng.randint(10**9, 10**10 - 1),
                      n=rng.randint(1, 40), email=f"support{rng.randint(1, 999)}@secure-mail.example")


async def _insert(conn: AsyncConnection, table: str, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(table, records=rows, columns=cols)  # type: ignore[union-attr]
        return
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    raw = await conn.get_raw_connection()
    await raw.driver_connection.executemany(sql, rows)  # type: ignore[union-attr]


def _ts(d: datetime, pg: bool) -> Any:
    return d if pg else d.strftime("%Y-%m-%d %H:%M:%S.%f")


async def load(engine: AsyncEngine, sizes: Sizes, *, seed: int = 26, now: datetime | None = None,
               password_hash: str = "x", batch: int = 5000) -> dict[str, Any]:
    """Fill an empty, migrated database. Returns what the caller may want to know (agent ids…)."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    pg = engine.dialect.name == "postgresql"
    async with engine.begin() as conn:  # agents after any already there (a test's own supervisor)
        first = int((await conn.execute(text("SELECT coalesce(max(id), 0) FROM agents"))).scalar_one()) + 1
        agent_ids = list(range(first, first + sizes.agents))
        agents = [(i, f"agent{i}@example.com", f"Agent {i}", password_hash, "agent", True, _ts(now, pg))
                  for i in agent_ids]
        await _insert(conn, "agents", ["id", "email", "name", "password_hash", "role", "active", "created_at"], agents)
    # exactly `messages` in all, spread unevenly (some tickets are long threads)
    base, extra = divmod(sizes.messages, sizes.tickets)
    per = [base + (1 if i < extra else 0) for i in range(sizes.tickets)]
    for i in range(sizes.tickets):
        j = rng.randrange(sizes.tickets)
        d = rng.randint(0, max(0, min(per[i] - 1, base)))
        per[i] -= d
        per[j] += d
    msg_id = 0
    ranks = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
    first_resp = {"urgent": 15, "high": 60, "normal": 240, "low": 1440}
    for start in range(0, sizes.tickets, batch):
        contacts, idents, tickets, messages, docs = [], [], [], [], []
        for tid in range(start + 1, min(sizes.tickets, start + batch) + 1):
            ch = CHANNELS[tid % len(CHANNELS)]
            zh = rng.random() < 0.45
            name = rng.choice(NAMES)
            source = (f"user{tid}@mail.example" if ch == "email" else f"@user{tid}" if ch == "twitter"
                      else str(700000 + tid) if ch == "telegram" else f"sess-{tid:08d}")
            topic, prio = TOPICS[rng.choices(range(4), weights=(25, 15, 45, 15))[0]]
            created = now - timedelta(minutes=rng.randint(1, 60 * 24 * 30))
            if rng.random() < sizes.open_share:
                status = rng.choices(("new", "open", "pending_user"), weights=(50, 35, 15))[0]
                created = now - timedelta(minutes=rng.randint(1, 60 * 48))
            else:
                status = rng.choices(("resolved", "closed"), weights=(85, 15))[0]
            assignee = None if status == "new" else rng.choice(agent_ids)
            frd = created + timedelta(minutes=first_resp[prio])
            resd = created + timedelta(minutes=first_resp[prio] * 8)
            responded = None if status == "new" else created + timedelta(minutes=rng.randint(1, first_resp[prio]))
            due = frd if responded is None else resd
            warn = created + (due - created) * 0.75
            resolved_at = created + timedelta(minutes=rng.randint(5, 600)) if status in ("resolved", "closed") else None
            number = f"SB-{tid:06d}"
            contacts.append((tid, name, 0, _ts(created, pg)))
            idents.append((tid, tid, ch, source, name))
            tickets.append((tid, number, tid, ch, f"{ch}:{source}", topic, f"{topic}_x", prio, ranks[prio], status,
                            "zh" if zh else "en", assignee, "{}", _ts(created, pg), _ts(resolved_at or created, pg),
                            None if responded else _ts(created, pg), _ts(frd, pg), _ts(resd, pg),
                            _ts(responded, pg) if responded else None, _ts(resolved_at, pg) if resolved_at else None,
                            _ts(due, pg), _ts(warn, pg)))
            n = per[tid - 1]
            bodies = []
            for k in range(n):
                msg_id += 1
                if k % 2 == 0:
                    body, direction, author = _fill(rng.choice(ZH if zh else EN), rng), "in", "user"
                else:
                    body, direction, author = rng.choice(AGENT_ZH if zh else AGENT_EN), "out", "agent"
                bodies.append(body)
                at = created + timedelta(minutes=k)
                messages.append((msg_id, tid, direction, author, assignee if author == "agent" else None, ch, body, "[]",
                                 _ts(at, pg)))
            docs.append((tid, search.document([*search.ticket_number_parts(number), name, source, topic,
                                               f"{topic}_x", *bodies])))
        async with engine.begin() as conn:
            await _insert(conn, "contacts", ["id", "name", "vip", "created_at"], contacts)
            await _insert(conn, "contact_identities", ["id", "contact_id", "channel", "source_id", "label"], idents)
            await _insert(conn, "tickets", [
                "id", "number", "contact_id", "channel", "conversation_id", "topic", "intent", "priority", "priority_rank",
                "status", "lang", "assignee_id", "channel_meta", "created_at", "updated_at", "waiting_since",
                "first_response_due", "resolution_due", "first_responded_at", "resolved_at", "sla_due_at",
                "sla_warn_at"], tickets)
            await _insert(conn, "ticket_messages", ["id", "ticket_id", "direction", "author_type", "author_id", "channel",
                                                    "body", "attachments", "created_at"], messages)
            for stmt, params in search._writes(conn.dialect.name, docs):
                await conn.execute(stmt, params)
    if pg:  # the steady state autovacuum keeps: statistics, and the visibility map for index-only scans
        async with engine.connect() as conn:
            conn2 = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn2.execute(text("VACUUM ANALYZE"))
    async with engine.begin() as conn:
        if pg:
            for t in ("agents", "contacts", "contact_identities", "tickets", "ticket_messages"):
                await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                                        f"(SELECT max(id) FROM {t}))"))
        else:
            await conn.execute(text("ANALYZE"))
            await conn.execute(text("INSERT INTO ticket_search(ticket_search) VALUES ('optimize')"))
    return {"agents": sizes.agents, "tickets": sizes.tickets, "messages": msg_id}
