"""Passwords, one-time codes, API secrets and passphrases: a keyword, then the value — with words
in between ("I changed my pass to …", "the API secret they gave me is …", "谷歌验证码现在是 …",
"authenticator shows 123 456 now").

Each keyword looks at the tokens that follow it in its sentence (and on the next line when the
sentence ends right after it, "password:\\n…"). Two ways to accept a value:
- after a copula ("is", ":", "=", "是", "改成" …) the first real word is the value, unless it
  describes the secret instead ("is not working", "is wrong", "is the same") — and for passwords
  and passphrases a value may be several words ("is correct horse battery staple");
- without one, only a token shaped like a credential (letters with digits or symbols, a 6–8 digit
  PIN) with nothing but connecting words before it ("changed my pass to …").
One-time codes are 4–8 digits ("123 456" too) near a code word, not an order id, phone number,
amount or year; questions about secrets carry no value and are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bot.redact import keys
from bot.redact._doc import HAN, HAN_CHARS, Doc, Token

PASSWORD = "password"
OTP = "otp"
API_SECRET = "api_secret"

# Scripts written without spaces between words (Chinese, Japanese kana, Korean syllables): a
# keyword in one of them is followed by its own script before the value ("密码是…", "パスワードは…").
_ASIAN = re.compile(f"[{HAN_CHARS}\u3040-\u30ff\uac00-\ud7af]")


def _outside_marks(pattern: re.Pattern[str], doc: Doc) -> Iterator[re.Match[str]]:
    """The keywords `pattern` finds in `doc`, except inside earlier marks ("[REDACTED:password]"
    holds a keyword): redacting twice changes nothing; and except a segment of a link's path
    ("https://…/login?id=123", "…/api/key/list"): a page's name, not a secret's label (a query
    parameter, "?password=…", still is one)."""
    text = doc.text
    for m in pattern.finditer(text):
        if not doc.in_mark(m.start(), m.end()) and not _url_path_segment(text, m.start()):
            yield m


_URL_START = re.compile(r"(?:https?://|www\.)[^\s/]+/", re.I)
_URL_LOOKBACK = 2048  # a link's length at most: bounded, so a long run of keywords stays linear


def _url_path_segment(text: str, start: int) -> bool:
    """The keyword at `start` follows a "/" inside a link (no space between the link's start and it)."""
    if start == 0 or text[start - 1] != "/":
        return False
    lo = max(0, start - _URL_LOOKBACK)
    space = max(text.rfind(" ", lo, start), text.rfind("\n", lo, start), text.rfind("\t", lo, start))
    return _URL_START.search(text, space + 1 if space >= 0 else lo, start) is not None


def _keywords(pattern: str, first: str) -> re.Pattern[str]:
    """`pattern` (case-insensitive) where one of `first` stands: the characters it can begin with.
    A pattern that begins with a look-behind is otherwise tried in full at every position of the
    text; this way the engine passes over the other positions fast (the keyword scans of a support
    message take about a third of the time). tests/unit/test_redact_keywords.py checks that
    `first` covers every branch of each pattern."""
    return re.compile(f"(?=[{first}])(?:{pattern})", re.I)


PASSWORD_RE = (
    r"(?<![A-Za-z0-9])(?:pass(?:words?|wd|code)|pass|pwd|pw|pin(?:[\s-]?code)?|login|log[\s-]?in|sign[\s-]?in|credentials?|creds)(?![A-Za-z0-9])|"
    # The word as it is mistyped in a hurry ("passwrod", "pasword", "passowrd", "paswd", "pssword",
    # "pword", "p/w").
    r"(?<![A-Za-z0-9])(?:p(?:as{1,2}|s{2})(?:wor|wro|owr|wr|wo|war|w)ds?|pword|p/w)(?![A-Za-z0-9])|"
    r"(?:登录|登陆|登入|登錄|資金|资金|交易|支付|提币|提幣|账户|帳戶|账号|帳號|邮箱|郵箱)?(?:密码|密碼)|PIN[码碼]|"
    # The word in the other languages our users write (a mail from Europe, a user abroad):
    # German, French, Spanish, Portuguese, Dutch, Polish, Czech, Swedish, Danish/Norwegian,
    # Finnish, Turkish, Romanian, Indonesian/Malay, Vietnamese, Russian/Ukrainian, Chinese in
    # pinyin ("mima shi …") …
    r"(?<![^\W\d_])(?:passwort|kennwort|mot[\s-]de[\s-]passe|mdp|contrase[ñn]as?|senhas?|wachtwoord|has[łl]o|heslo|"
    r"l[öo]senord|adgangskode|passord|salasana|[şs]ifre(?:m|niz)?|parol[ăa]|kata[\s-]?sandi|kata[\s-]laluan|"
    r"m[ậa]t[\s-]kh[ẩa]u|парол(?:ем|ей|[ьяюе])|гасло|mima)(?![^\W\d_])|"
    # … and Japanese, Korean, Thai, Arabic, Hebrew (no word boundaries to look for).
    r"パスワード|暗証番号|비밀번호|비번|암호|รหัสผ่าน|كلمة\s?(?:المرور|السر)|סיסמ[הא]|"
    # A key emoji standing for the word ("🔑 Abc#1234"): only a credential-shaped value follows.
    r"\U0001f511|\U0001f5dd\ufe0f?"
)
PASSWORD_WORDS = _keywords(PASSWORD_RE, "plsc登資资交支提账帳邮郵密kmwhaşпгパ暗비암รكס\U0001f511\U0001f5dd")
PASSPHRASE_RE = (
    r"(?<![A-Za-z0-9])(?:pass[\s_-]{0,2}phrases?|25th[\s_-]{1,2}word)(?![A-Za-z0-9])|口令|第25个词|第25個詞|第二十五个词"
)
PASSPHRASE_WORDS = _keywords(PASSPHRASE_RE, "p2口第")
OTP_RE = (
    r"(?<![A-Za-z0-9])(?:one[\s-]{0,2}time[\s-]{0,2}(?:pass(?:word|code)?|code|pin)|otp|2fa|totp|mfa|authenticator|"
    r"google[\s-]{0,2}auth\w{0,10}|verification[\s-]{0,2}codes?|verify[\s-]{0,2}codes?|security[\s-]{0,2}codes?|"
    r"sms[\s-]{0,2}codes?|e-?mail[\s-]{0,2}codes?|auth\w{0,10}[\s-]{0,2}codes?|codes?|sms)(?![A-Za-z0-9])|"
    r"验证码|驗證碼|动态码|動態碼|校验码|校驗碼|谷歌码|谷歌碼|短信码|短信碼|短信|簡訊|简讯|安全码|安全碼|确认码|確認碼|"
    r"谷歌验证|谷歌驗證|两步验证|兩步驗證|二次验证|二次驗證|身份验证器|身份驗證器|GA[码碼]|"
    # Other languages (see PASSWORD_RE): "código: …", "Bestätigungscode …", "код …", "doğrulama kodu".
    r"(?<![^\W\d_])(?:c[óo]digo|codice|k[óo]d(?:u|em|y|unuz|un|e)?|код|رمز(?:\s?(?:التحقق|التأكيد|الدخول))?|m[ãa][\s-](?:x[áa]c[\s-](?:nh[ậa]n|th[ựu]c)|otp)|"
    r"(?:best[äa]tigungs|sicherheits|verifizierungs|authentifizierungs|anmelde|einmal)codes?)(?![^\W\d_])|"
    r"認証コード|確認コード|認証番号|確認番号|ワンタイムパスワード|인증\s?번호|인증\s?코드|보안\s?코드"
)
OTP_WORDS = _keywords(OTP_RE, "o2tmagvsec验驗动動校谷短簡简安确確两兩二身kкbر認確ワ인보")
# Words in front of "code" that make it something else than a one-time code.
_NOT_OTP_BEFORE = re.compile(
    r"(?i)^(?:referral|promo|promotion|invite|invitation|coupon|voucher|bonus|reward|error|status|zip|postal|area|"
    r"country|qr|source|tracking|discount|gift|redeem|redemption|affiliate|ref|swift|bank|branch|reason|"
    r"hata|referans|davet|promosyon|indirim|"
    r"邀请|邀請|推荐|推薦|优惠|優惠|错误|錯誤|邮编|郵編|区号|區號|返佣|二维|二維|兑换|兌換)$"
)
# … and after it, in the languages that put the modifier second ("código postal", "kode promo",
# "codice promozionale", "código de error", "رمز الإحالة").
_NOT_OTP_AFTER = re.compile(
    r"(?i)^(?:promo\w{0,8}|postal\w{0,2}|referral|referid[oa]|referensi|rujukan|sconto|invito|convite|indica[cç][aã]o|"
    r"descuento|desconto|invitaci[oó]n|error|erro|errore|lỗi|kesalahan|voucher|kupon|cupom|cup[oó]n|bonus|pos|"
    r"الإحالة|الخطأ|الخصم|الدعوة)$")
_OF = frozenset("de di do da del della des du".split())
API_RE = (
    r"(?<![A-Za-z0-9])(?:api[\s_-]{0,2}(?:keys?|secrets?|tokens?|passphrase)|secret[\s_-]{0,2}keys?|access[\s_-]{0,2}(?:keys?|tokens?)|"
    r"client[\s_-]{0,2}secrets?|app[\s_-]{0,2}secrets?|bearer|secrets?|tokens?|keys?|"
    r"session[\s_-]{0,2}(?:ids?|tokens?|keys?|cookies?)|sessionid|cookies?)(?![A-Za-z0-9])|"
    r"API\s{0,2}(?:密钥|密鑰|私钥|私鑰|秘钥|密匙|金鑰|金钥|口令)|密钥|密鑰|秘钥|祕鑰|金鑰|金钥|令牌"
)
API_WORDS = _keywords(API_RE, "asbctk密秘祕金令")
# "API" alone heads the lines of a key and its secret pasted under it (no more: "api" in a sentence
# is a word about the product).
API_HEADING = _keywords(r"(?<![A-Za-z0-9])api(?![A-Za-z0-9])", "a")

# (With the copulas of the other languages a password keyword is written in: "mein Passwort ist …",
# "mi contraseña es …", "mon mot de passe est …", "minha senha é …", "пароль это …", "…คือ".)
_COPULA_EN = frozenset("is was are were = : ： => -> → ⇒ | equals ist war lautet est était es era é è är er jest je это "
                       "là adalah ialah هي היא คือ shi".split())
_COPULA_ZH = ("改成", "改为", "改為", "设成", "設成", "设为", "設為", "设置成", "設置成", "设置为", "設置為", "换成", "換成",
              "是", "为", "為", "：", ":", "=", "は", "が", "는", "은")
# Words that may stand between a keyword and a credential-shaped value without a copula.
_CONNECT = frozenset(
    """to now my new old the it its it's changed reset set updated update currently still again temporary temp
    as be into just here here's this one also like e.g. eg maybe probably either or and is was : = - — – me your
    code number no. no for account acct login shows showing show says gives gave sent got received generated
    displays displayed reads read of we you i i'm i've typed type entered enter used use using tried try
    will would might may should could must into
    от для на мой моя биржи аккаунта аккаунт""".split()
)
# After a copula these words describe the secret instead of revealing it.
_NEG = frozenset(
    """not no never too so very also still just the a an my your his her their our this that these those same
    in on at from for with by into of part one some any all about like sent shown there here
    i you we he she they me none nothing n/a na nil null unknown forgot forgotten lost
    different what which where how why who when case being been definitely probably already always sometimes
    it's it isn't wasn't doesn't don't didn't won't can't cannot should would could might may must
    nicht kein keine pas ne non não nao niet nie ikke inte ei değil yok không tidak не ні
    trop très muy sehr zu demasiado muito mein meine mon ma mi mio minha meu mijn mój
    bu shenme sha duoshao cuo cuole wangle wang""".split()
)
_DESCRIPTORS = frozenset(
    """wrong incorrect correct right invalid expired weak strong fine ok okay good bad new old safe secure unsafe
    long short simple easy hard complex complicated required needed broken blocked locked lost forgotten changed
    reset compromised leaked stolen hacked saved stored unknown empty blank missing ready done gone useless
    unique random mandatory optional sensitive working valid correctly set made put sent given told asked shared
    falsch richtig vergessen abgelaufen gesperrt faux fausse oublié oubliée incorrecte bloqué expiré
    incorrecta incorrecto olvidada olvidado olvidé bloqueada errada errado incorreta esquecida esqueci
    fout vergeten błędne błędny nieprawidłowe špatné fel forkert feil väärä yanlış hatalı greșită salah sai
    неверный неправильный забыл забыла заблокирован""".split()
)
# After "password:" only these say there is no value.
_NOT_GIVEN = frozenset("none nothing n/a na nil null unknown forgot forgotten lost same the not no i".split())
# A multi-word value stops before these (and at a clause end).
_STOP = frozenset(
    """and but so because please thanks thank help i i'm i've it we you he she they can can't cannot won't
    doesn't don't didn't isn't wasn't since for after before when on in at from with without by again already
    today yesterday now then which that if or as to ok okay right thx pls |""".split()
)
_ID_BEFORE = re.compile(
    r"(?i)^(?:order|orders|id|uid|ticket|tx|txid|txn|account|acct|no\.?|number|#|phone|tel|mobile|cell|ref|"
    r"reference|invoice|case|card|member|user|订单|訂單|单号|單號|编号|編號|账号|帳號|手机|手機|电话|電話|尾号|尾號|UID)$"
)
_ID_TAIL = re.compile(r"(?:订单号?|訂單號?|单号|單號|编号|編號|账号|帳號|手机号?|手機號?|电话|電話|尾号|尾號|卡号|卡號|UID)\s{0,2}[:：#]?\s{0,2}$", re.I)
# A label that names an id: the number after it is that id, whatever keyword came before.
_ID_LABEL = re.compile(
    r"(?i)^(?:order|orders|order[\s_-]?id|id|uid|ticket|tx|txid|txn|phone|tel|mobile|invoice|case|ref|reference|"
    r"订单号?|訂單號?|单号|單號|编号|編號|手机号?|手機號?|UID)[:：=]$")
_UNIT_AFTER = re.compile(
    r"(?i)^(?:usdt|usdc|btc|eth|bnb|sol|trx|usd|eur|cny|rmb|%|元|块|塊|u|个|個|次|times|minutes?|mins?|seconds?|secs?|"
    r"s|秒|分钟|分鐘|小时|小時|hours?|days?|天|位|digits?|characters?|chars?|letters?|号|號|年|月|日|pcs|x)$"
)
_NOT_VALUE = re.compile(
    r"(?i)^(?:https?://\S+|www\.\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|SB[-\s]?\d{1,6}|v?\d+(?:\.\d+)+|"
    r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}:\d{2}(?::\d{2})?|(?:[a-z]{2,6}[-/_])?(?:erc|trc|bep|spl|omni)[-_]?\d{1,3}|"
    r"0x[0-9a-f]{40}|\[REDACTED:[a-z_]+\]|(?:[\w-]+\.)+(?:com|net|org|io|co|cn|hk|tw|app|xyz|info|me|top|vip|cc)(?:/\S*)?)$"
)


