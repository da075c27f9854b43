"""The review queue page and the intent list of the agent console (`/agent/review`,
`/agent/api/intents`): ops wiring on top of the console's sign-in, kept out of handoff/ because it
reaches into the NLU project (training data, model versions)."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, quote

import redis.asyncio as aioredis
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.review import gather, resolve
from app.runtime import rasa_paths
from bot.config import Settings
from bot.httpbody import BodyTooLarge, read_capped
from bot.logs import get_logger
from bot.models import TOPICS
from bot.policy import topic_of
from handoff import i18n
from handoff.auth import SESSION_COOKIE, Sessions, same, signed_in
from handoff.console import MAX_REVIEW_FORM, ApiError, CodedErrors, security_headers
from handoff.models import Agent
from handoff.service import TicketService
from intents.answers import Answers
from intents.ops import known_intents

log = get_logger("switchboard.review")


def review_router(settings: Settings, svc: TicketService, r: aioredis.Redis) -> APIRouter:
    hs = settings.handoff
    sessions = Sessions(r, hs.session_hours * 3600, hs.max_login_failures, hs.lockout_min * 60,
                        hs.max_account_failures)
    router = APIRouter(prefix="/agent", route_class=CodedErrors)

    async def agent_of(token: str | None) -> tuple[Agent, str] | None:
        return await signed_in(sessions, svc.sm, token)

    async def current(request: Request) -> Agent:
        got = await agent_of(request.cookies.get(SESSION_COOKIE))
        if got is None:
            raise ApiError(401, "sign_in", "sign in first")
        return got[0]

    @router.get("/api/intents")
    async def intents(request: Request) -> dict[str, Any]:
        await current(request)
        ans = Answers(settings.path(settings.router.answers_dir))
        by: dict[str, list[str]] = {}
        for k in sorted(ans.keys("en")):
            t = topic_of(k)
            if k in ("clarify",) or t == "out_of_scope" and not k.startswith("out_of_scope"):
                continue
            by.setdefault(t, []).append(k)
        return {"topics": list(TOPICS), "intents": by}

    @router.get("/review", include_in_schema=False)
    async def review_page(request: Request) -> Response:
        """Ops: misunderstood messages grouped, with a suggested intent; accept or discard each —
        in the agent's interface language (handoff/static/i18n)."""
        got = await agent_of(request.cookies.get(SESSION_COOKIE))
        if got is None:
            return RedirectResponse("/agent/login", 303)
        a, csrf = got
        if a.role != "supervisor":
            raise ApiError(403, "supervisors_only", "the review queue is for supervisors")
        lang = i18n.negotiate(a.locale, request.headers.get("accept-language"))
        intl = next((str(x.get("intl") or x["code"]) for x in i18n.languages() if x["code"] == lang), lang)

        def tr(key: str, **params: Any) -> str:
            return html.escape(i18n.text(lang, key, **params))

        groups = await gather(settings)
        intents_opts = "".join(f'<option value="{html.escape(i)}">' for i in sorted(known_intents(rasa_paths(settings))))
        rows = []
        for i, g in enumerate(groups[:100], 1):
            e = html.escape
            rows.append(
                f"<tr data-testid='review-row'><td>{i}</td><td>{g.count}</td><td>{e(g.lang)}</td>"
                f"<td class='t'>{e(g.text)}</td><td>{e(g.predicted or '')}</td><td>{e(', '.join(g.sources))}</td>"
                f"<td><form method='post' action='/agent/review'><input type='hidden' name='csrf' value='{e(csrf)}'>"
                f"<input type='hidden' name='text' value='{e(g.text)}'><input type='hidden' name='lang' value='{e(g.lang)}'>"
                f"<input name='intent' list='intents' value='{e(g.suggested or '')}' placeholder='{tr('review.intent')}' required>"
                f"<button name='action' value='accept'>{tr('review.accept')}</button></form>"
                f"<form method='post' action='/agent/review'><input type='hidden' name='csrf' value='{e(csrf)}'>"
                f"<input type='hidden' name='text' value='{e(g.text)}'><input type='hidden' name='lang' value='{e(g.lang)}'>"
                f"<button name='action' value='discard'>{tr('review.discard')}</button></form></td></tr>"
            )
        done = request.query_params.get("done", "")
        note = tr(f"review.done.{done}") if done in ("added", "discarded", "known") else ""
        body = (
            f"<!doctype html><html lang='{html.escape(intl)}'><meta charset=utf-8><title>{tr('review.pageTitle')}</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:24px;color:#1f2937}table{border-collapse:collapse;width:100%}"
            "td,th{border-bottom:1px solid #e5e7eb;padding:6px 8px;text-align:left;vertical-align:top}.t{max-width:520px}"
            "form{display:inline-block;margin-right:6px}input[name=intent]{width:220px}.ok{color:#047857}</style>"
            f"<h1>{tr('review.title')}</h1><p><a href='/agent'>← {tr('review.back')}</a> · {tr('review.groups', n=len(groups))} "
            f"{tr('review.where')} <code translate='no'>intents/data/nlu/&lt;lang&gt;/_reviewed.yml</code>; {tr('review.then')} "
            "<code translate='no'>switchboard train</code>, <code translate='no'>switchboard eval --compare</code>, "
            "<code translate='no'>switchboard deploy</code>.</p>"
            + (f"<p class='ok' data-testid='review-done'>{note}</p>" if note else "")
            + f"<datalist id='intents'>{intents_opts}</datalist><table><tr><th>#</th><th>{tr('review.col.count')}</th>"
            f"<th>{tr('review.col.lang')}</th><th>{tr('review.col.message')}</th><th>{tr('review.col.predicted')}</th>"
            f"<th>{tr('review.col.evidence')}</th><th>{tr('review.col.label')}</th></tr>" + "".join(rows) + "</table>"
        )
        return HTMLResponse(body, headers=security_headers(request))

    @router.post("/review", include_in_schema=False)
    async def review_action(request: Request) -> Response:
        got = await agent_of(request.cookies.get(SESSION_COOKIE))
        if got is None:
            raise ApiError(401, "sign_in", "sign in first")
        a, csrf = got
        if a.role != "supervisor":
            raise ApiError(403, "supervisors_only", "the review queue is for supervisors")
        # Read only after sign-in, and never more than a review form needs.
        try:
            raw = await read_capped(request, MAX_REVIEW_FORM)
        except BodyTooLarge:
            raise ApiError(413, "body_too_large", "form too large") from None
        form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        if not same(form.get("csrf"), csrf):
            raise ApiError(403, "csrf", "missing or wrong CSRF token")
        text, lang = form.get("text", ""), form.get("lang", "en")
        intent = form.get("intent") if form.get("action") == "accept" else None
        try:
            added = await resolve(settings, text, intent=intent, lang=lang)
        except ValueError as e:
            raise ApiError(400, "review_invalid", str(e), why=str(e)) from None
        log.info("review.resolved", agent=a.name, action=form.get("action"), intent=intent)
        done = "added" if added else ("discarded" if not intent else "known")  # review.done.<done>
        return RedirectResponse(f"/agent/review?done={quote(done)}", 303)

    return router
