"""Secrets planted in Telegram, X (Twitter) and email messages never reach Redis, the ticket
database, the files the product writes, the logs, the NLU request — nor come back to the user in
a reply. The companion of test_secrets.py (web widget), on the real product processes.

`switchboard run --role web` and `--role router` run as subprocesses with a config file that
enables the three channels, each pointed at a local peer:
- Telegram: webhook mode; updates are POSTed to the web role's webhook route with the secret
  header, the outbound Bot API calls go to `FakeBotAPI` (`base_url`).
- email: a private Dovecot (real IMAP, IDLE) the mails are delivered into, and an aiosmtpd capture
  server for the replies.
- X: webhook mode; Account Activity deliveries signed with the consumer secret are POSTed to the
  web role. tweepy's host is hard-coded (https://api.twitter.com) and the product has no setting
  for it, so the web process gets one test seam: a `sitecustomize` (on PYTHONPATH, written below)
  that rewrites that host to `FakeXAPI` in aiohttp. Everything else is the unmodified product.
Rasa is the session's real server behind a recording proxy.
"""

from __future__ import annotations

import asyncio
import base64
import email
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Awaitable, Callable
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis
import redis.asyncio as aioredis

from channels.telegram.adapter import SECRET_HEADER
from tests.conftest import REDIS_URL, ROOT, config_copy, free_port, wait_port
from tests.fakes import telegram_api as tg
from tests.fakes import x_api as xf
from tests.fakes.telegram_api import FakeBotAPI
from tests.fakes.x_api import FakeXAPI
from tests.integration.email_peers import PASSWORD, USER, Dovecot, SmtpServer
from tests.integration.test_secrets import SECRETS as WIDGET_SECRETS
from tests.integration.test_secrets import SEED, redis_dump, start_proxy

pytestmark = [pytest.mark.redis, pytest.mark.rasa, pytest.mark.slow]

# The widget test's secrets, plus a Chinese BIP-39 seed phrase (simplified-Chinese word list).
SEED_ZH = "齿 截 炼 麻 纺 禁 废 盛 版 缓 净 睛"
SECRETS = {**WIDGET_SECRETS, "seed_zh": SEED_ZH}
PW, HEXKEY, API, OTP = (SECRETS[k] for k in ("password", "hexkey", "api", "otp"))

THEFT_EN = f"I think I was phished, my seed phrase is {SEED} and now my coins are gone"
# Issue #25 item 2: no theft words at all — the pasted phrase alone must make it an urgent ticket.
WALLET_SAFE = f"is my wallet safe? my words are {SEED}"
EN = [
    THEFT_EN,
    WALLET_SAFE,
    f"can't log in, my password is {PW}",
    f"here is my private key {HEXKEY} please check my wallet",
    f"my api secret: {API} is it safe?",
    f"my 2FA code is {OTP}, please help me withdraw",
]
ZH = [
    f"我被钓鱼了，我的助记词是 {SEED}，币全被盗了",
    f"我的助记词是 {SEED_ZH}，钱包里的币不见了",
    f"登录不了，我的密码是 {PW}",
    f"这是我的私钥 {HEXKEY} 帮我查一下钱包",
    f"我的API密钥：{API} 安全吗？",
    f"验证码 {OTP} 给你，帮我提币",
]
TEXTS = [(t, "en") for t in EN] + [(t, "zh") for t in ZH]

TG_SECRET = "tg-webhook_Secret42-kQ7vXz9LmN3pR5tW"
SUPPORT = USER
HAN = re.compile(r"[\u4e00-\u9fff]")

