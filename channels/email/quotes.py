"""What the user wrote *this time*: quoted replies, forwarded mail and signatures cut off; and the
language of that text.

Mail clients mark the start of a quote in their own ways; this module knows the attribution
lines and header blocks of the major ones, in English and Chinese (and the European languages
customers also write in):

- Gmail / Apple Mail / Thunderbird: "On <date>, <name> wrote:" (may wrap over two lines);
  Chinese Gmail "<name> 于2026年12月1日周二 10:00写道：", Apple "2026年12月1日 10:00，<name> 写道：";
- Outlook: a "From: / Sent: / To: / Subject:" block (also "发件人: / 发送时间: / 收件人: / 主题:",
  "Von: / Gesendet:", "De : / Envoyé :", "De: / Enviado:", "Da: / Inviato:", "Van: / Verzonden:",
  "Od: / Wysłane:", "Kimden: / Gönderildi:", "보낸 사람: / 보낸 날짜:" …), often after a line of underscores,
  or "-----Original Message-----" / "-----原始邮件-----";
- QQ Mail "------------------ 原始邮件 ------------------", NetEase 163 "在 <date>，<name> 写道：",
  Foxmail "在 2002-02-19 22:09:00 you wrote：", Lotus Notes "<name> wrote on 2021/06/29 下午 03:12:45:"
  (and "写于 …:"), Yahoo "--- On <date>, <name> wrote:";
- German "Am … schrieb …:", French "Le … a écrit :", Spanish "El … escribió:", Russian "… пишет:",
  and Gmail's line in the languages that put the name last or use no verb (a time, the sender's
  address, ":": "Am … um 09:00 Uhr schrieb Support <…>:", "пт, 4 дек. 2026 г. в 09:00, Support <…>:").

Lines quoted with ">" are dropped wherever they are; when the quote comes *first* (bottom-posting)
the text under it is what is kept. Signatures end the text: the RFC 3676 "-- " delimiter and the
"sent from my phone" lines clients append, also when a link follows them ("Get Outlook for
iOS<https://aka.ms/…>", "发送自 Windows 10 版邮件<https://…>应用").

A maintained library was considered: `mail-parser-reply` 1.36 (PyPI) misses Foxmail, Lotus
Notes, QQ Mail and Yahoo attributions (measured on the samples in the tests), so the rules stay
here, line based and testable.
"""

from __future__ import annotations

import re

from bot.lang import Lang, han_count

_WROTE = (r"(wrote|writes|a écrit|schrieb|escribió|escreveu|ha scritto|schreef|skrev|пишет|написал\(?а?\)?|写道|寫道"
          r"|yazdı|napisał\(?a?\)?|napsal\(?a?\)?|kirjoitti|scrisse|έγραψε|viết|menulis|a scris|님이 작성)")
