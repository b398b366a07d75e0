"""The secret ballot: no table links a voter to a choice; tallies appear in no notice, audit entry or report."""

from __future__ import annotations

import datetime as dt
import email
import email.header
import html
import re
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from notices.dispatch import dispatch
from reports.report import write_report
from states.models import TransitionLog
from states.settings import load_settings
from states.sweep import sweep
from tests.fixtures import SEAL_KEY
from tests.reports.campaign import BALLOT_BRANCH, IN_PUBLICITY, KEY, Built, build

VOTER_WORDS = ("voter", "voted_by", "cast_by", "ballot_by", "choice", "vote_of")
TALLY_WORDS = re.compile(r"票数|得票|votes?\b|tall(y|ies)|赞成|反对|弃权", re.IGNORECASE)
# a count next to a vote word: "12票", "票数：12", "12 votes", "votes: 12"
TALLY_FIGURE = re.compile(
    r"\d+\s*票|票数?\s*[:：为]?\s*\d+|\d+\s*votes?\b|votes?\W{0,3}\d+|tall(y|ies)\W{0,3}\d+|(赞成|反对|弃权)\D{0,3}\d+",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def balloted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, Path, Path]:
    tmp = tmp_path_factory.mktemp("ballot")
    built = build(tmp)
    later = IN_PUBLICITY + dt.timedelta(days=6)
    sweep(built.engine, KEY, later, seal_key=SEAL_KEY)  # publicity ends: rating_final notices
    outbox = tmp / "outbox"
    dispatch(built.engine, load_settings(outbox_dir=outbox), "file", at=later)
    with Session(built.engine) as session:
        write_report(session, KEY, tmp / "final", later)
    return built, outbox, tmp


def _texts(built: Built, outbox: Path, tmp: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes())
        parts = [
            p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8", "replace")
            for p in message.walk() if p.get_content_maintype() == "text"
        ]
        subject = str(email.header.make_header(email.header.decode_header(message["Subject"] or "")))
        # the file's name is a digest of its key: the event is read from the message's header
        texts[f"outbox/{message['X-Campaign-Event']}/{path.name}"] = subject + "\n" + "\n".join(parts)
    for folder in (built.publicity_dir, tmp / "final"):
        for path in folder.glob("*.html"):
            raw = re.sub(r"<(script|style)\b.*?</\1>", " ", path.read_text(encoding="utf-8"), flags=re.S)
            texts[f"{folder.name}/{path.name}"] = html.unescape(re.sub(r"<[^>]+>", " ", raw))
    return texts


def test_no_table_links_a_voter_to_a_choice(balloted: tuple[Built, Path, Path]) -> None:
    built, _, _ = balloted
    inspector = inspect(built.engine)
    for table in inspector.get_table_names():
        columns = [c["name"] for c in inspector.get_columns(table)]
        assert not [c for c in columns if any(w in c for w in VOTER_WORDS)], (table, columns)
    tally = {c["name"] for c in inspector.get_columns("ballot_tally")}
    # one row per rated member: the outcome that stands, never a voter and never the counts behind it
    assert tally == {"meeting_id", "member_id", "outcome"}


def test_tallies_appear_in_no_notice_audit_entry_or_report(balloted: tuple[Built, Path, Path]) -> None:
    built, outbox, tmp = balloted
    texts = _texts(built, outbox, tmp)
    events = {k.split("/")[1] for k in texts if k.startswith("outbox/")}
    assert any("approval_requested" in e or "publicity" in e or "rating_final" in e for e in events), sorted(events)[:5]
    assert sum("评定" in t or "rating" in t.lower() for k, t in texts.items() if k.startswith("outbox/")) > 10
    assert any(k.startswith("publicity/") for k in texts) and any(k.startswith("final/") for k in texts)
    triples = {(r["qualified"], r["basically_qualified"], r["unqualified"]) for r in built.ballot}
    found = []
    side_by_side = re.compile(
        "|".join(rf"(?<!\d){q}\D{{1,12}}(?<!\d){b}\D{{1,12}}(?<!\d){u}(?!\d)" for q, b, u in sorted(triples))
    )
    for name, text in texts.items():
        flat = " ".join(text.split())
        if not TALLY_WORDS.search(flat):
            continue
        for m in side_by_side.finditer(flat):
            around = flat[max(0, m.start() - 60): m.end() + 60]
            if TALLY_WORDS.search(around):  # the three counts side by side, next to a vote word
                found.append((name, around))
        for match in TALLY_FIGURE.finditer(flat):
            found.append((name, flat[max(0, match.start() - 30): match.end() + 30]))
    assert found == [], found[:5]
    with Session(built.engine) as session:
        for entry in session.query(TransitionLog).filter(TransitionLog.branch_id == BALLOT_BRANCH):
            line = f"{entry.cause} {entry.reason} {entry.trigger}"
            assert not TALLY_FIGURE.search(line), line
            for q, b, u in triples:
                assert f"{q}/{b}/{u}" not in line and f"{q},{b},{u}" not in line, line
