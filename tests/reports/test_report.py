"""The HTML reports of the sample campaign: every page, the stuck and why, attendance, escaping, ratings only."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy.orm import Session

import reports
from readers import read_table
from reports import data, render
from reports.render import make_environment
from reports.report import MANIFEST, write_report
from reports.words import KIND_LABELS
from states import labels, sample
from states.db import ensure_schema, make_engine
from states.errors import BadInput, NotFound
from states.evaluate import context
from states.plan import load_plan, read_plan
from states.records import BRANCH_KINDS, MEETINGS, MEMBER_KINDS
from states.roster import import_roster
from states.status import member_view
from tests.reports.campaign import (
    BALLOT_BRANCH,
    EXEMPTED,
    FORMULA_MEMBER,
    FORMULA_NAME,
    HOSTILE_BRANCH,
    HOSTILE_BRANCH_NAME,
    HOSTILE_MEMBER,
    HOSTILE_NAME,
    HOSTILE_REASON,
    IN_PUBLICITY,
    KEY,
    LOADED,
    STUDY_DEADLINE_PASSED,
    Built,
)

STUDY_START, STUDY_END = dt.date(2024, 3, 25), dt.date(2024, 4, 30)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _row(html: str, member_id: str) -> str:
    found = re.search(rf'<tr id="m-{member_id}".*?</tr>', html, re.S)
    assert found, f"no row for {member_id}"
    return found.group(0)


def _branches(built: Built) -> dict[str, str]:
    return {r["branch_id"]: r["branch_name"] for r in built.roster if r["branch_id"]}


def _participants(built: Built, branch_id: str) -> int:
    return sum(1 for r in built.roster if r["branch_id"] == branch_id and r["role"] != "inspector")


# -- pages ---------------------------------------------------------------------------------------------------------


def test_a_page_for_every_branch(built: Built) -> None:
    expected = {"index.html", *(f"branch-{b}.html" for b in _branches(built))}
    assert {p.name for p in built.study_pages} == expected
    assert built.study_pages[0].name == "index.html"
    assert all(p.is_file() and p.parent == built.study_dir for p in built.study_pages)
    index = _read(built.study_dir / "index.html")
    for branch_id in _branches(built):
        assert f'href="branch-{branch_id}.html"' in index


def test_templates_are_autoescaped() -> None:
    env = make_environment()
    assert callable(env.autoescape)
    for name in ("reports/index.html.j2", "reports/branch.html.j2", "reports/publicity.html.j2"):
        assert env.autoescape(name) is True, name
    # The stylesheet is ours and included verbatim.
    assert env.autoescape("reports/_report.css") is False


def test_unknown_campaign(built: Built, tmp_path: Path) -> None:
    with Session(built.engine) as session, pytest.raises(NotFound):
        write_report(session, "no-such-campaign", tmp_path, IN_PUBLICITY)


# -- the stuck, and why --------------------------------------------------------------------------------------------


def _hours_by_study_end(built: Built, member_id: str) -> float:
    return sum(
        float(r["value"])
        for r in built.records
        if r["member_id"] == member_id
        and r["kind"] in ("study_self", "study_concentrated")
        and STUDY_START <= dt.date.fromisoformat(r["date"]) <= STUDY_END
    )


def test_stuck_members_are_listed_with_their_figures(built: Built) -> None:
    index = _read(built.study_dir / "index.html")
    short = built.shortfalls["short_hours"]
    assert short
    for member_id in short:
        hours = labels.format_number(_hours_by_study_end(built, member_id))
        assert f"学时 {hours}/50" in _row(index, member_id), member_id
    failed = labels.describe_unmet("study_check", "fail", "pass", "zh-CN")
    for member_id in built.shortfalls["failed_check"]:
        assert failed in _row(index, member_id)


def test_stuck_figures_on_the_branch_page(built: Built) -> None:
    member_id = built.shortfalls["short_hours"][0]
    branch_id = next(r["branch_id"] for r in built.roster if r["member_id"] == member_id)
    row = _row(_read(built.study_dir / f"branch-{branch_id}.html"), member_id)
    hours = labels.format_number(_hours_by_study_end(built, member_id))
    assert f"学时 {hours}/50" in row and "滞留" in row


def test_the_late_branch_lags_first_with_its_reason(built: Built) -> None:
    (late,) = built.shortfalls["late_branches"]
    index = _read(built.study_dir / "index.html")
    table = index[index.index("<th>党支部</th><th>所处阶段</th>") :]
    first = re.search(r'href="branch-([^"]+)\.html"', table)
    assert first and first.group(1) == late
    stuck = index[index.index('id="stuck"') :]
    assert "保持先进性大讨论：未开展" in stuck
    # Its members are held only by the branch: counted, not listed one by one on the overview.
    assert f"另有 {_participants(built, late)} 名党员" in stuck
    page = _read(built.study_dir / f"branch-{late}.html")
    assert "具体责任人" in page and "保持先进性大讨论：未开展" in page


def test_lagging_branches_come_first(built: Built) -> None:
    index = _read(built.study_dir / "index.html")
    table = index[index.index("<th>党支部</th><th>所处阶段</th>") : index.index('id="stuck"')]
    rows = re.findall(r'<tr class="(lag|)">\s*<td><a href="branch-', table)
    assert rows and "lag" in rows
    assert rows == sorted(rows, key=lambda c: c != "lag")


def test_unmet_conditions_are_those_explain_shows(built: Built) -> None:
    """The set-based evaluation of a whole page agrees, member by member, with `explain` (member_view)."""
    with Session(built.engine) as session:
        found = data.member_results(session, context(session, KEY, IN_PUBLICITY), sorted(_branches(built)))
        assert len(found) > 150
        # member_view costs a few queries a member: every member of the rated branch, and a spread of the rest.
        rated = {r["member_id"] for r in built.ballot}
        sample_ids = sorted(rated | set(sorted(found)[::7]))
        for member_id in sample_ids:
            results = found[member_id]
            view = member_view(session, KEY, member_id, IN_PUBLICITY)
            assert [r.as_dict() for r in results if not r.ok] == view["unmet"], member_id
            assert [{**r.as_dict(), "ok": r.ok} for r in results] == view["conditions"], member_id


def test_a_campaign_not_started_yet(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'early.db'}")
    ensure_schema(engine)
    with Session(engine) as session, session.begin():
        import_roster(session, read_table(sample.roster_path()), "M002", LOADED)
        load_plan(session, read_plan(sample.plan_2024_path())[0], "M002", LOADED)
    with Session(engine) as session:
        pages = write_report(session, KEY, tmp_path / "out", LOADED)
    index = _read(pages[0])
    assert "尚未开始" in index and 'id="stuck"' in index and "没有滞留的党支部和党员" in index


# -- meetings and attendance ---------------------------------------------------------------------------------------


def test_attendance_rate_of_a_known_meeting(built: Built) -> None:
    branch_id = "B01"
    meeting = next(
        r
        for r in built.records
        if r["branch_id"] == branch_id and not r["member_id"] and r["kind"] in MEETINGS
        and dt.date.fromisoformat(r["date"]) <= STUDY_END
    )
    signed, participants = int(meeting["value"]), _participants(built, branch_id)
    rate = f"{signed / participants:.0%}"
    page = _read(built.study_dir / f"branch-{branch_id}.html")
    day = labels.format_date(meeting["date"], "zh-CN")
    pattern = (
        rf"<td>{day}</td>\s*<td>[^<]*</td>\s*<td>{KIND_LABELS[meeting['kind']]}</td>\s*"
        rf'<td class="num">{signed}</td>\s*<td class="num">{participants}</td>\s*<td class="num[^"]*">{rate}</td>'
    )
    assert re.search(pattern, page), (meeting, rate)


def test_meetings_after_t_are_not_shown(built: Built) -> None:
    page = _read(built.study_dir / "branch-B01.html")
    meetings = page[page.index('id="meetings"') : page.index('id="history"')]
    assert "分析会" not in meetings.split("记录统计")[0]


def test_every_evidence_kind_has_a_label() -> None:
    assert set(MEMBER_KINDS) | set(BRANCH_KINDS) <= set(KIND_LABELS)


# -- escaping and offline ------------------------------------------------------------------------------------------


def _all_pages(built: Built) -> list[Path]:
    return built.study_pages + built.publicity_pages


def test_hostile_names_come_out_inert(built: Built) -> None:
    index = _read(built.study_dir / "index.html")
    assert str(escape(HOSTILE_NAME)) in _row(index, HOSTILE_MEMBER)
    assert str(escape("'" + FORMULA_NAME)) in _row(index, FORMULA_MEMBER)  # inert when pasted into a spreadsheet
    hostile_branch = _read(built.study_dir / f"branch-{HOSTILE_BRANCH}.html")
    assert str(escape(HOSTILE_BRANCH_NAME)) in hostile_branch
    assert str(escape(HOSTILE_BRANCH_NAME)) in index
    exempted_branch = next(r["branch_id"] for r in built.roster if r["member_id"] == EXEMPTED)
    assert str(escape(HOSTILE_REASON)) in _read(built.study_dir / f"branch-{exempted_branch}.html")
    for page in _all_pages(built):
        html = _read(page).lower()
        assert "<script" not in html, page
        assert "<img" not in html and "<b onmouseover" not in html, page


def test_pages_are_offline(built: Built) -> None:
    for page in _all_pages(built):
        html = _read(page)
        assert not re.search(r"""(?:src|href|xlink:href)\s*=\s*["']?(?:https?:)?//""", html, re.I), page
        assert "<link" not in html and "@import" not in html and "@font-face" not in html, page
        assert all(ref.startswith("#") for ref in re.findall(r"url\(([^)]*)\)", html)), page


