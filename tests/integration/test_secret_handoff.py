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
from bot.models import Message
from bot.queue import Queue
from bot.redact import ENGINE, REDACTED_BY
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


async def test_the_router_redacts_what_this_intake_did_not(rasa_url: str, aredis: aioredis.Redis) -> None:
    """A message on the queue that this version's intake did not redact — put there by another
    version (a rolling upgrade, a replayed dead letter) or by something else — is redacted by the
    router before the NLU, the decision and the ticket see it."""
    s = make_settings(nlu={"urls": [rasa_url]})
    q = Queue(aredis, s.queue)
    await q.publish(web_msg("raw", PASTED["en_words"], "raw"))  # straight onto the queue
    stale = web_msg("old", PASTED["key"], "old")
    await q.publish(stale.model_copy(update={"meta": {REDACTED_BY: "an-older-engine"}}))
    await drain(s, aredis)
    by_conv = {d.conversation_id: d for d in await decisions(aredis)}
    for conv, secret in (("web:raw", SEED_EN.split()[5]), ("web:old", KEY)):
        d = by_conv[conv]
        assert secret not in d.redacted_text and "[REDACTED:" in d.redacted_text
        assert (d.action.value, d.topic, d.priority.value) == ("handoff", "theft", "urgent")
    tickets = " ".join(f["d"] for _, f in await aredis.xrange("handoff"))
    assert KEY not in tickets and SEED_EN.split()[5] + " " + SEED_EN.split()[6] not in tickets


async def test_the_intake_stamps_its_engine_and_the_router_does_not_redact_again(
    rasa_url: str, aredis: aioredis.Redis
) -> None:
    """Every message the intake queues says which redaction engine redacted it (also when a
    channel redacted it itself, `pre_redacted`), and the router takes such a text as it is: one
    redaction per message, not two."""
    s = make_settings(nlu={"urls": [rasa_url]})
    sink = make_sink(Queue(aredis, s.queue))
    await sink(web_msg("1", PASTED["key"], "a"))
    await sink(web_msg("2", "how do I enable 2FA?", "b"), pre_redacted=True)
    queued = [Message.from_json(f["m"]) for _, f in await aredis.xrange("inbound")]
    assert [m.meta.get(REDACTED_BY) for m in queued] == [ENGINE, ENGINE]
    assert KEY not in queued[0].text
    # Stamped by this engine: the router passes the text on as the intake left it (here, for the
    # test only, a text a second pass would have changed).
    trusted = web_msg("3", PASTED["key"], "c").model_copy(update={"meta": {REDACTED_BY: ENGINE}})
    await Queue(aredis, s.queue).publish(trusted)
    await drain(s, aredis)
    by_conv = {d.conversation_id: d for d in await decisions(aredis)}
    assert by_conv["web:c"].redacted_text == trusted.text
    assert by_conv["web:a"].redactions == ("private_key",)
