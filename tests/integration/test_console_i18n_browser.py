"""The agent console in Chinese and English, in real headless Chromium against the real product:
an agent whose browser speaks Chinese signs in, claims, replies and resolves with every label in
Chinese; switching to English changes everything on screen without a reload, is kept on the
profile, and the reply box still writes in the user's language. A walk through every view (login,
queue, mine, all open, resolved, search, ticket, bulk bar, incidents, dialogs, review) finds no
English word left in the Chinese console outside ticket content, ids and people's data.

Headless Chromium here has no CJK font: the checks read the DOM's text, never a screenshot."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from bench.console_data import Sizes, load
from handoff.db import make_engine
from tests.conftest import ROOT
from tests.integration.conftest import product_env

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.rasa, pytest.mark.slow]

PW = "correct-horse-battery"
BOT = '[data-sb="msg"][data-kind="bot"][data-id]'

# Words an agent in China reads in English in any console: brands, protocol names, key caps.
ALLOWED = {"SLA", "VIP", "TxID", "SB", "Telegram", "X", "switchboard", "Ctrl", "Enter", "Esc", "BTC", "API", "JSON",
           "SMTP", "App", "dmarc", "pass", "spf", "dkim"}
# Where people's data and ticket content are shown (names, messages, ids, tags, incident texts).
CONTENT = ("[translate=no]", ".msg-text", ".bubble", ".row-preview", ".row-contact", ".conv-contact", ".dname",
           ".ident", ".ident-label", ".idents", ".me-name", ".me", ".avatar", ".row-tag", ".incident-title", ".incident-msg",
           ".canned-text", ".canned-key", ".pick-name", ".conv-assignee", ".msg-meta b", "#incident-bar strong",
           "kbd", "mark", "textarea", "input", "#f-assignee option", "#bulk-param option", "code", ".ident span",
           ".row-incident")  # its title attribute is the incident's title (the label itself is translated)

SCAN = """(content) => {
  const skip = (el) => el && content.some((sel) => el.closest(sel));
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || skip(el) || !n.textContent.trim()) continue;
    if (el.closest('script,style,noscript,template')) continue;
    const hidden = el.closest('[hidden]') || (el.closest('dialog') && !el.closest('dialog').open);
    if (hidden || !el.getClientRects().length) continue;
    out.push(n.textContent.trim());
  }
  for (const el of document.querySelectorAll('[title],[placeholder],[aria-label]')) {
    if (skip(el)) continue;
    for (const a of ['title', 'placeholder', 'aria-label']) if (el.getAttribute(a)) out.push(el.getAttribute(a));
  }
  if (document.title) out.push(document.title);
  return out;
}"""


def people_data(db: Path) -> list[str]:
    """Names, identities, tags and incident titles: people's data, shown as they were written."""
    with sqlite3.connect(db) as c:
        rows = [r[0] for q in ("SELECT name FROM contacts", "SELECT label FROM contact_identities",
                               "SELECT source_id FROM contact_identities", "SELECT name FROM agents",
                               "SELECT tag FROM ticket_tags", "SELECT title FROM incidents")
                for r in c.execute(q)]
    return sorted({str(r) for r in rows if r}, key=len, reverse=True)


def english_left(texts: list[str], data: list[str]) -> list[str]:
    left = []
    for t in texts:
        for d in data:
            t = t.replace(d, " ")
        t = re.sub(r"SB-\d+|\S+@\S+|https?://\S+|#\S+", " ", t)
        words = [w for w in re.findall(r"[A-Za-z]{2,}", t) if w not in ALLOWED]
        if words:
            left.append(t)
    return sorted(set(left))


async def assert_chinese(page: Page, where: str, db: Path | None = None) -> None:
    left = english_left(await page.evaluate(SCAN, list(CONTENT)), people_data(db) if db else [])
    assert left == [], f"{where}: English left in the Chinese console: {left}"
    missing = await page.evaluate("() => window.switchboardI18n ? [...window.switchboardI18n.missing] : []")
    assert missing == [], f"{where}: keys missing from the catalogue: {missing}"


