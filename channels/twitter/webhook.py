"""Account Activity API security, as pure functions.

X proves it is X with the app's consumer secret: the CRC challenge (GET, `crc_token`) must be
answered with `sha256=` + base64(HMAC-SHA256(consumer_secret, crc_token)), and every POST carries
`x-twitter-webhooks-signature` = `sha256=` + base64(HMAC-SHA256(consumer_secret, raw body)).
Anyone can find a webhook URL; only a correct signature may put a message on our queue.

Both use the same construction, so the CRC endpoint is a signing oracle: whatever it is asked to
sign could be POSTed back as a "signed" delivery. It therefore signs only tokens shaped like X's
(short, base64 / URL-safe characters) — never anything that parses as a JSON object, which is
all a delivery can be.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

SIGNATURE_HEADER = "x-twitter-webhooks-signature"


def _sign(secret: str, data: bytes) -> str:
    digest = hmac.new(secret.encode(), data, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


# X's tokens are a few dozen base64 characters; nothing with braces, quotes or spaces.
CRC_TOKEN_RE = re.compile(r"^[A-Za-z0-9+/=_-]{1,128}$")


def crc_token_ok(crc_token: str) -> bool:
    return bool(CRC_TOKEN_RE.match(crc_token))


def crc_response(consumer_secret: str, crc_token: str) -> dict[str, str]:
    """The answer to X's CRC challenge. `ValueError` for a token not shaped like X's."""
    if not crc_token_ok(crc_token):
        raise ValueError("crc_token is not shaped like X's")
    return {"response_token": _sign(consumer_secret, crc_token.encode())}


def body_signature(consumer_secret: str, body: bytes) -> str:
    return _sign(consumer_secret, body)


def signature_ok(consumer_secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time comparison, so the signature cannot be guessed byte by byte."""
    if not header:
        return False
    return hmac.compare_digest(body_signature(consumer_secret, body).encode(), header.strip().encode())
