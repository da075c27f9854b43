"""Private keys.

- WIF keys (base58check-valid, version 0x80/0xef/0xb0/0x9e/0xcc, 33–34 byte payload) and extended
  private keys (xprv/yprv/zprv/tprv/uprv/vprv/Yprv/Zprv) are redacted wherever they are: nothing
  else has that shape.
- A 64-byte array written as a JSON list of numbers (a Solana keypair file) likewise.
- Keys in pieces — hex in groups or split over lines, base58 split over one line break — are
  joined first and then judged like the whole key.
- The `"ciphertext"` of an Ethereum keystore (UTC--… JSON) wherever it is: it is the private key,
  encrypted with a password users pick weak and often paste beside it; nothing else is named so.
- 64 or 128 hex characters (with or without `0x`) and 87–88 character base58 strings (a Solana
  secret key — but also a Solana transaction signature) are redacted only when a key word (private
  key, PK, key export, import, 私钥/私鑰, 导出 …) is in the same sentence, the sentence before or the
  line before — and a transaction word (tx, hash, 哈希, 交易 …) is not nearer: a bare 64-hex value is
  a TxID and agents need it.
"""

from __future__ import annotations

import hashlib
import re

from bot.redact._doc import Doc

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_B58C = "1-9A-HJ-NP-Za-km-z"

# The negative look-behind makes every candidate start at the beginning of its run: one scan per
# run, never one per position inside it (linear time on a megabyte of hex).
_WIF = re.compile(rf"(?<![{_B58C}])[59KLcTQ6P][{_B58C}]{{49,51}}(?![{_B58C}])")
_XPRV = re.compile(rf"(?<![{_B58C}])[xyztuvYZUV]prv[{_B58C}]{{60,115}}(?![{_B58C}])")
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:0[xX])?(?:[0-9a-fA-F]{128}|[0-9a-fA-F]{64})(?![0-9A-Za-z])")
_B58_64 = re.compile(rf"(?<![{_B58C}])[{_B58C}]{{86,88}}(?![{_B58C}])")
_BYTE_ARRAY = re.compile(r"\[\s{0,4}(?:\d{1,3}\s{0,4},\s{0,4}){63}\d{1,3}\s{0,4}\]")
# A key copied from a narrow window, read out in groups or wrapped by a mail client arrives in
# pieces: hex in 2–32 chunks apart by one or two spaces, one line break, "-" or ":"
# ("4c0883a6 9102937d …", half a key per line); base58 in two pieces across one line break.
_SEP = r"(?:[ \t]{1,2}|[ \t]*\r?\n[ \t]*|[-:])"
_HEX_PIECES = re.compile(rf"(?<![0-9A-Za-z])(?:0[xX])?[0-9a-fA-F]{{4,128}}(?:{_SEP}[0-9a-fA-F]{{4,128}}){{1,31}}(?![0-9A-Za-z])")
_B58_PIECES = re.compile(rf"(?<![{_B58C}])[{_B58C}]{{10,120}}[ \t]*\r?\n[ \t]*[{_B58C}]{{10,120}}(?![{_B58C}])")
_KEYSTORE = re.compile(r'"ciphertext"\s{0,3}:\s{0,3}"([0-9a-fA-F]{32,1024})"')
_NOT_KEY_CHARS = re.compile(r"[\s:-]|^0[xX]")

KEY_WORDS = re.compile(
    r"private[\s_-]{0,2}keys?|priv[\s_-]{0,2}keys?|privkey|secret[\s_-]{0,2}keys?|signing[\s_-]{0,2}key|"
    r"(?<![A-Za-z0-9])(?:pk|sk|keys?|keypair|export(?:ed|ing)?|import(?:ed|ing)?)(?![A-Za-z0-9])|"
    # A wallet built from the key in code: `new ethers.Wallet('0x…')`, `Wallet.fromPrivateKey(…)`.
    r"(?<![A-Za-z0-9])Wallet\s?\(|"
    r"私钥|私鑰|私匙|密钥|密鑰|秘钥|祕鑰|金鑰|金钥|钥匙|鑰匙|导出|導出|导入|導入",
    re.I,
)
TX_WORDS = re.compile(
    r"(?<![A-Za-z0-9])(?:tx|txs|txid|txids|txn|tx[\s_-]?id|tx[\s_-]?hash|hash(?:es)?|transactions?|transfer|"
    r"block|explorer|etherscan|bscscan|tronscan|solscan|signature|sig)(?![A-Za-z0-9])|"
    r"哈希|交易(?![所密])|区块|區塊|浏览器|瀏覽器|签名|簽名",
    re.I,
)


