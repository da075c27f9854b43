"""Help-centre search latency: build the index, then time each query many times.

    .venv/bin/python bench/help_search.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from handoff.helpcentre import HelpCentre

QUERIES = [
    ("how do I enable 2FA", "en"), ("my withdrawal is stuck", "en"), ("what is a seed phrase", "en"),
    ("deposit on the wrong network, can I get it back?", "en"), ("maker taker fee tiers VIP", "en"),
    ("充值没到账", "zh"), ("提币一直在处理中", "zh"), ("身份认证要多久", "zh"), ("资金费率是什么", "zh"),
    ("我的账户被冻结了怎么办", "zh"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    t = time.perf_counter()
    hc = HelpCentre(Path(__file__).resolve().parent.parent / "help")
    print(f"index: {len(hc.articles.articles)} articles x 2 languages built in {time.perf_counter() - t:.2f}s "
          "(jieba dictionary load included)")
    hc.index.search("warm up", "en")
    times = []
    for _ in range(args.rounds):
        for q, lang in QUERIES:
            t = time.perf_counter()
            hc.index.search(q, lang, 5)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"{len(times)} searches: p50 {statistics.median(times):.2f} ms, p95 {times[int(len(times) * 0.95)]:.2f} ms, "
          f"p99 {times[int(len(times) * 0.99)]:.2f} ms, max {times[-1]:.2f} ms")


if __name__ == "__main__":
    main()
