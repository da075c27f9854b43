"""Router worker: inbound entry → redact → NLU → policy → Decision → outbound streams.

`Brain` is the decision path without a queue (used by the worker and by `switchboard route`);
`RouterWorker` is its handler on the shared stream consumer (`bot.consumer`: consumer group,
take-over, attempts, dead letters, back-off), with per-conversation ordering and the exactly-once
commit on top.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis

from bot import mailbox, metrics, policy, streams
from bot.config import Settings
from bot.consumer import ACKED, Outcome, Permanent, Retry, StreamConsumer, consumer_name
from bot.errors import NLUUnavailable
from bot.logs import get_logger
from bot.models import Action, Decision, Message, Outbound, Priority
from bot.policy import ConvState, decide, slots_from
from bot.queue import Durability, Entry, Output, Queue
from bot.redact import ENGINE, EXPOSING, REDACTED_BY, Redacted, kinds_found, redact_async
from bot.redisbatch import Batcher
from bot.redisconn import is_cluster
from bot.streams import Layout
from intents.answers import Answers
from intents.client import NLUClient, NLUResult
from intents.help import ReadMore

log = get_logger("switchboard.router")

DECISIONS_STREAM = streams.DECISIONS
HANDOFF_STREAM = streams.HANDOFF
DECISIONS_MAXLEN = streams.DECISIONS_MAXLEN
CONV_LOG_MAXLEN = 50
outbound_stream = streams.outbound


@functools.cache  # 2 label values: the children once, not a labels() lookup per message
def _nlu_cache(result: str) -> Any:
    return metrics.NLU_CACHE.labels(result)


@functools.cache  # 3 actions x 15 topics
def _decisions(action: str, topic: str) -> Any:
    return metrics.DECISIONS.labels(action, topic)


def _count(raw: str | None) -> int:
    """A counter of the conversation's state; a corrupt one reads as 0 (and the commit writes it
    anew) rather than failing every message of the conversation for good."""
    try:
        return int(raw or 0)
    except ValueError:
        return 0


def state_from_hash(h: dict[str, str]) -> ConvState:
    return ConvState(
        mode=h.get("mode") or "bot",
        fallbacks=_count(h.get("fallbacks")),
        lang=h.get("lang") or None,
        vip=_count(h.get("vip")),
        handoff_topic=h.get("handoff_topic") or None,
        csat_pending=h.get("csat_pending") or None,
    )


class TicketLookup(Protocol):
    async def status_for(self, number: str, channel: str, user_id: str) -> Any: ...


class KnownIssue(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def message(self) -> str: ...  # in the language asked for


class IncidentLookup(Protocol):
    """Active incidents (a known outage many users write about): the one this text is about."""

    async def incident_for(self, text: str, lang: str) -> KnownIssue | None: ...


@dataclass
class Brain:
    """redact → NLU → policy, for one message and its conversation state."""

    settings: Settings
    nlu: NLUClient
    answers: Answers
    tickets: TicketLookup | None = None
    incidents: IncidentLookup | None = None
    # The help-centre article for an answer's intent ("Read more: <url>"), when wired.
    read_more: ReadMore | None = None
    # Theft cases and VIP users are offered a call back in the handoff reply (handoff.callbacks).
    offer_callback: bool = False

    def _simple(self, msg: Message, text: str, action: Action, topic: str, intent: str, reply: str,
                priority: Priority = Priority.LOW, **kw: Any) -> Decision:
        return Decision(
            message_id=msg.id, conversation_id=msg.conversation_id, channel=msg.channel, action=action,
            topic=topic, intent=intent, confidence=1.0, priority=priority, reply=reply, lang=msg.lang,  # type: ignore[arg-type]
            model_version=self.nlu.model_version, redacted_text=text, **kw,
        )

    async def _ticket_status(self, msg: Message, number: str) -> str:
        t = await self.tickets.status_for(number, msg.channel, msg.user_id) if self.tickets else None
        return policy.status_reply(self.answers, msg.lang, number, None if t is None else t.status)

    async def _special(self, msg: Message, text: str, state: ConvState,
                       found: tuple[str, ...]) -> tuple[Decision, ConvState] | None:
        """Ratings, commands, files without text and ticket lookups (`policy.before_nlu`); `found`:
        the kinds of secret the message carried (`kinds_found`)."""
        sp = policy.before_nlu(
            text=text, state=state, command=msg.meta.get("command"), command_arg=msg.meta.get("command_arg", ""),
            has_attachments=bool(msg.attachments), ticket_on_clarify=msg.meta.get("ticket_on_clarify") == "1",
            forwarded=msg.meta.get("forwarded") == "1", secret_found=bool(msg.meta.get("redacted")),
            exposed=bool(EXPOSING.intersection(found)),
        )
        if sp is None:
            return None
        if sp.answer is None:  # ticket status: the one lookup
            reply = await self._ticket_status(msg, sp.ticket or "")
        elif sp.intent == "forwarded_message":
            reply = "\n\n".join(x.strip() for x in (self.answers.get(k, msg.lang) for k in policy.FORWARDED_ANSWERS) if x)
        elif sp.answer == "file_received":
            reply = self.answers.get("file_received", msg.lang, name=", ".join(a.name for a in msg.attachments)[:200]) or ""
        else:
            reply = self.answers.get(sp.answer, msg.lang) or ""
        extra: dict[str, Any] = {}
        if sp.csat is not None:
            extra = {"csat": sp.csat, "ticket": sp.ticket, "reason": "csat"}
        return self._simple(msg, text, Action.ANSWER, sp.topic, sp.intent, reply, **extra), sp.state

    async def decide(self, msg: Message, state: ConvState) -> tuple[Decision, ConvState, float]:
        """Returns the decision, the conversation's new state and the seconds spent in the NLU."""
        if msg.meta.get(REDACTED_BY) == ENGINE:
            red = Redacted(msg.text, ())  # the intake redacted it with these very detectors
        else:
            red = await redact_async(msg.text)
        text = red.text
        # What intake (or the channel) already replaced counts too: re-redacting marks finds nothing.
        found = kinds_found(msg.text, msg.meta.get("redacted"), red.kinds)
        special = await self._special(msg, text, state, found)
        if special is not None:
            return special[0], special[1], 0.0
        if state.csat_pending:
            state = replace(state, csat_pending=None)  # they moved on without rating
        if msg.meta.get("command") == "human":
            text = "I want to talk to a human agent" if msg.lang == "en" else "我要转人工客服"
        if state.mode == "agent":
            nlu = NLUResult("agent_mode", 0.0)
        elif not text.strip():
            nlu = NLUResult("nlu_fallback", 0.0, model_version=self.nlu.model_version)
        else:
            nlu = await self.nlu.parse(text)
            _nlu_cache("hit" if nlu.cached else "miss").inc()
            if not nlu.cached:
                metrics.NLU_LATENCY.observe(nlu.latency_s)
        self.answers.maybe_reload()
        entities = dict(nlu.entities)
        slots = slots_from(text, entities)
        out = decide(
            text=text,
            lang=msg.lang,
            nlu=nlu,
            state=state,
            answers=self.answers,
            sla=self.settings.sla,
            threshold=self.settings.nlu.confidence_threshold,
            escalate_after=self.settings.router.escalate_after_fallbacks,
            redactions=found,
            entities=entities,
            slots=slots,
            quoted=msg.meta.get("quoted"),
        )
        if msg.meta.get("ticket_on_clarify") == "1":
            out = policy.clarify_to_ticket(out, vip=state.vip, lang=msg.lang, answers=self.answers,
                                           sla=self.settings.sla)
        if (self.incidents is not None and state.mode != "agent" and not out.silent and out.topic != "theft"
                and (known := await self.incidents.incident_for(text, msg.lang)) is not None):
            # A known incident: say so (its current message) instead of opening one more ticket.
            # Theft still goes to a person.
            out = replace(out, action=Action.ANSWER, intent="known_incident", reply=known.message,
                          reason=f"incident:{known.id}", state=replace(state, fallbacks=0))
        if out.action is Action.ANSWER and out.intent == "ticket_status" and (number := policy.ticket_number(text)):
            out = replace(out, reply=await self._ticket_status(msg, number))
        elif out.action is Action.ANSWER and self.read_more and (more := self.read_more.line(out.intent, msg.lang)):
            out = replace(out, reply=f"{out.reply.rstrip()}\n\n{more}")
        offers: tuple[str, ...] = ()
        if (self.offer_callback and out.action is Action.HANDOFF and not out.silent
                and (out.topic == "theft" or state.vip > 0)
                and (offer := self.answers.get("callback_offer", msg.lang))):
            out = replace(out, reply=f"{out.reply.rstrip()}\n\n{offer.strip()}")
            offers = ("callback",)
        d = Decision(
            message_id=msg.id,
            conversation_id=msg.conversation_id,
            channel=msg.channel,
            action=out.action,
            topic=out.topic,  # type: ignore[arg-type]
            intent=out.intent,
            confidence=out.confidence,
            priority=out.priority,
            reply=out.reply,
            lang=msg.lang,
            entities=slots,
            model_version=nlu.model_version,
            redacted_text=text,
            redactions=found,
            reason=out.reason,
            silent=out.silent,
            offers=offers,
        )
        return d, out.state, nlu.latency_s


