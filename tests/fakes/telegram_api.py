"""A local HTTP server that speaks enough of the Telegram Bot API for python-telegram-bot to run
against it for real (`base_url=fake.base_url`): it records every call, feeds updates to
getUpdates, and can be told to fail the next calls of a method (429 + retry_after, 403, 400, 5xx).

Strict where Telegram is: a `message_thread_id` that is not an open topic of the chat is refused
("message thread not found", "TOPIC_CLOSED"), a reply to a deleted message is refused unless
`allow_sending_without_reply`, a user who never opened the bot's private chat cannot be written
to first (403), and a message is deleted only where the bot may delete it.

Shape after opsdroid's `ExternalAPIMockServer`: runs on the test's own event loop, port 0.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

BOT_ID = 424242
BOT_USERNAME = "sb_test_bot"
TOKEN = f"{BOT_ID}:AAHtestTOKENtestTOKENtestTOKEN12345"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() when the call arrived
    status: int = 200


@dataclass
class Failure:
    status: int
    description: str
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None


@dataclass
class FakeBotAPI:
    """Records calls in `calls`; `updates` is what getUpdates serves (honouring `offset`)."""

    bot_id: int = BOT_ID
    username: str = BOT_USERNAME
    token: str = TOKEN
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    chat_types: dict[int, str] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # file_id -> content, for getFile + download
    reject_token: bool = False
    # Forum supergroups: chat id -> {topic thread id: "open" | "closed"}; a deleted topic is absent.
    # The General topic (no thread id) is closed when its chat is in `general_closed`.
    topics: dict[int, dict[int, str]] = field(default_factory=dict)
    general_closed: set[int] = field(default_factory=set)
    # Users who never pressed Start in the bot's private chat: the bot may not write to them first.
    not_started: set[int] = field(default_factory=set)
    # (chat id, message id) of deleted messages; chats where the bot is an admin that may delete.
    deleted: set[tuple[int, int]] = field(default_factory=set)
    can_delete: set[int] = field(default_factory=set)
    # Serve HTTPS with this context (Telegram's own scheme), plain HTTP without.
    tls: ssl.SSLContext | None = None
    _failures: dict[str, list[Failure | None]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _new_update: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> FakeBotAPI:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._new_update.set()  # release a long poll in flight
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._port}/file/bot"

    @property
    def _scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    # -- test controls ----------------------------------------------------------------------------
    def push_update(self, update: dict[str, Any]) -> None:
        self.updates.append(update)
        self._new_update.set()

    def fail_next(self, method: str, times: int = 1, *, status: int = 429, description: str = "",
                  retry_after: int | None = None, migrate_to_chat_id: int | None = None, skip: int = 0) -> None:
        """Answer the next `times` calls of `method` (after `skip` good ones) with an error; the
        failed calls are recorded with their status."""
        desc = description or {429: "Too Many Requests: retry after", 403: "Forbidden: bot was blocked by the user",
                               400: "Bad Request: chat not found"}.get(status, "Internal Server Error")
        q = self._failures.setdefault(method, [])
        q.extend([None] * skip)
        q.extend(Failure(status, desc, retry_after, migrate_to_chat_id) for _ in range(times))

    def of(self, method: str, *, ok_only: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)]

    def sent(self) -> list[dict[str, Any]]:
        """Params of the sendMessage calls that succeeded, in order."""
        return [c.params for c in self.of("sendMessage")]

    async def wait_for(self, method: str, n: int = 1, within: float = 10.0) -> list[Call]:
        deadline = time.monotonic() + within
        while len(self.of(method)) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method}: {len(self.of(method))} of {n} calls after {within}s")
            await asyncio.sleep(0.02)
        return self.of(method)

    # -- the API ----------------------------------------------------------------------------------
    async def _handle(self, req: web.Request) -> web.Response:
        method = req.match_info["method"]
        # Like Telegram: parameters in the query string, a form body or a JSON body.
        body = await req.post() if req.content_type != "application/json" else _form_like(await req.read())
        params = _decode({**req.query, **body})
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        if self.reject_token or req.match_info["token"] != self.token:
            call.status = 401
            return _json({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
        queue = self._failures.get(method)
        f = queue.pop(0) if queue else None
        if f is not None:
            call.status = f.status
            answer: dict[str, Any] = {"ok": False, "error_code": f.status, "description": f.description}
            if f.retry_after is not None:
                answer["parameters"] = {"retry_after": f.retry_after}
            if f.migrate_to_chat_id is not None:
                answer["parameters"] = {"migrate_to_chat_id": f.migrate_to_chat_id}
            return _json(answer, f.status)
        handler = getattr(self, f"_m_{method}", None)
        try:
            result = await handler(params) if handler else True
        except _BadRequest as e:
            call.status = 400
            return _json({"ok": False, "error_code": 400, "description": str(e)}, 400)
        except _Forbidden as e:
            call.status = 403
            return _json({"ok": False, "error_code": 403, "description": str(e)}, 403)
        return _json({"ok": True, "result": result})

    async def _m_getFile(self, p: dict[str, Any]) -> Any:
        fid = str(p["file_id"])
        if fid not in self.files:
            raise _BadRequest("Bad Request: invalid file_id")
        return {"file_id": fid, "file_unique_id": f"u-{fid}", "file_size": len(self.files[fid]),
                "file_path": f"photos/{fid}.bin"}

    async def _file(self, req: web.Request) -> web.Response:
        self.calls.append(Call("download", {"path": req.match_info["path"]}, time.monotonic()))
        fid = req.match_info["path"].removeprefix("photos/").removesuffix(".bin")
        if req.match_info["token"] != self.token or fid not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[fid], content_type="application/octet-stream")

    async def _m_getMe(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Switchboard", "username": self.username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _check_chat(self, chat_id: int, p: dict[str, Any]) -> None:
        """What Telegram refuses before it sends anything to a chat."""
        if chat_id > 0 and chat_id in self.not_started:
            raise _Forbidden("Forbidden: bot can't initiate conversation with a user")
        thread = p.get("message_thread_id")
        if thread is not None:
            state = self.topics.get(chat_id, {}).get(int(thread))
            if state is None:
                raise _BadRequest("Bad Request: message thread not found")
            if state == "closed":
                raise _BadRequest("Bad Request: TOPIC_CLOSED")
        elif chat_id in self.general_closed:
            raise _BadRequest("Bad Request: TOPIC_CLOSED")

    async def _m_sendChatAction(self, p: dict[str, Any]) -> bool:
        self._check_chat(int(p["chat_id"]), p)
        return True

    async def _m_deleteMessage(self, p: dict[str, Any]) -> bool:
        chat_id, mid = int(p["chat_id"]), int(p["message_id"])
        if chat_id not in self.can_delete or (chat_id, mid) in self.deleted:
            raise _BadRequest("Bad Request: message can't be deleted")
        self.deleted.add((chat_id, mid))
        return True

    async def _m_sendMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(p["chat_id"])
        self._check_chat(chat_id, p)
        reply = p.get("reply_parameters")
        if isinstance(reply, dict) and (chat_id, int(reply["message_id"])) in self.deleted:
            if not reply.get("allow_sending_without_reply"):
                raise _BadRequest("Bad Request: message to be replied not found")
        msg: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": self.chat_types.get(chat_id, "private" if chat_id > 0 else "supergroup")},
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "Switchboard", "username": self.username},
            "text": p["text"],
        }
        if "reply_markup" in p:
            msg["reply_markup"] = p["reply_markup"]
        return msg

    async def _m_getUpdates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(p.get("offset") or 0)
        timeout = float(p.get("timeout") or 0)
        if offset:  # confirmation: Telegram forgets everything below the offset
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates and timeout:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout=min(timeout, 1.0))
            except TimeoutError:
                pass
        limit = int(p.get("limit") or 100)
        return self.updates[:limit]

    async def _m_setWebhook(self, p: dict[str, Any]) -> bool:
        self.webhook = {"url": p["url"], "secret_token": p.get("secret_token"),
                        "allowed_updates": p.get("allowed_updates"), "max_connections": p.get("max_connections")}
        return True

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> bool:
        self.webhook = {}
        return True

    async def _m_getWebhookInfo(self, p: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                                "pending_update_count": len(self.updates)}
        if self.webhook.get("allowed_updates"):
            info["allowed_updates"] = self.webhook["allowed_updates"]
        if self.webhook.get("max_connections"):
            info["max_connections"] = int(self.webhook["max_connections"])
        return info


class _BadRequest(Exception):
    pass


class _Forbidden(Exception):
    pass


def _decode(form: dict[str, Any]) -> dict[str, Any]:
    """PTB posts form fields; objects (reply_markup, reply_parameters, lists) arrive as JSON;
    an uploaded file becomes {filename, content_type, data}."""
    out: dict[str, Any] = {}
    for k, v in form.items():
        if isinstance(v, web.FileField):  # an upload: kept as it arrived (the request's file closes)
            out[k] = {"filename": v.filename, "content_type": v.content_type, "data": v.file.read()}
            continue
        if isinstance(v, str) and v[:1] in "{[":
            try:
                out[k] = orjson.loads(v)
                continue
            except orjson.JSONDecodeError:
                pass
        out[k] = v
    return out


def _form_like(raw: bytes) -> dict[str, Any]:
    """A JSON body's parameters as a form would carry them: scalars as their text (`501`,
    `true`), objects and lists as JSON (decoded by `_decode` like a form's), so a test sees the
    same params whichever encoding the client chose."""
    data = orjson.loads(raw) if raw else {}
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="a JSON body must be an object")
    return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in data.items()}


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


# -- update builders ------------------------------------------------------------------------------
_update_ids = itertools.count(int(time.time()) % 1_000_000 * 100)
_message_ids = itertools.count(1)


def next_update_id() -> int:
    return next(_update_ids)


def user(uid: int = 1001, *, lang: str | None = "en", first_name: str = "Ann") -> dict[str, Any]:
    u: dict[str, Any] = {"id": uid, "is_bot": False, "first_name": first_name}
    if lang:
        u["language_code"] = lang
    return u


def chat(chat_id: int, type_: str = "private") -> dict[str, Any]:
    c: dict[str, Any] = {"id": chat_id, "type": type_}
    if type_ != "private":
        c["title"] = "Exchange community"
    return c


def message(text: str | None = None, *, uid: int = 1001, chat_id: int | None = None, chat_type: str = "private",
            lang: str | None = "en", update_id: int | None = None, edited: bool = False,
            reply_to: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A `message` (or `edited_message`) update as Telegram sends it."""
    m: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": chat(chat_id if chat_id is not None else uid, chat_type),
        "from": user(uid, lang=lang),
        **extra,
    }
    if text is not None:
        m["text"] = text
        if text.startswith("/"):
            m["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if reply_to is not None:
        m["reply_to_message"] = reply_to
    if edited:
        m["edit_date"] = int(time.time())
    return {"update_id": update_id or next_update_id(), ("edited_message" if edited else "message"): m}


def bot_message(chat_id: int, text: str, *, chat_type: str = "private", message_id: int = 77,
                bot_id: int = BOT_ID) -> dict[str, Any]:
    return {"message_id": message_id, "date": int(time.time()), "chat": chat(chat_id, chat_type),
            "from": {"id": bot_id, "is_bot": True, "first_name": "Switchboard", "username": BOT_USERNAME},
            "text": text}


def callback(data: str, *, uid: int = 1001, chat_id: int | None = None, lang: str | None = "en",
             on_text: str = "Was this answer helpful?") -> dict[str, Any]:
    cid = chat_id if chat_id is not None else uid
    return {"update_id": next_update_id(), "callback_query": {
        "id": f"cq{next(_message_ids)}", "from": user(uid, lang=lang), "chat_instance": "ci1", "data": data,
        "message": bot_message(cid, on_text)}}


def photo(file_size: int, *, caption: str | None = None, uid: int = 1001, **kw: Any) -> dict[str, Any]:
    sizes = [
        {"file_id": "small-id", "file_unique_id": "small", "width": 90, "height": 60, "file_size": file_size // 20},
        {"file_id": "big-id", "file_unique_id": "big", "width": 1280, "height": 853, "file_size": file_size},
        {"file_id": "mid-id", "file_unique_id": "mid", "width": 320, "height": 213, "file_size": file_size // 5},
    ]
    extra: dict[str, Any] = {"photo": sizes}
    if caption is not None:
        extra["caption"] = caption
    return message(None, uid=uid, **extra, **kw)


def document(name: str, size: int, *, mime: str = "application/pdf", caption: str | None = None,
             uid: int = 1001, **kw: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {"document": {"file_id": f"doc-{name}", "file_unique_id": f"u-{name}", "file_name": name,
                                          "mime_type": mime, "file_size": size}}
    if caption is not None:
        extra["caption"] = caption
    return message(None, uid=uid, **extra, **kw)