# tweepy → FakeXAPI in the web role (see the module docstring). Loaded by Python at start-up.
X_SHIM = '''
import os

_base = os.environ.get("SB_TEST_X_API_BASE")
if _base:
    import aiohttp
    import yarl

    _request = aiohttp.ClientSession._request

    async def _to_fake(self, method, str_or_url, *args, **kwargs):
        url = str(str_or_url)
        if url.startswith("https://api.twitter.com/"):
            str_or_url = yarl.URL(_base + url[len("https://api.twitter.com"):], encoded=True)
        return await _request(self, method, str_or_url, *args, **kwargs)

    aiohttp.ClientSession._request = _to_fake
'''


# -- what is sent in ------------------------------------------------------------------------------

def telegram_updates() -> list[dict[str, Any]]:
    """Every text from its own private chat, a photo caption, and `/human` with a secret."""
    ups = [tg.message(t, uid=7100 + i, lang="en" if lang == "en" else "zh-hans") for i, (t, lang) in enumerate(TEXTS)]
    ups.append(tg.photo(50_000, caption=f"screenshot of my wallet, private key {HEXKEY}", uid=7150))
    ups.append(tg.message(f"/human my password is {PW} and someone stole my BTC", uid=7151))
    ups.append(tg.message(f"/human 我的密码是 {PW}，币被盗了", uid=7152, lang="zh-hans"))
    return ups


def x_deliveries() -> list[dict[str, Any]]:
    """Each text as a public mention and as a DM, in Account Activity deliveries."""
    mentions = [xf.webhook_mention(str(81000 + i), str(8100 + i), f"user{i}", f"@{xf.ACCOUNT_HANDLE} {t}",
                                   lang=lang) for i, (t, lang) in enumerate(TEXTS)]
    dms = [xf.webhook_dm(str(82000 + i), str(8200 + i), t) for i, (t, _) in enumerate(TEXTS)]
    return [{"for_user_id": xf.ACCOUNT_ID, "tweet_create_events": mentions},
            {"for_user_id": xf.ACCOUNT_ID, "direct_message_events": dms}]


def _head(m: EmailMessage, sender: str, subject: str) -> None:
    m["From"] = f"User <{sender}>"
    m["To"] = f"Exchange Support <{SUPPORT}>"
    m["Subject"] = subject
    m["Date"] = formatdate(localtime=True)
    m["Message-ID"] = make_msgid(domain=sender.split("@")[1])


def _plain(sender: str, subject: str, body: str) -> bytes:
    m = EmailMessage()
    _head(m, sender, subject)
    m.set_content(body)
    return m.as_bytes()


