"""The Reports page of the console: `/agent/reports` (HTML with server-drawn charts and a table
beside each), `/agent/reports/api` (JSON) and `/agent/reports/export.csv` (one table, or all of
them). Supervisors only: an agent gets 403, someone not signed in the sign-in page (or 401)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import urlencode

import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.models import TOPICS
from handoff.auth import SESSION_COOKIE, Sessions, signed_in
from handoff.console import CodedErrors, security_headers
from handoff.models import Agent
from handoff.reports.query import Filters, Table, report
from handoff.reports.svg import chart

PERIODS = ("today", "7d", "30d", "custom")
CHANNEL_NAME = re.compile(r"[a-z0-9_-]{1,32}")
# Offered in the channel filter beside the configured ones: past data keeps its channel.
KNOWN_CHANNELS = ("email", "telegram", "twitter", "web")
MAX_DAYS = 366
LANGS = ("en", "zh")
SECTIONS = (("volume", "Volume", "总量"), ("bot", "Bot", "机器人"), ("team", "Team", "团队"), ("csat", "CSAT", "满意度"))
UI = {
    "title": ("Reports", "报表"), "period": ("Period", "时段"), "today": ("Today", "今天"),
    "7d": ("Last 7 days", "最近 7 天"), "30d": ("Last 30 days", "最近 30 天"), "custom": ("Custom", "自定义"),
    "from": ("From", "起"), "to": ("To (inclusive)", "止（含）"), "channel": ("Channel", "渠道"),
    "lang": ("Language", "语言"), "topic": ("Topic", "主题"), "all": ("All", "全部"), "apply": ("Show", "查看"),
    "csv": ("CSV", "CSV"), "csv_all": ("Export everything as CSV", "全部导出为 CSV"),
    "console": ("← console", "← 控制台"), "review": ("Open the review queue", "打开复核队列"),
    "utc": ("Times are UTC.", "时间均为 UTC。"), "empty": ("No data in this period.", "此时段没有数据。"),
    "switch": ("中文", "English"),
}


class BadRequest(ValueError):
    pass


def period(q: dict[str, str], now: datetime) -> tuple[str, datetime, datetime]:
    """(name, start, end) of the asked period, whole UTC days; a bad one raises BadRequest."""
    name = q.get("period") or "7d"
    if name not in PERIODS:
        raise BadRequest(f"period must be one of {', '.join(PERIODS)}")
    day0 = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if name == "today":
        return name, day0, day0 + timedelta(days=1)
    if name in ("7d", "30d"):
        end = day0 + timedelta(days=1)
        return name, end - timedelta(days=int(name[:-1])), end
    try:
        lo, hi = date.fromisoformat(q.get("from", "")), date.fromisoformat(q.get("to", ""))
    except ValueError:
        raise BadRequest("a custom period needs from and to as YYYY-MM-DD") from None
    if hi < lo:
        raise BadRequest("the period ends before it starts")
    if (hi - lo).days + 1 > MAX_DAYS:
        raise BadRequest(f"a period is at most {MAX_DAYS} days")
    start = datetime(lo.year, lo.month, lo.day, tzinfo=UTC)
    return name, start, datetime(hi.year, hi.month, hi.day, tzinfo=UTC) + timedelta(days=1)


def filters(q: dict[str, str], now: datetime, channels: list[str]) -> Filters:
    _, start, end = period(q, now)
    ch, lang, topic = q.get("channel") or None, q.get("lang") or None, q.get("topic") or None
    if ch is not None and not CHANNEL_NAME.fullmatch(ch):
        raise BadRequest("channel must be a channel's name (letters, digits, _ and -)")
    if lang is not None and lang not in LANGS:
        raise BadRequest(f"lang must be one of {', '.join(LANGS)}")
    if topic is not None and topic not in TOPICS:
        raise BadRequest(f"unknown topic {topic!r}")
    return Filters(start, end, ch, lang, topic)


def _safe(v: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if v is None:
        return ""
    return "'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") else v


def to_csv(tables: list[Table], one: bool) -> str:
    """One table: its columns. Several: a `table` column first, then each table's own header."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for t in tables:
        keys = [c[0] for c in t.columns]
        w.writerow(keys if one else ["table", *keys])
        for r in t.rows:
            cells = [_safe(v) for v in r]
            w.writerow(cells if one else [t.id, *cells])
    return buf.getvalue()


