"""The credential detectors' keyword scans look only where a keyword can begin
(`credentials._keywords`): they find exactly what the plain patterns find, for every branch of
every pattern, at the start, the end and the middle of a text, beside letters, digits and Chinese."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.redact import credentials as C

PATTERNS = [(C.PASSWORD_RE, C.PASSWORD_WORDS), (C.PASSPHRASE_RE, C.PASSPHRASE_WORDS), (C.OTP_RE, C.OTP_WORDS),
            (C.API_RE, C.API_WORDS), (C.TOTP_RE, C.TOTP_WORDS), (C.BACKUP_RE, C.BACKUP_WORDS)]
context = st.sampled_from(["", " ", "my ", "x", "9", "_", "我的", "：", "the new ", "\n", "API ", "e-", "one "])


def spans(p: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    return [m.span() for m in p.finditer(text)]


@pytest.mark.parametrize("raw,fast", PATTERNS, ids=["password", "passphrase", "otp", "api", "totp", "backup"])
@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_every_keyword_is_found_where_the_plain_pattern_finds_it(raw: str, fast: re.Pattern[str],
                                                                 data: st.DataObject) -> None:
    plain = re.compile(raw, re.I)
    word = data.draw(st.from_regex(plain, fullmatch=True))
    text = data.draw(context) + word + data.draw(context) + data.draw(st.from_regex(plain, fullmatch=True))
    assert spans(fast, text) == spans(plain, text)


def test_support_messages_give_the_same_keywords() -> None:
    from bench import texts as T

    ut = T.UniqueTexts(seed=7)
    for _ in range(2000):
        text = ut.next().text
        for raw, fast in PATTERNS:
            assert spans(fast, text) == spans(re.compile(raw, re.I), text)
