"""Request bodies read with a cap, before anything else looks at them.

`await request.body()` reads whatever a client sends, however large, into memory. Every endpoint
that takes a body reads it through `read_capped`: a declared `Content-Length` over the cap is
refused without reading, and a chunked body (no length) is read only until it passes the cap.
"""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    """The request body is larger than the endpoint accepts (answer 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


async def read_capped(request: Request, limit: int) -> bytes:
    """The whole body, or `BodyTooLarge` as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BodyTooLarge(limit)  # not a length: refuse rather than guess
        if int(declared) > limit:
            raise BodyTooLarge(limit)
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise BodyTooLarge(limit)
    return bytes(buf)
