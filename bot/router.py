"""Router worker: inbound entry → redact → NLU → policy → Decision → outbound streams.

`Brain` is the decision path without a queue (used by the worker and by `switchboard route`);
`RouterWorker` wraps it with the Redis Streams consumer group, per-conversation ordering, retries,
dead letters and take-over of a dead worker's entries.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import metrics
from bot.config import Settings
from bot.errors import NLUUnavailable
from bot.logs import get_logger
from bot.models import Action, Decision, Message, Outbound, Priority
from bot.policy import ConvState, decide, format_eta, slots_from
from bot.queue import Entry, Output, Queue, conv_key, trim_stream
from bot.redact import EXPOSING, kinds_found, redact_async
from intents.answers import Answers
from intents.client import NLUClient, NLUResult

log = get_logger("switchboard.router")

DECISIONS_STREAM = "decisions"
HANDOFF_STREAM = "handoff"
DECISIONS_MAXLEN = 100_000
CONV_LOG_MAXLEN = 50


def outbound_stream(channel: str) -> str:
    return f"outbound:{channel}"


def state_from_hash(h: dict[str, str]) -> ConvState:
    return ConvState(
        mode=h.get("mode") or "bot",
        fallbacks=int(h.get("fallbacks") or 0),
        lang=h.get("lang") or None,
        vip=int(h.get("vip") or 0),
        handoff_topic=h.get("handoff_topic") or None,
        csat_pending=h.get("csat_pending") or None,
    )


TICKET_RE = re.compile(r"\bSB[-\s]?(\d{1,6})\b", re.I)
STATUS_WORDS = {
    "en": {"new": "waiting for an agent", "open": "being handled by our team", "pending_user": "waiting for your reply",
           "resolved": "resolved", "closed": "closed"},
    "zh": {"new": "等待客服处理", "open": "处理中", "pending_user": "等待您的回复", "resolved": "已解决", "closed": "已关闭"},
}


class TicketLookup(Protocol):
    async def status_for(self, number: str, channel: str, user_id: str) -> Any: ...


@dataclass
class Brain:
    """redact → NLU → policy, for one message and its conversation state."""

    settings: Settings
    nlu: NLUClient
    answers: Answers
    tickets: TicketLookup | None = None

    def _simple(self, msg: Message, text: str, action: Action, topic: str, intent: str, reply: str,
                priority: Priority = Priority.LOW, **kw: Any) -> Decision:
        return Decision(
            message_id=msg.id, conversation_id=msg.conversation_id, channel=msg.channel, action=action,
            topic=topic, intent=intent, confidence=1.0, priority=priority, reply=reply, lang=msg.lang,  # type: ignore[arg-type]
            model_version=self.nlu.model_version, redacted_text=text, **kw,
        )

    async def _ticket_status(self, msg: Message, text: str, number: str) -> str:
        lang = msg.lang
        t = await self.tickets.status_for(number, msg.channel, msg.user_id) if self.tickets else None
        if t is None:
            return self.answers.get("ticket_status_unknown", lang, ticket=number) or ""
        return self.answers.get(
            "ticket_status_found", lang, ticket=number, status=STATUS_WORDS[lang].get(t.status, t.status)
        ) or ""

    async def _special(self, msg: Message, text: str, state: ConvState) -> tuple[Decision, ConvState] | None:
        """Commands, ratings and ticket lookups, handled before the NLU."""
        cmd = msg.meta.get("command")
        stripped = text.strip()
        if state.mode != "agent" and state.csat_pending and stripped in {"1", "2", "3", "4", "5"}:
            d = self._simple(msg, text, Action.ANSWER, "smalltalk", "csat",
                             self.answers.get("csat_thanks", msg.lang) or "", csat=int(stripped),
                             ticket=state.csat_pending, reason="csat")
            return d, replace(state, csat_pending=None)
        if state.mode == "agent":
            return None
        arg = msg.meta.get("command_arg", "")
        if cmd == "help" or (cmd == "start" and not TICKET_RE.search(arg or "")):
            # `/start` may carry a deep-link payload (e.g. `group_account` from a group): greet.
            key = "welcome" if cmd == "start" else "help"
            return self._simple(msg, text, Action.ANSWER, "smalltalk", f"command_{cmd}",
                                self.answers.get(key, msg.lang) or ""), replace(state, fallbacks=0)
        exposed = bool(EXPOSING.intersection(kinds_found(msg.text, msg.meta.get("redacted"))))
        if not stripped and msg.attachments and not cmd and msg.meta.get("ticket_on_clarify") != "1" and not exposed:
            # A file without a word (a screenshot, a statement): say it arrived and ask what it is
            # about. Not a failed understanding — it does not count towards the escalation. (A mail
            # always carries its text as a file, and an empty one becomes a ticket instead; a file
            # a seed phrase or key was redacted from goes to the policy: exposed, urgent.)
            names = ", ".join(a.name for a in msg.attachments)[:200]
            return self._simple(msg, text, Action.ANSWER, "smalltalk", "file_received",
                                self.answers.get("file_received", msg.lang, name=names) or ""), state
        if cmd in ("status", "start") and (m := TICKET_RE.search(arg or text)):
            number = f"SB-{int(m.group(1)):06d}"
            reply = await self._ticket_status(msg, text, number)
            return self._simple(msg, text, Action.ANSWER, "ticket", "ticket_status", reply), replace(state, fallbacks=0)
        return None

    async def decide(self, msg: Message, state: ConvState) -> tuple[Decision, ConvState, float]:
        """Returns the decision, the conversation's new state and the seconds spent in the NLU."""
        red = await redact_async(msg.text)
        text = red.text
        # What intake (or the channel) already replaced counts too: re-redacting marks finds nothing.
        found = kinds_found(msg.text, msg.meta.get("redacted"), red.kinds)
        special = await self._special(msg, text, state)
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
            metrics.NLU_CACHE.labels("hit" if nlu.cached else "miss").inc()
            if not nlu.cached:
                metrics.NLU_LATENCY.observe(nlu.latency_s)
        self.answers.maybe_reload()
        entities = dict(nlu.entities)
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
        )
        if out.action is Action.CLARIFY and msg.meta.get("ticket_on_clarify") == "1":
            # Channels where a round of "please rephrase" is slow (email) open a ticket instead.
            prio = Priority.HIGH if state.vip > 0 else Priority.NORMAL
            eta = format_eta(self.settings.sla.targets[prio].first_response_min, msg.lang)
            reply = self.answers.get("handoff_human", msg.lang, eta=eta) or ""
            out = replace(out, action=Action.HANDOFF, topic="human", priority=prio, reply=reply,
                          reason="clarify_to_ticket", state=replace(out.state, mode="agent", fallbacks=0,
                                                                    handoff_topic="human"))
        if out.action is Action.ANSWER and out.intent == "ticket_status" and (m := TICKET_RE.search(text)):
            number = f"SB-{int(m.group(1)):06d}"
            out = replace(out, reply=await self._ticket_status(msg, text, number))
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
            entities=slots_from(text, entities),
            model_version=nlu.model_version,
            redacted_text=text,
            redactions=found,
            reason=out.reason,
            silent=out.silent,
        )
        return d, out.state, nlu.latency_s