@dataclass(frozen=True, slots=True)
class Hit:
    start: int
    end: int
    kind: str


def _classes(v: str) -> tuple[bool, bool, bool, bool]:
    lo = any(c.islower() for c in v)
    up = any(c.isupper() for c in v)
    dg = any(c.isdigit() for c in v)
    sy = any(not c.isalnum() for c in v)
    return lo, up, dg, sy


def credential_shaped(v: str) -> bool:
    """Looks like a password even without a keyword's copula: letters with digits or symbols, or
    a 6–8 digit PIN — and no e-mail address, URL, date, version, ticket or network name."""
    if len(v) < 6 or len(v) > 128 or _NOT_VALUE.match(v) or not v.isascii():
        return False
    lo, up, dg, sy = _classes(v)
    if v.isdigit():
        return len(v) <= 8
    letters = lo or up
    return (letters and dg) or (sy and (letters or dg) and sum((lo, up, dg)) >= 2)


def _is_descriptive(v: str) -> bool:
    w = v.lower()
    return w in _NEG or w in _DESCRIPTORS or (w.isalpha() and w.endswith(("ed", "ing", "ly", "able", "ible")) and len(w) > 3)


def _clause_end(tok: Token) -> bool:
    return tok.raw.rstrip("\"')]}”’」』").endswith((",", ".", ";", "!", "?", "，", "。", "；", "！", "？"))


