"""Agents open the files users sent: a Telegram photo (fetched from the Bot API on demand — a local
fake here) and an e-mail attachment (read from the attachment store, mail delivered through a real
Dovecot), through the console of the real web role; only with a session, only files of that ticket."""

from __future__ import annotations

import asyncio
import os
import subprocess
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from playwright.async_api import Browser, expect

from channels.telegram.adapter import SECRET_HEADER
from tests.conftest import REDIS_URL, ROOT, free_port, wait_port
from tests.fakes import telegram_api as tg
from tests.fakes.telegram_api import FakeBotAPI
from tests.integration.email_peers import PASSWORD, USER, Dovecot, SmtpServer
from tests.integration.test_console_http import PW, login
from tests.integration.test_secrets_channels import start_roles, stop_roles, until, write_config

pytestmark = [pytest.mark.redis, pytest.mark.rasa, pytest.mark.browser, pytest.mark.slow]

TG_SECRET = "tg-webhook_Secret42-kQ7vXz9LmN3pR5tW"
# Not valid images, on purpose: the console must hand back exactly what the user sent.
PHOTO = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
SCREENSHOT = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)
STATEMENT = b"%PDF-1.4\n" + os.urandom(2000)
KEY_HEX = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
KEYS_TXT = (f"exported from my wallet\nprivate key: {KEY_HEX}\n"
            "seed: abandon ability able about above absent absorb abstract absurd abuse access accident\n").encode()


def theft_mail() -> bytes:
    m = EmailMessage()
    m["From"] = "Ann Lee <ann@example.org>"
    m["To"] = USER
    m["Subject"] = "withdrawal I did not make"
    m["Date"] = formatdate(localtime=True)
    m["Message-ID"] = make_msgid(domain="example.org")
    m.set_content("Someone withdrew 2 BTC from my account last night, it was not me. Screenshot and statement attached.")
    m.add_attachment(SCREENSHOT, maintype="image", subtype="png", filename="截图.png")
    m.add_attachment(STATEMENT, maintype="application", subtype="pdf", filename="statement.pdf")
    return m.as_bytes()


async def ticket_with_files(http: aiohttp.ClientSession, base: str, channel: str) -> dict[str, Any] | None:
    async with http.get(base + "/agent/api/tickets", params={"view": "all"}) as r:
        tickets = (await r.json())["tickets"]
    for t in tickets:
        if t["channel"] != channel:
            continue
        async with http.get(f"{base}/agent/api/tickets/{t['number']}") as r:
            detail = await r.json()
        for m in detail["messages"]:
            if m["attachments"] and m["ticket"] == t["number"]:
                return m  # type: ignore[no-any-return]
    return None


