#!/usr/bin/env python3
"""BANKING77 benchmark of our Rasa NLU intent classifier.

Run it with the Python of the Rasa environment (Python 3.10, rasa 3.6), from anywhere:

    RASA_TELEMETRY_ENABLED=false .venv-rasa/bin/python bench/nlu_banking77.py

What it does:

1. reads BANKING77 (``<repo>/../shared/datasets/banking77``, or ``$BANKING77_DIR``) and
   writes the 10,003 training messages as Rasa NLU YAML into a temporary directory;
2. writes a Rasa config with the *same classifier entry* (name and parameters) as our
   pipeline in ``intents/config.yml``, behind a ``WhitespaceTokenizer`` (English data);
3. trains it with ``rasa train nlu`` in a subprocess (repo root on PYTHONPATH, a fresh
   training cache so nothing is restored) and measures the wall-clock time;
4. loads the trained model in-process with ``rasa.core.agent.Agent.load`` and parses the
   3,080 test messages one by one with ``agent.parse_message``: accuracy, macro-F1, time
   per message, and how the confidence behaves as a fallback threshold;
5. prints a table next to the reference figures from docs (DESIGN.md) and saves JSON to
   ``bench/results/nlu_banking77-<timestamp>.json``.

The test set is only used here, once per run; parameters were chosen on a validation
split of the training data (see intents/components/README.md). That tuning loop is
``--validate``: k-fold cross-validation on the *training* split only, in-process (the model
class without Rasa), with the classifier parameters of ``intents/config.yml`` plus
``--set name=value`` overrides (JSON values), e.g.

    .venv-rasa/bin/python bench/nlu_banking77.py --validate --set meta_C=0.02 --set knn_k=3
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "datasets" / "banking77"
PIPELINE_CONFIG = REPO / "intents" / "config.yml"
RESULTS_DIR = REPO / "bench" / "results"
CLASSIFIER_MARKER = "TfidfIntentClassifier"

# sha256 of the files as published (see the dataset's README.md)
EXPECTED_SHA256 = {
    "train.csv": "b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b",
    "test.csv": "d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d",
}

# Reference figures (DESIGN.md, "Measured on these machines"; last row: published, unverified)
REFERENCES: list[tuple[str, str, str]] = [
    ("Rasa LogisticRegressionClassifier (word + char 2-5 counts)", "0.891", "~3 min"),
    ("Rasa DIET, no transformer, 40 epochs", "0.880", "~5 min"),
    ("Rasa DIET default pipeline, 100 epochs", "-", "~3 h"),
    ("TF-IDF (word 1-2 + char 2-5) + linear SVM, sklearn outside Rasa", "0.913", "9 s"),
    ("Large pre-trained encoders (published)", "~0.93-0.94", "-"),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data


def data_dir() -> Path:
    return Path(os.environ.get("BANKING77_DIR") or DEFAULT_DATA_DIR).resolve()


def read_split(d: Path, name: str) -> tuple[list[str], list[str], str]:
    path = d / f"{name}.csv"
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != EXPECTED_SHA256[f"{name}.csv"]:
        log(f"WARNING: {path} sha256 {digest} differs from the published file")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = [" ".join(r["text"].split()) for r in rows]  # a few texts contain newlines
    labels = [r["category"] for r in rows]
    return texts, labels, digest


def write_rasa_nlu(texts: list[str], labels: list[str], path: Path) -> None:
    """Rasa NLU YAML, written with Rasa's own writer (takes care of quoting)."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    for t in texts:
        # Rasa's YAML reader would treat "[x](y)" as an entity annotation.
        if re.search(r"\[[^\]]*\]\([^)]*\)", t):
            raise ValueError(f"training text looks like entity markup: {t!r}")
    td = TrainingData([Message(data={"text": t, "intent": y}) for t, y in zip(texts, labels, strict=True)])
    RasaYAMLWriter().dump(path, td)


