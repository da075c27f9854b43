"""Secrets as they arrive from phones and pastes (the second round of outside phrasings): an SMS
copied whole in the user's language, a code read out as words, full width mixed with ASCII, a
4-digit PIN, Korean slang, a key emoji, SDK code and CSV rows, a card with its expiry, a typo among
a seed phrase's first words — and the support text right next to those rules that must stay."""

from __future__ import annotations

import pytest

from bot.redact import redact

LEAKS = [
    # (text, secret that must not survive, kind)
    ("Doğrulama kodunuz: 482913", "482913", "otp"),
    ("Kode verifikasi Anda 482913", "482913", "otp"),
    ("رمز التحقق 482913", "482913", "otp"),
    ("رمز التحقق الخاص بك هو 551234", "551234", "otp"),
    ("Il tuo codice di verifica è 551234", "551234", "otp"),
    ("Use 551234 to verify your Coinbase account", "551234", "otp"),
    ("the code is one two three four five six", "one two three four five six", "otp"),
    ("2fa code: seven seven zero one five five", "seven seven zero one five five", "otp"),
    ("the code they sent is four-eight-two-nine-one-three", "four-eight-two-nine-one-three", "otp"),
    ("六位验证码是四八二九一三", "四八二九一三", "otp"),
    ("验证码：九五二七零一", "九五二七零一", "otp"),
    ("el código es cuatro ocho dos nueve uno tres", "cuatro ocho dos nueve uno tres", "otp"),
    ("验证码 ４８2９13", "2９13", "otp"),
    ("🔑 Abc#1234", "Abc#1234", "password"),
    ("my password is capital Q w e r t y one two three", "y one two three", "password"),
    ("PIN 0000", "0000", "password"),
    ("비번 qwer1234", "qwer1234", "password"),
    ("비번은 qwer1234 이에요", "qwer1234", "password"),
    ("мой пароль от биржи Qwerty123", "Qwerty123", "password"),
    ("my pass for the account is the same as the email: Tiger2020!", "Tiger2020!", "password"),
    ("| field | value |\n|---|---|\n| email | a@b.com |\n| password | Hunter22! |", "Hunter22!", "password"),
    ("the 25th word is MySecret2024", "MySecret2024", "password"),
    ("seed words are on paper\n25th word: Tr0ub4dor&3", "Tr0ub4dor&3", "password"),
    ("api key,secret\n7ebf4edt2sywb3wkh5dnsipzz5fk2z9ri19r0wy,7ojfljooa5lqsaj08xui6d39zzzzg4zdmen2khvd",
     "7ojfljooa5lqsaj08xui6d39zzzzg4zdmen2khvd", "api_secret"),
    ("client = Client('7ebf4edt2sywb3wkh5dnsipzz5fk2z9ri19r0wy', '7ojfljooa5lqsaj08xui6d39zzzzg4zdmen2khvd')",
     "7ebf4edt2sywb3wkh5dnsipzz5fk2z9ri19r0wy", "api_secret"),
    ("const wallet = new ethers.Wallet('0x78c8d5f08b79affd2b49c12a4b0062983475eb46c5296f62e338d74ff1fe4f7f')",
     "78c8d5f08b79affd2b49c12a4b0062983475eb46c5296f62e338d74ff1fe4f7f", "private_key"),
    ("4325 5366 9347 8334 12/27 JOHN SMITH cvv 123", "4325 5366", "card"),
    ("5135311858431412|12/27|123", "5135311858431412", "card"),
    ("number: 4325536693478334\nexp: 12/27\ncvv: 123\nname: John Smith", "4325536693478334", "card"),
    ("💳 4325536693478334", "4325536693478334", "card"),
    ("my seed: chimney task eyebrox bottom bean coyote avocado include fderal math hollow addict", "chimney task", "seed_phrase"),
]


def test_a_keystore_pasted_with_its_password_loses_both() -> None:
    keystore = ('{"version": 3, "address": "' + "ab" * 20 + '", "crypto": {"ciphertext": "' + "c1" * 32
                + '", "cipher": "aes-128-ctr", "kdf": "scrypt", "mac": "' + "9f" * 32 + '"}}')
    out = redact(f"my keystore file:\n{keystore}\nkeystore password: Tiger2024x")
    assert "c1c1c1" not in out.text and "Tiger2024x" not in out.text
    assert "private_key" in out.kinds and "password" in out.kinds
    assert "ab" * 20 in out.text  # (the address stays)


def test_a_typo_among_the_first_words_takes_no_words_of_the_sentence_before() -> None:
    phrase = "chimney task eyebrox bottom bean coyote avocado include fderal math hollow addict"
    assert redact(f"my secret words: {phrase}").text == "my secret words: [REDACTED:seed_phrase]"


@pytest.mark.parametrize("text,secret,kind", LEAKS, ids=[t[:30] for t, _, _ in LEAKS])
def test_a_secret_written_on_a_phone_or_pasted_from_code_is_redacted(text: str, secret: str, kind: str) -> None:
    out = redact(text)
    assert secret not in out.text, out.text
    assert kind in out.kinds


def test_the_cvv_after_a_card_and_its_expiry_goes_too() -> None:
    assert redact("5135311858431412|12/27|123").text == "[REDACTED:card]|12/27|[REDACTED:card]"


KEEP = [
    '{"code": 100023, "msg": "insufficient balance"}',
    '{"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}',
    "password reset for UID: 38920174",
    "password reset for order: 12345678",
    "mi código postal es 28013",
    "código de error 482913",
    "kode promo 123456 tidak berlaku",
    "il codice promozionale 5555 non funziona",
    "I tried the code four five times",
    "验证码三四次都不对",
    "card ending 4242 was charged twice",
    "visa ending 4242 expires 12/27",
    "IBAN DE89 3704 0044 0532 0130 00 for the SEPA deposit",
    "the 25th word is optional, right?",
    "what is the 25th word in a seed phrase?",
    "🔑 how do I reset my key?",
    "비번 바꿨어요",
    "PIN locked after 3 tries",
    "curl https://api.binance.com/api/v3/ticker/price?symbol=BTCUSDT",
    "client = Client(api_key, api_secret)",
    "GET /api/v3/order?symbol=BTCUSDT&orderId=28457512345&signature="
    "0a8f5c2e9d7b41f3a6c0e8b2d4f6a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d1f3",
]


@pytest.mark.parametrize("text", KEEP)
def test_support_text_next_to_the_new_rules_is_left_alone(text: str) -> None:
    assert redact(text).text == text
