"""Delivery channels: atomic idempotent `.eml` files, and SMTP against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import email
import functools
import hashlib
import os
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from notices.channels import (
    DeliveryError,
    FileChannel,
    SmtpChannel,
    Undeliverable,
    _seven_bit,
    safe_filename,
)
from notices.message import build_message, message_id
from notices.render import RenderedNotice, make_environment, render_notice
from tests.notify.smtp import free_port, serving

KEY = "M001:deadline_reminder:sfao-2024:study:3"
SUBJECT_WORDS = "距教育学习阶段截止还有3天"
CONTEXT: dict[str, Any] = {
    "recipient": {"member_id": "M001", "name": "王建华", "email": "wang@example.org", "locale": "zh-CN"},
    "campaign": {
        "key": "sfao-2024",
        "title": "省外办保持共产党员先进性教育活动",
        "timezone": "Asia/Shanghai",
    },
    "member": {"member_id": "M001", "name": "王建华"},
    "branch": {"branch_id": "B01", "name": "机关第一党支部"},
    "phase": "study",
    "deadline": "2024-04-30",
    "days_before": 3,
    "unmet": [{"condition": "study_hours", "have": 38, "need": 50}],
}


@functools.cache
def rendered() -> RenderedNotice:
    # Rendered once: these tests are about delivery, and compiling templates per message would dominate them.
    return render_notice(make_environment(), "deadline_reminder", "zh-CN", CONTEXT)


@pytest.fixture(scope="module")
def notice_message() -> EmailMessage:
    return build_message(
        KEY, "deadline_reminder", "先教办 <office@example.org>", "王建华", "wang@example.org", rendered()
    )


def make(key: str, to_addr: str | None = "wang@example.org") -> EmailMessage:
    return build_message(key, "deadline_reminder", "office@example.org", "王建华", to_addr, rendered())


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


# -- file channel ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [KEY, "王建华:rating_final", "../../etc/passwd", "a b\tc", ":::", ""])
def test_file_names_are_safe_and_deterministic(key: str) -> None:
    name = safe_filename(key)
    assert name == safe_filename(key)
    assert name.endswith(".eml") and not name.startswith(".")
    assert all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in name)
    assert "/" not in name and ".." not in name.removesuffix(".eml")


def test_keys_that_sanitise_alike_still_get_different_files() -> None:
    assert safe_filename("a:b") != safe_filename("a/b")
    assert safe_filename("x" * 200 + "1") != safe_filename("x" * 200 + "2")


def test_file_channel_writes_one_parsable_utf8_message(tmp_path: Path, notice_message: EmailMessage) -> None:
    with FileChannel(tmp_path / "outbox") as channel:
        channel.send(KEY, notice_message)
        path = channel.path_for(KEY)
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [path.name]
    data = path.read_bytes()
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    # 8-bit UTF-8 bodies: the Chinese is readable in the file itself.
    assert "学时 38/50".encode() in data
    parsed = parse(data)
    assert parsed["X-Campaign-Key"] == KEY
    assert parsed["X-Campaign-Event"] == "deadline_reminder"
    assert SUBJECT_WORDS in parsed["Subject"]


def test_sending_the_same_key_twice_leaves_one_file(tmp_path: Path) -> None:
    channel = FileChannel(tmp_path)
    channel.send(KEY, make(KEY))
    channel.send(KEY, make(KEY))
    channel.send("another:key", make("another:key"))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([safe_filename(KEY), safe_filename("another:key")])


def test_a_failed_write_leaves_neither_file_nor_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notice_message: EmailMessage
) -> None:
    channel = FileChannel(tmp_path)

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(DeliveryError, match="No space left on device"):
        channel.send(KEY, notice_message)
    assert list(tmp_path.iterdir()) == []


def test_a_resend_replaces_the_file_whole(tmp_path: Path, notice_message: EmailMessage) -> None:
    channel = FileChannel(tmp_path)
    channel.send(KEY, notice_message)
    first = channel.path_for(KEY).stat().st_ino
    channel.send(KEY, notice_message)
    # A new inode: the old file was swapped out by rename, never rewritten in place.
    assert channel.path_for(KEY).stat().st_ino != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# -- SMTP -----------------------------------------------------------------------------------------------------


class Recorder:
    """An aiosmtpd handler that records what it accepts and refuses on demand."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.received: list[tuple[tuple[str, int], str, list[str], bytes]] = []
        self.refusals: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusals:
            return self.refusals.pop(0)
        self.received.append((session.peer, envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"



@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    with serving(recorder) as port:
        yield recorder, port


@pytest.fixture
def server(smtp_server: tuple[Recorder, int]) -> tuple[Recorder, int]:
    smtp_server[0].reset()
    return smtp_server


def channel_for(port: int) -> SmtpChannel:
    return SmtpChannel("127.0.0.1", port, None, None, "先教办 <office@example.org>", timeout=5, tls="none")


def test_smtp_delivers_with_headers_and_a_decoded_chinese_subject(
    server: tuple[Recorder, int], notice_message: EmailMessage
) -> None:
    recorder, port = server
    with channel_for(port) as channel:
        channel.send(KEY, notice_message)
    assert len(recorder.received) == 1
    _, mail_from, rcpt_tos, content = recorder.received[0]
    assert mail_from == "office@example.org"
    assert rcpt_tos == ["wang@example.org"]
    parsed = parse(content)
    assert SUBJECT_WORDS in parsed["Subject"]
    assert parsed["X-Campaign-Event"] == "deadline_reminder"
    assert parsed["X-Campaign-Key"] == KEY
    assert parsed["Message-ID"] == message_id(KEY)
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None and "学时 38/50" in body.get_content()


def test_one_connection_serves_a_batch(server: tuple[Recorder, int]) -> None:
    recorder, port = server
    with channel_for(port) as channel:
        for n in range(3):
            channel.send(f"key:{n}", make(f"key:{n}"))
    assert len(recorder.received) == 3
    assert len({peer for peer, *_ in recorder.received}) == 1


def test_a_refusing_server_raises_then_delivery_succeeds_after_it_recovers(
    server: tuple[Recorder, int],
) -> None:
    recorder, port = server
    recorder.refusals = ["451 try later", "451 try later"]
    with channel_for(port) as channel:
        for _ in range(2):
            with pytest.raises(DeliveryError) as caught:
                channel.send(KEY, make(KEY))
            reason = str(caught.value)
            assert "451 try later" in reason and "\n" not in reason
            assert not caught.value.permanent
        channel.send(KEY, make(KEY))
    assert len(recorder.received) == 1
    assert parse(recorder.received[0][3])["Message-ID"] == message_id(KEY)


def test_a_permanent_refusal_says_so(server: tuple[Recorder, int]) -> None:
    recorder, port = server
    recorder.refusals = ["550 mailbox unavailable"]
    with channel_for(port) as channel, pytest.raises(DeliveryError, match="550") as caught:
        channel.send(KEY, make(KEY))
    assert caught.value.permanent


def test_a_closing_server_is_reconnected_on_the_next_send(server: tuple[Recorder, int]) -> None:
    recorder, port = server
    with channel_for(port) as channel:
        channel.send("key:1", make("key:1"))
        recorder.refusals = ["421 closing connection"]
        with pytest.raises(DeliveryError, match="421"):
            channel.send("key:2", make("key:2"))
        channel.send("key:2", make("key:2"))
    peers = [peer for peer, *_ in recorder.received]
    assert len(peers) == 2 and peers[0] != peers[1]


def test_a_connection_dropped_while_idle_is_reopened_transparently(server: tuple[Recorder, int]) -> None:
    recorder, port = server
    with channel_for(port) as channel:
        channel.send("key:1", make("key:1"))
        assert channel._connection is not None and channel._connection.sock is not None
        channel._connection.sock.close()  # as if the server had timed the idle session out
        channel.send("key:2", make("key:2"))
    assert len(recorder.received) == 2


def test_no_server_is_a_delivery_error() -> None:
    with channel_for(free_port()) as channel, pytest.raises(DeliveryError) as caught:
        channel.send(KEY, make(KEY))
    assert "\n" not in str(caught.value) and "127.0.0.1" in str(caught.value)


def test_a_recipient_without_address_is_undeliverable_not_failed(server: tuple[Recorder, int]) -> None:
    recorder, port = server
    with channel_for(port) as channel, pytest.raises(Undeliverable):
        channel.send(KEY, make(KEY, to_addr=None))
    assert not issubclass(Undeliverable, DeliveryError)
    assert recorder.received == []


def test_for_a_server_without_8bitmime_bodies_become_quoted_printable(notice_message: EmailMessage) -> None:
    converted = _seven_bit(notice_message)
    leaves = [part for part in converted.walk() if not part.is_multipart()]
    assert [part["Content-Transfer-Encoding"] for part in leaves] == ["quoted-printable"] * 2
    assert converted.as_bytes().isascii()
    original = [part.get_content() for part in notice_message.walk() if not part.is_multipart()]
    assert [
        part.get_content() for part in parse(converted.as_bytes()).walk() if not part.is_multipart()
    ] == original
    assert converted["Message-ID"] == notice_message["Message-ID"]


def test_file_names_say_nothing_of_event_or_person() -> None:
    key = "M054:member_stuck:sfao-2024:study"
    name = safe_filename(key)
    assert all(part not in name for part in ("M054", "member_stuck", "stuck", "sfao", "study"))
    assert name.removesuffix(".eml") == hashlib.sha256(key.encode()).hexdigest()[:32]
