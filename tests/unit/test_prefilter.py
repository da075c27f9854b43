"""`bot.prefilter.Rules` finds a match exactly when the plain alternation of its rules does — on
every text we have and on generated ones built from the rules' own words with the characters
case-insensitive matching treats specially — while skipping the rules a text cannot start. The
safety rules (`bot.safety`) depend on it: a rule wrongly skipped is a theft report missed."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import safety
from bot.prefilter import Rules, fold, prefixes, required

ROOT = Path(__file__).resolve().parents[2]
RULE_SETS = {name: v for name, v in vars(safety).items() if isinstance(v, Rules)}


def _nlu_examples() -> list[str]:
    out: list[str] = []
    for f in sorted((ROOT / "intents" / "data").rglob("*.yml")):
        data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        for item in data.get("nlu", []) if isinstance(data, dict) else []:
            for line in str(item.get("examples") or "").splitlines():
                if line.strip().startswith("- "):
                    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.strip()[2:])
                    out.append(re.sub(r"\[([^\]]*)\]\{[^}]*\}", r"\1", text))
    for f in sorted((ROOT / "intents" / "eval").rglob("*.jsonl")):
        out += [orjson.loads(line)["text"] for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def _test_strings() -> list[str]:
    """Every string literal of the policy and off-topic tests (the rules' own test cases)."""
    out: list[str] = []
    for name in ("test_policy.py", "test_offtopic.py", "test_twitter_policy.py"):
        tree = ast.parse((ROOT / "tests" / "unit" / name).read_text(encoding="utf-8"))
        out += [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return out


def _variants(text: str) -> list[str]:
    # What re.IGNORECASE matches beyond ASCII case: dotless/dotted i, long s, Kelvin sign; and
    # whitespace that is not a plain space.
    return [text, text.upper(), text.swapcase(), text.replace(" ", "  \t"), text.replace(" ", "\u3000"),
            text.replace("i", "\u0131").replace("s", "\u017f"), text.replace("I", "\u0130").replace("k", "\u212a")]


CORPUS = sorted({v for t in _nlu_examples() + _test_strings() for v in _variants(t)})


def _same(rules: Rules, text: str) -> bool:
    return (rules.search(text) is not None) == (rules.pattern.search(text) is not None)


def test_the_corpus_is_large_and_has_matches() -> None:
    assert len(CORPUS) > 20_000
    assert sum(1 for t in CORPUS if safety.THEFT_EN.pattern.search(t)) > 500


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_every_rule_set_matches_exactly_like_its_plain_alternation(name: str) -> None:
    rules = RULE_SETS[name]
    wrong = [t for t in CORPUS if not _same(rules, t)]
    assert wrong == []


@pytest.mark.parametrize("name", ["THEFT_EN", "THEFT_ZH", "HUMAN_EN", "COMPLIANCE_EN"])
def test_most_rules_are_skipped_for_an_ordinary_question(name: str) -> None:
    rules = RULE_SETS[name]
    for text in ("how long does a USDT deposit on TRC20 take, order 7001234", "我的充值订单7001234什么时候到账"):
        assert len(rules.candidates(fold(text))) <= 1  # of 10 to 33


_WORDS = sorted({w for r in RULE_SETS.values() for s, _ in r._under.items() for w in s.split()} | {
    "my", "account", "was", "hacked", "someone", "i", "didn't", "withdraw", "被盗", "了", "人工", "frozen", "not", "me"})
_ODD = ["\u0131", "\u0130", "\u017f", "\u212a", "\t", "\u3000", "\n", "  ", "'", "-", "!"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(_WORDS), st.sampled_from(_ODD), st.text(max_size=4)), max_size=14),
       st.lists(st.booleans(), max_size=60))
def test_generated_texts_match_exactly_like_the_plain_alternation(parts: list[str], upper: list[bool]) -> None:
    text = " ".join(parts)
    text = "".join(c.upper() if i < len(upper) and upper[i] else c for i, c in enumerate(text))
    for rules in RULE_SETS.values():
        assert _same(rules, text), text


def test_prefixes_of_simple_patterns() -> None:
    f = re.I | re.S
    assert prefixes(r"\bmy\s+wallet\b", f) == {"my wallet"}
    assert prefixes(r"\b(?:my|our)\s+(?:\w+\s+){0,2}account", f) == {"my ", "our "}
    assert prefixes(r"(?:accidentally\s+)?sent", f) == {"sent", "accidentally sent"}
    assert prefixes(r"SIM\s*卡", f) == {"sim卡", "sim 卡"}  # any run of whitespace is one space
    assert prefixes(r"被(盗|黑)了", f) == {"被盗了", "被黑了"}
    assert prefixes(r"(?<!不)是你们", f) == {"是你们"}  # look-arounds take no characters
    assert prefixes(r".{0,4}hacked", f) == frozenset()  # a match may start anywhere: always searched
    assert prefixes(r"\w+ed", f) == frozenset()
    assert prefixes(r"ΣΑΣ", f) == frozenset()  # cased letters beyond ASCII: no prefix, always searched


def test_rules_are_found_by_their_rarest_literal_text() -> None:
    f = re.I | re.S
    # "i" / "we" begin it, but "and (then) entered …" is what it cannot do without
    assert required(r"\b(?:i|we)\b[^.!?]{0,80}\band\s+(?:then\s+)?(?:entered|typed)\s", f) == {
        "and entered ", "and typed ", "and then entered ", "and then typed "}
    assert required(r"\b(?:my|our)\s+(?:\w+\s+){0,2}(?:account|wallet|api\s*key)s?\b.{0,25}\bwas\b", f) == {
        "account", "wallet", "api key", "apikey"}
    assert required(r".{0,4}hacked", f) == {"hacked"}
    assert required(r"(?:accidentally\s+)?sent", f) == {"sent"}
    assert required(r"\w+ed|.*", f) == frozenset()


def test_folding_covers_every_character_ignorecase_matches_with_an_ascii_letter() -> None:
    any_letter = re.compile("[a-z]", re.I)
    for code in range(sys.maxunicode + 1):
        c = chr(code)
        if any_letter.fullmatch(c):
            letters = [x for x in "abcdefghijklmnopqrstuvwxyz" if re.fullmatch(x, c, re.I)]
            assert letters == [fold(c)], (hex(code), letters, fold(c))


def test_folding_covers_every_whitespace_character() -> None:
    space = re.compile(r"\s")
    for code in range(sys.maxunicode + 1):
        if space.match(chr(code)):
            assert fold(f"a{chr(code)}b") == "a b", hex(code)
    assert fold("A \t\u3000 B") == "a b"


def test_search_finds_what_the_alternation_finds_and_nothing_else() -> None:
    rules = Rules(r"\bmy\s+(?:wallet|account)\s+(?:was|got)\s+hacked", r"被(盗|黑)了", flags=re.I | re.S)
    assert rules.search("MY  Wallet\tGOT hacked!") is not None
    assert rules.search("my wallet was hacked") is not None
    assert rules.search("昨天账户被盗了") is not None
    assert rules.search("my wallet is fine, how do I deposit") is None
    assert rules.candidates(fold("how do I deposit")) == []
