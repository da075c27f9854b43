"""The help centre: `/help` (categories), `/help/t/<topic>`, `/help/a/<id>` (an article),
`/help/search?q=` and the JSON the widget and the demo page use (`/help/api/search`,
`/help/api/categories`).

Search is SQLite FTS5 in memory, built at start from the articles (intents/help.py). Chinese has
no spaces between words, so every text is tokenized before it is indexed and every query the same
way: jieba's search-mode words plus the character bigrams of each Chinese run (a word jieba cuts
differently in the question and in the article still meets through its bigrams); English goes
through FTS5's Porter stemmer ("enabling" finds "enable"). Results rank by BM25 with titles
weighted above bodies.
"""

from __future__ import annotations

import asyncio
import html
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markdown_it import MarkdownIt

from bot.config import Settings
from bot.logs import get_logger
from intents.help import LANGS, Article, HelpArticles

log = get_logger("switchboard.help")

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[0-9A-Za-z]+|[\u3400-\u9fff\uf900-\ufaff]+")
_MAX_QUERY = 200
# Words that say nothing about which article is meant ("how do I …", "what is a …", "我的…怎么办").
STOPWORDS = frozenset(
    "a an and are can could do does for from have how i if in is it my me of on or please should the this to "
    "was what when where which who why will with would you your 我 我的 你 你们 怎么 怎么办 如何 什么 是 了 吗 呢 "
    "的 吧 啊 请问 为什么 一直 没有 可以".split())
TOPIC_NAMES = {
    "account": ("Account & verification", "账户与认证"), "deposit": ("Deposits", "充值"),
    "withdrawal": ("Withdrawals", "提币"), "trading": ("Trading", "交易"), "fees": ("Fees", "费用"),
    "security": ("Security", "账户安全"), "glossary": ("Crypto terms", "术语解释"), "vip": ("VIP", "VIP 服务"),
    "ticket": ("Support tickets", "工单与客服"), "education": ("Learning", "学习资源"),
    "theft": ("Hacked account or stolen funds", "账户被盗与资金损失"),
    "compliance": ("Restrictions & compliance", "账户限制与合规"), "human": ("Talk to us", "联系我们"),
}
TOPIC_ORDER = ("account", "deposit", "withdrawal", "trading", "fees", "security", "theft", "compliance", "vip",
               "ticket", "human", "education", "glossary")


def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(60)  # its "Building prefix dict" chatter is not ours to log
    return jieba


def tokens(text: str) -> list[str]:
    """Index/query tokens: lowercase words; for Chinese, jieba search-mode words and bigrams."""
    jb = _jieba()
    out: list[str] = []
    for m in _WORD.finditer(text.lower()):
        w = m.group(0)
        if not _CJK.fullmatch(w):
            out.append(w)
            continue
        out.extend(t for t in jb.cut_for_search(w) if t.strip())
        out.extend(w[i:i + 2] for i in range(len(w) - 1))
        if len(w) == 1:
            out.append(w)
    return out


@dataclass(frozen=True)
class Hit:
    id: str
    topic: str
    title: str
    snippet: str


class HelpSearch:
    """An in-memory FTS5 index of every article in both languages; thread-safe reads."""

    def __init__(self, articles: HelpArticles) -> None:
        self.articles = articles
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, lang UNINDEXED, title, body, "
                         "tokenize='porter unicode61')")
        rows = []
        for a in articles.articles.values():
            for lang in LANGS:
                rows.append((a.id, lang, " ".join(tokens(a.title[lang])), " ".join(tokens(_plain(a.body[lang])))))
        self._db.executemany("INSERT INTO docs(id, lang, title, body) VALUES (?, ?, ?, ?)", rows)

    def search(self, q: str, lang: str, limit: int = 8) -> list[Hit]:
        terms = [t for t in dict.fromkeys(tokens(q[:_MAX_QUERY])) if t not in STOPWORDS][:40]
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM docs WHERE docs MATCH ? AND lang = ? ORDER BY bm25(docs, 0, 0, 4.0, 1.0) LIMIT ?",
                (f"{{title body}}: ({match})", "zh" if lang == "zh" else "en", limit)).fetchall()
        out = []
        for (aid,) in rows:
            a = self.articles.articles[aid]
            out.append(Hit(a.id, a.topic, a.title[lang], _snippet(a.body[lang])))
        return out


