"""Generators of secrets as people write them, and of text that must stay intact — per kind ×
phrasing family × language. Each generator takes a `random.Random` (hypothesis drives it through
`st.randoms()` in tests/unit/test_redact_recall.py) and returns a `Case`.

`python -m tests.redact_corpus [N]` prints the recall / keep table of the README.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from mnemonic import Mnemonic

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Case:
    kind: str  # the secret's kind, or "keep"
    family: str
    lang: str
    text: str
    secrets: tuple[str, ...] = ()  # substrings that must not survive
    probes: tuple[str, ...] = field(default=())  # for seeds: 3-word windows that must not survive


@lru_cache(maxsize=16)
def mn(lang: str) -> Mnemonic:
    return Mnemonic(lang)


def b58(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def b58check(raw: bytes) -> str:
    return b58(raw + hashlib.sha256(hashlib.sha256(raw).digest()).digest()[:4])


def rbytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


# -- seed phrases --------------------------------------------------------------------------------

SEED_CTX = {
    "en": ["my seed phrase is ", "is my wallet safe? my words are ", "here are my 12 words: ", "mnemonic: ",
           "Recovery phrase -> ", "I typed my secret phrase into the site:\n", "backup words ", ""],
    "zh": ["我的助记词是", "钱包安全吗？我的助记词：", "助記詞：", "这是我的恢复短语 ", "我的12个词是", "我被骗了\n我的助记词是 ", ""],
}
SEED_AFTER = {"en": ["", " please help", ". Is it safe?", "\nwhat should I do", " thanks"],
              "zh": ["", "，帮我看看", "。安全吗？", "\n怎么办", "，钱包里的币不见了"]}

LANGS = {"english": "en", "spanish": "en", "french": "en", "italian": "en", "portuguese": "en", "czech": "en",
         "korean": "en", "japanese": "en", "chinese_simplified": "zh", "chinese_traditional": "zh"}


def _phrase(rng: random.Random, lang: str) -> list[str]:
    strength = rng.choice([128, 160, 192, 224, 256])
    return mn(lang).to_mnemonic(rbytes(rng, strength // 8)).split()


def _case_words(rng: random.Random, words: list[str]) -> list[str]:
    style = rng.choice(["lower", "lower", "upper", "title"])
    return [w.upper() if style == "upper" else w.title() if style == "title" else w for w in words]


def _join(rng: random.Random, words: list[str], family: str) -> str:
    if family == "spaces":
        return " ".join(words)
    if family == "commas":
        return rng.choice([", ", ",", "，", "、"]).join(words)
    if family == "newlines":
        return "\n".join(words)
    if family == "numbered":
        fmt = rng.choice(["{i}. {w}", "{i}) {w}", "{i}-{w}", "({i}) {w}", "#{i} {w}"])
        sep = rng.choice([" ", "\n", "  "])
        return sep.join(fmt.format(i=i, w=w) for i, w in enumerate(words, 1))
    if family == "json":
        return json.dumps(words, ensure_ascii=rng.random() < 0.5)
    if family == "quoted":
        q = rng.choice(['"', "'", "`"])
        return rng.choice([" ", ", "]).join(f"{q}{w}{q}" for w in words)
    if family == "glued":
        return "".join(words)
    raise ValueError(family)


def seed_case(family: str, wl: str) -> Callable[[random.Random], Case]:
    lang = LANGS[wl]

    def gen(rng: random.Random) -> Case:
        words = _phrase(rng, wl)
        if lang == "en":
            words = _case_words(rng, words)
        if wl == "japanese" and family == "spaces":
            body = "\u3000".join(words)
        else:
            body = _join(rng, words, "glued" if family == "glued_alone" else family)
        ctx = "" if family == "glued_alone" else rng.choice(SEED_CTX[lang])
        if family == "glued" and ctx and rng.random() < 0.5:
            ctx = ctx.rstrip(" ：:")  # "我的助记词是齿截炼…" — nothing at all between
        text = ctx + body + ("" if family == "glued_alone" else rng.choice(SEED_AFTER[lang]))
        # Caught when no three consecutive words of the phrase survive, whatever stands between.
        probes = tuple(r"[^\w]{0,16}?".join(re.escape(w) for w in words[i : i + 3]) for i in range(len(words) - 2))
        return Case("seed_phrase", family, wl, text, (), probes)

    return gen


# -- private keys --------------------------------------------------------------------------------

KEY_CTX = {
    "en": ["my private key for metamask is {k}", "exported key = {k}", "the key I got from the wallet export: {k}",
           "{k} is my private key, is it safe?", "PK {k}", "Private Key:\n{k}", "privkey={k} pls check",
           "I imported this key into trust wallet: {k}", "here is my private key {k} please check my wallet",
           "key export below\n\n{k}", "My Private Key. {k}"],
    "zh": ["我的私钥是{k}", "私钥：{k}", "這是我的私鑰 {k}", "导出的私钥是 {k}，安全吗", "我把{k}这个私钥导入了钱包", "私鑰如下\n{k}"],
}


def _key_value(rng: random.Random, form: str) -> str:
    if form == "hex":
        k = "".join(rng.choice(HEX) for _ in range(64))
        return rng.choice([k, k.upper(), "0x" + k])
    if form == "wif":
        raw = b"\x80" + rbytes(rng, 32) + (b"\x01" if rng.random() < 0.5 else b"")
        return b58check(raw)
    if form == "xprv":
        version = rng.choice([0x0488ADE4, 0x04358394, 0x049D7878, 0x04B2430C])
        raw = version.to_bytes(4, "big") + rbytes(rng, 9) + rbytes(rng, 32) + b"\x00" + rbytes(rng, 32)
        return b58check(raw)
    if form == "solana":
        return b58(rbytes(rng, 64))
    if form == "bytes":
        return json.dumps(list(rbytes(rng, 64)), separators=(",", rng.choice([",", ", "])))
    if form == "hex_pieces":  # in groups, or split over lines (a narrow window, a wrapped mail)
        k = "".join(rng.choice(HEX) for _ in range(64))
        n = rng.choice([4, 8, 16, 32])
        return rng.choice([" ", "\n", "-", "  "]).join(k[i : i + n] for i in range(0, 64, n))
    if form == "b58_split":  # a WIF or an extended key over two lines
        k = _key_value(rng, rng.choice(["wif", "xprv"]))
        cut = rng.randint(10, len(k) - 10)
        return k[:cut] + rng.choice(["\n", " \n", "\r\n"]) + k[cut:]
    raise ValueError(form)


FAR_KEY_CTX = ["This is the private key of my wallet. I need help recovering funds from it. Thank you, the value is {k}",
               "I was told to export my private key. I did. Here it comes, please check it: {k}",
               "钱包私钥在下面。麻烦帮我看看。谢谢。{k}"]


def far_key_case(rng: random.Random) -> Case:
    k = _key_value(rng, "hex")
    return Case("private_key", "far_keyword", "mixed", rng.choice(FAR_KEY_CTX).format(k=k), (k,))


def key_case(form: str, lang: str) -> Callable[[random.Random], Case]:
    def gen(rng: random.Random) -> Case:
        k = _key_value(rng, form)
        if form in ("wif", "xprv", "bytes") and rng.random() < 0.4:
            text = rng.choice(["import this {k} please", "{k}", "看看这个 {k}"]).format(k=k)
        else:
            text = rng.choice(KEY_CTX[lang]).format(k=k)
        if form in ("hex_pieces", "b58_split"):  # no piece may survive
            pieces = re.split(r"[\s-]+", k)
            return Case("private_key", form, lang, text, tuple(x for x in pieces if len(x) >= 4))
        return Case("private_key", form, lang, text, (k if form != "bytes" else k[1:40],))

    return gen


# -- API secrets and passphrases -----------------------------------------------------------------

API_CTX = {
    "en": ["my api secret: {v} is it safe?", "API key = {v}", "the API secret they gave me is {v}",
           "Secret Key {v}", "api_key={v}&symbol=BTCUSDT", "here's my API key and secret, {v}", "apiSecret:\n{v}",
           "Access key {v} for the bot"],
    "zh": ["我的API密钥：{v} 安全吗？", "API私钥是{v}", "这是我的API Secret {v}", "密钥 {v} 泄露了吗", "API 秘钥={v}",
           "我的API金鑰是 {v}，會不會被盜", "API Key：{v}"],
}
PASSPHRASE_CTX = {
    "en": ["API passphrase: {v}", "my okx api passphrase is {v}", "the passphrase I set for the API is {v}"],
    "zh": ["API口令是{v}", "我的API passphrase：{v}"],
}


def api_case(family: str, lang: str) -> Callable[[random.Random], Case]:
    def gen(rng: random.Random) -> Case:
        if family == "passphrase":
            v = password(rng)
            return Case("api_secret", family, lang, rng.choice(PASSPHRASE_CTX[lang]).format(v=v), (v,))
        n = rng.choice([32, 36, 40, 64])
        alphabet = string.ascii_letters + string.digits
        v = "".join(rng.choice(alphabet) for _ in range(n))
        if not (any(c.isdigit() for c in v) and any(c.isupper() for c in v) and any(c.islower() for c in v)):
            v = "aZ9" + v[3:]
        if family == "bare":
            return Case("api_secret", family, lang, rng.choice(["{v}", "is this ok? {v}", "{v} 这个能用吗"]).format(v=v), (v,))
        if family == "short_key":  # 16–20 characters, qualified ("binance api: key=…", "session cookie …")
            v = v[: rng.randint(16, 20)]
            return Case("api_secret", family, lang, rng.choice(SHORT_KEY_CTX).format(v=v), (v,))
        if family == "2fa_key":
            return twofa_case(rng, lang)
        return Case("api_secret", family, lang, rng.choice(API_CTX[lang]).format(v=v), (v,))

    return gen


def api_lines_case(rng: random.Random) -> Case:
    """A key and its secret pasted one per line under a heading, or the value before its keyword;
    lower case only (no bare-token rule catches it)."""
    alphabet = string.ascii_lowercase + string.digits
    k, v = ("".join(rng.choice(alphabet) for _ in range(64)) for _ in range(2))
    k, v = "7" + k[1:], "7" + v[1:]
    tpl = rng.choice(["api key and secret below\n{k}\n{v}", "binance api\n\n{k}\n{v}", "API密钥如下\n{k}\n{v}",
                      "{v} is my api secret", "{v}是我的API密钥", "secret key is \"{h1}\n{h2}\""])
    text = tpl.format(k=k, v=v, h1=v[:20], h2=v[20:40])
    secrets = (v[:20], v[20:40]) if "{h1}" in tpl else (k, v) if "{k}" in tpl else (v,)
    return Case("api_secret", "lines", "mixed", text, secrets)


SHORT_KEY_CTX = ["binance api: key={v}", "my api key is {v}", "2FA secret key {v}", "session cookie is {v}",
                 "google authenticator secret: {v}"]
# An authenticator's setup key (base32), as apps show it.
TWOFA_CTX = {
    "en": ["2FA backup key: {k}", "google authenticator setup key {k}", "my authenticator secret is {k}",
           "2FA secret:\n{k}", "TOTP key = {k}", "the setup key for google auth: {k} please reset it"],
    "zh": ["谷歌验证器密钥 {k}", "我的2FA密钥是：{k}", "谷歌验证备份密钥：{k}"],
}


def twofa_case(rng: random.Random, lang: str) -> Case:
    b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    raw = "".join(rng.choice(b32) for _ in range(rng.choice([16, 32])))
    if not any(c.isdigit() for c in raw):
        raw = "7" + raw[1:]
    style = rng.choice(["upper", "groups_lower", "groups_upper"])
    if style == "upper":
        k = raw
    else:
        k = " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))
        k = k.lower() if style == "groups_lower" else k
    probes = tuple(re.escape(k[i : i + 9]) for i in range(0, len(k) - 8, 4))
    return Case("api_secret", "2fa_key", lang, rng.choice(TWOFA_CTX[lang]).format(k=k), (), probes)


# -- passwords -----------------------------------------------------------------------------------

WORDS = "correct horse battery staple purple monkey dishwasher river sunset coffee table window tiger".split()


def password(rng: random.Random) -> str:
    style = rng.choice(["strong", "word_digits", "cap_word_digits_sym"])
    if style == "strong":
        alphabet = string.ascii_letters + string.digits + "!@#$%^&*_-+="
        v = "".join(rng.choice(alphabet) for _ in range(rng.randint(8, 16)))
        return v if any(c.isdigit() for c in v) else v + str(rng.randint(0, 9))
    w = rng.choice(WORDS)
    if style == "word_digits":
        return w + str(rng.randint(10, 99999))
    return w.title() + str(rng.randint(1, 9999)) + rng.choice("!@#$.?*")


PW_CTX = {
    "copula": ["my password is {v}", "password: {v}", "pwd={v}", "my password for binance is {v}",
               "The password I use is {v} and it fails", "can't log in, my password is {v}", "Password = {v}",
               "password:\n{v}", "my PIN is {pin}", "password → {v}", "<password>{v}</password>",
               "user=alice&password={v}&lang=en", "my password ({v}) stopped working"],
    "between": ["I changed my pass to {v}", "new password {v}, still can't login", "tried password {v} twice",
                "i set the password to {v} yesterday", "password now {v}", "my new password will be {v}",
                "the password was set to {v} by support", "my password might be {v}, not sure"],
    "multiword": ["my password is {m}", "password is {m}. can you help?", "my pass phrase was {m}"],
    "email": ["login: {e} / {v}", "{e}:{v}", "account {e} password {v}", "{e} | {v}", "my login is {e} / {v} please check"],
    "zh": ["我的登录密码{v}，", "密码是 {v}", "资金密码 {pin}", "交易密碼：{v}", "我把密码改成了{v}", "登入密碼為{v}",
           "账号 {e} 密码 {v}", "我的密码现在是{v}，登不上", "密码:{v}"],
    # The value before its keyword.
    "value_first": ["{v} is my password", "I use {v} as my password", "{v} was my old binance password, now it fails",
                    "{v} is the password I set", "{v} is my login password, help", "{v} = my password"],
    "value_first_zh": ["{v}是我的密码", "我用{v}当密码", "{v}是我的登录密码，登不上", "{pin}是我的资金密码", "{v}為我的登入密碼"],
    # The keyword in the other languages users write in.
    "intl": ["Passwort: {v}", "mein Passwort ist {v}", "mot de passe : {v}", "mon mot de passe est {v}", "contraseña: {v}",
             "mi contraseña es {v}", "minha senha é {v}", "senha: {v}", "пароль: {v}", "мой пароль {v}", "パスワード：{v}",
             "パスワードは{v}です", "비밀번호: {v}", "비밀번호는 {v}입니다", "şifre: {v}", "wachtwoord: {v}", "hasło: {v}",
             "kata sandi saya adalah {v}", "Kennwort = {v}", "mật khẩu: {v}"],
}
# As people type in a hurry: the word mistyped or in slang/pinyin, the English word in Chinese,
# the value in the next sentence or in quotes, a URL with a password in it.
PW_CTX["slang"] = ["my passwrod is {v}", "pasword: {v}", "passowrd = {v}", "paswd {v} pls reset", "p/w: {v}",
                   "my pword is {v}", "mima shi {v}", "wo de mima {v} bu dui", "Mein Passwort lautet {v}",
                   "mật khẩu của tôi là {v}", "https://alice:{v}@exchange.com/login", "{v} thats my pw",
                   "password is '{m}'", "support asked for my password. ok here: {v}", "my password?? sure its {v}",
                   "pass\n\n{v}", "the password you asked for:\n{v}"]
PW_CTX["mixed_zh"] = ["我的password是{v}", "我的pwd是{v}", "我的 password 是 {v}", "{v}是我的password", "PIN码 {pin4}",
                      "密码 {pin4}", "交易密码：{pin}", "支付密码是{pin}", "資金密碼 {pin}"]
PW_LANG = {"zh": "zh", "value_first_zh": "zh", "intl": "intl", "mixed_zh": "zh"}


def password_case(family: str) -> Callable[[random.Random], Case]:
    lang = PW_LANG.get(family, "en")

    def gen(rng: random.Random) -> Case:
        v = password(rng)
        pin = str(rng.randint(100000, 99999999))
        pin4 = str(rng.randint(1000, 9999))
        m = " ".join(rng.sample(WORDS, rng.randint(3, 5)))
        e = rng.choice(["a@b.com", "anna.lee@example.org", "zhang.wei@qq.com"])
        tpl = rng.choice(PW_CTX[family])
        if "@exchange.com" in tpl:
            v = v.replace("@", "#").replace("/", "_")  # (a URL's password holds no "@" or "/" unescaped)
        text = tpl.format(v=v, pin=pin, pin4=pin4, m=m, e=e)
        secret = pin if "{pin}" in tpl else pin4 if "{pin4}" in tpl else m.split()[-1] if "{m}" in tpl else v
        return Case("password", family, lang, text, (secret,) if "{m}" not in tpl else tuple(m.split()[1:]))

    return gen


# -- one-time codes ------------------------------------------------------------------------------

OTP_CTX = {
    "en": ["my 2FA code is {c}", "verification code: {c}", "the code is {c}", "authenticator shows {c3} now",
           "{c} is my google auth code", "OTP {c}", "sms code {c}, what do I do", "Google Authenticator: {c}",
           "here's the one-time code they asked for {c}", "the security code I got was {c3}", "code:{c}", "OTP={c}",
           "SMS: {c}", "G-{c} is your Google verification code", "got the code {c} 5 minutes ago, expired?"],
    "zh": ["验证码 {c}", "谷歌验证码现在是 {c}", "短信驗證碼：{c}", "{c}是验证码", "动态码{c}", "我的谷歌验证码是{c}，帮我提币",
           "验证码:{c}", "谷歌验证码:{c}", "收到短信：【币安】验证码{c}，5分钟内有效", "验证码{c}，请勿泄露", "验证码 {c} 5分钟内有效"],
    "intl": ["código: {c}", "mi código de verificación es {c}", "Bestätigungscode: {c}", "ваш код {c}", "код подтверждения: {c}",
             "doğrulama kodu {c}", "認証コード：{c}", "인증번호: {c}", "mã xác nhận: {c}", "code de vérification : {c}"],
    # Read out digit by digit, or in pairs ("the code you sent me: 4 8 2 9 1 3").
    "spaced": ["the code you sent me: {cs}", "{cs} is my 2FA code", "verification code {cs}", "验证码 {cs}",
               "authenticator shows {cs} now", "谷歌验证码是 {cs}，帮我看看"],
    # In the next sentence or under a label line; the SMS itself ("短信里是…").
    "next": ["i got the code. {c}", "code\n{c}", "the 2fa code you asked for:\n\n{c}", "verification code?\n{c}",
             "短信里是{c}", "刚收到短信 {c}", "簡訊：{c}"],
}


BACKUP_CTX = {
    "en": ["my 2FA backup codes: {codes}", "backup codes:\n{codes_nl}", "recovery codes are {codes}",
           "here are my google backup codes {codes} can you turn 2fa off"],
    "zh": ["备用码：{codes}", "我的谷歌恢复码 {codes}", "备份码\n{codes_nl}"],
}


def backup_case(lang: str) -> Callable[[random.Random], Case]:
    def gen(rng: random.Random) -> Case:
        style = rng.choice(["digits8", "alnum_dash"])
        codes = []
        for _ in range(rng.randint(1, 6)):
            if style == "digits8":
                codes.append(f"{rng.randint(0, 99999999):08d}")
            else:
                c = "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(8))
                codes.append(c[:4] + "-" + c[4:] if not c[:4].isalpha() else "7" + c[1:4] + "-" + c[4:])
        tpl = rng.choice(BACKUP_CTX[lang])
        text = tpl.format(codes=" ".join(codes), codes_nl="\n".join(codes))
        return Case("otp", "backup_codes", lang, text, tuple(codes))

    return gen


def _fullwidth(v: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in v)


def fullwidth_case(kind: str) -> Callable[[random.Random], Case]:
    """A Chinese input method left in full-width mode: "密码：ａｂｃ１２３", "验证码：４８３９２０"."""
    def gen(rng: random.Random) -> Case:
        if kind == "password":
            v = _fullwidth(password(rng))
            tpl = rng.choice(["密码：{v}", "我的登录密码是{v}", "资金密码 {v}，别告诉别人"])
        else:
            v = _fullwidth(f"{rng.randint(0, 999999):06d}")
            tpl = rng.choice(["验证码：{v}", "谷歌验证码：{v}，帮我看看", "短信验证码是 {v}", "{v}是验证码"])
        return Case(kind, "fullwidth", "zh", tpl.format(v=v), (v,))

    return gen


def otp_case(lang: str) -> Callable[[random.Random], Case]:
    def gen(rng: random.Random) -> Case:
        c = f"{rng.randint(0, 999999):06d}"
        c3 = rng.choice([f"{c[:3]} {c[3:]}", f"{c[:3]}-{c[3:]}", c])
        cs = rng.choice([" ".join(c), "-".join(c), f"{c[:2]} {c[2:4]} {c[4:]}", f"{c[:2]}-{c[2:4]}-{c[4:]}"])
        tpl = rng.choice(OTP_CTX[lang])
        secret = c3 if "{c3}" in tpl else cs if "{cs}" in tpl else c
        return Case("otp", "keyword", lang, tpl.format(c=c, c3=c3, cs=cs), (secret,))

    return gen


# As they arrive in a chat: the SMS itself pasted whole in the user's language, digits read out
# as words (voice typing), full width and ASCII mixed, emoji around the code.
SMS_CTX = ["Your Binance verification code is {c}. Don't share it with anyone.", "【OKX】您的验证码为：{c}，5分钟内有效。",
           "Код подтверждения: {c}. Никому не сообщайте его.", "Tu código es {c}", "Doğrulama kodunuz: {c}",
           "Mã OTP của bạn là {c}", "Kode verifikasi Anda {c}", "رمز التحقق {c}", "Seu código é {c}",
           "Il tuo codice di verifica è {c}", "رمز التحقق الخاص بك هو {c}", "Use {c} to verify your account",
           "[Web발신] 인증번호 [{c}]를 입력해주세요", "認証コードは{c}です", "Votre code de vérification est {c}",
           "verification code {w}", "2fa code: {cw}", "my otp is {cw}", "the code is {ch}", "验证码是{zh}",
           "六位验证码是{zh}", "验证码：{zh}", "el código es {es}", "验证码 {mixed}", "code: 🔢 {c} 🔢", "验证码👉{c}👈"]
_EN_DIGITS = "zero one two three four five six seven eight nine".split()
_ES_DIGITS = "cero uno dos tres cuatro cinco seis siete ocho nueve".split()


def sms_case(rng: random.Random) -> Case:
    c = f"{rng.randint(0, 999999):06d}"
    words = {"cw": " ".join(_EN_DIGITS[int(d)] for d in c), "ch": "-".join(_EN_DIGITS[int(d)] for d in c),
             "zh": "".join("零一二三四五六七八九"[int(d)] for d in c), "es": " ".join(_ES_DIGITS[int(d)] for d in c),
             "w": _fullwidth(c), "mixed": "".join(_fullwidth(d) if i % 2 else d for i, d in enumerate(c))}
    tpl = rng.choice(SMS_CTX)
    key = next((k for k in words if "{" + k + "}" in tpl), "c")
    secret = words[key] if key != "c" else c
    return Case("otp", "sms_voice", "mixed", tpl.format(c=c, **words), (secret,))


# Passwords as chats and pastes hold them: slang and script of other languages, a 4-digit PIN, a
# key emoji for the word, a value under a label after words about it, a table row.
PW_CHAT_CTX = ["PIN {pin4}", "비번 {v}", "비번은 {v} 이에요", "🔑 {v}", "password 🔑 {v}", "мой пароль от биржи {v}",
               "my pass for the account is the same as the email: {v}", "my password is the same as my gmail one: {v}",
               "| field | value |\n|---|---|\n| email | a@b.com |\n| password | {v} |", "| password | {v} |",
               "the 25th word is {v}", "seed words are on paper\n25th word: {v}", "passphrase (25th word): {v}",
               "my password is {voice}", "password is {voice} please reset"]


def pw_chat_case(rng: random.Random) -> Case:
    v = password(rng)
    while v.isdigit():
        v = password(rng)
    pin4 = f"{rng.randint(0, 9999):04d}"
    # Spelt out by voice typing: "capital Q w e r t y one two three".
    letters = [rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 7))]
    voice = " ".join(["capital", letters[0].upper(), *letters[1:], *(_EN_DIGITS[rng.randint(0, 9)] for _ in range(3))])
    tpl = rng.choice(PW_CHAT_CTX)
    secret = pin4 if "{pin4}" in tpl else " ".join(voice.split()[-4:]) if "{voice}" in tpl else v
    return Case("password", "chat", "mixed", tpl.format(v=v, pin4=pin4, voice=voice), (secret,))


# API keys in code and config pastes: SDK clients, curl headers, CSV/table rows, ccxt configs.
API_CODE_CTX = ['client = Client("{k}", "{v}")', "client = Client('{k}', '{v}')", "api key,secret\n{k},{v}",
                "| api key | {k} |\n| secret | {v} |", 'curl -H "X-MBX-APIKEY: {k}" https://api.binance.com/api/v3/account',
                "exchange = ccxt.binance({{'apiKey': '{k}', 'secret': '{v}'}})", '{{"binance": {{"key": "{k}", "secret": "{v}"}}}}',
                "BINANCE_API_KEY={k}\nBINANCE_API_SECRET={v}", "const apiKey = '{k}';\nconst apiSecret = '{v}';",
                'curl -H "Authorization: Bearer {k}" https://api.example.com/v1/me', "apiKey: {k}\nsecretKey: {v}"]


def api_code_case(rng: random.Random) -> Case:
    alphabet = string.ascii_lowercase + string.digits  # (lower case: no bare-token rule catches it)
    k, v = ("7" + "".join(rng.choice(alphabet) for _ in range(rng.choice([39, 63]))) for _ in range(2))
    tpl = rng.choice(API_CODE_CTX)
    return Case("api_secret", "code", "en", tpl.format(k=k, v=v), tuple(x for x, f in ((k, "{k}"), (v, "{v}")) if f in tpl))


def seed_layout_case(rng: random.Random) -> Case:
    """Seed phrases laid out by hand: " - ", " | " or "/" between the words, a numbered table,
    three lines of four, 24 words in two columns, ALL CAPS, a typo among the first words."""
    wl = rng.choice(["english", "spanish", "french", "italian", "portuguese", "czech", "japanese", "korean"])
    layout = rng.choice(["dash", "pipe", "slash", "table", "lines", "columns", "typo"])
    words = mn(wl).to_mnemonic(rbytes(rng, 32 if layout == "columns" else 16)).split()
    if wl not in ("japanese", "korean") and rng.random() < 0.3:
        words = [w.upper() for w in words]
    if layout in ("dash", "pipe", "slash"):
        body = {"dash": " - ", "pipe": " | ", "slash": "/"}[layout].join(words)
    elif layout == "table":
        body = "| # | word |\n|---|---|\n" + "\n".join(f"| {i} | {w} |" for i, w in enumerate(words, 1))
    elif layout == "lines":
        body = "\n".join(" ".join(words[i : i + 4]) for i in range(0, 12, 4))
    elif layout == "columns":
        body = "\n".join(f"{i + 1}. {words[i]}    {i + 13}. {words[i + 12]}" for i in range(12))
    elif wl in ("japanese", "korean"):  # (kana and hangul have no case: a typo there ends a run)
        body = "my seed: " + " ".join(words)
    else:  # one typo among the first three words: the run must still start at the first word
        t = rng.randint(1, 2)
        q = "q" if words[t][-1] not in "qQ" else "z"
        words[t] = words[t][:-1] + (q.upper() if words[t].isupper() else q)
        body = "my seed: " + " ".join(words)
    probes = tuple(r"[^\w]{0,16}?".join(re.escape(w) for w in words[i : i + 3]) for i in range(len(words) - 2))
    return Case("seed_phrase", "layout", wl, body, (), probes)


def card_expiry_case(rng: random.Random) -> Case:
    """A card number with no card word, but its expiry date (and security code) after it."""
    p = luhn_number(rng)
    g = " ".join(p[i : i + 4] for i in range(0, len(p), 4)) if len(p) != 15 else " ".join([p[:4], p[4:10], p[10:]])
    tpl = rng.choice(["{p}|12/27|123", "{p} 12/27 JOHN SMITH", "number: {p}\nexp: 12/27\ncvv: 123", "{g} 12/27 JOHN SMITH",
                      "{p}, 03/2028, 456", "💳 {p}"])
    return Case("card", "expiry", "en", tpl.format(p=p, g=g), (p if "{p}" in tpl else g,))


# -- payment cards -------------------------------------------------------------------------------

CARD_CTX = {
    "grouped": ["my card {g} was charged twice", "{g}", "card: {g} exp 11/28", "我的卡 {g} 被扣款了"],
    "keyword": ["visa {p} exp 11/28", "my credit card number is {p}", "bought USDT with mastercard {p} but nothing arrived",
                "银行卡号 {p}", "信用卡{p}扣款失败", "card no. {p}"],
    "card_word": ["paid with card {p} cvc 456", "card:{p} exp:10/29", "my card {p} was charged twice", "cards: {p}"],
    "cvv": ["cvv {cvv}", "CVC: {cvv}", "the security code on the back is {cvv}", "安全码 {cvv}", "卡背面三位数 {cvv}"],
}


def luhn_number(rng: random.Random) -> str:
    prefix, n = rng.choice([("4", 16), ("5" + str(rng.randint(1, 5)), 16), ("62", rng.choice([16, 19])), ("37", 15)])
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(n - len(prefix) - 1))
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def card_case(family: str) -> Callable[[random.Random], Case]:
    def gen(rng: random.Random) -> Case:
        p = luhn_number(rng)
        sep = rng.choice([" ", "-"])
        g = sep.join([p[:4], p[4:10], p[10:]]) if len(p) == 15 else sep.join(p[i : i + 4] for i in range(0, len(p), 4))
        cvv = f"{rng.randint(0, 9999):04d}"[: rng.choice([3, 4])]
        tpl = rng.choice(CARD_CTX[family])
        lang = "zh" if any("\u4e00" <= c <= "\u9fff" for c in tpl) else "en"
        secret = g if family == "grouped" else p if family in ("keyword", "card_word") else cvv
        return Case("card", family, lang, tpl.format(g=g, p=p, cvv=cvv), (secret,))

    return gen


# -- kept intact ---------------------------------------------------------------------------------

KEEP_QUESTIONS = [
    "what is a seed phrase", "How do I back up my 12 words?", "I forgot my password", "my password is not working",
    "my password is correct but it says wrong password", "how do I reset my 2FA?", "the code doesn't arrive",
    "where do I find my API key?", "what is a private key and who can see it", "is my private key stored by you?",
    "忘记密码怎么办", "密码是什么", "助记词丢了怎么办", "怎么导出私钥", "验证码收不到", "谷歌验证码一直错误",
    "API密钥在哪里创建", "密码错误5次被锁了", "my password was in a data breach", "someone knows my password, help",
    "I entered my seed phrase on a fake site", "does the verification code expire after 10 minutes?",
    "why can't i log in, it says account disabled", "my password is the same as before",
    "I typed my password on switchb0ard-login.com", "助記詞被盜了怎麼辦", "忘記密碼了", "what does the passphrase do",
    "my password is 12 characters long", "my pin is 4 digits", "password: I forgot it", "my API key is 3 months old",
    "the API key expired", "I lost my private key", "the 12 words are written on paper at home",
    "mein Passwort ist falsch", "j'ai oublié mon mot de passe", "olvidé mi contraseña", "mi contraseña es incorrecta",
    "esqueci minha senha", "пароль не работает", "забыл пароль", "パスワードを忘れました", "비밀번호를 잊어버렸어요",
    "şifrem yanlış", "quên mật khẩu", "what is my password", "abc is not my password", "the code is 1 2 3",
    "SB-000123 is my password reset ticket", "2FA is my password backup", "the code expired on 2026-11-01",
    "secret: this that when they", "I lost my backup codes, help", "cookies are disabled in my browser",
    "backup your data before 2026", "my session expired again", "where do I find my 2FA setup key?",
    "the backup code does not work", "谷歌验证器密钥丢了怎么办", "备用码在哪里看",
    "my card was declined", "card ending 1111 was charged twice", "can I pay with visa?", "信用卡买币失败",
    # A word of the kind next to a noun it names ("password field"), or in a sentence of its own.
    "the password field is greyed out", "my password manager is bitwarden", "password strength meter says weak",
    "the password reset email went to spam", "I forgot my password. 2 hours later still no reset email",
    "mật khẩu không đúng", "mima wangle zenme ban", "https://exchange.com/login?lang=en", "i forgot my pw how do i reset",
    "where do I find my code? I tried 3 times", "the api key is read-only, no withdrawal permission",
    "PIN码 3次错误被锁了", "密码 2 次输错了", "密码是多少位的",
    # Close to the round-2 rules (SMS, spelled codes, PINs, cards with expiry, API code).
    "my code doesn't work", "error code 100023", '{"code": 100023, "msg": "insufficient balance"}',
    '{"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}', "card ending 4242 was charged twice",
    "visa ending 4242 expires 12/27", "the card expires 12/27", "the 25th word is optional, right?",
    "what is the 25th word in a seed phrase?", "PIN locked after 3 tries", "비번을 잊어버렸어요", "Kode verifikasi tidak masuk",
    "Doğrulama kodu gelmedi", "رمز التحقق لم يصل", "Tu código no llegó", "验证码一直收不到", "验证码三次错误",
    "the code is one of the two I got", "IBAN DE89 3704 0044 0532 0130 00 for the SEPA deposit",
    "curl https://api.binance.com/api/v3/ticker/price?symbol=BTCUSDT", "set header X-MBX-APIKEY to your key",
    "my password is the same as before: I did not change it", "🔑 how do I reset my key?", "password reset for UID: 38920174",
]


def keep_case(rng: random.Random) -> Case:
    txid = "".join(rng.choice(HEX) for _ in range(64))
    eth = "0x" + "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(40))
    tron = b58check(b"\x41" + rbytes(rng, 20))
    btc_legacy = b58check(b"\x00" + rbytes(rng, 20))
    sol_addr = b58(rbytes(rng, 32))
    sol_sig = b58(rbytes(rng, 64))
    uid = str(rng.randint(10_000_000, 999_999_999))
    order = str(rng.randint(10**11, 10**19))
    ticket = f"SB-{rng.randint(1, 999999):06d}"
    amount = rng.choice([f"{rng.randint(1, 99999)}.{rng.randint(0, 9999)}", f"{rng.randint(1, 9)},{rng.randint(100, 999)}", str(rng.randint(1, 5000))])
    coin = rng.choice(["USDT", "BTC", "ETH", "SOL", "TRX"])
    date = rng.choice(["2026-11-01", "11/01/2026", "2026年11月1日", "1 Nov 2026 10:32"])
    phone = rng.choice(["+86 138 0013 8000", "13800138000", "+1 (415) 555-0100", "+63 917 123 4567"])
    email = rng.choice(["anna.lee@example.org", "zhang.wei@qq.com", "support@exchange.com"])
    tpls = [
        f"I sent {amount} {coin} to {eth}, txid {txid}, still not arrived",
        f"tx hash: 0x{txid}", f"交易哈希 {txid} 一直没到账", f"deposit {amount} {coin} TRC20 to {tron} on {date}",
        f"UID {uid}, order {order}, ticket {ticket}", f"my BTC address {btc_legacy} and email {email}",
        f"Solana tx signature {sol_sig} failed", f"sent to {sol_addr}, tx {sol_sig}", f"订单号 {order}，UID {uid}，金额 {amount} {coin}",
        f"call me on {phone} about {ticket}", f"withdrawal on {date} of {amount} {coin}, txid: {txid}",
        f"{txid}", f"what is the status of {ticket}?", f"my phone {phone} didn't get the code",
        f"the verification code for order {order} never arrived", "I got referral code 123456 from a friend",
        f"error code 100023 when I withdraw {amount} {coin}", rng.choice(KEEP_QUESTIONS),
        f"password reset for {email} failed on {date}",
        f"the token contract is {tron}, is that the right USDT?", f"my key is on a ledger, the address {btc_legacy}",
        f"order {luhn_number(rng)} paid by card", f"UID {uid}, card purchase order {order} failed",
        "txid: " + " ".join(txid[i : i + 16] for i in range(0, 64, 16)), f"tx hash\n{txid[:32]}\n{txid[32:]}",
        f"I lost my private key last year. My deposit did not arrive. Please check {txid}",
        f"my api key works. UID {uid}\norder {order}",
        f"card purchase on {date}, order {order}, txid {txid}",
        f"| order id | status |\n|---|---|\n| {order} | filled |", json.dumps({"orderId": int(order), "status": "FILLED"}),
        f"txid,amount\n{txid},{amount}", f"GET /api/v3/order?symbol=BTCUSDT&orderId={order}&signature={txid}",
        f"IBAN GB29 NWBK 6016 1331 9268 19, UID {uid}", f"uid,email\n{uid},{email}",
    ]
    return Case("keep", "support_text", "en", rng.choice(tpls))


# -- the families ----------------------------------------------------------------------------------

def families() -> dict[tuple[str, str, str], Callable[[random.Random], Case]]:
    fam: dict[tuple[str, str, str], Callable[[random.Random], Case]] = {}
    for wl, lang in LANGS.items():
        styles = ["spaces", "commas", "newlines", "numbered", "json", "quoted"]
        if lang == "zh":
            styles += ["glued", "glued_alone"]  # glued_alone: no keyword, nothing around it
        for st in styles:
            fam[("seed_phrase", st, wl)] = seed_case(st, wl)
    for form in ("hex", "wif", "xprv", "solana", "bytes", "hex_pieces", "b58_split"):
        for lang in ("en", "zh"):
            fam[("private_key", form, lang)] = key_case(form, lang)
    for f in ("keyword", "passphrase"):
        for lang in ("en", "zh"):
            fam[("api_secret", f, lang)] = api_case(f, lang)
    fam[("api_secret", "bare", "en")] = api_case("bare", "en")
    fam[("api_secret", "short_key", "en")] = api_case("short_key", "en")
    for lang in ("en", "zh"):
        fam[("api_secret", "2fa_key", lang)] = api_case("2fa_key", lang)
        fam[("otp", "backup_codes", lang)] = backup_case(lang)
    for f in ("copula", "between", "multiword", "email", "value_first", "slang"):
        fam[("password", f, "en")] = password_case(f)
    fam[("password", "mixed", "zh")] = password_case("mixed_zh")
    fam[("api_secret", "lines", "mixed")] = api_lines_case
    fam[("private_key", "far_keyword", "mixed")] = far_key_case
    fam[("password", "keyword", "zh")] = password_case("zh")
    fam[("password", "value_first", "zh")] = password_case("value_first_zh")
    fam[("password", "keyword", "intl")] = password_case("intl")
    for lang in ("en", "zh", "intl", "spaced", "next"):
        fam[("otp", "keyword", lang)] = otp_case(lang)
    for kind in ("password", "otp"):
        fam[(kind, "fullwidth", "zh")] = fullwidth_case(kind)
    for f in ("grouped", "keyword", "cvv", "card_word"):
        fam[("card", f, "mixed")] = card_case(f)
    fam[("card", "expiry", "en")] = card_expiry_case
    fam[("otp", "sms_voice", "mixed")] = sms_case
    fam[("password", "chat", "mixed")] = pw_chat_case
    fam[("api_secret", "code", "en")] = api_code_case
    fam[("seed_phrase", "layout", "mixed")] = seed_layout_case
    return fam


def caught(case: Case, redacted: str) -> bool:
    return not any(s in redacted for s in case.secrets) and not any(
        re.search(p, redacted, re.I) for p in case.probes)


def measure(n: int = 200, seed: int = 1) -> list[tuple[str, str, str, int, int]]:
    from bot.redact import redact

    rows = []
    for (kind, fam, lang), gen in families().items():
        rng = random.Random(f"{seed}-{kind}-{fam}-{lang}")
        ok = sum(caught(c, redact(c.text).text) for c in (gen(rng) for _ in range(n)))
        rows.append((kind, fam, lang, ok, n))
    return rows


if __name__ == "__main__":
    from bot.redact import redact

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rows = measure(n)
    total = sum(r[4] for r in rows)
    print(f"recall {sum(r[3] for r in rows) / total:.4f} over {total} secrets")
    for kind, fam, lang, ok, m in rows:
        flag = "" if ok == m else "  <--"
        print(f"| {kind} | {fam} | {lang} | {ok / m:.3f} |{flag}")
    rng = random.Random(2)
    keeps = [keep_case(rng) for _ in range(n * 5)]
    bad = [c.text for c in keeps if redact(c.text).text != c.text]
    print(f"keep: {len(keeps) - len(bad)}/{len(keeps)} intact")
    for b in bad[:20]:
        print("  changed:", b, "->", redact(b).text)
