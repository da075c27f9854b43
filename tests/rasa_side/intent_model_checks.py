"""Checks of the intent model (intents/components/text_features.py), run with the Rasa venv's
Python (the model needs numpy / scipy / scikit-learn / jieba, which the product venv does not
have) by tests/integration/test_intent_model.py. Prints one JSON object with what it measured;
the test makes the assertions.

Data: a slice of BANKING77's training split (../shared/datasets/banking77) for the English
checks, the repo's Chinese training data and held-out file for the traditional-character check.
"""

from __future__ import annotations

import csv
import json
import pickle
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from intents.components._zh_variants import SIMPLIFIED, TRADITIONAL  # noqa: E402
from intents.components.text_features import TfidfSvmIntentModel, normalise  # noqa: E402

BANKING = ROOT.parent / "shared" / "datasets" / "banking77"


def banking_slice(n_intents: int, per_intent: int) -> tuple[list[str], list[str], list[str], list[str]]:
    with (BANKING / "train.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by: dict[str, list[str]] = {}
    for r in rows:
        by.setdefault(r["category"], []).append(" ".join(r["text"].split()))
    intents = sorted(by)[:n_intents]
    tr_x, tr_y, te_x, te_y = [], [], [], []
    for it in intents:
        texts = by[it]
        tr_x += texts[:per_intent]
        tr_y += [it] * len(texts[:per_intent])
        te_x += texts[per_intent : per_intent + 20]
        te_y += [it] * len(texts[per_intent : per_intent + 20])
    return tr_x, tr_y, te_x, te_y


def rasa_examples(lang: str) -> tuple[list[str], list[str]]:
    from rasa.shared.nlu.training_data.loading import load_data

    td = load_data(str(ROOT / "intents" / "data" / "nlu" / lang))
    msgs = [m for m in td.intent_examples if m.get("text")]
    return [m.get("text") for m in msgs], [m.get("intent") for m in msgs]


def heldout(lang: str) -> tuple[list[str], list[str]]:
    xs, ys = [], []
    for p in sorted((ROOT / "intents" / "eval" / "heldout").glob("*.jsonl")):
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                if r.get("lang") == lang and r.get("intent"):
                    xs.append(r["text"])
                    ys.append(r["intent"])
    return xs, ys


def to_traditional(text: str) -> str:
    # Inverse of the table; where two traditional characters share a simplified one, the
    # first wins (any of them maps back).
    inverse: dict[str, str] = {}
    for t, s in zip(TRADITIONAL, SIMPLIFIED, strict=True):
        inverse.setdefault(s, t)
    return "".join(inverse.get(c, c) for c in text)


def ece(probs: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    conf = probs.max(axis=1)
    total = 0.0
    for lo in np.linspace(0, 1, bins, endpoint=False):
        m = (conf > lo) & (conf <= lo + 1 / bins)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def main() -> None:
    out: dict[str, object] = {}
    tr_x, tr_y, te_x, te_y = banking_slice(20, 60)

    # Stacked vs single model on the same slice.
    t0 = time.perf_counter()
    stacked = TfidfSvmIntentModel(n_jobs=2).fit(tr_x, tr_y)
    out["fit_s"] = round(time.perf_counter() - t0, 2)
    single = TfidfSvmIntentModel(stack=False, n_jobs=1).fit(tr_x, tr_y)
    out["mode_stacked"] = stacked.mode_
    out["mode_single"] = single.mode_
    p_stack, ok = stacked.predict_proba(te_x)
    gold = np.array(te_y, dtype=object)
    pred = np.array(stacked.classes_, dtype=object)[p_stack.argmax(axis=1)]
    out["n_test"] = len(te_x)
    out["accuracy_stacked"] = float(np.mean(pred == gold))
    out["accuracy_single"] = float(np.mean(np.array(single.predict(te_x), dtype=object) == gold))
    out["ece_stacked"] = ece(p_stack, pred == gold)
    out["all_rows_have_features"] = bool(ok.all())

    # Same examples in another order (and another process-pool run) -> the same model.
    order = list(range(len(tr_x)))
    random.Random(7).shuffle(order)
    again = TfidfSvmIntentModel(n_jobs=2).fit([tr_x[i] for i in order], [tr_y[i] for i in order])
    p_again, _ = again.predict_proba(te_x)
    out["max_prob_diff_reordered"] = float(np.abs(p_again - p_stack).max())

    # Pickled (compact float16 storage) and loaded -> exactly the same probabilities.
    blob = pickle.dumps(stacked)
    loaded = pickle.loads(blob)
    p_loaded, _ = loaded.predict_proba(te_x)
    out["max_prob_diff_pickled"] = float(np.abs(p_loaded - p_stack).max())
    out["pickle_bytes"] = len(blob)

    # The fast single-message path gives the same features as the vectorizers.
    dense = stacked.transform(te_x[:50]).toarray()
    fast = np.zeros_like(dense)
    for i, t in enumerate(te_x[:50]):
        cols, vals = stacked._sparse_row(t)
        fast[i, cols] = vals
    out["max_feature_diff_fast_path"] = float(np.abs(dense - fast).max())

    # Nothing to go on -> no intent (the caller reports none / falls back).
    p_empty, ok_empty = stacked.predict_proba(["", "   ", "?!..."])
    out["empty_rows_without_features"] = int((~ok_empty).sum())
    out["empty_rows_prob_sum"] = float(p_empty.sum())

    # Too little data for folds: the single SVM, still a usable classifier.
    tiny = TfidfSvmIntentModel().fit(["hi there", "hello", "my card is lost", "lost card"], ["greet", "greet", "lost", "lost"])
    out["tiny_mode"] = tiny.mode_
    out["tiny_prediction"] = tiny.predict(["i lost my card"])[0]

    # Chinese written in traditional characters is understood like its simplified twin.
    zx, zy = rasa_examples("zh")
    zh_model = TfidfSvmIntentModel(stack=False, n_jobs=1).fit(zx, zy)
    hx, hy = heldout("zh")
    trad = [to_traditional(t) for t in hx]
    out["zh_heldout"] = len(hx)
    out["zh_changed_by_traditional"] = sum(a != b for a, b in zip(trad, hx, strict=True))
    out["zh_normalised_equal"] = sum(normalise(a) == normalise(b) for a, b in zip(trad, hx, strict=True))
    gold_zh = np.array(hy, dtype=object)
    out["zh_accuracy_simplified"] = float(np.mean(np.array(zh_model.predict(hx), dtype=object) == gold_zh))
    out["zh_accuracy_traditional"] = float(np.mean(np.array(zh_model.predict(trad), dtype=object) == gold_zh))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