def _plain(md: str) -> str:
    return re.sub(r"[#*_`>\[\]()-]+", " ", md)


def _snippet(md: str, n: int = 140) -> str:
    text = " ".join(_plain(md).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def query_lang(q: str, fallback: str = "en") -> str:
    return "zh" if _CJK.search(q) else fallback


_MD = MarkdownIt("commonmark", {"html": False, "linkify": False})
_CSS = """
*{box-sizing:border-box}body{margin:0;font:16px/1.6 system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;
color:#1d2330;background:#f6f7f9}main{max-width:820px;margin:0 auto;padding:16px}a{color:#1f6feb}
header{display:flex;justify-content:space-between;align-items:center;gap:8px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #e4e7ec;border-radius:12px;padding:14px 16px;margin:12px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
.muted{color:#667085;font-size:.9rem}form{display:flex;gap:8px}input[type=search]{flex:1;font:inherit;padding:10px;
border:1px solid #e4e7ec;border-radius:10px}button{font:inherit;padding:10px 14px;border:0;border-radius:10px;
background:#1f6feb;color:#fff}li{margin:4px 0}
"""
UI = {
    "en": {"title": "Help centre", "search": "Search the help centre", "go": "Search", "articles": "{n} articles",
           "results": "Results for “{q}”", "none": "Nothing found. Try other words, or ask our assistant in the chat.",
           "back": "All topics", "other": "中文", "ticket": "Still need help? Ask in the chat or reply to your ticket."},
    "zh": {"title": "帮助中心", "search": "搜索帮助中心", "go": "搜索", "articles": "{n} 篇文章",
           "results": "“{q}”的搜索结果", "none": "没有找到相关文章。请换个说法，或在对话中咨询智能助手。",
           "back": "全部分类", "other": "English", "ticket": "仍需帮助？请在对话中咨询，或回复您的工单。"},
}


class HelpCentre:
    def __init__(self, root: Path) -> None:
        self.articles = HelpArticles(root)
        self.index = HelpSearch(self.articles)

    def categories(self, lang: str) -> list[dict[str, Any]]:
        topics = self.articles.topics()
        li = 1 if lang == "zh" else 0
        return [{"topic": t, "name": TOPIC_NAMES.get(t, (t, t))[li], "count": len(topics[t]),
                 "url": f"/help/t/{t}?lang={lang}"}
                for t in sorted(topics, key=lambda x: TOPIC_ORDER.index(x) if x in TOPIC_ORDER else 99)]

    # -- pages (server-rendered: fast on a phone, nothing to run in the browser) --------------
    def _page(self, lang: str, title: str, inner: str, switch: str) -> str:
        u = UI[lang]
        return (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}'
                f'</title><style>{_CSS}</style></head><body><main><header><h1><a href="/help?lang={lang}" '
                f'style="color:inherit;text-decoration:none">{u["title"]}</a></h1>'
                f'<a href="{html.escape(switch)}" data-testid="lang">{u["other"]}</a></header>'
                f'<form action="/help/search" method="get"><input type="hidden" name="lang" value="{lang}">'
                f'<input type="search" name="q" placeholder="{u["search"]}" aria-label="{u["search"]}" '
                f'data-testid="help-q"><button>{u["go"]}</button></form>{inner}</main></body></html>')

    def home(self, lang: str) -> str:
        u = UI[lang]
        cards = "".join(f'<a class="card" href="{c["url"]}" data-testid="category" data-topic="{c["topic"]}">'
                        f'<strong>{html.escape(c["name"])}</strong><div class="muted">'
                        f'{u["articles"].format(n=c["count"])}</div></a>' for c in self.categories(lang))
        other = "en" if lang == "zh" else "zh"
        return self._page(lang, u["title"], f'<div class="grid">{cards}</div>', f"/help?lang={other}")

    def topic(self, topic: str, lang: str) -> str | None:
        items = self.articles.topics().get(topic)
        if not items:
            return None
        name = TOPIC_NAMES.get(topic, (topic, topic))[1 if lang == "zh" else 0]
        lis = "".join(f'<li><a href="/help/a/{a.id}?lang={lang}">{html.escape(a.title[lang])}</a></li>' for a in items)
        other = "en" if lang == "zh" else "zh"
        return self._page(lang, name, f'<div class="card"><h2>{html.escape(name)}</h2><ul>{lis}</ul></div>',
                          f"/help/t/{topic}?lang={other}")

    def article(self, aid: str, lang: str) -> str | None:
        a = self.articles.articles.get(aid)
        if a is None:
            return None
        u = UI[lang]
        name = TOPIC_NAMES.get(a.topic, (a.topic, a.topic))[1 if lang == "zh" else 0]
        related = [x for x in self.articles.topics()[a.topic] if x.id != a.id][:5]
        rel = "".join(f'<li><a href="/help/a/{x.id}?lang={lang}">{html.escape(x.title[lang])}</a></li>'
                      for x in related)
        inner = (f'<p class="muted"><a href="/help/t/{a.topic}?lang={lang}">{html.escape(name)}</a></p>'
                 f'<article class="card" data-testid="article"><h2>{html.escape(a.title[lang])}</h2>'
                 f'{_MD.render(a.body[lang])}</article><p class="muted">{u["ticket"]}</p>'
                 + (f'<div class="card"><ul>{rel}</ul></div>' if rel else ""))
        other = "en" if lang == "zh" else "zh"
        return self._page(lang, a.title[lang], inner, f"/help/a/{a.id}?lang={other}")

    def results(self, q: str, lang: str) -> str:
        u = UI[lang]
        hits = self.index.search(q, lang, limit=20)
        lis = "".join(f'<li data-testid="result"><a href="/help/a/{h.id}?lang={lang}">{html.escape(h.title)}</a>'
                      f'<div class="muted">{html.escape(h.snippet)}</div></li>' for h in hits)
        inner = (f'<div class="card"><h2>{html.escape(u["results"].format(q=q[:_MAX_QUERY]))}</h2>'
                 + (f"<ul>{lis}</ul>" if hits else f'<p>{u["none"]}</p>') + "</div>")
        return self._page(lang, u["title"], inner, f"/help?lang={'en' if lang == 'zh' else 'zh'}")


