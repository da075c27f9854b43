"""The Redis client from `redis.url`: one server, a Redis Cluster or a Sentinel-managed master.

- `redis://host:port/db`, `rediss://…`, `unix:///path?db=0` — one server (the default);
- `redis+cluster://[user:pass@]host1:port1,host2:port2` — a Redis Cluster from seed nodes;
- `redis+sentinel://[user:pass@]host1:26379,host2:26379/<master name>[/<db>]` — the master that
  the sentinels name (the password is the master's; `?sentinel_password=…` for the sentinels).
  `rediss+cluster://` and `rediss+sentinel://` use TLS.

`replicated()` runs commands and then `WAIT` on the same connection (WAIT only covers the writes of
its own connection), also on a cluster (on the node that owns the key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError, ResponseError

from bot import redisbatch

SINGLE = ("redis", "rediss", "unix")


@dataclass(frozen=True, slots=True)
class Spec:
    kind: str  # "single" | "cluster" | "sentinel"
    tls: bool = False
    nodes: list[tuple[str, int]] = field(default_factory=list)
    master_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def _nodes(netloc: str, default_port: int) -> list[tuple[str, int]]:
    hosts = netloc.rpartition("@")[2]
    out: list[tuple[str, int]] = []
    for part in hosts.split(","):
        part = part.strip()
        if not part:
            raise ValueError("an empty host in the node list")
        host, sep, port = part.rpartition(":") if not part.endswith("]") else (part, "", "")
        if not sep:
            host, port = part, str(default_port)
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad node {part!r} (host:port)")
        out.append((host, int(port)))
    return out


def parse_url(url: str) -> Spec:
    """Validate `redis.url`; raises ValueError saying what is wrong."""
    scheme, _, _ = url.partition("://")
    if scheme in SINGLE:
        return Spec("single", tls=scheme == "rediss")
    if scheme not in ("redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel"):
        raise ValueError("must start with redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://")
    u = urlsplit(url)
    creds = u.netloc.rpartition("@")[0]
    user, _, pw = creds.partition(":") if creds else ("", "", "")
    q = parse_qs(u.query)
    tls = scheme.startswith("rediss")
    common = {"tls": tls, "username": unquote(user) or None, "password": unquote(pw) or None}
    if scheme.endswith("+cluster"):
        nodes = _nodes(u.netloc, 6379)
        if u.path.strip("/") not in ("", "0"):
            raise ValueError("a Redis Cluster has only database 0")
        return Spec("cluster", nodes=nodes, **common)  # type: ignore[arg-type]
    nodes = _nodes(u.netloc, 26379)
    parts = [p for p in u.path.split("/") if p]
    if not parts:
        raise ValueError("redis+sentinel:// needs the master name: redis+sentinel://host:26379/<master name>")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError("redis+sentinel:// path is /<master name>[/<db number>]")
    sp = q.get("sentinel_password", [""])[0] or None
    return Spec("sentinel", nodes=nodes, master_name=unquote(parts[0]), db=int(parts[1]) if len(parts) == 2 else 0,
                sentinel_password=sp, **common)  # type: ignore[arg-type]


def connect(url: str, *, max_connections: int = 1000, decode_responses: bool = True) -> aioredis.Redis:
    """The client for `url` (typed as `Redis`: a `RedisCluster` offers the same commands the
    product uses, with every multi-key command on one hash slot — see `bot.streams.Layout`)."""
    spec = parse_url(url)
    # Bytes that are not UTF-8 (a stream entry some other writer added) decode with U+FFFD instead
    # of failing the whole reply: a strict decode fails the read of every entry around it, again
    # on each take-over, and the stream stops for good (seen as a Redis outage).
    opts: dict[str, Any] = {"decode_responses": decode_responses, "encoding_errors": "replace",
                            "socket_connect_timeout": 2}
    if spec.kind == "single":
        return aioredis.from_url(url, health_check_interval=30, max_connections=max_connections, **opts)
    auth: dict[str, Any] = {"username": spec.username, "password": spec.password}
    if spec.kind == "cluster":
        rc = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in spec.nodes], ssl=spec.tls,
                          max_connections=max_connections, health_check_interval=30, **auth, **opts)
        return cast(aioredis.Redis, rc)
    from redis.asyncio.sentinel import Sentinel

    skw: dict[str, Any] = {"socket_connect_timeout": 2, "ssl": spec.tls}
    if spec.sentinel_password:
        skw["password"] = spec.sentinel_password
    sentinel = Sentinel(spec.nodes, sentinel_kwargs=skw, ssl=spec.tls, **auth, **opts)
    return sentinel.master_for(spec.master_name, db=spec.db, max_connections=max_connections,
                               health_check_interval=30)


def is_cluster(r: Any) -> bool:
    return isinstance(r, RedisCluster)


def co_slot(r: Any, name: str) -> str:
    """`name` as the start of keys that must share one hash slot: `{name}` on a Redis Cluster
    (Redis hashes only what is between the braces, so `{name}:a` and `{name}:b` land on one slot
    and one script or `MULTI` may touch both), `name` unchanged elsewhere (the historical key
    names of a single Redis or Sentinel)."""
    return f"{{{name}}}" if is_cluster(r) else name


def one_slot(r: Any, *keys: str) -> bool:
    """Whether one script or `MULTI` may touch all of `keys`: always on one server, on a cluster
    only when they hash to the same slot."""
    return not is_cluster(r) or len({key_slot(k.encode("utf-8", "surrogatepass")) for k in keys}) <= 1


_WAIT_ON_REPLICA = "WAIT cannot be used with replica instances"


class NotReplicated(ConnectionError):
    """A write was not confirmed by enough replicas in time (treated as a Redis outage)."""


async def replicated(r: aioredis.Redis, key: str, commands: list[tuple[Any, ...]], replicas: int,
                     timeout_ms: int, scripts: tuple[str, ...] = ()) -> tuple[list[Any], int]:
    """Run `commands` (execute_command argument tuples; every key in `key`'s slot) in one round
    trip and then, with `replicas` > 0, `WAIT replicas timeout_ms` on the same connection.
    Returns (results, replicas that have the writes; -1 without WAIT). A command's error is
    raised; a missing script is loaded and the batch run again (`scripts`: the sources of the
    EVALSHAs; the failed EVALSHA wrote nothing, the commands before it must be idempotent)."""
    wait = replicas > 0
    for attempt in range(2):
        if isinstance(r, RedisCluster):
            await r.initialize()  # the slot map (a no-op once loaded)
            node = r.get_node_from_key(key)
            if node is None:  # mid-failover: no master known for the slot yet
                raise NotReplicated(f"no master for the slot of {key!r}")
            pipe: Any = r.pipeline()
            for c in commands:
                pipe.execute_command(*c)
            if wait:
                pipe.execute_command("WAIT", replicas, timeout_ms, target_nodes=node)
            res = await pipe.execute(raise_on_error=False)
        else:
            # Once per message at the intake: packed and sent without redis-py's pipeline (a third
            # of its CPU, bot/redisbatch.py). A connection failure is raised at once, not retried
            # (redis-py's pipeline retried it): the caller's channel resends, as for an outage.
            res = await redisbatch.roundtrip(r, [*commands, ("WAIT", replicas, timeout_ms)] if wait else commands)
        missing = [e for e in res if isinstance(e, NoScriptError)]
        if missing and attempt == 0:
            for src in scripts:
                await r.script_load(src)
            continue
        for e in res[:-1] if wait else res:
            if isinstance(e, Exception):
                raise e
        if not wait:
            return list(res), -1
        if isinstance(res[-1], ResponseError) and str(res[-1]).startswith(_WAIT_ON_REPLICA):
            # A failover moved the slot: the commands followed the MOVED to the new master, the
            # WAIT went to the old one, now its replica. Nothing says a replica has the writes.
            raise NotReplicated(f"the slot of {key!r} moved to another master during the write")
        if isinstance(res[-1], Exception):
            raise res[-1]
        return list(res[:-1]), int(res[-1])
    raise NoScriptError("script not loaded")  # pragma: no cover
