"""`python -m bench.timeline` — where one message's time goes, step by step, in the web role.

Runs `bench.widget_cpu` (or `bench.telegram_cpu` with `--telegram`) at one client with the stub
NLU, the role started through `bench/trace_role.py`, which timestamps the steps of the path: the
channel's intake, the intake script, every consumer read, the router's handling, its NLU request
and commit, the widget's wake-ups and frames, the Telegram reply and its Bot API call. Then it takes
the messages whose steps came in the most common order and prints the median time between
consecutive steps, and the running sum from the start of the intake.

    .venv/bin/python -m bench.timeline              # the widget
    .venv/bin/python -m bench.timeline --telegram   # the Telegram webhook

Read it for order and waits: which step waits behind which (the event loop runs what is ready in
the order it became ready), and how long from the line's arrival to the NLU request and to the
reply. Each timestamp costs about a microsecond; CPU totals come from `bench.widget_cpu`. At one
client the Telegram load client sends its next update when the reply's `sendMessage` arrives, while
the web role still finishes the previous one, so its steps interleave more than the widget's.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench import telegram_cpu, widget_cpu

ROOT = Path(__file__).resolve().parent.parent


def steps(events: list[tuple[int, str]], skip: float = 0.2) -> tuple[int, list[tuple[str, str, float, float]]]:
    """(messages of the most common order, [(step, next step, median µs, running sum µs)])."""
    msgs: list[list[tuple[int, str]]] = []
    for t, label in events:
        if label == "accept>":
            msgs.append([])
        if msgs:
            msgs[-1].append((t, label))
    msgs = msgs[int(len(msgs) * skip):-2]  # the warm-up, and the last ones cut off by the stop
    if not msgs:
        return 0, []
    orders = collections.Counter(tuple(label for _, label in m) for m in msgs)
    order, n = orders.most_common(1)[0]
    same = [m for m in msgs if tuple(label for _, label in m) == order]
    out: list[tuple[str, str, float, float]] = []
    total = 0.0
    for i in range(1, len(order)):
        gap = statistics.median((m[i][0] - m[i - 1][0]) / 1000 for m in same)
        total += gap
        out.append((order[i - 1], order[i], gap, total))
    return n, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--telegram", action="store_true", help="the Telegram webhook instead of the widget")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--keep", help="keep the raw events in this file")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(a.keep) if a.keep else Path(tmp) / "events.txt"
        os.environ["BENCH_ROLE_CMD"] = f"{sys.executable} {ROOT / 'bench' / 'trace_role.py'}"
        os.environ["BENCH_TRACE_OUT"] = str(raw)
        if a.telegram:
            telegram_cpu.main(["--rounds", "1", "--n", "1", "--duration", str(a.seconds)])
        else:
            widget_cpu.main(["--clients", "1", "--windows", "1", "--seconds", str(a.seconds)])
        if not raw.exists():
            print("no events: the role did not exit normally", file=sys.stderr)
            return 1
        events = [(int(t), label) for t, label in (line.split() for line in raw.read_text().splitlines())]
    n, rows = steps(events)
    print(f"\n{n} messages in the most common order; µs, median of each step, and the sum from the intake's start")
    for a_, b_, gap, total in rows:
        print(f"  {a_:>14} → {b_:<14} {gap:8.1f} {total:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
