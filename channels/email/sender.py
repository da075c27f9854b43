"""Who really sent a mail: `From:` is written by the sender, so an address counts as the customer's
only when the support mailbox's own receiving server authenticated it.

**Where the evidence comes from.** `Authentication-Results` (RFC 8601) fields added by the
server configured as trusted (`trusted_authserv_id`) — only the topmost ones: a receiving server
prepends its field above everything the sender wrote, and RFC 8601 §5 has it delete fields that
claim its own id, so a field lower down, or with another id, may be the sender's own forgery
and is never read. When the topmost field is not the trusted server's, nothing is trusted.

**What counts** (the DMARC notion of alignment, RFC 7489 §3.1, relaxed: the same organizational
domain, from the Public Suffix List):
- `dmarc=pass` for the From: domain → verified;
- `dkim=pass` with a signing domain (`header.d`, or the domain of `header.i`) aligned with the
  From: domain → verified;
- `spf=pass` with an aligned `smtp.mailfrom` → verified, the weaker signal (a forwarded mail
  loses it, a shared sending IP can grant it), reported as such;
- an explicit `dmarc=fail` wins over anything else; everything else → not verified, with why.

**Addresses.** The From: mailbox is its real addr-spec (never an address written in the display
name); a From: with several mailboxes or none, or a malformed one, is not verified. `Reply-To`
is honoured only for configured relay senders (the no-reply address of our own contact form):
replies go to the person named there, who is *not* verified — anybody can type any address into
a form — and the agent sees both.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import authres
from publicsuffixlist import PublicSuffixList

from channels.email.parse import ParsedMail

if TYPE_CHECKING:
    from channels.email.config import EmailChannelSettings

# Exchange Online writes its Authentication-Results without an authserv-id; this configured id
# stands for "the topmost field that has none".
NO_AUTHSERV_ID = "microsoft-365"
Method = Literal["dmarc", "dkim", "spf", "none"]


@dataclass(frozen=True, slots=True)
class SenderCheck:
    address: str | None  # the From: addr-spec
    verified: bool
    method: Method  # what verified it ("none" when not verified)
    why: str  # for the agent and `email inspect`: "dmarc=pass (header.from=example.org)", …
    reply_address: str | None  # where replies go: From, or Reply-To for a configured relay
    relay: bool = False


@functools.cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def org_domain(domain: str) -> str:
    """The organizational domain (RFC 7489 §3.2): the registrable part under the public suffix."""
    d = domain.strip().strip(".").lower()
    return _psl().privatesuffix(d) or d


def aligned(a: str, b: str) -> bool:
    return bool(a and b) and org_domain(a) == org_domain(b)


@dataclass(frozen=True, slots=True)
class _Result:
    method: str
    result: str
    props: dict[str, str]


def _authserv_id(value: str) -> str:
    head = value.split(";", 1)[0].strip()
    if "=" in head:  # no authserv-id at all (Exchange Online)
        return NO_AUTHSERV_ID
    return head.split()[0].lower() if head else ""


def _parse(value: str) -> list[_Result]:
    if _authserv_id(value) == NO_AUTHSERV_ID:
        value = "none-given; " + value
    try:
        arh = authres.AuthenticationResultsHeader.parse_value(" ".join(value.split()))
    except Exception:  # noqa: BLE001 - authres raises its own syntax errors and more; unparseable = no evidence
        return []
    out: list[_Result] = []
    for r in arh.results:
        props = {f"{p.type}.{p.name}".lower(): str(p.value or "").strip().strip('"').lower() for p in r.properties}
        out.append(_Result(str(r.method).lower(), str(r.result).lower(), props))
    return out


def trusted_results(mail: ParsedMail, trusted_ids: tuple[str, ...]) -> tuple[list[_Result], str]:
    """The results in the topmost Authentication-Results field when a trusted server wrote it,
    and in the fields of that server directly below it (OpenDKIM, OpenDMARC and an SPF checker
    each add their own); nothing past the first other header. With a note when there are none."""
    fields = mail.headers.get("authentication-results", ())
    if not fields:
        return [], "no Authentication-Results"
    ids = {i.lower() for i in trusted_ids}
    first = _authserv_id(fields[0])
    if first not in ids:
        return [], f"topmost Authentication-Results is from {first or '?'}, not a trusted server"
    names = list(mail.header_names) or ["authentication-results"] * len(fields)
    start = names.index("authentication-results")
    results: list[_Result] = []
    for k, value in enumerate(fields):
        if names[start + k : start + k + 1] != ["authentication-results"] or _authserv_id(value) not in ids:
            break
        results.extend(_parse(value))
    return results, "" if results else "no results from the trusted server"


def _domain(addr: str) -> str:
    return addr.rsplit("@", 1)[-1].lower() if "@" in addr else addr.lower()


def verify(mail: ParsedMail, trusted_ids: tuple[str, ...]) -> tuple[bool, Method, str]:
    """(verified, method, why) for the From: address of `mail` (see the module docstring)."""
    if mail.from_addr is None or mail.from_count != 1 or mail.from_problem:
        return False, "none", f"From: is not one mailbox ({mail.from_problem or 'no address'})"
    if not trusted_ids:
        return False, "none", "trusted_authserv_id is not set"
    results, note = trusted_results(mail, trusted_ids)
    if not results:
        return False, "none", note or "no results from the trusted server"
    frm = _domain(mail.from_addr)
    dmarc = [r for r in results if r.method == "dmarc"]
    for r in dmarc:
        hf = r.props.get("header.from", frm)
        if r.result == "fail" and aligned(hf, frm):
            return False, "none", f"dmarc=fail (header.from={hf})"
    for r in dmarc:
        hf = r.props.get("header.from", frm)
        if r.result == "pass" and hf == frm:
            return True, "dmarc", f"dmarc=pass (header.from={hf})"
    seen: list[str] = []
    for r in results:
        if r.method != "dkim":
            continue
        d = r.props.get("header.d") or _domain(r.props.get("header.i", ""))
        if r.result == "pass" and aligned(d, frm):
            return True, "dkim", f"dkim=pass d={d} (aligned with {frm})"
        seen.append(f"dkim={r.result}" + (f" d={d}" if d else "") + (" (not aligned)" if d and not aligned(d, frm) else ""))
    for r in results:
        if r.method != "spf":
            continue
        mf = _domain(r.props.get("smtp.mailfrom", "") or r.props.get("smtp.helo", ""))
        if r.result == "pass" and aligned(mf, frm):
            return True, "spf", f"spf=pass smtp.mailfrom={mf} (aligned with {frm}; SPF only, the weaker signal)"
        seen.append(f"spf={r.result}" + (f" smtp.mailfrom={mf}" if mf else "") + (" (not aligned)" if mf and not aligned(mf, frm) else ""))
    seen += [f"dmarc={r.result}" for r in dmarc]
    return False, "none", "; ".join(seen) or "no DMARC, DKIM or SPF result"


def identify(mail: ParsedMail, cfg: EmailChannelSettings) -> SenderCheck:
    """Verification plus where replies go (Reply-To only for configured relay senders)."""
    ok, method, why = verify(mail, cfg.trusted_authserv_ids)
    relay = mail.from_addr is not None and mail.from_addr in cfg.relay_senders
    if relay:
        rt = mail.reply_to
        if rt is None or rt.addr is None or rt.count != 1:
            return SenderCheck(mail.from_addr, False, "none", f"relay {mail.from_addr} without one Reply-To address",
                               None, relay=True)
        relay_why = f"via the relay {mail.from_addr} ({'verified: ' + why if ok else 'relay not verified: ' + why})"
        return SenderCheck(rt.addr, False, "none", f"address typed into a form, not verified; {relay_why}",
                           rt.addr, relay=True)
    return SenderCheck(mail.from_addr, ok, method, why, mail.from_addr)
