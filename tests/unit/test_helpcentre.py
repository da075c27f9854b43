"""Help-centre articles as data: every file parses, both languages are there, the topics the bot
answers are covered, intent tags name real intents; search finds the article a user means in
either language."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.helpcentre import HelpCentre
from intents.answers import Answers
from intents.help import HelpArticles, ReadMore, parse_article
from tests.conftest import ROOT

ANSWERED = ("account", "deposit", "withdrawal", "trading", "fees", "security", "glossary", "vip", "ticket",
            "education")


@pytest.fixture(scope="module")
def centre() -> HelpCentre:
    return HelpCentre(ROOT / "help")


def test_the_articles_cover_every_answered_topic_in_both_languages(centre: HelpCentre) -> None:
    arts = centre.articles
    assert len(arts.articles) >= 60
    topics = arts.topics()
    for t in ANSWERED:
        assert len(topics.get(t, [])) >= 3, t
    known = set(Answers(ROOT / "intents/answers")._texts["en"])
    for a in arts.articles.values():
        assert a.body["en"] and a.body["zh"] and a.title["en"] and a.title["zh"]
        assert set(a.intents) <= known, (a.id, a.intents)


@pytest.mark.parametrize(("query", "lang", "want"), [
    ("how do I enable 2FA", "en", "security-enable-2fa"),
    ("充值没到账", "zh", "deposit-not-arrived"),
    ("my withdrawal is stuck", "en", "withdrawal-pending-stuck"),
    ("提币一直在处理中", "zh", "withdrawal-pending-stuck"),
    ("what is a seed phrase", "en", "glossary-wallet-keys"),
    ("身份认证要多久", "zh", "account-kyc-review-time"),
    ("资金费率", "zh", "trading-funding-rate"),
    ("forgot my password", "en", "account-password-reset"),
])
def test_search_puts_the_meant_article_first(centre: HelpCentre, query: str, lang: str, want: str) -> None:
    assert centre.index.search(query, lang)[0].id == want


def test_a_query_of_nothing_searchable_finds_nothing_and_quotes_cannot_break_the_query(centre: HelpCentre) -> None:
    assert centre.index.search("", "en") == []
    assert centre.index.search('" OR * NEAR(', "en") == []


def test_a_broken_article_is_refused_with_its_file_named(tmp_path: Path) -> None:
    d = tmp_path / "deposit"
    d.mkdir()
    p = d / "x.md"
    p.write_text("---\nid: deposit-x\ntopic: deposit\ntitle: {en: X}\n---\n<!-- lang: en -->\nbody\n")
    with pytest.raises(ValueError, match=r"x\.md: title\.zh is missing"):
        parse_article(p)
    p.write_text("---\nid: deposit-x\ntopic: fees\ntitle: {en: X, zh: Y}\n---\n<!-- lang: en -->\nA\n<!-- lang: zh -->\nB\n")
    with pytest.raises(ValueError, match="topic must name the folder"):
        HelpArticles(tmp_path)


def test_read_more_links_the_article_of_the_intent_in_the_users_language(centre: HelpCentre) -> None:
    rm = ReadMore(centre.articles, "https://support.example.com/")
    assert rm.line("security_enable_2fa", "zh") == "详细说明：https://support.example.com/help/a/security-enable-2fa?lang=zh"
    assert rm.line("smalltalk_greet", "en") is None


def test_pages_escape_what_the_user_typed(centre: HelpCentre) -> None:
    page = centre.results("<script>alert(1)</script> 充值", "zh")
    assert "<script>alert" not in page and "&lt;script&gt;" in page