def outputs_for(msg: Message, d: Decision, layout: Layout | None = None, *,
                mailboxes: frozenset[str] = frozenset(), history: int = 200) -> list[Output]:
    """What a decision puts on which stream (all committed atomically with the ack; all in the
    conversation's partition, so on one hash slot). The reply of a channel in `mailboxes` goes
    straight into the conversation's mailbox (`bot.mailbox`, at most `history` events)."""
    lay = layout or Layout()
    p = lay.partition(msg.conversation_id)
    outs: list[Output] = []
    if not d.silent and d.reply and msg.channel in mailboxes:
        event = orjson.dumps(mailbox.reply_event(d.action.value, d.reply, d.decided_at, in_reply_to=msg.id)).decode()
        outs.append(Output.mailbox(mailbox.Append(mailbox.box_key(msg.user_id, lay, msg.channel), msg.user_id,
                                                  event, history)))
    elif not d.silent and d.reply:
        ob = Outbound(
            channel=msg.channel,
            conversation_id=msg.conversation_id,
            user_id=msg.user_id,
            text=d.reply,
            lang=d.lang,
            kind=d.action.value,
            topic=d.topic,
            in_reply_to=msg.id,
            meta={k: v for k, v in msg.meta.items() if k.startswith("reply_")},
        )
        outs.append(Output(lay.outbound(msg.channel, p), ob.to_json()))
    if d.action is Action.HANDOFF:
        red_msg = msg.model_copy(update={"text": d.redacted_text})
        payload = '{"decision":' + d.to_json() + ',"message":' + red_msg.to_json() + "}"
        outs.append(Output(lay.handoff(p), payload))
    if d.csat is not None and d.ticket:
        # The conversation travels with the rating: a ticket number alone may name another ticket
        # (a database restored from an older backup numbers new tickets again).
        csat = {"ticket": d.ticket, "score": d.csat, "conversation": msg.conversation_id}
        outs.append(Output(lay.handoff(p), orjson.dumps({"csat": csat}).decode()))
    outs.append(Output(lay.decisions(p), d.to_json(), DECISIONS_MAXLEN))
    # The conversation's recent turns, so a ticket opened later shows what was already said.
    turn = {"in": d.redacted_text, "out": "" if d.silent else d.reply, "intent": d.intent,
            "at": d.decided_at.isoformat()}
    outs.append(Output(lay.conv_log(msg.conversation_id), orjson.dumps(turn).decode(), CONV_LOG_MAXLEN))
    return outs