def _cell(v: Any) -> str:
    return "–" if v is None else escape(str(v))


def table_html(t: Table, zh: bool, qs: str) -> str:
    title = t.title[1] if zh else t.title[0]
    head = "".join(f'<th scope="col">{escape(c[2] if zh else c[1])}</th>' for c in t.columns)
    body = []
    for r in t.rows:
        cells = [f'<th scope="row" data-col="{t.columns[0][0]}">{_cell(r[0])}</th>']
        cells += [f'<td data-col="{c[0]}">{_cell(v)}</td>' for c, v in zip(t.columns[1:], r[1:], strict=True)]
        body.append(f"<tr>{''.join(cells)}</tr>")
    extra = ""
    if t.id == "top_unanswered":
        extra = f' · <a href="/agent/review">{UI["review"][zh]}</a>'
    csv_link = f'<a href="/agent/reports/export.csv?{escape(qs)}&amp;table={t.id}" data-testid="csv-{t.id}" ' \
               f'download>{UI["csv"][zh]}</a>'
    svg = chart(t, zh)
    empty = "" if t.rows else f"<p>{UI['empty'][zh]}</p>"
    return (f'<figure class="fig" id="{t.id}" aria-labelledby="h-{t.id}"><h3 id="h-{t.id}">{escape(title)}</h3>'
            f'<p class="links">{csv_link}{extra}</p>{svg}{empty}'
            f'<div class="tw" tabindex="0" role="region" aria-labelledby="h-{t.id}">'
            f'<table data-testid="table-{t.id}"><caption>{escape(title)}</caption><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div></figure>')


def _select(name: str, label: str, options: list[tuple[str, str]], current: str) -> str:
    opts = "".join(f'<option value="{escape(v)}"{" selected" if v == current else ""}>{escape(t)}</option>'
                   for v, t in options)
    return f'<label>{escape(label)} <select name="{name}" data-testid="f-{name}">{opts}</select></label>'


def page_html(tables: list[Table], q: dict[str, str], f: Filters, zh: bool, channels: list[str], me: str) -> str:
    ui = {k: v[zh] for k, v in UI.items()}
    pname = q.get("period") or "7d"
    keep = {k: v for k, v in q.items() if k in ("period", "from", "to", "channel", "lang", "topic") and v}
    qs = urlencode(keep)
    other = urlencode({**keep, "ui": "en" if zh else "zh"})
    form = (
        '<form method="get" action="/agent/reports" class="filters" aria-label="filters">'
        + _select("period", ui["period"], [(p, ui[p]) for p in PERIODS], pname)
        + f'<label>{ui["from"]} <input type="date" name="from" data-testid="f-from" '
          f'value="{escape(q.get("from", f.start.date().isoformat()))}"></label>'
        + f'<label>{ui["to"]} <input type="date" name="to" data-testid="f-to" '
          f'value="{escape(q.get("to", (f.end - timedelta(days=1)).date().isoformat()))}"></label>'
        + _select("channel", ui["channel"], [("", ui["all"]), *[(c, c) for c in channels]], q.get("channel", ""))
        + _select("lang", ui["lang"], [("", ui["all"]), *[(x, x) for x in LANGS]], q.get("lang", ""))
        + _select("topic", ui["topic"], [("", ui["all"]), *[(x, x) for x in TOPICS]], q.get("topic", ""))
        + f'<input type="hidden" name="ui" value="{"zh" if zh else "en"}">'
        + f'<button type="submit" data-testid="f-apply">{ui["apply"]}</button></form>'
    )
    nav = "".join(f'<a href="#sec-{s}">{escape(zh and z or e)}</a>' for s, e, z in SECTIONS)
    secs = []
    for s, e, z in SECTIONS:
        figs = "".join(table_html(t, zh, qs) for t in tables if t.section == s)
        secs.append(f'<section id="sec-{s}" aria-labelledby="sh-{s}"><h2 id="sh-{s}">{escape(z if zh else e)}</h2>'
                    f'<div class="grid">{figs}</div></section>')
    span = f"{f.start:%Y-%m-%d} – {(f.end - timedelta(days=1)):%Y-%m-%d}"
    return (
        f'<!doctype html><html lang="{"zh-CN" if zh else "en"}"><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{ui["title"]} · switchboard</title>'
        "<style>body{font:14px system-ui,'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;margin:0;"
        "color:#111827;background:#f9fafb}header{padding:12px 24px;background:#fff;border-bottom:1px solid #e5e7eb}"
        "main{padding:12px 24px}.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:end}"
        ".filters label{display:flex;flex-direction:column;font-size:12px;color:#374151}"
        ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px}"
        ".fig{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:12px}"
        ".fig h3{margin:0 0 4px;font-size:15px}.links{margin:0 0 6px;font-size:12px}"
        ".tw{max-height:320px;overflow:auto}table{border-collapse:collapse;width:100%;font-size:12px}"
        "caption{text-align:left;position:absolute;left:-9999px}th,td{border-bottom:1px solid #e5e7eb;padding:3px 6px;"
        "text-align:right}th[scope=row],thead th:first-child{text-align:left}"
        "a:focus,select:focus,input:focus,button:focus,.tw:focus{outline:2px solid #2563eb;outline-offset:2px}"
        "nav a{margin-right:12px}</style>"
        f'<header><p><a href="/agent">{ui["console"]}</a> · <a href="/agent/reports?{escape(other)}" '
        f'data-testid="ui-switch" lang="{"en" if zh else "zh-CN"}">{ui["switch"]}</a> · <span data-testid="me">'
        f'{escape(me)}</span></p><h1>{ui["title"]} <small data-testid="span">{span}</small></h1>{form}'
        f'<p><nav aria-label="sections">{nav}</nav> · <a href="/agent/reports/export.csv?{escape(qs)}" '
        f'data-testid="csv-all" download>{ui["csv_all"]}</a> · {ui["utc"]}</p></header>'
        f'<main>{"".join(secs)}</main></html>'
    )


