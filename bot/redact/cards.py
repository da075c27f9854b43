"""Payment card numbers and card security codes. A user buying crypto with a card pastes them
into the chat; agents never need them, and PCI DSS forbids keeping a card number in clear.

- 13–19 digits that pass the Luhn check, written in groups ("4111 1111 1111 1111",
  "4111-1111-1111-1111", Amex "3782 822463 10005"): redacted wherever they are — nothing else a
  user writes has that shape and that checksum.
- Written without separators, only with a card word near it on its line (card, visa, mastercard,
  amex, unionpay, 银行卡, 信用卡, 卡号 …) and no id word right before the number (order, UID,
  订单 …): a long order id passes the Luhn check one time in ten.
- Written without separators with an expiry date after it on its line or the next one
  ("4111111111111111|12/27|123", "number: 4111…\nexp: 12/27"), and the security code right
  after that date.
- Grouped digits after an IBAN's country code ("DE89 3704 0044 0532 0130 00") are a bank account,
  not a card: a bank account number is no secret here (users give it for fiat deposits).
- 3–4 digits right after CVV / CVC / CVV2 / CID / security code on the back / 安全码 … (the
  code on the back of the card).
"""

from __future__ import annotations

import re

from bot.redact._doc import Doc

CARD = "card"

# Both begin with a digit and nothing else, so the engine skips to the digits in C; that a match
# is a whole run (no digit or "-" next to it) is checked after (`_whole`).
_GROUPED = re.compile(r"\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?(?![\d-])|\d{4}[ -]\d{6}[ -]\d{4,5}(?![\d-])")
_PLAIN = re.compile(r"\d{13,19}(?!\d)")
_CARD_WORDS = re.compile(
    r"(?i)(?<![a-z])(?:(?:credit|debit|bank|payment|visa|master|prepaid)[\s-]?cards?|cards?[\s-]?(?:number|no\.?|#)|cards?|"
    r"visa|master[\s-]?card|amex|american[\s-]express|union[\s-]?pay|discover|jcb|maestro)(?![a-z])|\U0001f4b3|"
    r"银行卡|銀行卡|信用卡|借记卡|借記卡|储蓄卡|儲蓄卡|卡号|卡號|银联|銀聯|维萨|萬事達|万事达"
)
_ID_BEFORE = re.compile(
    r"(?i)(?:order|id|uid|txid|tx|ticket|invoice|reference|ref|account|acct|phone|tel|订单号?|訂單號?|单号|單號|编号|編號)"
    r"\s{0,2}(?:no\.?|number|#)?\s{0,2}[:：#=]?\s{0,2}$"
)
_CVV = re.compile(
    r"(?=[cCsS安卡])(?:(?i:(?<![a-z])(?:cvv2?|cvc2?|cid|csc|security[\s-]code[\s\w]{0,12}?back)(?![a-z]))"
    r"\s{0,3}(?:is|[:：=])?\s{0,3}(\d{3,4})(?!\d)|"
    r"(?:安全码|安全碼|卡背(?:面)?(?:三位数|三位數|的三位|后三位|後三位)?)\D{0,4}?(\d{3,4})(?!\d))"
)


# An expiry date after a card number: on its line or the next ("|12/27|123", "\nexp: 12/27"), with
# the security code that may follow it.
_EXPIRY = re.compile(
    r"[^\n\d]{0,16}(?:\r?\n[^\n\d]{0,16})?(?<!\d)(?:0[1-9]|1[0-2])\s?/\s?(?:\d\d|20\d\d)(?![\d/])"
    r"(?:[ \t]{0,2}[|,;/][ \t]{0,2}(\d{3,4})(?![\d/]))?")
_IBAN_BEFORE = re.compile(r"(?i)(?:\biban\b[^\n]{0,24}|(?<![A-Za-z0-9])[A-Z]{2}\d\d(?:[ -][A-Z0-9]{4}){0,3}[ -])$")


def _luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _valid(number: str) -> bool:
    digits = number.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn(digits)


def _whole(text: str, start: int) -> bool:
    return start == 0 or not (text[start - 1].isdigit() or text[start - 1] == "-")


def find(doc: Doc) -> list[tuple[int, int]]:
    """Spans of card numbers and security codes in `doc`."""
    text = doc.text
    out: list[tuple[int, int]] = []
    for m in _GROUPED.finditer(text):
        if not _whole(text, m.start()) or _IBAN_BEFORE.search(text, max(0, m.start() - 40), m.start()):
            continue
        if _valid(m.group(0)):
            out.append(m.span())
        elif (cut := max(m.group(0).rfind(" "), m.group(0).rfind("-"))) > 0 and _valid(m.group(0)[:cut]):
            out.append((m.start(), m.start() + cut))  # "4111 1111 1111 1111 12/27": the expiry is no part
    for m in _PLAIN.finditer(text):
        if not _whole(text, m.start()) or not _valid(m.group(0)):
            continue
        s, e = doc.line(m.start())  # (a line, not a sentence: "card no. 4111…" holds a full stop)
        if _ID_BEFORE.search(text, max(s, m.start() - 24), m.start()):
            continue
        if _CARD_WORDS.search(text, max(s, m.start() - 120), min(e, m.end() + 60)):
            out.append(m.span())
        elif (x := _EXPIRY.match(text, m.end())) is not None:
            out.append(m.span())
            if x.group(1) is not None:
                out.append(x.span(1))
    for m in _CVV.finditer(text):
        g = 1 if m.group(1) is not None else 2
        out.append(m.span(g))
    return out
