"""Every part that keeps state in Redis, outside the routers' queue, on a real Redis Cluster: three
masters with a replica each, started once for this module from the `redis-server` binary
(bench/redis_ha.py). A cluster refuses a script or `MULTI` whose keys hash to different slots
(`CROSSSLOT`) and redis-py refuses a cross-slot `MGET`; these tests run each part's real code —
e-mail threads and deferred replies over real IMAP/SMTP servers, the console's sign-in route,
Telegram and X through their webhooks against the local fakes of their APIs, the ticket writer,
the outbound senders and the dead-letter CLI — with the queue split into two partitions.

The stand-in for Rasa (bench/stub_nlu.py, in process) is enough: NLU is not under test here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
import yaml
from typer.testing import CliRunner

from bench.redis_ha import RedisCluster
from bot.config import Settings
from bot.models import Message, Outbound
from bot.redisconn import connect
from bot.streams import Layout
from tests.conftest import make_settings

pytestmark = [
    pytest.mark.redis,
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings(
        "ignore:.*attribute `retry_after` will be of type:telegram.warnings.PTBDeprecationWarning"
    ),
]


# -- the cluster and the rig --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    c = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
async def rc(cluster: RedisCluster) -> AsyncIterator[aioredis.Redis]:
    """The product's client for the cluster (`redis+cluster://…`), every master emptied."""
    r = connect(cluster.url)
    await r.flushall()
    yield r
    await r.aclose()


def settings_for(cluster: RedisCluster, tmp: Path, nlu: str = "http://127.0.0.1:1", **over: Any) -> Settings:
    return make_settings(redis={"url": cluster.url}, queue={"partitions": 2},
                         database={"url": f"sqlite+aiosqlite:///{tmp / 'tickets.db'}"}, nlu={"urls": [nlu]}, **over)


@pytest.fixture
def nlu(stub_nlu: str) -> str:
    return stub_nlu


@dataclass
class Pump:
    """The roles' consumers on every partition, each run until its stream is drained."""

    settings: Settings
    r: aioredis.Redis
    svc: Any
    channels: list[Any]

    async def __call__(self, route: bool = True) -> None:
        from app.runtime import answers
        from bot.channel import OutboundSender
        from bot.router import Brain, RouterWorker
        from handoff.worker import handoff_consumer
        from intents.client import NLUClient

        lay = Layout.of(self.settings)
        stop = asyncio.Event()
        if route:
            async with NLUClient(self.settings.nlu.urls, timeout_s=5) as nlu:
                await nlu.refresh_versions()
                brain = Brain(self.settings, nlu, answers(self.settings), self.svc)
                for p in lay.all():
                    w = RouterWorker(self.settings, self.r, brain, partition=p)
                    await asyncio.wait_for(w.run(burst=True), 60)

        async def tickets() -> None:
            for s in lay.handoff_streams():
                c = handoff_consumer(self.svc, self.r, claim_idle_ms=500, block_ms=50, stream=s)
                await asyncio.wait_for(c.run(stop, burst=True), 30)

        await tickets()
        for ch in self.channels:
            for s in lay.outbound_streams(ch.name):
                await asyncio.wait_for(OutboundSender(self.r, ch, claim_idle_ms=500, stream=s).run(stop, burst=True), 30)
        await tickets()


@pytest.fixture
async def svc(cluster: RedisCluster, rc: aioredis.Redis, tmp_path: Path) -> AsyncIterator[Any]:
    from handoff.db import make_engine, sessionmaker, upgrade
    from handoff.service import TicketService

    s = settings_for(cluster, tmp_path)
    engine = make_engine(s.database.url)
    await upgrade(engine)
    yield TicketService(s, sessionmaker(engine), rc)
    await engine.dispose()


async def inbound(r: aioredis.Redis, s: Settings) -> list[Message]:
    lay = Layout.of(s)
    out: list[tuple[str, Message]] = []
    for p in lay.all():
        out += [(i, Message.from_json(f["m"])) for i, f in await r.xrange(lay.inbound(p))]
    return [m for _, m in sorted(out, key=lambda x: tuple(int(n) for n in x[0].split("-")))]


