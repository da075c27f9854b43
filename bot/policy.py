"""Routing policy: a pure function of (NLU result, safety rules, conversation state) → decision.

No I/O here, so every rule of TOPICS.md is unit-testable without servers. The router worker does
the I/O around it (redaction, NLU call, state, queues).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

from bot import domain, safety
from bot.models import ANSWER_TOPICS, HANDOFF_TOPICS, OUT_OF_SCOPE, TOPICS, Action, Priority
from bot.redact import EXPOSING

if TYPE_CHECKING:
    from bot.config import SLASettings
    from intents.answers import Answers
    from intents.client import NLUResult

_TOPICS_BY_LEN = sorted(TOPICS, key=len, reverse=True)

HANDOFF_PRIORITY = {"theft": Priority.URGENT, "compliance": Priority.HIGH, "human": Priority.NORMAL}
# A handoff intent only needs this much confidence: missing a theft case is worse than a person
# reading a message the bot could have answered.
HANDOFF_MIN_CONFIDENCE = 0.25
# Which handoff reading wins when the rules and the classifier disagree.
_SEVERITY: dict[str, int] = {**dict.fromkeys(TOPICS, 0), "human": 1, "compliance": 2, "theft": 3}


@lru_cache(maxsize=4096)  # a model has a few hundred intent names; called for each of the ranking
def topic_of(intent: str) -> str:
    """Intent names start with their topic (`deposit_not_arrived` → `deposit`)."""
    for t in _TOPICS_BY_LEN:
        if intent == t or intent.startswith(t + "_"):
            return t
    return OUT_OF_SCOPE


@dataclass(frozen=True, slots=True)
class ConvState:
    mode: str = "bot"  # "bot" | "agent"
    fallbacks: int = 0
    lang: str | None = None
    vip: int = 0
    handoff_topic: str | None = None
    csat_pending: str | None = None  # ticket number whose 1–5 rating we asked for


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    topic: str
    intent: str
    confidence: float
    priority: Priority
    reply: str
    reason: str
    state: ConvState
    silent: bool = False


# ASCII boundaries, not \b: in "我的USDT没到" there is no \b around USDT (Chinese characters are \w too).
_COIN = re.compile(
    r"(?<![A-Za-z0-9])(BTC|ETH|USDT|USDC|BNB|SOL|XRP|TRX|ADA|DOGE|LTC|DOT|MATIC|POL|AVAX|TON|LINK|SHIB|ARB|OP|ATOM|XLM|EOS|DAI|FDUSD)(?![A-Za-z0-9])",
    re.I,
)
_NETWORK = re.compile(
    r"(?<![A-Za-z0-9])(ERC[-\s]?20|TRC[-\s]?20|BEP[-\s]?20|BEP[-\s]?2|SPL|Solana|Arbitrum(?:\s+One)?|Optimism|Polygon|Avalanche\s+C[-\s]?Chain|Base|TON|Lightning|Omni|BSC)(?![A-Za-z0-9])",
    re.I,
)


def slots_from(text: str, entities: dict[str, str]) -> dict[str, str]:
    """Slot values for answer placeholders: NLU entities first, then a cheap regex fallback."""
    slots = dict(entities)
    if "coin" not in slots and (m := _COIN.search(text)):
        slots["coin"] = m.group(1)
    if "network" not in slots and (m := _NETWORK.search(text)):
        slots["network"] = m.group(1)
    # The same spelling whoever found it: "usdt" -> "USDT", "trc-20" -> "TRC20", "SB 12" -> "SB-000012".
    if "coin" in slots:
        slots["coin"] = slots["coin"].upper()
    if "network" in slots and re.match(r"(?i)(erc|trc|bep)", slots["network"]):
        slots["network"] = re.sub(r"[-\s]", "", slots["network"]).upper()
    if "ticket_id" in slots and (t := re.search(r"\d{1,6}", slots["ticket_id"])):
        slots["ticket_id"] = f"SB-{int(t.group(0)):06d}"
    return slots


def format_eta(minutes: int, lang: str) -> str:
    if lang == "zh":
        if minutes < 60:
            return f"{minutes} 分钟内"
        if minutes < 48 * 60:
            return f"{minutes // 60} 小时内"
        return f"{minutes // 1440} 天内"
    if minutes < 60:
        return f"within {minutes} minutes"
    if minutes < 48 * 60:
        h = minutes // 60
        return f"within {h} hour{'s' if h > 1 else ''}"
    return f"within {minutes // 1440} days"


def _join(*parts: str | None) -> str:
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


def decide(
    *,
    text: str,
    lang: str,
    nlu: NLUResult,
    state: ConvState,
    answers: Answers,
    sla: SLASettings,
    threshold: float,
    escalate_after: int,
    redactions: tuple[str, ...] = (),
    entities: dict[str, str] | None = None,
    slots: dict[str, str] | None = None,
    quoted: str | None = None,
) -> Outcome:
    """Decide answer / clarify / handoff for one (redacted) message. `slots`: `slots_from(text,
    entities)`, when the caller has it already. `quoted`: the message's `meta["quoted"]` (`reply`,
    `external`, `quote_post`) when the text ends with something the user shows us as "> " lines
    (see `shown_words`)."""
    if state.lang != lang:
        state = replace(state, lang=lang)
    if slots is None:
        slots = slots_from(text, entities or {})
    secret_note = answers.get("secret_redacted", lang) if redactions else None

    if state.mode == "agent":
        # A person owns this conversation: the bot stays silent, the message goes to the ticket.
        topic = state.handoff_topic or "human"
        return Outcome(
            Action.HANDOFF, topic, nlu.intent, nlu.confidence, HANDOFF_PRIORITY.get(topic, Priority.NORMAL),
            "", "agent_mode", state, silent=True,
        )

    intent, conf = nlu.intent, nlu.confidence
    nlu_topic = topic_of(intent)
    own = shown_words(text, quoted)
    if own is not None and safety.check(own, lang) is None and safety.asks_about_shown(own):
        # "Is this real?" under a scammer's post: the anti-phishing answer, as for a forward.
        reply = _join(*(answers.get(k, lang) for k in SHOWN_ANSWERS), secret_note)
        return Outcome(
            Action.ANSWER, "security", "shown_message", 1.0, Priority.LOW, reply, f"shown:{quoted}",
            replace(state, fallbacks=0) if state.fallbacks else state,
        )
    words = text if own is None else own  # what the rules read: the user's words, not the shown post
    hit = safety.check(words, lang)
    handoff_topic: str | None = None
    reason = "nlu"
    if own is not None and hit is None and nlu_topic == "compliance":
        # The classifier read the whole text; a "your account will be frozen" in the shown post is
        # not the user's account. Their own words had no compliance words: the best other reading.
        intent, conf = next(((n, c) for n, c in nlu.ranking if topic_of(n) not in HANDOFF_TOPICS), ("nlu_fallback", 0.0))
        nlu_topic, reason = topic_of(intent), "nlu:shown_not_said"
    if hit is None and nlu_topic != OUT_OF_SCOPE and (
        off := domain.off_topic(words, nlu, handoff_reading=nlu_topic in HANDOFF_TOPICS)
    ) is not None:
        # Not about this exchange (bot/domain.py): ask what we can help with, never a confident
        # answer or a person.
        intent, conf, nlu_topic, reason = "out_of_scope_unrelated", off.confidence, OUT_OF_SCOPE, off.reason
    if hit is not None:
        handoff_topic, reason = hit.topic, f"safety_rule:{hit.rule}"
        if _SEVERITY[nlu_topic] > _SEVERITY[hit.topic] and conf >= HANDOFF_MIN_CONFIDENCE:
            # "FREEZE MY ACCOUNT, SOMEONE IS WITHDRAWING": a compliance or human rule matched, the
            # classifier sees theft — the more severe reading wins (theft is urgent).
            handoff_topic, reason = nlu_topic, f"safety_rule:{hit.rule}+nlu"
        elif nlu_topic != hit.topic:
            # Keep the classifier's best guess within the rule's topic, for the safety steps.
            intent = next((n for n, _ in nlu.ranking if topic_of(n) == hit.topic), hit.topic)
    elif nlu_topic in HANDOFF_TOPICS and conf >= (threshold if nlu_topic == "human" else HANDOFF_MIN_CONFIDENCE):
        # Theft and compliance need little confidence; an explicit request for a person is
        # caught by the rules, so the classifier alone needs the normal threshold for it.
        handoff_topic = nlu_topic
        if (
            nlu_topic == "theft"
            and (alt := next(((n, c) for n, c in nlu.ranking if topic_of(n) not in HANDOFF_TOPICS), None)) is not None
            and safety.only_asking(text)
        ):
            # "If someone saw my seed phrase, what happens? Just asking, nothing happened": the
            # user says it did not happen — answer with the best non-handoff reading instead.
            handoff_topic, (intent, conf), reason = None, alt, "nlu:only_asking"
            nlu_topic = topic_of(intent)
        elif nlu_topic == "theft" and safety.hypothetical(words):
            # "If I lose my phone, can someone get into my account?": a what-if, no rule saw an
            # incident — a security question (the best security reading, or the account tips: the
            # classifier was sure it is about someone getting into the account).
            intent = next((n for n, _ in nlu.ranking if topic_of(n) == "security"), "security_account_tips")
            handoff_topic, nlu_topic, reason = None, topic_of(intent), "nlu:hypothetical"
        elif nlu_topic == "compliance" and safety.general_question(words):
            # "Do I need to pay tax on my crypto gains?", "你们受哪个国家监管": a general question, no
            # account matter — not ours to answer, nor a case.
            handoff_topic, intent, reason, nlu_topic = None, "out_of_scope_unrelated", "nlu:general_question", OUT_OF_SCOPE
        elif nlu_topic == "compliance" and safety.asks_if_real(text):
            # "I got an SMS saying my account will be frozen, is it from you?": the classifier reads
            # the threat; the user asks how to tell a fake message from us (security).
            handoff_topic, intent, reason, nlu_topic = None, "security_fake_support_phishing", "nlu:asks_if_real", "security"
    elif redactions and any(k in EXPOSING for k in redactions):
        # Someone just pasted a seed phrase or key into a support chat: treat it as exposed.
        handoff_topic, reason, intent = "theft", "secret_exposed", "theft_leaked_secret"

    if handoff_topic is not None:
        priority = HANDOFF_PRIORITY[handoff_topic]
        if state.vip > 0:
            priority = priority.raised()
        eta = format_eta(sla.targets[priority].first_response_min, lang)
        safety_steps = answers.get(intent, lang, **slots) if topic_of(intent) == handoff_topic else None
        reply = _join(
            safety_steps,
            answers.get(f"handoff_{handoff_topic}", lang, eta=eta),
            answers.get("never_ask", lang),
        )
        return Outcome(
            Action.HANDOFF, handoff_topic, intent, conf, priority, reply, reason,
            replace(state, mode="agent", fallbacks=0, handoff_topic=handoff_topic),
        )

    # Confidence split between sibling intents of one topic ("how to deposit" vs "which network")
    # is still confidence in the topic: the threshold applies to the topic's share.
    topic_conf = max(conf, sum(c for n, c in nlu.ranking if topic_of(n) == nlu_topic))
    understood = nlu_topic in ANSWER_TOPICS and topic_conf >= threshold and answers.has(intent, lang)
    if understood:
        reply = _join(answers.get(intent, lang, **slots), secret_note)
        return Outcome(
            Action.ANSWER, nlu_topic, intent, conf, Priority.LOW, reply, reason,
            replace(state, fallbacks=0) if state.fallbacks else state,
        )

    fallbacks = state.fallbacks + 1
    if fallbacks >= escalate_after:
        priority = Priority.HIGH if state.vip > 0 else Priority.NORMAL
        eta = format_eta(sla.targets[priority].first_response_min, lang)
        reply = _join(answers.get("escalate_after_fallbacks", lang, eta=eta), answers.get("never_ask", lang))
        return Outcome(
            Action.HANDOFF, "human", intent, conf, priority, reply, "second_fallback",
            replace(state, mode="agent", fallbacks=0, handoff_topic="human"),
        )
    own = answers.get(intent, lang) if nlu_topic == OUT_OF_SCOPE else None
    reply = _join(own or answers.get("clarify", lang), secret_note)
    why = ("out_of_scope" if reason == "nlu" else reason) if nlu_topic == OUT_OF_SCOPE else "low_confidence"
    return Outcome(
        Action.CLARIFY, OUT_OF_SCOPE, intent, conf, Priority.LOW, reply, why, replace(state, fallbacks=fallbacks)
    )


# -- rules decided before (or around) the NLU: commands, ratings, files, ticket lookups ------------
TICKET_RE = re.compile(r"\bSB[-\s]?(\d{1,6})\b", re.I)
STATUS_WORDS = {
    "en": {"new": "waiting for an agent", "open": "being handled by our team", "pending_user": "waiting for your reply",
           "resolved": "resolved", "closed": "closed"},
    "zh": {"new": "等待客服处理", "open": "处理中", "pending_user": "等待您的回复", "resolved": "已解决", "closed": "已关闭"},
}
RATINGS = frozenset({"1", "2", "3", "4", "5"})


@dataclass(frozen=True, slots=True)
class Special:
    """A message answered without the NLU. `answer` is the answers key of the reply (None for a
    ticket status: the reply needs the lookup, see `status_reply`)."""

    intent: str
    topic: str
    answer: str | None
    state: ConvState
    csat: int | None = None
    ticket: str | None = None  # the rated ticket (csat) or the one to look up (ticket_status)


def ticket_number(text: str) -> str | None:
    """The first ticket number in a text, normalised ("sb 12" → "SB-000012")."""
    m = TICKET_RE.search(text or "")
    return f"SB-{int(m.group(1)):06d}" if m else None


def csat_rating(text: str, state: ConvState) -> int | None:
    """A bare 1–5 while a rating is asked for (and no person has the conversation) is the rating."""
    stripped = text.strip()
    if state.mode != "agent" and state.csat_pending and stripped in RATINGS:
        return int(stripped)
    return None


def command_answer(command: str | None, arg: str) -> str | None:
    """`/help` → the help text; `/start` → the welcome (a deep-link payload like `group_account`
    greets too), unless the payload names a ticket (then it is a status lookup)."""
    if command == "help":
        return "help"
    if command == "start" and ticket_number(arg) is None:
        return "welcome"
    return None


def is_file_without_text(text: str, has_attachments: bool, command: str | None, ticket_on_clarify: bool,
                         exposed: bool = False) -> bool:
    """A file without a word (a screenshot, a statement): say it arrived and ask what it is about —
    not a failed understanding. Not for channels that open a ticket instead of clarifying (a mail
    always carries its text as a file; an empty one becomes a ticket), and not for a file a seed
    phrase or key was redacted from: that goes to the policy (exposed, urgent)."""
    return not text.strip() and has_attachments and not command and not ticket_on_clarify and not exposed


def status_lookup(command: str | None, arg: str, text: str) -> str | None:
    """`/status SB-1` (or `/start SB-1` from a deep link): the ticket number to look up."""
    if command not in ("status", "start"):
        return None
    return ticket_number(arg or text)


# The reply to a forwarded message: "is this from you?" plus the anti-phishing guidance.
FORWARDED_ANSWERS = ("forwarded_check", "security_fake_support_phishing")
# The same for a post or message the user points at (a reply, a quote), in words for that.
SHOWN_ANSWERS = ("shown_check", "security_fake_support_phishing")


def shown_words(text: str, quoted: str | None) -> str | None:
    """The user's own words when the message shows us something (`quoted`: `meta["quoted"]`, the
    shown text after their words as "> " lines), else None. The shown post — a scammer's "your
    account will be frozen, verify your wallet" — is not the user's account: the rules read only
    their words, unless those words say it happened to them too ("same happened to me", "我也是")
    or a secret was redacted (a seed phrase is a leak whoever posted it, as for a forward)."""
    if not quoted or "[REDACTED:" in text:
        return None
    own, shown = safety.split_shown(text)
    if not shown or safety.me_too(own):
        return None
    return own


def is_shown_forward(text: str, forwarded: bool, secret_found: bool) -> bool:
    """A forwarded message is something the user received and shows us, never their own account
    event (a forwarded "your account is FROZEN" must not open a compliance case). One that carried
    a secret is left to the rules: a pasted seed phrase is a leak whoever wrote it first."""
    return forwarded and not secret_found and "[REDACTED:" not in text


def before_nlu(*, text: str, state: ConvState, command: str | None, command_arg: str, has_attachments: bool,
               ticket_on_clarify: bool, forwarded: bool = False, secret_found: bool = False,
               exposed: bool = False) -> Special | None:
    """Ratings, forwarded messages, commands, files without text and ticket lookups, in that order;
    None = ask the NLU."""
    if (score := csat_rating(text, state)) is not None:
        return Special("csat", "smalltalk", "csat_thanks", replace(state, csat_pending=None), csat=score,
                       ticket=state.csat_pending)
    if state.mode == "agent":
        return None
    if is_shown_forward(text, forwarded, secret_found):
        return Special("forwarded_message", "security", "forwarded_check", replace(state, fallbacks=0))
    if (key := command_answer(command, command_arg)) is not None:
        return Special(f"command_{command}", "smalltalk", key, replace(state, fallbacks=0))
    if is_file_without_text(text, has_attachments, command, ticket_on_clarify, exposed):
        return Special("file_received", "smalltalk", "file_received", state)
    if (number := status_lookup(command, command_arg, text)) is not None:
        return Special("ticket_status", "ticket", None, replace(state, fallbacks=0), ticket=number)
    return None


def status_reply(answers: Answers, lang: str, number: str, status: str | None) -> str:
    """The answer to a status question: the ticket's status in the user's words, or "not found"
    (also for someone else's ticket: it is never revealed)."""
    if status is None:
        return answers.get("ticket_status_unknown", lang, ticket=number) or ""
    words = STATUS_WORDS.get(lang, STATUS_WORDS["en"])
    return answers.get("ticket_status_found", lang, ticket=number, status=words.get(status, status)) or ""


def clarify_to_ticket(out: Outcome, *, vip: int, lang: str, answers: Answers, sla: SLASettings) -> Outcome:
    """Channels where a round of "please rephrase" is slow (email) open a ticket instead."""
    if out.action is not Action.CLARIFY:
        return out
    prio = Priority.HIGH if vip > 0 else Priority.NORMAL
    eta = format_eta(sla.targets[prio].first_response_min, lang)
    return replace(out, action=Action.HANDOFF, topic="human", priority=prio,
                   reply=answers.get("handoff_human", lang, eta=eta) or "", reason="clarify_to_ticket",
                   state=replace(out.state, mode="agent", fallbacks=0, handoff_topic="human"))
