"""Reading mail as it arrives in the wild: charsets, HTML-only mail, quoted replies, broken MIME."""

from __future__ import annotations

import base64
import quopri

import pytest

from channels.email.parse import decode_bytes, decode_header_value, html_to_text, parse_mail, strip_reply


def b64w(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def simple(headers: str, body: bytes, ctype: str = "text/plain; charset=utf-8", cte: str = "8bit") -> bytes:
    return (f"{headers}\r\nMIME-Version: 1.0\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
            ).encode() + body


# -- charsets ----------------------------------------------------------------------------------------


def test_a_gb2312_label_on_gbk_text_still_decodes() -> None:
    # 镕 is in GBK but not in GB2312: clients label GBK mail "gb2312" all the time.
    text = "朱镕基同志的充值问题"
    m = parse_mail(simple(f"From: a@b.cn\r\nSubject: {b64w('镕', 'gbk')}", text.encode("gbk"),
                          "text/plain; charset=gb2312"))
    assert m.body == text and m.subject == "镕" and m.lang_hint == "zh"


def test_big5_and_utf8_bodies_and_q_encoded_headers() -> None:
    big5 = parse_mail(simple("From: =?big5?Q?=B1i=A4T?= <c@d.tw>", "我的提現還沒到帳".encode("big5"),
                             "text/plain; charset=big5"))
    assert big5.body == "我的提現還沒到帳" and big5.from_name == "張三"
    q = quopri.encodestring("Grüße, wo ist mein Geld?".encode()).decode()
    utf = parse_mail(simple("From: x@y.de\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=", q.encode(),
                            "text/plain; charset=utf-8", "quoted-printable"))
    assert utf.subject == "Grüße" and utf.body == "Grüße, wo ist mein Geld?"


def test_raw_8bit_headers_and_wrong_labels_are_guessed() -> None:
    raw = b"From: \xe5\xbc\xa0\xe4\xb8\x89 <z@x.cn>\r\nSubject: \xb3\xe4\xd6\xb5\r\n\r\nhi"  # UTF-8 name, GBK subject
    m = parse_mail(raw)
    assert m.from_name == "张三" and m.subject == "充值" and m.from_addr == "z@x.cn"
    assert decode_bytes("€100".encode("cp1252"), "iso-8859-1") == "€100"
    assert decode_bytes("充值".encode("gb18030"), "x-unknown-charset") == "充值"
    assert decode_bytes(b"\xff\xfe\xfa", "utf-8")  # never raises
    assert decode_header_value("=?x-nonsense?B?AAAA?= tail").endswith("tail")


def test_a_charset_name_python_cannot_look_up_still_gives_the_text() -> None:
    # A NUL in the charset's name made the email package raise ValueError, not fall back
    # (found by tests/unit/test_fuzz.py): in a multipart mail, and in a single 8-bit part.
    multi = (b"From: a@b.cn\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n--B\r\n"
             b"Content-Type: text/plain; charset=\x00tf-8\r\n\r\n\xe6\x88\x91\xe7\x9a\x84 deposit\r\n--B--\r\n")
    assert parse_mail(multi).body == "我的 deposit"
    single = simple("From: a@b.cn", "我的充值 is late".encode(), 'text/plain; charset="\x00x"')
    assert parse_mail(single).body == "我的充值 is late"


# -- HTML and quotes ---------------------------------------------------------------------------------


def test_html_only_mail_becomes_readable_text_with_quotes_marked() -> None:
    html = (
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
        "<div>Hello&nbsp;team,</div><div>my <b>USDT</b> deposit &amp; withdrawal</div>"
        "<ul><li>TxID abc</li><li>network TRC20</li></ul>"
        '<div class="gmail_quote"><div>On Mon, 1 Dec 2026 at 10:00, Support &lt;s@x.com&gt; wrote:</div>'
        "<blockquote>Old answer<br>second line</blockquote></div></body></html>"
    )
    text = html_to_text(html)
    assert "alert" not in text and "color" not in text
    assert "Hello team,\nmy USDT deposit & withdrawal" in text
    assert "• TxID abc\n• network TRC20" in text
    assert "> Old answer\n> second line" in text
    m = parse_mail(simple("From: a@b.c", html.encode(), "text/html; charset=utf-8"))
    assert m.stripped == "Hello team,\nmy USDT deposit & withdrawal\n\n• TxID abc\n• network TRC20"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Still not arrived.\n\nOn Tue, Dec 1, 2026 at 10:00 AM Exchange Support <\nsupport@ex.com> wrote:\n> old", "Still not arrived."),
        ("还是没到账\n\n在 2026年12月1日 10:00，客服 <support@ex.com> 写道：\n> 旧", "还是没到账"),
        ("Thanks\n\n________________________________\nFrom: Support <s@ex.com>\nSent: Monday\nTo: me\nSubject: Re: x\n\nold", "Thanks"),
        ("好的\n\n------------------ 原始邮件 ------------------\n发件人: \"客服\"<s@ex.com>\n发送时间: 2026年12月1日", "好的"),
        ("See below\n\n-----Original Message-----\nFrom: s@ex.com", "See below"),
        ("Here it is\n\n-- \nAlice\n+1 555 0100", "Here it is"),
        ("Where is my BTC\n\nSent from my iPhone", "Where is my BTC"),
        ("提现卡住了\n发自我的iPhone", "提现卡住了"),
        ("> only quoted\n> text", ""),
    ],
)
def test_quoted_replies_and_signatures_are_cut_for_the_nlu(body: str, expected: str) -> None:
    assert strip_reply(body) == expected