def _lang(request: Request) -> str:
    q = request.query_params.get("lang")
    if q in LANGS:
        return str(q)
    return "zh" if "zh" in (request.headers.get("accept-language") or "")[:5].lower() else "en"


PAGE_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'", "Cache-Control": "public, max-age=300"}
# Public, read-only, no cookies: any site that embeds the widget may ask for suggestions.
API_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=60",
               "X-Content-Type-Options": "nosniff"}


def help_router(settings: Settings, centre: HelpCentre | None = None) -> APIRouter:
    hc = centre or HelpCentre(settings.path(settings.selfservice.help_dir))
    router = APIRouter(prefix="/help")

    def page(body: str | None) -> Response:
        if body is None:
            return HTMLResponse("not found", 404)
        return HTMLResponse(body, headers=PAGE_HEADERS)

    @router.get("", include_in_schema=False)
    async def home(request: Request) -> Response:
        return page(hc.home(_lang(request)))

    @router.get("/t/{topic}", include_in_schema=False)
    async def topic(request: Request, topic: str) -> Response:
        return page(hc.topic(topic, _lang(request)))

    @router.get("/a/{aid}", include_in_schema=False)
    async def article(request: Request, aid: str) -> Response:
        return page(hc.article(aid, _lang(request)))

    @router.get("/search", include_in_schema=False)
    async def search_page(request: Request, q: str = "") -> Response:
        return page(hc.results(q, query_lang(q, _lang(request))))

    @router.get("/api/search", include_in_schema=False)
    async def search(request: Request, q: str = "", limit: int = 5) -> Response:
        lang = query_lang(q, _lang(request))
        hits = await asyncio.to_thread(hc.index.search, q, lang, max(1, min(limit, 10)))
        return JSONResponse({"lang": lang, "articles": [
            {"id": h.id, "topic": h.topic, "title": h.title, "snippet": h.snippet,
             "url": f"/help/a/{h.id}?lang={lang}"} for h in hits]}, headers=API_HEADERS)

    @router.get("/api/categories", include_in_schema=False)
    async def categories(request: Request) -> Response:
        lang = _lang(request)
        return JSONResponse({"lang": lang, "total": len(hc.articles.articles), "categories": hc.categories(lang)},
                            headers=API_HEADERS)

    return router


__all__ = ["Article", "HelpCentre", "HelpSearch", "help_router", "query_lang", "tokens"]