async def redeliver(r: aioredis.Redis, s: Settings, channel: str) -> int:
    """Every reply of `channel` queued once more, as a sender that died after sending and before
    its acknowledgement leaves it (taken over by another sender: same outbound id)."""
    n = 0
    for stream in Layout.of(s).outbound_streams(channel):
        for _, f in await r.xrange(stream):
            await r.xadd(stream, f)
            n += 1
    return n


async def dead_letters(r: aioredis.Redis) -> dict[str, int]:
    """Every dead-letter stream with entries, and how many."""
    out: dict[str, int] = {}
    async for k in r.scan_iter(match="*:dead", _type="STREAM"):
        out[k] = await r.xlen(k)
    return out


# -- e-mail ---------------------------------------------------------------------------------------------
async def test_email_threads_deferred_handoff_replies_and_the_loop_guard_work_on_a_cluster(
    cluster: RedisCluster, rc: aioredis.Redis, dovecot: Any, tmp_path: Path
) -> None:
    from bot.intake import make_sink
    from bot.queue import Queue
    from channels.email.adapter import EmailChannel
    from tests.integration.email_peers import SmtpServer
    from tests.integration.test_email import ALICE, email_section, mail, text_of, wait_until

    smtp = SmtpServer()
    await smtp.start()
    s = settings_for(cluster, tmp_path, channels=[email_section(dovecot, smtp.port, tmp_path, autoreply_max=3)])
    ch = EmailChannel.from_config(s, s.channel("email"), rc)  # type: ignore[arg-type]
    meta = {"reply_to_addr": ALICE, "reply_subject": "Account locked", "reply_ticket_ack": "1"}

    def ob(conv: str, kind: str, text: str, **extra: str) -> Outbound:
        return Outbound(channel="email", conversation_id=conv, user_id=ALICE, text=text, kind=kind,  # type: ignore[arg-type]
                        meta={**meta, **extra})

    try:
        await ch.start(make_sink(Queue(rc, s.queue, layout=Layout.of(s))))
        first, _ = mail("Account locked", "I want to talk to a real person")
        dovecot.deliver(first)

        async def arrived(n: int) -> None:
            async def enough() -> bool:
                return len(await inbound(rc, s)) >= n

            await wait_until(enough, 20, f"{n} inbound mail(s)")

        await arrived(1)
        [m1] = await inbound(rc, s)
        conv = m1.conversation_id
        # The handoff reply waits for the ticket's acknowledgement, which replaces it …
        await ch.send(ob(conv, "handoff", "A person will take over."))
        await ch.send(ob(conv, "system", "A person will take over.\n\nYour ticket number is SB-000007",
                         ticket="SB-000007", ticket_ack="1"))
        # … or, when no acknowledgement follows, is mailed alone once its wait is over.
        await ch.send(ob("email:other", "handoff", "A person will take over again."))
        assert await ch.flush_deferred(time.time() + 3600) == 1
        assert await ch.flush_deferred(time.time() + 7200) == 0
        assert [text_of(m).strip() for m in smtp.rec.mails] == [
            "A person will take over.\n\nYour ticket number is SB-000007", "A person will take over again."]
        ack_id = str(smtp.rec.mails[0]["Message-ID"])

        # The user answers the acknowledgement: the reply joins the conversation (its headers name
        # ids this mailbox never saw first, ours among them) …
        reply, _ = mail("Re: Account locked [SB-000007]", "It happened after I changed phones.",
                        in_reply_to=make_msgid(domain="elsewhere.example"),
                        references=f"{ack_id} {make_msgid(domain='x.example')}")
        dovecot.deliver(reply)
        await arrived(2)
        # … and so does one that kept only the ticket token in its subject.
        token_only, _ = mail("Re: [SB-000007] still locked", "Any news?")
        dovecot.deliver(token_only)
        await arrived(3)
        assert [(m.conversation_id, m.text) for m in (await inbound(rc, s))[1:]] == [
            (conv, "It happened after I changed phones."), (conv, "Any news?")]

        # Automatic answers to one address are capped per window (agent replies never are); a
        # retried send of the same answer is not counted twice.
        smtp.rec.envelopes.clear()
        bob = "bob@example.org"
        loop_meta = {"reply_to_addr": bob, "reply_subject": "hi"}
        answers = [Outbound(channel="email", conversation_id=f"email:l{i}", user_id=bob, text=f"answer {i}",
                            kind="answer", meta=loop_meta) for i in range(4)]
        for a in [answers[0], answers[0], *answers[1:]]:
            await ch.send(a)
        await ch.send(Outbound(channel="email", conversation_id="email:l9", user_id=bob, text="from Lin",
                               kind="agent", author="Lin", meta=loop_meta))
        # answer 0 twice (a retry), answer 1 and 2: the cap of 3 in the window is reached.
        assert [text_of(m).split("\n")[0] for m in smtp.rec.mails] == [
            "answer 0", "answer 0", "answer 1", "answer 2", "from Lin"]
    finally:
        await ch.stop(grace_s=1)
        await smtp.stop()


