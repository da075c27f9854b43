"""`python -m bench.telegram_cpu`: CPU per message of the Telegram webhook path, without Rasa.

Starts a private redis-server, the instant NLU stand-in (`bench/stub_nlu.py`), the bench's Bot API
(`bench/telegram_light.py`, a process of its own: "telegram"), the web role (Telegram channel in webhook mode) with
the router in its process as `switchboard up` runs it (`--split`: a router process of its own);
then drives the same closed loop as the `telegramN` rows of `bench.run` (a `message`
update POSTed to `/telegram/webhook`, done when the reply's `sendMessage` reaches the fake) and
prints CPU ms per message of every process, per round. Rasa being out of the picture, the web
role's and the router's own cost is what moves — read CPU per message, not msg/s, on a shared
machine.

`--profile SECONDS` then runs N=8 (`--profile-n`) for that long under py-spy (`--py-spy`, default
/tmp/pyspy/bin/py-spy; install with `python3 -m pip install --target /tmp/pyspy py-spy`) on the
web role and the router, writes the raw (collapsed) stacks to `--out` and prints the top entries
(self time per function, and the share of samples under a few known call sites).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench import texts as T
from bench.load import Probe, closed_loop, telegram_workers
from bench.peers import TelegramFake
from bench.procs import ROOT, Cluster, say

GROUPS = ("web", "router", "redis", "stub", "client", "telegram")
# Call sites whose inclusive share of the web role's samples is printed (substring of a frame).
MARKERS = ("send_chat_action", "send_message", "_send_text", "telegram_webhook", "handle_raw", "de_json",
           "normalize", "sink", "httpx", "httpcore", "anyio", "aiohttp", "orjson", "structlog", "redis",
           "pydantic", "xreadgroup", "write (", "send (")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.telegram_cpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--n", default="1,8,32", help="concurrencies (closed-loop workers), comma-separated")
    p.add_argument("--duration", type=float, default=4.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--profile", type=float, default=0.0, help="seconds of N=8 under py-spy (0 = no profile)")
    p.add_argument("--profile-n", type=int, default=8, help="closed-loop workers while profiling")
    p.add_argument("--py-spy", default="/tmp/pyspy/bin/py-spy")
    p.add_argument("--out", type=Path, default=Path("/tmp/tgperf"))
    p.add_argument("--keep-tmp", action="store_true")
    p.add_argument("--split", action="store_true",
                   help="the router in a process of its own (default: in the web role's, as `switchboard up` runs it)")
    return p.parse_args(argv)


def top_entries(raw: Path, limit: int = 25) -> str:
    """Self time per leaf frame and inclusive shares of MARKERS in a py-spy raw (collapsed) file."""
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        c = int(n)
        total += c
        frames = stack.split(";")
        self_t[frames[-1]] += c
        for m in MARKERS:
            if any(m in f for f in frames):
                incl[m] += c
    if not total:
        return "(no samples)"
    out = [f"{total} samples; self time:"]
    out += [f"  {100 * c / total:5.1f} %  {f[:150]}" for f, c in self_t.most_common(limit)]
    out.append("inclusive (any frame containing):")
    out += [f"  {100 * c / total:5.1f} %  {m}" for m, c in incl.most_common()]
    return "\n".join(out)


async def commandstats(r: aioredis.Redis) -> dict[str, int]:
    """Calls per Redis command so far (`INFO commandstats`; a script's commands count apart)."""
    info = await r.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items() if k != "cmdstat_info"}


