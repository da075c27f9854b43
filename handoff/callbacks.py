"""Callback requests: for VIP users and theft cases, a phone call back.

When such a ticket opens, the user is offered a call back in their language. Their next messages
on the ticket are read for it: a phone number (validated with `phonenumbers`; personal data the
agent needs for the call — kept on the callback, never redacted away, never logged), then a time
window ("14:00-16:00", "明天 9点-11点", "now") in their time zone (the number's own zone when
it has exactly one, else `selfservice.default_tz`). The callback is a task on the ticket with its
own SLA (due `selfservice.callback_sla_min` after the window opens, at the latest when it closes).
Agents work them in the Callbacks view (due soonest first): claim, then done / no answer /
reschedule — each told to the user in their language.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.logs import get_logger
from handoff.models import Agent, Callback, Contact, Ticket
from handoff.service import Conflict, Forbidden, NotFound, TicketError, TicketService, aware, iso

log = get_logger("switchboard.callbacks")

STATE_TTL_S = 2 * 86400
OPEN = ("open", "claimed")

TEXT = {
    "offer": {
        "en": "If you would like a call back, reply with your phone number in international format "
              "(for example +44 7911 123456). Otherwise just ignore this message.",
        "zh": "如需客服回电，请回复您的手机号码（中国大陆号码可直接填写 11 位，其他地区请加国际区号，例如 +852 9123 4567）。"
              "不需要回电请忽略此消息。",
    },
    "bad_phone": {
        "en": "That does not look like a phone number we can call. Please send it in international format, "
              "for example +44 7911 123456.",
        "zh": "这个号码无法识别，请发送有效的手机号码，其他地区请加国际区号，例如 +852 9123 4567。",
    },
    "ask_window": {
        "en": "Thanks. When should we call? Reply with a time window in your time zone ({tz}), for example "
              "\"14:00-16:00\" or \"tomorrow 9-11\", or \"now\".",
        "zh": "谢谢。请告诉我们方便接听的时间段（按您所在时区 {tz}），例如“14:00-16:00”、“明天 9-11点”，或回复“现在”。",
    },
    "bad_window": {
        "en": "Sorry, I could not read that time window. Please write it like \"14:00-16:00\" or \"tomorrow 9-11\".",
        "zh": "抱歉，没有识别出时间段，请按“14:00-16:00”或“明天 9-11点”的格式回复。",
    },
    "booked": {
        "en": "Your call back is booked: we will call {phone} between {start} and {end} ({tz}) about ticket {ticket}. "
              "Our staff will never ask you for your password, 2FA codes or seed phrase on the phone.",
        "zh": "已为您预约回电：我们将在 {start} 至 {end}（{tz}）拨打 {phone}，处理工单 {ticket}。"
              "客服在电话中绝不会索要您的密码、两步验证码或助记词。",
    },
    "done": {
        "en": "We called you about ticket {ticket}. Thank you for your time; reply here if anything is still open.",
        "zh": "我们已就工单 {ticket} 与您通话，感谢您的配合。如仍有问题，请直接回复。",
    },
    "no_answer": {
        "en": "We tried to call {phone} about ticket {ticket} but could not reach you. Reply with a new time window "
              "(for example \"14:00-16:00\") and we will try again.",
        "zh": "我们就工单 {ticket} 拨打了 {phone}，但未能接通。请回复新的方便时间段（例如“14:00-16:00”），我们会再次致电。",
    },
    "rescheduled": {
        "en": "Your call back for ticket {ticket} is moved to {start} – {end} ({tz}).",
        "zh": "工单 {ticket} 的回电时间已改为 {start} 至 {end}（{tz}）。",
    },
}

_WINDOW = re.compile(
    r"(?P<h1>\d{1,2})(?:[:：.](?P<m1>\d{2}))?\s*(?P<ap1>am|pm|点|時|时)?\s*(?:-|–|—|~|～|to|到|至)\s*"
    r"(?P<h2>\d{1,2})(?:[:：.](?P<m2>\d{2}))?\s*(?P<ap2>am|pm|点|時|时)?", re.I)
_NOW = re.compile(r"^\s*(now|asap|right now|现在|马上|立即|尽快)\s*[.!。！]?\s*$", re.I)
_TOMORROW = re.compile(r"tomorrow|明天|明日", re.I)


def _t(key: str, lang: str, **kw: Any) -> str:
    return TEXT[key]["zh" if lang == "zh" else "en"].format(**kw)


def parse_phone(text: str, lang: str) -> phonenumbers.PhoneNumber | None:
    """The first valid phone number in the text; without a +country code, a Chinese user's
    number is read as mainland China's."""
    for region in (None, "CN") if lang == "zh" else (None,):
        for m in phonenumbers.PhoneNumberMatcher(text, region or "ZZ", leniency=phonenumbers.Leniency.VALID):
            return m.number
    return None