def test_print_css_breaks_sections() -> None:
    css = (render.TEMPLATES_DIR / "reports" / "_report.css").read_text(encoding="utf-8")
    assert "@media print" in css and "break-before: page" in css


# -- the appraisal: ratings only -----------------------------------------------------------------------------------


def test_no_vote_counts_are_read_or_shown(built: Built) -> None:
    assert built.statements
    assert not [s for s in built.statements if "ballot_tally" in s.lower()]
    package = Path(reports.__file__).parent
    for module in package.glob("*.py"):
        assert "BallotTally" not in module.read_text(encoding="utf-8"), module
    for page in _all_pages(built):
        assert "票数：" not in _read(page) and "votes" not in _read(page).lower()


def test_publicity_notice_after_ballot_and_approval(built: Built) -> None:
    names = {r["member_id"]: r["name"] for r in built.roster}
    assert {p.name for p in built.publicity_pages if p.name.startswith("publicity-")} == {
        f"publicity-{BALLOT_BRANCH}.html"
    }
    page = _read(built.publicity_dir / f"publicity-{BALLOT_BRANCH}.html")
    assert "公示期：2024年8月10日 10:00 至 2024年8月15日 10:00（5天）" in page
    assert _branches(built)[BALLOT_BRANCH] in page
    for row in built.ballot:
        votes = {k: int(row[k]) for k in labels.RATINGS}
        rating = max(votes, key=lambda k: votes[k])  # the demo's ratings all stand with a majority
        listed = re.search(rf"<td>\d+</td><td>{re.escape(str(escape(names[row['member_id']])))}</td><td>([^<]+)</td>", page)
        assert listed and listed.group(1) == labels.rating_label(rating, "zh-CN")
    assert "联系人：" in page and "机关党委书记" in page
    index = _read(built.publicity_dir / "index.html")
    assert f'href="publicity-{BALLOT_BRANCH}.html"' in index
    assert 'id="appraisal"' in index
    assert f'href="publicity-{BALLOT_BRANCH}.html"' in _read(built.publicity_dir / f"branch-{BALLOT_BRANCH}.html")


