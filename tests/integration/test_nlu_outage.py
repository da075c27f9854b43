"""While Rasa is down — not started yet, or killed mid-burst — messages wait in the queue (none
lost, none answered with a guess) and are handled, once each, when it is back."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import redis.asyncio as aioredis

from app.runtime import answers
from bot.intake import make_sink
from bot.models import Decision, Message, Outbound
from bot.queue import Queue
from bot.router import Brain, RouterWorker
from intents.client import NLUClient
from intents.rasa import RasaServer
from tests.conftest import free_port, make_settings
from tests.integration.conftest import repo_rasa_paths

pytestmark = [pytest.mark.redis, pytest.mark.rasa, pytest.mark.slow]


async def test_messages_wait_for_rasa_and_are_answered_once_when_it_is_back(
    trained_model, aredis: aioredis.Redis, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    port = free_port()
    s = make_settings(nlu={"urls": [f"http://127.0.0.1:{port}"], "backoff_max_s": 0.5})
    q = Queue(aredis, s.queue)
    sink = make_sink(q)
    texts = ["How do I enable 2FA?", "提币多久到账", "what is the maker fee", "hello", "KYC审核要多久"]
    for i, t in enumerate(texts):
        await sink(Message(channel="chat", channel_message_id=str(i), conversation_id=f"web:o{i % 2}",
                           user_id=f"o{i % 2}", text=t, lang="zh" if "\u4e00" <= t[0] <= "\u9fff" else "en"))
    stop = asyncio.Event()
    server = RasaServer(repo_rasa_paths(), trained_model, port, log_path=tmp_path / "rasa.log")
    async with NLUClient(s.nlu.urls, timeout_s=2, backoff_max_s=0.5) as nlu:
        worker = RouterWorker(s, aredis, Brain(s, nlu, answers(s)))
        task = asyncio.create_task(worker.run(stop))
        try:
            await asyncio.sleep(3)  # several claim_idle periods: nothing may be answered or dead-lettered
            assert await aredis.xlen("outbound:chat") == 0
            assert await q.dead_letters() == []
            assert await q.pending_count() == len(texts)
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(server.wait_ready, 240)
            for _ in range(300):
                if await aredis.xlen("outbound:chat") >= len(texts):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            assert await aredis.xlen("outbound:chat") == len(texts)
            # Now Rasa is killed (SIGKILL) in the middle of a burst, then started again.
            more = 60
            for i in range(more):
                await sink(Message(channel="chat", channel_message_id=f"k{i}", conversation_id=f"web:k{i % 6}",
                                   user_id=f"k{i % 6}", text=f"how long does withdrawal {i} take", lang="en"))
            for _ in range(300):
                if await aredis.xlen("outbound:chat") >= len(texts) + 5:
                    break
                await asyncio.sleep(0.01)
            assert server.proc is not None
            os.killpg(server.proc.pid, signal.SIGKILL)
            await asyncio.to_thread(server.proc.wait)
            at_kill = await aredis.xlen("outbound:chat") - len(texts)
            assert at_kill < more, "the burst finished before Rasa was killed; the test proves nothing"
            await asyncio.sleep(2)  # waiting, not failing: nothing dead-lettered meanwhile
            assert await q.dead_letters() == []
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(server.wait_ready, 240)
            for _ in range(600):
                if await aredis.xlen("outbound:chat") >= len(texts) + more and await q.pending_count() == 0:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await asyncio.to_thread(server.stop)
    outs = [Outbound.from_json(f["d"]) for _, f in await aredis.xrange("outbound:chat")]
    assert len(outs) == len(texts) + more, f"{len(outs)} replies (Rasa killed after {at_kill} of {more})"
    assert len({o.in_reply_to for o in outs}) == len(outs)  # each message answered once
    assert await q.pending_count() == 0 and await q.dead_letters() == []
    assert worker.handled == len(texts) + more
    ds = [Decision.from_json(f["d"]) for _, f in await aredis.xrange("decisions")]
    for c in range(6):  # in order per conversation
        got = [d.redacted_text for d in ds if d.conversation_id == f"web:k{c}"]
        assert got == [f"how long does withdrawal {i} take" for i in range(c, more, 6)]