def outputs_for(msg: Message, d: Decision) -> list[Output]:
    """What a decision puts on which stream (all committed atomically with the ack)."""
    outs: list[Output] = []
    if not d.silent and d.reply:
        ob = Outbound(
            channel=msg.channel,
            conversation_id=msg.conversation_id,
            user_id=msg.user_id,
            text=d.reply,
            lang=d.lang,
            kind=d.action.value,  # type: ignore[arg-type]
            topic=d.topic,
            in_reply_to=msg.id,
            meta={k: v for k, v in msg.meta.items() if k.startswith("reply_")},
        )
        outs.append(Output(outbound_stream(msg.channel), ob.to_json()))
    if d.action is Action.HANDOFF:
        red_msg = msg.model_copy(update={"text": d.redacted_text})
        payload = '{"decision":' + d.to_json() + ',"message":' + red_msg.to_json() + "}"
        outs.append(Output(HANDOFF_STREAM, payload))
    if d.csat is not None and d.ticket:
        outs.append(Output(HANDOFF_STREAM, orjson.dumps({"csat": {"ticket": d.ticket, "score": d.csat}}).decode()))
    outs.append(Output(DECISIONS_STREAM, d.to_json(), DECISIONS_MAXLEN))
    # The conversation's recent turns, so a ticket opened later shows what was already said.
    turn = {"in": d.redacted_text, "out": "" if d.silent else d.reply, "intent": d.intent,
            "at": d.decided_at.isoformat()}
    outs.append(Output(f"conv:{msg.conversation_id}:log", orjson.dumps(turn).decode(), CONV_LOG_MAXLEN))
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
    settings: Settings
    redis: aioredis.Redis
    brain: Brain
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    queue: Queue = field(init=False)
    handled: int = 0
    duplicates: int = 0
    _inflight: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _waiting: int = 0
    _waiting_tasks: dict[str, bool] = field(default_factory=dict)
    _progress: dict[str, asyncio.Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.queue = Queue(self.redis, self.settings.queue)

    async def run(self, stop: asyncio.Event | None = None, *, burst: bool = False) -> None:
        """Consume until `stop` is set (or, with burst=True, until the queue is drained)."""
        stop = stop or asyncio.Event()
        qs = self.settings.queue
        limit = self.settings.router.concurrency
        await self._retry_redis(self.queue.ensure_group)
        log.info("router.started", consumer=self.name, concurrency=limit)
        last_claim = 0.0
        last_trim = time.monotonic()
        own = await self._retry_redis(lambda: self.queue.read_own_pending(self.name, 1000))
        for e in own or []:
            self._spawn(e)
        try:
            while not stop.is_set():
                await self.brain.nlu.wait_available()
                # Entries waiting for an earlier message of their conversation (held by a dead
                # worker until it is claimed) do not take a working slot, so they cannot starve
                # the claim of the very entries they wait for; the total stays bounded.
                busy = len(self._inflight) - self._waiting
                if busy >= limit or len(self._inflight) >= 4 * limit:
                    await asyncio.wait(list(self._inflight.values()), timeout=0.05,
                                       return_when=asyncio.FIRST_COMPLETED)
                    continue
                room = min(limit - busy, qs.batch, 4 * limit - len(self._inflight))
                entries: list[Entry] = []
                fresh = False
                now = time.monotonic()
                try:
                    if now - last_claim >= qs.claim_idle_ms / 2000:
                        last_claim = now
                        entries = await self.queue.autoclaim(self.name, room)
                        entries = [e for e in entries if e.id not in self._inflight]
                    if not entries:
                        block = 50 if (burst or self._inflight) else qs.block_ms
                        entries = await self.queue.read(self.name, room, block)
                        fresh = True
                    if now - last_trim > 10:
                        last_trim = now
                        await self.queue.trim()
                except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                    log.warning("redis.unavailable", error=str(e))
                    await asyncio.sleep(0.5)
                    continue
                except ResponseError as e:
                    if "NOGROUP" not in str(e):
                        raise
                    # The stream or group vanished (Redis restarted without persistence, a manual
                    # cleanup): recreate it and carry on rather than crash-looping.
                    log.warning("queue.group_recreated", stream=self.queue.stream)
                    await self._retry_redis(self.queue.ensure_group)
                    continue
                for e in entries:
                    self._spawn(e, fresh=fresh)
                if burst and not entries and not self._inflight:
                    if await self.queue.pending_count() == 0:
                        break
                    await asyncio.sleep(min(0.2, qs.claim_idle_ms / 4000))
                elif not entries and self._inflight:
                    await asyncio.sleep(0)
        finally:
            if self._inflight:
                # Finish what is in flight, but never hang a shutdown: whatever is still waiting
                # (for Rasa, for a predecessor) stays pending in Redis and is taken over later.
                _, late = await asyncio.wait(list(self._inflight.values()), timeout=10)
                for t in late:
                    t.cancel()
                if late:
                    await asyncio.gather(*late, return_exceptions=True)
            log.info("router.stopped", consumer=self.name, handled=self.handled, duplicates=self.duplicates)

    async def _retry_redis(self, fn):  # type: ignore[no-untyped-def]
        delay = 0.2
        while True:
            try:
                return await fn()
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                log.warning("redis.unavailable", error=str(e), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _spawn(self, e: Entry, *, fresh: bool = False) -> None:
        """`fresh`: first delivery of the entry (its intake state snapshot may be used); entries
        taken over from a dead worker or our own pending list always read the state back."""
        if e.id in self._inflight:
            return
        t = asyncio.get_running_loop().create_task(self._handle(e, fresh))
        self._inflight[e.id] = t
        t.add_done_callback(lambda _t, i=e.id: self._inflight.pop(i, None))

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
        key = conv_key(e.conversation)
        # Only a task that actually has to wait stops taking a working slot.
        try:
            return await self._wait_checks(e, seq, key, deadline)
        finally:
            if self._waiting_tasks.pop(e.id, None):
                self._waiting -= 1

    async def _wait_checks(self, e: Entry, seq: int, key: str, deadline: float) -> tuple[str, dict[str, str]]:
        while True:
            h = await self.redis.hgetall(key)
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
                self._waiting += 1
            try:
                await asyncio.wait_for(self._event(e.conversation).wait(), timeout=min(left, 0.1))
            except TimeoutError:
                pass

    async def _handle(self, e: Entry, fresh: bool = False) -> None:
        stream = self.queue.stream
        try:
            msg = Message.from_json(e.fields.get("m", ""))
            seq = e.seq
            if seq is None or not e.conversation:
                raise ValueError("entry has no sequence or conversation")
        except ValueError as exc:
            log.error("message.malformed", entry=e.id, error=str(exc)[:300])
            await self.queue.dead_letter(e, f"malformed entry: {str(exc)[:500]}")
            metrics.DEAD_LETTERS.labels(stream).inc()
            return
        try:
            st = e.state if fresh else None
            if st is None or int(st.get("seq_done") or 0) != seq - 1:
                turn, st = await self._wait_turn(e, seq)
                if turn == "late":
                    log.info("message.waiting_for_predecessor", entry=e.id, conversation=msg.conversation_id)
                    return  # stays pending; retried after claim_idle_ms
                if turn == "dup":
                    await self.queue.commit(e, {}, [])  # acks the duplicate, sends nothing
                    self.duplicates += 1
                    return
            while True:
                state = state_from_hash(st)
                t0 = time.perf_counter()
                decision, new_state, nlu_s = await self._decide_with_retry(e, msg, state)
                outs = outputs_for(msg, decision)
                res = await self.queue.commit(e, state_updates(state, new_state), outs, ver=st.get("ver") or "0")
                overhead = time.perf_counter() - t0
                if res != -2:
                    break
                # Someone (an agent taking the conversation) changed the state meanwhile: read it
                # again and decide again, so the bot never answers over a person.
                log.info("message.state_changed", entry=e.id, conversation=msg.conversation_id)
                turn, st = await self._wait_turn(e, seq)
                if turn != "go":
                    if turn == "dup":
                        await self.queue.commit(e, {}, [])
                        self.duplicates += 1
                    return
            if res == 1:
                self.handled += 1
                metrics.DECISIONS.labels(decision.action.value, decision.topic).inc()
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
            self._notify(msg.conversation_id)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # Redis went away mid-message: the entry is still pending and will be retried.
            log.warning("redis.unavailable", entry=e.id, error=str(exc))
        except Exception as exc:  # a bug or bad data: count it, dead-letter after max_attempts
            log.exception("message.failed", entry=e.id, error=type(exc).__name__)
            metrics.RETRIES.labels(stream).inc()
            try:
                if await self.queue.fail(e, f"{type(exc).__name__}: {exc}"):
                    metrics.DEAD_LETTERS.labels(stream).inc()
                    log.error("message.dead_lettered", entry=e.id)
                    self._notify(msg.conversation_id)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                pass

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


async def trim_all(r: aioredis.Redis, settings: Settings, channels: list[str]) -> None:
    for s in [settings.queue.inbound_stream, HANDOFF_STREAM, *[outbound_stream(c) for c in channels]]:
        await trim_stream(r, s, settings.queue.retention_s)
