"""The ops loop on real Rasa servers: a misunderstood message is labelled from the review queue,
the model retrained, the gate passes it, it is deployed while a client keeps sending messages
(none fails or goes unanswered) and the message is now understood; a bad dataset is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from intents.rasa import RasaServer
from tests.conftest import REDIS_URL, ROOT, free_port
from tests.integration.conftest import repo_rasa_paths

pytestmark = [pytest.mark.rasa, pytest.mark.redis, pytest.mark.slow]

EXE = str(ROOT / ".venv/bin/switchboard")
NEW_TERM = "how do I get the blue shield badge on my profile"


@pytest.fixture
def workspace(tmp_path: Path, trained_model: Path) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the Rasa project and a models dir holding the repo's current model, so the test
    changes nothing in the repo."""
    shutil.copytree(ROOT / "intents", tmp_path / "intents", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "models").mkdir()
    shutil.copy(trained_model, tmp_path / "models" / trained_model.name)
    cfg = (ROOT / "config.yaml").read_text()
    cfg = cfg.replace("project_dir: intents", f"project_dir: {tmp_path / 'intents'}")
    cfg = cfg.replace("model_dir: models", f"model_dir: {tmp_path / 'models'}")
    cfg = cfg.replace("answers_dir: intents/answers", f"answers_dir: {tmp_path / 'intents' / 'answers'}")
    cfg = cfg.replace("rasa_venv: .venv-rasa", f"rasa_venv: {ROOT / '.venv-rasa'}")
    cfg = cfg.replace("data_dir: data", f"data_dir: {tmp_path / 'data'}")
    (tmp_path / "config.yaml").write_text(cfg)
    return tmp_path


def sb(ws: Path, rasa_url: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWITCHBOARD_REDIS_URL": REDIS_URL, "SWITCHBOARD_RASA_URL": rasa_url,
           "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{ws}/t.db", "SWITCHBOARD_CONFIG": str(ws / "config.yaml")}
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, cwd=ws, timeout=timeout)


def route_one(ws: Path, url: str, text: str) -> dict:  # type: ignore[type-arg]
    env = {**os.environ, "SWITCHBOARD_RASA_URL": url, "SWITCHBOARD_CONFIG": str(ws / "config.yaml")}
    p = subprocess.run([EXE, "route"], input=json.dumps({"channel": "web", "user": "x", "text": text}) + "\n",
                       env=env, capture_output=True, text=True, cwd=ws, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)  # type: ignore[no-any-return]


@pytest.mark.timeout(900)
def test_label_retrain_gate_deploy_without_downtime(workspace: Path, trained_model: Path, redis_sync) -> None:  # type: ignore[no-untyped-def]
    live = RasaServer(repo_rasa_paths(),
                      workspace / "models" / trained_model.name, free_port(), log_path=workspace / "live.log")
    live.start()
    try:
        live.wait_ready(240)
        before = route_one(workspace, live.url, NEW_TERM)
        assert before["action"] == "clarify", before

        # The miss reaches the review queue through the decision log (as the router writes it).
        redis_sync.xadd("decisions", {"d": json.dumps({
            "message_id": "m1", "conversation_id": "web:u", "channel": "web", "action": "clarify",
            "topic": "out_of_scope", "intent": before["intent"], "confidence": before["confidence"],
            "priority": "low", "reply": "…", "lang": "en", "redacted_text": NEW_TERM, "silent": False,
            "decided_at": "2026-11-28T12:00:00+00:00"})})
        p = sb(workspace, live.url, "review")
        assert p.returncode == 0 and "blue shield badge" in p.stdout, p.stdout + p.stderr
        p = sb(workspace, live.url, "review", "accept", NEW_TERM, "--intent", "account_kyc_levels", "--lang", "en")
        assert p.returncode == 0 and "added" in p.stdout, p.stderr
        assert "blue shield" not in sb(workspace, live.url, "review").stdout  # handled
        reviewed = yaml.safe_load((workspace / "intents/data/nlu/en/_reviewed.yml").read_text())
        assert reviewed["nlu"][0]["intent"] == "account_kyc_levels"

        t0 = time.monotonic()
        p = sb(workspace, live.url, "train")
        train_s = time.monotonic() - t0
        assert p.returncode == 0, p.stderr
        version = p.stdout.split("trained: ")[1].split()[0].rsplit("/", 1)[-1].removesuffix(".tar.gz")
        p = sb(workspace, live.url, "eval", "--compare", version)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "gate passed" in p.stdout

        # Deploy while a client keeps parsing: count failures.
        stats = {"ok": 0, "failed": 0}
        stop = threading.Event()

        def client() -> None:
            while not stop.is_set():
                req = urllib.request.Request(live.url + "/model/parse", data=b'{"text":"how do I deposit BTC"}',
                                             headers={"Content-Type": "application/json"}, method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        stats["ok" if r.status == 200 and json.loads(r.read()).get("intent") else "failed"] += 1
                except Exception:
                    stats["failed"] += 1
                time.sleep(0.02)

        th = threading.Thread(target=client)
        th.start()
        time.sleep(1)
        p = sb(workspace, live.url, "deploy", version)
        time.sleep(1)
        stop.set()
        th.join(15)
        assert p.returncode == 0, p.stderr
        assert stats["failed"] == 0 and stats["ok"] > 20, stats
        after = route_one(workspace, live.url, NEW_TERM)
        assert (after["action"], after["intent"]) == ("answer", "account_kyc_levels"), after
        assert "●" in sb(workspace, live.url, "models").stdout
        print(f"retrain {train_s:.0f}s; parses during deploy: {stats}")
    finally:
        live.stop()


@pytest.mark.timeout(900)
def test_a_bad_dataset_is_refused_by_the_gate(workspace: Path, trained_model: Path) -> None:
    live = RasaServer(repo_rasa_paths(),
                      workspace / "models" / trained_model.name, free_port(), log_path=workspace / "live.log")
    for lang in ("en", "zh"):  # someone deleted the theft and compliance data
        for topic in ("theft", "compliance"):
            (workspace / "intents/data/nlu" / lang / f"{topic}.yml").unlink()
    live.start()
    try:
        live.wait_ready(240)
        p = sb(workspace, live.url, "train")
        assert p.returncode == 0, p.stderr
        version = p.stdout.split("trained: ")[1].split()[0].rsplit("/", 1)[-1].removesuffix(".tar.gz")
        p = sb(workspace, live.url, "eval", "--compare", version)
        assert p.returncode == 1 and "handoff recall dropped" in p.stderr, p.stdout + p.stderr
        p = sb(workspace, live.url, "deploy", version)
        assert p.returncode == 1 and "gate" in p.stderr
    finally:
        live.stop()
