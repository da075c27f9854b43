"""Telegram channel adapter on python-telegram-bot 22 (`telegram.Bot`).

Inbound, two modes chosen in config:
- **webhook**: `routes()` gives the FastAPI endpoint. Every request must carry the configured
  `X-Telegram-Bot-Api-Secret-Token` (403 otherwise). The update is normalized and put on the
  queue *before* we answer 200, so a 200 means durably queued; when Redis is down we answer 503
  and Telegram delivers the update again later. Duplicates (Telegram retries) are dropped by the
  intake's dedupe on `update_id`.
- **polling**: a `getUpdates` long-poll loop. The offset — which is also how Telegram learns an
  update was received — only advances after the update is queued, and is persisted in Redis.
  Errors back off exponentially with jitter.

We use PTB's `Bot` (HTTP client, types, errors) but not `Application`: its handler pipeline
catches handler errors and moves on, and its updater confirms an update before handlers ran —
both would lose a message when Redis blips. Our own dispatch table lives in `normalize.py`.

Outbound (`send`): plain text (no parse_mode, nothing to escape wrongly), split at 4096 characters on paragraph/line boundaries with the number of parts already sent kept
in Redis (a retry after part 2 failed does not repeat part 1), buttons as an inline keyboard,
and Bot API errors mapped onto the sender's transient/permanent contract. "typing…" only shows
in a private chat whose answer is slow (`typing_after_s`, chat_action.py). The Bot API is called
through PTB on an aiohttp transport (http.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlencode

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Request, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from bot import redisbatch, streams
from bot.backoff import Backoff
from bot.config import ChannelSettings, Settings
from bot.errors import ConfigError, PermanentChannelError, TransientChannelError, TransientError
from bot.httpbody import BodyTooLarge, read_capped
from bot.logs import get_logger
from bot.models import Button, Message, Outbound
from bot.queue import Present
from bot.ratelimit import AuthFailureLimit
from bot.redact import redact
from bot.redisconn import co_slot, is_cluster
from bot.streams import Layout
from channels.telegram import render
from channels.telegram.chat_action import SlowReplyTyping, replied_marker
from channels.telegram.config import TelegramChannelSettings
from channels.telegram.http import AiohttpRequest
from channels.telegram.normalize import ALLOWED_UPDATES, BotIdentity, Normalized, normalize, normalize_raw

if TYPE_CHECKING:
    from bot.intake import Sink

log = get_logger("switchboard.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024
BLOCKED_KEY = "telegram:blocked"  # hash: chat id → ISO time the bot was blocked / removed
DEAD_UPDATES = "telegram:updates:dead"  # raw updates we failed to normalize, with the error
PARTS_TTL_S = 7 * 24 * 3600
CALLBACK_TTL_S = 30 * 24 * 3600
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)

T = TypeVar("T")

PRIVATE_KEY = "telegram:private"  # hash: user id → ISO time they last wrote in their private chat
LINK_KEY = "telegram:link:{}"  # user id → the group conversation their private chat continues
HELD_KEY = "telegram:held:{}"  # sorted set: replies waiting for the user to open the private chat
INVITED_KEY = "telegram:invited:{}:{}"  # (group, user): an invitation link was posted recently
GROUP_SEEN_KEY = "telegram:seen:{}"  # "chat:message" of a group message already queued
ALBUM_KEY = "telegram:album:{}"  # hash: update id → Message, the files of one album so far
ALBUMS_KEY = "telegram:albums"  # sorted set: albums waiting to be queued (found again after a crash)
ALBUM_WAIT_S = 1.5  # Telegram sends an album's files as separate updates, within a second
ALBUM_TTL_S = 24 * 3600
LINK_TTL_S = 7 * 24 * 3600
INVITE_TTL_S = 600
GROUP_SEEN_TTL_S = 2 * 24 * 3600
# Bot API descriptions of a forum topic that no longer takes messages.
# (PTB rewrites the casing of descriptions: "TOPIC_CLOSED" arrives as "Topic_closed".)
_TOPIC_GONE = ("message thread not found", "topic_closed", "topic_deleted", "topic_id_invalid")


class _TopicGone(PermanentChannelError):
    """The forum topic (or the General topic) a reply was meant for is closed or deleted."""


class ReplyBot(Bot):
    """PTB's `Bot` plus `send_text`: sendMessage without turning Telegram's answer into a PTB
    `Message` (which cost about as much CPU as the HTTP call itself; nothing reads it). The same
    request and the same errors as `Bot.send_message`: it ends in `Bot._post`, where every PTB API
    method ends (parameters, defaults, the request object, the mapping of Bot API errors)."""

    async def send_text(self, chat_id: int, text: str, *, reply_markup: InlineKeyboardMarkup | None = None,
                        reply_parameters: ReplyParameters | None = None,
                        message_thread_id: int | None = None) -> None:
        await self._post("sendMessage", {
            "chat_id": chat_id, "text": text, "link_preview_options": NO_PREVIEW, "reply_markup": reply_markup,
            "reply_parameters": reply_parameters, "message_thread_id": message_thread_id,
        })


def build_bot(cfg: TelegramChannelSettings, updates_request: AiohttpRequest | None = None) -> ReplyBot:
    """A PTB Bot for `cfg` (no I/O) on our aiohttp transport (channels/telegram/http.py). Two
    connection pools, so a long poll never holds up sends."""
    t = cfg.request_timeout_s
    request = AiohttpRequest(16, read_timeout=t, write_timeout=t, connect_timeout=5.0, pool_timeout=5.0)
    return ReplyBot(cfg.token.get_secret_value(), base_url=cfg.base_url, base_file_url=cfg.base_file_url,
                    request=request, get_updates_request=updates_request or updates_http(cfg))


def updates_http(cfg: TelegramChannelSettings) -> AiohttpRequest:
    return AiohttpRequest(1, read_timeout=10.0, write_timeout=cfg.request_timeout_s, connect_timeout=5.0,
                          pool_timeout=5.0)


def redacted_raw(value: Any) -> Any:
    """A raw update with every string redacted, fit to be stored for inspection."""
    if isinstance(value, dict):
        return {k: redacted_raw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted_raw(v) for v in value]
    if isinstance(value, str):
        return redact(value).text
    return value


def scrub(cfg: TelegramChannelSettings, err: BaseException | str) -> str:
    """Error text without the token (HTTP errors can carry the request URL, which contains it)."""
    return str(err).replace(cfg.token.get_secret_value(), "<token>")[:300]


def retry_seconds(e: RetryAfter) -> float:
    # `e.retry_after` raises a PTBDeprecationWarning in 22.x (int → timedelta migration);
    # `_retry_after` is the timedelta PTB keeps in every 22.x version.
    td = getattr(e, "_retry_after", None)
    return max(float(td.total_seconds()), 0.0) if td is not None else 1.0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class TelegramChannel:
    """The Telegram adapter: see the module docstring for the delivery guarantees."""

    name: ClassVar[str] = "telegram"

    def __init__(self, settings: Settings, cfg: TelegramChannelSettings, r: aioredis.Redis) -> None:
        self.settings = settings
        self.cfg = cfg
        self.r = r
        self._auth_failures = AuthFailureLimit(r, "telegram")
        self._bot: ReplyBot | None = None
        self._updates_request: AiohttpRequest | None = None
        self._sink: Sink | None = None
        self._ready = False
        self._username: str | None = cfg.bot_username
        self._stop = asyncio.Event()
        self._poll_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.layout = Layout.of(settings)
        self.offset_key = f"telegram:offset:{cfg.bot_id}"
        self.typing = SlowReplyTyping(r, self._typing_action, self._spawn, after_s=cfg.typing_after_s)
        self._one_redis = not is_cluster(r)

    @classmethod
    def from_config(cls, settings: Settings, cfg: ChannelSettings, redis: aioredis.Redis) -> TelegramChannel:
        if not isinstance(cfg, TelegramChannelSettings):
            raise ConfigError("telegram channel: expected a TelegramChannelSettings section")
        return cls(settings, cfg, redis)

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def bot(self) -> ReplyBot:
        if self._bot is None:
            raise RuntimeError("telegram channel not started")
        return self._bot

    @property
    def username(self) -> str | None:
        return self._username

    @property
    def identity(self) -> BotIdentity:
        return BotIdentity(self.cfg.bot_id, self._username, self.cfg.max_attachment_bytes)

    async def start(self, sink: Sink) -> None:
        """Connect (getMe) and, in polling mode, start the poll loop. A Bot API that does not
        answer yet is retried in the background (the web app must come up regardless); a token
        the API rejects stops the start."""
        if self._sink is not None:
            raise RuntimeError("telegram channel already started")
        self._sink = sink
        self._stop.clear()
        self._updates_request = updates_http(self.cfg)
        self._bot = build_bot(self.cfg, self._updates_request)
        try:
            await self._initialize_once()
        except ConfigError:
            await self._bot.shutdown()
            self._bot, self._sink = None, None
            raise
        self._spawn(self._albums_left_over())
        if self.cfg.mode == "polling":
            self._poll_task = asyncio.get_running_loop().create_task(self._poll_loop())
        elif not self._ready:
            self._spawn(self._initialize_until_ready())
        log.info("telegram.started", mode=self.cfg.mode, bot=self._username, ready=self._ready)

    async def stop(self) -> None:
        if self._sink is None and self._bot is None:
            return
        self._stop.set()
        self.typing.close()
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=5)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._bot is not None:
            await self._bot.shutdown()
        self._bot = self._updates_request = None
        self._sink = None
        self._ready = False
        log.info("telegram.stopped")

    async def _initialize_once(self) -> bool:
        try:
            await self.bot.initialize()
        except InvalidToken:
            raise ConfigError("channels.telegram.token: the Bot API rejected the token (revoked or mistyped?)") from None
        except TelegramError as e:
            log.warning("telegram.unreachable", error=scrub(self.cfg, e))
            return False
        self._ready = True
        self._username = self.cfg.bot_username or self.bot.username
        return True

    async def _initialize_until_ready(self) -> None:
        backoff = Backoff()
        while not self._ready and not self._stop.is_set():
            if await self._sleep(backoff.next()):
                return
            with contextlib.suppress(ConfigError):  # logged below; keep trying, ops may fix DNS/token
                if await self._initialize_once():
                    log.info("telegram.connected", bot=self._username)
                    return
            log.warning("telegram.still_unreachable", attempt=backoff.n)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, or return True at once when the channel is stopping."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
            return True
        except TimeoutError:
            return False

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # -- inbound ----------------------------------------------------------------------------------
    async def handle_raw(self, data: dict[str, Any]) -> str | None:
        """Queue one update as Telegram sent it (JSON). An update PTB cannot parse — say a Bot API
        field newer than this PTB — is stored (redacted) in `telegram:updates:dead` and skipped:
        refusing it would make Telegram redeliver it forever and stall every later update.
        A plain text message in a private chat (most updates) skips PTB's object tree
        (`normalize_raw`): same result, a fraction of the CPU."""
        try:
            n = normalize_raw(data, self.identity)
        except Exception as exc:  # as in handle_update: kept, not dropped
            await self._dead_update(data, exc)
            return None
        if n is not None:
            return await self._queue(n, data["update_id"])
        try:
            update = Update.de_json(data, self._bot)
        except Exception as exc:  # PTB raises TypeError/KeyError/ValueError/… on shapes it does not know
            await self._dead_update(data, exc)
            return None
        return await self.handle_update(update)

    async def handle_update(self, update: Update) -> str | None:
        """Queue one update. Returns the inbound entry id (None: nothing queued or a duplicate).
        Raises TransientError when Redis is unavailable, so the caller retries (polling) or
        answers 503 and Telegram redelivers (webhook)."""
        try:
            n = normalize(update, self.identity)
        except Exception as exc:  # a bug or an update shape we did not foresee: kept, not dropped
            await self._dead_update(update.to_dict(), exc)
            return None
        return await self._queue(n, update.update_id)

    async def _queue(self, n: Normalized, update_id: int) -> str | None:
        sink = self._sink
        if sink is None:
            raise TransientError("telegram channel not started")
        try:
            return await self._apply(n, update_id, sink)
        except _REDIS_ERRORS as e:
            raise TransientError(f"redis unavailable: {e}") from None

    async def _apply(self, n: Normalized, update_id: int, sink: Sink) -> str | None:
        if n.membership is not None:
            await self._membership(*n.membership)
        if n.skipped:
            log.info("telegram.update_skipped", update_id=update_id, kind=n.kind, reason=n.skipped)
        msg = n.message
        if msg is not None and n.group_message is not None:
            # Telegram sends a corrected group message again as an edit: one answer per message.
            # (Marked only once queued: a delivery that fails half-way must not lose the message.)
            # An edit that pastes a secret into it is not a correction: it goes on (the secret is
            # a leak the router acts on) and the group is told, as for a new message.
            if n.secret_in_group is None and await self.r.exists(GROUP_SEEN_KEY.format(n.group_message)):
                log.info("telegram.update_skipped", update_id=update_id, kind=n.kind, reason="group_message_already_queued")
                msg = None
        notices = list(n.notices)
        if msg is not None and n.secret_in_group is not None:
            notices.append(self._secret_notice_for(msg, n.secret_in_group[1], update_id))
        if msg is not None and n.album is not None:
            await self._stash_album(n.album, msg, notices)
            return None
        private = msg is not None and msg.meta.get("chat_type") == "private"
        entry: str | None = None
        queued = False
        if msg is not None and private and not notices and self._one_redis:
            try:  # most private messages: one round trip (see _private_marks)
                entry = await sink(await self._resolve_callback(msg), **self._private_marks(msg))
                queued = True
            except Present:
                pass  # a link or held replies: the full path
        if not queued:
            entry = await self._queue_full(n, msg, notices, update_id, sink)
        if entry is not None and msg is not None and private:
            self.typing.accepted(int(msg.meta["reply_chat_id"]))
        if n.callback_query_id is not None:
            self._spawn(self._answer_callback(n.callback_query_id))
        return entry

    async def _queue_full(self, n: Normalized, msg: Message | None, notices: list[Outbound], update_id: int,
                          sink: Sink) -> str | None:
        """Queue `msg` with what goes out beside it: notices, and for a private chat the replies
        that waited for it, in the group conversation it continues (`_private_inbound`)."""
        released: list[Outbound] = []
        held: list[str] = []
        if msg is not None and msg.meta.get("chat_type") == "private":
            msg, released, held = await self._private_inbound(msg)
            if msg is None:
                log.info("telegram.update_skipped", update_id=update_id, kind=n.kind, reason="private_chat_opened")
        await self._queue_outbound([*released, *notices])
        entry = None
        if msg is not None:
            entry = await sink(await self._resolve_callback(msg))
            if n.group_message is not None:
                await self.r.set(GROUP_SEEN_KEY.format(n.group_message), "1", ex=GROUP_SEEN_TTL_S)
        if held:
            # Only what was released: a reply held meanwhile waits for the next message.
            await self.r.zrem(self._held_key(released[0].user_id), *held)
            for ob in released:
                if ob.meta.get("ticket") or ob.kind == "handoff":
                    await self._tell_agent("delivered_private", ob)
        return entry

    # -- albums -------------------------------------------------------------------------------------
    # An album (several photos or files sent at once, the caption on one of them) arrives as one
    # update per file. Queued one by one, one question would get an answer and then a "file
    # received, what is it about?" per further file. So its files are kept in Redis (durably: the
    # update counts as taken) until no file of it came for ALBUM_WAIT_S, then queued as one message:
    # the caption with every file. Every file's update starts a task that waits for that quiet
    # moment (so none depends on another's task, or on this process: another web role may take the
    # next update), one of them at a time queues what is there (a short lock) and removes exactly
    # what it queued; `telegram:albums` (the newest file's time per album) finds them again after
    # a crash. The queued message's id names its files' updates: the same files queued twice are
    # one message, a file that came late makes a message of its own rather than being lost.
    async def _stash_album(self, album: str, msg: Message, notices: list[Outbound]) -> None:
        key = ALBUM_KEY.format(album)
        await self._queue_outbound(notices)
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(key, msg.channel_message_id, msg.to_json())
        pipe.expire(key, ALBUM_TTL_S)
        pipe.zadd(ALBUMS_KEY, {key: time.time()})
        await pipe.execute()
        self._spawn(self._album_when_quiet(key))

    async def _album_when_quiet(self, key: str) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        while True:
            try:
                if await self._album_step(key):
                    return
                backoff.reset()
            except (TransientError, *_REDIS_ERRORS) as e:
                log.warning("telegram.album_retry", album=key, error=str(e)[:200])
                if await self._sleep(backoff.next()):
                    return
            except Exception:
                log.exception("telegram.album_failed", album=key)  # kept in Redis: the next start retries
                return

    async def _album_step(self, key: str) -> bool:
        """One look at an album: True when it is done (nothing left) or the channel stops."""
        at = await self.r.zscore(ALBUMS_KEY, key)
        if at is None:
            if not await self.r.exists(key):
                return True
            at = time.time()  # files without their index entry (a flush removed it meanwhile)
            await self.r.zadd(ALBUMS_KEY, {key: at}, nx=True)
        left = float(at) + ALBUM_WAIT_S - time.time()
        if left > 0:
            return await self._sleep(left + 0.01)
        lock = f"{key}:lock"
        if not await self.r.set(lock, "1", nx=True, px=10_000):
            return await self._sleep(0.2)  # another task is queueing it
        try:
            await self._flush_album(key)
        finally:
            await self.r.delete(lock)
        if await self.r.exists(key):
            return False  # a file came while it was queued: its own message, once quiet
        await self.r.zrem(ALBUMS_KEY, key)
        return False  # looked at once more: a file may have come just now

    async def _flush_album(self, key: str) -> None:
        items = await self.r.hgetall(key)
        parts: list[Message] = []
        for field, raw in items.items():
            try:
                parts.append(Message.from_json(raw))
            except ValueError:
                log.error("telegram.album_file_unreadable", album=key, update_id=field)
        if parts:
            parts.sort(key=lambda m: int(m.channel_message_id))
            lead = next((m for m in parts if m.text.strip()), parts[0])
            merged = lead.model_copy(update={
                "channel_message_id": "+".join(m.channel_message_id for m in parts),
                "text": "\n".join(m.text for m in parts if m.text.strip()),
                "attachments": tuple(a for m in parts for a in m.attachments)})
            await self._queue(Normalized("message", message=merged), int(lead.channel_message_id))
            log.info("telegram.album_queued", files=len(merged.attachments), updates=len(parts))
        if items:
            await self.r.hdel(key, *items)

    async def _albums_left_over(self) -> None:
        """Albums a stopped or crashed process did not queue yet."""
        with contextlib.suppress(*_REDIS_ERRORS):
            for key in await self.r.zrange(ALBUMS_KEY, 0, -1):
                self._spawn(self._album_when_quiet(key))

    @staticmethod
    def _secret_notice_for(msg: Message, message_id: int, update_id: int) -> Outbound:
        """Tells a user who posted a secret in a group to delete it (or that we did) and to move to
        the private chat — never quoting the message. The text is chosen when sent."""
        meta = {k: v for k, v in msg.meta.items() if k in ("reply_chat_id", "reply_chat_type", "reply_thread_id")}
        return Outbound(id=f"tg-{update_id}-secret", channel="telegram", conversation_id=msg.conversation_id,
                        user_id=msg.user_id, text="secret notice", lang=msg.lang, kind="system",
                        meta={**meta, "reply_public_ok": "1", "secret_notice": str(message_id)})

    async def _secret_notice(self, ob: Outbound) -> None:
        chat = self.chat_id(ob)
        # The outcome of the deletion is kept: a retry of the notice must not say "please delete
        # it" because the second deletion attempt found the message gone.
        outcome_key = f"telegram:secret:{ob.id}"
        outcome = await self._redis(self.r.get(outcome_key))
        if outcome is None:
            try:
                outcome = "deleted" if await self.bot.delete_message(chat, int(ob.meta["secret_notice"])) else "kept"
            except (BadRequest, Forbidden) as e:  # not an admin with delete rights
                log.info("telegram.secret_not_deleted", chat=chat, error=scrub(self.cfg, e))
                outcome = "kept"
            except TelegramError as e:
                raise TransientChannelError(f"telegram unavailable: {scrub(self.cfg, e)}") from None
            await self._redis(self.r.set(outcome_key, outcome, ex=PARTS_TTL_S))
        deleted = outcome == "deleted"
        link = render.deep_link(self._username_or_retry(), "group_secret")
        text = render.text("secret_deleted" if deleted else "secret_delete_it", ob.lang, link=link)
        thread = ob.meta.get("reply_thread_id")
        await self._redis(self.r.set(INVITED_KEY.format(chat, ob.user_id), "1", ex=INVITE_TTL_S))
        await self._group_post(ob.id, chat, text, None, int(thread) if thread and thread.isdigit() else None)
        log.info("telegram.secret_in_group", chat=chat, deleted=deleted)

    async def _membership(self, chat_id: int, status: str) -> None:
        if status in ("kicked", "left"):
            await self.r.hset(BLOCKED_KEY, str(chat_id), _now_iso())
            log.info("telegram.blocked", chat=chat_id, status=status)
        elif status in ("member", "administrator"):
            await self.r.hdel(BLOCKED_KEY, str(chat_id))

    async def _resolve_callback(self, msg: Message) -> Message:
        """Long button payloads travel as a digest (callback_data ≤ 64 bytes); swap them back."""
        if msg.meta.get("callback") != "1" or not msg.text.startswith(render.CALLBACK_PREFIX):
            return msg
        payload = await self.r.get(f"telegram:cb:{msg.text[len(render.CALLBACK_PREFIX):]}")
        return msg.model_copy(update={"text": payload}) if payload else msg

    async def _answer_callback(self, query_id: str) -> None:
        """Stops the button's loading spinner. Best effort: the message is queued already."""
        try:
            await self.bot.answer_callback_query(query_id)
        except TelegramError as e:
            log.info("telegram.callback_answer_failed", error=scrub(self.cfg, e))

    async def _dead_update(self, raw: dict[str, Any], exc: BaseException) -> None:
        # No exc_info in the log: exception texts (pydantic's, PTB's) can quote the user's text.
        log.error("telegram.update_failed", update_id=raw.get("update_id"), error=type(exc).__name__)
        trace = redact("".join(traceback.format_exception(exc))).text[-4000:]
        try:
            await self.r.xadd(DEAD_UPDATES, {"u": orjson.dumps(redacted_raw(raw)).decode(), "error": trace,
                                             "at": _now_iso()}, maxlen=10_000, approximate=True)
        except _REDIS_ERRORS as e:
            raise TransientError(f"redis unavailable: {e}") from None

    # -- webhook ----------------------------------------------------------------------------------
    def routes(self) -> APIRouter | None:
        if self.cfg.mode != "webhook":
            return None
        router = APIRouter()
        # A plain Starlette route: the endpoint reads the raw body itself, so FastAPI's request
        # handling (dependencies, body parsing, response validation) would only add CPU per update.
        router.add_route(self.cfg.webhook_path, self.webhook, methods=["POST"], include_in_schema=False)
        return router

    def _secret_ok(self, got: str | None) -> bool:
        want = self.cfg.webhook_secret
        if want is None or got is None:
            return False
        return hmac.compare_digest(got.encode(), want.get_secret_value().encode())

    async def webhook(self, request: Request) -> Response:
        """One webhook delivery. 200 only once the update is queued (or deliberately skipped)."""
        ip = request.client.host if request.client else None
        if self._auth_failures.blocked(ip):
            return Response(status_code=429)
        if not self._secret_ok(request.headers.get(SECRET_HEADER)):
            log.warning("telegram.webhook_forbidden", client=ip)
            await self._auth_failures.failed(ip)
            return Response(status_code=403)
        try:
            body = await read_capped(request, MAX_UPDATE_BYTES)
        except BodyTooLarge:
            return Response(status_code=413)
        try:
            data = orjson.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
        except (orjson.JSONDecodeError, ValueError):
            log.warning("telegram.webhook_invalid")
            return Response(status_code=400)
        try:
            await self.handle_raw(data)
        except TransientError as e:
            log.warning("telegram.webhook_unavailable", update_id=data["update_id"], error=str(e)[:200])
            return Response(status_code=503)
        return Response(status_code=200)

    # -- polling ----------------------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        """getUpdates until stopped. The offset (= confirmation to Telegram) moves past an update
        only once it is queued; it is kept in Redis so a restart resumes where we were."""
        backoff = Backoff()
        while not self._ready:
            if await self._sleep(backoff.next()):
                return
            with contextlib.suppress(ConfigError):
                await self._initialize_once()
        backoff.reset()
        offset: int | None = None
        webhook_cleared = False
        while not self._stop.is_set():
            try:
                if offset is None:
                    stored = await self.r.get(self.offset_key)
                    offset = int(stored) if stored else 0
                if not webhook_cleared:
                    # getUpdates is refused (409) while a webhook is registered.
                    await self.bot.delete_webhook(drop_pending_updates=False)
                    webhook_cleared = True
                updates = await self._get_updates(offset)
            except RetryAfter as e:
                wait = retry_seconds(e)
                log.warning("telegram.poll_flood_control", retry_after=wait)
            except Conflict as e:
                webhook_cleared = False
                wait = backoff.next()
                log.error("telegram.poll_conflict", error=scrub(self.cfg, e), retry_in=round(wait, 1))
            except TelegramError as e:  # network errors, 5xx, a revoked token
                wait = backoff.next()
                log.warning("telegram.poll_failed", error=scrub(self.cfg, e), retry_in=round(wait, 1))
            except _REDIS_ERRORS as e:
                wait = backoff.next()
                log.warning("redis.unavailable", error=str(e), retry_in=round(wait, 1))
            else:
                backoff.reset()
                for raw in updates:
                    uid = raw.get("update_id") if isinstance(raw, dict) else None
                    if not isinstance(uid, int):
                        log.warning("telegram.update_without_id")
                        continue
                    if not await self._intake_until_done(raw, uid):
                        return
                    offset = uid + 1
                continue
            if await self._sleep(wait):
                return

    async def _get_updates(self, offset: int) -> list[Any]:
        """One long poll, as raw JSON. Not `Bot.get_updates`: that parses the whole batch at once,
        so a single update PTB cannot parse fails every call and — the offset being unable to
        move past an update we cannot name — stalls polling for good (and PTB logs the raw batch,
        user texts included). PTB's request layer still does the HTTP and maps the errors."""
        assert self._updates_request is not None
        query: dict[str, Any] = {"timeout": self.cfg.poll_timeout_s,
                                 "allowed_updates": orjson.dumps(list(ALLOWED_UPDATES)).decode()}
        if offset:
            query["offset"] = offset
        res = await self._updates_request.post(f"{self.bot.base_url}/getUpdates?{urlencode(query)}",
                                               read_timeout=10.0 + self.cfg.poll_timeout_s)
        if not isinstance(res, list):
            raise TelegramError(f"getUpdates answered {type(res).__name__}, not a list")
        return res

    async def _intake_until_done(self, raw: dict[str, Any], update_id: int) -> bool:
        """Queue one polled update, retrying while Redis is down; then persist the offset.
        False when stopped first (the update stays unconfirmed and comes again next time)."""
        backoff = Backoff(base=0.2, cap=10.0)
        while not self._stop.is_set():
            try:
                await self.handle_raw(raw)
                await self.r.set(self.offset_key, update_id + 1)
                return True
            except (TransientError, *_REDIS_ERRORS) as e:
                wait = backoff.next()
                log.warning("telegram.intake_retry", update_id=update_id, error=str(e)[:200],
                            retry_in=round(wait, 1))
                if await self._sleep(wait):
                    break
        return False

    # -- files ------------------------------------------------------------------------------------
    async def fetch_attachment(self, ref: str) -> bytes:
        """The bytes of a file a user sent (`ref` is its Telegram file id), for the agent console.
        Telegram keeps the file; we never store it. FileNotFoundError if Telegram no longer has it."""
        if self._bot is None:
            raise TransientChannelError("telegram channel not started")
        try:
            f = await self._bot.get_file(ref)
            if f.file_size and f.file_size > self.cfg.max_attachment_bytes:
                raise PermanentChannelError(f"file is {f.file_size} bytes, over max_attachment_bytes")
            return bytes(await f.download_as_bytearray())
        except BadRequest as e:
            raise FileNotFoundError(f"telegram: {e.message}") from None
        except (RetryAfter, TelegramError) as e:
            raise TransientChannelError(f"telegram: {e}") from None

    # -- outbound ---------------------------------------------------------------------------------
    @staticmethod
    def chat_id(ob: Outbound) -> int:
        raw = ob.meta.get("reply_chat_id") or ob.conversation_id.partition(":")[2]
        try:
            return int(raw)
        except ValueError:
            raise PermanentChannelError(f"no Telegram chat id for conversation {ob.conversation_id!r}") from None

    async def send(self, ob: Outbound) -> None:
        """Send one reply. Safe to call again after a failure: parts already delivered are not
        repeated (their count is kept in Redis under the outbound id)."""
        await self._send(ob, None)

    async def deliver(self, ob: Outbound, stream: str, group: str, entry_id: str, *, first: bool = False) -> None:
        """`send`, and the acknowledgement of the outbound entry (what `OutboundSender` uses when a
        channel offers it). A reply is idempotent by its own Redis state (the parts count, the
        steps of a reply moved to the private chat), so no separate sent-marker round trips: the
        ack rides in the round trip that records the last part. Ack after the record, both in one
        round trip: a redelivery after a failure between the two finds the reply sent. `first`: no
        attempt can have sent any part of it yet (`bot.streams.ONCE`), so the count is not read."""
        await self._send(ob, (stream, group, entry_id), first=first)

    async def deliver_writes(self, ob: Outbound, stream: str, group: str, entry_id: str, *,
                             first: bool = False) -> list[tuple[Any, ...]] | None:
        """`deliver`, except that the last round trip — the record of the last part with the ack —
        is returned instead of sent, when the reply ends with one: the sender's consumer sends it
        with its next read (`bot.consumer.AckWith`), one round trip fewer per reply. None: it was
        all written here (a reply moved to the private chat, a notice, one already sent)."""
        return await self._send(ob, (stream, group, entry_id), first=first, defer=True)

    async def _send(self, ob: Outbound, ack: tuple[str, str, str] | None, *, first: bool = False,
                    defer: bool = False) -> list[tuple[Any, ...]] | None:
        if self._bot is None:
            raise TransientChannelError("telegram channel not started")
        if ob.meta.get("secret_notice"):
            await self._secret_notice(ob)
        elif render.needs_private_chat(ob):
            await self._to_private(ob)
        else:
            thread = ob.meta.get("reply_thread_id")
            try:
                return await self._send_text(ob.id, self.chat_id(ob), render.with_author(ob), ob.buttons,
                                             reply_to=ob.meta.get("reply_to_message_id"),
                                             thread_id=int(thread) if thread and thread.isdigit() else None, ack=ack,
                                             first=first, defer=defer)
            except _TopicGone as e:
                # Neither the topic nor the General topic takes messages (closed, deleted, hidden):
                # the reply goes to the user's private chat rather than to the dead-letter stream.
                log.info("telegram.topic_gone", conversation=ob.conversation_id, error=str(e)[:200])
                await self._to_private(ob, invite=False)
        if ack is not None:
            await self._ack_now(ack)
        return None

    @staticmethod
    def _ack(ack: tuple[str, str, str]) -> list[tuple[Any, ...]]:
        stream, group, entry_id = ack
        return [("XACK", stream, group, entry_id), ("HDEL", streams.attempts(stream), entry_id)]

    async def _ack_now(self, ack: tuple[str, str, str]) -> None:
        """Acknowledge an outbound entry on its own (nothing to record with it)."""
        await self._write(self._ack(ack))

    async def _write(self, commands: list[tuple[Any, ...]]) -> None:
        """`commands` in one round trip, in order (not a transaction; `redisbatch.writes`); an
        error reply is raised."""
        for res in await self._redis(redisbatch.writes(self.r, commands)):
            if isinstance(res, Exception):
                raise res

    async def _send_text(self, key_id: str, chat_id: int, text: str, buttons: tuple[Button, ...] = (), *,
                         reply_to: str | None = None, thread_id: int | None = None,
                         ack: tuple[str, str, str] | None = None, first: bool = False,
                         defer: bool = False) -> list[tuple[Any, ...]] | None:
        """Send `text` (split at 4096) to one chat; `key_id` keys the count of parts already sent.
        A forum topic that was deleted or closed meanwhile falls back to the General topic.
        `ack`: the outbound entry to acknowledge with the record of the last part (see `deliver`);
        `first`: nothing of it was sent before (no count to read); `defer`: the last part's record
        and ack are returned, not sent (see `deliver_writes`)."""
        parts = render.split_text(text)
        key = f"telegram:parts:{key_id}"
        done = int(await self._redis(self.r.get(key)) or 0) if parts and not first else 0
        if done >= len(parts):
            if not parts:
                log.info("telegram.empty_reply", chat=chat_id)
            if ack is not None:
                await self._ack_now(ack)
            return None
        markup = await self._keyboard(buttons) if buttons else None
        self.typing.replied(chat_id)
        for i in range(done, len(parts)):
            first, last = i == 0, i == len(parts) - 1
            reply = (ReplyParameters(int(reply_to), allow_sending_without_reply=True)
                     if first and reply_to and reply_to.isdigit() else None)

            def part(cid: int, migrated: bool, text: str = parts[i], reply: ReplyParameters | None = reply,
                     markup: InlineKeyboardMarkup | None = markup if last else None,
                     thread: int | None = thread_id) -> Awaitable[Any]:
                return self.bot.send_text(
                    cid, text, reply_markup=markup,
                    # After a migration the old message ids and thread mean nothing in the new chat.
                    reply_parameters=None if migrated else reply,
                    message_thread_id=None if migrated else thread,
                )

            try:
                chat_id = await self._call(chat_id, part)
            except _TopicGone:
                if thread_id is None:
                    raise
                log.info("telegram.topic_fallback_general", chat=chat_id, thread=thread_id)
                thread_id = None
                chat_id = await self._call(chat_id, functools.partial(part, thread=None))
            writes: list[tuple[Any, ...]] = [("SET", key, i + 1, "EX", PARTS_TTL_S)]
            if chat_id > 0:  # a private chat: its "typing…" (chat_action.py) knows it was answered
                marker, at, ttl = replied_marker(chat_id)
                writes.append(("SET", marker, at, "EX", ttl))
            deferred: list[tuple[Any, ...]] | None = None
            if last and ack is not None:
                writes += self._ack(ack)
                deferred = writes if defer else None
            if deferred is None:
                await self._write(writes)
        if len(parts) > 1:
            log.info("telegram.reply_split", chat=chat_id, parts=len(parts))
        return deferred

    # -- group → private chat -----------------------------------------------------------------------
    # A group member's account matters (and a person's replies, and ticket notices) never go to the
    # group. They go to the member's private chat with the bot: at once when the member has opened
    # it before, else they wait in `telegram:held:<user>` while the group gets one invitation link;
    # the member's first private message (the link's `/start group_…`) releases them. From then on
    # the private chat carries the group conversation (and its ticket): `telegram:link:<user>`.
    def _username_or_retry(self) -> str:
        if not self._username:
            raise TransientChannelError("bot username unknown yet (getMe has not answered)")
        return self._username

    async def _private_open(self, uid: int) -> bool:
        opened, blocked = await self._redis(asyncio.gather(self.r.hexists(PRIVATE_KEY, str(uid)),
                                                           self.r.hexists(BLOCKED_KEY, str(uid))))
        return bool(opened) and not blocked

    async def _to_private(self, ob: Outbound, *, invite: bool = True) -> None:
        try:
            uid = int(ob.user_id)
        except ValueError:
            raise PermanentChannelError(f"telegram: no user id to reach privately in {ob.conversation_id!r}") from None
        group = self.chat_id(ob)
        thread = ob.meta.get("reply_thread_id")
        thread_id = int(thread) if thread and thread.isdigit() else None
        answers_group_post = ob.kind in ("answer", "clarify", "handoff") and not ob.meta.get("reply_redacted")
        await self._redis(self.r.set(LINK_KEY.format(uid), ob.conversation_id, ex=LINK_TTL_S))
        # Each step once, even when a retry follows a failure half-way (`steps` remembers them). A
        # reply held before is released as its own copy when the member opens the private chat:
        # a redelivery of the original (a sender that died before its ack) must not send it again.
        held = self._held_key(uid)
        steps_key = self._held_steps_key(held, ob.id)
        steps = await self._redis(self.r.hgetall(steps_key))
        if "held" not in steps and await self._private_open(uid):
            try:
                await self._send_text(f"{ob.id}:private", uid, render.with_author(ob), ob.buttons)
            except PermanentChannelError as e:  # blocked since, or never really started
                log.info("telegram.private_unreachable", user=uid, error=str(e)[:200])
                await self._redis(self.r.hdel(PRIVATE_KEY, str(uid)))
            else:
                log.info("telegram.sent_privately", conversation=ob.conversation_id, kind=ob.kind, topic=ob.topic)
                if answers_group_post and invite:
                    await self._group_post(ob.id, group, render.text("replied_privately", ob.lang),
                                           ob.meta.get("reply_to_message_id"), thread_id)
                return
        if "held" not in steps:
            pipe = self.r.pipeline(transaction=True)
            pipe.zadd(held, {ob.to_json(): time.time()}, nx=True)
            pipe.expire(held, LINK_TTL_S)
            pipe.hset(steps_key, "held", "1")
            pipe.expire(steps_key, PARTS_TTL_S)
            await self._redis(pipe.execute())
            log.info("telegram.held_for_private", conversation=ob.conversation_id, kind=ob.kind, topic=ob.topic)
        if (ob.meta.get("ticket") or ob.kind == "handoff") and "told" not in steps:
            await self._tell_agent("waiting_private", ob)
            await self._redis(self.r.hset(steps_key, "told", "1"))
        if "invite" not in steps:
            first = invite and answers_group_post and bool(await self._redis(
                self.r.set(INVITED_KEY.format(group, uid), "1", nx=True, ex=INVITE_TTL_S)))
            steps["invite"] = "1" if first else "0"
            await self._redis(self.r.hset(steps_key, "invite", steps["invite"]))
        if steps["invite"] == "1":
            text = render.go_private_text(ob.lang, self._username_or_retry(), ob.topic)
            await self._group_post(ob.id, group, text, ob.meta.get("reply_to_message_id"), thread_id)

    async def _group_post(self, key_id: str, group: int, text: str, reply_to: str | None,
                          thread_id: int | None) -> None:
        try:
            await self._send_text(key_id, group, text, reply_to=reply_to, thread_id=thread_id)
        except _TopicGone:
            log.info("telegram.group_post_dropped", chat=group, reason="topic_gone")

    async def _tell_agent(self, status: str, ob: Outbound) -> None:
        """The agent console must never show a reply as delivered when it was not: a delivery
        event on the handoff stream becomes a note on the ticket. The handoff reply itself has no
        ticket number yet: its ticket is found by conversation (the handoff stream is in order,
        so the ticket is opened before this event is read)."""
        event = {"delivery": {"ticket": ob.meta.get("ticket", ""), "conversation": ob.conversation_id,
                              "channel": self.name, "status": status, "outbound": ob.id, "kind": ob.kind}}
        stream = self.layout.handoff(self.layout.partition(ob.conversation_id))
        await self._redis(self.r.xadd(stream, {"d": orjson.dumps(event).decode()}))

    # -- Redis keys of a conversation and of a held reply ------------------------------------------
    async def _queue_outbound(self, obs: list[Outbound]) -> None:
        """Notices and released replies, each on its conversation's outbound stream, in order."""
        for ob in obs:
            await self.r.xadd(self._outbound_of(ob.conversation_id), {"d": ob.to_json()})

    def _outbound_of(self, conversation_id: str) -> str:
        """The conversation's outbound stream (its partition's): notices and released replies
        go out in order with the router's replies of that conversation."""
        return self.layout.outbound(self.name, self.layout.partition(conversation_id))

    def _held_key(self, uid: int | str) -> str:
        """The replies held for a user; on a Redis Cluster `{telegram:held:<user>}`, so a reply's
        step marks (`_held_steps_key`) share its slot and are written with it in one MULTI."""
        return co_slot(self.r, HELD_KEY.format(uid))

    def _held_steps_key(self, held: str, outbound_id: str) -> str:
        if is_cluster(self.r):
            return f"{held}:steps:{outbound_id}"
        return f"telegram:held_steps:{outbound_id}"

    @staticmethod
    def _private_writes(msg: Message) -> tuple[tuple[Any, ...], ...]:
        """What every message of a private chat records: the bot may write there, and the user
        has not blocked it (they write again)."""
        return (("HSET", PRIVATE_KEY, msg.user_id, _now_iso()), ("HDEL", BLOCKED_KEY, msg.meta["reply_chat_id"]))

    def _private_marks(self, msg: Message) -> dict[str, Any]:
        """A private message with nothing linked or held for its user needs only what
        `_private_inbound` writes: so it is queued with those writes in the same round trip, on
        the condition that neither the link nor held replies exist (else `Present`: the full path,
        which reads them). Keys anywhere: one Redis only, not a cluster."""
        uid = msg.user_id
        return {"before": self._private_writes(msg), "absent": (LINK_KEY.format(uid), self._held_key(uid))}

    async def _private_inbound(self, msg: Message) -> tuple[Message | None, list[Outbound], list[str]]:
        """A message in a user's private chat: remember that the bot may write there, release what
        waited for it, and put it into the group conversation it was invited from. None: nothing
        to queue (the invitation's `/start group_…` itself)."""
        uid = msg.user_id
        pipe = self.r.pipeline(transaction=False)
        for cmd in self._private_writes(msg):
            pipe.execute_command(*cmd)
        pipe.get(LINK_KEY.format(uid))
        pipe.zrange(self._held_key(uid), 0, -1)
        _, _, linked, held = await pipe.execute()
        released: list[Outbound] = []
        for raw in held or []:
            try:
                ob = Outbound.from_json(raw)
            except ValueError:
                continue
            private = {"reply_chat_id": uid, "reply_chat_type": "private", "chat_type": "private"}
            keep = {k: v for k, v in ob.meta.items()
                    if k not in ("reply_chat_id", "reply_chat_type", "chat_type", "reply_to_message_id",
                                 "reply_thread_id", "reply_redacted")}
            released.append(ob.model_copy(update={"id": f"{ob.id}-p", "meta": {**keep, **private}}))
        raw = list(held or [])
        if not linked:
            return msg, released, raw
        await self.r.expire(LINK_KEY.format(uid), LINK_TTL_S)
        if msg.meta.get("command") == "start" and msg.meta.get("command_arg", "").startswith("group"):
            log.info("telegram.private_chat_opened", user=uid, conversation=linked, released=len(released))
            if released:
                return None, released, raw
        linked_msg = msg.model_copy(update={"conversation_id": linked, "meta": {**msg.meta, "linked_from": "private"}})
        return linked_msg, released, raw

    async def _typing_action(self, chat_id: int) -> bool:
        """One "typing…" in a private chat (see chat_action.py); False when it was refused."""
        if self._bot is None:
            return False
        try:
            await self._bot.send_chat_action(chat_id, ChatAction.TYPING)
        except TelegramError as e:
            log.info("telegram.typing_failed", chat=chat_id, error=scrub(self.cfg, e))
            return False
        return True

    async def _keyboard(self, buttons: tuple[Button, ...]) -> InlineKeyboardMarkup:
        rows = []
        for row in render.keyboard_rows(buttons):
            rows.append([InlineKeyboardButton(b.label, callback_data=await self._callback_data(b.payload))
                         for b in row])
        return InlineKeyboardMarkup(rows)

    async def _callback_data(self, payload: str) -> str:
        if render.fits_callback(payload):
            return payload
        digest = render.callback_digest(payload)
        await self._redis(self.r.set(f"telegram:cb:{digest}", payload, ex=CALLBACK_TTL_S))
        return render.CALLBACK_PREFIX + digest

    async def _redis(self, aw: Awaitable[T]) -> T:
        try:
            return await aw
        except _REDIS_ERRORS as e:
            raise TransientChannelError(f"redis unavailable: {e}") from None

    async def _call(self, chat_id: int, make: Callable[[int, bool], Awaitable[Any]], *,
                    ignore_bad_request: bool = False) -> int:
        """Run one Bot API call for `chat_id`, following a group → supergroup migration once.
        Returns the chat id that worked."""
        try:
            await self._api(make(chat_id, False), chat_id, ignore_bad_request=ignore_bad_request)
            return chat_id
        except ChatMigrated as e:
            new = e.new_chat_id
        log.info("telegram.chat_migrated", old=chat_id, new=new)
        try:
            await self._api(make(new, True), new, ignore_bad_request=ignore_bad_request)
        except ChatMigrated as e:
            raise PermanentChannelError(f"telegram chat {chat_id} migrated twice (to {new}, {e.new_chat_id})") from None
        return new

    async def _api(self, call: Awaitable[T], chat_id: int, *, ignore_bad_request: bool = False) -> T | None:
        """Await a Bot API call, mapping PTB errors onto the sender's contract: transient ones are
        retried (after `retry_after` when Telegram said so), permanent ones dead-lettered."""
        try:
            return await call
        except RetryAfter as e:
            wait = retry_seconds(e)
            raise TransientChannelError(f"telegram flood control: retry in {wait:g}s", retry_after=wait) from None
        except Forbidden as e:
            # Blocked by the user, or the bot was removed from the group.
            await self._redis(self.r.hset(BLOCKED_KEY, str(chat_id), _now_iso()))
            log.info("telegram.blocked", chat=chat_id, error=scrub(self.cfg, e))
            raise PermanentChannelError(f"telegram forbidden: {scrub(self.cfg, e)}") from None
        except ChatMigrated:
            raise
        except BadRequest as e:  # before NetworkError: BadRequest subclasses it
            if any(t in e.message.lower() for t in _TOPIC_GONE):
                raise _TopicGone(f"telegram topic unavailable: {scrub(self.cfg, e)}") from None
            if ignore_bad_request:
                log.info("telegram.bad_request_ignored", error=scrub(self.cfg, e))
                return None
            raise PermanentChannelError(f"telegram bad request: {scrub(self.cfg, e)}") from None
        except InvalidToken as e:
            log.error("telegram.token_rejected")
            raise TransientChannelError(f"telegram rejected the token: {scrub(self.cfg, e)}") from None
        except TelegramError as e:  # NetworkError, TimedOut, 5xx and anything new: try again later
            raise TransientChannelError(f"telegram unavailable: {scrub(self.cfg, e)}") from None
