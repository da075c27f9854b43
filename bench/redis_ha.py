"""Highly available Redis set-ups from the `redis-server` binary, for the failover tests and the
bench: a 3-master/3-replica Redis Cluster and 1 master + 1 replica + 3 sentinels, all on loopback,
plus the burst that counts lost / duplicated / out-of-order replies while a master and a router are
SIGKILLed (`burst_with_failover`)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.procs import port_open, redis_binary

PORTS_ENV = "SWITCHBOARD_HA_PORTS"
"""`first-last` (e.g. `7100-7199`): the ports the private redis-servers may use (a cluster node's
bus port, +10000, too). Unset: random free ports."""


def _bindable(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _candidates() -> list[int]:
    import random

    raw = os.environ.get(PORTS_ENV, "")
    if raw:
        first, _, last = raw.partition("-")
        ports = list(range(int(first), int(last or first) + 1))
    else:
        ports = [random.randint(20000, 45000) for _ in range(200)]
    random.shuffle(ports)
    return ports


_TAKEN: set[int] = set()  # handed out by this process (a node may not be listening yet)


def ha_port(*, bus: bool = False) -> int:
    """A free port (with `bus`, its cluster bus port +10000 free too), from `$SWITCHBOARD_HA_PORTS`
    when set. Never the same twice in one process."""
    for port in _candidates():
        need = (port, port + 10000) if bus else (port,)
        if port in _TAKEN or need[-1] >= 65536:
            continue
        if all(_bindable(p) for p in need):
            _TAKEN.add(port)
            return port
    raise RuntimeError(f"no free port{' pair' if bus else ''} (${PORTS_ENV}={os.environ.get(PORTS_ENV, '')!r})")


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (both must be below 65536)."""
    return ha_port(bus=True)


def _cli() -> str:
    return str(Path(redis_binary()).with_name("redis-cli"))


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not within {timeout:.0f} s")