_ATTRIBUTION = [
    # Gmail / Apple / Thunderbird / Yahoo ("--- On …"), English and other Latin languages.
    re.compile(r"^-{0,3}\s*(On|Am|Le|El|Em|Il|Op|Den|Dne)\b.{0,400}\b" + _WROTE + r"\s*[:：]?\s*$", re.I | re.S),
    # "<name> wrote:" on its own line after a date line, Russian "… пишет:".
    re.compile(r"^.{0,200}(<\s*[^<>\s]+@[^<>\s]+>|@\S+).{0,100}\b" + _WROTE + r"\s*[:：]\s*$", re.I | re.S),
    # Lotus Notes: "<name> wrote on 2021/06/29 下午 03:12:45:", "<name> 写于 2021/06/29 …:".
    re.compile(r"^.{0,300}(\bwrote on\b|写于|寫於)\s*\d{2,4}[/.-]\d{1,2}[/.-]\d{1,4}.{0,60}[:：]\s*$", re.I | re.S),
    # Chinese: "在 … 写道：" (163, Foxmail: also "在 … you wrote："), "… 2026年… 写道：".
    re.compile(r"^\s*在.{0,300}(写道|寫道|wrote)\s*[:：]?\s*$", re.I | re.S),
    re.compile(r"^.{0,300}\d{4}.{0,100}(写道|寫道)\s*[:：]?\s*$", re.S),
    re.compile(r"^.{0,300}\d{4}年.{0,100}(wrote|のメッセージ|書きました)\s*[:：]\s*$", re.I | re.S),
    # Gmail in most other languages: a date with a time, then the sender's address, then ":" —
    # the verb before the name or none at all ("Am … um 09:00 Uhr schrieb Support <s@x.com>:",
    # "пт, 4 дек. 2026 г. в 09:00, Support <s@x.com>:", "2026年12月4日(金) 9:00 Support <s@x.com>:").
    re.compile(r"^.{0,300}\b\d{1,2}[:.]\d{2}\b.{0,200}<\s*[^<>\s]+@[^<>\s]+>\)?\s*[:：]\s*$", re.S),
]
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(original message|original-nachricht|ursprüngliche nachricht|message d'origine|mensaje original"
    r"|исходное сообщение|原始邮件|原始郵件|原邮件|回复的原邮件|原始信件|元のメッセージ)\s*-{2,}\s*$"
    r"|^\s*_{10,}\s*$",
    re.I,
)
_FORWARD = re.compile(
    r"^\s*-{2,}\s*(forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado"
    r"|пересылаемое сообщение|转发的邮件|轉寄的郵件|转发邮件|转发的消息)\s*-{2,}\s*$|^\s*begin forwarded message\s*:\s*$",
    re.I,
)
_HEADER_FROM = re.compile(
    r"^\s*\*?(From|Von|De|De la|Da|Van|Od|Kimden|Från|Fra|Lähettäjä|Feladó|Dari|Từ|Από|Від|От|보낸 사람"
    r"|发件人|發件人|寄件者|差出人)\s*\*?\s*[:：]",
    re.I,
)
_HEADER_NEXT = re.compile(
    r"^\s*\*?(Sent|Date|To|Subject|Cc|Gesendet|Datum|An|Betreff|Envoyé|À|Objet|Enviado|Fecha|Para|Asunto"
    r"|Inviato|Oggetto|Verzonden|Aan|Onderwerp|Wysłane|Wysłano|Do|DW|Temat|Gönderildi|Kime|Bilgi|Konu"
    r"|Assunto|Skickat|Till|Ämne|Sendt|Til|Emne|Lähetetty|Vastaanottaja|Aihe|Elküldve|Címzett|Tárgy"
    r"|Odesláno|Komu|Předmět|Trimis|Către|Subiect|Dikirim|Kepada|Perihal|Subjek|Đã gửi|Đến|Chủ đề"
    r"|Στάλθηκε|Προς|Θέμα|Надіслано|보낸 날짜|받는 사람|참조|제목"
    r"|Отправлено|Кому|Тема|发送时间|時間|时间|日期|收件人|主题|主旨|寄件日期|收件者|抄送|送信日時|宛先|件名)\s*\*?\s*[:：]",
    re.I,
)
_LINK = re.compile(r"<\s*(https?|mailto):[^<>\s]*>", re.I)
_MOBILE_SIG = re.compile(
    r"^\s*(sent from my [\w ]{1,30}|sent from (mail|outlook|yahoo mail|gmail)( for [\w ]{1,20})?|get outlook for [\w ]{1,20}"
    r"|sent via [\w ]{1,30}|envoyé de mon [\w ]{1,30}|von meinem [\w ]{1,30} gesendet|gesendet von [\w ]{1,30}"
    r"|enviado desde mi [\w ]{1,30}|отправлено с [\w ]{1,30}|\w{1,20}から送信"
    r"|inviato da(l mio)? [\w ]{1,30}|verstuurd (vanaf|met) (mijn )?[\w ]{1,30}|verzonden (vanaf|met) (mijn )?[\w ]{1,30}"
    r"|wysłane z (mojego )?[\w '’-]{1,30}|enviado d[oe] (meu )?[\w ]{1,30}|[\w '’-]{1,30}(umdan|imden|ımdan|undan) gönderildi"
    r"|skickat från (min )?[\w ]{1,30}|sendt fra (min )?[\w ]{1,30}|lähetetty [\w ]{1,30}|odesláno z [\w ]{1,30}"
    r"|trimis de pe [\w '’-]{1,30}|dikirim dari [\w ]{1,30}|gửi từ [\w ]{1,30}|[\w ]{1,30}에서 보냄|надіслано з [\w ]{1,30}"
    r"|发自我的\s?[\w ]{1,20}|從我的\s?[\w ]{1,20}\s?傳送|从我的\s?[\w ]{1,20}\s?发送|发自网易邮箱.*|来自\s?\w+\s?的邮件"
    r"|发送自\s?[\w .]{1,40}?(版)?邮件\s*(应用)?|傳送自\s?[\w .]{1,40}|发自\s?[\w .]{1,30}(客户端|邮箱|app).*)\s*[.。]?\s*$",
    re.I,
)


