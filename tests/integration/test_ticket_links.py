"""Every acknowledgement carries the ticket page link: channels without an acknowledgement of
their own (widget, Telegram, X) get one line with the number and the link, in the user's
language, once per new ticket; none without web.public_url."""

from __future__ import annotations

import orjson

from bot.models import Action, Decision, Message, Outbound, Priority
from handoff.selfservice import TicketLinks
from handoff.service import TicketService
from tests.integration.test_tickets import svc  # noqa: F401 - fixture


def handoff(text: str, user: str, lang: str, channel: str = "telegram") -> dict:  # type: ignore[type-arg]
    m = Message(channel=channel, channel_message_id=text[:20] + user, conversation_id=f"{channel}:{user}",
                user_id=user, text=text, lang=lang)  # type: ignore[arg-type]
    d = Decision(message_id=m.id, conversation_id=m.conversation_id, channel=channel, action=Action.HANDOFF,
                 topic="human", intent="human_request_agent", confidence=0.9, priority=Priority.NORMAL,
                 reply="…", lang=lang)  # type: ignore[arg-type]
    return orjson.loads('{"decision":' + d.to_json() + ',"message":' + m.to_json() + "}")


async def test_a_new_ticket_sends_its_page_link_once_in_the_users_language(svc: TicketService) -> None:  # noqa: F811
    links = TicketLinks(svc.r, "https://support.example.com", 86400)
    await svc.handle_event(handoff("agent please", "u0", "en"))  # no links wired: nothing extra
    assert await svc.r.xlen("outbound:telegram") == 0
    svc.ticket_link = links.url
    await svc.handle_event(handoff("我要人工客服", "u1", "zh"))
    await svc.handle_event(handoff("还在吗？", "u1", "zh"))  # the same ticket: no second link
    obs = [Outbound.from_json(f["d"]) for _, f in await svc.r.xrange("outbound:telegram")]
    assert len(obs) == 1
    assert obs[0].text.startswith("您的工单号为 SB-000002。") and "https://support.example.com/ticket#SB-000002." in obs[0].text
    token = obs[0].text.rsplit("#", 1)[1]
    assert await links.check(token) == "SB-000002"