def bench_config(work: Path) -> tuple[Path, dict[str, Any]]:
    """Our pipeline's classifier entry, verbatim, behind a WhitespaceTokenizer."""
    from rasa.shared.utils.io import read_yaml_file, write_yaml

    ours = read_yaml_file(PIPELINE_CONFIG)
    entries = [c for c in ours.get("pipeline", []) if CLASSIFIER_MARKER in str(c.get("name"))]
    if len(entries) != 1:
        raise SystemExit(f"expected one {CLASSIFIER_MARKER} entry in {PIPELINE_CONFIG}")
    classifier = dict(entries[0])
    cfg = {
        "recipe": "default.v1",
        "assistant_id": "banking77-bench",
        "language": "en",
        "pipeline": [{"name": "WhitespaceTokenizer"}, classifier],
        "policies": [],
    }
    path = work / "config.yml"
    write_yaml(cfg, path)
    return path, classifier


# ---------------------------------------------------------------------------- train


def train(work: Path, config: Path, nlu: Path) -> dict[str, Any]:
    rasa_bin = Path(sys.executable).parent / "rasa"
    cmd = [str(rasa_bin)] if rasa_bin.exists() else [sys.executable, "-m", "rasa"]
    cmd += [
        "train", "nlu", "--config", str(config), "--nlu", str(nlu),
        "--out", str(work / "models"), "--fixed-model-name", "banking77",
    ]
    env = dict(os.environ)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["RASA_CACHE_DIRECTORY"] = str(work / "rasa-cache")  # empty cache: nothing restored
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    log(f"training: {' '.join(cmd)}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    (work / "train.log").write_text(proc.stdout)
    model = work / "models" / "banking77.tar.gz"
    if proc.returncode != 0 or not model.exists():
        log(proc.stdout[-5000:])
        raise SystemExit(f"rasa train failed (exit {proc.returncode})")

    # The classifier's own training time, from Rasa's "Starting/Finished training" log lines.
    stamps: dict[str, datetime] = {}
    for line in proc.stdout.splitlines():
        m = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d).*(Starting to train|Finished training) component '(\w+)'", line)
        if m and m.group(3) == CLASSIFIER_MARKER:
            stamps[m.group(2)] = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
    component_s = (
        (stamps["Finished training"] - stamps["Starting to train"]).total_seconds() if len(stamps) == 2 else None
    )
    return {
        "command": cmd,
        "wall_clock_s": round(wall, 2),
        "classifier_component_s": component_s,  # 1 s resolution (Rasa's log timestamps)
        "model_path": str(model),
        "model_size_bytes": model.stat().st_size,
    }


# ------------------------------------------------------------------------- evaluate


def quiet_rasa_logging() -> None:
    from rasa.utils.log_utils import configure_structlog

    logging.basicConfig(level=logging.WARNING)
    configure_structlog(logging.WARNING)
    for name in ("rasa", "tensorflow", "absl", "jieba"):
        logging.getLogger(name).setLevel(logging.WARNING)


async def parse_all(model: Path, texts: list[str]) -> tuple[list[dict[str, Any]], float, float]:
    from rasa.core.agent import Agent

    t0 = time.perf_counter()
    agent = Agent.load(str(model))
    load_s = time.perf_counter() - t0
    await agent.parse_message("warm up")
    out: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for t in texts:
        out.append(await agent.parse_message(t))
    return out, load_s, time.perf_counter() - t0


