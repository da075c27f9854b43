"""The user's ticket page, end to end: a mail to support (real Dovecot, real router and Rasa)
gets an acknowledgement whose link opens the ticket in real Chromium; the user adds a message and
a screenshot there and the agent sees both on the ticket; expired and revoked links are refused
and say so; a link opens its own ticket only."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import uvicorn
from playwright.async_api import Browser, expect

from app.web import create_app, uvicorn_options
from channels.email.adapter import EmailChannel
from handoff.console import console_router
from handoff.db import make_engine, sessionmaker, upgrade
from handoff.selfservice import TOKEN_HEADER, selfservice_router, ticket_page_parts
from handoff.service import TicketService
from tests.conftest import make_settings
from tests.integration.email_peers import Dovecot, SmtpServer
from tests.integration.test_email import Rig, email_section, mail, smtp, text_of  # noqa: F401 - fixture

pytestmark = [pytest.mark.redis, pytest.mark.rasa, pytest.mark.browser]

LINK = re.compile(r"(http://127\.0\.0\.1:\d+/ticket#\S+)")


def png(width: int = 4, height: int = 3) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PageRig(Rig):
    base: str = ""


@pytest.fixture
async def page_rig(tmp_path: Path, aredis: aioredis.Redis, dovecot: Dovecot, smtp: SmtpServer,  # noqa: F811
                   rasa_url: str) -> AsyncIterator[PageRig]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(
        nlu={"urls": [rasa_url]}, web={"port": port, "public_url": base},
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}"}, data_dir=str(tmp_path / "data"),
        channels=[email_section(dovecot, smtp.port, tmp_path)],
    )
    engine = make_engine(settings.database.url)
    await upgrade(engine)
    svc = TicketService(settings, sessionmaker(engine), aredis)
    links, files = ticket_page_parts(settings, svc, aredis)
    svc.ticket_link = links.url
    rig = PageRig(settings, aredis, dovecot, smtp, svc, EmailChannel.from_config(settings, settings.channel("email"),
                                                                                  aredis))  # type: ignore[arg-type]
    rig.base = base
    rig.links = links  # type: ignore[attr-defined]
    rig.files = files  # type: ignore[attr-defined]
    app = create_app(settings, aredis, [], extra_routers=[selfservice_router(settings, svc, aredis, links, files),
                                                          console_router(settings, svc, aredis, [files])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", **uvicorn_options(settings)))
    serving = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield rig
    finally:
        server.should_exit = True
        await serving
        await rig.channel.stop(grace_s=1)
        await engine.dispose()


async def test_the_link_in_the_mail_opens_the_ticket_and_what_the_user_adds_reaches_the_agent(
        page_rig: PageRig, browser: Browser, tmp_path: Path) -> None:
    rig = page_rig
    await rig.start()
    raw, _ = mail("Need a person", "Hello,\nmy withdrawal is stuck, I want to talk to a real person please.")
    rig.dovecot.deliver(raw)
    await rig.wait_inbound(1)
    await rig.pump()
    [ack] = rig.smtp.rec.mails
    body = text_of(ack)
    assert "SB-000001" in body
    link = LINK.search(body)
    assert link, body

    ctx = await browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")  # a phone
    page = await ctx.new_page()
    await page.goto(link.group(1))
    await expect(page.get_by_test_id("number")).to_have_text("SB-000001", timeout=10_000)
    await expect(page.get_by_test_id("status")).to_have_text("Waiting for an agent")
    await expect(page.get_by_test_id("due")).to_contain_text("We aim to reply by")
    await expect(page.get_by_test_id("msg").filter(has_text="withdrawal is stuck")).to_be_visible()

    # The agent writes an internal note and a reply: the user sees the reply, never the note.
    agent = await rig.svc.add_agent("ana@example.com", "Ana", "correct-horse-battery")
    await rig.svc.note("SB-000001", agent, "INTERNAL: check the hot wallet queue first")
    await rig.svc.reply("SB-000001", agent, "Could you send a screenshot of the withdrawal page?")
    await page.reload()
    await expect(page.get_by_test_id("msg").filter(has_text="screenshot of the withdrawal")).to_be_visible()
    await expect(page.get_by_test_id("thread")).not_to_contain_text("INTERNAL")

    shot = tmp_path / "withdrawal.png"
    shot.write_bytes(png())
    await page.get_by_test_id("text").fill("Here it is: TXID 0xabc123, sent 2 hours ago")
    await page.get_by_test_id("file").set_input_files(str(shot))
    await page.get_by_test_id("send").click()
    await expect(page.get_by_test_id("sent")).to_have_text("Added to your ticket.", timeout=10_000)
    await expect(page.get_by_test_id("msg").filter(has_text="withdrawal.png")).to_be_visible()

    # The agent sees both on the ticket, and can open the screenshot.
    detail = await rig.svc.detail("SB-000001")
    page_msgs = [m for m in detail["messages"] if m["channel"] == "ticket_page"]
    assert [m["author_type"] for m in page_msgs] == ["user", "user"]
    assert "TXID 0xabc123" in page_msgs[0]["text"]
    [att] = page_msgs[1]["attachments"]
    assert att["name"] == "withdrawal.png" and att["content_type"] == "image/png"
    assert await rig.files.fetch_attachment(att["ref"]) == shot.read_bytes()  # type: ignore[attr-defined]
    assert any(a["action"] == "page_message" for a in detail["audit"])

    # Chinese, on request.
    await page.get_by_test_id("lang").click()
    await expect(page.get_by_test_id("status")).to_have_text("处理中")
    await ctx.close()


async def test_expired_revoked_and_forged_links_are_refused_and_say_why(page_rig: PageRig, browser: Browser) -> None:
    import time

    import aiohttp

    rig = page_rig
    for who in ("alice@example.org", "bob@example.org"):
        raw, _ = mail("Need a person", "I want to talk to a real person please.", sender=who)
        rig.dovecot.deliver(raw)
    await rig.start()
    await rig.wait_inbound(2)
    await rig.pump()
    links = rig.links  # type: ignore[attr-defined]
    expired = await links.token("SB-000001", now=time.time() - 7200, ttl_s=3600)
    ctx = await browser.new_context(locale="en-US")
    page = await ctx.new_page()
    await page.goto(f"{rig.base}/ticket#{expired}")
    await expect(page.get_by_test_id("problem")).to_contain_text("This link has expired", timeout=10_000)
    await expect(page.get_by_test_id("number")).to_be_hidden()

    good = await links.token("SB-000001")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{rig.base}/ticket/api", headers={TOKEN_HEADER: good}) as resp:
            assert resp.status == 200 and (await resp.json())["number"] == "SB-000001"
        # A link for one ticket never opens another: changing the number breaks the signature.
        forged = good.replace("SB-000001", "SB-000002")
        async with http.get(f"{rig.base}/ticket/api", headers={TOKEN_HEADER: forged}) as resp:
            assert resp.status == 403 and (await resp.json())["error"] == "invalid"
        async with http.post(f"{rig.base}/ticket/api/message", headers={TOKEN_HEADER: forged},
                             json={"text": "hi"}) as resp:
            assert resp.status == 403
        # A file whose bytes are not what it claims is refused.
        async with http.post(f"{rig.base}/ticket/api/upload?name=x.png", headers={TOKEN_HEADER: good,
                             "Content-Type": "image/png"}, data=b"MZ\x90\x00 not a png") as resp:
            assert resp.status == 415
    # An agent revokes the links from the console (a link shared by mistake) and issues a new one.
    from tests.integration.test_console_http import login

    await rig.svc.add_agent("ana@example.com", "Ana", "correct-horse-battery")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as staff:
        assert await login(staff, rig.base, "ana@example.com", "correct-horse-battery") == "/agent"
        async with staff.get(rig.base + "/agent/api/me") as resp:
            h = {"X-CSRF-Token": (await resp.json())["csrf"]}
        async with staff.post(rig.base + "/agent/api/tickets/SB-000001/page-link/revoke", headers=h) as resp:
            assert resp.status == 200
        async with staff.post(rig.base + "/agent/api/tickets/SB-000001/page-link", headers=h) as resp:
            fresh = (await resp.json())["url"]
    await page.goto(f"{rig.base}/ticket#{good}")
    await page.reload()
    await expect(page.get_by_test_id("problem")).to_contain_text("revoked", timeout=10_000)
    await page.goto(fresh)
    await page.reload()
    await expect(page.get_by_test_id("number")).to_have_text("SB-000001", timeout=10_000)
    detail = await rig.svc.detail("SB-000002")
    assert not [m for m in detail["messages"] if m["channel"] == "ticket_page"]
    await ctx.close()



