"""Agent sign-in: argon2 password hashes, server-side sessions in Redis (so disabling an agent
locks them out at once), CSRF tokens per session, and brute-force throttling.

Throttling counts an attempt *before* its password is checked, in one Lua script, so parallel
guesses cannot all slip through between a check and an increment. The tight limit is per
(account, client address): a guesser is stopped without locking the real agent out from their own
address. Softer limits per account (many addresses guessing one password) and per address (one
address trying many accounts) catch distributed guessing. A successful sign-in refunds its attempt.
Hashing (argon2, ~50 ms of CPU and 64 MiB each) runs in worker threads, a few at a time, never on
the event loop that serves everyone else."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import weakref
from dataclasses import dataclass

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.redisconn import co_slot
from handoff.models import Agent

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


_HASH_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


async def verify_off_loop(hashed: str | None, pw: str, slots: int = 2) -> bool:
    """`verify_or_dummy` in a worker thread, at most `slots` at a time per event loop (each hash
    takes 64 MiB; past that, sign-ins wait their turn instead of exhausting memory)."""
    loop = asyncio.get_running_loop()
    sem = _HASH_SLOTS.get(loop)
    if sem is None:
        sem = _HASH_SLOTS[loop] = asyncio.Semaphore(slots)
    async with sem:
        return await asyncio.to_thread(verify_or_dummy, hashed, pw)


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    agent_id: int
    csrf: str


# KEYS: (account, address), account, address ; ARGV: their limits, window. 1 = go ahead (counted).
_ATTEMPT = """
for i = 1, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[i]) then return 0 end
end
for i = 1, 3 do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[4])
end
return 1
"""
# A successful sign-in: its attempt is refunded and the (account, address) count cleared.
_REFUND = """
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
"""


def _ns(r: aioredis.Redis) -> str:
    """Where sign-in state lives: `agent:…` on one Redis; `{agent}:…` on a Redis Cluster, one
    slot for all of it, because a session and its agent's session set change in one MULTI and a
    sign-in attempt counts three keys in one script. It is small (a session per signed-in agent,
    failure counters that expire with the lockout) and read once per console request."""
    return co_slot(r, "agent")


def agent_sessions_key(r: aioredis.Redis, agent_id: int) -> str:
    return f"{_ns(r)}:sessions:{agent_id}"


def session_key(r: aioredis.Redis, token: str) -> str:
    return f"{_ns(r)}:sess:{token}"


async def drop_agent_sessions(r: aioredis.Redis, agent_id: int) -> int:
    """End every session of an agent (disabled, or signed out everywhere)."""
    key = agent_sessions_key(r, agent_id)
    tokens = await r.smembers(key)
    await r.delete(key, *[session_key(r, t.decode() if isinstance(t, bytes) else t) for t in tokens])
    return len(tokens)


class Sessions:
    def __init__(self, r: aioredis.Redis, ttl_s: int, max_failures: int, lockout_s: int,
                 max_account_failures: int | None = None) -> None:
        self.r = r
        self.ttl = ttl_s
        self.max_failures = max_failures
        self.max_account_failures = max_account_failures or max_failures * 10
        self.lockout = lockout_s
        self._attempt = r.register_script(_ATTEMPT)
        self._refund = r.register_script(_REFUND)

    async def create(self, agent_id: int) -> Session:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        key, every = session_key(self.r, token), agent_sessions_key(self.r, agent_id)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, mapping={"agent": agent_id, "csrf": csrf})
        pipe.expire(key, self.ttl)
        # Every session of an agent, so disabling them ends all of them at once.
        pipe.sadd(every, token)
        pipe.expire(every, self.ttl)
        await pipe.execute()
        return Session(token, agent_id, csrf)

    async def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        h = await self.r.hgetall(session_key(self.r, token))
        if not h:
            return None
        return Session(token, int(h["agent"]), h["csrf"])

    async def drop(self, token: str) -> None:
        await self.r.delete(session_key(self.r, token))


    def _keys(self, email: str, ip: str) -> list[str]:
        ns = _ns(self.r)
        return [f"{ns}:fail:{email}:{ip}", f"{ns}:fail:{email}", f"{ns}:failip:{ip}"]

    async def attempt(self, email: str, ip: str) -> bool:
        """Count a sign-in attempt before its password is checked; False = throttled (not counted)."""
        ok = await self._attempt(keys=self._keys(email, ip),
                                 args=[self.max_failures, self.max_account_failures, self.max_failures * 4,
                                       self.lockout])
        return bool(int(ok))

    async def succeeded(self, email: str, ip: str) -> None:
        await self._refund(keys=self._keys(email, ip))


async def signed_in(sessions: Sessions, sm: async_sessionmaker[AsyncSession],
                    token: str | None) -> tuple[Agent, str] | None:
    """The signed-in, active agent of a console session and the session's CSRF token. The session
    of an agent disabled since is dropped (the console and the review page share this check)."""
    sess = await sessions.get(token)
    if sess is None:
        return None
    async with sm() as s:
        a = await s.get(Agent, sess.agent_id)
    if a is None or not a.active:
        await sessions.drop(sess.token)
        return None
    return a, sess.csrf