def metrics(gold: list[str], parsed: list[dict[str, Any]]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    pred = [(p.get("intent") or {}).get("name") or "<none>" for p in parsed]
    conf = [float((p.get("intent") or {}).get("confidence") or 0.0) for p in parsed]
    labels = sorted(set(gold))
    correct = [p == g for p, g in zip(pred, gold, strict=True)]
    n = len(gold)

    # Expected calibration error (10 equal-width bins) of the top confidence.
    ece = 0.0
    for b in range(10):
        lo, hi = b / 10, (b + 1) / 10
        idx = [i for i, c in enumerate(conf) if (lo < c <= hi) or (b == 0 and c == 0.0)]
        if idx:
            acc_b = sum(correct[i] for i in idx) / len(idx)
            conf_b = sum(conf[i] for i in idx) / len(idx)
            ece += len(idx) / n * abs(acc_b - conf_b)

    thresholds = []
    for th in (0.3, 0.5, 0.7, 0.9):
        kept = [i for i in range(n) if conf[i] >= th]
        thresholds.append({
            "threshold": th,
            "coverage": round(len(kept) / n, 4),
            "accuracy_on_covered": round(sum(correct[i] for i in kept) / len(kept), 4) if kept else None,
        })
    top = Counter((g, p) for g, p in zip(gold, pred, strict=True) if g != p).most_common(8)
    return {
        "n": n,
        "accuracy": round(accuracy_score(gold, pred), 4),
        "macro_f1": round(f1_score(gold, pred, labels=labels, average="macro", zero_division=0), 4),
        "no_intent": sum(p == "<none>" for p in pred),
        "mean_confidence": round(sum(conf) / n, 4),
        "mean_confidence_correct": round(sum(c for c, k in zip(conf, correct, strict=True) if k) / max(1, sum(correct)), 4),
        "mean_confidence_wrong": round(sum(c for c, k in zip(conf, correct, strict=True) if not k) / max(1, n - sum(correct)), 4),
        "ece_10_bins": round(ece, 4),
        "fallback_thresholds": thresholds,
        "most_confused": [{"gold": g, "predicted": p, "count": c} for (g, p), c in top],
    }


# ------------------------------------------------------------------------- validate


def classifier_params(overrides: list[str]) -> dict[str, Any]:
    """The classifier entry of intents/config.yml as model parameters, with overrides."""
    from rasa.shared.utils.io import read_yaml_file

    entry = [c for c in read_yaml_file(PIPELINE_CONFIG)["pipeline"] if CLASSIFIER_MARKER in str(c.get("name"))][0]
    params = {k: v for k, v in entry.items() if k not in ("name", "ranking_length")}
    for item in overrides:
        key, _, value = item.partition("=")
        params[key.strip()] = json.loads(value)
    return params


def validate(texts: list[str], labels: list[str], params: dict[str, Any], folds: int) -> dict[str, Any]:
    """Stratified k-fold cross-validation on the training split (the test split is not read)."""
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold

    from intents.components.text_features import TfidfSvmIntentModel

    y = np.array(labels)
    rows = []
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for f, (tr, va) in enumerate(skf.split(np.zeros(len(y)), y)):
        t0 = time.perf_counter()
        model = TfidfSvmIntentModel(**params).fit([texts[i] for i in tr], list(y[tr]))
        fit_s = time.perf_counter() - t0
        pred = np.array(model.predict([texts[i] for i in va]), dtype=object)
        rows.append({
            "fold": f,
            "accuracy": float(np.mean(pred == y[va])),
            "balanced_accuracy": float(balanced_accuracy_score(y[va], pred.astype(str))),
            "fit_s": round(fit_s, 1),
        })
        log(f"fold {f}: accuracy {rows[-1]['accuracy']:.4f}, balanced {rows[-1]['balanced_accuracy']:.4f}, "
            f"fit {fit_s:.1f} s ({model.mode_} model)")
    acc = np.array([r["accuracy"] for r in rows])
    bal = np.array([r["balanced_accuracy"] for r in rows])
    return {
        "folds": rows,
        "accuracy": round(float(acc.mean()), 4),
        "accuracy_sem": round(float(acc.std() / np.sqrt(len(acc))), 4),
        "balanced_accuracy": round(float(bal.mean()), 4),
        "fit_s_mean": round(float(np.mean([r["fit_s"] for r in rows])), 1),
    }


# ---------------------------------------------------------------------------- report


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [*rows, header]) for i in range(len(header))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod, name in (("rasa", "rasa"), ("sklearn", "scikit-learn"), ("numpy", "numpy"), ("scipy", "scipy")):
        try:
            out[name] = __import__(mod).__version__
        except Exception:  # pragma: no cover
            pass
    return out


