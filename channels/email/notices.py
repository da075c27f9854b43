"""What the channel itself tells a sender, without the bot: the mail could not be read at all
(encrypted, or sent in parts). Answering its subject alone would answer a question nobody knows
was asked; saying nothing would leave the person waiting."""

from __future__ import annotations

from bot.lang import Lang

UNREADABLE = {
    "en": ("We received your e-mail, but it was {why}, and our support mailbox cannot read such mail. "
           "Please write to us again without encryption (and never send passwords, keys or recovery "
           "phrases, encrypted or not)."),
    "zh": ("我们收到了您的邮件，但它{why}，客服邮箱无法读取。请不加密重新发送您的问题（无论是否加密，"
           "都请勿发送密码、密钥或助记词）。"),
}
_WHY = {
    "en": {"S/MIME": "encrypted (S/MIME)", "PGP": "encrypted (PGP)", "parts": "split into several parts"},
    "zh": {"S/MIME": "经过加密（S/MIME）", "PGP": "经过加密（PGP）", "parts": "被拆分成多个部分发送"},
}


def unreadable_notice(reason: str, lang: Lang) -> str:
    """The notice for a mail `ParsedMail.unreadable` gives `reason` for."""
    why = _WHY[lang]
    key = "S/MIME" if "S/MIME" in reason else "PGP" if "PGP" in reason else "parts"
    return UNREADABLE[lang].format(why=why[key])
