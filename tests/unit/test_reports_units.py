"""Pure parts of the reports: how a decision's handoff reason is filed, the period a supervisor
asks for, percentiles, CSV cells a spreadsheet would run, and the Grafana dashboard's metrics."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

import handoff.reports.metrics  # noqa: F401  (registers the metrics)
from bot.models import Decision
from handoff.reports.query import Table, percentile
from handoff.reports.store import reason_kind
from handoff.reports.web import BadRequest, period, to_csv
from tests.conftest import ROOT


def d(action: str, topic: str, reason: str, silent: bool = False) -> Decision:
    return Decision(message_id="m", conversation_id="c", channel="web", action=action, topic=topic, intent="x",
                    confidence=0.5, priority="normal", reply="", lang="en", reason=reason, silent=silent)


@pytest.mark.parametrize(("action", "topic", "reason", "kind"), [
    ("handoff", "theft", "safety_rule:stolen", "safety_rule"),
    ("handoff", "theft", "safety_rule:freeze+nlu", "safety_rule"),
    ("handoff", "theft", "secret_exposed", "safety_rule"),
    ("handoff", "compliance", "nlu", "classifier"),
    ("handoff", "human", "second_fallback", "second_failure"),
    ("handoff", "human", "clarify_to_ticket", "second_failure"),
    ("handoff", "human", "safety_rule:ask_person", "user_asked"),
    ("handoff", "human", "nlu", "user_asked"),
    ("clarify", "out_of_scope", "low_confidence", "low_confidence"),
])
def test_handoffs_are_filed_under_the_reason_a_lead_reads(action: str, topic: str, reason: str, kind: str) -> None:
    assert reason_kind(d(action, topic, reason)) == kind


def test_periods_are_whole_utc_days_and_bad_ones_say_why() -> None:
    now = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
    assert period({"period": "today"}, now)[1:] == (datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC))
    assert period({"period": "7d"}, now)[1] == datetime(2026, 3, 4, tzinfo=UTC)
    assert period({"period": "custom", "from": "2026-02-01", "to": "2026-02-28"}, now)[1:] == (
        datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    for q, why in (({"period": "year"}, "period must be"), ({"period": "custom", "from": "x", "to": "y"}, "YYYY-MM-DD"),
                   ({"period": "custom", "from": "2026-03-01", "to": "2026-02-01"}, "ends before"),
                   ({"period": "custom", "from": "2020-01-01", "to": "2026-01-01"}, "at most")):
        with pytest.raises(BadRequest, match=why):
            period(q, now)


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile([7], 0.9) == 7


def test_csv_cells_never_run_as_formulas() -> None:
    t = Table("agents", "team", ("a", "b"), [("agent", "Agent", "客服"), ("n", "N", "N")], rows=[["=HYPERLINK(1)", 3],
                                                                                            ["张三", None]])
    assert to_csv([t], True) == "agent,n\n'=HYPERLINK(1),3\n张三,\n"


def test_the_grafana_dashboard_reads_metrics_the_product_exports() -> None:
    dash = (ROOT / "deploy" / "grafana" / "switchboard.json").read_text()
    json.loads(dash)
    names = set(re.findall(r"switchboard_[a-z0-9_]+", dash))
    known = {m.name + ("_total" if m.type == "counter" else "") for m in REGISTRY.collect()}
    assert names and names <= known, names - known
