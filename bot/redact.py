"""Secret redaction, applied before the NLU, logs and storage ever see a text.

Seed phrases (BIP-39 word runs, English and Chinese word lists), private keys (hex with key
context, WIF, extended keys), API keys/secrets, passwords and one-time codes are replaced by
``[REDACTED:<kind>]``. Ordinary support text — addresses, TxIDs, amounts, order ids — stays intact:
a TxID is 64 hex characters just like a private key, so bare hex is only redacted when the words
around it say it is a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

SEED = "seed_phrase"
PRIVATE_KEY = "private_key"
API_SECRET = "api_secret"
PASSWORD = "password"
OTP = "otp"


def mark(kind: str) -> str:
    return f"[REDACTED:{kind}]"


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    kinds: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.kinds)


@lru_cache(maxsize=1)
def _wordlists() -> tuple[frozenset[str], frozenset[str]]:
    from mnemonic import Mnemonic

    en = frozenset(Mnemonic("english").wordlist)
    zh = frozenset(Mnemonic("chinese_simplified").wordlist) | frozenset(
        Mnemonic("chinese_traditional").wordlist
    )
    return en, zh


_SEED_CONTEXT = re.compile(
    r"seed|mnemonic|recovery\s*phrase|secret\s*phrase|backup\s*phrase|12\s*words|24\s*words|"
    r"助记词|助記詞|种子|種子|恢复短语|私钥|私鑰",
    re.I,
)
_WORD = re.compile(r"[A-Za-z]+")
_SEP_OK = re.compile(r"^[\s,;.\-–|/0-9)(:]*$")  # what may stand between seed words ("1. abandon 2) ability")
_ZH_SEED = re.compile(r"(?:[\u3400-\u9fff][\s,，、]+){7,23}[\u3400-\u9fff]")

_KEY_CONTEXT = (
    r"(?:private\s*key|priv\s*key|privkey|secret\s*key|\bpk\b|wallet\s*key|私钥|私鑰|密钥|秘钥|金鑰)"
)
_HEX_KEY_WITH_CONTEXT = re.compile(
    _KEY_CONTEXT + r"[^0-9A-Za-z]{0,40}?(?:(?:is|was|:|=|是|为|為)\s*)?(?P<v>(?:0x)?[0-9a-fA-F]{64})\b",
    re.I,
)
_WIF = re.compile(r"(?<![0-9A-Za-z])[5KL][1-9A-HJ-NP-Za-km-z]{50,51}(?![0-9A-Za-z])")
_XPRV = re.compile(r"\b[xyzt]prv[1-9A-HJ-NP-Za-km-z]{100,112}\b")

_API_CONTEXT = re.compile(
    r"(?P<ctx>api[\s_-]*(?:key|secret)|secret[\s_-]*key|api[\s_-]*secret|secret|token|passphrase|"
    r"API\s*密钥|API\s*私钥|api\s*key|密钥|秘钥|令牌)"
    r"(?P<sep>\s*(?:is|was|:|=|：|是|为|為)?\s*)"
    r"(?P<v>[A-Za-z0-9_\-+/=]{16,256})",
    re.I,
)
# Long mixed-case alphanumerics that no address format produces (addresses are hex, lowercase
# bech32, or base58 of at most 44 characters); exchange API keys and secrets look like this.
_LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{48,128}(?![A-Za-z0-9])")

_PASSWORD_EN = re.compile(
    r"(?P<ctx>\b(?:password|passwd|passcode|pwd|pw|pass|login\s+pass)\b)"
    r"(?P<sep>\s*(?:is|was|=|:)\s*|\s+)"
    r"(?P<v>[\"']?[^\s\"']{1,128}[\"']?)",
    re.I,
)
_PASSWORD_ZH = re.compile(
    r"(?P<ctx>(?:登录|登陆|资金|交易|支付|账户|帐户|账号)?密[码碼])"
    r"(?P<sep>\s*(?:是|为|為|:|：|=|设成|设置成|改成)\s*)"
    r"(?P<v>[^\s，。；！？、]{1,128})",
)
# After "password is" these words describe the password rather than reveal it.
_NOT_A_PASSWORD = frozenset(
    """not wrong incorrect invalid expired working correct right too the my a an and or but reset
    changed lost forgotten forgot recovery reset. change required strong weak same still isn't
    doesnt doesn't won't wont keeps has have had been being no any for to of in on with that this
    it is was please help field box manager""".split()
)
_OTP = re.compile(
    r"(?<![0-9A-Za-z])(?P<ctx>(?:one[\s-]*time\s*(?:pass(?:word|code)?|code)|otp|2fa|totp|mfa|authenticator|"
    r"google\s*auth\w*|verification\s*code|security\s*code|auth\w*\s*code|sms\s*code|code|"
    r"验证码|驗證碼|动态码|動態碼|校验码|谷歌验证码|谷歌码|短信码|安全码))"
    r"(?P<sep>[^0-9A-Za-z\u4e00-\u9fff]{0,6}(?:is|was|=|是|为|為|:|：)?[^0-9A-Za-z\u4e00-\u9fff]{0,4})"
    r"(?P<v>\d{3}[\s-]?\d{3}|\d{4,8})(?![0-9A-Za-z])",
    re.I,
)


def _replace_group(pattern: re.Pattern[str], kind: str, text: str, kinds: list[str], check=None) -> str:
    def sub(m: re.Match[str]) -> str:
        v = m.group("v")
        if v.startswith("[REDACTED:"):
            return m.group(0)
        if check is not None and not check(m):
            return m.group(0)
        kinds.append(kind)
        start, end = m.span("v")
        s0 = m.start(0)
        whole = m.group(0)
        return whole[: start - s0] + mark(kind) + whole[end - s0 :]

    return pattern.sub(sub, text)


def _is_password_value(m: re.Match[str]) -> bool:
    v = m.group("v").strip("\"'").rstrip(".,!?;")
    sep = m.group("sep")
    if not v:
        return False
    if ":" in sep or "=" in sep:
        return True
    if v.lower() in _NOT_A_PASSWORD:
        return False
    if not (("is" in sep.lower()) or ("was" in sep.lower())):
        # "password hunter2!" without a verb: only when it looks like a credential, not a word.
        return any(c.isdigit() for c in v) and any(c.isalpha() for c in v)
    return True


def _is_zh_password_value(m: re.Match[str]) -> bool:
    v = m.group("v")
    # "密码是什么" / "密码改成功了" are questions, not passwords: a value needs ASCII in it.
    return any(c.isascii() and c.isalnum() for c in v)


def _looks_secret_token(tok: str) -> bool:
    return any(c.isupper() for c in tok) and any(c.islower() for c in tok) and any(c.isdigit() for c in tok)


def _redact_seed_en(text: str, kinds: list[str]) -> str:
    en, _ = _wordlists()
    words = list(_WORD.finditer(text))
    if len(words) < 8:
        return text
    context = bool(_SEED_CONTEXT.search(text))
    min_run = 8 if context else 12
    spans: list[tuple[int, int]] = []
    i = 0
    n = len(words)
    while i < n:
        if words[i].group(0).lower() not in en:
            i += 1
            continue
        j = i
        misses = 0
        last_hit = i
        while j + 1 < n:
            gap = text[words[j].end() : words[j + 1].start()]
            if not _SEP_OK.match(gap):
                break
            w = words[j + 1].group(0)
            if w.lower() in en:
                last_hit = j + 1
            elif w.islower() and len(w) <= 8 and misses < 1:
                misses += 1  # one typo in a phrase still leaks the phrase
            else:
                break
            j += 1
        count = last_hit - i + 1
        if count >= min_run:
            spans.append((words[i].start(), words[last_hit].end()))
            i = last_hit + 1
        else:
            i += 1
    for s, e in reversed(spans):
        text = text[:s] + mark(SEED) + text[e:]
        kinds.append(SEED)
    return text


def _redact_seed_zh(text: str, kinds: list[str]) -> str:
    _, zh = _wordlists()

    def sub(m: re.Match[str]) -> str:
        chars = [c for c in m.group(0) if "\u3400" <= c <= "\u9fff"]
        if sum(c in zh for c in chars) >= len(chars) - 1 and len(chars) >= 8:
            kinds.append(SEED)
            return mark(SEED)
        return m.group(0)

    return _ZH_SEED.sub(sub, text)


def redact(text: str) -> Redacted:
    """Replace every secret in `text`; returns the new text and the kinds found (in order)."""
    kinds: list[str] = []
    out = text
    out = _redact_seed_en(out, kinds)
    out = _redact_seed_zh(out, kinds)
    out = _replace_group(_HEX_KEY_WITH_CONTEXT, PRIVATE_KEY, out, kinds)
    out, c1 = _XPRV.subn(mark(PRIVATE_KEY), out)
    kinds.extend([PRIVATE_KEY] * c1)

    def wif(m: re.Match[str]) -> str:
        k = m.group(0)
        # A real WIF key is random base58: it always mixes cases. Hex TxIDs never match this.
        if any(c.isupper() for c in k[1:]) and any(c.islower() for c in k):
            kinds.append(PRIVATE_KEY)
            return mark(PRIVATE_KEY)
        return k

    out = _WIF.sub(wif, out)
    out = _replace_group(_API_CONTEXT, API_SECRET, out, kinds, check=lambda m: _api_value(m))

    def long_tok(m: re.Match[str]) -> str:
        if _looks_secret_token(m.group(0)):
            kinds.append(API_SECRET)
            return mark(API_SECRET)
        return m.group(0)

    out = _LONG_TOKEN.sub(long_tok, out)
    out = _replace_group(_PASSWORD_EN, PASSWORD, out, kinds, check=_is_password_value)
    out = _replace_group(_PASSWORD_ZH, PASSWORD, out, kinds, check=_is_zh_password_value)
    out = _replace_group(_OTP, OTP, out, kinds)
    return Redacted(out, tuple(kinds))


def _api_value(m: re.Match[str]) -> bool:
    v = m.group("v")
    if re.fullmatch(r"0x[0-9a-fA-F]{40}|0x[0-9a-fA-F]{64}|[0-9a-fA-F]{64}", v):
        return False  # addresses and TxIDs near the word "token" (e.g. "token contract 0x…")
    ctx = m.group("ctx").lower()
    if ctx in ("token",) and not _looks_secret_token(v):
        return False
    return any(c.isdigit() for c in v) or _looks_secret_token(v) or len(v) >= 24


def count_marks(text: str) -> int:
    return text.count("[REDACTED:")
