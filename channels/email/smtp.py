"""Sending one mail with aiosmtplib, and what its failures mean for the outbound sender.

A connection per mail: support mail is a trickle, servers drop idle sessions after a few minutes,
and a fresh session never inherits a half-broken state from the previous send.

Failures are sorted by what retrying can change:
- cannot connect, timeouts, a dropped session, any 4xx reply (greylisting, "try again later",
  a full queue), an authentication failure (often a rotated password being fixed right now — the
  sender's attempt limit stops it eventually) → `TransientChannelError`: the entry stays pending
  and the `OutboundSender` retries with back-off;
- 5xx for the recipient, or a 5xx to the message itself → `PermanentChannelError`: retrying the
  same mail cannot succeed, it goes to the dead letters with the server's reason.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import aiosmtplib

from bot.errors import PermanentChannelError, TransientChannelError


def _code(e: BaseException) -> int:
    return int(getattr(e, "code", 0) or 0)


def _brief(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e)[:200]}"


async def send_mail(
    msg: EmailMessage,
    *,
    sender: str,
    recipient: str,
    host: str,
    port: int,
    security: str,
    login: tuple[str, str] | None,
    timeout_s: float,
    tls_context: ssl.SSLContext | None,
) -> None:
    try:
        await aiosmtplib.send(
            msg,
            sender=sender,
            recipients=[recipient],
            hostname=host,
            port=port,
            use_tls=security == "ssl",
            start_tls=security == "starttls",
            tls_context=tls_context if security != "none" else None,
            username=login[0] if login else None,
            password=login[1] if login else None,
            timeout=timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as e:
        codes = [_code(r) for r in e.recipients]
        if codes and all(500 <= c < 600 for c in codes):
            raise PermanentChannelError(f"recipient refused: {_brief(e.recipients[0])}") from None
        raise TransientChannelError(f"recipient deferred: {_brief(e)}") from None
    except aiosmtplib.SMTPAuthenticationError as e:
        raise TransientChannelError(f"SMTP login refused: {_code(e)}") from None
    except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError, aiosmtplib.SMTPRecipientRefused) as e:
        if 500 <= _code(e) < 600:
            raise PermanentChannelError(f"refused: {_brief(e)}") from None
        raise TransientChannelError(f"deferred: {_brief(e)}") from None
    except aiosmtplib.SMTPResponseException as e:
        raise TransientChannelError(f"SMTP error: {_brief(e)}") from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
        raise TransientChannelError(f"SMTP unavailable: {_brief(e)}") from None
