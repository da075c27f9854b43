"""Config of the email channel (IMAP in, SMTP out).

Kept import-light on purpose: the config loader imports this module whenever an `email` section
exists, and nothing here may pull in aioimaplib or aiosmtplib — they are imported only with the
adapter, so a config check never needs them.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from bot.config import ChannelSettings

ADDRESS_RE = re.compile(r"^[^@\s<>\"']+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")
MIME_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$")

IMAP_PORTS = {"ssl": 993, "starttls": 143, "plain": 143}
SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}

DEFAULT_ATTACHMENT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/heic",
    "application/pdf",
    "text/plain",
    "text/csv",
    "message/rfc822",
)


class EmailChannelSettings(ChannelSettings):
    """One support mailbox: read with IMAP (IDLE, or polling where the server lacks it), answered
    through SMTP from `address`.

    `smtp_username` / `smtp_password` default to the IMAP credentials (most providers use one
    login for both); set `smtp_auth: false` for a relay that takes no login (a local Postfix)."""

    type: Literal["email"] = "email"

    # Our support address: the From of everything we send, and how we recognise our own mail.
    address: str
    from_name: str = "Support"

    imap_host: str
    imap_port: Annotated[int | None, Field(ge=1, le=65535)] = None  # default: 993 ssl, 143 otherwise
    imap_security: Literal["ssl", "starttls", "plain"] = "ssl"
    username: str
    password: SecretStr
    mailbox: str = "INBOX"
    # IMAP IDLE (push, mail arrives within a second or two). Without it, or when the server does
    # not offer IDLE, the mailbox is polled every `poll_interval_s`.
    idle: bool = True
    poll_interval_s: Annotated[float, Field(gt=0)] = 60.0
    # IDLE is re-issued this often as a safety net (RFC 2177: servers may drop it after 30 min).
    idle_renew_s: Annotated[float, Field(gt=0, le=1740)] = 300.0
    imap_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    # Reconnects back off exponentially (with jitter) up to this many seconds.
    reconnect_max_s: Annotated[float, Field(gt=0)] = 60.0
    # Larger mails are not downloaded: only their headers are taken (the ticket says so).
    max_message_bytes: Annotated[int, Field(ge=1024)] = 40 * 1024 * 1024

    smtp_host: str
    smtp_port: Annotated[int | None, Field(ge=1, le=65535)] = None  # default: 465 ssl, 587 starttls, 25 none
    smtp_security: Literal["ssl", "starttls", "none"] = "starttls"
    smtp_auth: bool = True
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: Annotated[float, Field(gt=0)] = 30.0

    # A CA bundle to trust for IMAP and SMTP (a company CA or a test CA); system CAs otherwise.
    tls_ca_file: str | None = None

    # Attachments are stored under attachments_dir (relative to the config file's folder);
    # bigger ones or other types are not stored (the ticket lists them as rejected).
    attachments_dir: str = "data/email/attachments"
    max_attachment_bytes: Annotated[int, Field(ge=0)] = 10 * 1024 * 1024
    # MIME types; "image/*" allows a whole family.
    allowed_attachment_types: tuple[str, ...] = DEFAULT_ATTACHMENT_TYPES

    # Loop guard: at most `autoreply_max` automatic replies (bot answers, acknowledgements) to one
    # address per `autoreply_window_s`. Agent replies are never limited.
    autoreply_window_s: Annotated[int, Field(ge=1)] = 600
    autoreply_max: Annotated[int, Field(ge=1)] = 5
    # The bot's handoff reply is not mailed on its own: the ticket acknowledgement that follows
    # carries the same text and the ticket number. Only when no acknowledgement arrives within
    # this many seconds (an existing ticket was reopened) is the handoff reply mailed itself.
    handoff_ack_wait_s: Annotated[float, Field(gt=0)] = 60.0

    # Sender identity (see channels/email/sender.py and the README). The authserv-id(s) of the
    # support mailbox's own receiving server, whose Authentication-Results are believed (e.g.
    # mx.google.com; "microsoft-365" for Exchange Online, which writes none). Unset: no sender
    # is verified, so every mail can only open a new ticket.
    trusted_authserv_id: str | tuple[str, ...] | None = None
    # What mail from a sender the server did not authenticate may do: open a new ticket, flagged
    # "sender not verified" (never join an existing conversation or ticket, never see another
    # ticket's status) — or be ignored (recorded for ops, no ticket, no reply).
    unverified_senders: Literal["new_ticket", "ignore"] = "new_ticket"
    # No-reply senders of our own contact forms: their mail is answered at its Reply-To.
    relay_senders: tuple[str, ...] = ()

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        v = v.strip().lower()
        if not ADDRESS_RE.match(v):
            raise ValueError("must be an email address like support@example.com")
        return v

    @field_validator("trusted_authserv_id", mode="before")
    @classmethod
    def _authserv(cls, v: object) -> object:
        if v is None or v == "":
            return None
        items = [v] if isinstance(v, str) else list(v) if isinstance(v, list | tuple) else v
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() and " " not in i.strip() for i in items):
            raise ValueError("must be a server name like mx.google.com (or a list of them)")
        return tuple(i.strip().lower() for i in items)

    @field_validator("relay_senders")
    @classmethod
    def _relays(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(a.strip().lower() for a in v)
        bad = [a for a in out if not ADDRESS_RE.match(a)]
        if bad:
            raise ValueError(f"not an email address: {bad[0]!r}")
        return out

    @field_validator("smtp_username", "tls_ca_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        # `${SMTP_USER:-}` expands to "" when the variable is unset: that means "not set".
        return None if v == "" else v

    @field_validator("smtp_password", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, v: object) -> object:
        if isinstance(v, SecretStr):
            return None if not v.get_secret_value() else v
        return None if v == "" else v

    @field_validator("allowed_attachment_types")
    @classmethod
    def _types(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(t.strip().lower() for t in v)
        bad = [t for t in out if not MIME_TYPE_RE.match(t)]
        if bad:
            raise ValueError(f"not a MIME type: {bad[0]!r} (write e.g. image/png or image/*)")
        return out

    @field_validator("imap_host", "smtp_host", "username")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @model_validator(mode="after")
    def _secrets(self) -> EmailChannelSettings:
        # Checked after field validation so a password is never echoed into an error line.
        if not self.password.get_secret_value():
            raise ValueError("password: must not be empty (use ${EMAIL_PASSWORD})")
        return self

    # -- derived ----------------------------------------------------------------------------------
    @property
    def effective_imap_port(self) -> int:
        return self.imap_port or IMAP_PORTS[self.imap_security]

    @property
    def effective_smtp_port(self) -> int:
        return self.smtp_port or SMTP_PORTS[self.smtp_security]

    @property
    def smtp_login(self) -> tuple[str, str] | None:
        """(user, password) for SMTP AUTH, or None when the relay takes no login."""
        if not self.smtp_auth:
            return None
        pw = self.smtp_password or self.password
        return (self.smtp_username or self.username, pw.get_secret_value())

    @property
    def trusted_authserv_ids(self) -> tuple[str, ...]:
        v = self.trusted_authserv_id
        return () if v is None else (v,) if isinstance(v, str) else v

    @property
    def domain(self) -> str:
        """The domain of our address: the right-hand side of the Message-IDs we create."""
        return self.address.rsplit("@", 1)[1]

    def attachment_type_allowed(self, content_type: str) -> bool:
        ct = content_type.strip().lower()
        family = ct.split("/", 1)[0] + "/*"
        return ct in self.allowed_attachment_types or family in self.allowed_attachment_types
