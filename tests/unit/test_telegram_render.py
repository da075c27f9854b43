"""How replies are cut and worded for Telegram: the 4096 limit, groups, buttons."""

from __future__ import annotations

import pytest

from bot.models import Button, Outbound
from channels.telegram import render


def ob(**kw: object) -> Outbound:
    base: dict[str, object] = {"channel": "telegram", "conversation_id": "telegram:-100", "user_id": "1",
                               "text": "x", "meta": {"reply_chat_type": "supergroup"}}
    return Outbound(**{**base, **kw})  # type: ignore[arg-type]


def test_a_short_reply_is_one_message() -> None:
    assert render.split_text("  hello  ") == ["hello"]
    assert render.split_text("") == []


def test_a_long_reply_is_cut_at_paragraphs_and_nothing_is_lost() -> None:
    paras = [f"Paragraph {i}: " + "word " * 300 for i in range(8)]
    text = "\n\n".join(p.strip() for p in paras)
    parts = render.split_text(text)
    assert len(parts) > 1
    assert all(render.utf16_len(p) <= 4096 for p in parts)
    assert all(p.startswith("Paragraph") for p in parts)  # every cut fell on a paragraph break
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())


def test_without_breaks_the_cut_falls_on_a_line_then_a_space_then_anywhere() -> None:
    lines = "\n".join("line " * 50 for _ in range(30))
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in render.split_text(lines))
    giant = "A" * 10_000
    parts = render.split_text(giant)
    assert [len(p) for p in parts] == [4096, 4096, 1808]
    assert "".join(parts) == giant


def test_emoji_count_double_like_telegram_counts_them() -> None:
    parts = render.split_text("😀" * 3000)  # 6000 UTF-16 units
    assert all(render.utf16_len(p) <= 4096 for p in parts) and "".join(parts) == "😀" * 3000
    assert [len(p) for p in parts] == [2048, 952]
    # A lone surrogate (JSON "\ud83d" without its pair) is one unit, as Telegram counts it.
    assert render.utf16_len("a😀中\ud83d") == 5
    assert render.split_text("\ud83d" * 4097) == ["\ud83d" * 4096, "\ud83d"]


def test_chinese_text_is_cut_after_a_full_stop() -> None:
    text = "这是一个很长的句子，用来测试消息拆分。" * 400
    parts = render.split_text(text)
    assert len(parts) >= 2 and all(p.endswith("。") for p in parts)
    assert "".join(parts) == text


@pytest.mark.parametrize(
    ("topic", "chat_type", "private"),
    [
        ("account", "supergroup", True),
        ("withdrawal", "group", True),
        ("theft", "supergroup", True),
        ("human", "supergroup", True),
        (None, "supergroup", True),  # an agent's message in a group conversation
        ("glossary", "supergroup", False),
        ("out_of_scope", "group", False),
        ("account", "private", False),
    ],
)
def test_account_matters_never_go_to_a_group(topic: str | None, chat_type: str, private: bool) -> None:
    assert render.needs_private_chat(ob(topic=topic, meta={"reply_chat_type": chat_type})) is private


def test_our_own_notices_may_be_posted_in_a_group() -> None:
    assert not render.needs_private_chat(ob(topic=None, meta={"reply_chat_type": "group", "reply_public_ok": "1"}))


def test_the_private_chat_invitation_has_a_deep_link_in_the_users_language() -> None:
    en = render.go_private_text("en", "sb_bot", "account")
    zh = render.go_private_text("zh", "sb_bot", "account")
    assert "https://t.me/sb_bot?start=group_account" in en and "private chat" in en
    assert "https://t.me/sb_bot?start=group_account" in zh and "私聊" in zh
    assert render.start_payload(None) == "group"
    assert render.start_payload("weird topic!") == "group_weirdtopic"


def test_agent_messages_say_who_wrote_them() -> None:
    assert render.with_author(ob(kind="agent", author="Lena", text="Done.")) == "Lena (support agent):\nDone."
    assert render.with_author(ob(kind="agent", author="Lena", text="好了", lang="zh")) == "Lena (客服):\n好了"
    assert render.with_author(ob(kind="answer", author=None, text="Hi")) == "Hi"


def test_buttons_ratings_share_a_row_choices_get_one_each() -> None:
    stars = [Button(label=str(i), payload=f"csat:{i}") for i in range(1, 6)]
    assert [len(r) for r in render.keyboard_rows(stars)] == [5]
    choices = [Button(label="Deposit not arrived", payload="topic:deposit"), Button(label="Withdrawal", payload="w")]
    assert [len(r) for r in render.keyboard_rows(choices)] == [1, 1]


def test_callback_data_limit_is_64_bytes() -> None:
    assert render.fits_callback("x" * 64) and not render.fits_callback("x" * 65)
    assert not render.fits_callback("充" * 22)  # 66 bytes in UTF-8
    assert len(render.CALLBACK_PREFIX + render.callback_digest("y" * 500)) <= 64


def test_a_hard_cut_never_splits_what_a_reader_sees_as_one_character() -> None:
    # A long run without spaces (emoji, flags, accented letters): the cut moves back to the
    # start of the character sequence instead of splitting a family emoji, a flag or an accent.
    family, flag, accented = "👨\u200d👩\u200d👧\u200d👦", "🇨🇳", "e\u0301"
    for unit in (family, flag, accented, "👍🏽", "1\ufe0f\u20e3"):
        for pad in ("", "x", "xyz"):
            s = pad + unit * (9000 // len(unit))
            parts = render.split_text(s)
            assert "".join(parts) == s and all(render.utf16_len(p) <= 4096 for p in parts)
            for p in parts[1:]:
                assert p.startswith(unit), (pad, unit, p[:4])