async def measure(c: Cluster, tg: TelegramFake, a: argparse.Namespace) -> dict[int, list[dict[str, float]]]:
    assert c.web is not None and c.redis_proc is not None and c.stub is not None
    groups = {"web": [c.web.pid], "router": c.router_pids(), "redis": [c.redis_proc.pid], "stub": [c.stub.pid],
              "client": [os.getpid()], "telegram": [tg.pid]}
    await tg.attach()
    texts = T.UniqueTexts(seed=1)
    r = aioredis.Redis.from_url(c.redis_url)
    base = f"http://127.0.0.1:{c.web_port}"
    # Warm up (first requests import and connect lazily).
    ws, clients = telegram_workers(base, tg, texts, 4)
    await closed_loop("warm", ws, Probe(groups), warmup=0.5, duration=2.0)
    await asyncio.gather(*(x.close() for x in clients))
    # The web role keeps working for a while after it starts (migrations, indexes, the first
    # reports): wait until it is idle, then print what the processes burn with nothing to do
    # (pollers, timers, blocked reads) — at low rates a visible share of the CPU per message.
    for _ in range(20):
        t0, idle0 = time.perf_counter(), Probe(groups).snap()["cpu"]
        await asyncio.sleep(2.0)
        idle1, span = Probe(groups).snap()["cpu"], time.perf_counter() - t0
        if idle1["web"] - idle0["web"] < 0.02 * span:
            break
    print("idle (CPU ms per second): " + ", ".join(f"{g} {1000 * (idle1[g] - idle0[g]) / span:.1f}" for g in GROUPS))
    ns = [int(x) for x in a.n.split(",") if x.strip()]
    rows: dict[int, list[dict[str, float]]] = {n: [] for n in ns}
    for rnd in range(a.rounds):
        for n in (ns if rnd % 2 == 0 else ns[::-1]):
            ws, clients = telegram_workers(base, tg, texts, n)
            stats0, sent0 = await commandstats(r), tg.sent
            try:
                res = await closed_loop(f"telegram{n}", ws, Probe(groups), warmup=a.warmup, duration=a.duration)
            finally:
                await asyncio.gather(*(x.close() for x in clients))
            await asyncio.sleep(0.2)  # the last replies' acknowledgements
            stats1, sent1 = await commandstats(r), tg.sent
            row = {g: res.cpu_ms_per_msg(g) for g in GROUPS}
            row["ours"] = row["web"] + row["router"] + row["redis"]
            row["msg_s"] = res.throughput
            row["p50"] = res.lat(0.5)
            row["errors"] = res.errors
            row["others"] = max(0.0, (res.cpu_s["host"] - sum(v for k, v in res.cpu_s.items() if k != "host"))
                                / res.duration)
            per = {k: (stats1.get(k, 0) - stats0.get(k, 0)) / max(1, sent1 - sent0) for k in stats1}
            row["redis_calls"] = sum(per.values())
            rows[n].append(row)
            if rnd == 0 and n == ns[0]:
                print("redis commands per message (all processes): "
                      + ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda x: -x[1]) if v >= 0.01))
            print(f"round {rnd + 1} N={n:<3} {res.throughput:7.1f} msg/s  p50 {row['p50']:6.2f} ms  "
                  f"web {row['web']:.3f}  router {row['router']:.3f}  redis {row['redis']:.3f}  "
                  f"ours {row['ours']:.3f}  stub {row['stub']:.3f}  client {row['client']:.3f}  "
                  f"telegram {row['telegram']:.3f} ms/msg  "
                  f"redis calls {row['redis_calls']:.1f}/msg  "
                  f"errors {res.errors}  others {row['others']:.2f} cores", flush=True)
    print("\nmedians (CPU ms per message):")
    for n, rs in rows.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(f"  N={n:<3} web {med['web']:.3f}  router {med['router']:.3f}  redis {med['redis']:.3f}  "
              f"ours {med['ours']:.3f}   ({med['msg_s']:.0f} msg/s, p50 {med['p50']:.2f} ms)")
    if a.profile > 0:
        await profile(c, tg, a, groups, texts, base)
    return rows


async def profile(c: Cluster, tg: TelegramFake, a: argparse.Namespace, groups: dict[str, list[int]],
                  texts: T.UniqueTexts, base: str) -> None:
    a.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    targets = {"web": groups["web"][0], **({"router": groups["router"][0]} if groups["router"] else {})}
    procs = {}
    for name, pid in targets.items():
        path = a.out / f"pyspy-{name}-{stamp}.txt"
        procs[name] = (path, await asyncio.create_subprocess_exec(
            a.py_spy, "record", "-p", str(pid), "-f", "raw", "--gil", "-r", "250", "-d", str(int(a.profile) + 1),
            "-o", str(path), env={**os.environ, "PYTHONPATH": str(Path(a.py_spy).parent.parent)},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE))
    await asyncio.sleep(1.0)
    ws, clients = telegram_workers(base, tg, texts, a.profile_n)
    try:
        res = await closed_loop(f"profile{a.profile_n}", ws, Probe(groups), warmup=0.2, duration=a.profile)
    finally:
        await asyncio.gather(*(x.close() for x in clients))
    print(f"\nprofiled N={a.profile_n}: {res.throughput:.0f} msg/s, web {res.cpu_ms_per_msg('web'):.3f} ms/msg (under py-spy)")
    for name, (path, proc) in procs.items():
        _, err = await proc.communicate()
        if not path.exists():
            print(f"py-spy on {name} failed: {err.decode(errors='replace')[-500:]}")
            continue
        print(f"\n== {name}: {path}\n{top_entries(path)}")


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    # The roles run this checkout's code (not whatever `switchboard` the venv was installed from),
    # unless BENCH_ROLE_CMD says otherwise.
    path = os.environ.get("PYTHONPATH", "")
    if str(ROOT) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), path) if p)
    with Cluster(keep_tmp=a.keep_tmp) as c:
        c.start_redis()
        stub_url = c.start_stub()
        tg = TelegramFake()
        tg.start()
        c.extra_stops.append(tg.stop)
        cfg = c.write_config("tg", [stub_url], channels=[{"type": "web", "allowed_origins": ["*"]},
                                                         tg.channel_config()])
        c.start_web(cfg, combined=not a.split)
        if a.split:
            c.start_routers(cfg, 1)
        say(f"redis :{c.redis_port}, stub NLU :{c.stub_port}, web :{c.web_port} (pid {c.web.pid if c.web else '?'}), "
            f"router pid {c.router_pids()}")
        runner_factory: Any = None
        with contextlib.suppress(ImportError):
            import uvloop

            runner_factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=runner_factory) as runner:
            runner.run(measure(c, tg, a))
        if a.keep_tmp:
            say(f"kept {c.tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
