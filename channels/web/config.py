"""Config of the web chat widget channel (kept import-light: no FastAPI here)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from bot.config import ChannelSettings
from bot.files import DEFAULT_ATTACHMENT_TYPES


class WebChannelSettings(ChannelSettings):
    type: Literal["web"] = "web"
    reply_mailbox: ClassVar[bool] = True  # replies go straight into the session's mailbox (bot.mailbox)
    title_en: str = "Support"
    title_zh: str = "在线客服"
    # Origins allowed to open the widget's WebSocket ("*" = any page may embed the widget).
    allowed_origins: tuple[str, ...] = ("*",)
    ping_interval_s: Annotated[float, Field(gt=0)] = 25.0
    # Files users attach in the widget (screenshots of a transfer, a statement): at most this big,
    # of these types, stored under attachments_dir (relative to the config file's folder; default
    # <data_dir>/web/attachments). Text files are redacted before they are stored.
    max_attachment_bytes: Annotated[int, Field(ge=1, le=100 * 1024 * 1024)] = 10 * 1024 * 1024
    allowed_attachment_types: tuple[str, ...] = DEFAULT_ATTACHMENT_TYPES
    attachments_dir: str | None = None
    # Quotas, checked before a file is written: bytes one widget session may upload in its
    # lifetime (30 days), and bytes all widget uploads together may occupy in attachments_dir.
    max_upload_bytes_per_session: Annotated[int, Field(ge=1)] = 50 * 1024 * 1024
    max_upload_bytes_total: Annotated[int, Field(ge=1)] = 5 * 1024 * 1024 * 1024

    @field_validator("allowed_attachment_types")
    @classmethod
    def _known_types(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        # Every accepted type needs a content check (channels/web/sniff.py), else it is refused.
        from channels.web.sniff import RULES

        unknown = [t for t in v if t not in RULES]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: no content check for this type (use some of {', '.join(RULES)})")
        return v
