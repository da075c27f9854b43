#!/usr/bin/env python3
"""The in-domain / out-of-domain decision on its own (issue #22): which signal separates messages
about this exchange from everything else, and how the decision in ``bot/domain.py`` does.

Run it with the Python of the Rasa environment (it has scikit-learn), from the repo root:

    .venv-rasa/bin/python bench/nlu_offtopic.py [--json FILE]

What it does, without Rasa (the model class of ``intents/components/text_features.py`` with the
classifier parameters of ``intents/config.yml``):

1. trains the classifier twice on ``intents/data/nlu``: without our off-topic set
   (``offtopic.yml``, i.e. only the few out-of-scope examples there were before) and with it;
2. scores the held-out messages (``intents/eval/heldout``): the in-domain ones of the main section
   (every topic but ``out_of_scope``) against the off-topic section, with these signals
   (higher = more in-domain):

   * ``top_in_domain_conf``: the classifier's highest in-domain probability (closed-world confidence)
   * ``not_oos_class``: 1 - the probability of the out-of-scope class (unrelated + gibberish)
   * ``conf_x_not_oos``: the two combined (their product)
   * ``knn_in_domain``: mean cosine similarity of the 3 nearest in-domain training messages
   * ``knn_margin``: that minus the same for the nearest off-topic training messages
   * ``vocab_coverage``: share of the message's words seen in in-domain training messages
   * ``one_class_svm``: a one-class SVM (linear kernel) on in-domain training messages only

   For each: AUROC, and the share of off-topic messages caught when 2 % / 5 % of in-domain
   messages may be caught too;
3. for the model with the off-topic set, the decision itself (``bot.domain.off_topic`` with the
   classifier's top-5 ranking, as the policy sees it): off-topic recall and in-domain false
   rejections, per language.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot import domain  # noqa: E402
from intents.components.text_features import TfidfSvmIntentModel  # noqa: E402

if TYPE_CHECKING:
    from intents.client import NLUResult

OFF = ("out_of_scope_unrelated", "out_of_scope_gibberish")


def load_training(with_offtopic: bool) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    for f in sorted((REPO / "intents" / "data" / "nlu").glob("*/*.yml")):
        if f.name == "offtopic.yml" and not with_offtopic:
            continue
        for block in (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- ") and "intent" in block:
                    texts.append(re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", line[2:].strip()))
                    labels.append(block["intent"])
    return texts, labels


def load_heldout() -> list[dict[str, Any]]:
    items = []
    for f in sorted((REPO / "intents" / "eval" / "heldout").glob("*.jsonl")):
        items += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return items


def classifier_params() -> dict[str, Any]:
    cfg = yaml.safe_load((REPO / "intents" / "config.yml").read_text())
    entry = next(c for c in cfg["pipeline"] if c["name"].endswith("TfidfIntentClassifier"))
    return {k: v for k, v in entry.items() if k not in ("name", "ranking_length")}


def signals(model: TfidfSvmIntentModel, train: tuple[list[str], list[str]], texts: list[str]) -> dict[str, np.ndarray]:
    from sklearn.preprocessing import normalize
    from sklearn.svm import OneClassSVM

    T, L = train
    classes = np.array(model.classes_)
    in_intent = np.array([not c.startswith("out_of_scope") for c in classes])
    off_intent = np.isin(classes, OFF)
    P, _ = model.predict_proba(texts)
    in_rows = np.array([lab not in OFF for lab in L])
    Xt = normalize(model.transform(T))
    X = normalize(model.transform(texts))
    S = (X @ Xt.T).toarray()
    knn_in = np.sort(S[:, in_rows], axis=1)[:, -3:].mean(axis=1)
    knn_off = np.sort(S[:, ~in_rows], axis=1)[:, -3:].mean(axis=1) if (~in_rows).any() else np.zeros(len(texts))
    _, toks = model._prepare(texts)
    _, train_toks = model._prepare([t for t, keep in zip(T, in_rows, strict=False) if keep])
    vocab = {w for ts in train_toks for w in ts}
    ocsvm = OneClassSVM(kernel="linear", nu=0.05).fit(Xt[in_rows])
    return {
        "top_in_domain_conf": P[:, in_intent].max(axis=1),
        "not_oos_class": 1 - P[:, off_intent].sum(axis=1),
        "conf_x_not_oos": P[:, in_intent].max(axis=1) * (1 - P[:, off_intent].sum(axis=1)),
        "knn_in_domain": knn_in,
        "knn_margin": knn_in - knn_off,
        "vocab_coverage": np.array([np.mean([w in vocab for w in ts]) if ts else 0.0 for ts in toks]),
        "one_class_svm": ocsvm.decision_function(X),
    }


def separation(s_in: np.ndarray, s_off: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_off))]
    out = {"auroc": round(float(roc_auc_score(y, np.r_[s_in, s_off])), 3)}
    for loss in (0.02, 0.05):
        out[f"caught_at_{int(loss * 100)}pct_in_domain_loss"] = round(float(np.mean(s_off < np.quantile(s_in, loss))), 3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    items = load_heldout()
    in_domain = [i for i in items if i.get("section", "main") == "main" and i["topic"] != "out_of_scope"]
    off_topic = [i for i in items if i.get("section") == "offtopic"]
    print(f"held-out: {len(in_domain)} in-domain, {len(off_topic)} off-topic messages", file=sys.stderr)
    results: dict[str, Any] = {"signals": {}, "decision": {}}
    params = classifier_params()
    for with_off in (False, True):
        name = "with_offtopic_set" if with_off else "without_offtopic_set"
        train = load_training(with_off)
        t0 = time.perf_counter()
        model = TfidfSvmIntentModel(**params).fit(*train)
        took = time.perf_counter() - t0
        print(f"{name}: {len(train[0])} training messages, fitted in {took:.0f} s", file=sys.stderr)
        s_in = signals(model, train, [i["text"] for i in in_domain])
        s_off = signals(model, train, [i["text"] for i in off_topic])
        results["signals"][name] = {k: separation(s_in[k], s_off[k]) for k in s_in}
        results["signals"][name]["fit_s"] = round(took, 1)
        if with_off:
            for group, rows in (("in_domain", in_domain), ("off_topic", off_topic)):
                P, _ = model.predict_proba([i["text"] for i in rows])
                for lang in ("en", "zh"):
                    flagged = []
                    for i, p in zip(rows, P, strict=False):
                        if i["lang"] != lang:
                            continue
                        order = np.argsort(-p)[:5]
                        # The fields domain.off_topic reads (NLUResult's module needs the product's venv).
                        nlu = cast("NLUResult", SimpleNamespace(
                            intent=model.classes_[order[0]], confidence=float(p[order[0]]),
                            ranking=tuple((model.classes_[j], float(p[j])) for j in order)))
                        top_is_handoff = model.classes_[order[0]].split("_")[0] in ("theft", "compliance", "human")
                        off = nlu.intent in OFF or domain.off_topic(i["text"], nlu, top_is_handoff) is not None
                        flagged.append(off)
                    key = "off_topic_recall" if group == "off_topic" else "in_domain_flagged"
                    results["decision"].setdefault(lang, {})[key] = round(float(np.mean(flagged)), 3)
    for name, table in results["signals"].items():
        print(f"\n{name} (fit {table.pop('fit_s')} s)")
        print(f"  {'signal':20s} {'AUROC':>6s} {'caught@2%':>10s} {'caught@5%':>10s}")
        for k, v in table.items():
            print(f"  {k:20s} {v['auroc']:6.3f} {v['caught_at_2pct_in_domain_loss']:10.3f} {v['caught_at_5pct_in_domain_loss']:10.3f}")
    print("\ndecision (bot/domain.py + the out-of-scope class), per language:")
    for lang, m in results["decision"].items():
        print(f"  {lang}: off-topic recall {m['off_topic_recall']:.3f}, in-domain flagged {m['in_domain_flagged']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