@dataclass(slots=True)
class _Window:
    toks: list[Token]
    copula_at: int  # index of the first token after a copula (-1 when none)
    colon: bool = False  # the copula was ":" or "=" (a label: what follows is the value as written)
    # The tokens are the next sentence's: the keyword's own ended with a question or a full stop
    # ("support asked for my password. ok here: Qaz!2wsx") or a label line ("the code you asked
    # for:\n\n…"). Only a credential-shaped value with connecting words before it counts there.
    crossed: bool = False


_MAX_BETWEEN = 7
# Words that may open the sentence after the keyword's before its value ("… my password. ok
# here: …", "password?? sure its …").
_NEXT_SENTENCE_LEAD = frozenset("ok okay k sure here heres fine well yes yeah yep so its it's then there".split())
_HAN_NEXT = re.compile(rf"[ \t]{{0,2}}[{HAN_CHARS}]")
# Nouns right after the keyword that make it part of another thing's name: what follows is
# about that thing ("the password field is greyed out", "my password manager is bitwarden").
_ABOUT_NOUN = frozenset(
    """field fields box input page screen manager managers app policy rules rule requirement requirements
    strength hint hints length prompt button link option options setting settings form section feature tab
    menu protection generator vault history expiry""".split())
_TAIL_END = re.compile(r"&(?=[A-Za-z_]{2,32}=)|</")  # the next query parameter, a closing tag


def _label(raw: str) -> bool:
    """A token that ends a label ("login:", "pwd=") — not a value that ends in "=" (base64,
    "E7XT=YXoC@o="): a label has no digit."""
    return raw.endswith((":", "：")) or (raw.endswith("=") and not any(c.isdigit() for c in raw))


_ENDS_SENTENCE = re.compile(r"[\s.!?。！？…]*")
_LABEL_LINE = re.compile(r"[^\n]{0,40}[:：][ \t\r]{0,8}\n")
_BLANK = re.compile(r"[\s`]*")  # (a code fence is blank too)


def next_sentence(doc: Doc, end: int) -> tuple[int, int]:
    """The sentence after the one ending at `end`, past blank lines ("code:\n\n482913")."""
    s, e = end, end
    for _ in range(4):
        if s >= len(doc.text):
            break
        s, e = doc.sentence(s)
        if not _BLANK.fullmatch(doc.text, s, e):
            break
        s = e
    return s, e


def reach(doc: Doc, kw_end: int) -> tuple[int, int, bool]:
    """Where the value of a keyword ending at `kw_end` may be: (start, end, crossed). Its own
    sentence; the next one (past blank lines) when nothing but a copula follows the keyword
    ("password:\nHunter2"); the next one, `crossed`, when the keyword's sentence ends right after
    it with a full stop or a question mark, or ends a label line ("… you asked for:\n")."""
    _, sent_end = doc.sentence(kw_end)
    if sent_end >= len(doc.text):
        return kw_end, sent_end, False
    rest = doc.text[kw_end : min(sent_end, kw_end + 64)]
    if not rest.strip(" \t:：=-\n"):
        return kw_end, next_sentence(doc, sent_end)[1], False
    if _ENDS_SENTENCE.fullmatch(rest) or _LABEL_LINE.fullmatch(doc.text, kw_end, sent_end):
        i = doc.token_index(sent_end)
        if i > 0 and doc.tokens[i - 1].end > sent_end:
            return kw_end, sent_end, False  # the mark opens a value ("资金密码 ！Ｄ＆＠１…")
        s, e = next_sentence(doc, sent_end)
        return s, e, True
    return kw_end, sent_end, False


