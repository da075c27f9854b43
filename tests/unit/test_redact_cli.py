"""`switchboard redact`: plain lines and JSON lines in, the same format out, kinds reported."""

from __future__ import annotations

import subprocess

import orjson

from tests.conftest import ROOT

SEED = "abandon ability able about above absent absorb abstract absurd abuse access accident"
TXID = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def run(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / ".venv/bin/switchboard"), "redact", *args], input=stdin, text=True,
                          capture_output=True, timeout=60, cwd=ROOT)


def test_plain_and_json_lines_come_back_in_their_own_format_with_the_kinds_found() -> None:
    lines = [
        "my password is Hunter2!x please",
        orjson.dumps({"text": f"my seed phrase is {SEED}", "user": "u1", "n": 3}).decode(),
        orjson.dumps({"text": f"txid {TXID}", "subject": "验证码 483920"}).decode(),
        "",
        "{not json, but the 2FA code is 123456",
        "what is a seed phrase",
    ]
    p = run("\n".join(lines) + "\n")
    assert p.returncode == 0, p.stderr
    out = p.stdout.split("\n")
    assert len(out) == len(lines) + 1 and out[-1] == ""
    assert out[0] == "my password is [REDACTED:password] please"
    first = orjson.loads(out[1])
    assert first == {"text": "my seed phrase is [REDACTED:seed_phrase]", "user": "u1", "n": 3, "redacted": ["seed_phrase"]}
    second = orjson.loads(out[2])
    assert second["text"] == f"txid {TXID}" and second["subject"] == "验证码 [REDACTED:otp]" and second["redacted"] == ["otp"]
    assert out[3] == "" and out[4] == "{not json, but the 2FA code is [REDACTED:otp]" and out[5] == lines[5]
    assert "line 1: password" in p.stderr and "line 5: otp" in p.stderr
    assert "6 line(s), 4 with secrets" in p.stderr


def test_fail_on_secret_and_a_missing_file_are_clear() -> None:
    assert run("nothing to see\n", "--fail-on-secret").returncode == 0
    assert run("pwd=Abc12345\n", "--fail-on-secret").returncode == 1
    p = run("", "--input", "/nonexistent/export.jsonl")
    assert p.returncode == 2 and "cannot read /nonexistent/export.jsonl" in p.stderr


def test_log_lines_carry_no_secret_in_free_text_fields() -> None:
    from bot.logs import _redact_free_text

    ev = _redact_free_text(None, "warning", {
        "event": "web.bad_frame", "error": "invalid input: my password is Hunter2x9", "ticket": "SB-000001",
        "exception": f"Traceback …\nValueError: seed {SEED}", "txid": TXID, "reply_text": "otp 483920 ok",
    })
    assert ev["error"] == "invalid input: my password is [REDACTED:password]"
    assert "absurd" not in ev["exception"] and "[REDACTED:seed_phrase]" in ev["exception"]
    assert "483920" not in ev["reply_text"] and ev["ticket"] == "SB-000001" and ev["txid"] == TXID
