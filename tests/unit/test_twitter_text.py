"""X's text rules: weighted length, public shortening, DM splitting, handle stripping."""

from __future__ import annotations

import pytest

from channels.twitter.text import shorten_public, split_dm, strip_leading_mentions, weighted_length
from tests.fakes.x_api import x_weighted_length

HELP = "https://help.example.com/articles/staking"

STAKING_EN = (
    "Staking means locking coins to help secure a Proof-of-Stake blockchain. In return the network pays "
    "rewards, which come from newly issued coins and transaction fees.\n"
    "• APR is the simple yearly rate; APY includes compounding.\n"
    "• Flexible staking can be redeemed anytime; locked staking has a fixed term and usually a higher rate.\n"
    "• Some networks have an unbonding period before coins are available again.\n"
    "Risks include price moves, validator penalties (slashing) and variable rates: rewards are never guaranteed."
)
STAKING_ZH = (
    "质押（Staking）是锁定代币，帮助维护权益证明（PoS）区块链的安全，网络会发放奖励，来源是新增发的代币和交易手续费。\n"
    "• APR 是单利年化，APY 包含复利。\n"
    "• 活期质押可随时赎回；定期质押有固定期限，利率通常更高。\n"
    "• 部分网络赎回时有解绑等待期。\n"
    "风险包括币价波动、验证者被罚没（slashing）以及收益率变化，收益从来没有保证。"
)


def test_x_counts_cjk_double_and_every_url_as_23() -> None:
    assert weighted_length("hello") == 5
    assert weighted_length("质押") == 4
    assert weighted_length("USDT充值") == 8
    assert weighted_length(f"see {HELP}") == 4 + 23
    assert weighted_length("a https://x.co b") == 2 + 23 + 2
    assert weighted_length("“quotes” — dash") == len("“quotes” — dash")  # general punctuation weighs 1
    assert weighted_length("🙂") == 2


def test_an_answer_that_fits_is_posted_unchanged() -> None:
    assert shorten_public("Thanks, glad I could help!", 280, HELP) == "Thanks, glad I could help!"


@pytest.mark.parametrize("text", [STAKING_EN, STAKING_ZH])
def test_a_long_answer_keeps_whole_first_sentences_and_links_the_help_page(text: str) -> None:
    out = shorten_public(text, 280, HELP)
    assert weighted_length(out) <= 280 and x_weighted_length(out) <= 280
    assert out.endswith(" " + HELP)
    body = out[: -len(HELP) - 1]
    assert text.startswith(body)  # a prefix of the answer made of whole sentences
    first_sentence = text.split("\n")[0].split(". ")[0].split("，")[0]
    assert body.startswith(first_sentence)


def test_chinese_is_cut_at_sentence_ends_because_it_counts_double() -> None:
    out = shorten_public(STAKING_ZH, 140, HELP)
    assert x_weighted_length(out) <= 140
    body = out[: -len(HELP) - 1]
    assert body and body[-1] in "。！？；：" or body.endswith("…")


def test_a_first_sentence_too_long_is_cut_at_a_word_boundary_with_an_ellipsis() -> None:
    text = "Staking " + " ".join(f"word{i}" for i in range(120)) + "."
    out = shorten_public(text, 280, HELP)
    assert x_weighted_length(out) <= 280
    body = out[: -len(HELP) - 1]
    assert body.endswith("…")
    last = body[:-1].split()[-1]
    assert last in text.split()  # a whole word, never half of one


def test_no_link_configured_still_fits() -> None:
    out = shorten_public(STAKING_EN, 280, None)
    assert weighted_length(out) <= 280 and "http" not in out


def test_dm_split_at_paragraphs_and_lines_without_losing_words() -> None:
    paras = [f"Paragraph {i}. " + " ".join(["lorem"] * 30) for i in range(6)]
    text = "\n\n".join(paras)
    parts = split_dm(text, 400)
    assert all(len(p) <= 400 for p in parts)
    assert len(parts) > 1
    assert parts[0].startswith("Paragraph 0.")
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())
    assert split_dm("short", 10_000) == ["short"]
    assert split_dm("   ", 10_000) == []


def test_dm_split_of_one_huge_paragraph_breaks_between_words() -> None:
    text = " ".join(f"w{i}" for i in range(3000))
    parts = split_dm(text, 1000)
    assert all(len(p) <= 1000 for p in parts)
    assert " ".join(parts).split() == text.split()


def test_leading_handles_are_stripped_and_later_ones_kept() -> None:
    assert strip_leading_mentions("@ExchangeSupport @alice_1 how do I deposit? cc @bob") == "how do I deposit? cc @bob"
    assert strip_leading_mentions(".@ExchangeSupport 你好") == "你好"
    assert strip_leading_mentions("@ExchangeSupport你好，充值没到账") == "你好，充值没到账"
    assert strip_leading_mentions("is @fake_support yours?") == "is @fake_support yours?"


# -- X's own count (twitter-text v3): what X refuses and what it lets through ---------------------------

@pytest.mark.parametrize(("text", "weight"), [
    ("visit example.com now", 6 + 23 + 4),  # a bare domain with a known TLD is a link: 23
    ("fees: help.example.com/fees.", 6 + 23 + 1),  # the final full stop is not part of the link
    ("详情见 https://example.com/faq。请联系客服", 7 + 23 + 2 * 6),  # the link ends before Chinese
    ("英語example.com中国語", 4 + 23 + 6),
    ("see https://x.com/a.", 4 + 23 + 1),
    ("example.zzz and v1.2, e.g. this", 31),  # no known TLD: text
    ("foo@example.com", 15),  # an e-mail address is not a link
    ("https://localhost/x", 19),
])
def test_links_are_found_where_x_finds_them(text: str, weight: int) -> None:
    assert weighted_length(text) == weight


@pytest.mark.parametrize("emoji", ["👍🏽", "🇨🇳", "👨\u200d👩\u200d👧", "1️⃣", "❤️", "😀"])
def test_an_emoji_sequence_counts_two_as_one(emoji: str) -> None:
    assert weighted_length(emoji) == 2
    assert weighted_length(f"ok {emoji}") == 5
    assert weighted_length("©") == 1  # a single light code point stays light


def test_a_chinese_answer_with_a_link_in_the_middle_is_shortened_to_what_x_accepts() -> None:
    # Before: everything after the link up to the next space counted as part of the link (23), so
    # the shortened post was far over 280 on X and refused.
    answer = ("提币到账时间取决于网络确认数，详情见https://help.example.com/withdrawal。" + "一般情况下几分钟内到账，" * 12
              + "如超过一小时仍未到账，请提供TxID。")
    out = shorten_public(answer, 280, HELP)
    link = "https://help.example.com/withdrawal"
    assert link in out and out.endswith(" " + HELP)
    rest = out.replace(link, "").replace(HELP, "")
    # X's count written out: two links, and every other character here weighs 2 unless ASCII.
    assert 2 * 23 + sum(1 if ord(c) < 0x1100 else 2 for c in rest) <= 280


def test_emoji_sequences_are_not_cut_as_if_they_counted_per_code_point() -> None:
    text = "Welcome! " + "👍🏽" * 135  # 9 + 270 = 279 on X: it fits as it is
    assert shorten_public(text, 280) == text
