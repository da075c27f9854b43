"""Search tokens and queries, the same for SQLite (FTS5) and PostgreSQL (tsquery): Chinese as
characters and character pairs, words and identifiers as phrases, prefix on the last word, and
highlights that mark exactly what matched (never HTML)."""

from __future__ import annotations

from handoff.search import highlight, index_tokens, matches, parse, ticket_number_parts, tsvector_literal


def test_chinese_is_indexed_as_characters_and_pairs_full_width_and_case_folded() -> None:
    assert index_tokens("我的银行卡 Card ＵＳＤＴ１２３") == [
        "我", "我的", "的", "的银", "银", "银行", "行", "行卡", "卡", "card", "usdt123"]


def test_queries_use_pairs_for_chinese_phrases_for_identifiers_and_a_prefix_for_the_last_word() -> None:
    q = parse("银行卡 卡 card lin@example.com")
    assert q.fts5() == '"银行" AND "行卡" AND "卡" AND "card" * AND "lin" + "example" + "com" *'
    assert q.tsquery() == "'银行' & '行卡' & '卡' & 'card':* & ('lin' <-> 'example' <-> 'com':*)"
    assert parse("  ").empty and parse('"!!"').empty


def test_a_quote_in_a_query_cannot_break_out_of_the_match_expression() -> None:
    q = parse('card" OR "x')
    assert '"' not in "".join(t for term in q.terms for t in term)
    assert q.fts5() == '"card" * AND "or" * AND "x" *'


def test_ticket_numbers_are_found_with_or_without_the_prefix_and_zeros() -> None:
    assert ticket_number_parts("SB-000123") == ["SB-000123", "123"]
    assert "'123':" in tsvector_literal(index_tokens(" ".join(ticket_number_parts("SB-000123"))))


def test_highlight_marks_the_matched_words_in_both_languages() -> None:
    text = "Hello, my bank card was charged twice. 我的银行卡被扣了两次"
    h = highlight(text, parse("卡 CARD"))
    assert h is not None
    assert [h["text"][a:b] for a, b in h["marks"]] == ["card", "卡"]
    assert matches(text, parse("银行卡 card")) and not matches(text, parse("信用卡"))
    assert highlight("nothing here", parse("card")) is None