# When a number's candidate zones all keep the same time (the UK's +44 7… lists Guernsey, the Isle
# of Man, Jersey and London), the one users recognise.
_PREFERRED_ZONES = ("Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Asia/Shanghai",
                    "Asia/Hong_Kong", "Asia/Singapore", "Asia/Tokyo")


def zone_for(number: phonenumbers.PhoneNumber, default: str) -> str:
    """The number's time zone when it tells one clock time, else `default`."""
    zones = sorted({z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown"})
    if not zones:
        return default
    probes = [datetime(2026, 1, 15, 12, tzinfo=ZoneInfo("UTC")), datetime(2026, 7, 15, 12, tzinfo=ZoneInfo("UTC"))]
    offsets = {tuple(p.astimezone(ZoneInfo(z)).utcoffset() for p in probes) for z in zones}
    if len(offsets) != 1:
        return default  # the US, Russia…: ask-free guess would be wrong for many
    return next((z for z in _PREFERRED_ZONES if z in zones), zones[0])


def _hour(h: int, ap: str | None) -> int:
    ap = (ap or "").lower()
    if ap == "pm" and h < 12:
        return h + 12
    if ap == "am" and h == 12:
        return 0
    return h


def parse_window(text: str, tz: str, now: datetime) -> tuple[datetime, datetime] | None:
    """A time window in zone `tz` from the user's words, as UTC datetimes; the next one to come."""
    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    if _NOW.match(text):
        return now, now + timedelta(hours=2)
    m = _WINDOW.search(text)
    if not m:
        return None
    ap2 = m.group("ap2")
    ap1 = m.group("ap1") or (ap2 if ap2 and ap2.lower() in ("am", "pm") else None)
    h1, h2 = _hour(int(m.group("h1")), ap1), _hour(int(m.group("h2")), ap2)
    m1, m2 = int(m.group("m1") or 0), int(m.group("m2") or 0)
    if not (0 <= h1 <= 23 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60):
        return None
    day = local_now.date() + timedelta(days=1 if _TOMORROW.search(text) else 0)
    start = datetime(day.year, day.month, day.day, h1, m1, tzinfo=zone)
    end = datetime(day.year, day.month, day.day, 0, 0, tzinfo=zone) + timedelta(hours=h2, minutes=m2)
    if end <= start:
        return None
    if end <= local_now:  # today's window is over: the same window tomorrow
        start, end = start + timedelta(days=1), end + timedelta(days=1)
    return max(start, local_now).astimezone(now.tzinfo), end.astimezone(now.tzinfo)


def _fmt(dt: datetime, tz: str, lang: str) -> str:
    local = dt.astimezone(ZoneInfo(tz))
    return local.strftime("%m月%d日 %H:%M" if lang == "zh" else "%d %b %H:%M")


def _key(number: str) -> str:
    return f"callback:{number}"


def wants_offer(t: Ticket, contact: Contact) -> bool:
    """A VIP's ticket the bot's reply made no offer on (theft replies carry it from the bot)."""
    return contact.vip > 0


async def offer(svc: TicketService, t: Ticket, contact: Contact, offered: bool) -> None:
    """On a new theft or VIP ticket: wait for a phone number. The bot's handoff reply carried the
    offer (`offered`, decision `offers`); a VIP the bot did not know as one (a tier set in the
    console) gets it as a message of its own."""
    if not svc.settings.selfservice.callbacks or not (offered or wants_offer(t, contact)):
        return
    await svc.r.hset(_key(t.number or ""), mapping={"step": "phone"})
    await svc.r.expire(_key(t.number or ""), STATE_TTL_S)
    if not offered:
        await svc._outbound(t, _t("offer", t.lang), "system", extra_meta={"callback": "offer"})
    log.info("callback.offered", ticket=t.number)


async def on_user_message(svc: TicketService, s: AsyncSession, t: Ticket, text: str) -> None:
    """A user's message on a ticket with a callback conversation under way."""
    raw = await svc.r.hgetall(_key(t.number or ""))
    state = {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
             for k, v in (raw or {}).items()}
    step = state.get("step") if state else None
    if not step or not text.strip():
        return
    lang = t.lang if t.lang in ("zh", "en") else "en"
    if step == "phone":
        num = parse_phone(text, lang)
        if num is None:
            if re.search(r"\d{5,}", text):  # they tried: say what is wrong; anything else is just a message
                await svc._outbound(t, _t("bad_phone", lang), "system", extra_meta={"callback": "bad_phone"})
            return
        phone = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        tz = zone_for(num, svc.settings.selfservice.default_tz)
        await svc.r.hset(_key(t.number or ""), mapping={"step": "window", "phone": phone, "tz": tz})
        await svc._outbound(t, _t("ask_window", lang, tz=tz), "system", extra_meta={"callback": "ask_window"})
        return
    if step == "window":
        tz = state.get("tz") or svc.settings.selfservice.default_tz
        now = svc.clock()
        win = parse_window(text, tz, now)
        if win is None:
            await svc._outbound(t, _t("bad_window", lang), "system", extra_meta={"callback": "bad_window"})
            return
        await book(svc, s, t, state["phone"], tz, win, now)
        await svc.r.delete(_key(t.number or ""))


def _due(svc: TicketService, start: datetime, end: datetime) -> datetime:
    return min(start + timedelta(minutes=svc.settings.selfservice.callback_sla_min), end)


async def book(svc: TicketService, s: AsyncSession, t: Ticket, phone: str, tz: str,
               win: tuple[datetime, datetime], now: datetime) -> Callback:
    cb = Callback(ticket_id=t.id, phone=phone, tz=tz, window_start=win[0], window_end=win[1],
                  due_at=_due(svc, *win), status="open", attempts=0, created_at=now, updated_at=now)
    s.add(cb)
    svc._audit(s, t, "user", "callback_requested", window=f"{iso(win[0])}/{iso(win[1])}", tz=tz)
    await s.flush()
    lang = t.lang if t.lang in ("zh", "en") else "en"
    await svc._outbound(t, _t("booked", lang, phone=phone, start=_fmt(win[0], tz, lang), end=_fmt(win[1], tz, lang),
                              tz=tz, ticket=t.number), "system", extra_meta={"callback": "booked"})
    log.info("callback.booked", ticket=t.number, callback=cb.id, due=iso(cb.due_at))  # never the number
    await svc.publish({"type": "callback", "callback": callback_json(cb, t, now)})
    return cb


def callback_json(cb: Callback, t: Ticket, now: datetime) -> dict[str, Any]:
    due = aware(cb.due_at)
    end = aware(cb.window_end)
    return {
        "id": cb.id, "ticket": t.number, "status": cb.status, "phone": cb.phone, "tz": cb.tz,
        "lang": t.lang, "topic": t.topic, "vip": t.contact.vip if t.contact else 0,
        "window_start": iso(cb.window_start), "window_end": iso(cb.window_end), "due_at": iso(cb.due_at),
        "sla": "breached" if end and now > end and cb.status in OPEN else ("due" if due and now >= due else "ok"),
        "assignee": {"id": cb.assignee.id, "name": cb.assignee.name} if cb.assignee else None,
        "attempts": cb.attempts,
    }


class Callbacks:
    """The Callbacks view's reads and actions."""

    def __init__(self, svc: TicketService) -> None:
        self.svc = svc

    async def list(self) -> list[dict[str, Any]]:
        now = self.svc.clock()
        async with self.svc.sm() as s:
            rows = (await s.execute(select(Callback).where(Callback.status.in_(OPEN))
                                    .order_by(Callback.due_at, Callback.id))).scalars()
            return [callback_json(cb, cb.ticket, now) for cb in rows]

    async def _act(self, cb_id: int, agent: Agent, action: str, window: str | None = None) -> dict[str, Any]:
        svc = self.svc
        async with svc.sm() as s, s.begin():
            cb = await s.get(Callback, cb_id)
            if cb is None:
                raise NotFound(f"no callback {cb_id}", "callback_not_found", id=cb_id)
            t = cb.ticket
            await s.refresh(t, ["contact"])
            if cb.status not in OPEN:
                raise Conflict(f"this callback is already {cb.status}", "callback_done", status=cb.status)
            if action != "claim" and cb.assignee_id not in (None, agent.id) and agent.role != "supervisor":
                raise Forbidden("this callback is claimed by someone else", "callback_claimed_elsewhere")
            now = svc.clock()
            lang = t.lang if t.lang in ("zh", "en") else "en"
            if action == "claim":
                if cb.assignee_id not in (None, agent.id):
                    raise Conflict(f"already claimed by {cb.assignee.name if cb.assignee else 'someone'}", "callback_claimed",
                           name=cb.assignee.name if cb.assignee else "")
                cb.assignee_id, cb.status = agent.id, "claimed"
            elif action == "done":
                cb.status = "done"
                await svc._outbound(t, _t("done", lang, ticket=t.number), "agent", author=agent.name,
                                    extra_meta={"callback": "done"})
            elif action == "no_answer":
                cb.status, cb.attempts = "no_answer", cb.attempts + 1
                await svc._outbound(t, _t("no_answer", lang, ticket=t.number, phone=cb.phone), "agent",
                                    author=agent.name, extra_meta={"callback": "no_answer"})
                # Their next time window books the call again.
                await svc.r.hset(_key(t.number or ""), mapping={"step": "window", "phone": cb.phone, "tz": cb.tz})
                await svc.r.expire(_key(t.number or ""), STATE_TTL_S)
            elif action == "reschedule":
                win = parse_window(window or "", cb.tz, now)
                if win is None:
                    raise TicketError("give the new window like 14:00-16:00 or tomorrow 9-11 (the user's time zone)", "callback_window")
                cb.window_start, cb.window_end = win
                cb.due_at, cb.status, cb.assignee_id = _due(svc, *win), "open", None
                await svc._outbound(t, _t("rescheduled", lang, ticket=t.number, start=_fmt(win[0], cb.tz, lang),
                                          end=_fmt(win[1], cb.tz, lang), tz=cb.tz), "agent", author=agent.name,
                                    extra_meta={"callback": "rescheduled"})
            else:
                raise TicketError(f"unknown callback action {action!r}", "callback_action", action=action)
            cb.updated_at = now
            svc._audit(s, t, agent.name, f"callback_{action}", callback=cb.id)
            await s.flush()
            await s.refresh(cb, ["assignee"])
            out = callback_json(cb, t, now)
            log.info("callback.action", callback=cb.id, ticket=t.number, action=action, agent=agent.id)
        await svc.publish({"type": "callback", "callback": out})
        return out

    async def claim(self, cb_id: int, agent: Agent) -> dict[str, Any]:
        return await self._act(cb_id, agent, "claim")

    async def done(self, cb_id: int, agent: Agent) -> dict[str, Any]:
        return await self._act(cb_id, agent, "done")

    async def no_answer(self, cb_id: int, agent: Agent) -> dict[str, Any]:
        return await self._act(cb_id, agent, "no_answer")

    async def reschedule(self, cb_id: int, agent: Agent, window: str) -> dict[str, Any]:
        return await self._act(cb_id, agent, "reschedule", window)


async def due_tick(svc: TicketService) -> list[int]:
    """Callbacks that reached their due time without being done: every console is told once per
    due time (a reschedule sets a new one). Returns their ids."""
    now = svc.clock()
    out: list[dict[str, Any]] = []
    async with svc.sm() as s:
        rows = (await s.execute(select(Callback).where(Callback.status.in_(OPEN), Callback.due_at <= now))).scalars()
        for cb in rows:
            if await svc.r.set(f"callback:alerted:{cb.id}:{iso(cb.due_at)}", "1", nx=True, ex=7 * 86400):
                out.append(callback_json(cb, cb.ticket, now))
    for cj in out:
        log.warning("callback.due", callback=cj["id"], ticket=cj["ticket"], due=cj["due_at"])  # never the number
        await svc.publish({"type": "callback_due", "callback": cj})
    return [cj["id"] for cj in out]


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
