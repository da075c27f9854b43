"""The messages that cross Redis: `Message` (inbound), `Decision` (router output) and `Outbound`
(what a channel sends). Frozen pydantic models with a schema version, UTC datetimes and JSON —
never pickle — so any worker version can read what another wrote, and refuse what it cannot.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from bot.lang import Lang

SCHEMA_VERSION = 1

MAX_TEXT_CHARS = 20_000


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Action(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    HANDOFF = "handoff"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    def raised(self) -> Priority:
        order = list(Priority)
        return order[min(order.index(self) + 1, len(order) - 1)]


ANSWER_TOPICS = (
    "account",
    "deposit",
    "withdrawal",
    "trading",
    "fees",
    "security",
    "glossary",
    "vip",
    "ticket",
    "education",
    "smalltalk",
)
HANDOFF_TOPICS = ("theft", "compliance", "human")
OUT_OF_SCOPE = "out_of_scope"
TOPICS = (*ANSWER_TOPICS, *HANDOFF_TOPICS, OUT_OF_SCOPE)

Topic = Literal[
    "account",
    "deposit",
    "withdrawal",
    "trading",
    "fees",
    "security",
    "glossary",
    "vip",
    "ticket",
    "education",
    "smalltalk",
    "theft",
    "compliance",
    "human",
    "out_of_scope",
]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = SCHEMA_VERSION

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v > SCHEMA_VERSION:
            raise ValueError(f"schema_version {v} is newer than this worker understands ({SCHEMA_VERSION})")
        return v

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> Any:
        return cls.model_validate_json(data)


class Attachment(BaseModel):
    """Metadata of a file the user sent; the bytes live in the channel's storage, not on the queue."""

    model_config = ConfigDict(frozen=True)

    name: str
    content_type: str = "application/octet-stream"
    size: int = 0
    ref: str | None = None  # channel file id or storage key


class Message(_Wire):
    """One normalized inbound message from any channel."""

    id: str = Field(default_factory=new_id)
    channel: str
    channel_message_id: Annotated[str, Field(min_length=1, max_length=512)]
    conversation_id: Annotated[str, Field(min_length=1, max_length=512)]
    user_id: Annotated[str, Field(min_length=1, max_length=512)]
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
    lang: Lang = "en"
    received_at: AwareDatetime = Field(default_factory=utcnow)
    attachments: tuple[Attachment, ...] = ()
    meta: dict[str, str] = Field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        return self.dedupe_key_of(self.channel, self.channel_message_id)

    @staticmethod
    def dedupe_key_of(channel: str, channel_message_id: str) -> str:
        """What the queue keeps a message once by (also for a check before the message exists)."""
        return f"{channel}:{channel_message_id}"


class Button(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    payload: str


class Decision(_Wire):
    """What the router decided for one message (see TOPICS.md)."""

    message_id: str
    conversation_id: str
    channel: str
    action: Action
    topic: Topic
    intent: str
    confidence: float
    priority: Priority
    reply: str
    lang: Lang
    entities: dict[str, str] = Field(default_factory=dict)
    model_version: str | None = None
    redacted_text: str = ""
    redactions: tuple[str, ...] = ()
    reason: str = ""  # why: "nlu", "safety_rule:<name>", "low_confidence", "second_fallback", ...
    silent: bool = False  # True when an agent owns the conversation: nothing is sent
    csat: int | None = None  # a 1–5 rating answering the satisfaction question of `ticket`
    ticket: str | None = None
    # What the reply offered that the handoff side follows up ("callback": a phone call back).
    offers: tuple[str, ...] = ()
    decided_at: AwareDatetime = Field(default_factory=utcnow)

    def public(self) -> dict[str, Any]:
        """The `switchboard route` contract: the fields TOPICS.md defines."""
        return {
            "action": self.action.value,
            "topic": self.topic,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "priority": self.priority.value,
            "reply": self.reply,
        }


OutboundKind = Literal["answer", "clarify", "handoff", "agent", "system"]


class Outbound(_Wire):
    """A reply for one channel's sender, on `outbound:<channel>`."""

    id: str = Field(default_factory=new_id)
    channel: str
    conversation_id: str
    user_id: str
    text: str
    lang: Lang = "en"
    kind: OutboundKind = "answer"
    # The decision's topic, so a channel can keep account matters out of public places (X mentions,
    # Telegram groups) and move the user to a private chat instead.
    topic: str | None = None
    in_reply_to: str | None = None  # Message.id
    author: str | None = None  # agent display name for kind="agent"
    buttons: tuple[Button, ...] = ()
    meta: dict[str, str] = Field(default_factory=dict)
    created_at: AwareDatetime = Field(default_factory=utcnow)
