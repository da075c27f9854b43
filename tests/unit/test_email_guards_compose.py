"""Which mail the bot never answers, and what the mail we send looks like."""

from __future__ import annotations

import email
from email import policy

import pytest

from bot.models import Button, Outbound
from channels.email.compose import (
    base_subject,
    compose,
    message_id_for,
    references_for,
    render_html,
    reply_subject,
    ticket_token,
)
from channels.email.guards import classify
from channels.email.parse import parse_mail

OWN = "support@example.com"


def headers(extra: str, sender: str = "alice@example.org") -> bytes:
    return f"From: Alice <{sender}>\r\nSubject: hi\r\n{extra}\r\n\r\nHow do I deposit?".encode()


@pytest.mark.parametrize(
    ("extra", "sender", "verdict"),
    [
        ("", "alice@example.org", ("customer", "")),
        ("Auto-Submitted: no", "alice@example.org", ("customer", "")),
        ("Auto-Submitted: auto-replied; owner-email=x", "alice@example.org", ("auto_reply", "auto_submitted:auto-replied")),
        ("Auto-Submitted: auto-generated", "alice@example.org", ("auto_reply", "auto_submitted:auto-generated")),
        ("Precedence: Bulk", "alice@example.org", ("list", "precedence:bulk")),
        ("Precedence: junk", "alice@example.org", ("list", "precedence:junk")),
        ("List-Id: <news.example.org>", "alice@example.org", ("list", "mailing_list")),
        ("X-Auto-Response-Suppress: DR, OOF", "alice@example.org", ("auto_reply", "x_auto_response_suppress")),
        ("X-Auto-Response-Suppress: RN", "alice@example.org", ("customer", "")),  # read receipts only
        ("X-Autoreply: yes", "alice@example.org", ("auto_reply", "header:x-autoreply")),
        ("X-Switchboard-Loop: support@example.com", "alice@example.org", ("loop", "own_loop_header")),
        ("", "Support@Example.com", ("loop", "own_address")),
        ("", "no-reply@bank.example", ("auto_reply", "noreply_sender")),
        ("", "MAILER-DAEMON@mx.example", ("bounce", "mailer_daemon")),
    ],
)
def test_robots_and_lists_are_never_queued_for_the_bot(extra: str, sender: str, verdict: tuple[str, str]) -> None:
    v = classify(parse_mail(headers(extra, sender)), OWN)
    assert (v.kind, v.reason) == verdict
    assert v.action == ("accept" if v.kind == "customer" else "bounce" if v.kind == "bounce" else "suppress")


def test_a_dsn_is_a_bounce_even_when_it_says_auto_submitted() -> None:
    raw = (b"From: postmaster@mx.example\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B--\r\n")
    assert classify(parse_mail(raw), OWN).action == "bounce"


# -- subjects and threading --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "ticket", "expected"),
    [
        ("Deposit missing", "SB-000123", "Re: Deposit missing [SB-000123]"),
        ("Re: RE: Fwd: Deposit missing [SB-000123]", "SB-000123", "Re: Deposit missing [SB-000123]"),
        ("回复：转发: 充值未到账 [SB-000007]", "SB-000007", "Re: 充值未到账 [SB-000007]"),
        ("AW: Re[2]: Konto [SB-000001]", None, "Re: Konto"),
        ("Re: old [SB-000001]", "SB-000002", "Re: old [SB-000002]"),
        ("", None, "Re: Your support request"),
    ],
)
def test_the_subject_carries_the_ticket_token_exactly_once(original: str, ticket: str | None, expected: str) -> None:
    assert reply_subject(original, ticket, "en") == expected


def test_ticket_tokens_are_found_and_normalised() -> None:
    assert ticket_token("Fwd: Re: problem [ sb-123 ]") == "SB-000123"
    assert ticket_token("SB-000123 without brackets") is None
    assert base_subject("Re: [SB-000001] Re: x") == "x"
    assert reply_subject("", None, "zh") == "Re: 您的咨询"


def test_references_keep_the_root_and_the_latest() -> None:
    chain = " ".join(f"<m{i}@x>" for i in range(20))
    refs = references_for(chain, "<m20@x>").split()
    assert len(refs) == 10 and refs[0] == "<m0@x>" and refs[-1] == "<m20@x>"
    assert references_for("", "<only@x>") == "<only@x>"
    assert references_for("", "") == ""


def _roundtrip(ob: Outbound, automatic: str | None) -> email.message.EmailMessage:
    msg = compose(ob, from_addr=OWN, from_name="交易所客服", to_addr="alice@example.org", subject="Re: 充值 [SB-000001]",
                  message_id=message_id_for(ob.id, "example.com"), in_reply_to="<u1@example.org>",
                  references="<u0@example.org> <u1@example.org>", automatic=automatic)  # type: ignore[arg-type]
    return email.message_from_bytes(msg.as_bytes(), policy=policy.default)  # type: ignore[return-value]


def test_an_automatic_reply_is_stamped_threaded_and_escaped() -> None:
    ob = Outbound(channel="email", conversation_id="email:c", user_id="alice@example.org", kind="answer", lang="zh",
                  text="请使用 <TRC20> 网络 & 检查 memo。\n\n第二段")
    m = _roundtrip(ob, "auto-replied")
    assert m["Auto-Submitted"] == "auto-replied" and m["X-Auto-Response-Suppress"] == "All"
    assert m["X-Switchboard-Loop"] == OWN and m["Content-Language"] == "zh-CN"
    assert str(m["Subject"]) == "Re: 充值 [SB-000001]" and "交易所客服" in str(m["From"])
    assert m["Message-ID"] == f"<sb.{ob.id}@example.com>" and m["In-Reply-To"] == "<u1@example.org>"
    plain = m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = m.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<TRC20>" in plain
    assert "&lt;TRC20&gt;" in html and "<TRC20>" not in html and "&amp;" in html
    assert html.count("<p>") == 2


def test_an_agent_reply_is_not_automatic_and_is_signed() -> None:
    ob = Outbound(channel="email", conversation_id="email:c", user_id="a@b.c", kind="agent", author="Lin",
                  text="Your withdrawal is released.")
    m = _roundtrip(ob, None)
    assert m["Auto-Submitted"] is None and m["X-Auto-Response-Suppress"] is None
    assert m["X-Switchboard-Loop"] == OWN  # it still must not loop if it comes back
    assert "— Lin\n交易所客服" in m.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_buttons_become_a_line_of_options() -> None:
    ob = Outbound(channel="email", conversation_id="c", user_id="a@b.c", kind="system", text="Rate us",
                  buttons=tuple(Button(label=str(i), payload=str(i)) for i in range(1, 6)))
    m = _roundtrip(ob, "auto-generated")
    assert "Reply with one of: 1 / 2 / 3 / 4 / 5" in m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert m["Auto-Submitted"] == "auto-generated"


def test_html_rendering_has_nothing_active() -> None:
    html = render_html('<script>x</script> <a href="http://evil">click</a>', "en")
    assert "<script>" not in html and "<a " not in html and 'lang="en"' in html
