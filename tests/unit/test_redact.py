"""No planted secret survives redaction; ordinary support text is left intact."""

import string

from hypothesis import given, settings
from hypothesis import strategies as st
from mnemonic import Mnemonic

from bot.redact import redact

EN = Mnemonic("english")
HEX = "0123456789abcdef"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

filler = st.sampled_from([
    "hi support", "please help", "my deposit is late", "我的账户", "thanks", "urgent!!", "请帮忙看看",
    "I can't log in", "提币一直没到", "regards, Anna", "",
])


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=16, max_size=32), filler, filler)
def test_generated_seed_phrases_never_survive(entropy: bytes, before: str, after: str) -> None:
    entropy = entropy[: len(entropy) // 4 * 4]
    phrase = EN.to_mnemonic(entropy)
    out = redact(f"{before} {phrase} {after}")
    assert "[REDACTED:seed_phrase]" in out.text
    words = phrase.split()
    assert not any(" ".join(words[i : i + 3]) in out.text for i in range(len(words) - 2))


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=HEX, min_size=64, max_size=64),
       st.sampled_from(["my private key is ", "private key: ", "私钥是", "pk=", "here's my privkey "]))
def test_hex_private_keys_with_context_never_survive(key: str, ctx: str) -> None:
    out = redact(f"{ctx}{key}")
    assert key not in out.text and "[REDACTED:private_key]" in out.text


def wif_encode(secret: bytes, compressed: bool) -> str:
    """Bitcoin's Wallet Import Format: base58check(0x80 ‖ key [‖ 0x01])."""
    import hashlib

    raw = b"\x80" + secret + (b"\x01" if compressed else b"")
    raw += hashlib.sha256(hashlib.sha256(raw).digest()).digest()[:4]
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return out


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=32, max_size=32).filter(lambda b: any(b)), st.booleans())
def test_wif_keys_never_survive(secret: bytes, compressed: bool) -> None:
    wif = wif_encode(secret, compressed)
    assert wif not in redact(f"import this {wif} please").text


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + "!@#$%^&*", min_size=6, max_size=24).filter(
    lambda p: any(c.isdigit() for c in p)),
    st.sampled_from(["password: ", "my password is ", "pwd=", "密码是", "登录密码：", "Password = "]))
def test_passwords_never_survive(pw: str, ctx: str) -> None:
    out = redact(f"can't login, {ctx}{pw} help")
    assert pw not in out.text


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=999999),
       st.sampled_from(["my 2FA code is ", "verification code: ", "验证码 ", "谷歌验证码是", "OTP "]))
def test_one_time_codes_never_survive(n: int, ctx: str) -> None:
    code = f"{n:06d}"
    assert code not in redact(f"{ctx}{code}").text


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits, min_size=64, max_size=64).filter(
    lambda s: any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s)))
def test_api_secrets_never_survive(secret: str) -> None:
    assert secret not in redact(f"my api secret {secret}").text
    assert secret not in redact(secret).text


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["0x" + "ab" * 20, "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"]),
    st.text(alphabet=HEX, min_size=64, max_size=64),
    st.decimals(min_value=0, max_value=100000, places=4).map(str),
    st.sampled_from(["USDT", "BTC", "ETH"]),
)
def test_addresses_txids_and_amounts_are_left_intact(addr: str, txid: str, amount: str, coin: str) -> None:
    text = f"I sent {amount} {coin} to {addr}, txid {txid}, order 123456789 still not arrived"
    out = redact(text)
    assert out.text == text and out.kinds == ()


def test_everyday_sentences_are_untouched() -> None:
    for t in [
        "my password is not working", "密码是什么", "I forgot my password", "How do I enable 2FA?",
        "what is a seed phrase", "USDT充值一直没到账怎么办", "the code doesn't arrive",
        "I want to buy some bitcoin please help me with my account deposit",
        "Withdraw 0.5 ETH to 0x52908400098527886E0F7030069857D2E4169EE7 on ERC20",
    ]:
        assert redact(t).text == t, t
