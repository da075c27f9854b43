"""The intent classifier and the model trained on the repo's data.

* The model class itself (run in the Rasa venv, which has scikit-learn): deterministic training,
  pickling that changes no probability, the fast one-message path equal to the vectorizers,
  calibrated confidences, empty input, tiny projects, traditional Chinese.
* The repo's trained model on a real Rasa server: `switchboard eval` on the held-out file passes
  the release gate, and messages written unlike the training data (traditional characters,
  no "hacked"/"stolen" words) still reach a person.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.rasa, pytest.mark.slow]

EXE = str(ROOT / ".venv/bin/switchboard")


@pytest.fixture(scope="module")
def checks() -> dict:  # type: ignore[type-arg]
    p = subprocess.run(
        [str(ROOT / ".venv-rasa/bin/python"), str(ROOT / "tests/rasa_side/intent_model_checks.py")],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1", "RASA_TELEMETRY_ENABLED": "false"},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout)  # type: ignore[no-any-return]


def test_the_stacked_model_is_accurate_and_calibrated(checks: dict) -> None:  # type: ignore[type-arg]
    # 20 BANKING77 intents, 60 training messages each, 361 unseen test messages.
    assert checks["mode_stacked"] == "stack" and checks["mode_single"] == "svm"
    assert checks["accuracy_stacked"] >= 0.9, checks
    assert checks["accuracy_single"] >= 0.9, checks
    # The confidence the fallback threshold reads means what it says (expected calibration error).
    assert checks["ece_stacked"] <= 0.08, checks
    assert checks["all_rows_have_features"]


def test_training_is_deterministic_and_a_saved_model_predicts_the_same(checks: dict) -> None:  # type: ignore[type-arg]
    # Same examples in another order, fold models in worker processes: the same probabilities.
    assert checks["max_prob_diff_reordered"] == 0.0
    # float16 storage with a non-zero bitmap: the loaded model gives the trained model's numbers.
    assert checks["max_prob_diff_pickled"] == 0.0
    assert checks["max_feature_diff_fast_path"] < 1e-6


def test_empty_input_and_tiny_projects(checks: dict) -> None:  # type: ignore[type-arg]
    assert checks["empty_rows_without_features"] == 3 and checks["empty_rows_prob_sum"] == 0.0
    assert checks["tiny_mode"] == "svm" and checks["tiny_prediction"] == "lost"


def test_traditional_chinese_is_understood_like_simplified(checks: dict) -> None:  # type: ignore[type-arg]
    assert checks["zh_changed_by_traditional"] >= 0.8 * checks["zh_heldout"]
    assert checks["zh_normalised_equal"] == checks["zh_heldout"]
    assert checks["zh_accuracy_traditional"] == checks["zh_accuracy_simplified"] >= 0.85


def test_the_repo_model_passes_the_release_gate(rasa_url: str, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    env = {**os.environ, "SWITCHBOARD_RASA_URL": rasa_url}
    p = subprocess.run([EXE, "eval", "--json", str(out)], env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    rep = json.loads(out.read_text())
    assert set(rep["per_lang"]) == {"en", "zh"}
    for m in rep["per_lang"].values():
        assert m["topic_accuracy"] >= 0.92 and m["handoff_recall"] == 1.0
        assert m["false_handoff"] <= 0.03 and m["clarify_rate"] >= 0.85
    # the off-topic section (intents/eval/heldout/offtopic.jsonl)
    assert set(rep["offtopic"]) == {"en", "zh"}
    for m in rep["offtopic"].values():
        assert m["n"] >= 150 and m["clarify_rate"] >= 0.90 and m["false_handoff"] <= 0.01


UNSEEN = [
    # traditional characters
    ("我的帳戶被盜了，幣全部被轉走", "handoff", "theft", "urgent"),
    ("帳號被凍結了，為什麼不能登入", "handoff", "compliance", None),
    ("請問提幣要多久才會到帳", "answer", "withdrawal", None),
    # theft without the words hacked / stolen
    ("my balance shows zero and i never withdrew anything", "handoff", "theft", "urgent"),
    ("钱包里的币全没了，我根本没操作过", "handoff", "theft", "urgent"),
    ("got a text my sim was moved to a new phone and now i cant log in to the exchange", "handoff", "theft", "urgent"),
    # about security, not a report
    ("how do i protect my account from hackers", "answer", "security", None),
    ("转人工", "handoff", "human", None),
    # off-topic (issue #22): a clarification, never a confident answer or a person
    ("where does jelly come from", "clarify", "out_of_scope", None),
    ("when was my lawn last mowed", "clarify", "out_of_scope", None),
    ("disconnect from wifi immediately please", "clarify", "out_of_scope", None),
    ("how old is jennifer aniston", "clarify", "out_of_scope", None),
    ("i need to update my address", "clarify", "out_of_scope", None),
    ("delete the contact uncle john from my phone", "clarify", "out_of_scope", None),
    ("明天去三亚的机票还有吗", "clarify", "out_of_scope", None),
    # fraud told in other words, and "contact me"
    ("请安排专人联系我", "handoff", "human", None),
    ("this charge is bs", "handoff", "theft", "urgent"),
    ("i think this transaction is bogus", "handoff", "theft", "urgent"),
    ("there's a false charge on my account", "handoff", "theft", "urgent"),
    ("please stop my account", "handoff", "theft", "urgent"),
]


def test_unseen_phrasings_are_routed(rasa_url: str) -> None:
    lines = "".join(json.dumps({"channel": "web", "user": f"u{i}", "text": t}) + "\n" for i, (t, *_) in enumerate(UNSEEN))
    env = {**os.environ, "SWITCHBOARD_RASA_URL": rasa_url}
    p = subprocess.run([EXE, "route"], input=lines, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    got = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(got) == len(UNSEEN)
    wrong = []
    for d, (text, action, topic, priority) in zip(got, UNSEEN, strict=True):
        if d["action"] != action or d["topic"] != topic or (priority and d["priority"] != priority):
            wrong.append((text, d["action"], d["topic"], d.get("priority")))
    assert not wrong, wrong