def git_commit() -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or None
    except Exception:
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (data, config, model, log)")
    ap.add_argument("--limit-test", type=int, default=0, help="parse only the first N test messages (smoke test)")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    ap.add_argument("--validate", action="store_true",
                    help="tuning mode: k-fold cross-validation on the training split only (no Rasa, no test set)")
    ap.add_argument("--folds", type=int, default=5, help="folds for --validate")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=JSON",
                    help="with --validate: override a classifier parameter of intents/config.yml")
    args = ap.parse_args()

    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # so Agent.load finds intents.components
    quiet_rasa_logging()

    d = data_dir()
    if args.validate:
        train_x, train_y, _ = read_split(d, "train")
        params = classifier_params(args.set)
        log(f"validating on {len(train_x)} training messages, {args.folds} folds: {json.dumps(params)}")
        v = validate(train_x, train_y, params, args.folds)
        print(f"cross-validation on the training split ({args.folds} folds): accuracy {v['accuracy']:.4f} "
              f"(+- {v['accuracy_sem']:.4f}), balanced accuracy {v['balanced_accuracy']:.4f}, "
              f"fit {v['fit_s_mean']:.1f} s per fold")
        return 0
    train_x, train_y, train_sha = read_split(d, "train")
    test_x, test_y, test_sha = read_split(d, "test")
    if args.limit_test:
        test_x, test_y = test_x[: args.limit_test], test_y[: args.limit_test]
    log(f"BANKING77 from {d}: {len(train_x)} train / {len(test_x)} test, {len(set(train_y))} intents")

    work = Path(tempfile.mkdtemp(prefix="banking77-"))
    try:
        nlu = work / "nlu.yml"
        write_rasa_nlu(train_x, train_y, nlu)
        config, classifier = bench_config(work)
        load_before = os.getloadavg()
        tr = train(work, config, nlu)
        log(f"trained in {tr['wall_clock_s']:.1f} s (classifier component: {tr['classifier_component_s']} s)")
        parsed, load_s, parse_s = asyncio.run(parse_all(Path(tr["model_path"]), test_x))
        load_after = os.getloadavg()
        m = metrics(test_y, parsed)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    per_msg_ms = parse_s / len(test_x) * 1000
    result = {
        "benchmark": "banking77",
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dataset": {"dir": str(d), "train": len(train_x), "test": len(test_x),
                    "train_sha256": train_sha, "test_sha256": test_sha},
        "pipeline": [{"name": "WhitespaceTokenizer"}, classifier],
        "pipeline_source": str(PIPELINE_CONFIG.relative_to(REPO)),
        "training": {k: v for k, v in tr.items() if k != "model_path"},
        "evaluation": {
            **m,
            "model_load_s": round(load_s, 2),
            "parse_total_s": round(parse_s, 2),
            "parse_ms_per_message": round(per_msg_ms, 3),
            "method": "rasa.core.agent.Agent.load + await agent.parse_message(text), sequential",
        },
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": load_after,
                    "platform": platform.platform()},
        "versions": versions(),
        "git_commit": git_commit(),
        "references_from_design_md": [{"system": s, "accuracy": a, "training": t} for s, a, t in REFERENCES],
        "target": {"accuracy": 0.92, "training_s": 180},
    }

    rows = [(
        "ours: TfidfIntentClassifier in Rasa (this run)",
        f"{m['accuracy']:.3f}",
        f"{m['macro_f1']:.3f}",
        f"{tr['wall_clock_s']:.0f} s ({tr['classifier_component_s']} s component)",
        f"{per_msg_ms:.2f} ms",
    )] + [(s, a, "-", t, "-") for s, a, t in REFERENCES]
    print()
    print(f"BANKING77 test set ({len(test_x)} messages, {len(set(train_y))} intents), "
          f"{os.cpu_count()} CPUs, load avg {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print(table(rows, ("system", "accuracy", "macro-F1", "training (wall clock)", "parse / msg")))
    print()
    print(f"confidence: mean {m['mean_confidence']} (correct {m['mean_confidence_correct']}, "
          f"wrong {m['mean_confidence_wrong']}), ECE {m['ece_10_bins']}")
    for t in m["fallback_thresholds"]:
        print(f"  fallback below {t['threshold']:.1f}: answers {t['coverage']:.1%} of messages, "
              f"{t['accuracy_on_covered']} of them correct")
    target_ok = m["accuracy"] >= 0.92 and tr["wall_clock_s"] <= 180
    print(f"target (accuracy >= 0.92, training <= 3 min): {'met' if target_ok else 'NOT met'}")

    if not args.no_save and not args.limit_test:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"nlu_banking77-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"saved {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