# -- the agent console's sign-in -----------------------------------------------------------------------
async def test_console_sign_in_throttling_lockout_refund_and_sessions_work_on_a_cluster(
    cluster: RedisCluster, rc: aioredis.Redis, svc: Any, tmp_path: Path
) -> None:
    from app.web import create_app
    from handoff.console import console_router
    from handoff.service import EVENTS

    s = settings_for(cluster, tmp_path, handoff={"max_login_failures": 3, "lockout_min": 15})
    app = create_app(s, rc, [], extra_routers=[console_router(s, svc, rc, [])])
    lin = await svc.add_agent("lin@example.com", "Lin", "correct-horse-battery")
    await svc.add_agent("mei@example.com", "Mei", "correct-horse-battery")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb.test") as http:
        async def sign_in(email: str, pw: str) -> str:
            await http.get("/agent/login")
            res = await http.post("/agent/login", data={"email": email, "password": pw,
                                                        "csrf": http.cookies["sb_login_csrf"]})
            assert res.status_code == 303
            return res.headers["location"]

        # A right password refunds its attempt: an agent who signs in between typos is never locked.
        for _ in range(3):
            assert await sign_in("lin@example.com", "wrong-password-1") == "/agent/login?error=invalid"
            assert await sign_in("lin@example.com", "correct-horse-battery") == "/agent"
        me = await http.get("/agent/api/me")
        assert me.status_code == 200 and me.json()["name"] == "Lin"

        # Three wrong passwords in a row lock the account from this address, even for the right one.
        for _ in range(3):
            assert await sign_in("mei@example.com", "wrong-password-2") == "/agent/login?error=invalid"
        assert await sign_in("mei@example.com", "correct-horse-battery") == "/agent/login?error=locked"

        # The console's live events reach a subscriber (classic pub/sub is cluster-wide).
        ps = rc.pubsub(ignore_subscribe_messages=True)
        await ps.subscribe(EVENTS)
        await svc.publish({"type": "ping"})
        got = None
        for _ in range(50):
            got = await ps.get_message(timeout=0.1)
            if got:
                break
        await ps.aclose()
        assert got is not None and orjson.loads(got["data"]) == {"type": "ping"}

        # Disabling an agent ends every session of theirs at once.
        await svc.disable_agent(lin.email)
        assert (await http.get("/agent/api/me")).status_code == 401


