"""The web widget in real headless Chromium against the real product roles (web + router
processes, Redis, Rasa): the path widget → inbound → router → Rasa → outbound → widget."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.rasa, pytest.mark.slow]

BOT = '[data-sb="msg"][data-kind="bot"][data-id]'
USER = '[data-sb="msg"][data-kind="user"]'


async def ask(page: Page, text: str, n_bot_before: int) -> str:
    box = page.locator('[data-sb="input"]')
    await box.fill(text)
    await box.press("Enter")
    reply = page.locator(BOT).nth(n_bot_before)
    await expect(reply).to_be_visible(timeout=20_000)
    return (await reply.inner_text()).strip()


async def test_chat_in_both_languages_and_theft_handoff_then_history_survives_reload(
    product: str, browser: Browser
) -> None:
    ctx = await browser.new_context(locale="en-US")
    page = await ctx.new_page()
    await page.goto(product + "/")
    await page.locator('[data-sb="launcher"]').click()
    await expect(page.locator('[data-sb="status"]')).to_have_attribute("data-state", "online", timeout=10_000)

    en = await ask(page, "How do I enable 2FA?", 0)
    assert "2FA" in en or "authenticator" in en.lower()
    zh = await ask(page, "USDT充值一直没到账怎么办", 1)
    assert any("\u4e00" <= c <= "\u9fff" for c in zh) and "充值" in zh
    theft = await ask(page, "my account was hacked and my BTC is gone", 2)
    assert "15 minutes" in theft and "never ask" in theft
    await page.screenshot(path=str(ROOT / "data" / "widget-e2e.png")) if (ROOT / "data").is_dir() else None

    # A reload restores the conversation from the server, each message exactly once.
    await page.reload()
    await page.locator('[data-sb="launcher"]').click()
    await expect(page.locator(BOT)).to_have_count(3, timeout=10_000)
    await expect(page.locator(USER)).to_have_count(3)
    await ctx.close()


async def test_reply_sent_while_offline_arrives_after_reconnect(product: str, browser: Browser) -> None:
    ctx = await browser.new_context(locale="zh-CN")
    page = await ctx.new_page()
    await page.goto(product + "/")
    await page.locator('[data-sb="launcher"]').click()
    await expect(page.locator('[data-sb="status"]')).to_have_attribute("data-state", "online", timeout=10_000)
    await ctx.set_offline(True)
    box = page.locator('[data-sb="input"]')
    await box.fill("KYC审核要多久")
    await box.press("Enter")
    await page.wait_for_timeout(500)
    await ctx.set_offline(False)
    reply = page.locator(BOT).first
    await expect(reply).to_be_visible(timeout=30_000)
    assert any("\u4e00" <= c <= "\u9fff" for c in await reply.inner_text())
    await expect(page.locator(USER)).to_have_count(1)
    await ctx.close()


async def test_a_screenshot_is_attached_in_the_widget_and_refused_files_say_why(
    product: str, browser: Browser, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    shot = tmp_path / "转账截图.png"
    shot.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    exe = tmp_path / "helper.exe"
    exe.write_bytes(b"MZ" + bytes(100))
    ctx = await browser.new_context(locale="zh-CN")
    page = await ctx.new_page()
    await page.goto(product + "/")
    await page.locator('[data-sb="launcher"]').click()
    await expect(page.locator('[data-sb="status"]')).to_have_attribute("data-state", "online", timeout=10_000)
    await page.locator('[data-sb="file-input"]').set_input_files(str(shot))
    mine = page.locator(USER).filter(has=page.locator('[data-sb="file"]', has_text="转账截图.png"))
    await expect(mine).to_have_attribute("data-state", "sent", timeout=10_000)
    await expect(page.locator(BOT).first).to_contain_text("已收到您的文件（转账截图.png）", timeout=20_000)
    # Reloaded, the file line is restored from the mailbox, once.
    await page.reload()
    await page.locator('[data-sb="launcher"]').click()
    await expect(mine).to_have_count(1, timeout=10_000)
    # A program is refused in the widget itself, with the reason, and nothing is sent.
    await page.locator('[data-sb="file-input"]').set_input_files(str(exe))
    await expect(page.get_by_text("不支持该文件类型")).to_be_visible()
    await expect(page.locator(USER)).to_have_count(1)
    await ctx.close()