@dataclass
class Node:
    port: int
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([redis_binary(), *self.args], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        _wait(lambda: port_open(self.port), 20, f"redis-server on {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)


def _synced(n: Node) -> bool:
    """A replica whose link to its master is up (it has the master's data)."""
    info = n.client().info("replication")
    return info.get("role") == "slave" and info.get("master_link_status") == "up"


def _has_online_replica(n: Node) -> bool:
    info = n.client().info("replication")
    return any(isinstance(v, dict) and v.get("state") == "online" for k, v in info.items() if k.startswith("slave"))


def _ok(n: Node) -> bool:
    return bool(n.client().execute_command("CLUSTER INFO").get("cluster_state") == "ok")


@dataclass
class RedisCluster:
    """Three masters with one replica each; `cluster-node-timeout` short so a failover takes ~2 s."""

    tmp: Path
    nodes: list[Node] = field(default_factory=list)

    def start(self) -> RedisCluster:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> RedisCluster:
        for _ in range(6):
            port = cluster_port()
            d = self.tmp / f"c{port}"
            d.mkdir(parents=True)
            self.nodes.append(Node(port, ["--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                                          "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
                                          "--dir", str(d), "--appendonly", "yes", "--save", "",
                                          "--appendfsync", "no", "--repl-diskless-sync-delay", "0"]))
        for n in self.nodes:
            n.start()
        subprocess.run([_cli(), "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
                        "--cluster-replicas", "1", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        _wait(lambda: all(_ok(n) for n in self.nodes),
              30, "cluster_state:ok")
        _wait(lambda: sum(_synced(n) for n in self.nodes) == 3, 30, "replicas in sync")
        return self

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def master_of(self, key: str) -> Node:
        c = next(n for n in self.nodes if n.proc and n.proc.poll() is None).client()
        slot = int(c.execute_command("CLUSTER KEYSLOT", key))
        for start, end, master, *_ in c.execute_command("CLUSTER SLOTS"):
            if int(start) <= slot <= int(end):
                port = int(master[1])
                return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"no master for slot {slot}")

    def fail_master(self, key: str) -> Node:
        """SIGKILL the master of `key`'s slot, wait until its replica took over, start the killed
        node again (it rejoins as the new master's replica, so `WAIT 1` can succeed again)."""
        victim = self.master_of(key)
        _wait(lambda: _has_online_replica(victim), 30, "replica online before the kill")
        victim.kill()
        _wait(lambda: self.master_of(key) is not victim and _ok(self.master_of(key)), 30, "replica promoted")
        victim.start()
        new = self.master_of(key)
        _wait(lambda: int(new.client().info("replication")["connected_slaves"]) >= 1, 30, "replica re-attached")
        return victim

    def promote_replica(self, key: str) -> Node:
        """A planned failover of `key`'s slot (`CLUSTER FAILOVER` on the master's replica, as for
        an upgrade): the replica takes over, the old master becomes its replica, no connection
        drops. Returns the new master."""
        old = self.master_of(key)
        replica = next(n for n in self.nodes if n.proc and n.proc.poll() is None and n is not old
                       and n.client().info("replication").get("master_port") == old.port)
        _wait(lambda: _synced(replica), 30, "replica in sync before the failover")
        replica.client().execute_command("CLUSTER FAILOVER")
        _wait(lambda: self.master_of(key) is replica and _synced(old), 30, "planned failover")
        return replica

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


@dataclass
class SentinelSet:
    """One master, one replica, three sentinels watching master `mm` (quorum 2)."""

    tmp: Path
    name: str = "mm"
    data: list[Node] = field(default_factory=list)
    sentinels: list[Node] = field(default_factory=list)

    def start(self) -> SentinelSet:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> SentinelSet:
        mport, rport = ha_port(), ha_port()
        for port, extra in ((mport, []), (rport, ["--replicaof", "127.0.0.1", str(mport)])):
            d = self.tmp / f"s{port}"
            d.mkdir(parents=True)
            self.data.append(Node(port, ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
                                         "--appendonly", "yes", "--save", "", "--appendfsync", "no",
                                         "--repl-diskless-sync-delay", "0", *extra]))
        for n in self.data:
            n.start()
        for _ in range(3):
            port = ha_port()
            conf = self.tmp / f"sentinel-{port}.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor {self.name} 127.0.0.1 {mport} 2\n"
                            f"sentinel down-after-milliseconds {self.name} 1000\n"
                            f"sentinel failover-timeout {self.name} 5000\n", encoding="utf-8")
            self.sentinels.append(Node(port, [str(conf), "--sentinel"]))
        for s in self.sentinels:
            s.start()
        _wait(lambda: _synced(self.data[1]), 30, "replica synced")
        return self

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels) + f"/{self.name}"

    def master(self) -> Node:
        host, port = self.sentinels[0].client().execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", self.name)
        return next(n for n in self.data if n.port == int(port))

    def fail_master(self, _key: str = "") -> Node:
        victim = self.master()
        _wait(lambda: _has_online_replica(victim), 30, "replica online before the kill")
        victim.kill()
        _wait(lambda: self.master() is not victim, 30, "sentinel failover")
        victim.start()
        new = self.master()

        def attached() -> bool:
            return int(new.client().info("replication")["connected_slaves"]) >= 1

        # The sentinels turn it into the new master's replica: about 10 s here (they wait until it
        # has reported itself a master for 8 s). On a loaded machine a sentinel may stall far
        # longer (seen: over 90 s, as in its TILT mode); then do what an operator does and point
        # it at the new master, so that `WAIT 1` can succeed again.
        try:
            _wait(attached, 30, "replica re-attached by the sentinels")
        except RuntimeError:
            victim.client().execute_command("REPLICAOF", "127.0.0.1", str(new.port))
            _wait(attached, 60, "replica re-attached")
        return victim

    def stop(self) -> None:
        for n in [*self.sentinels, *self.data]:
            n.stop()