def reports_router(settings: Settings, sm: async_sessionmaker[AsyncSession], r: aioredis.Redis,
                   channels: list[str]) -> APIRouter:
    hs = settings.handoff
    sessions = Sessions(r, hs.session_hours * 3600, hs.max_login_failures, hs.lockout_min * 60,
                        hs.max_account_failures)
    router = APIRouter(prefix="/agent/reports", route_class=CodedErrors)
    channels = sorted({*channels, *KNOWN_CHANNELS})

    async def supervisor(request: Request) -> Agent | None:
        """The signed-in supervisor; None when nobody is signed in; 403 for an agent."""
        found = await signed_in(sessions, sm, request.cookies.get(SESSION_COOKIE))
        if found is None:
            return None
        a = found[0]
        if a.role != "supervisor":
            raise HTTPException(403, "reports are for supervisors")
        return a

    async def figures(q: dict[str, str]) -> tuple[Filters, list[Table]]:
        try:
            f = filters(q, datetime.now(UTC), channels)
        except BadRequest as e:
            raise HTTPException(400, str(e)) from None
        async with sm() as s:
            return f, await report(s, f, settings.sla)

    def zh_of(request: Request) -> bool:
        ui = request.query_params.get("ui")
        if ui in ("en", "zh"):
            return ui == "zh"
        return request.headers.get("accept-language", "").lower().startswith("zh")

    @router.get("", include_in_schema=False)
    async def page(request: Request) -> Response:
        a = await supervisor(request)
        if a is None:
            return RedirectResponse("/agent/login", 303)
        q = dict(request.query_params)
        f, tables = await figures(q)
        return HTMLResponse(page_html(tables, q, f, zh_of(request), channels, a.name),
                            headers=security_headers(request))

    @router.get("/api")
    async def api(request: Request) -> dict[str, Any]:
        if await supervisor(request) is None:
            raise HTTPException(401, "sign in first")
        f, tables = await figures(dict(request.query_params))
        return {"start": f.start.isoformat(), "end": f.end.isoformat(),
                "tables": [{"id": t.id, "section": t.section, "title": t.title[0],
                            "columns": [c[0] for c in t.columns], "rows": t.rows} for t in tables]}

    @router.get("/export.csv")
    async def export(request: Request) -> Response:
        if await supervisor(request) is None:
            raise HTTPException(401, "sign in first")
        q = dict(request.query_params)
        f, tables = await figures(q)
        which = q.get("table")
        if which:
            tables = [t for t in tables if t.id == which]
            if not tables:
                raise HTTPException(404, f"no table {which!r}")
        name = f"switchboard-{which or 'report'}-{f.start:%Y%m%d}-{f.end - timedelta(days=1):%Y%m%d}.csv"
        return Response(to_csv(tables, bool(which)), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
                                 "X-Content-Type-Options": "nosniff"})

    return router