def _window(doc: Doc, kw_end: int) -> _Window:
    """The tokens after a keyword where its value may be (`reach`)."""
    toks = doc.tokens
    begin, sent_end, crossed = reach(doc, kw_end)
    if crossed:
        i = doc.token_index(begin)
        return _Window(toks[i : min(doc.token_index(sent_end), i + _MAX_BETWEEN)], -1, crossed=True)
    i = doc.token_index(kw_end)
    # A keyword glued to the next token ("密码Abc123", "password:Abc123") starts a token itself.
    if i > 0 and toks[i - 1].end > kw_end and toks[i - 1].start < kw_end:
        i -= 1
    out: list[Token] = []
    copula_at = -1
    rest = doc.text[kw_end : toks[i].start if i < len(toks) else kw_end]
    if rest.strip() in (":", "：", "=", "-", "is"):
        copula_at = 0
    elif rest.strip()[:1] in (",", ";", ".", "，", "；", "。"):
        copula_at = 99  # "my password, there are …": what follows is another clause
    while i < len(toks) and toks[i].start < sent_end and len(out) < _MAX_BETWEEN + 6:
        t = toks[i]
        if t.start < kw_end:  # the glued tail of the keyword token ("password:Abc123")
            raw_tail = doc.text[kw_end : t.end]
            lead = len(raw_tail) - len(raw_tail.lstrip(":：=>\"'([{"))
            # The value ends where a query string or markup goes on ("…=dragon1985&user=…",
            # "<password>dragon1985</password>").
            tail = _TAIL_END.split(raw_tail[lead:], maxsplit=1)[0].rstrip(",.;\"')]}")
            if tail:  # (the text without a final "?" or "!": `_value_span` reads "…?" as a question)
                t = Token(kw_end + lead, kw_end + lead + len(tail), tail.rstrip("?!") or tail, tail)
                copula_at = 0 if doc.text[kw_end] in ":：=>" else copula_at
            else:
                copula_at = 0 if doc.text[kw_end:t.end].strip() in (":", "：", "=") else copula_at
                i += 1
                continue
        out.append(t)
        if t.raw[-1:] in ":：=" and _ID_LABEL.match(t.raw):
            break  # "password reset for UID: 38920174": what follows is the id
        if copula_at < 0 and (t.text.lower() in _COPULA_EN or _label(t.raw)):
            copula_at = len(out)
        elif copula_at < 0 and _clause_end(t):
            copula_at = 99  # "password, there are …": a copula after a clause end is another clause
        i += 1
    colon = 0 <= copula_at < len(out) + 1 and (
        rest.strip() in (":", "：", "=") or (copula_at > 0 and _label(out[copula_at - 1].raw))
        or (copula_at == 0 and doc.text[kw_end : kw_end + 1] in (":", "：", "=")))
    return _Window(out, copula_at, colon)


def _zh_copula(toks: list[Token]) -> int:
    """Index after a Chinese copula among the CJK characters right after the keyword."""
    s = "".join(t.text if len(t.text) == 1 else "\0" for t in toks[:8])
    best = -1
    for c in _COPULA_ZH:
        k = s.find(c)
        if k >= 0:
            best = max(best, k + len(c))
    return best


_QUOTES = {'"': '"', "'": "'", "`": "`", "“": "”", "‘": "’", "「": "」", "『": "』"}


def _quoted(toks: list[Token], at: int) -> tuple[int, int] | None:
    """A value of several words in quotes ("is 'my dog rex 2010'"): all of it, whatever the
    words — unless they only describe the secret ("is 'not working'")."""
    close = _QUOTES.get(toks[at].raw[:1])
    if close is None or toks[at].raw.rstrip(",.;:!?").endswith(close):
        return None
    for end in range(at + 1, min(len(toks), at + 8)):
        if toks[end].raw.rstrip(",.;:!?)").endswith(close):
            words = [t.text.lower() for t in toks[at : end + 1]]
            if all(x in _NEG or _is_descriptive(x) for x in words):
                return None
            return toks[at].start, toks[end].end
    return None


# What voice typing writes for a password spelt out: single characters, number words, and the
# names of cases and symbols.
_SPELLING = frozenset(
    """capital cap caps uppercase upper lowercase lower small letter symbol exclamation mark point hash hashtag pound
    dollar percent ampersand star asterisk underscore dash hyphen dot period sign""".split())


def _spelling(t: str) -> bool:
    w = t.lower()
    return (len(t) == 1 and t.isalnum()) or w in _SPELLING or w in _DIGIT_WORDS


def _value_span(w: _Window, at: int, multi: bool) -> tuple[int, int] | None:
    """The value starting at token `at` after a copula (None when it only describes the secret)."""
    toks = w.toks
    while at < len(toks) and toks[at].text.lower() in ("just", "actually", "literally", "simply", "basically", "now",
                                                       "currently", "still", "this", ":", "-", "—"):
        at += 1
    if at >= len(toks):
        return None
    first = toks[at]
    v = first.text
    if (quoted := _quoted(toks, at)) is not None:
        return quoted
    if HAN.match(v) or _NOT_VALUE.match(v) or v.endswith("?"):
        return None
    if v.lower() in (_NOT_GIVEN if w.colon else _NEG):
        return None  # after "is", "my …"/"the …" describe it; after ":" they may be the value
    if v.isdigit() and at + 1 < len(toks) and _UNIT_AFTER.match(toks[at + 1].text):
        return None  # "is 12 characters long", "is 4 digits"
    end = at
    if multi and not _clause_end(first):
        while end + 1 < len(toks) and (end - at < 5 or _spelling(toks[end + 1].text)):
            nxt = toks[end + 1]
            if _spelling(nxt.text) and _spelling(toks[end].text):
                pass  # spelt out by voice typing: "capital Q w e r t y one two three"
            elif nxt.text.lower() in _STOP or HAN.match(nxt.text) or _NOT_VALUE.match(nxt.text):
                break
            if nxt.text.lower().endswith("ly") and nxt.text.isalpha():
                break
            end += 1
            if _clause_end(nxt):
                break
    if end == at and _is_descriptive(v):
        return None
    if end == at and len(v) < 3:
        return None
    return first.start, toks[end].end


def _after_keyword(doc: Doc, kw: re.Match[str], kind: str, multi: bool,
                   accept: Callable[[str], bool]) -> list[Hit]:
    w = _window(doc, kw.end())
    toks = w.toks
    if not toks:
        return []
    if w.crossed:
        # The next sentence: "ok here: Qaz!2wsx", "sure its Kiwi4455" — no bare PIN ("my pin?
        # 12345678 is my UID").
        for t in toks[:4]:
            if accept(t.text) and not t.text.isdigit():
                return [Hit(t.start, t.end, kind)]
            if t.text.lower() not in _CONNECT and t.text.lower() not in _NEXT_SENTENCE_LEAD:
                break
        return []
    weak = _WEAK_KEYWORD.fullmatch(kw.group(0)) is not None
    # An English keyword in Chinese ("我的password是qwe123") takes the Chinese copula.
    zh = _ASIAN.search(kw.group(0)) is not None or (not weak and _HAN_NEXT.match(doc.text, kw.end()) is not None)
    if not zh and toks[0].text.lower() in _ABOUT_NOUN and not doc.text[kw.end() : toks[0].start].strip():
        return []  # "the password field is greyed out", "my password manager is bitwarden"
    hits: list[Hit] = []
    if zh:
        # Chinese (Japanese, Korean): any characters of the script may stand between
        # ("谷歌验证码现在是 483920", "パスワードは…"); the value is ASCII.
        k = _zh_copula(toks)
        for j, t in enumerate(toks[:10]):
            if _ASIAN.match(t.text):
                continue
            v = t.text
            start = t.start
            if v[:1] in (":", "="):  # "密码:abc12345": the colon is the copula, not the value
                v = v.lstrip(":=")
                start = t.end - len(v)
                k = j if k < 0 else k
            elif k < 0 and doc.text[kw.end() : t.start].rstrip().endswith((":", "：", "=")):
                k = j  # "登录密码：00000@": the full-width colon is no token of its own
            if not v or not v.isascii() or _NOT_VALUE.match(v):
                break
            # Right after the keyword, a 4-digit PIN too ("PIN码 2580", "密码 1234").
            pin = (j == 0 or (j == 1 and toks[0].text in "码碼是为為")) and v.isdigit() and 4 <= len(v) <= 8 and not (
                j + 1 < len(toks) and _UNIT_AFTER.match(toks[j + 1].text))
            if (k >= 0 and j >= k and len(v) >= 4 and any(c.isalnum() for c in v)) or accept(v) or pin:
                hits.append(Hit(start, t.end, kind))
            break
        return hits
    if (_PIN_WORD.fullmatch(kw.group(0)) and _PIN.fullmatch(toks[0].text) and toks[0].raw == toks[0].text
            and not (len(toks) > 1 and _UNIT_AFTER.match(toks[1].text))):
        return [Hit(toks[0].start, toks[0].end, kind)]  # "PIN 0000" (a bank PIN is often 4 digits)
    if 0 <= w.copula_at <= 6 and not weak:
        span = _value_span(w, w.copula_at, multi)
        if span is not None:
            return [Hit(span[0], span[1], kind)]
        if (h := _labelled(toks, w.copula_at, kind)) is not None:
            return [h]
        # What follows the copula describes the secret ("was set to …", "is now …"): a
        # credential-shaped token after connecting words is still the value.
    for t in toks[:_MAX_BETWEEN]:
        if accept(t.text):
            hits.append(Hit(t.start, t.end, kind))
            continue
        if t.text.lower() not in _CONNECT:
            break
    return hits


