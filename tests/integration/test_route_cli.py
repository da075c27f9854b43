"""`switchboard route`, the batch contract of DESIGN.md, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from intents.rasa import port_open
from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.rasa]

EXE = str(ROOT / ".venv/bin/switchboard")


def route(stdin: str, rasa_url: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWITCHBOARD_RASA_URL": rasa_url}
    return subprocess.run([EXE, "route"], input=stdin, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout)


def test_done_when_example(rasa_url: str) -> None:
    p = route('{"channel":"web","user":"u1","text":"How do I deposit USDT on TRC20?"}\n', rasa_url)
    assert p.returncode == 0, p.stderr
    [line] = p.stdout.splitlines()
    d = json.loads(line)
    assert d["action"] == "answer" and d["topic"] == "deposit"
    assert set(d) == {"action", "topic", "intent", "confidence", "priority", "reply"}
    assert d["reply"] and 0 <= d["confidence"] <= 1


def test_one_decision_per_line_in_order_with_per_user_state(rasa_url: str) -> None:
    lines = [
        {"channel": "web", "user": "a", "text": "my account was hacked and my BTC is gone"},
        {"channel": "telegram", "user": "b", "text": "what's the weather in Paris tomorrow"},
        {"channel": "web", "user": "c", "text": "KYC审核要多久"},
        {"channel": "telegram", "user": "b", "text": "recipe for dumplings please"},
    ]
    p = route("".join(json.dumps(x) + "\n" for x in lines) + "not json\n", rasa_url)
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(out) == 5
    assert (out[0]["action"], out[0]["topic"], out[0]["priority"]) == ("handoff", "theft", "urgent")
    assert (out[1]["action"], out[1]["topic"]) == ("clarify", "out_of_scope")
    assert (out[2]["action"], out[2]["topic"]) == ("answer", "account")
    # The same user failing twice is escalated to a person.
    assert (out[3]["action"], out[3]["topic"]) == ("handoff", "human")
    assert "error" in out[4] and "line 5" in p.stderr
    assert p.returncode == 1


@pytest.mark.slow
def test_starts_and_stops_its_own_rasa_when_none_answers(trained_model) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port()}"
    p = route('{"channel":"web","user":"u1","text":"How do I deposit USDT on TRC20?"}\n', dead, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["topic"] == "deposit"
    assert "starting one" in p.stderr
    started = p.stderr.rsplit(" at http://127.0.0.1:", 1)[1].split()[0]
    assert not port_open("127.0.0.1", int(started))  # the server it started is gone again