# -- Telegram ---------------------------------------------------------------------------------------------
async def test_a_telegram_group_case_reaches_the_ticket_and_the_private_chat_on_a_cluster(
    cluster: RedisCluster, rc: aioredis.Redis, svc: Any, nlu: str, tmp_path: Path
) -> None:
    from app.web import create_app
    from bot.intake import make_sink
    from bot.queue import Queue
    from channels.telegram.adapter import SECRET_HEADER, TelegramChannel
    from tests.fakes import telegram_api as tg
    from tests.fakes.telegram_api import FakeBotAPI
    from tests.integration.test_telegram import SECRET, channel_cfg

    gid, uid, bot = -1001234500, 7001, "sb_test_bot"
    async with FakeBotAPI() as fake:
        s = settings_for(cluster, tmp_path, nlu, channels=[channel_cfg(fake)])
        ch = TelegramChannel.from_config(s, s.channel("telegram"), rc)  # type: ignore[arg-type]
        await ch.start(make_sink(Queue(rc, s.queue, layout=Layout.of(s))))
        pump = Pump(s, rc, svc, [ch])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(s, rc, [ch])),
                                     base_url="http://sb.test") as http:
            async def post(update: dict[str, Any]) -> int:
                return (await http.post("/telegram/webhook", json=update, headers={SECRET_HEADER: SECRET})).status_code

            try:
                fake.not_started.add(uid)  # the member never opened the bot's private chat
                report = tg.message(f"@{bot} someone withdrew all my USDT, I did not make this withdrawal",
                                    uid=uid, chat_id=gid, chat_type="supergroup")
                edit = {"update_id": tg.next_update_id(),
                        "edited_message": {**report["message"], "edit_date": 1}}
                assert await post(report) == 200 and await post(edit) == 200
                assert len(await inbound(rc, s)) == 1  # the edit of a queued group message is not queued again
                await pump()

                [invite] = [c for c in fake.sent() if int(c["chat_id"]) == gid]
                assert f"https://t.me/{bot}?start=group_theft" in invite["text"]
                lena = await svc.add_agent("lena@example.com", "Lena", "correct-horse-battery")
                [ticket] = await svc.list("all", lena)
                number = ticket["number"]
                notes = [m["text"] for m in (await svc.detail(number))["messages"] if m["direction"] == "note"]
                assert len(notes) == 1 and notes[0].startswith("Not delivered yet")

                # The member opens the private chat: the held reply reaches them, the ticket says so.
                fake.not_started.discard(uid)
                assert await post(tg.message("/start group_theft", uid=uid)) == 200
                await pump()
                private = [c["text"] for c in fake.sent() if int(c["chat_id"]) == uid]
                assert len(private) == 1 and private[0].startswith("A security specialist will take over")
                notes = [m["text"] for m in (await svc.detail(number))["messages"] if m["direction"] == "note"]
                assert any(n.startswith("Delivered") for n in notes)

                # A redelivered reply (a sender died after sending, before its ack) is not sent twice.
                sent = len(fake.sent())
                assert await redeliver(rc, s, "telegram") == 2  # the handoff reply, the released copy
                await pump(route=False)
                assert len(fake.sent()) == sent
                assert await dead_letters(rc) == {}

                # Readiness and the queue gauges read the cluster (every partition's streams).
                # (ASGITransport runs no lifespan, so the NLU check has no HTTP client here.)
                ready = (await http.get("/readyz")).json()
                assert ready["checks"]["redis"] == "ok" and "problems" not in ready, ready
                scraped = (await http.get("/metrics")).text
                for stream in ("inbound:{p0}", "inbound:{p1}", "handoff:{p1}", "outbound:telegram:{p0}"):
                    assert f'switchboard_queue_lag{{stream="{stream}"}} 0.0' in scraped, stream
            finally:
                await ch.stop()


