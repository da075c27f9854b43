"""Prometheus figures for live ops, the same as the reports': decisions by channel, language,
topic, action and reason (containment, handoff and clarify rates are ratios of these), and the
conversations that reached a person. Ticket-side figures (SLA, CSAT) come from `ticket_figures`,
a collector the web role registers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

from bot.models import Decision

if TYPE_CHECKING:
    from handoff.reports.query import Table

REPORT_DECISIONS = Counter(
    "switchboard_report_decisions_total",
    "Decisions recorded for reports (action agent: a message to a person-owned conversation)",
    ["channel", "lang", "topic", "action", "reason"],
)
MODEL_DECISIONS = Counter("switchboard_report_model_decisions_total", "Decisions per NLU model version",
                          ["model_version", "action"])


def observe(d: Decision, action: str, reason: str) -> None:
    REPORT_DECISIONS.labels(d.channel, d.lang, d.topic, action, reason).inc()
    MODEL_DECISIONS.labels(d.model_version or "", action).inc()

# Ticket-side figures of today (UTC), refreshed by the web role (`refresh_loop`).
SLA_TODAY = Gauge("switchboard_report_sla_tickets_today", "Tickets opened today by priority and SLA state",
                  ["priority", "state"], multiprocess_mode="max")
FRT_P90_TODAY = Gauge("switchboard_report_first_response_p90_minutes_today",
                      "p90 first response time of today's tickets, minutes", ["priority"], multiprocess_mode="max")
FRT_TARGET = Gauge("switchboard_report_first_response_target_minutes", "SLA first response target, minutes",
                   ["priority"], multiprocess_mode="max")
BACKLOG = Gauge("switchboard_report_backlog_open_tickets", "Open tickets now", multiprocess_mode="max")
CSAT_TODAY = Gauge("switchboard_report_csat_average_today", "Average CSAT of today's rated tickets",
                   multiprocess_mode="max")


def set_team(tables: list[Table]) -> None:
    """Copy today's team figures (from `query.team_and_csat`) into the gauges."""
    by = {t.id: t for t in tables}
    for prio, met, warned, breached in by["sla_outcomes"].rows:
        for state, n in (("met", met), ("warned", warned), ("breached", breached)):
            SLA_TODAY.labels(prio, state).set(float(n or 0))
    for row in by["response_times"].rows:
        FRT_P90_TODAY.labels(row[0]).set(float(row[3] or 0))
        FRT_TARGET.labels(row[0]).set(float(row[4] or 0))
    backlog = by["backlog"].rows
    if backlog:
        BACKLOG.set(float(backlog[-1][1] or 0))
    dist = [(int(str(r[0])), int(str(r[1] or 0))) for r in by["csat_distribution"].rows]
    n = sum(c for _, c in dist)
    CSAT_TODAY.set(sum(score * c for score, c in dist) / n if n else 0.0)
