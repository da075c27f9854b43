"""The router's CPU per message on the stub NLU, alone: `python -m bench.router_cpu`.

A quicker, repeatable form of the bench's *router ceiling* row for A/B work on the router: a
private redis-server, `bench/stub_nlu.py` (answers every parse at once) and one fresh
`switchboard run --role router`. Each round enqueues `--messages` unique texts over
`--conversations` conversations through the product's intake script (on a pipeline, redacted
before the clock starts), waits until the consumer group has delivered and acknowledged all of
them, and reads the router's and redis-server's CPU (`/proc/<pid>/stat`) over the round. Every
message must have exactly one decision, in order per conversation. A warm-up round is not
counted; the table shows every round and the median (the machine is shared: compare medians).
`--compare DIR` runs another checkout's router (e.g. `git archive <commit> | tar -x -C DIR`) in
the same rounds, alternating, each round on a fresh router: an A/B on a busy machine.
`--closed N` measures at the widget's pace instead: N closed-loop clients, one message in flight
each (a new conversation per message), the reply read from `outbound:bench`.

`--profile out.txt` also records the router with py-spy (raw folded stacks) during one extra
round (`PYSPY`: the py-spy binary; default /tmp/pyspy/bin/py-spy with PYTHONPATH=/tmp/pyspy).
`--port` puts redis-server on that port and the stub on the next one (default: free ports).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench import texts as T
from bench.load import OutboundWaiter, check_decisions, direct_workers, interleaved
from bench.procs import ROOT, Cluster, cpu_seconds, say
from bot.config import load_settings
from bot.logs import setup_logging
from bot.queue import Queue

CHANNEL = "bench"


async def one_round(c: Cluster, r: aioredis.Redis, cfg: Path, texts: T.UniqueTexts, n_msgs: int, n_convs: int,
                    label: str) -> dict[str, Any]:
    settings = load_settings(cfg)
    rng = random.Random(hash(label) & 0xFFFF)
    convs = [f"{label}:{time.time_ns()}:{i}" for i in range(n_convs)]
    slots = [i % n_convs for i in range(n_msgs)]
    rng.shuffle(slots)
    msgs, expected = interleaved(texts, convs, slots, CHANNEL)
    stream, group = settings.queue.inbound_stream, settings.queue.group
    before = await r.xrevrange("decisions", count=1)
    dec_from = before[0][0] if before else "0-0"
    pid, rpid = c.routers[0].pid, c.redis_proc.pid if c.redis_proc else 0
    cpu0, rcpu0, t0 = cpu_seconds(pid), cpu_seconds(rpid), time.perf_counter()
    last_id = ""
    for k in range(0, len(msgs), 500):
        pipe = r.pipeline(transaction=False)
        q = Queue(pipe, settings.queue)
        for m in msgs[k:k + 500]:
            await q.publish(m)
        ids = await pipe.execute()
        last_id = next((i for i in reversed(ids) if i), last_id)
    drained = False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        g = next((x for x in await r.xinfo_groups(stream) if x["name"] == group), None)
        if g and int(g.get("pending") or 0) == 0 and g.get("last-delivered-id") == last_id:
            drained = True
            break
        await asyncio.sleep(0.02)
    wall = time.perf_counter() - t0
    cpu, rcpu = cpu_seconds(pid) - cpu0, cpu_seconds(rpid) - rcpu0
    ex = await check_decisions(r, dec_from, expected, n_convs)
    missing, dups, out_of_order = ex.missing, ex.dups, ex.out_of_order
    return {"label": label, "drained": drained, "wall_s": wall, "rate": n_msgs / wall,
            "router_ms": 1000 * cpu / n_msgs, "redis_ms": 1000 * rcpu / n_msgs,
            "missing": missing, "duplicates": dups, "out_of_order": out_of_order}


async def closed_round(c: Cluster, r: aioredis.Redis, cfg: Path, texts: T.UniqueTexts, n_workers: int, n_msgs: int,
                       label: str) -> dict[str, Any]:
    """`n_workers` closed-loop clients, each sending its next message (through the product's
    intake, a new conversation each) when the reply to its last one is on `outbound:bench`: the
    router at the widget's pace, one message in flight per client."""
    settings = load_settings(cfg)
    waiter = OutboundWaiter(r, f"outbound:{CHANNEL}")
    await waiter.start()
    workers = direct_workers(Queue(r, settings.queue), waiter, texts, n_workers, CHANNEL)
    pid, rpid = c.routers[0].pid, c.redis_proc.pid if c.redis_proc else 0
    sent = ok = 0

    async def loop(w: Any) -> None:
        nonlocal sent, ok
        while sent < n_msgs:
            sent += 1
            answered = await w()  # (not `ok += await …`: that reads `ok` before the wait)
            ok += bool(answered)

    cpu0, rcpu0, t0 = cpu_seconds(pid), cpu_seconds(rpid), time.perf_counter()
    try:
        await asyncio.gather(*(loop(w) for w in workers))
    finally:
        await waiter.stop()
    wall = time.perf_counter() - t0
    cpu, rcpu = cpu_seconds(pid) - cpu0, cpu_seconds(rpid) - rcpu0
    return {"label": label, "drained": ok == sent, "wall_s": wall, "rate": sent / wall,
            "router_ms": 1000 * cpu / sent, "redis_ms": 1000 * rcpu / sent,
            "missing": sent - ok, "duplicates": 0, "out_of_order": 0}