def _is_header_block(lines: list[str], i: int) -> bool:
    if not _HEADER_FROM.match(lines[i].lstrip("> ")):
        return False
    nxt = [ln.lstrip("> ") for ln in lines[i + 1 : i + 7] if ln.strip()]
    return sum(1 for ln in nxt if _HEADER_NEXT.match(ln)) >= 2


def _is_attribution(lines: list[str], i: int) -> bool:
    line = lines[i].lstrip("> ").strip()
    if not line or len(line) > 500:
        return False
    if _matches_attribution(line):
        return True
    if i + 1 < len(lines) and lines[i + 1].strip():
        nxt = lines[i + 1].lstrip("> ").strip()
        # An attribution wrapped over two lines — unless the next line is a whole attribution by itself
        # and this one does not break off inside an address ("… Support <"): then this one is the
        # user's last line, written right above it ("Thanks!\nOn … wrote:").
        if _matches_attribution(nxt) and not line.endswith(("<", "(")):
            return False
        return _matches_attribution(line + " " + nxt)
    return False


def _matches_attribution(line: str) -> bool:
    return any(p.match(line) for p in _ATTRIBUTION)


def _is_signature(line: str) -> bool:
    if line.rstrip("\r") in ("-- ", "--"):
        return True
    s = _LINK.sub("", line).strip()
    return bool(s) and len(s) <= 80 and _MOBILE_SIG.match(s) is not None


def strip_reply(text: str) -> str:
    """The new text of a reply (see the module docstring). Returns "" when nothing is left
    (callers fall back to the full body)."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s.startswith(">"):
            i += 1
            continue
        if _is_signature(line):
            break
        starts_quote = _is_attribution(lines, i)
        if starts_quote or _SEPARATOR.match(line) or _FORWARD.match(line) or _is_header_block(lines, i):
            if not any(x.strip() for x in out) and starts_quote and _quoted_block_follows(lines, i + 1):
                # Bottom-posting: "On … wrote:" and the ">" quote first, the answer below it.
                i += 1
                continue
            break
        out.append(line.rstrip())
        i += 1
    result = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", result).strip()


def signature_only(text: str) -> bool:
    """The text begins with a signature: nothing was written above "Sent from my iPhone" (a
    screenshot sent from a phone), so there is no text to fall back on either."""
    for line in text.splitlines():
        if line.strip():
            return _is_signature(line)
    return False


def _quoted_block_follows(lines: list[str], start: int) -> bool:
    """After an attribution: the next non-empty line (past a wrapped second line) is ">"-quoted."""
    for ln in lines[start : start + 3]:
        if ln.strip():
            if ln.lstrip().startswith(">"):
                return True
    return False


# -- language ---------------------------------------------------------------------------------------


_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def mail_language(text: str, hint: str | None = None) -> Lang:
    """zh or en for the text the user wrote. Chinese when Han characters carry the message: at
    least as many as half the Latin words (so "USDT充值没到账" and "我的 account 被冻结了" are
    Chinese, while two stray characters left in a paragraph of English are not). With no
    letters at all, the hint (Content-Language, a Chinese charset) decides."""
    han = han_count(text)
    words = len(_LATIN_WORD.findall(text))
    if han == 0 and words == 0:
        return "zh" if hint and hint.lower().startswith("zh") else "en"
    if han and han * 2 >= words:
        return "zh"
    return "en"