# -- the burst -----------------------------------------------------------------------------------------
@dataclass
class Tally:
    sent: int = 0
    replies: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    intake_retries: int = 0
    seconds: float = 0.0
    intake_p50_ms: float = 0.0
    intake_p99_ms: float = 0.0
    intake_errors: dict[str, int] = field(default_factory=dict)  # exception type → count
    error_samples: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def burst_with_failover(
    settings: Any, *, messages: int = 5000, conversations: int = 500,
    events: list[tuple[float, Callable[[], Awaitable[None]]]] = (),  # type: ignore[assignment]
    timeout_s: float = 120.0, channel: str = "bench",
) -> Tally:
    """Publish `messages` over `conversations` through the product's intake (each conversation
    in order: the next message after the previous one is acknowledged, retried until it is, as a
    channel resends), run `events` (fraction of messages accepted, coroutine) on the way, wait for
    the routers to answer everything, then count replies on the outbound streams."""
    from bot.models import Message
    from bot.queue import Durability, Queue
    from bot.redisconn import connect
    from bot.streams import Layout

    lay = Layout.of(settings)
    r = connect(settings.redis.url, max_connections=200)
    q = Queue(r, settings.queue, layout=lay, durability=Durability.of(settings))
    per = messages // conversations
    ids: dict[str, tuple[int, int]] = {}
    tally = Tally()
    lat: list[float] = []
    accepted = 0
    todo = sorted(events, key=lambda e: e[0])
    fired: list[asyncio.Task[None]] = []
    t0 = time.monotonic()

    async def conversation(c: int) -> None:
        nonlocal accepted
        for i in range(per):
            m = Message(channel=channel, channel_message_id=f"b{c}-{i}", conversation_id=f"{channel}:burst{c}",
                        user_id=f"u{c}", text=f"how do I deposit {i}")
            ids[m.id] = (c, i)
            t_in = time.perf_counter()
            while True:
                try:
                    await q.publish(m)
                    break
                except Exception as exc:  # noqa: BLE001 - a channel resends whatever went wrong
                    tally.intake_retries += 1
                    kind = type(exc).__name__
                    tally.intake_errors[kind] = tally.intake_errors.get(kind, 0) + 1
                    tally.error_samples.setdefault(kind, str(exc)[:200])
                    for f in fired:  # a failed event (no promotion, say) ends the burst
                        if f.done() and f.exception() is not None:
                            raise f.exception() from None  # type: ignore[misc]
                    await asyncio.sleep(0.2)
            lat.append(time.perf_counter() - t_in)
            accepted += 1
            tally.sent += 1
            while todo and accepted >= todo[0][0] * messages:
                fired.append(asyncio.create_task(todo.pop(0)[1]()))  # type: ignore[arg-type]
            await asyncio.sleep(0)

    sem = asyncio.Semaphore(100)

    async def guarded(c: int) -> None:
        async with sem:
            await conversation(c)

    await asyncio.gather(*(guarded(c) for c in range(conversations)))
    for f in fired:
        await f
    streams = lay.outbound_streams(channel)
    deadline = time.monotonic() + timeout_s
    got: dict[str, list[tuple[int, int]]] = {}
    while True:
        got = {}
        total = 0
        for s in streams:
            for _eid, fields in await _xrange_all(r, s):
                import orjson

                ob = orjson.loads(fields["d"])
                ref = ids.get(ob.get("in_reply_to") or "")
                if ref is not None:
                    got.setdefault(f"c{ref[0]}", []).append(ref)
                    total += 1
        pending = 0
        for p in lay.all():
            pending += await Queue(r, settings.queue, layout=lay, partition=p).pending_count()
        if (total >= tally.sent and pending == 0) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    tally.seconds = time.monotonic() - t0
    lat.sort()
    if lat:
        tally.intake_p50_ms = round(lat[len(lat) // 2] * 1000, 2)
        tally.intake_p99_ms = round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2)
    tally.replies = sum(len(v) for v in got.values())
    seen: dict[tuple[int, int], int] = {}
    for refs in got.values():
        last = -1
        for ref in refs:
            seen[ref] = seen.get(ref, 0) + 1
            if ref[1] < last:
                tally.out_of_order += 1
            last = max(last, ref[1])
    tally.duplicated = sum(n - 1 for n in seen.values())
    tally.lost = len(set(ids.values()) - set(seen))
    await r.aclose()
    return tally


async def _xrange_all(r: Any, stream: str) -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    start = "-"
    while True:
        chunk = await r.xrange(stream, min=start, count=5000)
        if not chunk:
            return out
        out.extend(chunk)
        ms, _, sq = chunk[-1][0].partition("-")
        start = f"{ms}-{int(sq) + 1}"
