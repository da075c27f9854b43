"""Failover with real servers: a 3-master/3-replica Redis Cluster and 1 master + 1 replica +
3 sentinels, started from the `redis-server` binary; two real router processes
(`switchboard run --role router`) on a stub NLU (bench/stub_nlu.py: the queue is under test, not
Rasa). 5,000 messages over 500 conversations; on the way a master is SIGKILLed (its replica
promoted, the killed node restarted as a replica) and a router is SIGKILLed. With
`redis.wait_replicas: 1` no reply is lost, none duplicated, none out of order."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from bench.procs import Cluster as Procs
from bench.redis_ha import RedisCluster, SentinelSet, burst_with_failover
from bot.config import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def procs() -> Iterator[Procs]:
    with Procs() as p:
        yield p


def _run(procs: Procs, url: str, ha: Any, partitions: int) -> dict[str, Any]:
    stub = procs.start_stub()
    cfg = procs.write_config(
        f"ha{partitions}", [stub],
        redis={"url": url, "wait_replicas": 1, "wait_timeout_ms": 1000},
        queue={"user_rate_per_minute": 0, "partitions": partitions, "claim_idle_ms": 2000, "order_wait_ms": 2000},
    )
    settings = load_settings(cfg)
    routers = procs.start_routers(cfg, 2)

    async def kill_master() -> None:
        await asyncio.to_thread(ha.fail_master, settings.queue.inbound_stream + ":{p0}")

    async def kill_router() -> None:
        os.killpg(routers[0].proc.pid, signal.SIGKILL)

    try:
        tally = asyncio.run(burst_with_failover(settings, events=[(0.3, kill_master), (0.6, kill_router)]))
    finally:
        procs.stop_routers()
        procs.stop_stub()
    return tally.as_dict()


def test_cluster_failover_loses_nothing(procs: Procs) -> None:
    ha = RedisCluster(procs.tmp / "cluster").start()
    try:
        t = _run(procs, ha.url, ha, partitions=4)
    finally:
        ha.stop()
    print("cluster failover", t)
    assert t["sent"] == 5000
    assert (t["lost"], t["duplicated"], t["out_of_order"]) == (0, 0, 0), t


def test_sentinel_failover_loses_nothing(procs: Procs) -> None:
    ha = SentinelSet(procs.tmp / "sentinel").start()
    try:
        t = _run(procs, ha.url, ha, partitions=1)
    finally:
        ha.stop()
    print("sentinel failover", t)
    assert t["sent"] == 5000
    assert (t["lost"], t["duplicated"], t["out_of_order"]) == (0, 0, 0), t
