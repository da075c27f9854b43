"""Answers are data: ops edit a file and the running router serves the new text, no retraining."""

import os
import time
from pathlib import Path

from intents.answers import Answers


def write(p: Path, text: str) -> None:
    p.write_text(text, encoding="utf-8")
    st = p.stat()
    os.utime(p, (st.st_atime, st.st_mtime + 1))  # a visible mtime change even on coarse clocks


def test_edited_answer_is_served_after_reload_and_a_broken_edit_keeps_the_last_good(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "zh").mkdir()
    f = tmp_path / "en" / "fees.yml"
    write(f, "_defaults:\n  coin: your coin\nfees_trading_tiers: Maker 0.1% for {coin}.\n")
    write(tmp_path / "zh" / "fees.yml", "fees_trading_tiers: 挂单 0.1%。\n")
    a = Answers(tmp_path, check_every_s=0)
    assert a.get("fees_trading_tiers", "en") == "Maker 0.1% for your coin."
    assert a.get("fees_trading_tiers", "en", coin="BTC") == "Maker 0.1% for BTC."
    time.sleep(0.01)
    write(f, "fees_trading_tiers: Maker 0.08% from 1 January.\n")
    assert a.maybe_reload() is True
    assert a.get("fees_trading_tiers", "en") == "Maker 0.08% from 1 January."
    write(f, "fees_trading_tiers: [unclosed\n")
    assert a.maybe_reload() is False
    assert a.get("fees_trading_tiers", "en") == "Maker 0.08% from 1 January."
    assert a.get("fees_trading_tiers", "zh") == "挂单 0.1%。"
