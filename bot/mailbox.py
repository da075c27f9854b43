"""Conversation mailboxes: where a channel whose clients read from Redis (the web widget) keeps
every event of a conversation — the user's lines, bot, agent and system replies — in order.

A mailbox is a capped Redis stream per contact, kept `BOX_TTL_S` after its last event; each event
added is announced on one pub/sub channel (`NOTIFY`) with the id it follows, so a process that
holds the contact's open sockets can send it at once without reading the mailbox back.

Because a mailbox is only Redis, the router writes a reply into it inside its commit script (no
outbound stream, no sender hop: one Lua script makes the decision, the reply and the ack at once)
and the intake script writes the user's own line into it before queueing the message, so the
line's echo always precedes its reply. In the tagged layout (`bot.streams.Layout`, a Redis Cluster
or several partitions) the mailbox carries the conversation's partition tag, so those scripts
touch one hash slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.models import Outbound
from bot.streams import Layout

NOTIFY = "web:notify"  # pub/sub channel of every mailbox addition (one subscription per web process)
BOX_TTL_S = 30 * 24 * 3600

# Lua: append one event and announce it. The announcement carries the event and the id it follows:
# "<contact>\n<previous id>\n<id>\n<event json>".
LUA_BOX_ADD = """
local function box_add(box, maxlen, ttl, notify, contact, event)
  local last = redis.call('XREVRANGE', box, '+', '-', 'COUNT', 1)
  local prev = ''
  if last[1] then prev = last[1][1] end
  local id = redis.call('XADD', box, 'MAXLEN', '~', maxlen, '*', 'e', event)
  redis.call('EXPIRE', box, ttl)
  redis.call('PUBLISH', notify, contact .. '\\n' .. prev .. '\\n' .. id .. '\\n' .. event)
  return id
end
"""


def conversation_of(contact: str, channel: str = "web") -> str:
    return f"{channel}:{contact}"


def slot_key(prefix: str, contact: str, name: str, layout: Layout | None = None, channel: str = "web") -> str:
    """A key of a contact's that a script touches together with its mailbox: `<prefix>:<name>`, or
    `<prefix>:{pN}:<name>` in the tagged layout (N: the partition of the conversation
    `<channel>:<contact>`), so it is in the mailbox's hash slot."""
    lay = layout or Layout()
    if not lay.tagged:
        return f"{prefix}:{name}"
    return f"{prefix}:{lay.tag(lay.partition(conversation_of(contact, channel)))}:{name}"


def box_key(contact: str, layout: Layout | None = None, channel: str = "web") -> str:
    """The contact's mailbox: `web:box:<contact>` (`web:box:{pN}:<contact>` tagged)."""
    return slot_key(f"{channel}:box", contact, contact, layout, channel)


def reply_event(kind: str, text: str, at: datetime, *, author: str | None = None,
                buttons: list[dict[str, Any]] | None = None, in_reply_to: str | None = None) -> dict[str, Any]:
    """A reply as the widget shows it; `kind` as in `Outbound.kind` (agent, system, or the bot's)."""
    return {
        "kind": "agent" if kind == "agent" else ("system" if kind == "system" else "bot"),
        "text": text,
        "ts": at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "client_id": None,
        "author": author,
        "buttons": buttons or [],
        "in_reply_to": in_reply_to,
    }


def event_of(ob: Outbound) -> dict[str, Any]:
    return reply_event(ob.kind, ob.text, ob.created_at, author=ob.author,
                       buttons=[b.model_dump() for b in ob.buttons], in_reply_to=ob.in_reply_to)


@dataclass(frozen=True, slots=True)
class Append:
    """One event for a mailbox, written by a queue script (intake or commit) in the same step."""

    box: str
    contact: str
    event: str  # JSON
    maxlen: int
    ttl_s: int = BOX_TTL_S
    notify: str = NOTIFY
