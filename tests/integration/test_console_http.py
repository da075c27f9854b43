"""The agent console over HTTP against the real web and router roles: sign-in, CSRF, lockout,
disabled agents, and the handoff path widget → ticket → agent reply → widget."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from yarl import URL

from tests.conftest import ROOT
from tests.integration.conftest import product_env

pytestmark = [pytest.mark.redis, pytest.mark.rasa]

EXE = str(ROOT / ".venv/bin/switchboard")
PW = "correct-horse-battery"


def cli(rasa_url: str, logs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**product_env(rasa_url, logs), "SWITCHBOARD_AGENT_PASSWORD": PW}
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)


SET_COOKIES: list[str] = []


async def login(http: aiohttp.ClientSession, base: str, email: str, password: str = PW) -> str:
    async with http.get(base + "/agent/login") as r:
        assert r.status == 200
    csrf = http.cookie_jar.filter_cookies(URL(base + "/agent"))["sb_login_csrf"].value
    async with http.post(base + "/agent/login", data={"email": email, "password": password, "csrf": csrf},
                         allow_redirects=False) as r:
        assert r.status == 303
        SET_COOKIES[:] = r.headers.getall("Set-Cookie", [])
        return r.headers["location"]


async def ticket_of(staff: aiohttp.ClientSession, base: str, contact: str) -> dict[str, Any] | None:
    """The queued ticket of a widget visitor (their public contact id), waited for up to 10 s (the ticket worker is asynchronous)."""
    for _ in range(100):
        async with staff.get(base + "/agent/api/tickets?view=queue") as r:
            rows = [t for t in (await r.json())["tickets"]
                    if any(i["source_id"] == contact for i in t["contact"]["identities"])]
        if rows:
            return rows[0]  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    return None


@pytest.fixture(scope="module")
def agents(product: str, rasa_url: str, product_logs: Path) -> str:
    for email, name in (("lin@example.com", "Lin"), ("mei@example.com", "Mei"), ("bob@example.com", "Bob")):
        p = cli(rasa_url, product_logs, "agents", "add", email, "--name", name)
        assert p.returncode == 0, p.stderr
    return product


async def test_nothing_works_without_a_session(agents: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(agents + "/agent", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["location"] == "/agent/login"
        async with http.get(agents + "/agent/api/tickets") as r:
            assert r.status == 401
        async with http.post(agents + "/agent/api/tickets/SB-000001/claim") as r:
            assert r.status == 401


async def test_sign_in_needs_the_csrf_token_and_actions_need_the_session_token(agents: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(agents + "/agent/login") as r:
            assert r.status == 200
            page = await r.text()
        # A token that is not this browser's: the form is refused as expired, not as a wrong password.
        async with http.post(agents + "/agent/login", data={"email": "lin@example.com", "password": PW, "csrf": "x"},
                             allow_redirects=False) as r:
            assert r.headers["location"] == "/agent/login?error=csrf"
        # The page's own form carries the token: sent as it is, before any script ran (a password
        # manager's fill-and-submit), it signs in.
        field = re.search(r'<input type="hidden" name="csrf" id="csrf" value="([^"]+)">', page)
        assert field is not None, "the sign-in form has no token"
        assert field.group(1) == http.cookie_jar.filter_cookies(URL(agents + "/agent"))["sb_login_csrf"].value
        async with http.post(agents + "/agent/login", data={"email": "lin@example.com", "password": PW,
                                                            "csrf": field.group(1)}, allow_redirects=False) as r:
            assert r.headers["location"] == "/agent"
        assert await login(http, agents, "lin@example.com") == "/agent"
        async with http.get(agents + "/agent/api/me") as r:
            me = await r.json()
            assert me["name"] == "Lin" and me["csrf"]
        async with http.post(agents + "/agent/api/tickets/SB-000001/note", json={"text": "x"}) as r:
            assert r.status == 403  # no X-CSRF-Token
        [session_cookie] = [c for c in SET_COOKIES if c.startswith("sb_session=")]
        assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie


async def test_the_interface_language_is_the_browsers_until_the_agent_chooses_one(agents: str) -> None:
    """Kept on the profile, so it follows the agent to another browser; refusals carry a code the
    console translates, beside the English text API clients read."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await login(http, agents, "mei@example.com") == "/agent"
        async with http.get(agents + "/agent/api/me", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}) as r:
            me = await r.json()
            assert me["locale"] == "zh" and me["locale_saved"] is False
        h = {"X-CSRF-Token": me["csrf"]}
        async with http.put(agents + "/agent/api/me/locale", json={"locale": "zh"}) as r:
            assert r.status == 403 and (await r.json())["code"] == "csrf"  # no token
        async with http.put(agents + "/agent/api/me/locale", json={"locale": "../en"}, headers=h) as r:
            body = await r.json()
            assert r.status == 400 and body["code"] == "locale_invalid" and "locale must be one of" in body["error"]
        async with http.put(agents + "/agent/api/me/locale", json={"locale": "zh"}, headers=h) as r:
            assert r.status == 200
        async with http.get(agents + "/agent/api/me", headers={"Accept-Language": "en-US"}) as r:
            assert (await r.json())["locale"] == "zh"
        async with http.get(agents + "/agent/api/tickets/SB-999999") as r:
            body = await r.json()
            assert r.status == 404 and body["code"] == "ticket_not_found" and body["params"] == {"number": "SB-999999"}
            assert body["error"] == body["detail"] == "ticket SB-999999 not found"
        async with http.get(agents + "/agent/static/i18n/zh.json") as r:
            assert r.status == 200 and (await r.json())["action.claim"] == "认领"
        async with http.get(agents + "/agent/static/i18n/..%2Fconsole.py") as r:
            assert r.status == 404
        async with http.put(agents + "/agent/api/me/locale", json={"locale": "en"}, headers=h) as r:
            assert r.status == 200  # back, for the tests after this one


