"""A local X API v2 server (aiohttp) for the endpoints the twitter channel uses, plus the session
that points tweepy at it.

It records every request, serves mentions and DM events the test put there (honouring since_id,
start_time, max_results and pagination), accepts posts and DMs the way X does (201, weighted
280-character limit, duplicate-post refusal, 403 for users whose DMs are closed, OAuth header
required), and can be told to answer the next N calls with an error — 429 with
`x-rate-limit-reset`, or 503 for an outage.

tweepy's host is hard-coded, so `LocalAioSession` rewrites https://api.twitter.com to this server
at the transport level; the code under test stays real.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import yarl
from aiohttp import web

TW = "https://api.twitter.com"
MEDIA_HOSTS = ("pbs.twimg.com", "ton.twitter.com", "video.twimg.com")
ACCOUNT_ID = "100000000000000001"
ACCOUNT_HANDLE = "ExchangeSupport"
CONSUMER_KEY = "test-consumer-key"
CONSUMER_SECRET = "test-consumer-secret"
ACCESS_TOKEN = f"{ACCOUNT_ID}-test-access-token"
ACCESS_SECRET = "test-access-secret"

HELP_URL = "https://help.example.com/x"
WEBHOOK_PATH = "/webhooks/twitter"

_URL = re.compile(r"https?://\S+")


def channel_section(mode: str = "webhook", **overrides: Any) -> dict[str, Any]:
    """A `twitter` config section for the fake account (fast polling for tests)."""
    return {
        "type": "twitter", "mode": mode, "account_id": ACCOUNT_ID, "handle": ACCOUNT_HANDLE,
        "consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET, "access_token": ACCESS_TOKEN,
        "access_token_secret": ACCESS_SECRET, "webhook_path": WEBHOOK_PATH, "poll_interval_s": 0.1,
        "help_url": HELP_URL, **overrides,
    }


def sign(body: bytes, secret: str = CONSUMER_SECRET) -> str:
    """What X puts in x-twitter-webhooks-signature (computed here, independently of the adapter)."""
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_mention(tid: str, author_id: str, screen_name: str, text: str, *, lang: str = "en",
                    account_id: str = ACCOUNT_ID) -> dict[str, Any]:
    """One `tweet_create_events` item (v1.1 shape) of a post mentioning the account."""
    return {
        "created_at": "Wed Oct 10 20:19:24 +0000 2018", "id": int(tid), "id_str": tid, "text": text,
        "truncated": False, "lang": lang, "in_reply_to_status_id_str": None, "in_reply_to_user_id_str": None,
        "user": {"id": int(author_id), "id_str": author_id, "screen_name": screen_name},
        "entities": {"hashtags": [], "urls": [], "user_mentions": [
            {"id": int(account_id), "id_str": account_id, "screen_name": ACCOUNT_HANDLE, "indices": [0, 16]}]},
    }


def webhook_dm(eid: str, sender_id: str, text: str, *, account_id: str = ACCOUNT_ID) -> dict[str, Any]:
    """One `direct_message_events` item (v1.1 shape)."""
    return {"type": "message_create", "id": eid, "created_timestamp": str(int(time.time() * 1000)),
            "message_create": {"target": {"recipient_id": account_id}, "sender_id": sender_id,
                               "message_data": {"text": text, "entities": {}}}}


def x_weighted_length(text: str) -> int:
    """X's count, written independently of the adapter's: URLs 23, code points above U+10FF 2
    (except general punctuation the adapter also treats as light), others 1."""
    n = 0
    for part in _URL.split(text):
        for ch in part:
            o = ord(ch)
            light = o <= 0x10FF or 0x2000 <= o <= 0x200D or 0x2010 <= o <= 0x201F or 0x2032 <= o <= 0x2037
            n += 1 if light else 2
    return n + 23 * len(_URL.findall(text))


class LocalAioSession:
    """Duck-typed aiohttp session for tweepy.asynchronous (it only calls `.request`)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._s = aiohttp.ClientSession()

    def request(self, method: str, url: Any, **kw: Any) -> Any:
        u = str(url)
        for host in MEDIA_HOSTS:  # media URLs go to the fake too, under /_media/<host>/…
            u = u.replace(f"https://{host}/", f"{self.base}/_media/{host}/", 1)
        return self._s.request(method, yarl.URL(u.replace(TW, self.base, 1), encoded=True), **kw)

    async def close(self) -> None:
        await self._s.close()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    auth: str
    at: float


