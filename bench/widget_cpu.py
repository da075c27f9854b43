"""`python -m bench.widget_cpu` — the widget path's own CPU per message, without Rasa.

A quick A/B tool for changes to the widget path (issue #23): a private redis-server, the instant
NLU stand-in (bench/stub_nlu.py), the web role with the router in its process as `switchboard up`
runs it (`--split`: a router process of its own); N closed-loop widget sessions for a few windows. Prints, per window, msg/s, p50 and CPU ms per message of the web role, the router,
redis-server and their sum ("ours": everything outside the NLU; the stub's own CPU is shown apart)
and the median over the windows. `make bench` measures the same path against real Rasa and
opsdroid; this one isolates our part, which is what a change to the path moves.

    .venv/bin/python -m bench.widget_cpu --clients 8 --windows 5 --seconds 4
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from typing import Any

import aiohttp

from bench import texts as T
from bench.load import Probe, closed_loop, widget_workers
from bench.procs import Cluster, say


async def _measure(c: Cluster, n: int, windows: int, seconds: float) -> list[dict[str, Any]]:
    assert c.web is not None and c.stub is not None and c.redis_proc is not None
    probe = Probe({"web": [c.web.pid], "router": c.router_pids(), "redis": [c.redis_proc.pid],
                   "stub": [c.stub.pid]})
    out: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        workers, sessions = await widget_workers(http, f"http://127.0.0.1:{c.web_port}/ws/chat", T.UniqueTexts(), n)
        try:
            for i in range(windows):
                res = await closed_loop(f"widget{n}", workers, probe, warmup=1.0 if i == 0 else 0.3, duration=seconds)
                row = {"msg_s": res.throughput, "p50_ms": res.lat(0.5), "errors": res.errors,
                       **{g: res.cpu_ms_per_msg(g) for g in ("web", "router", "redis", "stub")}}
                row["ours"] = row["web"] + row["router"] + row["redis"]
                out.append(row)
                say(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        finally:
            for s in sessions:
                await s.close()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--keep-tmp", action="store_true")
    p.add_argument("--split", action="store_true",
                   help="the router in a process of its own (default: in the web role's, as `switchboard up` runs it)")
    args = p.parse_args(argv)
    with Cluster(keep_tmp=args.keep_tmp) as c:
        c.start_redis()
        stub = c.start_stub()
        cfg = c.write_config("widget-cpu", [stub])
        if args.split:
            c.start_routers(cfg, 1)
        c.start_web(cfg, combined=not args.split)
        rows = asyncio.run(_measure(c, args.clients, args.windows, args.seconds))
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    say("median  " + " ".join(f"{k}={v:.3f}" for k, v in med.items()))


if __name__ == "__main__":
    main()