def test_a_forward_keeps_the_note_and_the_full_body_keeps_everything() -> None:
    body = "Is this mail from you?\n\n---------- Forwarded message ---------\nFrom: fake@phish.example\nSend your seed"
    m = parse_mail(simple("From: a@b.c\r\nSubject: Fwd: verify", body.encode()))
    assert m.stripped == "Is this mail from you?"
    assert "Send your seed" in m.body


# -- structure ---------------------------------------------------------------------------------------


def test_thread_headers_and_addresses() -> None:
    m = parse_mail(simple(
        "From: \"Chen, Alice\" <Alice.Chen@Example.ORG>\r\nMessage-ID: <m3@example.org>\r\n"
        "In-Reply-To: <sb.1@ex.com>\r\nReferences: <m1@example.org>\r\n <sb.1@ex.com>",
        b"hi",
    ))
    assert (m.from_name, m.from_addr) == ("Chen, Alice", "alice.chen@example.org")
    assert m.message_id == "m3@example.org" and m.in_reply_to == ("sb.1@ex.com",)
    assert m.references == ("m1@example.org", "sb.1@ex.com")


def test_attachments_including_a_forwarded_mail_and_an_inline_image() -> None:
    png = base64.encodebytes(b"\x89PNG\r\n\x1a\nDATA").decode()
    raw = (
        "From: a@b.c\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n"
        "--M\r\nContent-Type: multipart/related; boundary=R\r\n\r\n"
        "--R\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>see <img src=cid:i1></p>\r\n"
        f"--R\r\nContent-Type: image/png\r\nContent-ID: <i1>\r\nContent-Transfer-Encoding: base64\r\n\r\n{png}\r\n--R--\r\n"
        "--M\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@y.z\r\nSubject: original\r\n\r\nforwarded body\r\n"
        "--M--\r\n"
    ).encode()
    m = parse_mail(raw)
    assert m.body == "see"
    kinds = [(a.content_type, a.name) for a in m.attachments]
    assert kinds == [("image/png", "attachment-1"), ("message/rfc822", "attachment-2.eml")]
    assert m.attachments[0].data == b"\x89PNG\r\n\x1a\nDATA"
    assert b"forwarded body" in m.attachments[1].data


def test_broken_mime_is_read_as_far_as_possible_and_never_raises() -> None:
    no_boundary = parse_mail(b"From: a@b.c\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nplease help me\r\n--x--")
    assert "please help me" in no_boundary.body and no_boundary.problems
    bad_b64 = parse_mail(simple("From: a@b.c", b"!!!not base64###", "text/plain; charset=utf-8", "base64"))
    assert bad_b64.from_addr == "a@b.c"
    garbage = parse_mail(b"\x00\xff\xfe garbage \x01 without headers")
    assert garbage.from_addr is None and "\x00" not in garbage.body
    unknown = parse_mail(simple("From: a@b.c", "余额".encode("gbk"), "text/plain; charset=x-martian"))
    assert unknown.body == "余额"


def test_a_delivery_status_notification_names_the_failed_recipient_and_original_mail() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
        b"Final-Recipient: rfc822; Gone@Example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 no such user\r\n\r\n"
        b"--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: s@ex.com\r\nMessage-ID: <sb.42@ex.com>\r\n\r\nbody\r\n--B--\r\n"
    )
    m = parse_mail(raw)
    assert m.report_type == "delivery-status" and m.bounce is not None
    assert m.bounce.recipients == ("gone@example.org",) and m.bounce.status == "5.1.1"
    assert m.bounce.action == "failed" and "550" in m.bounce.diagnostic
    assert m.bounce.original_message_id == "sb.42@ex.com"