@dataclass
class Failure:
    status: int
    reset_in: float
    method: str | None
    path_prefix: str | None
    skip: int = 0


@dataclass
class FakeXAPI:
    account_id: str = ACCOUNT_ID
    handle: str = ACCOUNT_HANDLE
    consumer_key: str = CONSUMER_KEY
    requests: list[Recorded] = field(default_factory=list)
    tweets: list[dict[str, Any]] = field(default_factory=list)  # posted by the bot
    dms: list[dict[str, Any]] = field(default_factory=list)  # sent by the bot
    mentions: list[dict[str, Any]] = field(default_factory=list)
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)  # other posts, served as includes.tweets
    dm_events: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    dms_closed: set[str] = field(default_factory=set)
    # Posts their authors deleted: X refuses a reply under them (403), as it does for real.
    deleted_tweets: set[str] = field(default_factory=set)
    rate_limited: list[tuple[str, int]] = field(default_factory=list)  # (path, x-rate-limit-reset) given
    down: bool = False
    media: dict[str, bytes] = field(default_factory=dict)  # media URL -> bytes served under /_media
    _failures: list[Failure] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1_790_000_000_000_000_000, 1_000))
    _runner: web.AppRunner | None = None
    port: int = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/2/users/me", self._me)
        app.router.add_get("/2/users/{id}/mentions", self._mentions)
        app.router.add_post("/2/tweets", self._create_tweet)
        app.router.add_post("/2/dm_conversations/with/{pid}/messages", self._create_dm)
        app.router.add_get("/2/dm_events", self._dm_events)
        app.router.add_get("/_media/{host}/{path:.+}", self._media)
        app.middlewares.append(self._middleware)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.base_url

    async def close(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def session(self) -> LocalAioSession:
        return LocalAioSession(self.base_url)

    # -- test controls -----------------------------------------------------------------------------
    def next_id(self) -> str:
        return str(next(self._ids))

    def fail_next(self, n: int, status: int = 429, *, reset_in: float = 1.0, method: str | None = None,
                  path_prefix: str | None = None, skip: int = 0) -> None:
        """Answer the next `n` matching calls (after letting `skip` of them through) with
        `status`; a 429 carries x-rate-limit-reset `reset_in` seconds ahead."""
        self._failures.extend(Failure(status, reset_in, method, path_prefix, skip if i == 0 else 0) for i in range(n))

    def add_user(self, user_id: str, username: str) -> None:
        self.users[user_id] = {"id": user_id, "username": username, "name": username}

    def add_mention(self, author_id: str, username: str, text: str, *, lang: str = "en",
                    reply_to: str | None = None, media_keys: tuple[str, ...] = (),
                    reply_to_user: str | None = None, display_from: int | None = None,
                    quote_of: str | None = None) -> str:
        """A post mentioning the account, as GET /2/users/:id/mentions returns it: mention entities
        for every @handle X knows, `in_reply_to_user_id` of the post it answers (our account by
        default) and, for a reply, `display_text_range` starting after the handles X added."""
        self.add_user(author_id, username)
        tid = self.next_id()
        tweet: dict[str, Any] = {
            "id": tid, "text": text, "author_id": author_id, "lang": lang,
            "conversation_id": reply_to or tid, "created_at": _now(),
            "edit_history_tweet_ids": [tid],
        }
        by_name = {u["username"].lower(): uid for uid, u in self.users.items()}
        by_name[self.handle.lower()] = self.account_id
        mentions = [{"start": m.start(), "end": m.end(), "username": m.group(1), "id": by_name[m.group(1).lower()]}
                    for m in re.finditer(r"@(\w{1,15})", text) if m.group(1).lower() in by_name]
        if mentions:
            tweet["entities"] = {"mentions": mentions}
        if quote_of:
            tweet["referenced_tweets"] = [{"type": "quoted", "id": quote_of}]
        if reply_to:
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": reply_to}]
            tweet["in_reply_to_user_id"] = reply_to_user or self.account_id
            tweet["display_text_range"] = [display_from or 0, len(text)]
        if media_keys:
            tweet["attachments"] = {"media_keys": list(media_keys)}
            for k in media_keys:
                self.media.setdefault(k, {"media_key": k, "type": "photo", "url": f"https://pbs.twimg.com/media/{k}.jpg"})
        self.mentions.append(tweet)
        return tid

    def add_post(self, author_id: str, username: str, text: str) -> str:
        """A post that does not mention the account (one a user may quote or reply under)."""
        self.add_user(author_id, username)
        tid = self.next_id()
        self.posts[tid] = {"id": tid, "text": text, "author_id": author_id, "created_at": _now(),
                           "edit_history_tweet_ids": [tid]}
        return tid

    def add_dm(self, sender_id: str, username: str, text: str, *, media: dict[str, Any] | None = None) -> str:
        """A DM to the account, as GET /2/dm_events returns it. With `media` (a v2 media object)
        the text ends with the media's t.co link, as on X."""
        self.add_user(sender_id, username)
        eid = self.next_id()
        ev: dict[str, Any] = {
            "id": eid, "event_type": "MessageCreate", "text": text, "sender_id": sender_id,
            "dm_conversation_id": _dm_conv(sender_id, self.account_id), "created_at": _now(),
        }
        if media is not None:
            self.media[media["media_key"]] = media
            ev["attachments"] = {"media_keys": [media["media_key"]]}
            ev["text"] = f"{text} https://t.co/{media['media_key'][-6:]}".strip()
        self.dm_events.append(ev)
        return eid

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # -- server ------------------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        auth = request.headers.get("Authorization", "")
        self.requests.append(Recorded(request.method, request.path, dict(request.query), body, auth, time.time()))
        if self.down:
            return web.json_response({"title": "Service Unavailable", "status": 503}, status=503)
        for i, f in enumerate(self._failures):
            if (f.method is None or f.method == request.method) and (
                f.path_prefix is None or request.path.startswith(f.path_prefix)
            ):
                if f.skip > 0:
                    f.skip -= 1
                    break
                del self._failures[i]
                headers = {}
                if f.status == 429:
                    reset = math.ceil(time.time() + f.reset_in)
                    self.rate_limited.append((request.path, reset))
                    headers["x-rate-limit-reset"] = str(reset)
                    headers["x-rate-limit-remaining"] = "0"
                return web.json_response({"title": "Too Many Requests", "detail": "Too Many Requests",
                                          "type": "about:blank", "status": f.status}, status=f.status, headers=headers)
        if request.path.startswith("/_media/pbs.twimg.com/"):
            return await handler(request)  # public images need no authorization
        if request.path.startswith("/_media/ton.twitter.com/") and not auth.startswith("OAuth "):
            return web.json_response({"title": "Unauthorized", "status": 401}, status=401)  # DM media: OAuth 1.0a only
        if not (auth.startswith("OAuth ") and f'oauth_consumer_key="{self.consumer_key}"' in auth) and not (
            auth.startswith("Bearer ") and len(auth) > 7
        ):
            return web.json_response({"title": "Unauthorized", "detail": "Unauthorized", "status": 401}, status=401)
        return await handler(request)

    async def _media(self, request: web.Request) -> web.Response:
        key = f"https://{request.match_info['host']}/{request.match_info['path']}"
        if key not in self.media:
            return web.Response(status=404)
        return web.Response(body=self.media[key], content_type="image/jpeg")

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response({"data": {"id": self.account_id, "username": self.handle, "name": "Support"}})

    def _page(self, items: list[dict[str, Any]], request: web.Request) -> tuple[list[dict[str, Any]], str | None]:
        items = sorted(items, key=lambda x: int(x["id"]), reverse=True)
        n = int(request.query.get("max_results", "100"))
        start = int(request.query.get("pagination_token", "0"))
        page = items[start : start + n]
        token = str(start + n) if start + n < len(items) else None
        return page, token

    def _includes(self, items: list[dict[str, Any]], user_key: str) -> dict[str, Any]:
        users = {x[user_key] for x in items if x.get(user_key) in self.users}
        keys = {k for x in items for k in (x.get("attachments") or {}).get("media_keys", [])}
        inc: dict[str, Any] = {}
        if users:
            inc["users"] = [self.users[u] for u in sorted(users)]
        if keys:
            inc["media"] = [self.media[k] for k in sorted(keys) if k in self.media]
        return inc

    async def _mentions(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.account_id:
            return web.json_response({"title": "Forbidden", "detail": "not your timeline", "status": 403}, status=403)
        items = list(self.mentions)
        if "since_id" in request.query:
            items = [t for t in items if int(t["id"]) > int(request.query["since_id"])]
        if "start_time" in request.query:
            st = datetime.fromisoformat(request.query["start_time"].replace("Z", "+00:00"))
            items = [t for t in items if datetime.fromisoformat(t["created_at"].replace("Z", "+00:00")) >= st]
        page, token = self._page(items, request)
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if token:
            meta["next_token"] = token
        out: dict[str, Any] = {"meta": meta}
        if page:
            out["data"] = page
            out["includes"] = self._includes(page, "author_id")
            expansions = request.query.get("expansions", "").split(",")
            if "referenced_tweets.id" in expansions:
                # As X does: the posts a page quotes or replies to, with their authors when asked.
                refs = [self.posts[r["id"]] for t in page for r in t.get("referenced_tweets") or []
                        if r["id"] in self.posts]
                if refs:
                    out["includes"]["tweets"] = refs
                    if "referenced_tweets.id.author_id" in expansions:
                        known = {u["id"] for u in out["includes"].get("users", [])}
                        out["includes"].setdefault("users", []).extend(
                            self.users[r["author_id"]] for r in refs if r["author_id"] not in known)
        return web.json_response(out)

    async def _dm_events(self, request: web.Request) -> web.Response:
        page, token = self._page(list(self.dm_events), request)
        meta: dict[str, Any] = {"result_count": len(page)}
        if token:
            meta["next_token"] = token
        out: dict[str, Any] = {"meta": meta}
        if page:
            out["data"] = page
            out["includes"] = self._includes(page, "sender_id")
        return web.json_response(out)

    async def _create_tweet(self, request: web.Request) -> web.Response:
        body = await request.json()
        text = body.get("text", "")
        if x_weighted_length(text) > 280:
            return web.json_response({"errors": [{"message": "Tweet text is too long"}], "title": "Invalid Request",
                                      "detail": "One or more parameters to your request was invalid.", "status": 400},
                                     status=400)
        reply_to = str((body.get("reply") or {}).get("in_reply_to_tweet_id") or "")
        if reply_to in self.deleted_tweets:
            return web.json_response({"detail": "You attempted to reply to a Tweet that is deleted or not visible "
                                                "to you.", "title": "Forbidden", "status": 403}, status=403)
        if any(t["text"] == text for t in self.tweets):
            return web.json_response({"detail": "You are not allowed to create a Tweet with duplicate content.",
                                      "title": "Forbidden", "status": 403}, status=403)
        tid = self.next_id()
        self.tweets.append({"id": tid, **body})
        return web.json_response({"data": {"id": tid, "text": text, "edit_history_tweet_ids": [tid]}}, status=201)

    async def _create_dm(self, request: web.Request) -> web.Response:
        pid = request.match_info["pid"]
        body = await request.json()
        text = body.get("text", "")
        if pid in self.dms_closed:
            return web.json_response({"detail": "You cannot send messages to this user.", "title": "Forbidden",
                                      "status": 403}, status=403)
        if not text or len(text) > 10_000:
            return web.json_response({"detail": "text must be 1..10000 characters", "title": "Invalid Request",
                                      "status": 400}, status=400)
        eid = self.next_id()
        conv = _dm_conv(pid, self.account_id)
        self.dms.append({"id": eid, "to": pid, "text": text})
        # X lists our own DMs among the account's DM events too (the poller must skip them).
        self.dm_events.append({"id": eid, "event_type": "MessageCreate", "text": text, "sender_id": self.account_id,
                               "dm_conversation_id": conv, "created_at": _now()})
        return web.json_response({"data": {"dm_conversation_id": conv, "dm_event_id": eid}}, status=201)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dm_conv(a: str, b: str) -> str:
    lo, hi = sorted((a, b), key=int)
    return f"{lo}-{hi}"