_PIN_WORD = re.compile(r"(?i)pin(?:[\s-]?code)?")
_PIN = re.compile(r"\d{4,8}")


def _labelled(toks: list[Token], at: int, kind: str) -> Hit | None:
    """A value under a label after words that describe it: "my pass is the same as the email:
    Tiger2020!" — credential-shaped, not all digits, and the label names no id ("UID: …")."""
    for j in range(at, min(len(toks) - 1, at + _MAX_BETWEEN)):
        t = toks[j]
        if _clause_end(t) and not _label(t.raw):
            return None
        if _label(t.raw) and not _ID_BEFORE.match(t.text.rstrip(":：=")):
            v = toks[j + 1].text
            if credential_shaped(v) and not v.isdigit():
                return Hit(toks[j + 1].start, toks[j + 1].end, kind)
            return None
    return None


# Value first: "Qwerty#123 is my password", "I use Qwerty#123 as my login password",
# "Abc12345是我的密码", "我用Abc12345当密码". Between the value and the keyword: a copula, then
# only words that say whose or which password it is.
_BEFORE_COPULA_EN = frozenset("is was = as for thats that's - -- ← <- <--".split())
_BEFORE_OWNER_EN = frozenset(
    """my our his her their the a new old current actual real main usual whole account login email e-mail binance
    exchange wallet trading withdrawal fund funds""".split())
_BEFORE_COPULA_ZH = frozenset("是为為当當做作")
_WEAK_KEYWORD = re.compile(r"(?i)log[\s-]?in|sign[\s-]?in|credentials?|creds")
_END_MARK = re.compile(r"[.!?;]{1,3}\s{0,3}")


def _before_keyword(doc: Doc, kw: re.Match[str], kind: str = PASSWORD,
                    accept: Callable[[str], bool] = credential_shaped) -> Hit | None:
    """A value written before its keyword (see above), in the same sentence: credential-shaped
    for a password, an API secret's shape for an API keyword ("<key> is my api secret")."""
    if _WEAK_KEYWORD.fullmatch(kw.group(0)):
        return None
    toks = doc.tokens
    s, _ = doc.sentence(kw.start())
    j = doc.token_index(kw.start()) - 1
    # (An English keyword after Chinese takes the Chinese copula: "qwe123是我的password".)
    zh = _ASIAN.search(kw.group(0)) is not None or (kw.start() > 0 and HAN.match(doc.text, kw.start() - 1) is not None)
    copula = False
    skipped = 0
    while j >= 0 and toks[j].start >= s and skipped < 8:
        t = toks[j].text
        low = t.lower()
        if zh and _ASIAN.match(t):
            copula = copula or any(c in _BEFORE_COPULA_ZH for c in t)
        elif not zh and not copula and low in _BEFORE_OWNER_EN:
            pass
        elif not zh and not copula and low in _BEFORE_COPULA_EN:
            copula = True
        else:
            break
        j -= 1
        skipped += 1
    if not copula or j < 0:
        return None
    if toks[j].start < s and not _END_MARK.fullmatch(doc.text, toks[j].end, s):
        return None  # (a value ending in "!", "." or "?" ends a sentence: "Monkey66! is my password")
    v = toks[j].text
    if not accept(v) or looks_like_address(v):
        return None
    before = toks[j - 1].text if j > 0 else ""
    if _ID_BEFORE.match(before) or _ID_TAIL.search(doc.text, max(0, toks[j].start - 12), toks[j].start):
        return None  # "order 12345678 is my …"
    return Hit(toks[j].start, toks[j].end, kind)


def _passwords(doc: Doc) -> list[Hit]:
    hits: list[Hit] = []
    for m in _outside_marks(PASSWORD_WORDS, doc):
        hits += _after_keyword(doc, m, PASSWORD, True, credential_shaped)
        if (h := _before_keyword(doc, m)) is not None:
            hits.append(h)
    for m in _outside_marks(PASSPHRASE_WORDS, doc):
        s, e = doc.sentence(m.start())
        kind = API_SECRET if re.search(r"(?i)(?<![a-z])api(?![a-z])", doc.text[max(s, m.start() - 60) : min(e, m.end() + 40)]) else PASSWORD
        hits += _after_keyword(doc, m, kind, True, credential_shaped)
    return hits


# -- one-time codes ------------------------------------------------------------------------------

_GROUP = re.compile(r"\d{1,4}")
_NUMBER_GAPS = frozenset(("", " ", "-", ".", ",", "\u00a0"))
_DURATION = re.compile(r"(?i)\s{0,2}(?:(?:min(?:ute)?s?|sec(?:ond)?s?|h(?:ou)?rs?)\b|分钟|分鐘|秒|小时|小時)")
# 4–8 digits in groups of one size: "123-456", "12-34-56", "4-8-2-9-1-3".
_GROUPED = re.compile(r"(?:G-)?\d{4,8}|\d{3}-\d{3}|\d\d(?:-\d\d){2,3}|\d(?:-\d){3,7}")  # "G-482913": Google's SMS


def _spaced(toks: list[Token], j: int) -> int:
    """The last token of the run of digit groups that starts at token j, one space apart (two
    ASCII tokens one character apart have a space between them: the tokens are maximal runs)."""
    k = j
    while (k + 1 < len(toks) and k - j < 8 and toks[k + 1].start - toks[k].end == 1
           and _GROUP.fullmatch(toks[k + 1].text)):
        k += 1  # (at most 9 groups: more is no code, and each look stays short)
    return k


