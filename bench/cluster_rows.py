"""`make bench` rows for the local Redis Cluster (`python -m bench.cluster_rows` alone): router
throughput on the stub NLU with a single Redis vs a 3-master/3-replica cluster at 1, 2 and 4
partitions, the cost of `redis.wait_replicas: 1` (intake latency, throughput), and the failover
burst (5,000 messages / 500 conversations, a master and a router SIGKILLed) with WAIT off and on.

Each row: a fresh Redis set-up, two real router processes, 3,000 messages over 300 conversations
published through the product's intake (100 conversations at a time, each in order)."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.procs import Cluster as Procs
from bench.procs import say
from bench.redis_ha import Node, RedisCluster, SentinelSet, burst_with_failover, ha_port
from bot.config import load_settings


def _row(procs: Procs, name: str, url: str, *, partitions: int, wait: int, ha: Any = None,
         failover: bool = False, messages: int = 3000, conversations: int = 300) -> dict[str, Any]:
    stub = procs.start_stub()
    cfg = procs.write_config(
        f"cl-{name}", [stub], redis={"url": url, "wait_replicas": wait, "wait_timeout_ms": 1000},
        queue={"user_rate_per_minute": 0, "partitions": partitions, "claim_idle_ms": 2000, "order_wait_ms": 2000},
    )
    settings = load_settings(cfg)
    routers = procs.start_routers(cfg, 2)
    events: list[Any] = []
    if failover:
        async def kill_master() -> None:
            await asyncio.to_thread(ha.fail_master, settings.queue.inbound_stream + ":{p0}")

        async def kill_router() -> None:
            os.killpg(routers[0].proc.pid, signal.SIGKILL)

        events = [(0.3, kill_master), (0.6, kill_router)]
    try:
        t = asyncio.run(burst_with_failover(settings, messages=messages, conversations=conversations, events=events))
    finally:
        procs.stop_routers()
        procs.stop_stub()
    out = {"row": name, "partitions": partitions, "wait_replicas": wait, **t.as_dict()}
    out["msgs_per_s"] = round(t.sent / t.seconds, 1) if t.seconds else None
    say(f"cluster row {out}")
    return out


def measure(procs: Procs) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    port = ha_port()
    single = Node(port, ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
    single.start()
    try:
        rows.append(_row(procs, "single redis", f"redis://127.0.0.1:{port}/0", partitions=1, wait=0))
    finally:
        single.stop()
    for p, wait in ((1, 0), (2, 0), (4, 0), (4, 1)):
        ha = RedisCluster(procs.tmp / f"cluster-p{p}-w{wait}").start()
        try:
            rows.append(_row(procs, f"cluster p{p}" + (" WAIT 1" if wait else ""), ha.url, partitions=p, wait=wait))
        finally:
            ha.stop()
    for wait in (0, 1):
        ss = SentinelSet(procs.tmp / f"sentinel-w{wait}").start()
        try:
            rows.append(_row(procs, "sentinel" + (" WAIT 1" if wait else ""), ss.url, partitions=1, wait=wait))
        finally:
            ss.stop()
    for kind, wait in (("cluster", 0), ("cluster", 1), ("sentinel", 0), ("sentinel", 1)):
        ha2: Any = (RedisCluster(procs.tmp / f"fo-{kind}-{wait}") if kind == "cluster"
                    else SentinelSet(procs.tmp / f"fo-{kind}-{wait}")).start()
        try:
            rows.append(_row(procs, f"failover {kind}" + (" WAIT 1" if wait else ""), ha2.url,
                             partitions=4 if kind == "cluster" else 1, wait=wait, ha=ha2, failover=True,
                             messages=5000, conversations=500))
        finally:
            ha2.stop()
    return rows


def print_rows(con: Console, rows: list[dict[str, Any]]) -> None:
    t = Table(title="Redis Cluster / Sentinel (stub NLU, 2 router processes)")
    for h in ("row", "msgs/s", "intake p50 ms", "intake p99 ms", "intake retries", "lost", "dup", "out of order"):
        t.add_column(h)
    for r in rows:
        t.add_row(r["row"], str(r["msgs_per_s"]), str(r["intake_p50_ms"]), str(r["intake_p99_ms"]),
                  str(r["intake_retries"]), str(r["lost"]), str(r["duplicated"]), str(r["out_of_order"]))
    con.print(t)


def main() -> int:
    import orjson

    from bench.run import RESULTS

    with Procs() as procs:
        rows = measure(procs)
    print_rows(Console(width=170), rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cluster-latest.json").write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
