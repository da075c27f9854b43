"""Config of the web chat widget channel (kept import-light: no FastAPI here)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from bot.config import ChannelSettings


class WebChannelSettings(ChannelSettings):
    type: Literal["web"] = "web"
    title_en: str = "Support"
    title_zh: str = "在线客服"
    # Origins allowed to open the widget's WebSocket ("*" = any page may embed the widget).
    allowed_origins: tuple[str, ...] = ("*",)
    ping_interval_s: Annotated[float, Field(gt=0)] = 25.0
