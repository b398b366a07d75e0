"""`report --at` a past T: the pages show what was true at T, replayed from the log, and say what cannot be."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from readers import read_table
from reports.data import Facts
from reports.pages import APPRAISAL_UNKNOWN
from reports.report import write_report
from states import appraisal, labels, roster, sample
from states.status import summary
from states.sweep import sweep
from tests import fixtures
from tests.fixtures import SEAL_KEY
from tests.reports.campaign import (
    BALLOT_BRANCH,
    COMMITTEE_SECRETARY,
    IN_PUBLICITY,
    KEY,
    STUDY_DEADLINE_PASSED,
    TZ,
    Built,
    _write,
    build,
)

PUBLICITY_OVER = dt.datetime(2024, 8, 16, 12, 0, tzinfo=TZ).astimezone(dt.UTC)
SELECTED = dt.datetime(2024, 8, 17, 9, 0, tzinfo=TZ).astimezone(dt.UTC)
OBJECTED = dt.datetime(2024, 8, 12, 9, 0, tzinfo=TZ).astimezone(dt.UTC)
CAVEATS = re.compile(r'<aside class="caveats" id="as-of">.*?</aside>\n', re.S)


def _pages(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.html"))}


def _rated(built: Built) -> list[str]:
    return sorted(r["member_id"] for r in built.ballot)


@pytest.fixture(scope="module")
def moved_on(built: Built) -> Built:
    """The campaign after both snapshots: publicity over, ratings final, the pledge phase begun, an excellent member."""
    sweep(built.engine, KEY, PUBLICITY_OVER, seal_key=SEAL_KEY)
    with Session(built.engine) as session:
        finals = [m for m in _rated(built) if (a := session.get(appraisal.Appraisal, (KEY, m))) and a.final_at]
    assert finals
    with _write(built.engine, SELECTED) as session:
        appraisal.select_excellent(session, KEY, finals[:1], COMMITTEE_SECRETARY, SELECTED)
    return built


@pytest.mark.parametrize("when", ["study", "publicity"])
def test_a_past_report_is_the_report_written_then(moved_on: Built, tmp_path: Path, when: str) -> None:
    at, then = (STUDY_DEADLINE_PASSED, moved_on.study_dir) if when == "study" else (IN_PUBLICITY, moved_on.publicity_dir)
    with Session(moved_on.engine) as session:
        # The rows as they stand say something else than they did at T: the report cannot just read them.
        assert summary(session, KEY, at)["members"] != Facts(session, KEY, at).summary()["members"]
        write_report(session, KEY, tmp_path, at)
    written_then, written_now = _pages(then), _pages(tmp_path)
    assert written_now.keys() == written_then.keys()
    for name, html in written_now.items():
        assert 'id="as-of"' in html, name
        assert CAVEATS.sub("", html) == written_then[name], name


def test_the_page_says_what_it_could_not_take_back(moved_on: Built, tmp_path: Path) -> None:
    with Session(moved_on.engine) as session:
        write_report(session, KEY, tmp_path / "past", IN_PUBLICITY)
        now = write_report(session, KEY, tmp_path / "now", SELECTED)
    index = (tmp_path / "past" / "index.html").read_text(encoding="utf-8")
    caveats = CAVEATS.search(index)
    assert caveats and "回放到2024年8月11日 12:00" in caveats.group(0)
    assert "督办通知的发送状态为当前状态" in caveats.group(0)
    # Written at the latest T, nothing needs taking back, and the page says nothing of it.
    assert all('id="as-of"' not in p.read_text(encoding="utf-8") for p in now)


def test_a_stale_page_of_ours_is_removed_and_theirs_kept(moved_on: Built, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    with Session(moved_on.engine) as session:
        write_report(session, KEY, out, IN_PUBLICITY)
        assert (out / f"publicity-{BALLOT_BRANCH}.html").exists()
        (out / "publicity-B01.html").write_text("someone's notice", encoding="utf-8")
        write_report(session, KEY, out, STUDY_DEADLINE_PASSED)
    # At the study deadline there was no rating yet: the notice the report wrote is gone, the other one stays.
    assert not (out / f"publicity-{BALLOT_BRANCH}.html").exists()
    assert (out / "publicity-B01.html").read_text(encoding="utf-8") == "someone's notice"


def test_an_appraisal_undone_later_is_not_shown_as_today(tmp_path: Path) -> None:
    """An objection upheld after T cleared the rating: what it was at T is not in the record, and the page says so."""
    built = build(tmp_path)
    rated = _rated(built)
    objected, other = rated[0], rated[1]
    with _write(built.engine, OBJECTED) as session:
        appraisal.object_to(session, KEY, objected, COMMITTEE_SECRETARY, "异议", OBJECTED)
        appraisal.resolve(session, KEY, objected, True, COMMITTEE_SECRETARY, "异议成立", OBJECTED)
    # And one member of B01 moves to B02 after T: listed under today's branch, which the page says.
    moved = [dict(r) for r in built.roster]
    mover = next(r for r in moved if r["branch_id"] == "B01" and r["role"] == "member")
    b02 = next(r for r in moved if r["branch_id"] == "B02")
    mover.update(branch_id="B02", branch_name=b02["branch_name"], unit=b02["unit"])
    sample.write_csv(tmp_path / "moved.csv", moved, sample.ROSTER_FIELDS)
    with _write(built.engine, OBJECTED) as session:
        assert roster.import_roster(session, read_table(tmp_path / "moved.csv"), COMMITTEE_SECRETARY, OBJECTED).transferred == 1
    with Session(built.engine) as session:
        write_report(session, KEY, tmp_path / "past", IN_PUBLICITY)
    branch = (tmp_path / "past" / f"branch-{BALLOT_BRANCH}.html").read_text(encoding="utf-8")
    row = re.search(rf'<tr id="m-{objected}".*?</tr>', branch, re.S)
    assert row and APPRAISAL_UNKNOWN in row.group(0) and "评定：" not in row.group(0)
    untouched = re.search(rf'<tr id="m-{other}".*?</tr>', branch, re.S)
    assert untouched and "评定：" in untouched.group(0) and APPRAISAL_UNKNOWN not in untouched.group(0)
    index = (tmp_path / "past" / "index.html").read_text(encoding="utf-8")
    assert "1 名党员的评议记录在此时点之后有退回" in index
    assert "此时点之后有 1 名党员转接组织关系" in index
    notice = (tmp_path / "past" / f"publicity-{BALLOT_BRANCH}.html").read_text(encoding="utf-8")
    names = {r["member_id"]: r["name"] for r in built.roster}
    assert names[objected] not in notice and names[other] in notice
    # Ratings only, at a past T as at any other: no vote counts on any page.
    for page in (tmp_path / "past").glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "票数：" not in html and "votes" not in html.lower(), page
    assert labels.rating_label("qualified", "zh-CN") in notice


@pytest.mark.postgres
def test_a_past_report_on_postgresql(tmp_path: Path) -> None:
    """The replay's statements (the log's member index, the chunk's branch states) on PostgreSQL as on SQLite."""
    for engine in fixtures._engine("postgresql", tmp_path):
        built = build(tmp_path, engine)
        sweep(engine, KEY, PUBLICITY_OVER, seal_key=SEAL_KEY)
        with Session(engine) as session:
            write_report(session, KEY, tmp_path / "past-study", STUDY_DEADLINE_PASSED)
            write_report(session, KEY, tmp_path / "past-publicity", IN_PUBLICITY)
        for then, past in ((built.study_dir, "past-study"), (built.publicity_dir, "past-publicity")):
            written_then, written_now = _pages(then), _pages(tmp_path / past)
            assert written_now.keys() == written_then.keys()
            for name, html in written_now.items():
                assert CAVEATS.sub("", html) == written_then[name], (past, name)