async def test_agents_open_telegram_photos_and_email_attachments_of_their_tickets(
    rasa_url: str, tmp_path: Path, dovecot: Dovecot, browser: Browser
) -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()
    smtp = SmtpServer()
    async with FakeBotAPI() as fake:
        fake.files["big-id"] = PHOTO
        await smtp.start()
        cfg = write_config(tmp_path, fake, dovecot, smtp.port)
        env = {**os.environ, "SWITCHBOARD_REDIS_URL": REDIS_URL, "SWITCHBOARD_RASA_URL": rasa_url,
               "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/t.db", "SWITCHBOARD_LOG_FORMAT": "json",
               "SB_TEST_TG_TOKEN": tg.TOKEN, "SB_TEST_TG_WEBHOOK_SECRET": TG_SECRET, "SB_TEST_EMAIL_PASSWORD": PASSWORD,
               "SWITCHBOARD_AGENT_PASSWORD": PW}
        add = await asyncio.to_thread(
            subprocess.run, [str(ROOT / ".venv/bin/switchboard"), "agents", "add", "lin@example.com", "--name", "Lin",
                             "--config", str(cfg)], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert add.returncode == 0, add.stderr
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        procs, _ = start_roles(tmp_path, cfg, port, env)
        try:
            await asyncio.to_thread(wait_port, port, 30)
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                update = tg.photo(len(PHOTO), caption="my account was hacked, this withdrawal was not me", uid=7300)
                async with http.post(f"{base}/telegram/webhook", json=update, headers={SECRET_HEADER: TG_SECRET}) as res:
                    assert res.status == 200
                dovecot.deliver(theft_mail())

                # Nothing without a session.
                async with http.get(f"{base}/agent/api/tickets/SB-000001/messages/1/attachments/0") as r:
                    assert r.status == 401
                assert await login(http, base, "lin@example.com") == "/agent"

                found: dict[str, dict[str, Any]] = {}

                async def both() -> bool:
                    for ch in ("telegram", "email"):
                        if ch not in found and (m := await ticket_with_files(http, base, ch)):
                            found[ch] = m
                    return len(found) == 2

                await until(both, "a Telegram and an e-mail ticket with files", 60)

                tm = found["telegram"]
                url = f"{base}/agent/api/tickets/{tm['ticket']}/messages/{tm['id']}/attachments/0"
                async with http.get(url) as r:
                    assert r.status == 200, await r.text()
                    assert await r.read() == PHOTO  # fetched from the Bot API with getFile
                    assert r.headers["content-type"] == "image/jpeg"
                    assert r.headers["content-disposition"].startswith("inline;")
                    assert r.headers["x-content-type-options"] == "nosniff"
                assert [c.params["file_id"] for c in fake.of("getFile")] == ["big-id"]

                em = found["email"]
                names = [a["name"] for a in em["attachments"]]
                png, pdf = names.index("截图.png"), names.index("statement.pdf")
                eurl = f"{base}/agent/api/tickets/{em['ticket']}/messages/{em['id']}/attachments"
                async with http.get(f"{eurl}/{png}") as r:
                    assert r.status == 200 and await r.read() == SCREENSHOT
                    assert "filename*=UTF-8''%E6%88%AA%E5%9B%BE.png" in r.headers["content-disposition"]
                async with http.get(f"{eurl}/{pdf}") as r:
                    # Not an image: downloaded, never rendered in the console's origin.
                    assert r.status == 200 and await r.read() == STATEMENT
                    assert r.headers["content-type"] == "application/octet-stream"
                    assert r.headers["content-disposition"].startswith("attachment;")

                # In the console page: the file chips are links that open the file.
                page = await (await browser.new_context()).new_page()
                await page.goto(base + "/agent")
                await page.get_by_test_id("email").fill("lin@example.com")
                await page.get_by_test_id("password").fill(PW)
                await page.get_by_test_id("login-submit").click()
                await page.get_by_test_id("ticket-row").filter(has_text=em["ticket"]).click()
                chip = page.get_by_test_id("attachment").filter(has_text="statement.pdf")
                await expect(chip).to_have_attribute("href", f"/agent/api/tickets/{em['ticket']}/messages/{em['id']}/attachments/{pdf}")
                async with page.expect_download() as dl:
                    await chip.click()
                download = await dl.value
                assert download.suggested_filename == "statement.pdf"
                assert await asyncio.to_thread(Path(await download.path()).read_bytes) == STATEMENT

                # A text file from Telegram comes straight from its servers: shown redacted all the same.
                fake.files["doc-keys.txt"] = KEYS_TXT
                doc = tg.document("keys.txt", len(KEYS_TXT), mime="text/plain", uid=7301,
                                  caption="my wallet was drained overnight, here is my export")
                async with http.post(f"{base}/telegram/webhook", json=doc, headers={SECRET_HEADER: TG_SECRET}) as res:
                    assert res.status == 200
                keys_url: list[str] = []

                async def keys_file() -> bool:
                    async with http.get(base + "/agent/api/tickets", params={"view": "all"}) as r:
                        numbers = [t["number"] for t in (await r.json())["tickets"] if t["channel"] == "telegram"]
                    for n in numbers:
                        async with http.get(f"{base}/agent/api/tickets/{n}") as r:
                            for m in (await r.json())["messages"]:
                                if any(a.get("name") == "keys.txt" for a in m["attachments"]):
                                    keys_url.append(f"{base}/agent/api/tickets/{n}/messages/{m['id']}/attachments/0")
                                    return True
                    return False

                await until(keys_file, "the Telegram ticket with keys.txt", 60)
                async with http.get(keys_url[0]) as r:
                    body = (await r.read()).decode()
                    assert r.status == 200 and "exported from my wallet" in body
                    assert KEY_HEX not in body and "[REDACTED:private_key]" in body and "[REDACTED:seed_phrase]" in body

                # Only files of that ticket's messages, and a clear answer when a file is gone.
                async with http.get(f"{eurl}/{len(names)}") as r:
                    assert r.status == 404
                async with http.get(f"{base}/agent/api/tickets/{tm['ticket']}/messages/{em['id']}/attachments/0") as r:
                    assert r.status == 404
                fake.files.clear()
                async with http.get(url) as r:
                    assert r.status == 404 and "no longer available" in (await r.json())["detail"]
        finally:
            await asyncio.to_thread(stop_roles, procs)
            await smtp.stop()