@pytest.fixture(scope="module")
def staff(product: str, rasa_url: str, product_logs: Path) -> str:
    env = {**product_env(rasa_url, product_logs), "SWITCHBOARD_AGENT_PASSWORD": PW}
    p = subprocess.run([str(ROOT / ".venv/bin/switchboard"), "agents", "add", "wang@example.com", "--name", "王芳",
                        "--role", "supervisor"], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr

    async def seed() -> None:  # tickets in every view: open, assigned, resolved, with e-mail and tags
        engine = make_engine(f"sqlite+aiosqlite:///{product_logs}/tickets.db")
        await load(engine, Sizes(tickets=120, messages=400, agents=3), now=datetime.now(UTC))
        await engine.dispose()

    asyncio.run(seed())
    return product


async def sign_in(browser: Browser, base: str, locale: str) -> Page:
    ctx = await browser.new_context(locale=locale, viewport={"width": 1440, "height": 900})
    page = await ctx.new_page()
    await page.goto(base + "/agent")
    await expect(page.get_by_test_id("login-submit")).to_have_text("登录" if locale.startswith("zh") else "Sign in")
    await page.get_by_test_id("email").fill("wang@example.com")
    await page.get_by_test_id("password").fill(PW)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("me")).to_contain_text("王芳", timeout=10_000)
    return page


async def test_a_chinese_agent_claims_replies_and_resolves_in_chinese_then_switches_to_english(
        staff: str, browser: Browser, product_logs: Path) -> None:
    db = product_logs / "tickets.db"
    user_ctx = await browser.new_context(locale="en-US")
    user = await user_ctx.new_page()
    await user.goto(staff + "/")
    await user.locator('[data-sb="launcher"]').click()
    box = user.locator('[data-sb="input"]')
    await box.fill("my account was hacked and my BTC is gone to bc1qzx7731hackerwallet")
    await box.press("Enter")
    await expect(user.locator(BOT).first).to_be_visible(timeout=30_000)

    page = await sign_in(browser, staff, "zh-CN")  # no language saved yet: the browser's
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.get_by_test_id("view-queue")).to_contain_text("队列")
    await page.get_by_test_id("search").fill("bc1qzx7731hackerwallet")  # this user's ticket among the seeded ones
    await expect(page.get_by_test_id("ticket-row")).to_have_count(1, timeout=10_000)
    row = page.get_by_test_id("ticket-row").first
    await expect(row).to_contain_text("紧急")
    await expect(row).to_contain_text("盗号")
    await row.click()
    await expect(page.get_by_test_id("claim")).to_contain_text("认领")
    await page.get_by_test_id("claim").click()
    await expect(page.locator(".yours")).to_have_text("您的")
    # the reply box writes in the user's language (English), whatever the console's language
    await expect(page.get_by_test_id("reply-input")).to_have_attribute("placeholder", re.compile("用英文回复"))
    await page.get_by_test_id("reply-input").fill("Hi, I have locked withdrawals on your account.")
    await expect(page.get_by_test_id("reply-send")).to_contain_text("发送")
    await page.get_by_test_id("reply-send").click()
    await expect(user.locator('[data-sb="msg"][data-kind="agent"]')).to_contain_text("locked withdrawals", timeout=15_000)
    await expect(page.locator(".msg-out .ts").last).to_have_text(re.compile("现在|秒|分钟"))  # relative time in Chinese
    # Every toast shown from now on (at most four stay on screen: SLA alerts about the seeded
    # tickets may push the resolve toast out before it is looked at).
    await page.evaluate("""() => { window.__toasts = [];
        new MutationObserver(ms => ms.forEach(m => m.addedNodes.forEach(n => n.getAttribute
          && n.getAttribute('data-testid') === 'toast' && window.__toasts.push(n.textContent))))
        .observe(document.querySelector('#toasts'), { childList: true }); }""")
    await page.get_by_test_id("resolve").click()
    await page.wait_for_function("() => window.__toasts.some(t => t.includes('已解决'))", timeout=10_000)
    await expect(page.locator("#conv-head [data-status]")).to_have_text("已解决")
    await assert_chinese(page, "ticket after resolve", db)

    # English, without a reload: the page keeps a marker a reload would lose
    await page.evaluate("() => { window.__same_page = 1; }")
    await page.get_by_test_id("lang-select").select_option("en")
    await expect(page.get_by_test_id("view-queue")).to_contain_text("Queue")
    await expect(page.locator("#conv-head [data-status]")).to_have_text("Resolved")
    await expect(page.get_by_test_id("reopen")).to_contain_text("Reopen")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    assert await page.evaluate("() => window.__same_page") == 1
    # kept on the profile: a Chinese browser signing in again gets English
    await page.reload()
    await expect(page.get_by_test_id("view-queue")).to_contain_text("Queue", timeout=10_000)
    other = await sign_in(browser, staff, "zh-CN")
    await expect(other.get_by_test_id("view-queue")).to_contain_text("Queue", timeout=10_000)
    await other.get_by_test_id("lang-select").select_option("zh")
    await expect(other.get_by_test_id("view-queue")).to_contain_text("队列")
    await user_ctx.close()


