"""Ops tools for the retraining loop: the model registry (versions with data hash, training time
and metrics; which one is live), the review queue of misunderstood messages, writing accepted
labels into the training data, and zero-downtime deploys (`PUT /model` one server at a time).

Import-light: stdlib + PyYAML + orjson only (no product runtime), so it can be used from the CLI
and from tests without servers.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from intents.rasa import RasaPaths, data_hash

LIVE_FILE = "LIVE"
HISTORY_FILE = "DEPLOYS"
REVIEWED = "_reviewed.yml"


# -- model registry ---------------------------------------------------------------------------------
def meta_path(model: Path) -> Path:
    return model.with_name(model.name.removesuffix(".tar.gz") + ".json")


def write_meta(model: Path, **info: Any) -> dict[str, Any]:
    meta = read_meta(model)
    meta.update({"version": model.name.removesuffix(".tar.gz"), **info})
    meta_path(model).write_text(json.dumps(meta, indent=2, ensure_ascii=False))
    return meta


def read_meta(model: Path) -> dict[str, Any]:
    p = meta_path(model)
    if p.exists():
        try:
            return dict(json.loads(p.read_text()))
        except ValueError:
            return {}
    return {}


def list_models(p: RasaPaths) -> list[dict[str, Any]]:
    live = live_version(p)
    out = []
    for m in sorted(p.models.glob("*.tar.gz"), key=lambda x: x.stat().st_mtime):
        meta = read_meta(m)
        out.append({
            "version": m.name.removesuffix(".tar.gz"),
            "path": str(m),
            "trained_at": meta.get("trained_at") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(m.stat().st_mtime)),
            "data_hash": meta.get("data_hash"),
            "training_s": meta.get("training_s"),
            "metrics": meta.get("metrics"),
            "live": m.name.removesuffix(".tar.gz") == live,
        })
    return out


def find_model(p: RasaPaths, version: str) -> Path:
    cand = p.models / (version if version.endswith(".tar.gz") else version + ".tar.gz")
    if cand.exists():
        return cand
    matches = [m for m in p.models.glob("*.tar.gz") if m.name.startswith(version)]
    if len(matches) == 1:
        return matches[0]
    raise FileNotFoundError(f"no model {version!r} under {p.models}")


def live_version(p: RasaPaths) -> str | None:
    f = p.models / LIVE_FILE
    return f.read_text().strip() or None if f.exists() else None


def set_live(p: RasaPaths, version: str) -> None:
    p.models.mkdir(parents=True, exist_ok=True)
    prev = live_version(p)
    (p.models / LIVE_FILE).write_text(version + "\n")
    with open(p.models / HISTORY_FILE, "a") as h:
        h.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {prev or '-'} -> {version}\n")


def previous_version(p: RasaPaths) -> str | None:
    f = p.models / HISTORY_FILE
    if not f.exists():
        return None
    for line in reversed(f.read_text().splitlines()):
        parts = line.split()
        if len(parts) == 4 and parts[1] != "-" and parts[1] != parts[3]:
            return parts[1]
    return None


# -- deploy -----------------------------------------------------------------------------------------
class DeployError(Exception):
    pass


def _http(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 120) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (operator-configured URLs)
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def deploy(urls: list[str], model: Path, *, probe_text: str = "hello", timeout_s: float = 180,
           log: Any = print) -> None:
    """Load `model` on each Rasa server in turn; the next server is touched only once the previous
    one serves the new model and answers a parse — so the others keep serving meanwhile."""
    version = model.name.removesuffix(".tar.gz")
    for url in urls:
        base = url.rstrip("/")
        log(f"deploy: {base} ← {version}")
        code, body = _http("PUT", f"{base}/model", {"model_file": str(model.resolve())}, timeout=timeout_s)
        if code not in (200, 204):
            raise DeployError(f"{base}: PUT /model answered {code}: {str(body)[:300]}")
        deadline = time.monotonic() + timeout_s
        while True:
            code, st = _http("GET", f"{base}/status", timeout=5)
            if code == 200 and isinstance(st, dict) and version in str(st.get("model_file", "")):
                c2, parsed = _http("POST", f"{base}/model/parse", {"text": probe_text}, timeout=10)
                if c2 == 200 and isinstance(parsed, dict) and parsed.get("intent"):
                    break
            if time.monotonic() > deadline:
                raise DeployError(f"{base}: did not serve {version} within {timeout_s:.0f}s")
            time.sleep(0.5)
        log(f"deploy: {base} serves {version}")


# -- review queue -----------------------------------------------------------------------------------
_WORD = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]")


def _grams(text: str) -> set[str]:
    toks = _WORD.findall(text.lower())
    return {" ".join(toks[i : i + 2]) for i in range(max(1, len(toks) - 1))} | set(toks)


def similar(a: str, b: str) -> float:
    ga, gb = _grams(a), _grams(b)
    return len(ga & gb) / max(1, len(ga | gb))


@dataclass
class Candidate:
    """A message the bot probably misunderstood, with the evidence."""

    text: str
    lang: str
    predicted: str | None
    suggested: str | None
    sources: list[str] = field(default_factory=list)
    count: int = 1
    ids: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


def candidates_from_decisions(decisions: list[dict[str, Any]], rephrase_window_s: float = 120) -> list[Candidate]:
    """Misses seen in the decision log: clarify/fallback, and a user who rephrased right after
    (the rephrased message's intent is the suggestion for the first one)."""
    by_conv: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in decisions:
        by_conv[d.get("conversation_id", "")].append(d)
    out: list[Candidate] = []
    for items in by_conv.values():
        items.sort(key=lambda d: d.get("decided_at", ""))
        for i, d in enumerate(items):
            if d.get("action") != "clarify" or d.get("silent"):
                continue
            text = d.get("redacted_text", "")
            if not text.strip():
                continue
            nxt = items[i + 1] if i + 1 < len(items) else None
            suggestion, sources = None, ["clarify"]
            if nxt and nxt.get("action") == "answer" and _seconds(d, nxt) <= rephrase_window_s:
                suggestion, sources = nxt.get("intent"), ["clarify", "rephrase"]
            out.append(Candidate(text, d.get("lang", "en"), d.get("intent"), suggestion, sources,
                                 ids=[f"decision:{d.get('message_id')}"]))
    return out


def _seconds(a: dict[str, Any], b: dict[str, Any]) -> float:
    from datetime import datetime

    try:
        return (datetime.fromisoformat(b["decided_at"]) - datetime.fromisoformat(a["decided_at"])).total_seconds()
    except (KeyError, ValueError):
        return 1e9


def group(cands: list[Candidate], threshold: float = 0.5) -> list[Candidate]:
    """Group near-duplicate messages; most frequent first. Agent corrections win suggestions."""
    groups: list[Candidate] = []
    for c in cands:
        for g in groups:
            if g.lang == c.lang and similar(g.text, c.text) >= threshold:
                g.count += c.count
                g.ids += c.ids
                g.examples.append(c.text)
                g.sources = sorted(set(g.sources) | set(c.sources))
                if c.suggested and ("agent" in c.sources or not g.suggested):
                    g.suggested = c.suggested
                break
        else:
            groups.append(Candidate(c.text, c.lang, c.predicted, c.suggested, list(c.sources), c.count,
                                    list(c.ids), [c.text]))
    groups.sort(key=lambda g: (-("agent" in g.sources), -g.count))
    return groups


# -- accepting labels into the training data -----------------------------------------------------------
def existing_examples(p: RasaPaths, lang: str) -> set[str]:
    seen: set[str] = set()
    for f in (p.nlu_data / lang).glob("*.yml"):
        data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            for line in str(block.get("examples") or "").splitlines():
                ex = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", line.strip().removeprefix("- ").strip())
                if ex:
                    seen.add(_norm(ex))
    return seen


def _norm(t: str) -> str:
    return re.sub(r"\s+", " ", t.strip().lower())


def known_intents(p: RasaPaths) -> set[str]:
    names: set[str] = set()
    for f in p.nlu_data.rglob("*.yml"):
        data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        names |= {str(b["intent"]) for b in data.get("nlu") or [] if "intent" in b}
    return names


def accept(p: RasaPaths, text: str, lang: str, intent: str) -> bool:
    """Add `text` as an example of `intent` in the language's reviewed file. Returns False when it
    (or the same text normalized) is already in the training data."""
    if lang not in ("en", "zh"):
        raise ValueError("lang must be en or zh")
    if intent not in known_intents(p):
        raise ValueError(f"unknown intent {intent!r}")
    text = " ".join(text.split())
    if not text or "\n" in text:
        raise ValueError("empty text")
    if _norm(text) in existing_examples(p, lang):
        return False
    f = p.nlu_data / lang / REVIEWED
    data = yaml.safe_load(f.read_text(encoding="utf-8")) if f.exists() else None
    blocks: dict[str, list[str]] = {}
    for b in (data or {}).get("nlu") or []:
        blocks[b["intent"]] = [x.strip().removeprefix("- ") for x in str(b["examples"]).splitlines() if x.strip()]
    blocks.setdefault(intent, []).append(text)
    lines = ['version: "3.1"', "# Examples accepted from the review queue (switchboard review accept).", "nlu:"]
    for name in sorted(blocks):
        lines.append(f"- intent: {name}")
        lines.append("  examples: |")
        lines += [f"    - {ex}" for ex in blocks[name]]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return True


def current_data_hash(p: RasaPaths) -> str:
    return data_hash(p)
