"""What a calendar part of a mail is: an iTIP message (RFC 5546) — an invitation, a cancellation,
or an attendee's answer to an invitation ("Accepted: …").

Only the two facts the guards need are read, from the `text/calendar` part (or an attached
`.ics`): the METHOD (the part's `method=` parameter, else the `METHOD:` line of the calendar)
and the organizer's address. A full iCalendar parser is not needed for that, and none is in the
environment; lines are unfolded (RFC 5545 §3.1) before they are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Methods an attendee's calendar sends back by itself to the organizer: nobody wrote them.
REPLY_METHODS = frozenset({"reply", "counter", "declinecounter", "refresh"})

_METHOD_LINE = re.compile(r"^METHOD\s*:\s*([A-Za-z-]+)\s*$", re.M | re.I)
_ORGANIZER_LINE = re.compile(r"^ORGANIZER[^:\n]*:\s*(?:mailto:)?([^\s@:;]+@[^\s;]+)\s*$", re.M | re.I)
CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar"})


@dataclass(frozen=True, slots=True)
class Itip:
    method: str  # lower-case: request, reply, cancel, publish, counter, …; "" when not stated
    organizer: str | None  # the ORGANIZER's address, lower-case

    @property
    def is_reply(self) -> bool:
        return self.method in REPLY_METHODS


def read_itip(text: str, method_param: str | None = None) -> Itip:
    """The iTIP facts of one calendar part's text (its `method=` parameter wins over the body)."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    method = (method_param or "").strip().lower()
    if not method and (m := _METHOD_LINE.search(unfolded)):
        method = m.group(1).lower()
    org = _ORGANIZER_LINE.search(unfolded)
    return Itip(method, org.group(1).lower() if org else None)