# -- X ------------------------------------------------------------------------------------------------------
async def test_x_mentions_are_deduplicated_answered_and_marked_on_a_cluster(
    cluster: RedisCluster, rc: aioredis.Redis, svc: Any, nlu: str, tmp_path: Path
) -> None:
    from tests.fakes.x_api import FakeXAPI, channel_section, webhook_dm, webhook_mention
    from tests.integration.test_twitter import deliver, running, web

    fake = FakeXAPI()
    await fake.start()
    s = settings_for(cluster, tmp_path, nlu, channels=[channel_section()])
    try:
        async with running(s, rc, fake) as ch, web(s, rc, ch) as http:
            pump = Pump(s, rc, svc, [ch])
            fake.add_user("2001", "alice")
            me = fake.account_id
            mention = {"for_user_id": me, "tweet_create_events": [
                webhook_mention("9001", "2001", "alice", "@ExchangeSupport my deposit has not arrived")]}
            assert await deliver(http, mention) == 200
            assert await deliver(http, mention) == 200  # X retries a delivery: queued once
            dm = {"for_user_id": me, "direct_message_events": [webhook_dm("9101", "2001", "my deposit is missing")]}
            assert await deliver(http, dm) == 200
            assert len(await inbound(rc, s)) == 2
            await pump()
            # An account question asked in public is answered by DM, with a public pointer to it.
            assert [t["reply"]["in_reply_to_tweet_id"] for t in fake.tweets] == ["9001"]
            assert [d["to"] for d in fake.dms] == ["2001", "2001"]
            # Redelivered replies (a sender died before its ack) are not posted again.
            assert await redeliver(rc, s, "twitter") == 2
            await pump(route=False)
            assert len(fake.tweets) == 1 and len(fake.dms) == 2
            # The author deletes the post: it leaves the ticket's thread of events (the untagged
            # `handoff` stream), and nothing fails on the cluster.
            assert await deliver(http, {"for_user_id": me,
                                        "tweet_delete_events": [{"status": {"id": "9001", "user_id": "2001"}}]}) == 200
            await pump(route=False)
            assert await dead_letters(rc) == {}
    finally:
        await fake.close()


# -- the ticket writer's and the senders' dead letters, and the dead-letter CLI --------------------------
def test_bad_events_are_dead_lettered_listed_and_replayed_by_the_cli_on_a_cluster(
    cluster: RedisCluster, tmp_path: Path
) -> None:
    from app.cli import app as cli
    from bot.queue import Queue
    from bot.router import RouterWorker  # noqa: F401 - the router's module is what writes inbound dead letters
    from handoff.db import make_engine, sessionmaker, upgrade
    from handoff.service import TicketService
    from handoff.worker import handoff_consumer

    raw = {"redis": {"url": cluster.url, "start_if_unreachable": False}, "queue": {"partitions": 1},
           "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}"},
           "nlu": {"urls": ["http://127.0.0.1:1"]}, "channels": [{"type": "web"}]}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    s = make_settings(**raw)
    lay = Layout.of(s)
    assert lay.tagged and lay.inbound(0) == "inbound:{p0}"

    async def setup() -> str:
        r = connect(cluster.url)
        await r.flushall()
        engine = make_engine(s.database.url)
        await upgrade(engine)
        svc = TicketService(s, sessionmaker(engine), r)
        try:
            # Bad events on the partition's handoff stream and on the untagged one the adapters
            # of earlier versions wrote to (its dead letters are on another slot of the cluster).
            for stream in lay.handoff_streams():
                await r.xadd(stream, {"d": "{not json"})
                await r.xadd(stream, {"d": orjson.dumps({"csat": {"ticket": "SB-009999", "score": 5}}).decode()})
                c = handoff_consumer(svc, r, claim_idle_ms=200, max_attempts=1, block_ms=50, stream=stream)
                await asyncio.wait_for(c.run(asyncio.Event(), burst=True), 30)
                assert c.dead_lettered == 2
            # A message the router gave up on, dead-lettered the router's way.
            q = Queue(r, s.queue, layout=lay)
            await q.ensure_group()
            m = Message(channel="web", channel_message_id="m1", conversation_id="web:s1", user_id="s1", text="hi")
            await q.publish(m)
            [e] = await q.read("w1", 10, None)
            await q.dead_letter(e, "NLUUnavailable: rasa down", attempts=5)
            [(dead_id, _)] = await r.xrange(lay.inbound(0) + ":dead")
            return str(dead_id)
        finally:
            await r.aclose()
            await engine.dispose()

    dead_id = asyncio.run(setup())
    run = CliRunner().invoke
    listed = run(cli, ["deadletters", "list", "--config", str(cfg)])
    assert listed.exit_code == 0, listed.output
    for stream in ("handoff:{p0}", "handoff", "inbound:{p0}"):
        assert any(line.split()[1:2] == [stream] for line in listed.output.splitlines() if "│" in line
                   or line.startswith(stream)) or stream in listed.output, listed.output
    assert listed.output.count("malformed handoff event") == 2 and "NotFound" in listed.output
    assert "NLUUnavailable: rasa down" in listed.output

    # Replayed, the message goes through intake again: into its partition, as the conversation's
    # next message (a raw copy of its old fields would be taken for a duplicate and never answered).
    replayed = run(cli, ["deadletters", "replay", dead_id, "--config", str(cfg)])
    assert replayed.exit_code == 0 and "re-queued 1" in replayed.output, replayed.output

    async def check() -> list[dict[str, str]]:
        r = connect(cluster.url)
        try:
            assert await r.xlen(lay.inbound(0) + ":dead") == 0
            return [f for _, f in await r.xrange(lay.inbound(0))]
        finally:
            await r.aclose()

    entries = asyncio.run(check())
    assert [(f["c"], f["seq"]) for f in entries] == [("web:s1", "1"), ("web:s1", "2")]


