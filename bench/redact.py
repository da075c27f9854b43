"""Redaction on adversarial text: each shape at 64 KB, 256 KB and 1 MB, timed, with the growth
factor per 4x of input (≈4 means linear; a backtracking pattern shows 16 and more).

    .venv/bin/python -m bench.redact            # prints a table, saves bench/results/redact-<ts>.json

The shapes aim at each detector's worst case: one endless run of spaces after a keyword (the
3.5 s widget upload of issue #16), keyword after keyword with no value, one endless token of hex,
base58 or digits, spaced digits between code words, values before their keywords, 2FA words
among setup-key groups and backup codes, card words among digit groups, key words among hex
and base58 pieces, an endless
seed-word run, an endless glued run of Chinese list characters, phrase-length Chinese segments
between commas, key words next to hex, e-mail addresses chained
with separators, and random printable soup.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnemonic import Mnemonic

from bot.redact import redact

SIZES = (64 * 1024, 256 * 1024, 1024 * 1024)


def _fill(unit: str, size: int, head: str = "") -> str:
    return head + unit * ((size - len(head)) // max(1, len(unit)) + 1)


def shapes() -> dict[str, Callable[[int], str]]:
    en = Mnemonic("english").wordlist
    zh = Mnemonic("chinese_simplified").wordlist
    rng = random.Random(7)
    b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    return {
        "spaces after 'api secret'": lambda n: _fill(" ", n, "my api secret is") + "x",
        "keyword, no value": lambda n: _fill("password is api key token secret code 验证码 密码 私钥 ", n),
        "one hex token": lambda n: _fill("ab", n, "private key "),
        "one base58 token": lambda n: _fill(b58, n, "key: "),
        "one digit run": lambda n: _fill("1234567890", n, "code "),
        "spaced digits, code words between": lambda n: _fill("1 2 3 4 5 6 7 8 9 code ", n),
        "values before their keywords": lambda n: _fill("Abc123 is my password, 密码是我的 ", n),
        "2FA words among key groups": lambda n: _fill("2fa ab2d ef3h backup codes a1b2 ", n),
        "card words among digit groups": lambda n: _fill("visa 4111 1111 cvv ", n),
        "key words among hex and base58 pieces": lambda n: _fill("key ab12 cd34\n5HueCGU8rMjx\n", n),
        "seed words, one run": lambda n: _fill(" ".join(rng.choice(en) for _ in range(64)) + " ", n),
        "glued Chinese list chars": lambda n: _fill("".join(rng.choice(zh[500:]) for _ in range(64)), n, "助记词"),
        "12-char Chinese segments, ，-separated": lambda n: _fill("".join(rng.choice(zh[300:]) for _ in range(12)) + "，", n),
        "key words beside hex": lambda n: _fill("private key 0x" + "ab" * 32 + " tx ", n),
        "e-mail / value chains": lambda n: _fill("a@b.com / ", n, "login "),
        "printable soup": lambda n: "".join(rng.choice("aZ9 ,.:/=@-_\n密码key") for _ in range(n)),
    }


def measure(text: str, repeat: int = 2) -> float:
    """Best CPU seconds of this process (the machine is shared: wall time would measure the
    neighbours)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        redact(text)
        best = min(best, time.process_time() - t0)
    return best


def main() -> int:
    rows: list[dict[str, Any]] = []
    redact("warm up: load the word lists abandon ability")
    print(f"{'shape (CPU seconds)':34} " + " ".join(f"{s // 1024:>7} KB" for s in SIZES) + "   x per 4x size (1 MB / 256 KB)")
    for name, make in shapes().items():
        times = [measure(make(size)[:size]) for size in SIZES]
        growth = times[2] / max(times[1], 1e-9)
        rows.append({"shape": name, "seconds": dict(zip([str(s) for s in SIZES], times, strict=True)), "growth_4x": growth})
        print(f"{name:34} " + " ".join(f"{t:8.3f}s" for t in times) + f"   {growth:5.1f}")
    worst = max(r["growth_4x"] for r in rows)
    print(f"worst growth per 4x of input: {worst:.1f} (linear = 4)")
    out = Path(__file__).parent / "results" / f"redact-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "worst_growth_4x": worst}, indent=2))
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
