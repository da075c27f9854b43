"""Issue #25 item 2: a seed phrase or key pasted into a support chat is treated as exposed — an
urgent theft ticket — even though intake replaced it before the router saw the message. Through
the real intake, Redis queue, router and Rasa; the per-channel versions (Telegram, X, e-mail,
widget) are in test_secrets_channels.py and test_secrets.py."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis
from mnemonic import Mnemonic

from bot.intake import make_sink
from bot.queue import Queue
from tests.conftest import make_settings
from tests.integration.test_router import decisions, drain, web_msg

pytestmark = [pytest.mark.redis, pytest.mark.rasa]

SEED_EN = Mnemonic("english").to_mnemonic(bytes(range(16)))
SEED_ZH = "".join(Mnemonic("chinese_simplified").to_mnemonic(bytes(range(100, 116))).split())
KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"

PASTED = {
    "en_words": f"is my wallet safe? my words are {SEED_EN}",
    "en_json": "can you check this? " + orjson.dumps(SEED_EN.split()).decode(),
    "zh_glued": f"钱包安全吗？我的助记词是{SEED_ZH}",
    "key": f"is this ok? my private key for metamask is {KEY}",
}


async def test_a_pasted_secret_opens_an_urgent_theft_ticket_after_intake_redacted_it(
    rasa_url: str, aredis: aioredis.Redis
) -> None:
    s = make_settings(nlu={"urls": [rasa_url]})
    sink = make_sink(Queue(aredis, s.queue))
    for name, text in PASTED.items():
        await sink(web_msg(name, text, name))
    # What the router reads is already redacted: the secret itself never reached the queue.
    queued = " ".join(f["m"] for _, f in await aredis.xrange("inbound"))
    assert SEED_EN.split()[4] + " " + SEED_EN.split()[5] not in queued and KEY not in queued and SEED_ZH[3:9] not in queued
    await drain(s, aredis)
    by_conv = {d.conversation_id: d for d in await decisions(aredis)}
    for name in PASTED:
        d = by_conv[f"web:{name}"]
        assert (d.action.value, d.topic, d.priority.value) == ("handoff", "theft", "urgent"), (name, d.reason, d.intent)
        assert set(d.redactions) & {"seed_phrase", "private_key"}, (name, d.redactions)
    handoffs = [orjson.loads(f["d"]) for _, f in await aredis.xrange("handoff")]
    assert {h["message"]["conversation_id"] for h in handoffs} == {f"web:{n}" for n in PASTED}
