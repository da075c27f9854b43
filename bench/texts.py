"""Support-like texts in English and Chinese for the load client.

- `UniqueTexts`: every text carries numbers nobody sent before (order ids, amounts, times), so no
  cache anywhere (ours keys on normalized *redacted* text) can answer it without Rasa.
- `FAQ`: fixed phrasings of the questions people ask all day; `RepeatedMix` draws 70 % of its
  texts from them (with harmless case/space variants the parse cache normalizes away) and 30 %
  from `UniqueTexts`.

Templates are screened against the live model before a run (`screen`): only phrasings the model
answers with confidence (an answer topic, not a handoff) are kept, so a conversation does not
drift into agent mode (where the bot is silent on purpose) and stall a closed-loop client.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

COINS = ["BTC", "ETH", "USDT", "SOL", "XRP", "TRX", "ADA", "DOGE", "LTC", "TON", "BNB", "ARB"]
NETS = ["TRC20", "ERC20", "BEP20", "Solana", "Arbitrum", "Polygon", "TON"]

EN = [
    "my {coin} deposit of {amt} still hasn't arrived after {h} hours, order {oid}",
    "deposited {amt} {coin} via {net} {m} minutes ago and it is not showing in my balance, ref {oid}",
    "how many confirmations does a {coin} deposit need? I sent {amt} at {hh}:{mm}",
    "which network should I use to deposit {coin}? I have {amt} on another exchange",
    "do I need a memo tag to deposit {coin}? transferring {amt} right now",
    "what is the minimum deposit for {coin}, I only want to send {amt}",
    "withdrawal of {amt} {coin} has been pending for {h} hours, order {oid}",
    "why is my withdrawal {oid} still processing? it's been {m} minutes",
    "what is the withdrawal fee for {coin} on {net}? planning to take out {amt}",
    "what is the daily withdrawal limit? I need to move {amt} USDT",
    "how long does the KYC review take? I submitted my documents {d} days ago, application {oid}",
    "I can't log in to the app, it keeps saying network error since {hh}:{mm}, my uid is {oid}",
    "what are your spot trading fees? I trade about {amt} USDT a month",
    "how is the funding fee calculated on a {lev}x long of {amt} USDT",
    "how do I place a limit order to buy {coin} at {price}",
    "my limit order {oid} to sell {amt} {coin} did not fill, why",
    "how do I set a stop loss at {price} on my {coin} position",
    "how do I become VIP? my 30 day volume is {amt} USDT",
    "what does staking mean, can I stake {amt} {coin}",
    "what is the difference between spot and futures? I have {amt} to start with",
    "is there a beginner guide for buying {coin} with {amt} dollars",
    "hi, how do I deposit {coin}? I have {amt} in my own wallet",
    "where do I find my {coin} deposit address on {net}, need it for {amt}",
    "how do I convert {amt} USDT to {coin}",
    "is there a fee for depositing {amt} {coin}",
    "how much interest do I pay borrowing {amt} {coin} for {d} days on margin",
    "withdrawal {oid} says completed but my wallet shows nothing, {amt} {coin}",
    "can I deposit {coin} using {net}? about to send {amt}",
]

ZH = [
    "我的{coin}充值{amt}已经{h}个小时还没到账，订单号{oid}",
    "{coin}充币需要多少个确认？我{hh}点{mm}分转了{amt}",
    "充值{coin}用哪个网络，我要转{amt}",
    "充{coin}要填memo吗，准备转{amt}",
    "提现{amt} {coin}一直在处理中，订单{oid}，已经{h}小时了",
    "提币手续费是多少，{net}网络提{amt} {coin}",
    "每天提现额度是多少，我要提{amt} USDT",
    "KYC审核要多久，我{d}天前提交的，申请编号{oid}",
    "现货交易手续费是多少，我每月交易大概{amt} USDT",
    "资金费率怎么算的，我开了{lev}倍多单{amt} USDT",
    "怎么挂限价单，想在{price}买{coin}",
    "我的限价单{oid}为什么没有成交，卖{amt} {coin}",
    "止损怎么设置，想设在{price}",
    "怎么成为VIP，我30天交易量{amt} USDT",
    "什么是质押，{amt} {coin}可以质押吗",
    "现货和合约有什么区别，我有{amt}想开始",
    "有没有新手教程，想用{amt}块钱买{coin}",
    "{coin}充值地址在哪里看，{net}网络，要充{amt}",
    "怎么把{amt} USDT换成{coin}",
    "充值{amt} {coin}要手续费吗",
    "借{amt} {coin}{d}天利息怎么算",
    "APP登录一直失败，提示网络错误，试了{k}次，UID {oid}",
    "最低充值金额是多少，我只想转{amt} {coin}",
    "提现订单{oid}显示成功了但是钱包没收到{amt} {coin}",
    "{net}网络可以充{coin}吗，马上要转{amt}",
]

FAQ_EN = [
    "how do I deposit",
    "my deposit has not arrived",
    "how long does a withdrawal take",
    "what is the withdrawal fee",
    "how do I withdraw to my bank",
    "what are the trading fees",
    "how do I verify my identity",
    "how long does kyc take",
    "how do I reset my login",
    "how do I become vip",
    "what is futures trading",
    "what is a limit order",
    "how do I set a stop loss",
    "what is staking",
    "is there a beginner guide",
    "which network should I use for usdt",
    "do I need a memo for xrp",
    "what is the minimum deposit",
    "what is the daily withdrawal limit",
    "how is the funding fee calculated",
    "withdrawal is still pending",
    "hello",
    "thank you",
    "how do I buy bitcoin",
    "where is my deposit address",
    "can I cancel my withdrawal",
    "what is margin trading",
]

FAQ_ZH = [
    "怎么充值",
    "充值没到账",
    "提现要多久",
    "提币手续费是多少",
    "交易手续费是多少",
    "怎么实名认证",
    "KYC审核要多久",
    "怎么成为VIP",
    "什么是合约交易",
    "什么是限价单",
    "止损怎么设置",
    "什么是质押",
    "有没有新手教程",
    "USDT用哪个网络充值",
    "充XRP要填标签吗",
    "最低充值多少",
    "每天提现额度是多少",
    "资金费率怎么算",
    "提现一直在处理中",
    "你好",
    "谢谢",
    "怎么买比特币",
    "充值地址在哪里",
    "提现可以取消吗",
    "什么是杠杆交易",
]


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    lang: str
    unique: bool


def fill(tpl: str, n: int, rng: random.Random) -> str:
    """Fill a template; `n` makes the numbers unique (order id and amount both carry it)."""
    return tpl.format(
        coin=rng.choice(COINS),
        net=rng.choice(NETS),
        amt=f"{(n % 9973) + 1}.{n % 97:02d}",
        oid=f"{7_000_000_000 + n * 7919}",
        h=1 + n % 23,
        m=5 + n % 55,
        d=1 + n % 9,
        k=2 + n % 7,
        hh=f"{n % 24:02d}",
        mm=f"{(n // 24) % 60:02d}",
        lev=(2, 3, 5, 10, 20, 25, 50)[n % 7],
        price=f"{20_000 + n % 50_000}.{(n // 50_000) % 100:02d}",
    )


@dataclass
class UniqueTexts:
    """An endless, reproducible stream of never-repeating support texts (zh and en mixed)."""

    seed: int = 1
    en: list[str] = field(default_factory=lambda: list(EN))
    zh: list[str] = field(default_factory=lambda: list(ZH))
    zh_share: float = 0.5
    _n: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        # Numbers of different runs of the bench never collide either.
        self._base = random.Random().randrange(1, 10**6) * 1000

    def next(self) -> Text:
        n = self._base + next(self._n)
        if self.rng.random() < self.zh_share:
            return Text(fill(self.rng.choice(self.zh), n, self.rng), "zh", True)
        return Text(fill(self.rng.choice(self.en), n, self.rng), "en", True)


@dataclass
class RepeatedMix:
    """`share` of texts from a fixed set of FAQ phrasings, the rest unique."""

    unique: UniqueTexts
    faq: list[tuple[str, str]]  # (text, lang)
    share: float = 0.7
    seed: int = 2

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def next(self) -> Text:
        if self.rng.random() < self.share:
            text, lang = self.rng.choice(self.faq)
            # Variants a person types: capitalized or not, stray spaces (normalized by the cache).
            if lang == "en" and self.rng.random() < 0.5:
                text = text[:1].upper() + text[1:]
            if self.rng.random() < 0.3:
                text = text.replace(" ", "  ", 1) if " " in text else text + " "
            return Text(text, lang, False)
        return self.unique.next()
