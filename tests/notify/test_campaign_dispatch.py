"""The sample campaign's notices delivered: to files, and through SMTP to a real aiosmtpd server on 127.0.0.1.

Both channels carry the same messages (Message-ID derived from the key, same subjects); a second dispatch delivers
nothing; a server that refuses then recovers gets the refused notices on the next dispatch; a recipient without an
address is undeliverable on SMTP and still gets a file; each recipient's `locale` picks the language.
"""

from __future__ import annotations

import datetime as dt
import email
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from cli.main import cli
from notices.dispatch import DispatchResult, dispatch
from notices.message import message_id
from states.models import Notice
from states.settings import Settings
from tests.notify.campaign import Driven, copy_db
from tests.notify.smtp import serving

SENT_AT = dt.datetime(2024, 9, 5, 1, 0, tzinfo=dt.UTC)
FROM = "先教办 <office@sfao.example.cn>"


class Recorder:
    """Accepts every message, or refuses the next ones with the replies queued in `refusals`."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.rcpt: list[list[str]] = []
        self.refusals: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusals:
            return self.refusals.pop(0)
        self.received.append(envelope.original_content or envelope.content)
        self.rcpt.append(list(envelope.rcpt_tos))
        return "250 OK"


def header(data: bytes, name: str) -> str:
    """One unfolded ASCII header of raw message bytes (Message-ID, X-Campaign-Key, X-Campaign-Event …)."""
    found = re.search(rb"^" + name.encode() + rb":((?:[^\r\n]|\r\n[ \t])*)", data, re.MULTILINE | re.IGNORECASE)
    assert found, name
    return found.group(1).replace(b"\r\n", b"").strip().decode("ascii")  # a long key is folded before it



@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    with serving(recorder) as port:
        yield recorder, port


@dataclass
class Filed:
    engine: Engine
    outbox: Path
    result: DispatchResult


@pytest.fixture(scope="module")
def filed(driven: Driven, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filed]:
    """A copy of the driven campaign's database dispatched once to files (in batches of 200)."""
    directory = tmp_path_factory.mktemp("filed")
    engine = copy_db(driven.path, directory / "db")
    result = dispatch(engine, Settings(outbox_dir=directory / "outbox", smtp_from=FROM), "file", at=SENT_AT, batch=200)
    yield Filed(engine, directory / "outbox", result)
    engine.dispose()


@pytest.fixture
def db(driven: Driven, tmp_path: Path) -> Iterator[Engine]:
    """A copy of the driven campaign's database, every notice still pending."""
    engine = copy_db(driven.path, tmp_path / "db")
    yield engine
    engine.dispose()


def keep_few(engine: Engine, count: int = 40) -> None:
    """Only the first `count` notices (by id): enough for failure and retry, quick to send."""
    with Session(engine) as session, session.begin():
        ids = list(session.scalars(select(Notice.id).order_by(Notice.id).limit(count)))
        session.execute(delete(Notice).where(Notice.id.not_in(ids)))


def smtp_settings(monkeypatch: pytest.MonkeyPatch, port: int, tmp_path: Path) -> Settings:
    """Read from the environment, as the CLI does."""
    monkeypatch.setenv("CAMPAIGN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CAMPAIGN_SMTP_PORT", str(port))
    monkeypatch.setenv("CAMPAIGN_SMTP_FROM", FROM)
    monkeypatch.setenv("CAMPAIGN_SMTP_TLS", "none")  # the test server is a local relay without TLS
    monkeypatch.setenv("CAMPAIGN_OUTBOX_DIR", str(tmp_path / "unused-outbox"))
    return Settings()