# -- right after a planned failover ------------------------------------------------------------------------
async def test_a_planned_failover_is_an_outage_readers_and_channels_wait_out_not_a_crash(
    cluster: RedisCluster, rc: aioredis.Redis, tmp_path: Path
) -> None:
    """`CLUSTER FAILOVER` (as for an upgrade): the client still maps the slot to the old master,
    now a replica, over connections that stay open. A command follows the MOVED to the new master
    but its `WAIT` reaches the replica, which refuses it. With `redis.wait_replicas` that is a
    Redis outage — a sender or the ticket writer waits it out, a channel sends again — never an
    error that stops a consumer."""
    from bot.consumer import StreamConsumer, is_outage
    from bot.queue import Durability, Entry, Queue

    s = make_settings(redis={"url": cluster.url, "wait_replicas": 1, "wait_timeout_ms": 1000}, queue={"partitions": 2})
    lay = Layout.of(s)
    q = Queue(rc, s.queue, layout=lay, durability=Durability.of(s))
    p = lay.partition("web:f")
    got: list[str] = []

    async def handle(e: Entry, fresh: bool) -> None:
        got.append(e.fields["d"])

    def sender() -> StreamConsumer:
        return StreamConsumer(rc, lay.outbound("web", p), "senders", handle, wait_replicas=1, wait_timeout_ms=1000,
                              block_ms=50, claim_idle_ms=1000)

    def m(i: int) -> Message:
        return Message(channel="web", channel_message_id=f"f{i}", conversation_id="web:f", user_id="f", text=f"m{i}")

    assert await q.publish(m(1)) is not None
    # A sender runs across the failover.
    stop = asyncio.Event()
    running = asyncio.create_task(sender().run(stop))
    await rc.xadd(lay.outbound("web", p), {"d": "reply 1"})

    async def until(n: int) -> None:
        deadline = time.monotonic() + 20
        while len(got) < n:
            assert not running.done(), f"the sender stopped: {running.exception()}"
            assert time.monotonic() < deadline, f"only {got}"
            await asyncio.sleep(0.05)

    await until(1)
    new = await asyncio.to_thread(cluster.promote_replica, lay.inbound(p))
    # The next reply is written by another process (this client has not been told of the move).
    new.client().xadd(lay.outbound("web", p), {"d": "reply 2"})
    await until(2)
    stop.set()
    await running
    assert got == ["reply 1", "reply 2"]

    outages: list[str] = []
    for _ in range(100):  # the channel sends again until it is acknowledged
        try:
            await q.publish(m(2))
            break
        except Exception as e:  # noqa: BLE001 - what the channel sees is the point
            assert is_outage(e), f"{type(e).__name__}: {e}"
            outages.append(type(e).__name__)
            await asyncio.sleep(0.1)
    else:
        pytest.fail(f"never acknowledged after the failover: {outages}")
    assert [Message.from_json(f["m"]).text for _, f in await rc.xrange(lay.inbound(p))] == ["m1", "m2"]