async def test_brute_force_is_locked_out(agents: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for _ in range(5):
            assert await login(http, agents, "mei@example.com", "wrong-password") == "/agent/login?error=invalid"
        assert await login(http, agents, "mei@example.com", PW) == "/agent/login?error=locked"


async def test_a_disabled_agent_is_locked_out_at_once(agents: str, rasa_url: str, product_logs: Path) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await login(http, agents, "bob@example.com") == "/agent"
        async with http.get(agents + "/agent/api/me") as r:
            assert r.status == 200
        p = cli(rasa_url, product_logs, "agents", "disable", "bob@example.com")
        assert p.returncode == 0, p.stderr
        async with http.get(agents + "/agent/api/me") as r:
            assert r.status == 401
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await login(http, agents, "bob@example.com") == "/agent/login?error=disabled"


async def test_theft_in_the_widget_reaches_an_agent_whose_reply_reaches_the_widget(agents: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as user, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as staff:
        ws = await user.ws_connect(agents + "/ws/chat")
        await ws.send_str('{"type":"hello","session":null,"last_seen":null,"lang":"en"}')
        contact = (await ws.receive_json(timeout=5))["contact"]  # the visitor's public id
        await ws.send_str(orjson.dumps({"type": "message", "client_id": "t1",
                                        "text": "my account was hacked and my BTC is gone"}).decode())
        assert await login(staff, agents, "lin@example.com") == "/agent"
        async with staff.get(agents + "/agent/api/me") as r:
            csrf = (await r.json())["csrf"]
        ticket = await ticket_of(staff, agents, contact)
        assert ticket, "no ticket appeared for the theft message"
        assert ticket["priority"] == "urgent" and ticket["topic"] == "theft"
        number = ticket["number"]
        h = {"X-CSRF-Token": csrf}
        async with staff.post(agents + f"/agent/api/tickets/{number}/claim", headers=h) as r:
            assert r.status == 200 and (await r.json())["assignee"]["name"] == "Lin"
        # A second message while the agent has it: the bot stays silent, the ticket gets it.
        await ws.send_str('{"type":"message","client_id":"t2","text":"How do I enable 2FA?"}')
        async with staff.post(agents + f"/agent/api/tickets/{number}/reply", headers=h,
                              json={"text": "Hi, I'm Lin from security. I've frozen withdrawals."}) as r:
            assert r.status == 200
        kinds = []
        async with asyncio.timeout(20):
            while "agent" not in kinds:
                m = await ws.receive_json()
                if m["type"] == "event":
                    kinds.append(m["kind"])
                    if m["kind"] == "agent":
                        assert m["author"] == "Lin" and "frozen withdrawals" in m["text"]
        assert kinds.count("bot") == 1, kinds  # only the handoff notice; nothing for the 2FA question
        texts: list[str] = []
        for _ in range(100):  # the ticket writer appends the silent message asynchronously
            async with staff.get(agents + f"/agent/api/tickets/{number}") as r:
                texts = [m["text"] for m in (await r.json())["messages"]]
            if "How do I enable 2FA?" in texts:
                break
            await asyncio.sleep(0.1)
        assert "How do I enable 2FA?" in texts
        await ws.close()


async def test_a_file_sent_in_the_widget_reaches_the_ticket_and_the_agent_opens_it(agents: str) -> None:
    shot = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20
    note = "notes from my phone\nmy password is Hunter2!xq and the coins left at 3am\n"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as user, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as staff:
        ws = await user.ws_connect(agents + "/ws/chat")
        await ws.send_str('{"type":"hello","session":null,"last_seen":null,"lang":"en"}')
        welcome = await ws.receive_json(timeout=5)
        session, contact = welcome["session"], welcome["contact"]
        up = agents + "/widget/upload"

        async def upload(cid: str, body: bytes, ctype: str, name: str, sess: str = session) -> tuple[int, dict]:  # type: ignore[type-arg]
            async with user.post(up, params={"client_id": cid, "name": name, "lang": "en"},
                                 data=body, headers={"content-type": ctype, "x-widget-session": sess}) as r:
                return r.status, await r.json()

        # A file alone, before any handoff: the bot says it arrived and asks what it is about.
        status, body = await upload("f1", shot, "image/png", "withdrawal.png")
        assert (status, body["ok"]) == (200, True)
        events: list[dict] = []  # type: ignore[type-arg]
        async with asyncio.timeout(20):
            while not any(e["kind"] == "bot" for e in events):
                m = await ws.receive_json()
                if m["type"] == "event":
                    events.append(m)
        assert events[0]["kind"] == "user" and events[0]["client_id"] == "f1"
        assert events[0]["attachments"] == [{"name": "withdrawal.png", "size": len(shot), "content_type": "image/png"}]
        assert "received your file (withdrawal.png)" in events[-1]["text"]
        # Refused with a reason: a type we do not take, too large, a made-up session.
        status, body = await upload("f2", b"MZ\x90\x00", "application/x-msdownload", "tool.exe")
        assert status == 415 and "PDF" in body["message"]
        status, _ = await upload("f2b", b"%PDF-1.4", "application/pdf", "wallet-helper.apk")  # a program, whatever its type
        assert status == 415
        status, body = await upload("f3", b"0" * (10 * 1024 * 1024 + 1), "image/png", "huge.png")
        assert status == 413 and "10 MB" in body["message"]
        status, _ = await upload("f4", shot, "image/png", "x.png", sess="../../etc")
        assert status == 403
        status, _ = await upload("f4", shot, "image/png", "x.png", sess=contact)  # the public id is no key
        assert status == 403

        # Theft, then a text file with a secret in it: both join the ticket, the secret does not.
        await ws.send_str('{"type":"message","client_id":"t1","text":"my account was hacked and my BTC is gone"}')
        assert await login(staff, agents, "lin@example.com") == "/agent"
        ticket = await ticket_of(staff, agents, contact)
        assert ticket, "no ticket for the theft message"
        number = ticket["number"]
        status, _ = await upload("f5", note.encode(), "text/plain", "notes.txt")
        assert status == 200
        msg = None
        for _ in range(100):
            async with staff.get(agents + f"/agent/api/tickets/{number}") as r:
                msgs = [m for m in (await r.json())["messages"] if m["attachments"] and m["ticket"] == number]
            if msgs:
                msg = msgs[0]
                break
            await asyncio.sleep(0.1)
        assert msg and msg["attachments"][0]["name"] == "notes.txt"
        async with staff.get(agents + f"/agent/api/tickets/{number}/messages/{msg['id']}/attachments/0") as r:
            assert r.status == 200
            stored = (await r.read()).decode()
        assert "coins left at 3am" in stored and "Hunter2" not in stored and "[REDACTED:password]" in stored
        await ws.close()


async def test_review_page_is_for_supervisors_and_discards(agents: str, rasa_url: str, product_logs: Path) -> None:
    import redis as sync_redis

    from tests.conftest import REDIS_URL

    p = cli(rasa_url, product_logs, "agents", "add", "sup@example.com", "--name", "Sue", "--role", "supervisor")
    assert p.returncode == 0, p.stderr
    r = sync_redis.Redis.from_url(REDIS_URL, decode_responses=True)
    r.xadd("decisions", {"d": orjson.dumps({
        "message_id": "m9", "conversation_id": "web:rev", "channel": "web", "action": "clarify", "topic": "out_of_scope",
        "intent": "out_of_scope_unrelated", "confidence": 0.2, "priority": "low", "reply": "…", "lang": "en",
        "redacted_text": "what does the purple tier sticker mean", "silent": False,
        "decided_at": "2026-11-28T12:00:00+00:00"}).decode()})
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await login(http, agents, "lin@example.com") == "/agent"
        async with http.get(agents + "/agent/review") as resp:
            assert resp.status == 403  # agents do not relabel training data
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await login(http, agents, "sup@example.com") == "/agent"
        async with http.get(agents + "/agent/review") as resp:
            page = await resp.text()
            assert resp.status == 200 and "purple tier sticker" in page
        csrf = page.split("name='csrf' value='")[1].split("'")[0]
        form = {"csrf": csrf, "text": "what does the purple tier sticker mean", "lang": "en", "action": "discard"}
        async with http.post(agents + "/agent/review", data={**form, "csrf": "wrong"}, allow_redirects=False) as resp:
            assert resp.status == 403
        async with http.post(agents + "/agent/review", data=form) as resp:
            page = await resp.text()
            assert "discarded" in page and "purple tier sticker" not in page.split("</p>", 2)[-1]


async def _widget(http: aiohttp.ClientSession, base: str) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    """A new widget visitor: the socket and their public contact id (what tickets show)."""
    ws = await http.ws_connect(base + "/ws/chat")
    await ws.send_str('{"type":"hello","session":null,"last_seen":null,"lang":"en"}')
    return ws, (await ws.receive_json(timeout=5))["contact"]


async def test_a_rating_for_a_ticket_that_is_gone_never_stops_the_next_theft_ticket(
    agents: str, rasa_url: str, product_logs: Path
) -> None:
    """A user rates a resolved ticket ("5") after the ticket left the database (restored from an
    older backup): that event is dead-lettered, and the next user's theft report still opens an
    urgent ticket within seconds."""
    import sqlite3

    import redis.asyncio as aioredis

    from tests.conftest import REDIS_URL

    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as first, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as second, \
            aiohttp.ClientSession(cookie_jar=jar) as staff:
        ws, session = await _widget(first, agents)
        await ws.send_str(orjson.dumps({"type": "message", "client_id": "r1",
                                        "text": "someone logged into my account from another country"}).decode())
        assert await login(staff, agents, "lin@example.com") == "/agent"
        async with staff.get(agents + "/agent/api/me") as r:
            h = {"X-CSRF-Token": (await r.json())["csrf"]}
        ticket = await ticket_of(staff, agents, session)
        assert ticket, "no ticket for the first user"
        number = ticket["number"]
        async with staff.post(agents + f"/agent/api/tickets/{number}/claim", headers=h) as r:
            assert r.status == 200
        async with staff.post(agents + f"/agent/api/tickets/{number}/resolve", headers=h) as r:
            assert r.status == 200
        async with asyncio.timeout(20):  # the user is asked for a rating
            while not ((m := await ws.receive_json())["type"] == "event" and m.get("buttons")):
                pass
        with sqlite3.connect(product_logs / "tickets.db") as db:  # the ticket is gone from the database
            tid = db.execute("SELECT id FROM tickets WHERE number = ?", (number,)).fetchone()[0]
            for table, col in (("ticket_messages", "ticket_id"), ("audit_log", "ticket_id"), ("tickets", "id")):
                db.execute(f"DELETE FROM {table} WHERE {col} = ?", (tid,))  # noqa: S608 - fixed names
        await ws.send_str('{"type":"message","client_id":"r2","text":"5"}')
        await asyncio.sleep(1.0)  # the rating reaches the ticket writer first
        ws2, session2 = await _widget(second, agents)
        await ws2.send_str(orjson.dumps({"type": "message", "client_id": "t1", "text":
                                         "someone hacked my account and withdrew all my BTC"}).decode())
        theft = await ticket_of(staff, agents, session2)
        assert theft, "the theft report opened no ticket"
        assert (theft["topic"], theft["priority"]) == ("theft", "urgent")
        await ws.close()
        await ws2.close()
    r = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        async with asyncio.timeout(30):  # the rating is dead-lettered with its error, after its attempts
            while not (letters := [f for _, f in await r.xrange("handoff:dead")]):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    finally:
        await r.aclose()
    assert letters[0]["error"] == f"NotFound: ticket {number} not found"
    listed = cli(rasa_url, product_logs, "deadletters", "list").stdout
    assert f"NotFound: ticket {number} not found" in listed