def _digits(toks: list[Token], j: int) -> tuple[int, int] | None:
    """A one-time code starting at token j: 4–8 digits, written together or in groups of one size
    ("123 456", "123-456", "12 34 56", "4 8 2 9 1 3")."""
    t = toks[j].text
    if _GROUPED.fullmatch(t):
        return j, j
    if _GROUP.fullmatch(t):
        k = _spaced(toks, j)
        sizes = {len(x.text) for x in toks[j:k + 1]}
        n = sum(len(x.text) for x in toks[j:k + 1])
        if k > j and len(sizes) == 1 and 4 <= n <= 8:
            return j, k
    return None


def _group_start(toks: list[Token], j: int) -> int:
    """The first token of the run of digit groups (see `_spaced`) that token j ends."""
    stop = max(0, j - 8)
    while (j > stop and _GROUP.fullmatch(toks[j].text) and toks[j].start - toks[j - 1].end == 1
           and _GROUP.fullmatch(toks[j - 1].text)):
        j -= 1
    return j


# Digits written as words, as voice typing or a careful user writes them ("one two three four
# five six", "四八二九一三", "cuatro ocho dos …").
_DIGIT_WORDS = frozenset(
    """zero oh one two three four five six seven eight nine cero uno dos tres cuatro cinco seis siete ocho nueve
    um dois três tres quatro sete oito nove zéro un deux trois quatre cinq sept huit neuf
    ноль один два три четыре пять шесть семь восемь девять""".split())
_HAN_DIGITS = frozenset("零〇一二三四五六七八九幺两")


def _spelled(doc: Doc, toks: list[Token], j: int) -> tuple[int, int] | None:
    """A code of 4–8 digits written as words from token j: number words one space (", " or "-")
    apart, or Chinese numerals written together."""
    t = toks[j].text
    if t in _HAN_DIGITS:
        k = j
        while k + 1 < len(toks) and k - j < 8 and toks[k + 1].start == toks[k].end and toks[k + 1].text in _HAN_DIGITS:
            k += 1
        return (j, k) if 4 <= k - j + 1 <= 8 and (k + 1 >= len(toks) or toks[k + 1].start > toks[k].end
                                                  or toks[k + 1].text not in _HAN_DIGITS) else None
    parts = t.lower().split("-")
    if not all(p in _DIGIT_WORDS for p in parts):
        return None
    if len(parts) > 1:
        return (j, j) if 4 <= len(parts) <= 8 else None
    k = j
    while (k + 1 < len(toks) and k - j < 8 and toks[k + 1].text.lower() in _DIGIT_WORDS
           and doc.text[toks[k].end : toks[k + 1].start] in (" ", ", ", ",")):
        k += 1
    return (j, k) if 4 <= k - j + 1 <= 8 else None


def _otp_value_ok(doc: Doc, toks: list[Token], a: int, b: int, direct: bool) -> bool:
    before = toks[a - 1].text if a > 0 else ""
    before2 = toks[a - 2].text if a > 1 else ""
    after = toks[b + 1].text if b + 1 < len(toks) else ""
    if _ID_BEFORE.match(before) or _ID_BEFORE.match(before2) or _UNIT_AFTER.match(after):
        return False
    if _ID_TAIL.search(doc.text, max(0, toks[a].start - 12), toks[a].start):
        return False
    # Part of a longer number (a phone number "138 0013 8000", a grouped amount) — not a number
    # after a clause ends ("验证码482913，5分钟内有效").
    if before.isdigit() and doc.text[toks[a - 1].end : toks[a].start] in _NUMBER_GAPS:
        return False
    if (after.isdigit() and doc.text[toks[b].end : toks[b + 1].start] in _NUMBER_GAPS
            and not _DURATION.match(doc.text, toks[b + 1].end)):  # "482913 5 minutes ago"
        return False
    v = toks[a].text
    return not (len(v) == 4 and re.fullmatch(r"19\d\d|20[0-4]\d", v) and not direct)


def _otps(doc: Doc) -> list[Hit]:
    text = doc.text
    hits: list[Hit] = []
    for m in _outside_marks(OTP_WORDS, doc):
        toks = doc.tokens
        i0 = doc.token_index(m.start())
        prev = toks[i0 - 1].text if i0 > 0 else ""
        if _NOT_OTP_BEFORE.match(prev) or _NOT_OTP_BEFORE.match(m.group(0).split()[0]):
            continue
        k = doc.token_index(m.end())  # the word after the keyword, past "de"/"di"
        if k + 1 < len(toks) and toks[k].text.lower() in _OF:
            k += 1
        if k < len(toks) and _NOT_OTP_AFTER.match(toks[k].text):
            continue
        if _JSON_ERROR.match(text, m.end()):
            continue  # an API's error answer: {"code": -1022, "msg": "…"}
        s, e = doc.sentence(m.start())
        # After the keyword, within a few words ("authenticator shows 123 456 now") — or in the
        # next sentence when the keyword's ends right after it ("i got the code. 252353",
        # "code:\n\n482913", "the code you asked for:\n482913").
        begin, e, crossed = reach(doc, m.end())
        if crossed:  # (only its first few words: "no code. I tried 5 times with …" is no code)
            e = min(e, toks[min(doc.token_index(begin) + 3, len(toks) - 1)].end)
        i = doc.token_index(m.end())
        # Glued to it by a colon or "=" ("code:483920", "验证码:483920"): one token.
        g = i - 1 if i > 0 and toks[i - 1].end > m.end() else i
        if g < len(toks) and toks[g].start <= m.end():
            glued = text[m.end() : toks[g].end]
            tail = glued.lstrip(":：=")
            if tail != glued and _GROUPED.fullmatch(tail):
                hits.append(Hit(toks[g].end - len(tail), toks[g].end, OTP))
                continue
        j = i
        taken = 0
        while j < len(toks) and toks[j].start < e and taken < 10:
            t = toks[j].text
            if t[:1] in (":", "=") and _GROUPED.fullmatch(v := t.lstrip(":=")):  # "谷歌验证码:483920"
                if _otp_value_ok(doc, toks, j, j, direct=True):
                    hits.append(Hit(toks[j].end - len(v), toks[j].end, OTP))
                break
            d = _digits(toks, j)
            if d is not None:
                if _otp_value_ok(doc, toks, d[0], d[1], direct=j == i and not crossed):
                    hits.append(Hit(toks[d[0]].start, toks[d[1]].end, OTP))
                break
            if (t in _HAN_DIGITS or "-" in t or t.lower() in _DIGIT_WORDS) and (d := _spelled(doc, toks, j)) is not None:
                hits.append(Hit(toks[d[0]].start, toks[d[1]].end, OTP))
                break
            j += 1
            taken += 1
        # Before it ("483920 is my code", "483920是验证码").
        j = i0 - 1
        taken = 0
        while j >= 0 and toks[j].end > s and taken < 4:
            j = _group_start(toks, j)
            d = _digits(toks, j)
            if d is not None and _otp_value_ok(doc, toks, d[0], d[1], direct=False):
                hits.append(Hit(toks[d[0]].start, toks[d[1]].end, OTP))
                break
            j -= 1
            taken += 1
    for u in _USE_TO_VERIFY.finditer(text):  # (found by its digits: "use" is in every other text)
        if _USE_BEFORE.search(text, max(0, u.start() - 10), u.start()):
            hits.append(Hit(*u.span(1), OTP))
    return hits