def _print(row: dict[str, Any]) -> None:
    ok = row["drained"] and not (row["missing"] or row["duplicates"] or row["out_of_order"])
    say(f"{row['label']:<9} {row['rate']:6.0f} msg/s  router {row['router_ms']:.3f} ms CPU/msg  "
        f"redis-server {row['redis_ms']:.3f}  {'ok' if ok else 'FAILED'} (missing {row['missing']}, "
        f"dups {row['duplicates']}, out of order {row['out_of_order']})")


def _use_product(path: str) -> None:
    """The roles started from now on import the product from `path` (its checkout's root)."""
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
    os.environ["PYTHONPATH"] = os.pathsep.join([path, *rest])


async def main_async(a: argparse.Namespace) -> int:
    variants = [("this tree", str(ROOT))] + ([("compare", a.compare)] if a.compare else [])
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
    with Cluster(keep_tmp=a.keep_tmp) as c:
        c.start_redis(port=a.port or None)
        url = c.start_stub(port=a.port + 1 if a.port else None)
        cfg = c.write_config("router-cpu", [url])
        r = aioredis.from_url(c.redis_url, decode_responses=True)
        texts = T.UniqueTexts(seed=a.seed)
        try:
            for i in range(a.rounds):
                # With --compare, each round starts a fresh router of each tree in turn (the order
                # alternates), so both meet the same moments of the shared machine.
                order = variants if i % 2 == 0 else variants[::-1]
                for name, path in order:
                    if len(variants) > 1 or not c.routers:
                        c.stop_routers()
                        _use_product(path)
                        c.start_routers(cfg, 1)
                        _print(await one_round(c, r, cfg, texts, a.warmup, min(a.conversations, a.warmup),
                                               f"warm-up ({name})"))
                    if a.closed:
                        row = await closed_round(c, r, cfg, texts, a.closed, a.messages, f"round {i + 1} ({name})")
                    else:
                        row = await one_round(c, r, cfg, texts, a.messages, a.conversations,
                                              f"round {i + 1} ({name})")
                    _print(row)
                    rows[name].append(row)
            if a.profile:
                if len(variants) > 1:
                    c.stop_routers()
                    _use_product(str(ROOT))
                    c.start_routers(cfg, 1)
                    await one_round(c, r, cfg, texts, a.warmup, min(a.conversations, a.warmup), "warm-up")
                spy = os.environ.get("PYSPY", "/tmp/pyspy/bin/py-spy")
                env = {**os.environ, "PYTHONPATH": os.environ.get("PYSPY_PATH", "/tmp/pyspy")}
                rec = await asyncio.to_thread(
                    subprocess.Popen, [spy, "record", "-p", str(c.routers[0].pid), "-f", "raw", "-r", "200",
                                       "-o", a.profile], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    await asyncio.sleep(1.0)  # py-spy attaches
                    if a.closed:
                        _print(await closed_round(c, r, cfg, texts, a.closed, 3 * a.messages, "profiled"))
                    else:
                        _print(await one_round(c, r, cfg, texts, 3 * a.messages, a.conversations, "profiled"))
                finally:
                    rec.send_signal(signal.SIGINT)  # py-spy writes the file
                    await asyncio.to_thread(rec.wait, 30)
                say(f"py-spy profile of the router ({ROOT}): {a.profile}")
        finally:
            await r.aclose()
    bad = False
    for name, got in rows.items():
        if got:
            med = {k: statistics.median(x[k] for x in got) for k in ("rate", "router_ms", "redis_ms")}
            say(f"{name}: median of {len(got)}: {med['rate']:.0f} msg/s, router {med['router_ms']:.3f} ms CPU/msg, "
                f"redis-server {med['redis_ms']:.3f} ms CPU/msg")
        bad = bad or any(not x["drained"] or x["missing"] or x["duplicates"] or x["out_of_order"] for x in got)
    return 1 if bad else 0


def _quiet_logs() -> None:
    """The product's intake logs in this process (a real cost of its own): to /dev/null."""
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    with contextlib.redirect_stderr(devnull):
        setup_logging("info", "json")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=3000, help="messages per round (default 3000)")
    p.add_argument("--conversations", type=int, default=500, help="conversations per round (default 500)")
    p.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    p.add_argument("--warmup", type=int, default=1000, help="messages of the warm-up round (default 1000)")
    p.add_argument("--closed", type=int, default=0, metavar="N",
                   help="instead of a queue drained at once: N closed-loop clients, one message in flight each "
                        "(the widget's pace; a new conversation per message)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--port", type=int, default=0, help="redis-server port; the stub NLU on the next one")
    p.add_argument("--profile", default="", help="py-spy raw output file for one extra, profiled round (3x the messages)")
    p.add_argument("--compare", default="", metavar="DIR",
                   help="A/B: also run the router of another checkout (e.g. `git worktree`/`git archive` of a "
                        "commit), a fresh router of each per round, alternating")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs)")
    a = p.parse_args()
    _quiet_logs()
    if a.compare:
        a.compare = str(Path(a.compare).resolve())
    return asyncio.run(main_async(a))


if __name__ == "__main__":
    sys.exit(main())
