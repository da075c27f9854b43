"""Recall and keep rate of the redaction engine on generated text (tests/redact_corpus.py): per
kind × phrasing family × language, hypothesis draws the cases; each kind must reach a recall of
0.99 (no family under 0.95 in a draw of ~60), and every keep case (TxIDs, addresses, ids, amounts, dates, phones, e-mails, questions
about secrets) must come out byte for byte."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.redact import kinds_found, redact
from tests.redact_corpus import caught, families, keep_case

FAMILIES = families()
KINDS = sorted({k for k, _, _ in FAMILIES})


@pytest.mark.parametrize("kind", KINDS)
def test_recall_per_family_is_at_least_099(kind: str) -> None:
    tried: dict[tuple[str, str, str], int] = defaultdict(int)
    missed: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    keys = sorted(k for k in FAMILIES if k[0] == kind)

    @settings(max_examples=60 * len(keys), deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(keys), st.randoms(use_true_random=False))
    def draw(key: tuple[str, str, str], rng: random.Random) -> None:
        case = FAMILIES[key](rng)
        out = redact(case.text)
        tried[key] += 1
        if not caught(case, out.text):
            missed[key].append(case.text)
        else:
            assert kind in out.kinds or any(k in out.kinds for k in ("seed_phrase", "private_key", "api_secret")), (case.text, out)

    draw()
    total = sum(tried.values())
    assert total >= 50 * len(keys)
    recall = 1 - sum(len(v) for v in missed.values()) / total
    worst = {k: 1 - len(missed[k]) / n for k, n in tried.items() if n >= 20}
    assert recall >= 0.99 and all(r >= 0.95 for r in worst.values()), (recall, {k: v[:3] for k, v in missed.items()})


@settings(max_examples=600, deadline=None, database=None, derandomize=True)
@given(st.randoms(use_true_random=False))
def test_support_text_is_kept_intact(rng: random.Random) -> None:
    case = keep_case(rng)
    out = redact(case.text)
    assert out.text == case.text and out.kinds == (), (case.text, out.text)


# -- the four messages of issue #16, and a few exact behaviours ------------------------------------

HEX = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
SEED = "abandon ability able about above absent absorb abstract absurd abuse access accident"


@pytest.mark.parametrize(("text", "secret", "kind"), [
    (f"my private key for metamask is {HEX}", HEX, "private_key"),
    ('["' + '", "'.join(SEED.split()) + '"]', "absurd", "seed_phrase"),
    ("我的登录密码Abc12345，谷歌验证码现在是 483920", "Abc12345", "password"),
    ("我的登录密码Abc12345，谷歌验证码现在是 483920", "483920", "otp"),
    ("my password is correct horse battery staple", "horse battery staple", "password"),
])
def test_the_four_messages_of_the_issue(text: str, secret: str, kind: str) -> None:
    out = redact(text)
    assert secret not in out.text and kind in out.kinds


@pytest.mark.parametrize(("text", "secret"), [
    ("alice@mail.com Alice#2023", "Alice#2023"),
    ("user: alice@mail.com pass: Alice#2023", "Alice#2023"),
    ("passphrase: my dog is called rex", "dog is called rex"),
    ("1 legal 2 winner 3 thank 4 year 5 wave 6 sausage 7 worth 8 useful 9 legal 10 winner 11 thank 12 yellow", "sausage"),
    ("legal-winner-thank-year-wave-sausage-worth-useful-legal-winner-thank-yellow", "sausage"),
    (f"{HEX} <- that's the pk", HEX),
    (f"這是錢包的私鑰\n{HEX}", HEX),
    ("2fa: 726 314", "726 314"),
    ("刚收到的驗證碼是 726314", "726314"),
    ("api passphrase is okx-trading-2024", "okx-trading-2024"),
    ("KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn", "KwDiBf89"),
])
def test_more_phrasings_people_use(text: str, secret: str) -> None:
    assert secret not in redact(text).text


# Written by people who did not write the engine (an outside check, then our own fresh round):
# typos, slang and pinyin, the value in the next sentence or under a label line, an English keyword
# in Chinese, a key and its secret one per line, a card after the bare word "card".
@pytest.mark.parametrize(("text", "secret", "kind"), [
    ("my passwrod is Dragon#99 why it say wrong", "Dragon#99", "password"),
    ("passowrd = qwerty123", "qwerty123", "password"),
    ("mima shi abc12345", "abc12345", "password"),
    ("我的password是qwe123", "qwe123", "password"),
    ("PIN码 2580", "2580", "password"),
    ("Mein Passwort lautet Hund#2020", "Hund#2020", "password"),
    ("mật khẩu của tôi là Meo2020", "Meo2020", "password"),
    ("password is 'my dog rex 2010'", "dog rex 2010", "password"),
    ("support asked for my password. ok here: Qaz!2wsx", "Qaz!2wsx", "password"),
    ("pass\n\nKiwi4455", "Kiwi4455", "password"),
    ("Password123 thats my pw", "Password123", "password"),
    ("https://alice:Secr3tPass@exchange.com/login", "Secr3tPass", "password"),
    ("i got the code. 252353", "252353", "otp"),
    ("the 2fa code you asked for:\n\n733411", "733411", "otp"),
    ("短信里是841074", "841074", "otp"),
    (f"{HEX[:8]}q8r7s6t5u4v3w2x1y0z9{HEX[:36]} is my api secret", "q8r7s6t5u4v3w2x1y0z9", "api_secret"),
    ("api key and secret below\nariwx8lixqxxk7hpksybomoyxp4qadgyxpsb425hh395fzh54lo12dhmerx24pv9\n"
     "fnqjeezteee8aexej9h56r2lgqtz0l2g3vunbyognwvramefktqlcj4gdyqfodes", "fnqjeezteee8aexej9h56r", "api_secret"),
    ('secret key is "deGoEVnKN3972yhd\n8BHdpHkG3ungfEqD"', "8BHdpHkG3ungfEqD", "api_secret"),
    ("This is the private key of my wallet. I need help recovering funds from it. Thank you, the value is "
     + HEX, HEX, "private_key"),
    ("paid with card 4219720827343825 cvc 456", "4219720827343825", "card"),
    ("https://x.com/api?password=Hunter22abc", "Hunter22abc", "password"),  # a query parameter still is one
])
def test_phrasings_from_outside_the_engine(text: str, secret: str, kind: str) -> None:
    out = redact(text)
    assert secret not in out.text and kind in out.kinds, out.text


@pytest.mark.parametrize("text", [
    "password: the same as before", "password: none", "password: I forgot it", "contact bob@example.com iPhone15 user",
    "please read my key points: the deposit is late", "the secret to trading is patience", "can't pass KYC level 2",
    "order id 8812345678, code not received", "send the code to +44 7700 900123", "my password has 12 characters and a symbol",
    f"txid {HEX}", f"tx hash: 0x{HEX}", f"交易哈希 {HEX}", f"{HEX}", "what is a seed phrase", "忘记密码怎么办",
    "my password is correct but it still fails", "my password is not working", "I forgot my password",
    "ticket SB-000123, order 2026110112345678, UID 48213377", "call +86 138 0013 8000 or a@b.com",
    "I sent 1,000 USDT on 2026-11-01 10:32", "Withdraw 0.5 ETH to 0x52908400098527886E0F7030069857D2E4169EE7",
    "my private key is safe, I never shared it. The tx hash is " + HEX,
    "the password field is greyed out", "my password manager is bitwarden", "mật khẩu không đúng",
    "I lost my private key last year. My deposit did not arrive. Please check " + HEX,
    "https://exchange.com/login?lang=en", "PIN码 3次错误被锁了", "mima wangle zenme ban",
    # a keyword that names a page of a link, not a secret
    "https://www.binance.com/en/login?id=123", "go to https://x.com/signin?next=abc123", "请访问https://x.com/login?id=5 登录",
    "is (https://exchange.example/pwd/reset?uid=48213377) your page?",
])
def test_what_agents_need_is_kept(text: str) -> None:
    assert redact(text).text == text


def test_already_redacted_text_is_left_alone_and_what_was_found_is_still_known() -> None:
    first = redact(f"is my wallet safe? my words are {SEED}")
    again = redact(first.text)
    assert again.text == first.text and again.kinds == ()
    assert kinds_found(first.text) == ("seed_phrase",)
    assert kinds_found(again.text, "password,seed_phrase", ("otp",)) == ("seed_phrase", "password", "otp")


def test_a_long_run_of_spaces_is_redacted_quickly_enough_to_finish() -> None:
    # Issue #16: 20,000 spaces after "api secret" backtracked for 3.5 s (12 s here). No timing
    # assert (see bench/redact.py); this only has to finish under the per-test timeout.
    text = "my api secret is" + " " * 200_000 + "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
    assert "vmPUZE6" not in redact(text).text


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(st.sampled_from(sorted(FAMILIES)), st.randoms(use_true_random=False))
def test_redacting_twice_changes_nothing_more(key: tuple[str, str, str], rng: random.Random) -> None:
    once = redact(FAMILIES[key](rng).text)
    twice = redact(once.text)
    assert twice.text == once.text and twice.kinds == ()


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_any_text_is_handled(text: str) -> None:
    out = redact(text)
    assert redact(out.text).text == out.text
    assert out.changed or out.text == text


def test_a_text_file_with_one_seed_word_per_paragraph_is_redacted() -> None:
    from bot.files import redact_text_file

    data = ("wallet backup, keep safe\n\n" + "\n\n".join(SEED.split()) + "\n\n-- written 2026-11-01\n").encode("gbk")
    out, kinds = redact_text_file(data)
    assert kinds == ["seed_phrase"] and "absurd" not in out.decode() and "written 2026-11-01" in out.decode()
