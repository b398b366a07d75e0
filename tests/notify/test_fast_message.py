"""The file channel's fast serialisation (`message_bytes`) reads exactly as `build_message`'s message."""

from __future__ import annotations

import datetime as dt
import email
import itertools
from email import policy
from email.message import EmailMessage

import pytest

from notices.channels import _FILE_POLICY
from notices.message import build_message, message_bytes
from notices.render import make_environment, render_notice
from states import labels
from states.outbox import EVENTS
from tests.notify.test_render import FORMULA, HOSTILE, sample_contexts

AT = dt.datetime(2024, 5, 1, 1, 2, 3, tzinfo=dt.UTC)
HEADERS = ("Subject", "From", "Date", "Message-ID", "Auto-Submitted", "X-Campaign-Event", "X-Campaign-Key",
           "Content-Language", "MIME-Version")
SENDERS = ("先教办 <office@example.org>", "office@example.org", "Campaign Office <office@example.org>")
NAMES = ("王建华", HOSTILE, FORMULA, 'Smith, "Jo" \\ Ann', "Li Wei")


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def same(fast: EmailMessage, slow: EmailMessage) -> None:
    for name in HEADERS:
        assert str(fast[name]) == str(slow[name]), name
    assert [(a.display_name, a.addr_spec) for a in fast["To"].addresses] == [
        (a.display_name, a.addr_spec) for a in slow["To"].addresses
    ]
    assert [g.display_name for g in fast["To"].groups] == [g.display_name for g in slow["To"].groups]
    assert fast.get_content_type() == slow.get_content_type() == "multipart/alternative"
    fast_parts, slow_parts = list(fast.iter_parts()), list(slow.iter_parts())
    assert [p.get_content_type() for p in fast_parts] == [p.get_content_type() for p in slow_parts]
    for f, s in zip(fast_parts, slow_parts, strict=True):
        assert f.get_content_charset() == s.get_content_charset() == "utf-8"
        assert f["Content-Transfer-Encoding"] == s["Content-Transfer-Encoding"] == "8bit"
        assert f.get_content() == s.get_content()


@pytest.mark.parametrize(("event", "locale"), list(itertools.product(EVENTS, labels.LOCALES)))
def test_fast_bytes_read_as_the_built_message(event: str, locale: str) -> None:
    env = make_environment()
    cases = itertools.product(NAMES, ("m@example.org", None))
    for (name, address), sender in zip(cases, itertools.cycle(SENDERS), strict=False):
        rendered = render_notice(env, event, locale, sample_contexts(name=name, email_addr=address)[event])
        key = f"M001:{event}:sfao-2024:M001:study:{name[:3]}"
        data = message_bytes(key, event, sender, name, address, rendered, sent_at=AT)
        assert data is not None
        assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
        slow = build_message(key, event, sender, name, address, rendered, sent_at=AT)
        same(parse(data), parse(slow.as_bytes(policy=_FILE_POLICY)))


def test_a_line_break_or_a_long_line_takes_the_full_path() -> None:
    env = make_environment()
    rendered = render_notice(env, "member_stuck", "zh-CN", sample_contexts()["member_stuck"])
    assert message_bytes("k", "member_stuck", "o@example.org", "王\r\nBcc: x@y", "m@example.org", rendered, sent_at=AT) is None
    long = rendered.__class__(subject=rendered.subject, text="长" * 400 + "\n", html=rendered.html, locale="zh-CN")
    assert message_bytes("k", "member_stuck", "o@example.org", "王", "m@example.org", long, sent_at=AT) is None


def test_bytes_to_a_server_without_8bitmime_go_quoted_printable_and_read_the_same() -> None:
    import socket

    from aiosmtpd.controller import Controller

    from notices.channels import SmtpChannel

    class Keep:
        content: bytes = b""

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            Keep.content = envelope.original_content  # type: ignore[attr-defined]
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(Keep(), hostname="127.0.0.1", port=port, decode_data=True)  # no 8BITMIME then
    controller.start()
    try:
        env = make_environment()
        rendered = render_notice(env, "member_stuck", "zh-CN", sample_contexts()["member_stuck"])
        data = message_bytes("k:1", "member_stuck", "o@example.org", "王建华", "m@example.org", rendered, sent_at=AT)
        assert data is not None
        channel = SmtpChannel("127.0.0.1", port, None, None, "o@example.org", timeout=5, tls="none")
        channel.send_bytes("k:1", data, ["m@example.org"])
        channel.close()
    finally:
        controller.stop()
    assert Keep.content.isascii() and b"quoted-printable" in Keep.content
    received, sent = parse(Keep.content), parse(data)
    assert received["Subject"] == sent["Subject"] == rendered.subject
    assert [p.get_content() for p in received.iter_parts()] == [p.get_content() for p in sent.iter_parts()]
