"""`config.yaml` → validated pydantic v2 settings.

Rules: unknown keys are errors (typos must not be silently ignored), `${VAR}` / `${VAR:-default}`
pull secrets from the environment, and any problem becomes one `ConfigError` line naming the key.
Channel sections are validated by the config model each channel declares beside its code,
imported through the registry only when that channel is configured.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.errors import ConfigError
from bot.models import Priority

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
DEFAULT_CONFIG = "config.yaml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RedisSettings(Section):
    url: str = "redis://127.0.0.1:6379/0"
    # `switchboard up` starts a private redis-server (AOF on, under data/redis) when nothing answers.
    start_if_unreachable: bool = True
    # Connections per process (redis-py's default of 100 is reached by ~100 widget sessions opening
    # at once; past the limit an operation fails and the user is asked to retry).
    max_connections: Annotated[int, Field(ge=8, le=10_000)] = 1_000

    # Durability on failover (see README "Scaling"): after the intake script, the router's commit
    # and a consumer's read, wait until this many replicas have the write (Redis `WAIT`); an intake
    # that is not replicated in `wait_timeout_ms` is refused (the channel retries; dedupe keeps it
    # once). 0 = off (a single Redis without replicas).
    wait_replicas: Annotated[int, Field(ge=0, le=16)] = 0
    wait_timeout_ms: Annotated[int, Field(ge=10, le=60_000)] = 1_000

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        from bot.redisconn import parse_url

        parse_url(v)  # raises ValueError naming what is wrong
        return v

    @property
    def is_cluster(self) -> bool:
        return self.url.startswith(("redis+cluster://", "rediss+cluster://"))


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///data/switchboard.db"


class QueueSettings(Section):
    inbound_stream: str = "inbound"
    group: str = "routers"
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    claim_idle_ms: Annotated[int, Field(ge=100)] = 30_000
    block_ms: Annotated[int, Field(ge=10)] = 1_000
    batch: Annotated[int, Field(ge=1, le=1000)] = 64
    # Acknowledged entries are kept this long for inspection; unacknowledged ones are never trimmed.
    retention_s: Annotated[int, Field(ge=0)] = 24 * 3600
    dedupe_ttl_s: Annotated[int, Field(ge=60)] = 7 * 24 * 3600
    order_wait_ms: Annotated[int, Field(ge=10)] = 5_000
    # /readyz answers 503 when a stream consumer has not looped for this long.
    stale_consumer_s: Annotated[float, Field(gt=0)] = 30.0
    # Messages one sender (channel + user) may put on the queue per minute; 0 = no limit. Over it,
    # messages are refused (not queued) and the sender is told once per minute.
    user_rate_per_minute: Annotated[int, Field(ge=0)] = 30
    # The inbound, outbound and handoff streams are split into this many partitions by conversation
    # (a Redis Cluster spreads them over its masters). 1 keeps the single-stream key names.
    partitions: Annotated[int, Field(ge=1, le=1024)] = 1
    # The partitions this router consumes (empty = all), e.g. [0, 1] on one host and [2, 3] on another.
    partitions_owned: list[Annotated[int, Field(ge=0)]] = []

    @model_validator(mode="after")
    def _owned(self) -> QueueSettings:
        bad = [p for p in self.partitions_owned if p >= self.partitions]
        if bad:
            raise PydanticCustomError("queue_config", "partitions_owned: {bad} not below partitions ({n})",
                                      {"bad": bad, "n": self.partitions})
        return self


class NLUSettings(Section):
    urls: Annotated[list[str], Field(min_length=1)] = ["http://127.0.0.1:5005"]
    timeout_s: Annotated[float, Field(gt=0)] = 5.0
    backoff_max_s: Annotated[float, Field(gt=0)] = 10.0
    # `switchboard up` / `route` start Rasa from rasa_venv when the first URL does not answer.
    manage: bool = True
    rasa_venv: str = ".venv-rasa"
    project_dir: str = "intents"
    model_dir: str = "models"
    confidence_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    # A parse cache keyed by normalized redacted text + model version (FAQ traffic repeats).
    cache_size: Annotated[int, Field(ge=0)] = 10_000
    # Requests waiting at one Rasa server at a time (it parses one message at a time).
    max_in_flight: Annotated[int, Field(ge=1, le=256)] = 4


class RouterSettings(Section):
    concurrency: Annotated[int, Field(ge=1, le=1024)] = 32
    escalate_after_fallbacks: Annotated[int, Field(ge=1)] = 2
    answers_dir: str = "intents/answers"


class WebSettings(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    max_message_chars: Annotated[int, Field(ge=1, le=20_000)] = 2_000
    # Per-session and per-IP message rate limits for the widget (messages per minute); rate_per_ip
    # also bounds the new widget sessions one address may open per minute.
    rate_per_session: Annotated[int, Field(ge=1)] = 30
    rate_per_ip: Annotated[int, Field(ge=1)] = 120
    history: Annotated[int, Field(ge=10, le=5000)] = 200
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For / -Proto are believed.
    # Empty (the default): the client address is the TCP peer's, whatever headers say.
    trusted_proxies: tuple[str, ...] = ()
    # /metrics: with a token, scrapers send `Authorization: Bearer <token>`; without one, only
    # clients on this host (loopback) get an answer.
    metrics_token: SecretStr | None = None
    # Strict-Transport-Security on every response served over HTTPS (0 = not sent).
    hsts_max_age_s: Annotated[int, Field(ge=0)] = 31_536_000
    # The address users reach this server at (e.g. "https://support.example.com"): links sent to
    # users (the ticket page) start with it. Unset: no links are sent.
    public_url: str | None = None

    @field_validator("metrics_token", "public_url", mode="before")
    @classmethod
    def _empty_token(cls, v: object) -> object:
        return None if v == "" else v

    # After field validation, so the token is never echoed into the error line.
    @model_validator(mode="after")
    def _token_strength(self) -> WebSettings:
        if self.metrics_token is not None and len(self.metrics_token.get_secret_value()) < 24:
            raise PydanticCustomError("web_config", "metrics_token: use at least 24 random characters "
                                      "(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
        if self.public_url is not None and not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", self.public_url):
            raise PydanticCustomError("web_config", "public_url: an http(s) address such as "
                                      "https://support.example.com (no query or fragment)")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not an IP address or CIDR network") from None
        return v


class SLATarget(Section):
    first_response_min: Annotated[int, Field(ge=1)]
    resolution_min: Annotated[int, Field(ge=1)]


def _default_sla() -> dict[Priority, SLATarget]:
    return {
        Priority.URGENT: SLATarget(first_response_min=15, resolution_min=240),
        Priority.HIGH: SLATarget(first_response_min=60, resolution_min=8 * 60),
        Priority.NORMAL: SLATarget(first_response_min=4 * 60, resolution_min=24 * 60),
        Priority.LOW: SLATarget(first_response_min=24 * 60, resolution_min=72 * 60),
    }


def _default_vip_sla() -> dict[int, dict[Priority, SLATarget]]:
    return {1: {
        Priority.URGENT: SLATarget(first_response_min=10, resolution_min=180),
        Priority.HIGH: SLATarget(first_response_min=30, resolution_min=6 * 60),
        Priority.NORMAL: SLATarget(first_response_min=60, resolution_min=12 * 60),
        Priority.LOW: SLATarget(first_response_min=4 * 60, resolution_min=48 * 60),
    }}


class SLASettings(Section):
    targets: dict[Priority, SLATarget] = Field(default_factory=_default_sla)
    # Per VIP tier (the entry of the highest tier not above the contact's), replacing `targets`.
    vip_targets: dict[int, dict[Priority, SLATarget]] = Field(default_factory=_default_vip_sla)
    warn_at: Annotated[float, Field(gt=0, lt=1)] = 0.75


class HandoffSettings(Section):
    # Round-robin assignment of new tickets among agents who are online in the console.
    auto_assign: bool = False
    # VIP level per contact identity ("<channel>:<source id>"), e.g. {"telegram:12345": 2}.
    vip: dict[str, int] = Field(default_factory=dict)
    # POSTed a JSON event on SLA warnings and breaches (optional).
    sla_webhook: str | None = None
    sla_check_s: Annotated[float, Field(gt=0)] = 5.0
    session_hours: Annotated[int, Field(ge=1, le=168)] = 12
    # Sign-in throttling: wrong passwords per (account, client address) and per account from any
    # address, within lockout_min; past either, sign-in is refused until the window ends.
    max_login_failures: Annotated[int, Field(ge=1)] = 5
    max_account_failures: Annotated[int, Field(ge=1)] = 50
    lockout_min: Annotated[int, Field(ge=1)] = 15
    # An open console WebSocket re-checks its session this often (disabling an agent also closes
    # their sockets at once).
    ws_recheck_s: Annotated[float, Field(gt=0)] = 30.0
    # The console's WebSocket accepts pages of its own origin (the Host header). Behind a proxy
    # that rewrites Host, list the public origin(s) here, e.g. ["https://support.example.com"].
    console_origins: tuple[str, ...] = ()
    # Agents' answers ready to insert, per language.
    canned_file: str = "handoff/canned.yml"
    # A VIP's new ticket waits this long for their account manager before it joins the queue.
    vip_offer_min: Annotated[int, Field(ge=1, le=24 * 60)] = 10


class SelfServiceSettings(Section):
    # Help-centre articles (Markdown, see intents/help.py), served at /help and linked from answers.
    help_dir: str = "help"
    # The ticket page link in every acknowledgement: valid this many days (revocable any time).
    link_days: Annotated[int, Field(ge=1, le=365)] = 30
    # What a user may add on the ticket page: files per ticket and bytes per file; messages per minute.
    max_files_per_ticket: Annotated[int, Field(ge=0, le=100)] = 10
    max_upload_bytes: Annotated[int, Field(ge=1)] = 10 * 1024 * 1024
    rate_per_minute: Annotated[int, Field(ge=1)] = 10
    # Callback requests (VIP users, theft cases): the time zone of a number that does not tell its
    # own, and how long after the user's window opens the call is due.
    callbacks: bool = True
    default_tz: str = "UTC"
    callback_sla_min: Annotated[int, Field(ge=1)] = 30

    @field_validator("default_tz")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except Exception:
            raise PydanticCustomError("selfservice_config", "default_tz: an IANA time zone such as Asia/Shanghai "
                                      "or Europe/London") from None
        return v


class LoggingSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


class ChannelSettings(Section):
    """Base of every channel's config model; `type` selects the adapter in the registry."""

    type: str
    # A channel whose clients read replies from a Redis mailbox (`bot.mailbox`, the web widget):
    # the router writes its replies there in its commit instead of queueing them for a sender.
    reply_mailbox: ClassVar[bool] = False


