"""Medians over rounds, targets with PASS/MISS, the printed tables and the JSON file."""

from __future__ import annotations

import math
import statistics
from typing import Any

from rich.console import Console
from rich.table import Table

TARGETS = {
    "ratio": 0.97,  # our throughput / raw Rasa, unique texts, N = 8 and 32
    "cpu_ms": 1.5,  # CPU per message outside Rasa
    "overhead_p99_ms": 5.0,  # router overhead excluding NLU time
    "mix_speedup": 1.5,  # repeated mix with the parse cache vs raw Rasa
    "widget_p95_ms": 300.0,  # 200 concurrent widget sessions, NLU included
}


def med(values: list[float]) -> float:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(vals) if vals else float("nan")


def fmt(v: float | None, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
        return "–"
    return f"{v:,.{nd}f}"


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "[yellow]n/a[/]"
    return "[bold green]PASS[/]" if ok else "[bold red]MISS[/]"


def aggregate(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Medians per measured system over its rounds."""
    out: dict[str, dict[str, Any]] = {}
    for key, rs in rounds.items():
        if not rs:
            continue
        m: dict[str, Any] = {"rounds": len(rs)}
        for f in ("throughput", "p50_ms", "p95_ms", "p99_ms", "errors", "completed"):
            m[f] = med([r.get(f, float("nan")) for r in rs])
        m["router_events"] = {k: sum(int((r.get("router_events") or {}).get(k, 0)) for r in rs)
                              for k in ("nlu", "redis", "late")}
        for f in ("ratio", "cpu_ratio", "total_cpu_ms", "ours_cpu_ms", "router_cpu_ms", "rasa_cpu_ms", "client_cpu_ms", "redis_cpu_ms",
                  "web_cpu_ms", "rasa_cores", "other_cores", "overhead_p99_ms", "overhead_p50_ms",
                  "overhead_share_le_5ms", "hit_rate", "speedup", "cpu_in_parses"):
            vals = [r[f] for r in rs if f in r]
            if vals:
                m[f] = med(vals)
        out[key] = m
    return out


def print_report(con: Console, res: dict[str, Any]) -> None:
    agg: dict[str, dict[str, Any]] = res["medians"]
    rounds = res["config"]["rounds"]

    t = Table(title=f"Throughput and latency — closed loop, N requests in flight, medians of {rounds} rounds "
                    "(unique texts unless marked 'repeated mix')", title_justify="left")
    for col, just in (("system", "left"), ("N", "right"), ("msg/s", "right"), ("p50", "right"),
                      ("p95", "right"), ("p99 ms", "right"), ("ratio", "right"), ("CPU ratio⁵", "right"),
                      ("ours¹", "right"), ("router", "right"), ("ovh p99²", "right"),
                      ("Rasa", "right"), ("Rasa cores", "right"), ("others³", "right"),
                      ("errors⁴", "right")):
        t.add_column(col, justify=just, no_wrap=(col == "system"))  # type: ignore[arg-type]
    for key, label in res["rows"]:
        m = agg.get(key)
        if not m:
            continue
        t.add_row(label, str(res["n_of"][key]), fmt(m["throughput"]), fmt(m["p50_ms"]), fmt(m["p95_ms"]),
                  fmt(m["p99_ms"]), fmt(m.get("ratio"), 3), fmt(m.get("cpu_ratio"), 2), fmt(m.get("ours_cpu_ms"), 2),
                  fmt(m.get("router_cpu_ms"), 2), fmt(m.get("overhead_p99_ms"), 2), fmt(m.get("rasa_cpu_ms"), 1),
                  fmt(m.get("rasa_cores"), 2), fmt(m.get("other_cores"), 2),
                  "" if key.startswith("raw") else "/".join(str(v) for v in m.get("router_events", {}).values()))
    con.print(t)
    con.print("  CPU columns are ms of CPU per message: ours¹, router process(es), Rasa server(s); ratio = msg/s ÷ raw "
              "Rasa's at the same N.\n  ¹ direct: router + redis-server + the product's intake (measured alone, it runs in the load "
              "client here); widget: router + redis-server + web role. ² router-side histogram "
              "switchboard_router_overhead_seconds (time per message outside the NLU call), p99 interpolated "
              "in its bucket. ³ CPU used by processes that are not part of this bench (other engineers' jobs); compare Rasa's "
              "CPU per parse in the raw rows with the end-to-end rows to see how much interleaving inflates every CPU figure. ⁴ router log events "
              "summed over rounds, NLU/Redis/late: NLU calls that failed (5 s time-out under load; the router marks the "
              "server down and holds every message until a probe sees it), Redis calls that failed (the entry waits "
              "for XAUTOCLAIM, 30 s), entries that gave up waiting for their conversation's previous message. ⁵ CPU per message of everything "
              "the bench runs (Rasa + client) raw ÷ the same end to end (Rasa + router + redis + web + client): what the "
              "ratio tends to on a dedicated, CPU-bound machine — independent of the CPU share other jobs left us.")

    for suffix, how in (("", "as `switchboard up` runs it: the router in the web role's process"),
                        ("split", "with the router in a process of its own, as the images and Kubernetes run it")):
        if not any(f"opsdroid{n}" in agg for n in (1, 8, 32)) or not any(f"widget{suffix}{n}" in agg for n in (1, 8, 32)):
            continue
        pt = Table(title=f"Peers — switchboard {how}; same Rasa server and model, same texts, interleaved rounds, "
                         "medians: msg/s (÷ raw Rasa), p50 ms, CPU ms per message outside Rasa", title_justify="left")
        for col in ("N", "raw Rasa /model/parse", "opsdroid 0.31 (websocket + rasanlu)", "switchboard widget (WebSocket)",
                    "widget ÷ opsdroid", "switchboard Telegram webhook", "Telegram ÷ opsdroid"):
            pt.add_column(col, justify="right")
        for n in (1, 8, 32):
            r, o, w = agg.get(f"raw{n}", {}), agg.get(f"opsdroid{n}", {}), agg.get(f"widget{suffix}{n}", {})
            tgm = agg.get(f"telegram{suffix}{n}", {})

            def cell(m: dict[str, Any], raw: bool = False) -> str:
                if not m:
                    return "–"
                out = f"{fmt(m['throughput'])}"
                if not raw:
                    out += f" ({fmt(m.get('ratio'), 2)})"
                out += f", p50 {fmt(m['p50_ms'], 1)}"
                if not raw:
                    out += f", CPU {fmt(m.get('ours_cpu_ms'), 2)} = {fmt(m.get('cpu_in_parses'), 2)} parse"
                return out

            pt.add_row(str(n), cell(r, True), cell(o), cell(w), fmt(w.get("vs_opsdroid"), 2), cell(tgm),
                       fmt(tgm.get("vs_opsdroid"), 2))
        con.print(pt)
        con.print("  CPU outside Rasa: opsdroid = its one process; widget and Telegram = web role + router + redis-server. "
                  "Measured from /proc CPU time over the same window as the throughput, so it is much less "
                  "sensitive to other jobs on the machine than msg/s. '= x parse': the same CPU ÷ Rasa's CPU per "
                  "parse in the same round — it moves with the machine's speed, so this figure compares across "
                  "machines and hours (multiply by a steady machine's parse CPU to estimate ms there).")

    tt = Table(title="Targets", title_justify="left")
    for col in ("what", "measured", "target", ""):
        tt.add_column(col)
    for row in res["targets"]:
        tt.add_row(row["what"], row["measured"], row["target"], verdict(row["ok"]))
    con.print(tt)

    b = res.get("burst")
    if b:
        bt = Table(title=f"Burst — {b['messages']:,} messages over {b['conversations']} conversations enqueued at once "
                         f"({b['texts']}), {b['routers']} router, {b['rasa']} Rasa", title_justify="left")
        bt.add_column("what")
        bt.add_column("value", justify="right")
        bt.add_row("enqueue (pipelined intake Lua)", f"{fmt(b['enqueue_s'], 2)} s")
        bt.add_row("time to drain (first XADD → last decision committed)",
                   f"{fmt(b['drain_s'], 1)} s" + ("" if b["drained"] else " — NOT drained (time bound)"))
        bt.add_row("drain rate", f"{fmt(b['drain_rate'])} msg/s")
        bt.add_row("decisions: exactly one per message", f"{b['exactly_once']} ({b['decided']:,} decided, "
                   f"{b['missing']} missing, {b['duplicates']} duplicated)")
        bt.add_row("in order per conversation", f"{b['in_order']} ({b['out_of_order']} out of order)")
        bt.add_row("dead letters", str(b["dead_letters"]))
        ev = b.get("router_events") or {}
        bt.add_row("router errors NLU / Redis / late (see ⁴)", f"{ev.get('nlu', 0)} / {ev.get('redis', 0)} / {ev.get('late', 0)}")
        bt.add_row("actions", ", ".join(f"{k} {v}" for k, v in sorted(b["actions"].items())))
        bt.add_row("parse cache hits / misses", f"{b['cache'].get('hit', 0):,.0f} / {b['cache'].get('miss', 0):,.0f}")
        bt.add_row("CPU ms/msg router / redis / web / Rasa",
                   " / ".join(fmt(b["cpu_ms_per_msg"].get(k), 2) for k in ("router", "redis", "web", "rasa")))
        for name, kb in b["peak_rss_mb"].items():
            bt.add_row(f"peak RSS {name} (VmHWM)", f"{fmt(kb, 0)} MB")
        con.print(bt)

    wmany: dict[str, Any] | None = res.get("widget_many")
    if wmany:
        w = wmany
        wt = Table(title=f"Widget — {w['sessions']} concurrent WebSocket sessions × {w['messages_each']} messages, "
                         f"think time {w['think_s'][0]}–{w['think_s'][1]} s (unique texts, NLU included), "
                         f"medians of {w['rounds']} rounds", title_justify="left")
        for col in ("connected", "replies", "no reply", "offered msg/s", "p50 ms", "p95 ms", "p99 ms",
                    "CPU ms/msg router+redis+web"):
            wt.add_column(col, justify="right")
        wt.add_row(fmt(w["connected"], 0), fmt(w["replies"], 0), fmt(w["no_reply"], 0), fmt(w["offered_rate"]),
                   fmt(w["p50_ms"]), fmt(w["p95_ms"]), fmt(w["p99_ms"]), fmt(w["ours_cpu_ms"], 2))
        con.print(wt)

    s = res.get("scaling")
    if s:
        st = Table(title="Scaling on this 2-core machine (direct XADD, N=32, unique texts, medians)", title_justify="left")
        for col in ("routers", "Rasa", "msg/s", "vs 1+1", "raw Rasa msg/s", "ratio", "Rasa cores", "router cores",
                    "others' cores"):
            st.add_column(col, justify="right")
        for row in s["rows"]:
            st.add_row(str(row["routers"]), str(row["rasa"]), fmt(row["throughput"]), fmt(row["vs_base"], 2),
                       fmt(row.get("raw")), fmt(row.get("ratio"), 3), fmt(row.get("rasa_cores"), 2),
                       fmt(row.get("router_cores"), 2), fmt(row.get("other_cores"), 2))
        c = s.get("ceiling")
        if c:
            st.add_row("1", "stub⁶", fmt(c["drain_rate"]), "", "", "", "", fmt(c["cores"].get("router"), 2),
                       fmt(max(0.0, c["cores"].get("host", 0.0) - sum(v for k, v in c["cores"].items() if k != "host")), 2))
        con.print(st)
        if c:
            ev = c.get("router_events") or {}
            con.print(f"  ⁶ router ceiling: {c['messages']:,} unique messages enqueued at once, one router, an NLU stub "
                      f"that answers at once (bench/stub_nlu.py): {'drained' if c['drained'] else 'NOT drained'} in "
                      f"{fmt(c['drain_s'], 1)} s, {fmt(c['cpu_ms_per_msg'].get('router'), 2)} ms router CPU per message, "
                      f"exactly once: {c['exactly_once']}, in order: {c['in_order']}, router errors NLU/Redis/late "
                      f"{ev.get('nlu', 0)}/{ev.get('redis', 0)}/{ev.get('late', 0)}.")
        con.print(f"  {s['note']}")

    for line in res.get("notes", []):
        con.print(f"• {line}")