def files(outbox: Path) -> dict[str, bytes]:
    """The outbox's messages, raw, by Message-ID."""
    out = {}
    for path in outbox.glob("*.eml"):
        data = path.read_bytes()
        out[header(data, "Message-ID")] = data
    return out


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def statuses(engine: Engine) -> dict[str, tuple[str, int, str | None]]:
    with Session(engine) as session:
        return {
            k: (s, a, e)
            for k, s, a, e in session.execute(select(Notice.key, Notice.status, Notice.attempts, Notice.last_error))
        }


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def test_files_and_smtp_carry_the_same_messages_once(
    driven: Driven, filed: Filed, tmp_path: Path, smtp: tuple[Recorder, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # (a) files
    db, outbox, file_result = filed.engine, filed.outbox, filed.result
    keys = set(statuses(db))
    assert file_result.sent == len(keys) == sum(driven.counts().values()) and file_result.failed == 0
    written = files(outbox)
    assert set(written) == {message_id(k) for k in keys}
    assert {header(m, "X-Campaign-Key") for m in written.values()} == keys
    assert Counter(header(m, "X-Campaign-Event") for m in written.values()) == driven.counts()
    assert {s for s, _, _ in statuses(db).values()} == {"sent"}

    # (b) SMTP, on a second copy of the same database
    recorder, port = smtp
    other = copy_db(driven.path, tmp_path / "db-smtp")
    try:
        smtp_result = dispatch(other, smtp_settings(monkeypatch, port, tmp_path), "smtp", at=SENT_AT, batch=200)
        no_address = {m for m, p in driven.people.items() if not p["email"]}
        assert no_address, "the sample roster has members without an address"
        unreachable = {k for k in keys if k.split(":", 1)[0] in no_address}
        assert smtp_result.undeliverable == len(unreachable) > 0 and smtp_result.failed == 0
        assert smtp_result.sent == len(keys) - len(unreachable)
        received = {header(m, "Message-ID"): m for m in recorder.received}
        assert len(received) == len(recorder.received)  # one message per notice
        assert set(received) == {message_id(k) for k in keys - unreachable}
        # Byte for byte what the file holds: subject, headers, both bodies (same Date: the same `at`).
        assert {mid: data for mid, data in received.items()} == {mid: written[mid] for mid in received}
        address = {m: p["email"] for m, p in driven.people.items()}
        assert all(
            rcpt == [address[header(data, "X-Campaign-Key").split(":", 1)[0]]]
            for data, rcpt in zip(recorder.received, recorder.rcpt, strict=True)
        )
        sample = next(iter(received.values()))
        assert parse(sample)["Subject"] and text_of(parse(sample))
        after = statuses(other)
        assert {k for k, (s, _, _) in after.items() if s == "undeliverable"} == unreachable
        # … and the file channel wrote theirs all the same.
        assert {message_id(k) for k in unreachable} <= set(written)

        # A second dispatch delivers nothing, on either channel.
        again = dispatch(other, smtp_settings(monkeypatch, port, tmp_path), "smtp", at=SENT_AT)
        assert (again.sent, again.failed, again.undeliverable) == (0, 0, 0)
        assert len(recorder.received) == len(received)
    finally:
        other.dispose()
    before = {p.name: p.stat().st_mtime_ns for p in outbox.iterdir()}
    assert dispatch(db, Settings(outbox_dir=outbox, smtp_from=FROM), "file", at=SENT_AT).sent == 0
    assert {p.name: p.stat().st_mtime_ns for p in outbox.iterdir()} == before


def test_a_refusing_server_records_failures_and_they_are_delivered_next_time(
    db: Engine, tmp_path: Path, smtp: tuple[Recorder, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder, port = smtp
    settings = smtp_settings(monkeypatch, port, tmp_path)
    keep_few(db)
    recorder.refusals = ["451 4.3.0 mailbox busy, try later"] * 7
    first = dispatch(db, settings, "smtp", at=SENT_AT, batch=100)
    assert first.failed == 7
    failed = {k: v for k, v in statuses(db).items() if v[0] == "failed"}
    assert len(failed) == 7
    assert all(attempts == 1 and error and "451" in error for _, attempts, error in failed.values())
    assert set(first.errors or []) and all("451" in e for e in first.errors or [])
    delivered = len(recorder.received)

    second = dispatch(db, settings, "smtp", at=SENT_AT)
    assert (second.sent, second.failed, second.undeliverable) == (7, 0, 0)
    after = statuses(db)
    assert all(after[k] == ("sent", 2, None) for k in failed)
    assert {header(m, "X-Campaign-Key") for m in recorder.received[delivered:]} == set(failed)
    assert {s for s, _, _ in after.values()} == {"sent", "undeliverable"}


def test_the_cli_dispatches_once_and_exits_1_while_the_server_refuses(
    driven: Driven, tmp_path: Path, smtp: tuple[Recorder, int]
) -> None:
    engine = copy_db(driven.path, tmp_path / "cli")
    keep_few(engine)
    engine.dispose()
    recorder, port = smtp
    env = {
        "CAMPAIGN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli' / driven.path.name}",
        "CAMPAIGN_OUTBOX_DIR": str(tmp_path / "cli-outbox"),
        "CAMPAIGN_SMTP_HOST": "127.0.0.1",
        "CAMPAIGN_SMTP_PORT": str(port),
        "CAMPAIGN_SMTP_FROM": "office@sfao.example.cn",
        "CAMPAIGN_SMTP_TLS": "none",
    }
    runner = CliRunner()
    recorder.refusals = ["451 4.3.0 try later"] * 3
    failing = runner.invoke(cli, ["notify", "dispatch", "--channel", "smtp"], env=env)
    assert failing.exit_code == 1, failing.output
    assert "3 条失败" in failing.output
    recovered = runner.invoke(cli, ["notify", "dispatch", "--channel", "smtp"], env=env)
    assert recovered.exit_code == 0, recovered.output
    assert "已发送 3 条" in recovered.output
    assert runner.invoke(cli, ["notify", "dispatch", "--channel", "smtp"], env=env).output.strip() == "没有待发送的通知"


# -- what the messages say -------------------------------------------------------------------------------------


class Delivered(dict[str, bytes]):
    """Every notice of the campaign as its file, by key; `message(key)` parses one."""

    def message(self, key: str) -> EmailMessage:
        return parse(self[key])


@pytest.fixture(scope="module")
def delivered(filed: Filed) -> Delivered:
    return Delivered({header(m, "X-Campaign-Key"): m for m in files(filed.outbox).values()})


def test_the_locale_column_picks_the_language(driven: Driven, delivered: Delivered) -> None:
    for key, data in delivered.items():
        assert header(data, "Content-Language") == driven.people[key.split(":", 1)[0]]["locale"], key
    english = [k for k in delivered if driven.people[k.split(":", 1)[0]]["locale"] == "en"]
    assert {header(delivered[k], "X-Campaign-Event") for k in english} >= {"phase_started", "rating_final"}
    seen = set()
    for key in sorted(delivered):  # one message of each event in each language, read whole
        person = driven.people[key.split(":", 1)[0]]
        event = key.split(":")[1]
        if (event, person["locale"]) in seen:
            continue
        seen.add((event, person["locale"]))
        message = delivered.message(key)
        text = text_of(message)
        if person["locale"] == "en":
            assert text.startswith(f"Dear {person['name']}"), key
            assert "同志" not in text and "please" in text.lower(), key
        else:
            assert text.startswith(f"{person['name']}同志："), key
            assert any("\u4e00" <= ch <= "\u9fff" for ch in str(message["Subject"])), key
    assert len(seen) >= 15


def study_hours(driven: Driven, member: str, day: str) -> int:
    return int(sum(
        float(r["value"]) for r in driven.records
        if r["member_id"] == member and r["kind"] in ("study_self", "study_concentrated") and r["date"] <= day
    ))


def test_chinese_messages_read_right(driven: Driven, delivered: Delivered) -> None:
    name = {m: p["name"] for m, p in driven.people.items()}
    short = driven.shortfalls["short_hours"][0]
    reminder = delivered.message(f"{short}:deadline_reminder:sfao-2024:{short}:study:2024-04-30:1")
    text = text_of(reminder)
    assert f"{name[short]}同志" in text
    assert f"学时 {study_hours(driven, short, '2024-04-30')}/50" in text
    assert "2024年4月30日" in text and "还有1天" in str(reminder["Subject"])

    stuck = delivered.message(f"{short}:member_stuck:sfao-2024:{short}:study")
    assert name[short] in text_of(stuck) and f"{study_hours(driven, short, '2024-04-30')}/50" in text_of(stuck)
    secretary = next(
        m for m, p in driven.people.items()
        if p["branch_id"] == driven.people[short]["branch_id"] and p["role"] == "branch_secretary"
    )
    to_secretary = text_of(delivered.message(f"{secretary}:member_stuck:sfao-2024:{short}:study"))
    assert name[secretary] in to_secretary and name[short] in to_secretary
    # The stored context names neither the branch nor who reads it: dispatch tells the secretary's copy apart.
    assert f"党员{name[short]}同志（{short}）" in to_secretary and "您尚有" not in to_secretary
    assert "您尚有" in text_of(stuck)

    late = driven.shortfalls["late_branches"][0]
    late_sec = next(m for m, p in driven.people.items() if p["branch_id"] == late and p["role"] == "branch_secretary")
    escalation = text_of(delivered.message(f"{late_sec}:branch_escalation:sfao-2024:{late}:study:specific"))
    assert "具体责任人" in escalation and "2024年4月30日" in escalation

    started = text_of(delivered.message(f"{short}:phase_started:sfao-2024:{short}:study"))
    assert "50" in started and "2024年4月30日" in started and name[short] in started

    withdrawn = driven.shortfalls["no_pledge_application"][0]
    assert "书面申请" in text_of(delivered.message(f"{withdrawn}:withdrawal_pending:sfao-2024:{withdrawn}:consolidation"))
    unqualified = driven.shortfalls["unqualified"][0]
    final = text_of(delivered.message(f"{unqualified}:rating_final:sfao-2024:{unqualified}:unqualified"))
    assert "不合格" in final and name[unqualified] in final
    digest = text_of(next(delivered.message(k) for k in delivered if ":daily_digest:" in k and k.endswith("2024-05-01")))
    assert "2024年5月1日" in digest or "2024-05-01" in digest
    for key, data in delivered.items():  # ratings, never vote counts (8-bit bodies: the bytes are the text)
        assert not re.search(r"\d\s*票", data.decode("utf-8")), key
