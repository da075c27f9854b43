"""Evaluation of the routing on a held-out set (never used for training): per-topic precision and
recall, and per language the numbers the release gate uses — topic accuracy, handoff recall
(no theft, compliance or human request missed), false-handoff rate and clarify rate.

Items marked `"section": "offtopic"` (intents/eval/heldout/offtopic.jsonl: everyday questions,
other companies' and banks' services, chit-chat, nonsense, prompts at the bot) are scored on their
own: how many got a clarification, and how many were handed to a person. They do not change the
main section's numbers, so those stay comparable with earlier models."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

HANDOFF = ("theft", "compliance", "human")


@dataclass(frozen=True, slots=True)
class Item:
    text: str
    lang: str
    topic: str
    intent: str | None = None
    section: str = "main"  # "main" | "offtopic"


SECTIONS = ("main", "offtopic")


def load_items(paths: list[Path]) -> list[Item]:
    items: list[Item] = []
    for p in paths:
        files = sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
        for f in files:
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    o = orjson.loads(line)
                    section = o.get("section", "main")
                    if section not in SECTIONS:
                        raise ValueError(f"section must be one of {SECTIONS}, not {section!r}")
                    if section == "offtopic" and o["topic"] != "out_of_scope":
                        raise ValueError("an offtopic item has topic out_of_scope")
                    items.append(Item(o["text"], o["lang"], o["topic"], o.get("intent"), section))
                except (orjson.JSONDecodeError, KeyError, ValueError) as e:
                    raise ValueError(f"{f}:{n}: {e}") from None
    return items


@dataclass
class Report:
    n: int = 0
    per_lang: dict[str, dict[str, float]] = field(default_factory=dict)
    per_topic: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    # the off-topic section, per language: n, clarify_rate, false_handoff, answered
    offtopic: dict[str, dict[str, float]] = field(default_factory=dict)
    offtopic_errors: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "per_lang": self.per_lang, "per_topic": self.per_topic, "errors": self.errors,
                "offtopic": self.offtopic, "offtopic_errors": self.offtopic_errors}


def score(items: list[Item], decisions: list[dict[str, Any]]) -> Report:
    """`decisions` are `Decision.public()` dicts, one per item, in order."""
    pairs_all = list(zip(items, decisions, strict=True))
    off = [(i, d) for i, d in pairs_all if i.section == "offtopic"]
    main = [(i, d) for i, d in pairs_all if i.section != "offtopic"]
    rep = _score_main([i for i, _ in main], [d for _, d in main])
    for lang in sorted({i.lang for i, _ in off}):
        pairs = [(i, d) for i, d in off if i.lang == lang]
        rep.offtopic[lang] = {
            "n": len(pairs),
            "clarify_rate": _ratio(sum(d["action"] == "clarify" for _, d in pairs), len(pairs)),
            "false_handoff": _ratio(sum(d["action"] == "handoff" for _, d in pairs), len(pairs)),
            "answered": _ratio(sum(d["action"] == "answer" for _, d in pairs), len(pairs)),
        }
    rep.offtopic_errors = [
        {"text": i.text, "lang": i.lang, "action": d["action"], "got": d["topic"], "intent": d["intent"],
         "confidence": d["confidence"]}
        for i, d in off if d["action"] != "clarify"
    ]
    return rep


def _score_main(items: list[Item], decisions: list[dict[str, Any]]) -> Report:
    rep = Report(n=len(items))
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for lang in sorted({i.lang for i in items}):
        pairs = [(i, d) for i, d in zip(items, decisions, strict=True) if i.lang == lang]
        ho = [(i, d) for i, d in pairs if i.topic in HANDOFF]
        non_ho = [(i, d) for i, d in pairs if i.topic not in HANDOFF]
        oos = [(i, d) for i, d in pairs if i.topic == "out_of_scope"]
        rep.per_lang[lang] = {
            "n": len(pairs),
            "topic_accuracy": _ratio(sum(d["topic"] == i.topic for i, d in pairs), len(pairs)),
            "handoff_recall": _ratio(sum(d["action"] == "handoff" for _, d in ho), len(ho)),
            "false_handoff": _ratio(sum(d["action"] == "handoff" for _, d in non_ho), len(non_ho)),
            "clarify_rate": _ratio(sum(d["action"] == "clarify" for _, d in oos), len(oos)),
        }
    for i, d in zip(items, decisions, strict=True):
        if d["topic"] == i.topic:
            tp[i.topic] += 1
        else:
            fp[d["topic"]] += 1
            fn[i.topic] += 1
            rep.errors.append({"text": i.text, "lang": i.lang, "want": i.topic, "got": d["topic"],
                               "action": d["action"], "intent": d["intent"], "confidence": d["confidence"]})
    for t in sorted(set(tp) | set(fn) | set(fp)):
        p = _ratio(tp[t], tp[t] + fp[t])
        r = _ratio(tp[t], tp[t] + fn[t])
        rep.per_topic[t] = {"precision": p, "recall": r, "support": tp[t] + fn[t]}
    return rep


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 1.0


@dataclass(frozen=True)
class Gate:
    topic_accuracy: float = 0.92
    handoff_recall: float = 1.0
    false_handoff: float = 0.03
    clarify_rate: float = 0.85
    offtopic_clarify: float = 0.90
    offtopic_false_handoff: float = 0.01

    def failures(self, rep: Report) -> list[str]:
        out = []
        for lang, m in rep.offtopic.items():
            if m["clarify_rate"] < self.offtopic_clarify:
                out.append(f"{lang}: off-topic clarify rate {m['clarify_rate']:.3f} < {self.offtopic_clarify}")
            if m["false_handoff"] > self.offtopic_false_handoff:
                out.append(f"{lang}: off-topic false handoff {m['false_handoff']:.3f} > {self.offtopic_false_handoff}")
        for lang, m in rep.per_lang.items():
            if m["topic_accuracy"] < self.topic_accuracy:
                out.append(f"{lang}: topic accuracy {m['topic_accuracy']:.3f} < {self.topic_accuracy}")
            if m["handoff_recall"] < self.handoff_recall:
                out.append(f"{lang}: handoff recall {m['handoff_recall']:.3f} < {self.handoff_recall}")
            if m["false_handoff"] > self.false_handoff:
                out.append(f"{lang}: false handoff {m['false_handoff']:.3f} > {self.false_handoff}")
            if m["clarify_rate"] < self.clarify_rate:
                out.append(f"{lang}: clarify rate {m['clarify_rate']:.3f} < {self.clarify_rate}")
        return out
