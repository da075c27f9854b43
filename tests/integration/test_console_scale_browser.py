"""The agent console at incident scale, in real headless Chromium against the real product (web
and router roles, Rasa, the widget, e-mail through a real Dovecot and an SMTP capture) with a
seeded database of 3,000 tickets: the counters are the SQL truth, the last ticket is reachable by
scrolling, "card" / "卡" find what they should, a bulk resolve reaches every user once on their own
channel in their language, and an incident's update reaches all its linked users while new
messages about it get the incident's answer instead of a ticket."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from playwright.async_api import Browser, Page, expect

from bench.console_data import Sizes, load
from handoff.db import make_engine
from intents.rasa import free_port
from tests.conftest import REDIS_URL, ROOT, config_copy, wait_port
from tests.integration.conftest import product_env
from tests.integration.email_peers import PASSWORD, USER, Dovecot, Recorder

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.rasa, pytest.mark.slow]

PW = "correct-horse-battery"
OPEN = "status IN ('new', 'open', 'pending_user')"
AGENT_MSG = '[data-sb="msg"][data-kind="agent"]'
BOT = '[data-sb="msg"][data-kind="bot"][data-id]'


class Product:
    def __init__(self, url: str, db: Path, dovecot: Dovecot, smtp: Recorder) -> None:
        self.url, self.db, self.dovecot, self.smtp = url, db, dovecot, smtp

    def sql(self, q: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as c:
            return list(c.execute(q, args))

    def mails_to(self, addr: str, containing: str) -> list[EmailMessage]:
        out = []
        for m in self.smtp.mails:
            if addr in str(m["To"]):
                body = m.get_body(preferencelist=("plain",))
                if body is not None and containing in str(body.get_content()):
                    out.append(m)
        return out

    def mail(self, sender: str, name: str, subject: str, body: str) -> None:
        m = EmailMessage()
        m["From"] = f"{name} <{sender}>"
        m["To"] = f"Exchange Support <{USER}>"
        m["Subject"] = subject
        m["Date"] = formatdate(localtime=True)
        m["Message-ID"] = make_msgid(domain=sender.split("@")[1])
        m.set_content(body)
        self.dovecot.deliver(m.as_bytes())


@pytest.fixture(scope="module")
def product(rasa_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    tmp = tmp_path_factory.mktemp("scale")
    dovecot = Dovecot()
    dovecot.start()
    rec = Recorder()
    smtp = Controller(rec, hostname="127.0.0.1", port=free_port())
    smtp.start()
    email = (f"  - type: email\n    address: {USER}\n    from_name: Exchange Support\n    imap_host: 127.0.0.1\n"
             f"    imap_port: {dovecot.port}\n    imap_security: plain\n    username: {USER}\n"
             "    password: ${SB_TEST_EMAIL_PASSWORD}\n    idle: true\n    poll_interval_s: 0.3\n"
             "    reconnect_max_s: 0.5\n    imap_timeout_s: 3\n    smtp_host: 127.0.0.1\n"
             f"    smtp_port: {smtp.port}\n    smtp_security: none\n    smtp_auth: false\n"
             f"    attachments_dir: {tmp / 'attachments'}\n")
    web = '  - type: web\n    allowed_origins: ["*"]\n'
    cfg = config_copy(tmp, (web, web + email), (f"data_dir: {ROOT / 'data'}", f"data_dir: {tmp / 'data'}"))
    (tmp / "handoff").mkdir()  # the canned answers, where the copied config looks for them
    shutil.copy(ROOT / "handoff" / "canned.yml", tmp / "handoff" / "canned.yml")
    env = {**product_env(rasa_url, tmp), "SB_TEST_EMAIL_PASSWORD": PASSWORD, "SWITCHBOARD_AGENT_PASSWORD": PW}
    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    port = free_port()
    exe = str(ROOT / ".venv/bin/switchboard")
    procs = [subprocess.Popen([exe, "run", "--role", role, "--config", str(cfg), *extra], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=open(tmp / f"{role}.log", "wb"))  # noqa: SIM115
             for role, extra in (("web", ["--port", str(port)]), ("router", []))]
    try:
        wait_port(port, 40)
        p = subprocess.run([exe, "agents", "add", "boss@example.com", "--name", "Boss", "--role", "supervisor",
                            "--config", str(cfg)], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert p.returncode == 0, p.stderr

        async def seed() -> None:
            engine = make_engine(f"sqlite+aiosqlite:///{tmp}/tickets.db")
            await load(engine, Sizes(tickets=3000, messages=12000, agents=5), now=datetime.now(UTC))
            await engine.dispose()

        asyncio.run(seed())
        yield Product(f"http://127.0.0.1:{port}", tmp / "tickets.db", dovecot, rec)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)
        smtp.stop()
        dovecot.cleanup()
        r.flushdb()


async def sign_in(browser: Browser, base: str) -> Page:
    ctx = await browser.new_context(viewport={"width": 1440, "height": 900})
    page = await ctx.new_page()
    await page.goto(base + "/agent")
    await page.get_by_test_id("email").fill("boss@example.com")
    await page.get_by_test_id("password").fill(PW)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("me")).to_contain_text("Boss", timeout=10_000)
    return page


async def widget_user(browser: Browser, base: str, text: str, locale: str = "en-US") -> Page:
    ctx = await browser.new_context(locale=locale)
    page = await ctx.new_page()
    await page.goto(base + "/")
    await page.locator('[data-sb="launcher"]').click()
    box = page.locator('[data-sb="input"]')
    await box.fill(text)
    await box.press("Enter")
    await expect(page.locator(BOT).first).to_be_visible(timeout=30_000)
    return page


async def search(page: Page, q: str, expect_total: int) -> None:
    await page.get_by_test_id("search").fill(q)
    await expect(page.get_by_test_id("list-total")).to_have_attribute("data-total", str(expect_total), timeout=15_000)


async def until(cond: Any, what: str, within_s: float = 40.0) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def sla_truth(p: Product, at: datetime) -> tuple[int, int]:
    now = at.strftime("%Y-%m-%d %H:%M:%S.%f")
    breached, warning = p.sql("SELECT count(*) FILTER (WHERE sla_due_at <= ?), "
                              "count(*) FILTER (WHERE sla_warn_at <= ? AND sla_due_at > ?) FROM tickets "
                              "WHERE status IN ('new', 'open')", now, now, now)[0]
    return breached, warning


async def test_counters_are_the_sql_truth_the_last_ticket_is_reachable_and_search_finds_card_and_卡(
        product: Product, browser: Browser) -> None:
    page = await sign_in(browser, product.url)
    before = datetime.now(UTC)
    boss = product.sql("SELECT id FROM agents WHERE email = 'boss@example.com'")[0][0]
    truth = {
        "all": product.sql(f"SELECT count(*) FROM tickets WHERE {OPEN}")[0][0],
        "queue": product.sql("SELECT count(*) FROM tickets WHERE status IN ('new', 'open') "
                             "AND (assignee_id IS NULL OR assignee_id = ?)", boss)[0][0],
        "mine": product.sql(f"SELECT count(*) FROM tickets WHERE {OPEN} AND assignee_id = ?", boss)[0][0],
        "resolved": product.sql("SELECT count(*) FROM tickets WHERE status IN ('resolved', 'closed')")[0][0],
    }
    assert truth["all"] > 200 and truth["resolved"] > 200
    for view, n in truth.items():
        await expect(page.locator(f'[data-count="{view}"]')).to_have_text(f"{n:,}", timeout=15_000)
    urgent = product.sql("SELECT count(*) FROM tickets WHERE status IN ('new', 'open') AND assignee_id IS NULL "
                         "AND priority = 'urgent'")[0][0]
    await expect(page.get_by_test_id("count-unclaimed-urgent").locator(".stat-n")).to_have_text(f"{urgent:,}")
    shown_breached = int((await page.get_by_test_id("count-sla-breached").locator(".stat-n").inner_text()).replace(",", ""))
    shown_warning = int((await page.get_by_test_id("count-sla-warning").locator(".stat-n").inner_text()).replace(",", ""))
    after = datetime.now(UTC) + timedelta(seconds=1)
    b0, w0 = sla_truth(product, before - timedelta(seconds=1))
    b1, w1 = sla_truth(product, after)
    assert b0 <= shown_breached <= b1  # breaches only grow while we look
    assert min(w0, w1) - (b1 - b0) <= shown_warning <= max(w0, w1) + (b1 - b0)

    # All open: scroll to the end — the last ticket in the queue's order is there, and every row
    await page.get_by_test_id("view-all").click()
    last = product.sql(f"SELECT number FROM tickets WHERE {OPEN} "
                       "ORDER BY priority_rank DESC, first_response_due DESC, id DESC LIMIT 1")[0][0]
    rows = page.get_by_test_id("ticket-row")
    end = page.get_by_test_id("list-end")
    for _ in range(200):
        if await end.get_attribute("data-state") == "done":
            break
        await page.locator("#ticket-list").evaluate("el => { el.scrollTop = el.scrollHeight; }")
        await page.wait_for_timeout(150)
    await expect(end).to_have_attribute("data-state", "done")
    await expect(rows).to_have_count(truth["all"])
    assert await rows.last.get_attribute("data-number") == last

    # full-text search over the messages, English and Chinese: exactly the tickets that say it
    texts: dict[str, list[str]] = {}
    for number, body in product.sql(f"SELECT t.number, m.body FROM tickets t JOIN ticket_messages m "
                                    f"ON m.ticket_id = t.id WHERE t.{OPEN}"):
        texts.setdefault(number, []).append(body.lower())
    for q in ("card", "卡"):
        want = {n for n, bs in texts.items() if any(q in b for b in bs)}
        assert 0 < len(want) < truth["all"]
        await search(page, q, len(want))
        first = rows.first
        assert await first.get_attribute("data-number") in want
        await expect(first.get_by_test_id("match").locator("mark").first).to_have_text(q, ignore_case=True)
    if (ROOT / "data").is_dir():
        await page.screenshot(path=str(ROOT / "data" / "console-scale-search.png"))
    await page.context.close()


async def test_a_bulk_resolve_reaches_every_user_once_on_their_channel_in_their_language(
        product: Product, browser: Browser) -> None:
    en = await widget_user(browser, product.url, "my account was hacked, zebrafish is my nickname")
    zh = await widget_user(browser, product.url, "我的账户被盗了，昵称 zebrafish", locale="zh-CN")
    product.mail("alice@example.org", "Alice Chen", "Account hacked", "Someone hacked my account. zebrafish")
    product.mail("wang@example.cn", "王芳", "账户被盗", "我的账户被盗了，有人登录了我的账号。zebrafish")
    await until(lambda: product.sql("SELECT count(*) FROM ticket_messages WHERE body LIKE '%zebrafish%' "
                                    "AND author_type = 'user'")[0][0] == 4, "4 tickets from 4 users")
    page = await sign_in(browser, product.url)
    await page.get_by_test_id("view-all").click()
    await search(page, "zebrafish", 4)
    for box in await page.get_by_test_id("row-select").all():
        await box.check()
    await expect(page.get_by_test_id("bulk-count")).to_have_text("4 selected")
    if (ROOT / "data").is_dir():
        await page.screenshot(path=str(ROOT / "data" / "console-scale-bulk.png"))
    await page.get_by_test_id("bulk-action").select_option("resolve")
    await page.get_by_test_id("bulk-param").select_option("resolved")
    await page.get_by_test_id("bulk-go").click()
    await expect(page.get_by_test_id("bulk-go")).to_contain_text("Confirm")
    await page.get_by_test_id("bulk-go").click()
    await expect(page.locator(".toast").filter(has_text="4 tickets changed")).to_be_visible(timeout=15_000)
    await expect(page.get_by_test_id("list-total")).to_have_attribute("data-total", "0", timeout=10_000)

    await expect(en.locator(AGENT_MSG).filter(has_text="is resolved")).to_have_count(1, timeout=20_000)
    await expect(zh.locator(AGENT_MSG).filter(has_text="已处理完毕")).to_have_count(1, timeout=20_000)
    await until(lambda: len(product.mails_to("alice@example.org", "is resolved")) >= 1
                and len(product.mails_to("wang@example.cn", "已处理完毕")) >= 1, "the resolution mails")
    await asyncio.sleep(2)  # anything doubled would have arrived by now
    assert len(product.mails_to("alice@example.org", "is resolved")) == 1
    assert len(product.mails_to("wang@example.cn", "已处理完毕")) == 1
    assert not product.mails_to("alice@example.org", "已处理完毕")
    await expect(en.locator(AGENT_MSG)).to_have_count(1)
    await expect(zh.locator(AGENT_MSG)).to_have_count(1)
    audited = product.sql("SELECT count(DISTINCT a.ticket_id) FROM audit_log a JOIN ticket_messages m "
                          "ON m.ticket_id = a.ticket_id WHERE a.action = 'bulk_reply' AND m.body LIKE '%zebrafish%'")
    assert audited[0][0] == 4
    for p in (page, en, zh):
        await p.context.close()


async def test_an_incident_update_reaches_all_linked_users_and_new_messages_get_the_incident_answer(
        product: Product, browser: Browser) -> None:
    a = await widget_user(browser, product.url, "I want to talk to a human agent, kiwi here")
    b = await widget_user(browser, product.url, "我要人工客服，我是 kiwi", locale="zh-CN")
    product.mail("carol@example.org", "Carol", "Need a person", "I want to talk to a human agent please. kiwi")
    await until(lambda: product.sql("SELECT count(DISTINCT m.ticket_id) FROM ticket_messages m JOIN tickets t "
                                    f"ON t.id = m.ticket_id WHERE m.body LIKE '%kiwi%' AND t.{OPEN}")[0][0] == 3,
                "3 tickets about kiwi")
    page = await sign_in(browser, product.url)
    await page.get_by_test_id("incident-new").click()
    await page.get_by_test_id("incident-title").fill("BTC withdrawals delayed")
    await page.get_by_test_id("incident-keywords").fill("BTC withdraw, BTC 提币")
    await page.get_by_test_id("incident-en").fill("BTC withdrawals are delayed by a wallet upgrade; your funds are safe.")
    await page.get_by_test_id("incident-zh").fill("BTC 提币因钱包升级而延迟，您的资金安全。")
    await page.get_by_test_id("incident-submit").click()
    await expect(page.get_by_test_id("incident")).to_have_count(1)

    await page.get_by_test_id("view-all").click()
    await search(page, "kiwi", 3)
    await page.get_by_test_id("row-select").first.check()
    await page.get_by_test_id("bulk-select-all").click()
    await expect(page.get_by_test_id("bulk-count")).to_have_text("All 3 matching selected")

    # The incidents to choose from load when the action is picked: a click on "go" before they are
    # there (a slow server, a quick agent) waits for them — it said "no incident chosen" and linked
    # nothing. The list is held back a second here to make that moment certain.
    async def slow(route: Any) -> None:
        await asyncio.sleep(1.0)
        await route.continue_()
    await page.route("**/agent/api/incidents", slow)
    await page.get_by_test_id("bulk-action").select_option("incident")
    await page.get_by_test_id("bulk-go").click()
    await expect(page.get_by_test_id("incident-linked")).to_have_text("3", timeout=10_000)
    await page.unroute("**/agent/api/incidents", slow)

    await page.get_by_test_id("incident").click()
    await page.get_by_test_id("incident-update").click()
    await page.get_by_test_id("incident-en").fill("Update: half of the delayed BTC withdrawals are out.")
    await page.get_by_test_id("incident-zh").fill("更新：一半延迟的 BTC 提币已经到账。")
    await page.get_by_test_id("incident-submit").click()
    await expect(a.locator(AGENT_MSG).filter(has_text="Update: half")).to_have_count(1, timeout=20_000)
    await expect(b.locator(AGENT_MSG).filter(has_text="更新：一半")).to_have_count(1, timeout=20_000)
    await until(lambda: len(product.mails_to("carol@example.org", "Update: half")) == 1, "the update by mail")

    # a new user writing about it: the incident's (latest) message, and no new ticket
    tickets_before = product.sql("SELECT count(*) FROM tickets")[0][0]
    d = await widget_user(browser, product.url, "my BTC withdrawal is still processing, when will it arrive?")
    await expect(d.locator(BOT).first).to_contain_text("Update: half of the delayed BTC withdrawals")
    e = await widget_user(browser, product.url, "我的BTC提币还没到账，怎么回事？", locale="zh-CN")
    await expect(e.locator(BOT).first).to_contain_text("一半延迟的 BTC 提币")
    await asyncio.sleep(1.5)
    assert product.sql("SELECT count(*) FROM tickets")[0][0] == tickets_before

    await page.get_by_test_id("incident-resolve").click()
    await page.get_by_test_id("incident-en").fill("All delayed BTC withdrawals are complete. Sorry for the wait.")
    await page.get_by_test_id("incident-zh").fill("所有延迟的 BTC 提币均已完成，抱歉久等。")
    await page.get_by_test_id("incident-submit").click()
    await expect(a.locator(AGENT_MSG).filter(has_text="All delayed BTC")).to_have_count(1, timeout=20_000)
    await expect(b.locator(AGENT_MSG).filter(has_text="所有延迟")).to_have_count(1, timeout=20_000)
    await until(lambda: len(product.mails_to("carol@example.org", "All delayed BTC")) == 1, "the final mail")
    statuses = product.sql("SELECT DISTINCT t.status FROM tickets t JOIN incidents i ON i.id = t.incident_id")
    assert statuses == [("resolved",)]
    for p in (page, a, b, d, e):
        await p.context.close()


async def test_bad_filters_and_cursors_get_a_clear_error_and_bulk_needs_the_csrf_token(
        product: Product, browser: Browser) -> None:
    page = await sign_in(browser, product.url)
    api = page.request
    for q, needle in (("priority=bogus", "priority"), ("view=everything", "view"), ("cursor=not-ours", "cursor"),
                      ("since=yesterday", "since")):
        r = await api.get(f"{product.url}/agent/api/tickets?{q}")
        assert r.status == 400 and needle in (await r.json())["detail"], q
    r = await api.post(f"{product.url}/agent/api/bulk", data={"action": "spam", "numbers": ["SB-000001"]})
    assert r.status == 403  # no CSRF token: nothing closed
    assert product.sql("SELECT count(*) FROM audit_log a JOIN tickets t ON t.id = a.ticket_id "
                       "WHERE t.number = 'SB-000001' AND a.action = 'spam'")[0][0] == 0
    csrf = (await (await api.get(f"{product.url}/agent/api/me")).json())["csrf"]
    r = await api.post(f"{product.url}/agent/api/bulk", headers={"X-CSRF-Token": csrf},
                       data={"action": "resolve", "numbers": ["SB-000001"], "params": {"en": "only English"}})
    assert r.status == 400 and "Chinese" in (await r.json())["detail"]  # a reply must exist in both languages
    await page.context.close()
