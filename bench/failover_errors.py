"""What the product's intake sees from redis-py while a cluster master is SIGKILLed:
`python -m bench.failover_errors [runs] [wait_replicas]`.

100 conversations publish 30 messages each through `Queue.publish` (each retried until accepted,
as a channel resends) on a fresh 3-master/3-replica cluster; at 30 % a master is killed, its
replica promoted and the node restarted. Prints, per run, how many attempts failed with which
exception type, and a traceback of each type that is not an expected outage. Every type listed
should be a Redis outage (ConnectionError, ClusterDownError, NotReplicated, …): redis-py 8.1.0
also leaks `AttributeError: 'NoneType' object has no attribute 'writelines'` (a connection
closed under a write; redis-py#4287, fixed in 8.2.0 by redis-py#4288)."""

from __future__ import annotations

import asyncio
import collections
import sys
import tempfile
import traceback
from pathlib import Path

import redis

from bench.redis_ha import RedisCluster
from bot.config import parse_settings
from bot.consumer import is_outage
from bot.models import Message
from bot.queue import Durability, Queue
from bot.redisconn import connect
from bot.streams import Layout

CONVERSATIONS = 100
PER = 30


async def one_run(ha: RedisCluster, wait: int) -> tuple[collections.Counter[str], dict[str, str]]:
    s = parse_settings({"redis": {"url": ha.url, "wait_replicas": wait},
                        "queue": {"partitions": 4, "user_rate_per_minute": 0}})
    r = connect(ha.url, max_connections=200)
    q = Queue(r, s.queue, layout=Layout.of(s), durability=Durability.of(s))
    errors: collections.Counter[str] = collections.Counter()
    samples: dict[str, str] = {}
    done = 0
    third = asyncio.Event()  # 30 % accepted: time to kill the master

    async def conversation(c: int) -> None:
        nonlocal done
        for i in range(PER):
            m = Message(channel="web", channel_message_id=f"b{c}-{i}", conversation_id=f"web:c{c}",
                        user_id=f"u{c}", text="x")
            while True:
                try:
                    await q.publish(m)
                    done += 1
                    if done >= CONVERSATIONS * PER * 0.3:
                        third.set()
                    break
                except Exception as e:  # noqa: BLE001 - counting what a channel would see is the point
                    kind = type(e).__name__
                    errors[kind] += 1
                    if not is_outage(e):
                        samples.setdefault(kind, "".join(traceback.format_exception(e))[-2500:])
                    await asyncio.sleep(0.05)

    async def kill() -> None:
        await third.wait()
        await asyncio.to_thread(ha.fail_master, "inbound:{p0}")

    await asyncio.gather(kill(), *(conversation(c) for c in range(CONVERSATIONS)))
    await r.aclose()
    return errors, samples


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    wait = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    print(f"redis-py {redis.__version__}, {runs} run(s), wait_replicas={wait}")
    ha = RedisCluster(Path(tempfile.mkdtemp(prefix="failover-errors-"))).start()
    try:
        for n in range(runs):
            errors, samples = asyncio.run(one_run(ha, wait))
            print(f"run {n + 1}: {dict(errors)}")
            for kind, tb in samples.items():
                print(f"--- {kind} (not an outage):\n{tb}")
    finally:
        ha.stop()


if __name__ == "__main__":
    main()