_JSON_ERROR = re.compile(r'"\s{0,3}:\s{0,3}-?\d{1,9}\s{0,3},\s{0,3}"(?:msg|message|error|err|success|data|detail)"', re.I)
# An SMS with no code word: "Use 482913 to verify your account".
_USE_BEFORE = re.compile(r"(?i)(?<![a-z])(?:use|enter|type)\s{1,3}$")
_USE_TO_VERIFY = re.compile(
    r"(?=[G0-9])(?<![\w-])((?:G-)?\d{4,8})\s{1,3}(?:to|for)\s{1,3}"
    r"(?:verify|confirm|log\s?in|sign\s?in|authori[sz]e|authenticate)(?![a-z])", re.I)


# -- API secrets ---------------------------------------------------------------------------------

_API_VALUE = re.compile(r"[A-Za-z0-9_\-+/=.]{16,256}")


_BECH32 = re.compile(r"[a-z]{1,12}1[02-9ac-hj-np-z]{20,100}")


def looks_like_address(v: str) -> bool:
    """A blockchain address (agents need these): 0x + 40 hex, base58check (BTC, TRON…), a 32-byte
    base58 key (Solana), or bech32 (bc1…, ltc1…, addr1…)."""
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", v) or _BECH32.fullmatch(v):
        return True
    if 25 <= len(v) <= 44:
        raw = keys.b58decode(v)
        if raw is not None and (len(raw) == 32 or (len(raw) == 25 and keys.b58check_ok(raw))):
            return True
    return False


def _api_value(v: str, generic: bool) -> bool:
    if not _API_VALUE.fullmatch(v) or _NOT_VALUE.match(v) or looks_like_address(v):
        return False
    lo, up, dg, _ = _classes(v)
    if generic:  # "token", "secret", "key": a random-looking value only
        return len(v) >= 20 and dg and (lo or up)
    return dg or (lo and up) or len(v) >= 24


# "key" / "secret" after one of these is no generic word: "binance api: key=…", "2FA backup key:
# …", "google authenticator secret …" (a 2FA secret key logs in like a password).
# The words of two-factor authentication (also the setup keys' context below).
_TWO_FACTOR = r"2fa|totp|mfa|otp|authenticator|google[\s-]?auth\w{0,10}|two[\s-]factor|2[\s-]step|setup"
_KEY_QUALIFIER = re.compile(rf"(?i)(?<![a-z])(?:api|{_TWO_FACTOR})(?![a-z])[^.!?\n]{{0,24}}$")
_GENERIC_API = frozenset(("secret", "secrets", "token", "tokens", "key", "keys", "cookie", "cookies"))


_HEX64 = re.compile(r"(?:0x)?[0-9a-fA-F]{64}")


def _line_value(v: str) -> bool:
    """A value alone on a line under an API keyword or under another value: an API secret's shape
    with letters in it (no order id), and no bare TxID."""
    return (_api_value(v, False) and len(v) >= 16 and any(c.isalpha() for c in v)
            and _HEX64.fullmatch(v) is None)


def _lines_below(doc: Doc, pos: int) -> list[Hit]:
    """Values alone on the lines after the one holding `pos` (blank lines and code fences
    skipped): a key and its secret pasted one per line under "api key and secret below", or a
    secret wrapped over two lines."""
    text = doc.text
    toks = doc.tokens
    hits: list[Hit] = []
    _, le = doc.line(pos)
    for _ in range(4):
        if le >= len(text):
            break
        ls, le = doc.line(le)
        if _BLANK.fullmatch(text, ls, le):
            continue
        i = doc.token_index(ls)
        if i >= len(toks) or toks[i].start >= le or (i + 1 < len(toks) and toks[i + 1].start < le):
            break  # no token, or more than one
        if not _line_value(toks[i].text):
            break
        hits.append(Hit(toks[i].start, toks[i].end, API_SECRET))
    return hits


_LINE_END = re.compile(r"[ \t\"'`,;)\]}]{0,8}(?:\r?\n|$)")


def _ends_line(doc: Doc, end: int) -> bool:
    return _LINE_END.match(doc.text, end) is not None  # (bounded: a megabyte line is not read per hit)


def _apis(doc: Doc) -> list[Hit]:
    hits: list[Hit] = []
    for m in _outside_marks(API_WORDS, doc):
        word = m.group(0).lower()
        generic = word in _GENERIC_API
        if generic and _KEY_QUALIFIER.search(doc.text, max(0, m.start() - 40), m.start()):
            generic = False
        w = _window(doc, m.end())
        found = None
        for t in w.toks[: _MAX_BETWEEN + 2]:
            if (pm := _API_VALUE.match(t.text)) and pm.end() < len(t.text) and not t.text[pm.end()].isalnum():
                # "api_key=VALUE&symbol=…": the value ends where a query string goes on.
                t = Token(t.start, t.start + pm.end(), pm.group(0), t.raw)
            if _api_value(t.text, generic):
                if _HEX64.fullmatch(t.text) and not keys.keyed(doc, t.start, t.end) and generic:
                    break  # a TxID near the word "token"
                found = Hit(t.start, t.end, API_SECRET)
                break
        if found is not None:
            hits.append(found)
            hits += _siblings(doc, found.end)
            if _ends_line(doc, found.end):  # the rest of a wrapped secret, the secret under the key
                hits += _lines_below(doc, found.end)
        elif not generic:
            # "api key and secret below\n<key>\n<secret>": a heading line, the values under it.
            ls, le = doc.line(m.end())
            if le - m.end() <= 48:
                hits += _lines_below(doc, m.end())
            # The value first: "<key> is my api secret", "<key>是我的API密钥".
            if (h := _before_keyword(doc, m, API_SECRET, _line_value)) is not None:
                hits.append(h)
    for m in _outside_marks(API_HEADING, doc):  # "binance api\n\n<key>\n<secret>"
        if doc.line(m.end())[1] - m.end() <= 48:
            hits += _lines_below(doc, m.end())
    for m in _CLIENT_ARGS.finditer(doc.text) if "(" in doc.text else ():
        hits += [Hit(*m.span(g), API_SECRET) for g in (1, 2) if _api_value(m.group(g), False)]
    return hits


# The next cell of a row after a secret: "api key,secret\n<key>,<secret>", "| <key> | <secret> |".
_SIBLING = re.compile(r"[\"'`]?[ \t]{0,2}[,;|\t][ \t]{0,2}[\"'`]?([A-Za-z0-9_\-+/=.]{16,256})(?![A-Za-z0-9_\-+/=.])")
# An exchange SDK's client built with the key and the secret as plain arguments:
# `Client("<key>", "<secret>")` (python-binance), `Spot(...)`, `HTTP(...)` (pybit).
_CLIENT_ARGS = re.compile(
    r"(?=[ACSUH])(?<![A-Za-z0-9_.])(?:Client|AsyncClient|Spot|UMFutures|CMFutures|HTTP)\(\s{0,4}[\"']([A-Za-z0-9_\-+/=]{16,256})[\"']"
    r"\s{0,4},\s{0,4}[\"']([A-Za-z0-9_\-+/=]{16,256})[\"']")


