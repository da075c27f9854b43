"""Agent sign-in: argon2 password hashes, server-side sessions in Redis (so disabling an agent
locks them out at once), CSRF tokens per session, and a brute-force lockout per account and IP."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_PH = PasswordHasher()
SESSION_COOKIE = "sb_session"
LOGIN_CSRF_COOKIE = "sb_login_csrf"


def hash_password(pw: str) -> str:
    if len(pw) < 8:
        raise ValueError("passwords need at least 8 characters")
    return _PH.hash(pw)


def verify_password(hashed: str, pw: str) -> bool:
    try:
        return _PH.verify(hashed, pw)
    except (VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the email is unknown, so timing does not reveal accounts.
_DUMMY = _PH.hash("not-a-real-password-" + secrets.token_hex(8))


def verify_or_dummy(hashed: str | None, pw: str) -> bool:
    return verify_password(hashed or _DUMMY, pw) and hashed is not None


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    agent_id: int
    csrf: str


class Sessions:
    def __init__(self, r: aioredis.Redis, ttl_s: int, max_failures: int, lockout_s: int) -> None:
        self.r = r
        self.ttl = ttl_s
        self.max_failures = max_failures
        self.lockout = lockout_s

    async def create(self, agent_id: int) -> Session:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        await self.r.hset(f"agent:sess:{token}", mapping={"agent": agent_id, "csrf": csrf})
        await self.r.expire(f"agent:sess:{token}", self.ttl)
        return Session(token, agent_id, csrf)

    async def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        h = await self.r.hgetall(f"agent:sess:{token}")
        if not h:
            return None
        return Session(token, int(h["agent"]), h["csrf"])

    async def drop(self, token: str) -> None:
        await self.r.delete(f"agent:sess:{token}")

    async def locked(self, email: str, ip: str) -> bool:
        a, b = await self.r.mget(f"agent:fail:{email}", f"agent:failip:{ip}")
        return int(a or 0) >= self.max_failures or int(b or 0) >= self.max_failures * 4

    async def failed(self, email: str, ip: str) -> None:
        pipe = self.r.pipeline(transaction=False)
        for k in (f"agent:fail:{email}", f"agent:failip:{ip}"):
            pipe.incr(k)
            pipe.expire(k, self.lockout)
        await pipe.execute()

    async def succeeded(self, email: str) -> None:
        await self.r.delete(f"agent:fail:{email}")
