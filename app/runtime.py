"""Wiring shared by the roles and the CLI: the Redis connection, the NLU client, the answers, the
channels from the config, the ticket service."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import redis.asyncio as aioredis

from bot.channel import Channel
from bot.config import Settings
from bot.logs import get_logger
from bot.registry import channel_adapter
from intents.answers import Answers
from intents.client import NLUClient
from intents.help import ReadMore
from intents.rasa import RasaPaths

log = get_logger("switchboard.runtime")
T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a role's main coroutine on uvloop when it is installed (it comes with
    uvicorn[standard]): about 8 % less CPU per routed message than asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(main)
    return uvloop.run(main)


def connect_redis(settings: Settings) -> aioredis.Redis:
    """One server, a Redis Cluster or a Sentinel master, by `redis.url` (see bot.redisconn)."""
    from bot.redisconn import connect

    return connect(settings.redis.url, max_connections=settings.redis.max_connections)


def rasa_paths(settings: Settings) -> RasaPaths:
    return RasaPaths(
        root=settings.base_dir.resolve(),
        venv=settings.path(settings.nlu.rasa_venv),
        project=settings.path(settings.nlu.project_dir),
        models=settings.path(settings.nlu.model_dir),
    )


def redis_host_port(settings: Settings) -> tuple[str, int] | None:
    u = urlparse(settings.redis.url)
    if u.scheme not in ("redis", "rediss"):
        return None
    return (u.hostname or "127.0.0.1", u.port or 6379)


def nlu_client(settings: Settings) -> NLUClient:
    n = settings.nlu
    return NLUClient(list(n.urls), timeout_s=n.timeout_s, backoff_max_s=n.backoff_max_s, cache_size=n.cache_size,
                     max_in_flight=n.max_in_flight)


def answers(settings: Settings) -> Answers:
    """The answer texts; a missing or empty answers folder stops the start (the bot would
    otherwise reply with nothing)."""
    from bot.errors import ConfigError

    root = settings.path(settings.router.answers_dir)
    try:
        ans = Answers(root)
    except ValueError as e:
        raise ConfigError(f"router.answers_dir: {e}") from None
    for lang in ("en", "zh"):
        if not ans.has("clarify", lang):
            raise ConfigError(f"router.answers_dir: no {lang} answers (with `clarify`) under {root}")
    return ans


def build_channels(settings: Settings, r: aioredis.Redis) -> list[Channel]:
    out: list[Channel] = []
    for cfg in settings.channels:
        cls = channel_adapter(cfg.type)
        out.append(cls.from_config(settings, cfg, r))
    return out


async def ticket_service(settings: Settings, r: aioredis.Redis, migrate: bool = False):
    """The ticket service on the configured database (applying migrations when asked)."""
    from handoff.db import make_engine, sessionmaker, upgrade
    from handoff.service import TicketService

    engine = make_engine(settings)
    if migrate:
        await upgrade(engine)
    return TicketService(settings, sessionmaker(engine), r), engine


def data_dir(settings: Settings) -> Path:
    d = settings.path(settings.data_dir)
    d.mkdir(parents=True, exist_ok=True)
    return d


def read_more(settings: Settings) -> ReadMore | None:
    """The answers' "Read more" links to help-centre articles (with web.public_url set)."""
    from intents.help import HelpArticles

    root = settings.path(settings.selfservice.help_dir)
    if not settings.web.public_url or not root.is_dir():
        return None
    try:
        return ReadMore(HelpArticles(root), settings.web.public_url)
    except ValueError as e:
        from bot.errors import ConfigError

        raise ConfigError(f"help articles: {e}") from None
