"""Console routes of VIP care: the Callbacks view (`/agent/callbacks`, `/agent/api/callbacks`)
and assigning a contact's account manager and VIP tier (`/agent/api/contacts/{id}/manager`).
Mounted on the console's router, behind its sessions and CSRF checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.logs import get_logger
from handoff.callbacks import Callbacks
from handoff.models import Agent
from handoff.service import TicketService
from handoff.vip import set_manager

ACTIONS = ("claim", "done", "no_answer", "reschedule")
svc_log = get_logger("switchboard.console")


def care_routes(router: APIRouter, svc: TicketService, current: Callable[..., Awaitable[Agent]],
                run: Callable[..., Awaitable[Any]], body: Callable[[Request], Awaitable[dict[str, Any]]],
                page: Callable[[str, Request], HTMLResponse]) -> None:
    cbs = Callbacks(svc)

    @router.get("/callbacks", include_in_schema=False)
    async def callbacks_page(request: Request) -> Response:
        try:
            await current(request)
        except HTTPException:
            return RedirectResponse("/agent/login", 303)
        return page("callbacks.html", request)

    @router.get("/api/callbacks")
    async def callbacks(request: Request) -> dict[str, Any]:
        await current(request)
        return {"callbacks": await cbs.list()}

    @router.post("/api/callbacks/{cb_id}/{action}")
    async def callback_action(request: Request, cb_id: int, action: str) -> dict[str, Any]:
        a = await current(request, write=True)
        if action not in ACTIONS:
            raise HTTPException(404, "unknown action")
        if action == "reschedule":
            window = (await body(request)).get("window")
            if not isinstance(window, str) or not window.strip():
                raise HTTPException(400, "a new window is required, like 14:00-16:00")
            return dict(await run(cbs.reschedule, cb_id, a, window[:100]))
        return dict(await run(getattr(cbs, action), cb_id, a))

    @router.post("/api/tickets/{number}/page-link")
    async def page_link(request: Request, number: str) -> dict[str, Any]:
        """A fresh ticket page link to give the user (their old ones keep working until revoked);
        only on a ticket the agent may act on (handoff.selfservice.agent_link)."""
        from handoff.selfservice import agent_link

        a = await current(request, write=True)
        try:
            url = await run(agent_link, svc, number, a)
        except ValueError as e:
            raise HTTPException(409, str(e)) from None
        svc_log.info("selfservice.link_issued", ticket=number, agent=a.id)
        return {"url": url}

    @router.post("/api/tickets/{number}/page-link/revoke")
    async def page_link_revoke(request: Request, number: str) -> dict[str, Any]:
        """Every ticket page link of this ticket stops working (a link shared by mistake)."""
        from handoff.selfservice import cli_revoke

        a = await current(request, write=True)
        await run(cli_revoke, svc, number)
        svc_log.info("selfservice.links_revoked_by", ticket=number, agent=a.id)
        return {"ok": True}

    @router.post("/api/contacts/{contact_id}/manager")
    async def manager(request: Request, contact_id: int) -> dict[str, Any]:
        a = await current(request, write=True)
        b = await body(request)
        email = b.get("manager_email")
        tier = b.get("vip")
        if email is not None and not isinstance(email, str):
            raise HTTPException(400, "manager_email must be an agent's e-mail or null")
        if tier is not None and not isinstance(tier, int):
            raise HTTPException(400, "vip must be a number")
        return dict(await run(set_manager, svc, str(contact_id), email or None, tier, a.name, a.role))
