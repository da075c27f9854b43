"""X (Twitter) channel on tweepy's async v2 client: mentions and DMs in, replies out.

Receiving, chosen in config:
* `webhook` — the Account Activity API pushes events to `webhook_path`; the CRC challenge is
  answered and every POST's signature verified (403 otherwise), then events go through a dispatch
  table (unknown kinds are logged and skipped).
* `polling` — GET /2/users/:id/mentions (since_id) and GET /2/dm_events, each in its own loop with
  its checkpoint in Redis, so a restart neither loses nor re-reads posts; errors back off with
  jitter, a 429 waits for `x-rate-limit-reset`.

Sending (`send`) applies the public/private rule of `channels.twitter.policy`: general answers
are posted under the user's post, everything about their account goes by DM with a short public
nudge. A reply made of several API calls records each finished call in Redis under the outbound
id, so a retry after a rate limit continues where it stopped instead of sending parts twice.

tweepy's host is fixed (https://api.twitter.com); the client's documented `session` attribute
is the seam — pass `session=` (anything with aiohttp's `request`) to point it elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
import orjson
import redis.asyncio as aioredis
import tweepy
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tweepy.asynchronous import AsyncClient

from bot import metrics, streams
from bot.backoff import Backoff
from bot.config import ChannelSettings, Settings
from bot.errors import PermanentChannelError, TransientChannelError
from bot.files import DEFAULT_ATTACHMENT_TYPES, attachment_refusal
from bot.httpbody import BodyTooLarge, read_capped
from bot.logs import get_logger
from bot.models import Message, Outbound
from bot.ratelimit import AuthFailureLimit, WindowLimit
from bot.streams import Layout
from channels.twitter import normalize
from channels.twitter.config import TwitterChannelSettings
from channels.twitter.normalize import Skipped
from channels.twitter.policy import nudge_text, plan_reply
from channels.twitter.text import weighted_length
from channels.twitter.webhook import SIGNATURE_HEADER, crc_response, crc_token_ok, signature_ok

if TYPE_CHECKING:
    from bot.intake import Sink

log = get_logger("switchboard.twitter")

PROGRESS_TTL_S = 7 * 24 * 3600
MAX_PAGES = 10
MAX_WEBHOOK_BODY = 1024 * 1024
CRC_PER_MINUTE = 10  # per client address
_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
# Payload keys of an Account Activity delivery that are context, not events.
_WEBHOOK_CONTEXT = frozenset({"for_user_id", "users", "apps", "user_has_blocked", "source"})

TWEET_FIELDS = ["author_id", "conversation_id", "created_at", "lang", "attachments", "entities",
                "referenced_tweets", "in_reply_to_user_id", "display_text_range", "note_tweet"]
MEDIA_FIELDS = ["type", "url", "preview_image_url", "variants"]
# Account Activity events that are not messages to answer: known, skipped with this reason.
_NOT_MESSAGES = {
    "favorite_events": "like", "follow_events": "follow", "unfollow_events": "unfollow",
    "mute_events": "mute", "unmute_events": "unmute",
    "direct_message_indicate_typing_events": "typing", "direct_message_mark_read_events": "read_receipt",
}
DELETED_KEY = "twitter:deleted:{}"  # a post its author deleted: no public reply under it
POSTED_KEY = "twitter:post:{}"  # tweet id → our Message id, to take a deleted post out of its ticket
BLOCKED_KEY = "twitter:blocked"  # set of user ids the account blocked
# The handoff side's intake stream for a retraction: the untagged one (a deleted post names only its
# message, not its conversation; the web role consumes this stream in every key layout).
HANDOFF_STREAM = streams.HANDOFF
KEEP_S = 30 * 24 * 3600
# Where X serves the media users attach (public images; DM media behind OAuth; videos).
MEDIA_HOSTS = frozenset({"pbs.twimg.com", "ton.twitter.com", "video.twimg.com"})
MAX_MEDIA_BYTES = 50 * 1024 * 1024
DM_FIELDS = ["id", "text", "event_type", "created_at", "sender_id", "dm_conversation_id", "attachments"]


NOT_KEPT = {
    "en": "I could not keep {names}: I accept photos, PDF and text files and MP4 videos only.",
    "zh": "无法接收 {names}：我只接收图片、PDF、文本文件和 MP4 视频。",
}


def _keep_allowed(msg: Message) -> tuple[Message, list[str]]:
    """The same rule for files as every other channel (`bot.files.attachment_refusal`); X does
    not say how big a file is, so only the type is checked here."""
    kept = [a for a in msg.attachments if attachment_refusal(a.content_type, a.name, 0,
                                                             allowed=DEFAULT_ATTACHMENT_TYPES, max_bytes=1) is None]
    if len(kept) == len(msg.attachments):
        return msg, []
    refused = [a.name for a in msg.attachments if a not in kept]
    return msg.model_copy(update={"attachments": tuple(kept)}), refused


class XRefused(PermanentChannelError):
    """X answered 4xx: the same request will not succeed. `status` and `api_messages` let a
    caller recognise the few refusals it can handle (DMs closed, duplicate post)."""

    def __init__(self, message: str, status: int, api_messages: list[str]) -> None:
        super().__init__(message)
        self.status = status
        self.api_messages = api_messages


def _secret(v: Any) -> str | None:
    return v.get_secret_value() if v is not None else None


def _retry_after(e: tweepy.TooManyRequests) -> float | None:
    if e.reset_time is None:
        return None
    return max(1.0, float(e.reset_time) - time.time())


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def _parse_time(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        return datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None


class TwitterChannel:
    name: ClassVar[str] = "twitter"

    def __init__(
        self,
        settings: Settings,
        cfg: TwitterChannelSettings,
        r: aioredis.Redis,
        *,
        session: Any | None = None,
    ) -> None:
        self.settings = settings
        self.layout = Layout.of(settings)
        self.cfg = cfg
        self.r = r
        self._auth_failures = AuthFailureLimit(r, "twitter")
        # X sends a CRC challenge on registration and about hourly: a handful per minute is plenty.
        self._crc_limit = WindowLimit(r, "twitter:crc", limit=CRC_PER_MINUTE)
        self.client = AsyncClient(
            bearer_token=_secret(cfg.bearer_token),
            consumer_key=_secret(cfg.consumer_key),
            consumer_secret=_secret(cfg.consumer_secret),
            access_token=_secret(cfg.access_token),
            access_token_secret=_secret(cfg.access_token_secret),
            return_type=dict,
        )
        # The documented seam: tweepy uses `client.session` when set, else a session per call.
        self.client.session = session
        self._owns_session = False
        # OAuth 1.0a user context when the four values are set, else the (user-context) bearer.
        self._user_auth = cfg.oauth1
        self.account_id: str | None = cfg.account_id
        self._sink: Sink | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.poll_rounds: dict[str, int] = {"mentions": 0, "dms": 0}
        self._webhook_handlers: dict[str, Callable[[Any, dict[str, Any], str], Awaitable[None]]] = {
            "tweet_create_events": self._on_tweet_events,
            "direct_message_events": self._on_dm_events,
            "tweet_delete_events": self._on_tweet_deletes,
            "block_events": self._on_blocks,
            "unblock_events": self._on_blocks,
            "user_event": self._on_user_event,
        }

    @classmethod
    def from_config(cls, settings: Settings, cfg: ChannelSettings, redis: aioredis.Redis) -> TwitterChannel:
        assert isinstance(cfg, TwitterChannelSettings)
        return cls(settings, cfg, redis)

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self, sink: Sink) -> None:
        """Starts the poll loops (polling mode) and returns at once: an X outage must not hold up
        the start of the other channels, so nothing here waits for the API."""
        if self._sink is not None:
            raise RuntimeError("twitter channel already started")
        self._sink = sink
        self._stop.clear()
        self._ensure_session()
        if self.cfg.mode == "polling":
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._poll_loop("mentions", self.poll_mentions_once)),
                loop.create_task(self._poll_loop("dms", self.poll_dms_once)),
            ]
        log.info("twitter.started", mode=self.cfg.mode, account=self.account_id)

    async def stop(self) -> None:
        self._stop.set()
        for t in self._tasks:
            try:
                await asyncio.wait_for(t, 5)
            except TimeoutError:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        self._tasks = []
        self._sink = None
        if self._owns_session and self.client.session is not None:
            await self.client.session.close()
            self.client.session = None
            self._owns_session = False

    async def __aenter__(self) -> TwitterChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _ensure_session(self) -> None:
        """One shared HTTP session per channel (created inside the running loop)."""
        if self.client.session is None:
            self.client.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.cfg.request_timeout_s)
            )
            self._owns_session = True

    # -- files ------------------------------------------------------------------------------------
    async def fetch_attachment(self, ref: str) -> bytes:
        """A photo or video a user sent (`ref` is X's media URL), for the agent console. Only X's
        media hosts (never an arbitrary URL); DM media (ton.twitter.com) is signed with the
        account's OAuth 1.0a keys, as X requires. FileNotFoundError when X no longer has it."""
        u = urlsplit(ref)
        if u.scheme != "https" or u.hostname not in MEDIA_HOSTS:
            raise FileNotFoundError(f"not an X media URL: {ref[:100]}")
        headers: dict[str, str] = {}
        if u.hostname == "ton.twitter.com":
            if not self._user_auth:
                raise PermanentChannelError("DM media needs the OAuth 1.0a keys (consumer key/secret, access token/secret)")
            from oauthlib.oauth1 import Client as OAuth1

            signer = OAuth1(_secret(self.cfg.consumer_key), client_secret=_secret(self.cfg.consumer_secret),
                            resource_owner_key=_secret(self.cfg.access_token),
                            resource_owner_secret=_secret(self.cfg.access_token_secret))
            _, headers, _ = signer.sign(ref, http_method="GET")
        self._ensure_session()
        try:
            async with self.client.session.request("GET", ref, headers=headers,
                                                   timeout=aiohttp.ClientTimeout(total=60)) as res:
                if res.status in (404, 410):
                    raise FileNotFoundError(ref)
                if res.status >= 400:
                    raise TransientChannelError(f"x media: HTTP {res.status}")
                data = await res.content.read(MAX_MEDIA_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise TransientChannelError(f"x media: {type(e).__name__}") from None
        if len(data) > MAX_MEDIA_BYTES:
            raise PermanentChannelError(f"x media over {MAX_MEDIA_BYTES} bytes")
        return bytes(data)

    # -- API calls and their errors -----------------------------------------------------------------
    async def _api(self, what: str, fn: Callable[..., Awaitable[Any]], **kw: Any) -> dict[str, Any]:
        """Call tweepy and turn its failures into the product's two kinds: transient (retry
        later; 429 says when) and permanent (this request will never succeed)."""
        self._ensure_session()
        try:
            res = await fn(user_auth=self._user_auth, **kw)
        except tweepy.TooManyRequests as e:
            raise TransientChannelError(f"X rate limit on {what}", retry_after=_retry_after(e)) from None
        except tweepy.TwitterServerError as e:
            raise TransientChannelError(f"X server error {e.response.status} on {what}") from None
        except tweepy.Unauthorized:
            # Wrong or revoked credentials: nothing succeeds until ops fix them, but the replies
            # must wait for that rather than be thrown away.
            log.error("twitter.unauthorized", what=what)
            raise TransientChannelError(f"X rejected the credentials on {what}", retry_after=60) from None
        except tweepy.HTTPException as e:
            status = int(getattr(e.response, "status", 0) or 0)
            if status in (408, 409, 425):
                raise TransientChannelError(f"X answered {status} on {what}") from None
            raise XRefused(f"X refused {what}: {e}"[:500], status, list(e.api_messages)) from None
        except aiohttp.ClientResponseError as e:
            # A non-JSON error page (a proxy in front of X): classify by status.
            if e.status in (408, 429) or e.status >= 500:
                raise TransientChannelError(f"X answered {e.status} on {what}") from None
            raise XRefused(f"X refused {what}: HTTP {e.status}", e.status, []) from None
        except (aiohttp.ClientError, TimeoutError, OSError, json.JSONDecodeError) as e:
            raise TransientChannelError(f"X unreachable on {what}: {type(e).__name__}") from None
        return res if isinstance(res, dict) else {}

    async def _account(self) -> str:
        if self.account_id is None:
            me = await self._api("users/me", self.client.get_me, user_fields=["username"])
            uid = (me.get("data") or {}).get("id")
            if not uid:
                raise TransientChannelError("X users/me returned no id")
            self.account_id = str(uid)
            log.info("twitter.account_resolved", account=self.account_id)
        return self.account_id

    # -- inbound: common ----------------------------------------------------------------------------
    async def _intake(self, res: Message | Skipped, source_id: str) -> None:
        if isinstance(res, Skipped):
            log.info("twitter.event_skipped", reason=res.reason, id=source_id)
            return
        assert self._sink is not None, "channel not started"
        if await self.r.sismember(BLOCKED_KEY, res.user_id):
            log.info("twitter.event_skipped", reason="author_blocked", id=source_id)
            return
        res, refused = _keep_allowed(res)
        if refused and res.meta.get("reply_visibility") == "dm":
            lang = res.lang if res.lang in NOT_KEPT else "en"
            notice = Outbound(id=f"x-{res.channel_message_id}-not-kept", channel=self.name,
                              conversation_id=res.conversation_id, user_id=res.user_id,
                              text=NOT_KEPT[lang].format(names=", ".join(refused)), lang=res.lang, kind="system",
                              meta={k: v for k, v in res.meta.items() if k.startswith("reply_")})
            # The conversation's outbound stream (its partition's), in order with its replies.
            await self.r.xadd(self.layout.outbound(self.name, self.layout.partition(res.conversation_id)),
                              {"d": notice.to_json()})
        if not res.text.strip() and not res.attachments:
            log.info("twitter.event_skipped", reason="only_refused_media", id=source_id)
            return
        entry = await self._sink(res)
        if entry is not None and res.meta.get("reply_visibility") == "public":
            await self.r.set(POSTED_KEY.format(res.channel_message_id), res.id, ex=KEEP_S)

    async def _normalize_and_intake(self, source_id: str, build: Callable[[], Message | Skipped]) -> None:
        """A malformed item (a field of the wrong type, text X should never send) is logged and
        skipped — one bad event must not stop the others, nor the channel."""
        try:
            res = build()
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            log.warning("twitter.event_malformed", id=source_id, error=f"{type(e).__name__}: {str(e)[:200]}")
            return
        await self._intake(res, source_id)

    # -- inbound: polling ---------------------------------------------------------------------------
    async def _poll_loop(self, name: str, once: Callable[[], Awaitable[None]]) -> None:
        """Poll until stopped. Mentions and DMs run separately: one endpoint's rate limit or
        missing permission must not starve the other."""
        backoff = Backoff(base=1.0, cap=self.cfg.backoff_max_s)
        while not self._stop.is_set():
            try:
                await once()
                self.poll_rounds[name] += 1
                backoff.reset()
                delay = self.cfg.poll_interval_s
            except TransientChannelError as e:
                delay = (e.retry_after + random.uniform(0, 1)) if e.retry_after else backoff.next()
                log.warning("twitter.poll_failed", endpoint=name, error=str(e), retry_in=round(delay, 2))
            except PermanentChannelError as e:
                delay = max(backoff.next(), self.cfg.poll_interval_s)
                log.error("twitter.poll_refused", endpoint=name, error=str(e)[:300], retry_in=round(delay, 2))
            except _REDIS_ERRORS as e:
                delay = backoff.next()
                log.warning("redis.unavailable", endpoint=name, error=str(e), retry_in=round(delay, 2))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug: keep the channel alive; the checkpoint did not move
                delay = backoff.next()
                log.exception("twitter.poll_crashed", endpoint=name, error=type(e).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)

    def _key(self, account: str, what: str) -> str:
        return f"twitter:{account}:{what}"

    async def _poll_start(self, account: str) -> datetime:
        """Until the first checkpoint exists, only posts newer than the first start (minus the
        configured look-back) are taken — stored, so a restart before the first post keeps it."""
        candidate = datetime.now(UTC) - timedelta(seconds=self.cfg.first_poll_lookback_s)
        key = self._key(account, "poll_start")
        await self.r.set(key, _iso(candidate), nx=True)
        return _parse_time(await self.r.get(key)) or candidate

    async def poll_mentions_once(self) -> None:
        me = await self._account()
        key = self._key(me, "since:mentions")
        since = await self.r.get(key)
        params: dict[str, Any] = {
            "max_results": 100,
            "tweet_fields": TWEET_FIELDS,
            # The quoted post, or the post a mention replies under, with its author ("is this real?").
            "expansions": ["author_id", "attachments.media_keys", "referenced_tweets.id",
                           "referenced_tweets.id.author_id"],
            "media_fields": MEDIA_FIELDS,
            "user_fields": ["username"],
        }
        if since:
            params["since_id"] = since
        else:
            params["start_time"] = await self._poll_start(me)
        found: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            resp = await self._api("mentions", self.client.get_users_mentions, id=me, pagination_token=token, **params)
            found.extend((t, resp.get("includes")) for t in resp.get("data") or [] if isinstance(t, dict))
            token = (resp.get("meta") or {}).get("next_token")
            if not token:
                break
        else:
            log.warning("twitter.backlog_truncated", endpoint="mentions", pages=MAX_PAGES)
        found.sort(key=lambda ti: int(ti[0].get("id") or 0))
        for tweet, inc in found:
            tid = str(tweet.get("id"))
            await self._normalize_and_intake(tid, functools.partial(normalize.mention_from_v2, tweet, inc, me))
        if found:
            newest = str(found[-1][0].get("id"))
            if not since or int(newest) > int(since):
                await self.r.set(key, newest)

    async def poll_dms_once(self) -> None:
        """GET /2/dm_events has no since_id: page back from the newest event until one we have
        already taken (or one older than the first start), then take the new ones oldest first."""
        me = await self._account()
        key = self._key(me, "since:dms")
        since = int(await self.r.get(key) or 0)
        start = None if since else await self._poll_start(me)
        params: dict[str, Any] = {
            "max_results": 100,
            "event_types": "MessageCreate",
            "dm_event_fields": DM_FIELDS,
            "expansions": ["sender_id", "attachments.media_keys"],
            "media_fields": MEDIA_FIELDS,
            "user_fields": ["username"],
        }
        fresh: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            resp = await self._api("dm_events", self.client.get_direct_message_events, pagination_token=token, **params)
            reached_known = False
            for ev in resp.get("data") or []:
                if not isinstance(ev, dict):
                    continue
                eid = int(ev.get("id") or 0)
                created = _parse_time(ev.get("created_at"))
                if (since and eid <= since) or (start and created and created < start):
                    reached_known = True
                    continue
                fresh.append((ev, resp.get("includes")))
            token = (resp.get("meta") or {}).get("next_token")
            if reached_known or not token:
                break
        else:
            log.warning("twitter.backlog_truncated", endpoint="dm_events", pages=MAX_PAGES)
        fresh.sort(key=lambda ei: int(ei[0].get("id") or 0))
        for ev, inc in fresh:
            await self._normalize_and_intake(str(ev.get("id")), functools.partial(normalize.dm_from_v2, ev, inc, me))
        if fresh:
            await self.r.set(key, str(fresh[-1][0].get("id")))

    # -- inbound: webhook ---------------------------------------------------------------------------
    def routes(self) -> APIRouter | None:
        if self.cfg.mode != "webhook":
            return None
        secret = _secret(self.cfg.consumer_secret)
        assert secret, "webhook mode is validated to have consumer_secret"
        router = APIRouter()

        @router.get(self.cfg.webhook_path, include_in_schema=False)
        async def crc(request: Request, crc_token: str | None = None) -> JSONResponse:
            ip = request.client.host if request.client else "?"
            if not await self._crc_limit.hit(ip):
                return JSONResponse({"error": "too many CRC requests"}, status_code=429)
            if not crc_token:
                return JSONResponse({"error": "crc_token missing"}, status_code=400)
            if not crc_token_ok(crc_token):
                log.warning("twitter.crc_refused", client=ip, length=len(crc_token))
                return JSONResponse({"error": "crc_token is not shaped like X's"}, status_code=400)
            return JSONResponse(crc_response(secret, crc_token))

        @router.post(self.cfg.webhook_path, include_in_schema=False)
        async def events(request: Request) -> Response:
            ip = request.client.host if request.client else None
            if self._auth_failures.blocked(ip):
                return Response(status_code=429)
            try:
                body = await read_capped(request, MAX_WEBHOOK_BODY)
            except BodyTooLarge:
                return Response(status_code=413)
            if not signature_ok(secret, body, request.headers.get(SIGNATURE_HEADER)):
                log.warning("twitter.webhook_rejected", reason="bad_signature", client=ip)
                await self._auth_failures.failed(ip)
                return Response(status_code=403)
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError:
                return Response(status_code=400)
            if not isinstance(payload, dict):
                return Response(status_code=400)
            if self._sink is None:
                return Response(status_code=503)
            try:
                await self.handle_webhook(payload)
            except (*_REDIS_ERRORS, TransientChannelError, PermanentChannelError) as e:
                # Nothing was lost on our side: X retries a delivery that did not get a 2xx. (A
                # channel error: X did not tell us who the account is yet.)
                log.warning("twitter.webhook_intake_failed", error=str(e)[:300])
                return Response(status_code=503)
            return Response(status_code=200)

        return router

    async def handle_webhook(self, payload: dict[str, Any]) -> None:
        """Dispatch one verified Account Activity delivery."""
        for_user = str(payload.get("for_user_id") or "")
        # Who we are comes from X (GET /2/users/me), never from a delivery: every account
        # subscribed to the app's webhook gets deliveries, and the first one may be another's.
        me = await self._account()
        if for_user and for_user != me:
            log.info("twitter.event_skipped", reason="other_account", for_user_id=for_user)
            return
        for kind, value in payload.items():
            if kind in _WEBHOOK_CONTEXT:
                continue
            handler = self._webhook_handlers.get(kind)
            if handler is None:
                reason = _NOT_MESSAGES.get(kind)
                log.info("twitter.event_skipped", reason=f"not_a_message:{reason}" if reason else "unhandled_kind",
                         kind=kind)
                continue
            if kind == "user_event":
                await handler(value, payload, me)
                continue
            if not isinstance(value, list):
                log.warning("twitter.event_malformed", kind=kind, error="not a list")
                continue
            await handler(value, payload, me)

    async def _on_tweet_events(self, items: list[Any], payload: dict[str, Any], me: str) -> None:
        if str(payload.get("user_has_blocked", "")).lower() == "true":
            # X tells us the author of these mentions is someone the account blocked.
            log.info("twitter.event_skipped", reason="author_blocked", kind="tweet_create_events", n=len(items))
            return
        for t in items:
            if not isinstance(t, dict):
                log.warning("twitter.event_malformed", kind="tweet_create_events", error="not an object")
                continue
            tid = str(t.get("id_str") or t.get("id") or "?")
            await self._normalize_and_intake(tid, functools.partial(normalize.mention_from_webhook, t, me))

    async def _on_dm_events(self, items: list[Any], payload: dict[str, Any], me: str) -> None:
        users = payload.get("users") if isinstance(payload.get("users"), dict) else {}
        for ev in items:
            if not isinstance(ev, dict):
                log.warning("twitter.event_malformed", kind="direct_message_events", error="not an object")
                continue
            eid = str(ev.get("id") or "?")
            await self._normalize_and_intake(eid, functools.partial(normalize.dm_from_webhook, ev, users or {}, me))

    async def _on_tweet_deletes(self, items: list[Any], payload: dict[str, Any], me: str) -> None:
        """A user deleted a post: no public reply may appear under it any more, and its text
        leaves the ticket it went into (they took it back in public; we keep no copy)."""
        for ev in items:
            status = ev.get("status") if isinstance(ev, dict) else None
            tid = str((status or {}).get("id") or (status or {}).get("id_str") or "") if isinstance(status, dict) else ""
            if not tid:
                log.warning("twitter.event_malformed", kind="tweet_delete_events", error="no status id")
                continue
            await self.r.set(DELETED_KEY.format(tid), "1", ex=KEEP_S)
            mid = await self.r.get(POSTED_KEY.format(tid))
            if mid:
                event = {"retract": {"message_id": mid, "channel": self.name, "reason": "deleted on X by its author"}}
                await self.r.xadd(HANDOFF_STREAM, {"d": orjson.dumps(event).decode()})
            log.info("twitter.post_deleted", id=tid, in_ticket=bool(mid))

    async def _on_blocks(self, items: list[Any], payload: dict[str, Any], me: str) -> None:
        """The account blocked (or unblocked) someone: a blocked user gets no reply, on any route."""
        for ev in items:
            if not isinstance(ev, dict) or ev.get("type") not in ("block", "unblock"):
                log.info("twitter.event_skipped", reason="block_event_not_understood")
                continue
            src = str((ev.get("source") or {}).get("id") or "")
            target = str((ev.get("target") or {}).get("id") or "")
            if src != me or not target:
                log.info("twitter.event_skipped", reason="block_by_someone_else")
                continue
            if ev["type"] == "block":
                await self.r.sadd(BLOCKED_KEY, target)
            else:
                await self.r.srem(BLOCKED_KEY, target)
            log.info("twitter.block_recorded", type=ev["type"], user=target)

    async def _on_user_event(self, items: Any, payload: dict[str, Any], me: str) -> None:
        """`user_event` is an object: `revoke` means the account took our app's access away —
        nothing can be sent or read until ops re-authorise it, so ops must hear of it."""
        if isinstance(items, dict) and "revoke" in items:
            rv = items.get("revoke") or {}
            metrics.CHANNEL_ALERTS.labels(self.name, "app_revoked").inc()
            log.error("twitter.app_revoked", account=str((rv.get("source") or {}).get("user_id") or me),
                      app=str((rv.get("target") or {}).get("app_id") or ""), at=rv.get("date_time"))
            return
        log.info("twitter.event_skipped", reason="user_event_not_understood")

    # -- outbound -----------------------------------------------------------------------------------
    async def _progress(self, ob: Outbound) -> dict[str, str]:
        try:
            return dict(await self.r.hgetall(f"twitter:out:{ob.id}"))
        except _REDIS_ERRORS as e:
            raise TransientChannelError(f"progress read failed: {e}") from None

    async def _mark(self, ob: Outbound, step: str, value: str) -> None:
        key = f"twitter:out:{ob.id}"
        try:
            pipe = self.r.pipeline(transaction=True)
            pipe.hset(key, step, value)
            pipe.expire(key, PROGRESS_TTL_S)
            await pipe.execute()
        except _REDIS_ERRORS as e:
            raise TransientChannelError(f"progress write failed: {e}") from None

    async def _tweet(self, text: str, reply_to: str, *, dm_link: bool) -> str:
        kw: dict[str, Any] = {"text": text, "in_reply_to_tweet_id": reply_to}
        if dm_link and self.account_id:
            # Adds X's "Send a private message" button under the reply.
            kw["direct_message_deep_link"] = f"https://twitter.com/messages/compose?recipient_id={self.account_id}"
        try:
            res = await self._api("create_tweet", self.client.create_tweet, **kw)
        except XRefused as e:
            if e.status == 403 and any("duplicate" in m.lower() for m in e.api_messages):
                # Our earlier attempt got through but its answer was lost: it is posted.
                log.info("twitter.reply_already_posted", in_reply_to=reply_to)
                return ""
            if e.status == 403 and any("deleted or not visible" in m.lower() for m in e.api_messages):
                # The post was deleted (or its author blocked us / went private) before we answered.
                log.info("twitter.reply_dropped", in_reply_to=reply_to, reason="post_gone")
                return ""
            raise
        return str((res.get("data") or {}).get("id") or "")

    async def _is_deleted(self, tweet_id: str) -> bool:
        try:
            return bool(await self.r.exists(DELETED_KEY.format(tweet_id)))
        except _REDIS_ERRORS as e:
            raise TransientChannelError(f"redis unavailable: {e}") from None

    async def _dm(self, user_id: str, text: str) -> None:
        await self._api("create_dm", self.client.create_direct_message, participant_id=user_id, text=text)

    def _handle_prefix(self, ob: Outbound) -> str:
        """Public replies start with the user's @handle: it is how X threads read, and it keeps
        two users' identical answers from being refused as duplicate posts."""
        h = ob.meta.get("reply_handle")
        return f"@{h} " if h else ""

    async def send(self, ob: Outbound) -> None:
        prefix = self._handle_prefix(ob)
        plan = plan_reply(
            ob,
            public_max_chars=self.cfg.public_max_chars - weighted_length(prefix),
            dm_max_chars=self.cfg.dm_max_chars,
            help_url=self.cfg.help_url,
        )
        done = await self._progress(ob)
        reply_to = ob.meta.get("reply_tweet_id", "")
        if reply_to and await self._is_deleted(reply_to):
            if plan.route == "public":
                log.info("twitter.reply_dropped", conversation=ob.conversation_id, reason="post_deleted")
                return
            done = {**done, "public": "post_deleted"}  # the DM still goes; no nudge under a deleted post
        if plan.route == "public":
            if "public" not in done:
                tid = await self._tweet(prefix + plan.public_text, reply_to, dm_link=False)
                await self._mark(ob, "public", tid or "posted")
            log.info("twitter.reply_public", conversation=ob.conversation_id, kind=ob.kind, topic=ob.topic)
            return

        recipient = ob.meta.get("reply_author_id") or ob.user_id
        dm_state = done.get("dm", "")
        for i, part in enumerate(plan.dm_parts):
            if dm_state == "refused" or f"dm:{i}" in done:
                continue
            try:
                await self._dm(recipient, part)
            except XRefused as e:
                if plan.route == "dm_with_nudge" and i == 0 and e.status == 403:
                    # The user does not accept DMs from us: the public nudge asks them to write first.
                    log.info("twitter.dm_refused", conversation=ob.conversation_id)
                    await self._mark(ob, "dm", "refused")
                    dm_state = "refused"
                    break
                raise
            await self._mark(ob, f"dm:{i}", "sent")
        if plan.route == "dm_with_nudge" and "public" not in done:
            text = prefix + nudge_text(
                ob.lang, dm_sent=dm_state != "refused" and bool(plan.dm_parts),
                secret_posted=bool(ob.meta.get("reply_redacted")),
            )
            tid = await self._tweet(text, reply_to, dm_link=True)
            await self._mark(ob, "public", tid or "posted")
        log.info("twitter.reply_private", conversation=ob.conversation_id, kind=ob.kind, topic=ob.topic,
                 reason=plan.reason, parts=len(plan.dm_parts), nudge=plan.route == "dm_with_nudge",
                 dm=dm_state or "sent")