def state_updates(before: ConvState, after: ConvState) -> dict[str, str]:
    upd = {"fallbacks": str(after.fallbacks), "lang": after.lang or ""}
    if after.mode != before.mode:
        upd["mode"] = after.mode
    if after.handoff_topic and after.handoff_topic != before.handoff_topic:
        upd["handoff_topic"] = after.handoff_topic
    if before.csat_pending and not after.csat_pending:
        upd["csat_pending"] = ""
    return upd


@dataclass
class RouterWorker:
    """The router's handler on the shared stream consumer (`bot.consumer`): per-conversation order
    and the exactly-once commit (`bot.queue`) on top of its reads, take-over, attempts and dead
    letters."""

    settings: Settings
    redis: aioredis.Redis
    brain: Brain
    name: str = field(default_factory=consumer_name)
    partition: int = 0  # the inbound partition this worker consumes (see bot.streams.Layout)
    # The commits and state reads of the messages in flight, sent together (`bot.redisbatch`).
    # None: one is made when several messages are in flight at once (`router.concurrency`),
    # unless the client is a Redis Cluster or commits WAIT for replicas.
    batch: Batcher | None = None
    queue: Queue = field(init=False)
    consumer: StreamConsumer = field(init=False)
    handled: int = 0
    duplicates: int = 0
    _waiting_tasks: dict[str, bool] = field(default_factory=dict)
    _progress: dict[str, asyncio.Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        qs = self.settings.queue
        self.layout = Layout.of(self.settings)
        self.mailboxes = frozenset(c.type for c in self.settings.channels if c.reply_mailbox)
        durability = Durability.of(self.settings)
        if (self.batch is None and self.settings.router.concurrency > 1 and durability.replicas <= 0
                and not is_cluster(self.redis)):
            self.batch = Batcher(self.redis)
        self.queue = Queue(self.redis, qs, layout=self.layout, partition=self.partition, durability=durability,
                           batch=self.batch)
        self.consumer = StreamConsumer(
            self.redis, self.queue.stream, qs.group, self._handle, handler_name="router", name=self.name,
            max_attempts=qs.max_attempts, claim_idle_ms=qs.claim_idle_ms, block_ms=qs.block_ms, batch=qs.batch,
            concurrency=self.settings.router.concurrency, retention_s=qs.retention_s,
            on_dead=self._dead, gate=self.brain.nlu.wait_available,
        )

    async def run(self, stop: asyncio.Event | None = None, *, burst: bool = False) -> None:
        """Consume until `stop` is set (or, with burst=True, until the queue is drained)."""
        log.info("router.started", consumer=self.name, concurrency=self.settings.router.concurrency)
        try:
            await self.consumer.run(stop, burst=burst)
        finally:
            batches = {"redis_batches": self.batch.batches, "redis_commands": self.batch.commands} if self.batch else {}
            log.info("router.stopped", consumer=self.name, handled=self.handled, duplicates=self.duplicates, **batches)

    async def _dead(self, e: Entry, error: str, handler: str, attempts: int) -> None:
        # Dead-lettering also counts as the conversation's progress, so later messages go on.
        await self.queue.dead_letter(e, error, attempts, handler)
        if e.conversation:
            self._notify(e.conversation)

    def _event(self, conv: str) -> asyncio.Event:
        ev = self._progress.get(conv)
        if ev is None:
            ev = self._progress[conv] = asyncio.Event()
        return ev

    def _notify(self, conv: str) -> None:
        ev = self._progress.pop(conv, None)
        if ev is not None:
            ev.set()

    async def _wait_turn(self, e: Entry, seq: int) -> tuple[str, dict[str, str]]:
        """Wait until every earlier message of the conversation is done. Returns ("go", state hash),
        ("dup", {}) when this entry was already handled, or ("late", {}) when a predecessor did not
        finish in time (the entry then stays pending and is retried)."""
        deadline = time.monotonic() + self.settings.queue.order_wait_ms / 1000
        key = self.layout.conv(e.conversation, self.partition)
        # Only a task that actually has to wait stops taking a working slot (so waiting entries
        # cannot starve the take-over of the very entries they wait for).
        try:
            return await self._wait_checks(e, seq, key, deadline)
        finally:
            if self._waiting_tasks.pop(e.id, None):
                self.consumer.waiting -= 1

    async def _wait_checks(self, e: Entry, seq: int, key: str, deadline: float) -> tuple[str, dict[str, str]]:
        while True:
            h = await (self.batch.execute("HGETALL", key) if self.batch is not None else self.redis.hgetall(key))
            st = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in h.items()}
            done = int(st.get("seq_done") or 0)
            if done >= seq:
                return "dup", {}
            if done == seq - 1:
                return "go", st
            left = deadline - time.monotonic()
            if left <= 0:
                return "late", {}
            if e.id not in self._waiting_tasks:
                self._waiting_tasks[e.id] = True
                self.consumer.waiting += 1
            try:
                await asyncio.wait_for(self._event(e.conversation).wait(), timeout=min(left, 0.1))
            except TimeoutError:
                pass

    async def _handle(self, e: Entry, fresh: bool = False) -> Outcome:
        """`fresh`: first delivery of the entry (its intake state snapshot may be used); entries
        taken over from a dead worker or retried always read the state back."""
        try:
            msg = Message.from_json(e.fields.get("m", ""))
            seq = e.seq
            if seq is None or not e.conversation:
                raise ValueError("entry has no sequence or conversation")
        except ValueError as exc:
            log.error("message.malformed", entry=e.id, error=str(exc)[:300])
            return Permanent(f"malformed entry: {str(exc)[:500]}")
        st = e.state if fresh else None
        if st is None or int(st.get("seq_done") or 0) != seq - 1:
            turn, st = await self._wait_turn(e, seq)
            if turn == "late":
                log.info("message.waiting_for_predecessor", entry=e.id, conversation=msg.conversation_id)
                return Retry(count=False, reason="waiting for an earlier message of the conversation")
            if turn == "dup":
                await self.queue.commit(e, {}, [])  # acks the duplicate, sends nothing
                self.duplicates += 1
                return ACKED
        while True:
            state = state_from_hash(st)
            t0 = time.perf_counter()
            decision, new_state, nlu_s = await self._decide_with_retry(e, msg, state)
            outs = outputs_for(msg, decision, self.layout, mailboxes=self.mailboxes, history=self.settings.web.history)
            res = await self.queue.commit(e, state_updates(state, new_state), outs, ver=st.get("ver") or "0")
            overhead = time.perf_counter() - t0
            if res != -2:
                break
            # Someone (an agent taking the conversation) changed the state meanwhile: read it
            # again and decide again, so the bot never answers over a person.
            log.info("message.state_changed", entry=e.id, conversation=msg.conversation_id)
            turn, st = await self._wait_turn(e, seq)
            if turn == "late":
                return Retry(count=False, reason="waiting for an earlier message of the conversation")
            if turn == "dup":
                await self.queue.commit(e, {}, [])
                self.duplicates += 1
                return ACKED
        if res == 1:
            self.handled += 1
            _decisions(decision.action.value, decision.topic).inc()
            if outs and outs[0].box is not None:
                metrics.MESSAGES_OUT.labels(msg.channel).inc()  # delivered into the mailbox by the commit
            log.info(
                "decision.made",
                message_id=msg.id,
                channel=msg.channel,
                conversation=msg.conversation_id,
                action=decision.action.value,
                topic=decision.topic,
                intent=decision.intent,
                confidence=round(decision.confidence, 3),
                silent=decision.silent,
            )
            metrics.ROUTER_OVERHEAD.observe(max(0.0, overhead - nlu_s))
        elif res == 0:
            self.duplicates += 1
        else:  # -1: a predecessor is not committed after all; stays pending, tried again
            return Retry(count=False, reason="an earlier message of the conversation is not done")
        self._notify(msg.conversation_id)
        return ACKED

    async def _decide_with_retry(
        self, e: Entry, msg: Message, state: ConvState
    ) -> tuple[Decision, ConvState, float]:
        """NLU outages do not count as failures: hold the entry (touching it so no other worker
        steals it) and try again when a Rasa server answers."""
        while True:
            try:
                return await self.brain.decide(msg, state)
            except NLUUnavailable as exc:
                log.warning("nlu.unavailable", entry=e.id, error=str(exc))
                while True:
                    try:
                        await asyncio.wait_for(
                            self.brain.nlu.wait_available(), timeout=self.settings.queue.claim_idle_ms / 3000
                        )
                        break
                    except TimeoutError:
                        await self.queue.touch(self.name, [e.id])
