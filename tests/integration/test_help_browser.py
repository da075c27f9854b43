"""The help centre on the real product in real Chromium: the widget suggests articles while the
user types (English and Chinese), the demo page's topic counts are the real articles', and the
/help pages list, show and search them. The bot's answers link the article ("Read more")."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from app.runtime import answers, read_more
from bot.models import Message
from bot.policy import ConvState
from bot.router import Brain
from intents.client import NLUClient
from intents.help import HelpArticles
from tests.conftest import ROOT, make_settings

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.rasa, pytest.mark.slow]


async def test_the_widget_suggests_articles_while_the_user_types(product: str, browser: Browser) -> None:
    ctx = await browser.new_context(locale="en-US")
    page = await ctx.new_page()
    await page.goto(product + "/")
    counts = {t: len(a) for t, a in HelpArticles(ROOT / "help").topics().items()}
    for topic in ("deposit", "withdrawal", "account", "security", "fees", "trading"):
        await expect(page.locator(f'[data-help-count="{topic}"]')).to_have_text(f"{counts[topic]} articles")

    await page.locator('[data-sb="launcher"]').click()
    box = page.locator('[data-sb="input"]')
    await box.press_sequentially("how do I enable 2FA", delay=20)
    first = page.locator('[data-sb="suggestion"]').first
    await expect(first).to_have_attribute("data-article", "security-enable-2fa", timeout=10_000)
    await box.fill("")
    await box.press_sequentially("充值没到账", delay=20)
    await expect(first).to_have_attribute("data-article", "deposit-not-arrived", timeout=10_000)
    await expect(first).to_have_text("充值未到账怎么办")  # the language the user typed in
    async with ctx.expect_page() as opened:
        await first.click()
    art = await opened.value
    await expect(art.get_by_test_id("article")).to_contain_text("TxID", timeout=10_000)
    await ctx.close()


async def test_help_pages_list_show_and_search_the_articles(product: str, browser: Browser) -> None:
    ctx = await browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    page = await ctx.new_page()
    await page.goto(product + "/help")
    n = len(HelpArticles(ROOT / "help").articles)
    cats = page.get_by_test_id("category")
    await expect(cats.first).to_contain_text("篇文章")
    shown = sum([int((await c.inner_text()).split()[-2]) for c in await cats.all()])
    assert shown == n
    await page.get_by_test_id("help-q").fill("提币一直在处理中")
    await page.get_by_test_id("help-q").press("Enter")
    await expect(page.get_by_test_id("result").first).to_contain_text("提币一直处理中怎么办")
    await page.get_by_test_id("result").first.locator("a").click()
    await expect(page.get_by_test_id("article")).to_contain_text("TxID")
    await page.get_by_test_id("lang").click()
    await expect(page.get_by_test_id("article")).to_contain_text("My withdrawal is pending or stuck")
    await ctx.close()


async def test_an_answer_links_its_help_article(rasa_url: str) -> None:
    settings = make_settings(nlu={"urls": [rasa_url]}, web={"public_url": "https://support.example.com"})
    async with NLUClient(settings.nlu.urls, timeout_s=5) as nlu:
        await nlu.refresh_versions()
        brain = Brain(settings, nlu, answers(settings), read_more=read_more(settings))
        for text, lang, url in (
            ("How do I enable 2FA?", "en", "Read more: https://support.example.com/help/a/security-enable-2fa?lang=en"),
            ("USDT充值一直没到账怎么办", "zh", "详细说明：https://support.example.com/help/a/deposit-not-arrived?lang=zh"),
        ):
            msg = Message(channel="web", channel_message_id="1", conversation_id="c", user_id="u", text=text,
                          lang=lang)  # type: ignore[arg-type]
            d, _, _ = await brain.decide(msg, ConvState())
            assert d.reply.endswith(url), d.reply