def _siblings(doc: Doc, end: int) -> list[Hit]:
    hits: list[Hit] = []
    for _ in range(2):
        m = _SIBLING.match(doc.text, end)
        if m is None or not _line_value(m.group(1)):
            break
        hits.append(Hit(*m.span(1), API_SECRET))
        end = m.end()
    return hits


_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_PREFIXED = re.compile(r"(?<![A-Za-z0-9_-])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}")
_LONG = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{32,256}(?![A-Za-z0-9])")


def _bare(doc: Doc) -> list[Hit]:
    """Secrets recognisable without a keyword: JWTs, prefixed API keys, and long random tokens
    mixing upper case, lower case and digits that no address or TxID format produces (base58
    addresses and Solana signatures decode to 20–25, 32 or 64 bytes and are left alone)."""
    hits = [Hit(*m.span(), API_SECRET) for m in _JWT.finditer(doc.text)]
    hits += [Hit(*m.span(), API_SECRET) for m in _PREFIXED.finditer(doc.text)]
    for m in _LONG.finditer(doc.text):
        v = m.group(0)
        lo, up, dg, _ = _classes(v)
        if not (lo and up and dg) or re.fullmatch(r"(?:0x)?[0-9a-fA-F]+", v):
            continue  # hex (a checksummed 0x address, a hash) is never an API secret by shape alone
        raw = keys.b58decode(v)
        if raw is not None and len(raw) in (20, 21, 25, 32, 33, 64):
            continue
        hits.append(Hit(m.start(), m.end(), API_SECRET))
    return hits


# -- e-mail / password ---------------------------------------------------------------------------

_EMAIL_THEN = re.compile(
    r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,6}(?P<sep>[ \t]{0,3}[/|:：;,][ \t]{0,3}|[ \t]{1,3})(?P<v>[^\s,;]{1,128})"
)
_CRED_CONTEXT = re.compile(r"(?i)log[\s-]?in|sign[\s-]?in|account|credential|password|passwd|pwd|账号|帳號|账户|帳戶|登录|登錄|登陆|密码|密碼")


# A password in a URL's user part ("https://alice:Secr3tPass@host/…", a pasted connection string).
_URL_USERINFO = re.compile(r"://[^\s/:@]{1,64}:(?P<v>[^\s/@]{1,128})@(?=[\w\[])")


def _email_passwords(doc: Doc) -> list[Hit]:
    userinfo = [Hit(*m.span("v"), PASSWORD) for m in _URL_USERINFO.finditer(doc.text)]
    hits = list(userinfo)
    u = 0  # (both in text order: one pass)
    for m in _EMAIL_THEN.finditer(doc.text):
        while u < len(userinfo) and userinfo[u].end <= m.start():
            u += 1
        if u < len(userinfo) and userinfo[u].start <= m.start():
            continue  # "user:password@host/path" is no e-mail address followed by a password
        v = m.group("v").strip("\"'()[]<>.")
        if not v or _NOT_VALUE.match(v):
            continue
        sep = m.group("sep").strip()
        s, e = doc.sentence(m.start())
        cred = _CRED_CONTEXT.search(doc.text, max(s, m.start() - 80), min(e, m.end() + 40)) is not None
        if sep in ("/", "|", ":", "：") and len(v) >= 4 and v.lower() not in _STOP and not _is_descriptive(v):
            ok = credential_shaped(v) or cred
        else:
            lo, up, dg, sy = _classes(v)
            # "alice@mail.com Alice#2023": strongly credential-shaped, or a credential word nearby.
            ok = credential_shaped(v) and (cred or (sy and (lo or up) and dg))
        if ok:
            vs = m.start("v") + m.group("v").find(v)
            hits.append(Hit(vs, vs + len(v), PASSWORD))
    return hits


# -- 2FA secret keys and backup codes -----------------------------------------------------------

# An authenticator's setup key as apps show it, in groups of four ("jbsw y3dp ehpk 3pxp"): at
# least four groups, one digit among them (random base32 of that length nearly always has one;
# four-letter words do not).
TOTP_RE = (
    rf"(?<![A-Za-z0-9])(?:{_TWO_FACTOR}|secret|backup|recovery)(?![A-Za-z0-9])|"
    r"谷歌验证|谷歌驗證|验证器|驗證器|密钥|密鑰|秘钥|备份|備份"
)
TOTP_WORDS = _keywords(TOTP_RE, "2tmoagsbr谷验驗密秘备備")
_B32_GROUPS = re.compile(r"(?i)(?<![a-z0-9])[a-z2-7]{4}(?:[ -][a-z2-7]{4}){3,15}(?![a-z0-9])")
# Backup (recovery) codes: a list of codes after the words, on the same line or the next ones.
BACKUP_RE = (
    r"(?<![A-Za-z0-9])(?:backup|recovery|emergency|scratch)[\s_-]{0,2}codes?(?![A-Za-z0-9])|"
    r"备用码|備用碼|备份码|備份碼|恢复码|恢復碼|救援码|救援碼"
)
BACKUP_WORDS = _keywords(BACKUP_RE, "bres备備恢救")
_BACKUP_CODE = re.compile(r"(?=[A-Za-z-]*\d)[A-Za-z0-9]{4,10}(?:-[A-Za-z0-9]{3,10}){0,3}")
_BACKUP_GAP = frozenset("for my 2fa google account are is were : - the codes code these here they".split())


def _totp_keys(doc: Doc) -> list[Hit]:
    text = doc.text
    hits: list[Hit] = []
    for m in _outside_marks(TOTP_WORDS, doc):
        g = _B32_GROUPS.search(text, m.end(), min(len(text), m.end() + 48))
        if g is None or not any(c in "234567" for c in g.group(0)):
            continue
        if not _NEAR_GAP.fullmatch(text, m.end(), g.start()):
            continue
        hits.append(Hit(g.start(), g.end(), API_SECRET))
    return hits


_NEAR_GAP = re.compile(r"[^.!?\n]{0,40}?[\s:：=]|[^.!?]{0,8}\n")


def _backup_codes(doc: Doc) -> list[Hit]:
    hits: list[Hit] = []
    for m in _outside_marks(BACKUP_WORDS, doc):
        toks = doc.tokens  # (cut only when needed: most texts have no such words)
        j = doc.token_index(m.end())
        skipped = 0
        while j < len(toks) and skipped < 4 and toks[j].text.lower() in _BACKUP_GAP:
            j += 1
            skipped += 1
        n = 0
        while j < len(toks) and n < 16 and _BACKUP_CODE.fullmatch(toks[j].text) and not _NOT_VALUE.match(toks[j].text):
            hits.append(Hit(toks[j].start, toks[j].end, OTP))
            j += 1
            n += 1
            if j + 1 < len(toks) and toks[j].text.lower() in ("and", "or", "&", "/", "和", "及"):
                j += 1  # "… 8a7b-6c5d and 1a2b-3c4d"
    return hits


def find(doc: Doc) -> list[Hit]:
    return (_apis(doc) + _bare(doc) + _passwords(doc) + _email_passwords(doc) + _otps(doc) + _totp_keys(doc)
            + _backup_codes(doc))