def test_no_appraisal_section_before_any_rating(built: Built) -> None:
    assert 'id="appraisal"' not in _read(built.study_dir / "index.html")


# -- writing -------------------------------------------------------------------------------------------------------


def test_idempotent_and_atomic(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    with Session(built.engine) as session:
        first = write_report(session, KEY, out, IN_PUBLICITY)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in first}
    with Session(built.engine) as session:
        again = write_report(session, KEY, out, IN_PUBLICITY)
    assert again == first
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in again} == before
    # Nothing is left of the staging: the only hidden file is the list of what the report wrote.
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [MANIFEST]
    assert set(json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"]) == {p.name for p in first}


def test_files_it_did_not_write_are_left_alone(built: Built, tmp_path: Path) -> None:
    """Named like a page or not, a file the report did not write is neither removed nor replaced."""
    out = tmp_path / "reports"
    out.mkdir()
    theirs = {"branch-GONE.html": "someone's page", "publicity-OLD.html": "an old notice", "notes.txt": "notes"}
    for name, text in theirs.items():
        (out / name).write_text(text, encoding="utf-8")
    with Session(built.engine) as session:
        pages = write_report(session, KEY, out, IN_PUBLICITY)
        assert {name: (out / name).read_text(encoding="utf-8") for name in theirs} == theirs
        assert "branch-GONE.html" not in json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"]
        # Run again: still theirs, still there.
        write_report(session, KEY, out, IN_PUBLICITY)
    assert {name: (out / name).read_text(encoding="utf-8") for name in theirs} == theirs
    assert all(p.exists() for p in pages)


def test_a_page_it_did_not_write_is_not_replaced(built: Built, tmp_path: Path) -> None:
    """A file where a page would go, put there by someone (or edited since): refused, and nothing is written."""
    out = tmp_path / "reports"
    out.mkdir()
    (out / "index.html").write_text("<p>our own start page</p>", encoding="utf-8")
    with Session(built.engine) as session, pytest.raises(BadInput, match="index.html"):
        write_report(session, KEY, out, IN_PUBLICITY)
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    assert (out / "index.html").read_text(encoding="utf-8") == "<p>our own start page</p>"

    written = tmp_path / "written"
    with Session(built.engine) as session:
        write_report(session, KEY, written, IN_PUBLICITY)
        (written / "branch-B01.html").write_text("edited by hand", encoding="utf-8")
        before = {p.name: p.read_bytes() for p in written.iterdir() if p.is_file()}
        with pytest.raises(BadInput, match="branch-B01.html"):
            write_report(session, KEY, written, STUDY_DEADLINE_PASSED)
    assert {p.name: p.read_bytes() for p in written.iterdir() if p.is_file()} == before
    assert not [p for p in written.iterdir() if p.is_dir()]


def test_a_hand_made_manifest_claims_nothing_that_is_not_ours(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    (out / "branch-GONE.html").write_text("someone's page", encoding="utf-8")
    (out / MANIFEST).write_text(json.dumps({"files": {"branch-GONE.html": ["0" * 64], "../x.html": []}}))
    with Session(built.engine) as session:
        write_report(session, KEY, out, IN_PUBLICITY)
    assert (out / "branch-GONE.html").read_text(encoding="utf-8") == "someone's page"


def test_written_files_are_private(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    os.chmod(tmp_path, 0o755)
    with Session(built.engine) as session:
        pages = write_report(session, KEY, out, IN_PUBLICITY)
    for path in [*pages, out / MANIFEST]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in (out, out.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # a directory that was there is someone's: left as it was


def test_two_reports_into_one_directory_at_once(built: Built, tmp_path: Path) -> None:
    """Concurrent writers take turns at the commit: the list always names what is there, and a later run is not
    refused for pages the other one wrote."""
    out = tmp_path / "reports"

    def one(at: dt.datetime) -> list[Path]:
        with Session(built.engine) as session:
            return write_report(session, KEY, out, at)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, [IN_PUBLICITY, STUDY_DEADLINE_PASSED, IN_PUBLICITY, STUDY_DEADLINE_PASSED]))
    listed = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"]
    assert listed.keys() == {p.name for p in out.glob("*.html")}
    for name, hashes in listed.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() in hashes, name
    assert one(IN_PUBLICITY)


def test_a_fresh_directory_is_created(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    with Session(built.engine) as session:
        pages = write_report(session, KEY, out, IN_PUBLICITY)
    assert (out / "index.html").exists() and len(pages) == len(list(out.glob("*.html")))
    shutil.rmtree(out)
