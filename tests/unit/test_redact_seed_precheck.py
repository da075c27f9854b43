"""The seed-phrase detector's cheap first look (`seed._may_hold`) never skips a text in which the
full search (`seed._find`) finds a phrase: on generated texts made of list words in several
languages, Chinese list characters written apart and together, other characters, keywords,
JSON escapes and combining marks, with every kind of gap between them, both give the same spans."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from mnemonic import Mnemonic

from bot.redact import redact, seed
from bot.redact._doc import Doc

_LISTS = {lang: Mnemonic(lang).wordlist for lang in
          ("english", "french", "spanish", "japanese", "korean", "czech", "chinese_simplified",
           "chinese_traditional")}
_HAN_NOT_LISTED = [c for c in "龘鑫髙嬲氼囧烎槑砼" if c not in seed.lists().han]

token = st.one_of(
    st.sampled_from(_LISTS["english"]),
    st.sampled_from(_LISTS["english"]).map(str.upper),
    st.sampled_from(_LISTS["french"] + _LISTS["spanish"] + _LISTS["czech"]),
    st.sampled_from(_LISTS["japanese"] + _LISTS["korean"]),
    st.sampled_from(_LISTS["chinese_simplified"] + _LISTS["chinese_traditional"]),
    st.sampled_from(_HAN_NOT_LISTED),
    st.sampled_from(["deposit", "help", "my", "wallet", "钱包", "提现没到账", "我的助记词是", "seed", "phrase",
                     "mnemonic", "e\u0301", "\\u9f7f", "\\u622a", "USDT", "x1"]),
)
gap = st.sampled_from(["", "", " ", "  ", ",", "，", "、", "\n", "1. ", "2) ", " - ", "123", "-" * 17, "\u0301",
                      "：", '", "'])


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(token, gap), max_size=40))
    return "".join(t + g for t, g in parts)


@st.composite
def phrases(draw: st.DrawFn) -> str:
    """Real phrases, glued or written apart, inside ordinary text."""
    lang = draw(st.sampled_from(["english", "chinese_simplified", "chinese_traditional", "french", "japanese"]))
    entropy = draw(st.binary(min_size=16, max_size=32))
    words = Mnemonic(lang).to_mnemonic(entropy[: len(entropy) // 4 * 4]).split()
    if draw(st.booleans()):  # a partial phrase: 8 words are enough beside a keyword
        words = words[: draw(st.sampled_from([7, 8, 8, 9, 11, 12]))]
    sep = draw(gap if lang.startswith("chinese") else gap.filter(bool))
    keyword = draw(st.sampled_from(["", "my seed phrase: ", "助记词：", "recovery words are ", "words are "]))
    return draw(texts()) + keyword + sep.join(words) + draw(texts())


@settings(max_examples=1500, deadline=None)
@given(texts())
def test_the_first_look_never_skips_a_text_with_a_phrase(text: str) -> None:
    assert seed.find(Doc(text)) == seed._find(Doc(text))


@settings(max_examples=400, deadline=None)
@given(phrases())
def test_the_first_look_lets_every_phrase_through(text: str) -> None:
    found = seed._find(Doc(text))
    assert seed.find(Doc(text)) == found
    if found:
        assert seed._may_hold(text)


def test_ordinary_support_questions_are_ruled_out_by_the_first_look() -> None:
    """What the first look is for: most texts need no word-by-word search, and they still come
    out of `redact` as they went in."""
    for text in ("USDT充值一直没到账怎么办", "BEP20网络可以充ETH吗，马上要转1595.71",
                 "KYC审核要多久，我6天前提交的，申请编号5266791928514",
                 "how much interest do I pay borrowing 1597.73 SOL for 2 days on margin",
                 "I can't log in, the code doesn't arrive"):
        assert not seed._may_hold(text)
        assert redact(text).text == text


def test_phrases_at_the_edge_of_the_thresholds_get_the_same_spans() -> None:
    """7, 8, 11, 12 and 13 words, with and without a keyword, every way of writing them apart or
    together: exactly where the first look's thresholds lie."""
    found = 0
    for lang in ("english", "chinese_simplified", "chinese_traditional", "french", "japanese"):
        m = Mnemonic(lang)
        for seed_bytes in (bytes(range(16)), bytes(range(100, 132)), b"\xff" * 16):
            words = m.to_mnemonic(seed_bytes).split()
            for n in (7, 8, 11, 12, 13):
                for sep in (" ", "，", "", "\n", "、", ", "):
                    if sep == "" and not lang.startswith("chinese"):
                        continue
                    for keyword in ("", "my seed phrase: ", "助记词是", "recovery words: "):
                        for after in ("", "，帮我看看", " thanks"):
                            text = keyword + sep.join(words[:n]) + after
                            spans = seed._find(Doc(text))
                            assert seed.find(Doc(text)) == spans, text
                            found += bool(spans)
    assert found > 100  # the cases do hold phrases
