"""Imports through the bulk (staging-table) path behave exactly as the row-by-row ones did: the first bad row named
by file, line and column, in the same order of checks; atomic; idempotent by content; a ref identifies a row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from readers import read_table
from states.errors import MalformedFile
from states.models import BranchHistory, Evidence, MemberProgress, Person, TransitionLog
from states.records import KIND_LIST, import_records
from states.roster import import_roster
from tests.fixtures import at, load_sample

HEADER = "member_id,branch_id,kind,date,value,ref\n"
WHEN = at("2024-03-02T09:00")


@pytest.fixture
def office(engine: Engine) -> Engine:
    load_sample(engine, records=False)
    return engine


def _records(engine: Engine, tmp_path: Path, body: str, name: str = "r.csv", header: str = HEADER,
             encoding: str = "utf-8") -> object:
    path = tmp_path / name
    path.write_bytes((header + body).encode(encoding))
    with Session(engine) as session, session.begin():
        return import_records(session, read_table(path), "M002", WHEN)


def _error(engine: Engine, tmp_path: Path, body: str, header: str = HEADER) -> str:
    with pytest.raises(MalformedFile) as caught:
        _records(engine, tmp_path, body, header=header)
    return str(caught.value).split("r.csv", 1)[1]


def _evidence(engine: Engine) -> list[tuple]:
    with Session(engine) as session:
        return [
            tuple(r)
            for r in session.execute(
                select(Evidence.member_id, Evidence.branch_id, Evidence.kind, Evidence.date, Evidence.value,
                       Evidence.num, Evidence.ref).order_by(Evidence.id)
            )
        ]


def test_rows_land_in_file_order_with_their_numbers(office: Engine, tmp_path: Path) -> None:
    result = _records(
        office, tmp_path,
        "M005,B01,study_self,2024-03-26,2.5,\n"
        "M005,B01,study_self,2024-03-26,2.5,\n"  # identical rows are distinct facts
        ",B01,mobilization_meeting,2024-03-26,20,a1\n"
        "M005,B01,study_check,2024-03-27,pass,a2\n"
        ",B01,opinions_solicited,2024-03-27,3,\n"
        ",B01,discussion_meeting,2024-03-28,,\n",
    )
    assert (result.added, result.updated, result.unchanged) == (6, 0, False)
    assert _evidence(office) == [
        ("M005", "B01", "study_self", dt.date(2024, 3, 26), "2.5", 2.5, None),
        ("M005", "B01", "study_self", dt.date(2024, 3, 26), "2.5", 2.5, None),
        (None, "B01", "mobilization_meeting", dt.date(2024, 3, 26), "20", 20.0, "a1"),
        ("M005", "B01", "study_check", dt.date(2024, 3, 27), "pass", None, "a2"),
        (None, "B01", "opinions_solicited", dt.date(2024, 3, 27), "3", 3.0, None),
        (None, "B01", "discussion_meeting", dt.date(2024, 3, 28), "", None, None),
    ]


def test_same_file_twice_changes_nothing_and_a_known_ref_corrects(office: Engine, tmp_path: Path) -> None:
    body = "M005,B01,study_self,2024-03-26,2,x1\nM005,B01,study_self,2024-03-27,3,x2\n"
    assert _records(office, tmp_path, body).added == 2
    assert _records(office, tmp_path, body).unchanged
    again = _records(office, tmp_path, "M005,B01,study_self,2024-03-26,2,x1\nM005,B01,study_self,2024-03-27,4,x2\n"
                     "M005,B01,study_self,2024-03-28,1,x3\n", name="r2.csv")
    assert (again.added, again.updated) == (1, 1)
    rows = _evidence(office)
    assert [(r[4], r[5], r[6]) for r in rows] == [("2", 2.0, "x1"), ("4", 4.0, "x2"), ("1", 1.0, "x3")]


def test_gb18030_is_detected(office: Engine, tmp_path: Path) -> None:
    result = _records(office, tmp_path, "M005,B01,good_deed,2024-03-26,扶贫帮困,g1\n", encoding="gb18030")
    assert result.added == 1
    assert _evidence(office)[0][4] == "扶贫帮困"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("M005,B01,nap,2024-03-26,1,\n", ", line 2, column kind: unknown kind 'nap'; the kinds: " + KIND_LIST),
        (",B01,study_self,2024-03-26,1,\n", ", line 2, column member_id: study_self is a member's record: member_id is required"),
        ("M005,B01,mobilization_meeting,2024-03-26,1,\n",
         ", line 2, column member_id: mobilization_meeting is a branch's record: leave member_id empty"),
        ("M 5,B01,study_self,2024-03-26,1,\n", ", line 2, column member_id: 'M 5' is not an id (letters, digits, _ . -)"),
        ("M005,B/1,study_self,2024-03-26,1,\n", ", line 2, column branch_id: 'B/1' is not an id (letters, digits, _ . -)"),
        ("M005,B01,study_self,2024-02-30,1,\n", ", line 2, column date: '2024-02-30' is not a date (YYYY-MM-DD, YYYY/M/D or YYYY年M月D日)"),
        ("M005,B01,study_self,1899-12-31,1,\n", ", line 2, column date: 1899-12-31 is not a plausible date"),
        ("M005,B01,study_self,2024-03-26,1," + "r" * 201 + "\n", ", line 2, column ref: is longer than 200 characters"),
        ("M005,B99,study_self,2024-03-26,1,\n", ", line 2, column branch_id: unknown branch 'B99'"),
        ("M999,B01,study_self,2024-03-26,1,\n", ", line 2, column member_id: unknown member 'M999'"),
        ("M005,B02,study_self,2024-03-26,1,\n", ", line 2, column branch_id: member M005 never belonged to branch B02"),
        ("M005,B01,study_self,2024-03-26,25,\n", ", line 2, column value: '25' is outside 0..24"),
        ("M005,B01,study_self,2024-03-26,lots,\n", ", line 2, column value: 'lots' is not a number"),
        ("M005,B01,study_check,2024-03-26,ok,\n", ", line 2, column value: study_check is 'pass' or 'fail', not 'ok'"),
        ("M005,B01,satisfaction_evaluation,2024-03-26,101,\n", ", line 2, column value: '101' is outside 0..100"),
        (",B01,opinions_solicited,2024-03-26,1.5,\n", ", line 2, column value: '1.5' is not a whole count"),
        (",B01,discussion_meeting,2024-03-26,2.5,\n", ", line 2, column value: '2.5' is not a whole number signed in"),
        (",B01,discussion_meeting,2024-03-26,25,\n", ", line 2, column value: 25 signed in, but the branch has 24 participants"),
        ("M005,B01,good_deed,2024-03-26," + "v" * 2001 + ",\n", ", line 2, column value: is longer than 2000 characters"),
        ("M005,B01,study_self,2024-03-26,1,d\nM005,B01,study_self,2024-03-27,1,d\n",
         ", line 3, column ref: ref 'd' is already on line 2"),
        ("M005,B01,study_self,2024-03-26,1\n", ", line 2: has 5 fields, the header 6"),
    ],
)
def test_each_check_names_line_and_column(office: Engine, tmp_path: Path, body: str, expected: str) -> None:
    assert _error(office, tmp_path, body) == expected
    assert _evidence(office) == []


def test_checks_keep_their_order(office: Engine, tmp_path: Path) -> None:
    """Malformed fields anywhere come before facts that do not fit the roster; those come in line order."""
    ok = "M005,B01,study_self,2024-03-26,1,\n"
    # A bad kind on line 5 is found before an unknown branch on line 3.
    assert _error(office, tmp_path, ok + "M005,B99,study_self,2024-03-26,1,\n" + ok + "M005,B01,nap,2024-03-26,1,\n") \
        == ", line 5, column kind: unknown kind 'nap'; the kinds: " + KIND_LIST
    # A value out of range on line 3 before an unknown member on line 4; an unknown branch before a bad value.
    assert _error(office, tmp_path, ok + "M005,B01,study_self,2024-03-26,99,\nM999,B01,study_self,2024-03-26,1,\n") \
        == ", line 3, column value: '99' is outside 0..24"
    assert _error(office, tmp_path, ok + "M999,B99,study_self,2024-03-26,99,\n") \
        == ", line 3, column branch_id: unknown branch 'B99'"
    assert _error(office, tmp_path, "M999,B01,study_self,2024-03-26,99,\n") \
        == ", line 2, column member_id: unknown member 'M999'"
    assert _error(office, tmp_path, "M005,B02,study_self,2024-03-26,99,a\nM005,B01,study_self,2024-03-26,1,a\n") \
        == ", line 2, column branch_id: member M005 never belonged to branch B02"
    assert _error(office, tmp_path, "M005,B01,study_self,2024-03-26,1,a\nM005,B01,study_self,2024-03-26,1,a\n"
                  "M005,B01,study_self,2024-03-26,30,\n") == ", line 3, column ref: ref 'a' is already on line 2"
    assert _error(office, tmp_path, "M005,B01,study_self,2024-03-26,1,a\nM005,B01,study_self,2024-03-26,30,a\n") \
        == ", line 3, column value: '30' is outside 0..24"


def test_a_transferred_member_records_for_old_and_new_branch(office: Engine, tmp_path: Path) -> None:
    roster = Path(tmp_path / "roster.csv")
    text = (Path(__file__).resolve().parents[2] / "states" / "sample" / "roster.csv").read_text(encoding="utf-8")
    roster.write_text(text.replace("M026,严云,B02,亚洲处党支部", "M026,严云,B01,办公室党支部"), encoding="utf-8")
    with Session(office) as session, session.begin():
        result = import_roster(session, read_table(roster), "M002", WHEN)
    assert (result.added, result.updated, result.transferred) == (0, 1, 1)
    assert _records(office, tmp_path, "M026,B02,study_self,2024-03-26,1,\nM026,B01,study_self,2024-03-27,1,\n").added == 2
    with Session(office) as session:
        assert session.get(Person, "M026").branch_id == "B01"  # type: ignore[union-attr]
        assert set(session.execute(select(BranchHistory.branch_id).where(BranchHistory.member_id == "M026")).scalars()) \
            == {"B01", "B02"}
        log = session.execute(select(TransitionLog.cause, TransitionLog.reason, TransitionLog.branch_id)
                              .where(TransitionLog.member_id == "M026")).all()
        assert [tuple(r) for r in log] == [("transfer", "B02 → B01", "B01")]


def test_roster_counts_joins_and_refusals(office: Engine, tmp_path: Path) -> None:
    sample = (Path(__file__).resolve().parents[2] / "states" / "sample" / "roster.csv").read_text(encoding="utf-8")
    path = tmp_path / "roster.csv"
    path.write_text(sample + "N001,新人,B03,B03-name,省外办,member,,en\nN001,新人,B03,B03-name,省外办,member,,en\n",
                    encoding="utf-8")
    with Session(office) as session, session.begin(), pytest.raises(MalformedFile) as caught:
        import_roster(session, read_table(path), "M002", WHEN)
    assert "column branch_name: branch B03 is named" in str(caught.value)
    name = [line for line in sample.splitlines() if ",B03," in line][0].split(",")[3]
    path.write_text(sample + f"N001,新人,B03,{name},省外办,member,,en\nN001,新人,B03,{name},省外办,member,,en\n"
                    f"N002,新人2,B03,{name},新单位,member,n2@x.cn,\n", encoding="utf-8")
    with Session(office) as session, session.begin():
        result = import_roster(session, read_table(path), "M002", WHEN)
    assert (result.added, result.updated, result.transferred, result.joined) == (2, 0, 0, 2)
    with Session(office) as session:
        assert session.get(Person, "N001").locale == "en"  # type: ignore[union-attr]
        assert session.get(Person, "N002").email == "n2@x.cn"  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).select_from(MemberProgress).where(MemberProgress.member_id.in_(
            ["N001", "N002"]))) == 2
    with Session(office) as session, session.begin():
        assert import_roster(session, read_table(path), "M002", WHEN).unchanged
    path.write_text(sample + f"N001,新人,B03,{name},省外办,member,,en\nN001,新人,B03,{name},省外办,member,x@y.cn,en\n",
                    encoding="utf-8")
    with Session(office) as session, session.begin(), pytest.raises(MalformedFile) as caught:
        import_roster(session, read_table(path), "M002", WHEN)
    lines = len(sample.splitlines())
    assert str(caught.value).endswith(f"line {lines + 2}, column member_id: N001 appears twice with different values")


def test_role_and_branch_changes_are_logged_one_by_one_on_each_dialect(office: Engine, tmp_path: Path) -> None:
    """The roster's merge stays set-wise: each change of role or branch is one entry (old → new), inspectors too."""
    roster = Path(tmp_path / "roster.csv")
    text = (Path(__file__).resolve().parents[2] / "states" / "sample" / "roster.csv").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    changed = []
    for line in lines:
        if line.startswith("M027,"):
            line = line.replace(",member,", ",branch_secretary,")
        elif line.startswith("I01,"):  # an inspector joins a branch as a member: a branch change from none
            line = line.replace("I01,王耳龙,,,省委巡视组,inspector,", "I01,王耳龙,B01,办公室党支部,省委巡视组,member,")
        changed.append(line)
    roster.write_text("".join(changed), encoding="utf-8")
    with Session(office) as session, session.begin():
        result = import_roster(session, read_table(roster), "M002", WHEN)
    assert (result.updated, result.transferred) == (2, 1)
    with Session(office) as session:
        log = session.execute(
            select(TransitionLog.member_id, TransitionLog.cause, TransitionLog.reason, TransitionLog.actor)
            .where(TransitionLog.cause.in_(("role_change", "transfer"))).order_by(TransitionLog.id)
        ).all()
    assert [tuple(r) for r in log] == [
        ("I01", "transfer", "— → B01", "M002"),
        ("M027", "role_change", "member → branch_secretary", "M002"),
        ("I01", "role_change", "inspector → member", "M002"),
    ]