def b58decode(s: str) -> bytes | None:
    n = 0
    for c in s:
        v = _B58_INDEX.get(c)
        if v is None:
            return None
        n = n * 58 + v
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(s) - len(s.lstrip("1"))
    return b"\x00" * pad + raw


def b58check_ok(raw: bytes) -> bool:
    return len(raw) > 4 and hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:]


def _b58check(s: str) -> bytes | None:
    raw = b58decode(s)
    if raw is None or len(raw) < 5:
        return None
    body, check = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4] != check:
        return None
    return body


def _is_wif(s: str) -> bool:
    body = _b58check(s)
    return body is not None and body[0] in (0x80, 0xEF, 0xB0, 0x9E, 0xCC) and len(body) in (33, 34)


_REACH = 400


def _nearest(pattern: re.Pattern[str], doc: Doc, start: int, end: int) -> int | None:
    """Distance from the candidate to the nearest match of `pattern` in its context: the same
    sentence, the sentence before, or the line before (at most `_REACH` characters away)."""
    s, e = doc.sentence(start)
    e = max(e, doc.sentence(max(start, end - 1))[1])  # a key in pieces may span several lines
    lo = s
    ps, pe = doc.prev_sentence(start)
    if pe > ps:
        lo = min(lo, ps)
    ls, le = doc.prev_line(start)
    if le > ls:
        lo = min(lo, ls)
    return doc.nearest(pattern, max(lo, start - _REACH), start, end, min(e, end + _REACH))


# Words that name a private key and nothing else; with one of them earlier on the same line (a
# paragraph of a mail: "This is the private key of my wallet. I need help … the value is <key>")
# a key is still keyed, unless a word of transactions or transfers is nearer.
STRONG_KEY_WORDS = re.compile(
    r"(?i)private[\s_-]{0,2}keys?|priv[\s_-]{0,2}keys?|privkey|secret[\s_-]{0,2}keys?|私钥|私鑰|私匙")
_MOVE_WORDS = re.compile(
    r"(?i)(?<![a-z])(?:deposit\w{0,3}|withdr[ae]w\w{0,4}|sent|send(?:ing)?|arriv\w{1,4}|received?|paid|transfer\w{0,3})(?![a-z])|"
    r"充值|提现|提現|提币|提幣|到账|到賬|转账|轉賬|汇款|匯款")


def keyed(doc: Doc, start: int, end: int) -> bool:
    """A key word is in context and no transaction word is nearer."""
    k = _nearest(KEY_WORDS, doc, start, end)
    if k is None:
        ls, le = doc.line(start)
        lo = max(ls, start - _REACH)
        k = doc.nearest(STRONG_KEY_WORDS, lo, start, end, start)  # (only before it)
        if k is None:
            return False
        hi = min(le, end + _REACH)
        return all(d is None or k <= d for d in (doc.nearest(TX_WORDS, lo, start, end, hi),
                                                  doc.nearest(_MOVE_WORDS, lo, start, end, hi)))
    t = _nearest(TX_WORDS, doc, start, end)
    return t is None or k <= t


def find(doc: Doc) -> list[tuple[int, int]]:
    text = doc.text
    spans: list[tuple[int, int]] = []
    for m in _XPRV.finditer(text):
        spans.append(m.span())
    for m in _KEYSTORE.finditer(text) if '"ciphertext"' in text else ():
        spans.append(m.span(1))
    for m in _BYTE_ARRAY.finditer(text):
        if all(0 <= int(x) <= 255 for x in re.findall(r"\d+", m.group(0))):
            spans.append(m.span())
    for m in _WIF.finditer(text):
        if _is_wif(m.group(0)):
            spans.append(m.span())
    for m in _HEX.finditer(text):
        if keyed(doc, *m.span()):
            spans.append(m.span())
    for m in _B58_64.finditer(text):
        raw = b58decode(m.group(0))
        if raw is not None and len(raw) == 64 and keyed(doc, *m.span()):
            spans.append(m.span())
    for m in _HEX_PIECES.finditer(text):
        joined = _NOT_KEY_CHARS.sub("", m.group(0))
        if len(joined) in (64, 128) and any(c.isdigit() for c in joined) and keyed(doc, *m.span()):
            spans.append(m.span())
    for m in _B58_PIECES.finditer(text):
        joined = _NOT_KEY_CHARS.sub("", m.group(0))
        if _XPRV.fullmatch(joined) or (_WIF.fullmatch(joined) and _is_wif(joined)):
            spans.append(m.span())
        elif len(joined) in range(86, 89) and (raw := b58decode(joined)) is not None and len(raw) == 64 \
                and keyed(doc, *m.span()):
            spans.append(m.span())
    return spans
