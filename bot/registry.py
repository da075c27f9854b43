"""Channel registry: config type name → where its config model and adapter live.

Modules are imported only when a channel is configured, so an unconfigured channel (and its
third-party SDK) is never imported and cannot break the start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import ChannelSettings

# type → (config model "module:Class", adapter "module:Class")
CHANNELS: dict[str, tuple[str, str]] = {
    "web": ("channels.web.config:WebChannelSettings", "channels.web.adapter:WebChannel"),
    "twitter": ("channels.twitter.config:TwitterChannelSettings", "channels.twitter.adapter:TwitterChannel"),
    "telegram": ("channels.telegram.config:TelegramChannelSettings", "channels.telegram.adapter:TelegramChannel"),
    "email": ("channels.email.config:EmailChannelSettings", "channels.email.adapter:EmailChannel"),
}


def _load(ref: str) -> Any:
    mod, _, name = ref.partition(":")
    return getattr(importlib.import_module(mod), name)


def channel_config_model(type_: str) -> type[ChannelSettings] | None:
    ref = CHANNELS.get(type_)
    return _load(ref[0]) if ref else None


def channel_adapter(type_: str) -> Any:
    return _load(CHANNELS[type_][1])