async def test_no_english_is_left_in_any_view_of_the_chinese_console(
        staff: str, browser: Browser, product_logs: Path) -> None:
    db = product_logs / "tickets.db"
    ctx = await browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900})
    login = await ctx.new_page()
    await login.goto(staff + "/agent/login?error=invalid")
    await expect(login.get_by_test_id("login-error")).to_contain_text("邮箱或密码错误")
    await assert_chinese(login, "login", db)
    await ctx.close()

    page = await sign_in(browser, staff, "en-US")
    await page.get_by_test_id("lang-select").select_option("zh")  # saved: this agent now works in Chinese
    await expect(page.get_by_test_id("view-queue")).to_contain_text("队列")
    for view in ("queue", "mine", "all", "resolved"):
        await page.get_by_test_id(f"view-{view}").click()
        await expect(page.locator("#list-title")).to_have_text({"queue": "队列", "mine": "我的", "all": "全部未结",
                                                                "resolved": "已解决"}[view])
        await expect(page.locator("#list-end[data-state=done], #list-end[data-state=more], .list-empty").first).to_be_attached()
        await assert_chinese(page, view, db)

    await page.get_by_test_id("view-all").click()
    await page.get_by_test_id("search").fill("card")
    await expect(page.get_by_test_id("match").first).to_be_visible(timeout=10_000)
    await assert_chinese(page, "search", db)
    await page.get_by_test_id("search").fill("")
    await page.get_by_test_id("ticket-row").first.click()
    await expect(page.get_by_test_id("message").first).to_be_visible()
    await assert_chinese(page, "ticket detail", db)
    await page.keyboard.press("Escape")
    await page.get_by_test_id("reply-input").press("/")
    await expect(page.locator("#canned-pop")).to_be_visible()
    await assert_chinese(page, "canned answers", db)
    await page.get_by_test_id("reply-input").press("Escape")
    await page.get_by_test_id("reply-input").fill("")
    for key, dlg in (("?", "#help-dlg"), ("t", "#transfer-dlg"), ("b", "#botwrong-dlg")):
        await page.locator("#ticket-list").focus()
        await page.keyboard.press(key)
        await expect(page.locator(dlg)).to_be_visible()
        if dlg == "#transfer-dlg":
            await expect(page.locator("#transfer-list .pick").first).to_be_visible()
        await assert_chinese(page, dlg, db)
        await page.keyboard.press("Escape")

    await page.get_by_test_id("row-select").nth(0).check()
    await page.get_by_test_id("row-select").nth(1).check()
    await expect(page.get_by_test_id("bulk-bar")).to_be_visible()
    await page.get_by_test_id("bulk-action").select_option("resolve")
    await page.get_by_test_id("bulk-go").click()  # armed: asks for a second click
    await expect(page.get_by_test_id("bulk-go")).to_contain_text("确认")
    await assert_chinese(page, "bulk bar", db)

    # an API refusal arrives as a code and is shown in Chinese (the English text stays for API clients)
    res = await page.evaluate("""async () => {
      const me = await (await fetch('/agent/api/me')).json();
      const r = await fetch('/agent/api/bulk', {method: 'POST', headers: {'X-CSRF-Token': me.csrf, 'Content-Type': 'application/json'},
        body: JSON.stringify({action: 'resolve', params: {}, numbers: ['SB-000001']})});
      return [r.status, await r.json()];
    }""")
    assert res[0] == 400 and res[1]["code"] == "bulk_reply_languages" and "Chinese" in res[1]["error"]
    await page.get_by_test_id("bulk-action").select_option("tag")
    await page.get_by_test_id("bulk-param").fill("bad tag!")
    await page.get_by_test_id("bulk-go").click()
    await expect(page.get_by_test_id("toast").filter(has_text="标签为 1–64 个")).to_be_visible()
    await page.locator("#bulk-clear").click()

    await page.get_by_test_id("incident-new").click()
    await assert_chinese(page, "new incident dialog", db)
    await page.get_by_test_id("incident-title").fill("BTC withdrawals delayed")
    await page.get_by_test_id("incident-keywords").fill("BTC withdraw, BTC 提币")
    await page.get_by_test_id("incident-en").fill("BTC withdrawals are delayed; funds are safe.")
    await page.get_by_test_id("incident-zh").fill("BTC 提币延迟，资金安全。")
    await page.get_by_test_id("incident-submit").click()
    await page.get_by_test_id("incident").first.click()
    await expect(page.get_by_test_id("incident-bar")).to_be_visible()
    await assert_chinese(page, "incident bar", db)
    await page.get_by_test_id("incident-update").click()
    await assert_chinese(page, "incident update dialog", db)
    await page.keyboard.press("Escape")

    await page.goto(staff + "/agent/review")
    await expect(page.locator("h1")).to_have_text("审核队列")
    await assert_chinese(page, "review", db)
