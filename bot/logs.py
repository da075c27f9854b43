"""structlog setup: readable lines in a terminal, JSON lines otherwise. Event names are dotted
verbs (`message.received`, `decision.made`); texts are logged only after redaction."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog


def _orjson_dumps(obj: Any, **_kw: Any) -> bytes:
    return orjson.dumps(obj, default=str)


# Fields that may carry what a person wrote: an error echoing its input (pydantic does), a
# traceback, a quoted subject. Redacted on the way out, whoever logged them.
_FREE_TEXT = frozenset({"text", "error", "exception", "reason", "subject", "body", "detail", "message", "trace"})


def _redact_free_text(_logger: Any, _method: str, ev: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for k, v in ev.items():
        if isinstance(v, str) and v and (k in _FREE_TEXT or k.endswith("_text")):
            from bot.redact import redact  # only when there is free text (most lines have none)

            ev[k] = redact(v).text
    return ev


def setup_logging(level: str = "info", fmt: str = "auto", role: str | None = None) -> None:
    lvl = getattr(logging, level.upper(), logging.INFO)
    json_out = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if role:
        processors.insert(0, lambda _l, _m, ev: {**ev, "role": ev.get("role", role)})
    processors.append(structlog.processors.format_exc_info)
    processors.append(_redact_free_text)
    if json_out:
        # orjson straight to bytes: a third of the cost of json.dumps + print per line.
        processors.append(structlog.processors.JSONRenderer(serializer=_orjson_dumps))
        factory: structlog.typing.WrappedLogger = structlog.BytesLoggerFactory(file=sys.stderr.buffer)
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
        factory = structlog.PrintLoggerFactory(file=sys.stderr)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    # HTTP client libraries log request URLs at INFO; Telegram's contain the bot token.
    for noisy in ("httpx", "httpcore", "telegram", "aiohttp.access", "tweepy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