def _gbk_mail(sender: str) -> bytes:
    """A Chinese mail the way many clients send it: GBK subject and body, base64."""
    def b64(s: str) -> str:
        return base64.b64encode(s.encode("gbk")).decode()

    body = f"{ZH[3]}\n{ZH[5]}\n"
    return (
        f"From: =?GBK?B?{b64('张伟')}?= <{sender}>\r\nTo: {SUPPORT}\r\n"
        f"Subject: =?GBK?B?{b64(ZH[4])}?=\r\nDate: {formatdate(localtime=True)}\r\n"
        f"Message-ID: {make_msgid(domain='example.cn')}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=\"gb2312\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes(body.encode("gbk"))


def mails() -> list[bytes]:
    """Secrets in subjects, bodies, quoted parts and HTML (HTML-only, and HTML beside a plain part)."""
    out = [
        _plain("victim@example.org", f"account stolen, my password is {PW}", f"{THEFT_EN}\n\n-- \nAnn Lee\nACME Ltd"),
        _plain("lin@example.cn", f"验证码 {OTP} 被骗了", f"{ZH[0]}\n{ZH[1]}\n"),
        _plain("quote@example.org", "Re: withdrawal question",
               "Any update on this?\n\nOn Mon, 1 Dec 2026 at 10:00, Quinn <quote@example.org> wrote:\n"
               f"> {EN[2]}\n> {EN[3]}\n"),
        _gbk_mail("zhang.wei@example.cn"),
        _plain("wallet@example.org", "quick question", WALLET_SAFE),
    ]
    # A secret in the sender's display name (shown to agents as the contact's label).
    named = EmailMessage()
    _head(named, "named@example.org", "cannot log in")
    named.replace_header("From", f'"my password is {PW}" <named@example.org>')
    named.set_content("Hello, I cannot log in since yesterday.")
    out.append(named.as_bytes())
    html_only = EmailMessage()
    _head(html_only, "html@example.org", "API key question")
    html_only.set_content(f"<html><body><p>{EN[3]}</p><blockquote>{EN[4]}</blockquote><p>{ZH[2]}</p></body></html>",
                          subtype="html")
    out.append(html_only.as_bytes())
    alt = EmailMessage()
    _head(alt, "alt@example.org", f"my private key {HEXKEY}")
    alt.set_content(f"{EN[1]}\n{ZH[2]}\n")
    alt.add_alternative(f"<p>{EN[1]}</p><p>{EN[2]}</p><p>{EN[4]}</p><p>{ZH[1]}</p>", subtype="html")
    out.append(alt.as_bytes())
    # Secrets inside text attachments (a UTF-8 note, a GBK log, a CSV export): stored redacted.
    att = EmailMessage()
    _head(att, "files@example.org", "logs attached")
    att.set_content("Please see the attached files, my withdrawal failed.")
    att.add_attachment(f"{EN[0]}\n{EN[3]}\n".encode(), maintype="text", subtype="plain", filename="notes.txt")
    att.add_attachment(f"{ZH[1]}\n{ZH[3]}\n".encode("gbk"), maintype="text", subtype="plain", filename="日志.txt")
    att.add_attachment(f"time,action\n2026-11-01,login password={PW}\n".encode(), maintype="text",
                       subtype="csv", filename="export.csv")
    out.append(att.as_bytes())
    return out


# -- the product --------------------------------------------------------------------------------

def write_config(tmp: Path, fake_tg: FakeBotAPI, dovecot: Dovecot, smtp_port: int, fake_x: FakeXAPI | None = None) -> Path:
    """The repo's config.yaml with the Telegram, email and (given its fake) X channels added
    (credentials from the environment, as in production) and the data and attachment folders in `tmp`."""
    telegram = f"""  - type: telegram
    token: ${{SB_TEST_TG_TOKEN}}
    mode: webhook
    webhook_secret: ${{SB_TEST_TG_WEBHOOK_SECRET}}
    base_url: {fake_tg.base_url}
    base_file_url: {fake_tg.base_file_url}
"""
    twitter = f"""  - type: twitter
    mode: webhook
    consumer_key: ${{SB_TEST_X_CONSUMER_KEY}}
    consumer_secret: ${{SB_TEST_X_CONSUMER_SECRET}}
    access_token: ${{SB_TEST_X_ACCESS_TOKEN}}
    access_token_secret: ${{SB_TEST_X_ACCESS_SECRET}}
    account_id: "{xf.ACCOUNT_ID}"
    handle: {xf.ACCOUNT_HANDLE}
    webhook_path: {xf.WEBHOOK_PATH}
    help_url: {xf.HELP_URL}
""" if fake_x is not None else ""
    email = f"""  - type: email
    address: {SUPPORT}
    from_name: Exchange Support
    imap_host: 127.0.0.1
    imap_port: {dovecot.port}
    imap_security: plain
    username: {USER}
    password: ${{SB_TEST_EMAIL_PASSWORD}}
    idle: true
    poll_interval_s: 0.3
    reconnect_max_s: 0.5
    imap_timeout_s: 3
    smtp_host: 127.0.0.1
    smtp_port: {smtp_port}
    smtp_security: none
    smtp_auth: false
    attachments_dir: {tmp / "attachments"}
"""
    web = '  - type: web\n    allowed_origins: ["*"]\n'
    return config_copy(tmp, (web, web + telegram + twitter + email),
                       (f"data_dir: {ROOT / 'data'}", f"data_dir: {tmp / 'data'}"))


def start_roles(tmp: Path, cfg: Path, port: int, env: dict[str, str]) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    shim = tmp / "x_shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(X_SHIM)
    web_env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(shim), env.get("PYTHONPATH", "")) if p)}
    exe = str(ROOT / ".venv/bin/switchboard")
    procs, logs = [], []
    for role, role_env, extra in (("web", web_env, ["--port", str(port)]), ("router", env, [])):
        logs.append(tmp / f"{role}.log")
        with open(logs[-1], "wb") as err:
            procs.append(subprocess.Popen([exe, "run", "--role", role, "--config", str(cfg), *extra],
                                          env=role_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err))
    return procs, logs


