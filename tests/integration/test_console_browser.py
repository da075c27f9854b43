"""Agent console in real headless Chromium against the real product: a theft message typed in the
widget shows up as an urgent ticket on top of the queue; the agent signs in, claims it, replies,
and the reply appears in the user's widget — the bot saying nothing in between."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import ROOT
from tests.integration.conftest import product_env
from tests.integration.test_widget_browser import BOT

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.rasa, pytest.mark.slow]


@pytest.fixture(scope="module")
def staff(product: str, rasa_url: str, product_logs: Path) -> str:
    env = {**product_env(rasa_url, product_logs), "SWITCHBOARD_AGENT_PASSWORD": "correct-horse-battery"}
    for email, name in (("ana@example.com", "Ana"), ("other@example.com", "Other")):
        p = subprocess.run([str(ROOT / ".venv/bin/switchboard"), "agents", "add", email, "--name", name], env=env,
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert p.returncode == 0, p.stderr
    return product


async def test_agent_claims_urgent_ticket_and_reply_reaches_the_widget(staff: str, browser: Browser) -> None:
    user_ctx = await browser.new_context(locale="en-US")
    user = await user_ctx.new_page()
    await user.goto(staff + "/")
    await user.locator('[data-sb="launcher"]').click()
    box = user.locator('[data-sb="input"]')
    await box.fill("what is the maker fee?")
    await box.press("Enter")
    await expect(user.locator(BOT).nth(0)).to_be_visible(timeout=20_000)
    await box.fill("my account was hacked and my BTC is gone")
    await box.press("Enter")
    await expect(user.locator(BOT).nth(1)).to_contain_text("15 minutes", timeout=20_000)

    agent_ctx = await browser.new_context(viewport={"width": 1440, "height": 900})
    agent = await agent_ctx.new_page()
    await agent.goto(staff + "/agent")
    await agent.get_by_test_id("email").fill("ana@example.com")
    await agent.get_by_test_id("password").fill("correct-horse-battery")
    await agent.get_by_test_id("login-submit").click()
    await expect(agent.get_by_test_id("me")).to_contain_text("Ana", timeout=10_000)
    top = agent.get_by_test_id("ticket-row").first
    await expect(top).to_have_attribute("data-priority", "urgent", timeout=10_000)
    await top.click()
    await agent.get_by_test_id("claim").click()
    await expect(agent.get_by_test_id("message").filter(has_text="maker fee")).to_be_visible()  # earlier history
    # While the agent has it, the bot stays silent on a new user message.
    await box.fill("hello? is someone there?")
    await box.press("Enter")
    await expect(agent.get_by_test_id("message").filter(has_text="is someone there")).to_be_visible(timeout=10_000)
    await agent.get_by_test_id("reply-input").fill("Hi, this is Ana from security. I have locked withdrawals.")
    await agent.get_by_test_id("reply-send").click()
    reply = user.locator('[data-sb="msg"][data-kind="agent"]')
    await expect(reply).to_contain_text("locked withdrawals", timeout=15_000)
    await expect(user.locator(BOT)).to_have_count(2)  # nothing from the bot after the handoff notice
    if (ROOT / "data").is_dir():
        await agent.screenshot(path=str(ROOT / "data" / "console-e2e.png"))
        await user.screenshot(path=str(ROOT / "data" / "widget-agent-e2e.png"))
    await agent_ctx.close()
    await user_ctx.close()
