"""Webhook administration for `switchboard telegram set-webhook|delete-webhook|info`.

Registering the webhook is an explicit ops step, never a side effect of starting the bot (Rasa's
Telegram channel calls setWebhook while wiring up; a restart then races other instances).
"""

from __future__ import annotations

from typing import Any

from telegram.error import InvalidToken, TelegramError

from bot.errors import ConfigError, PermanentChannelError
from channels.telegram.adapter import build_bot, scrub
from channels.telegram.config import TelegramChannelSettings
from channels.telegram.normalize import ALLOWED_UPDATES


def _fail(cfg: TelegramChannelSettings, e: TelegramError) -> PermanentChannelError:
    if isinstance(e, InvalidToken):
        return PermanentChannelError("the Bot API rejected the token (revoked or mistyped?)")
    return PermanentChannelError(f"Bot API error: {scrub(cfg, e)}")


async def set_webhook(cfg: TelegramChannelSettings, *, drop_pending: bool = False) -> str:
    """Point Telegram at public_url + webhook_path with our secret token; returns the URL."""
    url = cfg.webhook_url()
    if cfg.mode != "webhook":
        raise ConfigError("channels.telegram.mode: is 'polling'; set it to 'webhook' to use a webhook")
    if url is None:
        raise ConfigError("channels.telegram.public_url: required to register the webhook (https://…)")
    assert cfg.webhook_secret is not None  # the config model requires it in webhook mode
    try:
        async with build_bot(cfg) as bot:
            await bot.set_webhook(
                url,
                secret_token=cfg.webhook_secret.get_secret_value(),
                allowed_updates=list(ALLOWED_UPDATES),
                max_connections=cfg.max_webhook_connections,
                drop_pending_updates=drop_pending,
            )
    except TelegramError as e:
        raise _fail(cfg, e) from None
    return url


async def delete_webhook(cfg: TelegramChannelSettings, *, drop_pending: bool = False) -> None:
    try:
        async with build_bot(cfg) as bot:
            await bot.delete_webhook(drop_pending_updates=drop_pending)
    except TelegramError as e:
        raise _fail(cfg, e) from None


async def info(cfg: TelegramChannelSettings) -> dict[str, Any]:
    """The bot's identity and webhook status, as plain values for printing."""
    try:
        async with build_bot(cfg) as bot:
            wh = await bot.get_webhook_info()
            return {
                "bot": f"@{bot.username} (id {bot.id})",
                "mode (config)": cfg.mode,
                "webhook url": wh.url or "(none: polling or not set)",
                "expected url": cfg.webhook_url() or "(public_url not set)",
                "pending updates": wh.pending_update_count,
                "allowed updates": ", ".join(wh.allowed_updates or ()) or "(all)",
                "max connections": wh.max_connections or "",
                "last error": (f"{wh.last_error_date:%Y-%m-%d %H:%M:%S} {wh.last_error_message}"
                               if wh.last_error_date else ""),
            }
    except TelegramError as e:
        raise _fail(cfg, e) from None
