""""typing…" in a private chat while an answer is slow — and only then.

A reply is decided before the sender sees it, so a `sendChatAction` right before `sendMessage`
shows nothing the user would notice (Telegram clears the action when the message arrives) and
cost a Bot API call per reply. What the user does notice is silence: a message that is not
answered within `after_s` (Rasa busy, a queue backlog, an agent taking over) gets "typing…",
renewed every few seconds (Telegram shows an action for at most 5 s) until a reply reaches that
chat or `max_s` passed since the user's last message.

Several web processes may share the work (webhook on one, the reply's sender on another), so a
reply is also marked in Redis (`telegram:replied:<chat>`, the time in ms; written by the sender
in the pipeline that records the parts sent) and checked before every "typing…". Only private
chats get it: in a group the answer may go to the member's private chat instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

REPLIED_KEY = "telegram:replied:{}"  # chat id → time (ms) a reply was last sent there
REPLIED_TTL_S = 300
RENEW_S = 4.5  # Telegram shows a chat action for 5 s, or until the bot's next message


def replied_marker(chat_id: int) -> tuple[str, str, int]:
    """(key, value, ttl) a sender writes once a reply to `chat_id` went out."""
    return REPLIED_KEY.format(chat_id), str(int(time.time() * 1000)), REPLIED_TTL_S


@dataclass
class _Wait:
    last: float  # time.time() of the user's last message not answered yet
    handle: asyncio.TimerHandle | None


class SlowReplyTyping:
    """Per chat, one timer from the first unanswered message; `spawn` runs the check (a task the
    channel owns and waits for on stop); `send` makes the Bot API call and says whether it
    worked (a chat that refuses it gets no more)."""

    def __init__(self, r: aioredis.Redis, send: Callable[[int], Awaitable[bool]],
                 spawn: Callable[[Coroutine[Any, Any, Any]], None], *, after_s: float, max_s: float = 15.0,
                 renew_s: float = RENEW_S) -> None:
        self.r = r
        self._send = send
        self._spawn = spawn
        self.after_s = after_s
        self.max_s = max_s
        self.renew_s = renew_s
        self._waits: dict[int, _Wait] = {}

    def accepted(self, chat_id: int) -> None:
        """A message of a private chat was queued: "typing…" if no reply came within after_s."""
        if self.after_s <= 0:
            return
        w = self._waits.get(chat_id)
        if w is not None:
            w.last = time.time()
            return
        handle = asyncio.get_running_loop().call_later(self.after_s, self._due, chat_id)
        self._waits[chat_id] = _Wait(time.time(), handle)

    def replied(self, chat_id: int) -> None:
        """This process is sending a reply to `chat_id`: nothing to show there any more."""
        w = self._waits.pop(chat_id, None)
        if w is not None and w.handle is not None:
            w.handle.cancel()

    def close(self) -> None:
        for w in self._waits.values():
            if w.handle is not None:
                w.handle.cancel()
        self._waits.clear()

    def _due(self, chat_id: int) -> None:
        w = self._waits.get(chat_id)
        if w is not None:
            w.handle = None
            self._spawn(self._check(chat_id, w))

    async def _check(self, chat_id: int, w: _Wait) -> None:
        try:
            marked = await self.r.get(REPLIED_KEY.format(chat_id))
        except (RedisError, OSError):
            marked = None  # best effort: the reply itself is what matters
        if self._waits.get(chat_id) is not w:
            return  # answered meanwhile (here)
        if isinstance(marked, bytes):
            marked = marked.decode()
        answered = marked is not None and marked.isdigit() and int(marked) >= int(w.last * 1000)
        if answered or time.time() - w.last > self.max_s or not await self._send(chat_id):
            # Answered by another process, nothing is coming, or the chat refuses actions.
            if self._waits.get(chat_id) is w:
                del self._waits[chat_id]
            return
        if self._waits.get(chat_id) is w:
            w.handle = asyncio.get_running_loop().call_later(self.renew_s, self._due, chat_id)
