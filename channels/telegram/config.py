"""Config of the Telegram channel. Kept import-light: no `telegram` import here, so validating a
config file never loads the SDK."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bot.config import ChannelSettings
from bot.files import DEFAULT_ATTACHMENT_TYPES

# BotFather tokens look like "123456789:AA…"; the part before the colon is the bot's user id.
TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,100}$")
# Telegram accepts 1-256 characters A-Z, a-z, 0-9, _ and - as a webhook secret_token; the secret
# is all that stands between the webhook URL and a forged update, so we require at least 32 random
# ones (`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'` makes 43).
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
SECRET_MIN = 32
SECRET_HOWTO = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


class TelegramChannelSettings(ChannelSettings):
    """One Telegram bot. `mode: webhook` needs `webhook_secret` (checked on every request) and,
    to register the webhook with `switchboard telegram set-webhook`, `public_url`."""

    type: Literal["telegram"] = "telegram"
    token: SecretStr
    mode: Literal["webhook", "polling"] = "polling"
    webhook_secret: SecretStr | None = None
    # Where our web app receives updates; Telegram is told public_url + webhook_path.
    webhook_path: str = "/telegram/webhook"
    public_url: str | None = None
    # Bot API endpoints (tests point these at a local fake; a self-hosted Bot API server works too).
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    # Defaults to what getMe says; set it to recognise @mentions in groups before getMe answered.
    bot_username: str | None = None
    # Files above this are not accepted as attachments (the Bot API cannot download > 20 MB).
    max_attachment_bytes: Annotated[int, Field(ge=1, le=2_000_000_000)] = 20 * 1024 * 1024
    # MIME types kept as attachments ("image/*" allows a family); the same list as the widget's.
    allowed_attachment_types: tuple[str, ...] = DEFAULT_ATTACHMENT_TYPES
    # Long-polling wait per getUpdates call (seconds).
    poll_timeout_s: Annotated[int, Field(ge=0, le=50)] = 30
    # Read/write timeout of ordinary Bot API calls (seconds).
    request_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    # "typing…" in a private chat whose answer has not come within this many seconds (renewed
    # until it comes, at most 15 s after the user's last message); 0: never.
    typing_after_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    # Parallel webhook connections Telegram may open (setWebhook max_connections).
    max_webhook_connections: Annotated[int, Field(ge=1, le=100)] = 40

    @field_validator("webhook_secret", "public_url", "bot_username", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        # `${TELEGRAM_WEBHOOK_SECRET:-}` in a polling setup expands to "": that means "not set".
        return None if v == "" else v

    @field_validator("webhook_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/") or " " in v:
            raise ValueError("must be a URL path starting with /")
        return v

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("https://"):
            raise ValueError("must start with https:// (Telegram only delivers webhooks over HTTPS)")
        return v.rstrip("/") if v else v

    @field_validator("base_url", "base_file_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @field_validator("bot_username")
    @classmethod
    def _username(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.removeprefix("@")
        if not USERNAME_RE.match(v):
            raise ValueError("must be the bot's @username (letters, digits, underscores)")
        return v

    # Checked after field validation so a bad token is never echoed into the error line
    # (the config loader prints the offending input of field errors).
    @model_validator(mode="after")
    def _secrets(self) -> TelegramChannelSettings:
        def bad(msg: str) -> PydanticCustomError:  # no "Value error, " prefix in the config error line
            return PydanticCustomError("telegram_config", msg)

        if not TOKEN_RE.match(self.token.get_secret_value()):
            raise bad("token: does not look like a BotFather token (<digits>:<letters>)")
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else None
        if secret is not None and not SECRET_RE.match(secret):
            raise bad("webhook_secret: use 1-256 characters A-Z, a-z, 0-9, _ or -")
        if secret is not None and (len(secret) < SECRET_MIN or len(set(secret)) < 8):
            raise bad(f"webhook_secret: use at least {SECRET_MIN} random characters (make one with: {SECRET_HOWTO})")
        if self.mode == "webhook" and not secret:
            raise bad("webhook_secret: required in webhook mode (every request is checked against it)")
        return self

    @property
    def bot_id(self) -> int:
        """The bot's own user id, which is the token's prefix: lets us recognise replies to the
        bot even before getMe answered."""
        return int(self.token.get_secret_value().split(":", 1)[0])

    def webhook_url(self) -> str | None:
        return f"{self.public_url}{self.webhook_path}" if self.public_url else None