class Settings(Section):
    redis: RedisSettings = RedisSettings()
    database: DatabaseSettings = DatabaseSettings()
    queue: QueueSettings = QueueSettings()
    nlu: NLUSettings = NLUSettings()
    router: RouterSettings = RouterSettings()
    web: WebSettings = WebSettings()
    sla: SLASettings = SLASettings()
    handoff: HandoffSettings = HandoffSettings()
    selfservice: SelfServiceSettings = SelfServiceSettings()
    logging: LoggingSettings = LoggingSettings()
    channels: tuple[ChannelSettings, ...] = ()
    # Directory the relative paths above are resolved against (the config file's folder).
    base_dir: Path = Path(".")
    data_dir: str = "data"

    def path(self, p: str | Path) -> Path:
        q = Path(p)
        return q if q.is_absolute() else (self.base_dir / q)

    def channel(self, type_: str) -> ChannelSettings | None:
        for c in self.channels:
            if c.type == type_:
                return c
        return None


def _expand(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            got = os.environ.get(name)
            if got is None or got == "":
                if default is not None:
                    return default
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return got

        return ENV_REF.sub(sub, value)
    return value


def _loc(loc: tuple[Any, ...], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part)
            if not name.isprintable() or not name:
                name = repr(name)  # a key with a newline must not break the one-line error
            out += f".{name}" if out else name
    return out or "(top level)"


def _one_line(e: ValidationError, prefix: str = "") -> str:
    err = e.errors(include_url=False)[0]
    where = _loc(tuple(err["loc"]), prefix)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], dict | list):
        inp = err["input"]
        if not (isinstance(inp, SecretStr)):
            msg += f" (got {inp!r})"
    more = len(e.errors()) - 1
    return f"{where}: {msg}" + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def parse_settings(raw: dict[str, Any] | None, base_dir: Path = Path(".")) -> Settings:
    """Validate an already-loaded mapping (used by tests and by `load_settings`)."""
    from bot.registry import channel_config_model  # lazy: keeps channel modules unimported

    raw = dict(raw or {})
    if not isinstance(raw, dict):
        raise ConfigError("(top level): must be a mapping of sections")
    raw = _expand(raw, "")
    channels_raw = raw.pop("channels", None) or []
    if not isinstance(channels_raw, list):
        raise ConfigError("channels: must be a list of channel sections, each with a `type`")
    channels: list[ChannelSettings] = []
    seen: set[str] = set()
    for i, item in enumerate(channels_raw):
        where = f"channels[{i}]"
        if not isinstance(item, dict) or "type" not in item:
            raise ConfigError(f"{where}: must be a mapping with a `type` (web, telegram, email, twitter)")
        ctype = item["type"]
        model = channel_config_model(ctype)
        if model is None:
            raise ConfigError(f"{where}.type: unknown channel type {ctype!r}")
        if ctype in seen:
            raise ConfigError(f"{where}.type: channel {ctype!r} is configured twice")
        seen.add(ctype)
        try:
            channels.append(model.model_validate(item))
        except ValidationError as e:
            raise ConfigError(_one_line(e, where)) from None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_one_line(e)) from None
    return settings.model_copy(update={"channels": tuple(channels), "base_dir": base_dir})


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate the config file (default: $SWITCHBOARD_CONFIG or ./config.yaml)."""
    p = Path(path or os.environ.get("SWITCHBOARD_CONFIG") or DEFAULT_CONFIG)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark else str(p)
        raise ConfigError(f"{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{p}: must be a mapping of sections")
    try:
        return parse_settings(raw, base_dir=p.resolve().parent)
    except ConfigError as e:
        raise ConfigError(f"{p.name}: {e}") from None