def stop_roles(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


async def until(cond: Callable[[], Awaitable[bool]], what: str, within_s: float = 45.0) -> None:
    deadline = time.monotonic() + within_s
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def inbound_by_channel(r: aioredis.Redis) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, f in await r.xrange("inbound"):
        ch = orjson.loads(f["m"])["channel"]
        counts[ch] = counts.get(ch, 0) + 1
    return counts


WORK_STREAMS = ("inbound", "handoff", "outbound:telegram", "outbound:twitter", "outbound:email")


async def settled(r: aioredis.Redis) -> bool:
    """One atomic look at every consumer group: nothing unread, nothing in flight. Each stage
    writes downstream before it acknowledges upstream, so this holds only once all is done."""
    pipe = r.pipeline(transaction=True)
    for s in WORK_STREAMS:
        pipe.xinfo_stream(s)
        pipe.xinfo_groups(s)
    res = await pipe.execute(raise_on_error=False)
    if any(isinstance(x, Exception) or not x for x in res):
        return False  # a stream or its group does not exist yet
    for stream, groups in zip(res[::2], res[1::2], strict=True):
        for g in groups:
            # `lag` is unknown (None) after deletions in the stream: compare the ids instead.
            read_all = g["lag"] == 0 or (g["lag"] is None and g["last-delivered-id"] == stream["last-generated-id"])
            if g["pending"] or not read_all:
                return False
    return True


# -- what came out ------------------------------------------------------------------------------

def _unescape(s: str) -> str:
    """JSON's \\uXXXX escapes decoded, so a Chinese secret is found whichever encoder wrote it."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), s)


def _text(blob: bytes | str) -> str:
    s = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    u = _unescape(s)
    return s if u == s else s + "\n" + u


def files_text(*roots: Path) -> str:
    return "\n".join(_text(f.read_bytes()) for root in roots if root.exists() for f in sorted(root.rglob("*"))
                     if f.is_file())


def database_text(tmp: Path) -> str:
    """The SQL dump (text split across overflow pages is whole here) and the raw files (freed
    pages, the WAL)."""
    con = sqlite3.connect(tmp / "t.db")
    try:
        dump = "\n".join(con.iterdump())
    finally:
        con.close()
    return _text(dump) + _text(b"".join(f.read_bytes() for f in sorted(tmp.glob("t.db*"))))


def tickets_with(tmp: Path, needle: str) -> list[tuple[str, str, str]]:
    """(channel, topic, priority) of each ticket holding a user message that contains `needle`."""
    con = sqlite3.connect(tmp / "t.db")
    try:
        return con.execute("SELECT DISTINCT t.channel, t.topic, t.priority FROM tickets t JOIN ticket_messages m "
                           "ON m.ticket_id = t.id WHERE m.author_type = 'user' AND instr(m.body, ?) > 0",
                           (needle,)).fetchall()
    finally:
        con.close()


def user_ticket_messages(tmp: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect(tmp / "t.db")
    try:
        return con.execute("SELECT t.channel, m.body FROM tickets t JOIN ticket_messages m ON m.ticket_id = t.id "
                           "WHERE m.author_type = 'user'").fetchall()
    finally:
        con.close()


def smtp_text(smtp: SmtpServer) -> str:
    """The raw SMTP transactions and every mail decoded (headers, each text part)."""
    out = []
    for env in smtp.rec.envelopes:
        out.append(_text(env.content))
        m = email.message_from_bytes(env.content, policy=policy.default)
        out.extend(f"{k}: {v}" for k, v in m.items())
        for part in m.walk():
            if part.get_content_maintype() == "text":
                out.append(str(part.get_content()))
    return "\n".join(out)


def probes(kind: str, secret: str) -> list[re.Pattern[str]]:
    if kind == "seed":
        return [re.compile(re.escape(SEED)), re.compile(r"absurd\W+abuse\W+access")]
    if kind == "seed_zh":
        middle = SEED_ZH.split()[3:8]
        return [re.compile(r"\s*".join(map(re.escape, middle)))]
    if kind == "otp":  # not a run of digits inside an id, a timestamp or microseconds
        return [re.compile(rf"(?<![\d.:]){secret}(?!\d)")]
    return [re.compile(re.escape(secret))]


def leaks(stores: dict[str, str]) -> list[str]:
    found = []
    for where, blob in stores.items():
        for kind, secret in SECRETS.items():
            for p in probes(kind, secret):
                for m in p.finditer(blob):
                    ctx = blob[max(0, m.start() - 160) : m.end() + 60].replace("\n", " ")
                    found.append(f"{kind} secret in {where}: …{ctx}…")
                    break
    return found


# -- the test -----------------------------------------------------------------------------------

async def test_secrets_planted_in_telegram_x_and_email_appear_nowhere(
    rasa_url: str, tmp_path: Path, dovecot: Dovecot
) -> None:
    rs = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    rs.flushdb()
    r = aioredis.from_url(REDIS_URL, decode_responses=True)
    nlu_seen: list[bytes] = []
    proxy, proxy_port = await start_proxy(rasa_url, nlu_seen)
    smtp = SmtpServer()
    fake_x = FakeXAPI()
    async with FakeBotAPI() as fake_tg:
        await smtp.start()
        await fake_x.start()
        cfg = write_config(tmp_path, fake_tg, dovecot, smtp.port, fake_x)
        env = {
            **os.environ, "SWITCHBOARD_REDIS_URL": REDIS_URL, "SWITCHBOARD_RASA_URL": f"http://127.0.0.1:{proxy_port}",
            "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/t.db", "SWITCHBOARD_LOG_FORMAT": "json",
            "SB_TEST_TG_TOKEN": tg.TOKEN, "SB_TEST_TG_WEBHOOK_SECRET": TG_SECRET,
            "SB_TEST_X_CONSUMER_KEY": xf.CONSUMER_KEY, "SB_TEST_X_CONSUMER_SECRET": xf.CONSUMER_SECRET,
            "SB_TEST_X_ACCESS_TOKEN": xf.ACCESS_TOKEN, "SB_TEST_X_ACCESS_SECRET": xf.ACCESS_SECRET,
            "SB_TEST_X_API_BASE": fake_x.base_url, "SB_TEST_EMAIL_PASSWORD": PASSWORD,
        }
        port = free_port()
        updates, deliveries, raw_mails = telegram_updates(), x_deliveries(), mails()
        want = {"telegram": len(updates), "twitter": 2 * len(TEXTS), "email": len(raw_mails)}
        procs: list[subprocess.Popen[bytes]] = []
        try:
            procs, logs = start_roles(tmp_path, cfg, port, env)
            await asyncio.to_thread(wait_port, port, 30)
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                for u in updates:
                    async with http.post(f"{base}/telegram/webhook", json=u, headers={SECRET_HEADER: TG_SECRET}) as res:
                        assert res.status == 200
                for d in deliveries:
                    body = orjson.dumps(d)
                    async with http.post(f"{base}{xf.WEBHOOK_PATH}", data=body, headers={
                        "content-type": "application/json", "x-twitter-webhooks-signature": xf.sign(body)}) as res:
                        assert res.status == 200
            for raw in raw_mails:
                dovecot.deliver(raw)

            async def all_in() -> bool:
                return await inbound_by_channel(r) == want

            await until(all_in, f"the inbound queue to hold {want}")
            await until(lambda: settled(r), "the router, the ticket worker and the senders to finish")
        finally:
            await asyncio.to_thread(stop_roles, procs)
            await r.aclose()
            await proxy.cleanup()
            await smtp.stop()
            await fake_x.close()

        stores = {
            "redis": _text(redis_dump(rs)),
            "database": database_text(tmp_path),
            "files written by the product": files_text(tmp_path / "attachments", tmp_path / "data"),
            "role logs": "\n".join(_text(f.read_bytes()) for f in logs),
            "nlu requests": "\n".join(_text(b) for b in nlu_seen),
            "Telegram Bot API calls": _text(orjson.dumps([(c.method, c.params) for c in fake_tg.calls], default=str)),
            "X API requests": _text(orjson.dumps([(q.method, q.path, q.query, q.json) for q in fake_x.requests])),
            "SMTP (mail sent)": smtp_text(smtp),
        }
        tg_chats = {p["chat_id"] for p in fake_tg.sent()}
    dump_dir = tmp_path / "stores"  # what was searched, kept for a look after a failure
    dump_dir.mkdir()
    for name, blob in stores.items():
        (dump_dir / (re.sub(r"\W+", "_", name).strip("_") + ".txt")).write_text(blob)
    rs.flushdb()
    rs.close()

    # The planted messages went the whole way: taken in (the counts above), answered on every
    # channel, and the theft reports became tickets on each channel...
    assert tg_chats >= {str(u["message"]["chat"]["id"]) for u in updates}
    assert {d["to"] for d in fake_x.dms} >= {str(8200 + i) for i in range(len(TEXTS))}  # every DM answered
    assert {t["reply"]["in_reply_to_tweet_id"] for t in fake_x.tweets} == {str(81000 + i) for i in range(len(TEXTS))}
    assert {m["To"].addresses[0].addr_spec for m in smtp.rec.mails} >= {"named@example.org"}
    assert {m["To"] for m in smtp.rec.mails} >= {"victim@example.org", "lin@example.cn", "quote@example.org",
                                                   "zhang.wei@example.cn", "html@example.org", "alt@example.org", "files@example.org"}
    assert any(HAN.search(str(m.get_body(preferencelist=("plain",)).get_content())) for m in smtp.rec.mails)
    tickets = {ch: [b for c, b in user_ticket_messages(tmp_path) if c == ch and "phished" in b]
               for ch in ("telegram", "twitter", "email")}
    assert all(tickets.values()), tickets
    # A seed phrase pasted with no theft words is an urgent theft case on every channel (#25.2),
    # although intake replaced the phrase before the router read the message.
    wallet = tickets_with(tmp_path, "is my wallet safe? my words are [REDACTED:seed_phrase]")
    assert {ch for ch, _, _ in wallet} == {"telegram", "twitter", "email"}, wallet
    assert all((topic, prio) == ("theft", "urgent") for _, topic, prio in wallet), wallet
    # A seed phrase in an e-mail's text attachment counts too (the body only says "see attached").
    assert tickets_with(tmp_path, "Please see the attached files") == [("email", "theft", "urgent")]
    # ...yet nowhere a secret: not stored, not logged, not sent to the NLU, not echoed to the user...
    found = leaks(stores)
    assert not found, "\n".join(found)
    # ...because it was redacted on the way in.
    assert all("[REDACTED:seed_phrase]" in b for bodies in tickets.values() for b in bodies), tickets
    assert stores["nlu requests"].count("[REDACTED:") >= len(TEXTS) and "[REDACTED:" in stores["redis"]
