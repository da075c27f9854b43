"""Config of the X (Twitter) channel.

Kept import-light on purpose: the config loader imports this module whenever a `twitter` section
exists, and nothing here may pull in tweepy — the SDK is imported only with the adapter.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from bot.config import ChannelSettings


class TwitterChannelSettings(ChannelSettings):
    """Credentials, receive mode and public-reply policy of the X support account.

    Sending tweets and DMs needs *user* context: either the four OAuth 1.0a values (consumer key
    and secret of the app, access token and secret of the support account) or an OAuth 2.0 user
    access token in `bearer_token`. The consumer secret is also what X signs webhook deliveries
    with, so webhook mode requires it.
    """

    type: Literal["twitter"] = "twitter"
    mode: Literal["webhook", "polling"] = "polling"

    bearer_token: SecretStr | None = None
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None

    # The support account. `account_id` is looked up with GET /2/users/me at start when empty;
    # `handle` (without "@") is only used for logs and docs.
    account_id: Annotated[str | None, Field(pattern=r"^\d{1,25}$")] = None
    handle: Annotated[str | None, Field(pattern=r"^@?\w{1,15}$")] = None

    # Account Activity API webhook (GET = CRC challenge, POST = signed events).
    webhook_path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9/_-]*$")] = "/webhooks/twitter"

    # Polling: GET /2/users/:id/mentions and GET /2/dm_events. Mind the plan's rate limits
    # (Basic: a handful of requests per 15 minutes); webhook mode is for real volume.
    poll_interval_s: Annotated[float, Field(gt=0)] = 90.0
    # With no saved checkpoint (first start), take mentions/DMs of this many recent seconds, so a
    # new deployment does not answer a year of old mentions.
    first_poll_lookback_s: Annotated[int, Field(ge=0)] = 900
    backoff_max_s: Annotated[float, Field(gt=0)] = 300.0
    request_timeout_s: Annotated[float, Field(gt=0)] = 20.0

    # Public replies: shortened to `public_max_chars` (X's weighted count) with this link appended.
    help_url: str | None = None
    public_max_chars: Annotated[int, Field(ge=40, le=25_000)] = 280
    dm_max_chars: Annotated[int, Field(ge=100, le=10_000)] = 10_000

    @field_validator("bearer_token", "consumer_key", "consumer_secret", "access_token", "access_token_secret")
    @classmethod
    def _empty_is_unset(cls, v: SecretStr | None) -> SecretStr | None:
        # `${X_BEARER_TOKEN:-}` in config.yaml gives "": the same as not configured.
        return v if v is not None and v.get_secret_value().strip() else None

    @field_validator("handle")
    @classmethod
    def _no_at(cls, v: str | None) -> str | None:
        return v.lstrip("@") if v else v

    @property
    def oauth1(self) -> bool:
        return all((self.consumer_key, self.consumer_secret, self.access_token, self.access_token_secret))

    @model_validator(mode="after")
    def _credentials(self) -> TwitterChannelSettings:
        if not (self.oauth1 or self.bearer_token):
            raise ValueError(
                "needs consumer_key, consumer_secret, access_token and access_token_secret "
                "(OAuth 1.0a) or a user-context bearer_token"
            )
        if self.mode == "webhook" and not self.consumer_secret:
            raise ValueError("webhook mode needs consumer_secret (X signs every delivery with it)")
        if self.help_url is not None and not self.help_url.startswith(("https://", "http://")):
            raise ValueError("help_url must be an http(s) URL")
        return self
