"""The appraisal at its boundaries: quorum, majorities, impossible tallies, publicity to the second, the quota."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

from readers import read_table
from states.appraisal import approve, import_ballot, object_to, resolve, select_excellent, withdrawal
from states.db import make_engine
from states.errors import MalformedFile, NoQuorum, QuotaExceeded, Refused, Unauthorized
from states.models import Appraisal
from states.sample import roster_path
from states.status import member_view
from states.sweep import finalize_ratings, sweep
from tests.fixtures import KEY, SEAL_KEY, at, load_sample

B09 = [r["member_id"] for r in csv.DictReader(roster_path().open(encoding="utf-8")) if r["branch_id"] == "B09"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample campaign swept into consolidation, once per module (each test gets a copy)."""
    path = tmp_path_factory.mktemp("appraisal") / "base.db"
    engine = make_engine(f"sqlite:///{path}")
    from states.db import ensure_schema

    ensure_schema(engine)
    load_sample(engine)
    sweep(engine, KEY, at("2024-08-01T00:00:01"), seal_key=SEAL_KEY)
    sweep(engine, KEY, at("2024-08-08T00:00:01"), seal_key=SEAL_KEY)  # after the written applications
    engine.dispose()
    return path


@pytest.fixture
def db(prepared: Path, tmp_path: Path) -> Iterator[Engine]:
    copy = tmp_path / "c.db"
    shutil.copy(prepared, copy)
    engine = make_engine(f"sqlite:///{copy}")
    yield engine
    engine.dispose()


def ballot(tmp: Path, rows: list[tuple[str, int, int, int]], entitled: int = 12, present: int = 12) -> Path:
    path = tmp / f"ballot-{len(list(tmp.glob('ballot-*')))}.csv"
    lines = ["branch_id,date,entitled,present,member_id,qualified,basically_qualified,unqualified"]
    lines += [f"B09,2024-08-08,{entitled},{present},{m},{q},{b},{u}" for m, q, b, u in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def record_ballot(engine: Engine, path: Path, when: str = "2024-08-08T15:00"):  # noqa: ANN201
    moment = at(when)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        return import_ballot(s, KEY, read_table(path), "M164", moment)


def test_exactly_half_present_is_no_quorum(db: Engine, tmp_path: Path) -> None:
    with pytest.raises(NoQuorum):
        record_ballot(db, ballot(tmp_path, [(B09[1], 6, 0, 0)], entitled=12, present=6))
    result = record_ballot(db, ballot(tmp_path, [(B09[1], 7, 0, 0)], entitled=12, present=7))
    assert result.ratings == {B09[1]: "qualified"}


def test_a_two_two_one_split_is_void(db: Engine, tmp_path: Path) -> None:
    result = record_ballot(db, ballot(tmp_path, [(B09[1], 2, 2, 1), (B09[2], 3, 1, 1)], entitled=5, present=5))
    assert result.void == [B09[1]] and result.ratings == {B09[2]: "qualified"}


def test_more_votes_than_present_is_bad_input_and_changes_nothing(db: Engine, tmp_path: Path) -> None:
    with pytest.raises(MalformedFile, match="line 3"):
        record_ballot(db, ballot(tmp_path, [(B09[1], 10, 0, 0), (B09[2], 10, 2, 1)], present=12))
    with Session(db) as s:
        assert "appraisal" not in member_view(s, KEY, B09[1], at("2024-08-09"))


def test_publicity_ends_exactly_after_its_days(db: Engine, tmp_path: Path) -> None:
    record_ballot(db, ballot(tmp_path, [(m, 12, 0, 0) for m in B09[:3]]))
    with Session(db, expire_on_commit=False) as s, s.begin():
        approve(s, KEY, "B09", "M002", at("2024-08-10T09:00:00"))
    with Session(db) as s, s.begin():
        assert finalize_ratings(s, KEY, at("2024-08-15T08:59:59")) == 0
        assert finalize_ratings(s, KEY, at("2024-08-15T09:00:00")) == 3


def test_an_objection_holds_publicity_open_and_upheld_means_a_new_ballot(db: Engine, tmp_path: Path) -> None:
    record_ballot(db, ballot(tmp_path, [(m, 12, 0, 0) for m in B09[:2]]))
    with Session(db, expire_on_commit=False) as s, s.begin():
        approve(s, KEY, "B09", "M002", at("2024-08-10T09:00"))
        object_to(s, KEY, B09[0], B09[5], "他曾违反规定", at("2024-08-12T09:00"))
        object_to(s, KEY, B09[1], B09[5], "有异议", at("2024-08-12T09:00"))
        with pytest.raises(Unauthorized):
            resolve(s, KEY, B09[0], True, "M164", "", at("2024-08-13T09:00"))  # a secretary may not resolve
    with Session(db) as s, s.begin():
        assert finalize_ratings(s, KEY, at("2024-08-16T09:00")) == 0  # held open
        resolve(s, KEY, B09[0], True, "M001", "属实", at("2024-08-16T10:00"))
        resolve(s, KEY, B09[1], False, "M001", "不属实", at("2024-08-16T10:00"))
        assert finalize_ratings(s, KEY, at("2024-08-16T10:00")) == 1  # the dismissed one ends now
        view = member_view(s, KEY, B09[0], at("2024-08-16T10:00"))
    assert view["appraisal"]["rating"] is None
    assert "member_meeting_ballot" in [u["condition"] for u in view["unmet"]]


def test_the_excellence_quota_is_read_exactly(db: Engine, tmp_path: Path) -> None:
    record_ballot(db, ballot(tmp_path, [(m, 12, 0, 0) for m in B09[:12]]))
    with Session(db, expire_on_commit=False) as s, s.begin():
        approve(s, KEY, "B09", "M002", at("2024-08-10T09:00"))
        finalize_ratings(s, KEY, at("2024-08-15T09:00"))
        with pytest.raises(QuotaExceeded):  # 12 rated × 1/3 = 4
            select_excellent(s, KEY, B09[:5], "M002", at("2024-08-15T10:00"))
        assert select_excellent(s, KEY, B09[:4], "M002", at("2024-08-15T10:00")) == B09[:4]
        with pytest.raises(QuotaExceeded):
            select_excellent(s, KEY, [B09[4]], "M002", at("2024-08-15T10:00"))


def test_a_rating_is_final_once_publicity_has_ended_at_t_with_or_without_a_sweep(db: Engine, tmp_path: Path) -> None:
    record_ballot(db, ballot(tmp_path, [(m, 12, 0, 0) for m in B09[:6]]))
    with Session(db, expire_on_commit=False) as s, s.begin():
        approve(s, KEY, "B09", "M002", at("2024-08-10T09:00"))  # publicity: 5 × 24 h, to 2024-08-15T09:00
    with Session(db) as s, s.begin():
        with pytest.raises(Refused, match="not final"):
            select_excellent(s, KEY, [B09[0]], "M002", at("2024-08-15T08:59:59"))
        view = member_view(s, KEY, B09[0], at("2024-08-15T08:59:59"))
        assert view["appraisal"]["final"] is False
        assert "publicity" in [u["condition"] for u in view["unmet"]]
    with Session(db) as s, s.begin():
        # No sweep has run since the approval: the rating is final at T all the same, for every reader.
        view = member_view(s, KEY, B09[0], at("2024-08-15T09:00"))
        assert view["appraisal"]["final"] is True
        assert "publicity" not in [u["condition"] for u in view["unmet"]]
        assert select_excellent(s, KEY, [B09[0]], "M002", at("2024-08-15T09:00")) == [B09[0]]
        with pytest.raises(Refused, match="not in publicity"):
            object_to(s, KEY, B09[1], B09[5], "too late", at("2024-08-15T09:00"))
    with pytest.raises(Refused, match="already final"):
        record_ballot(db, ballot(tmp_path, [(B09[1], 0, 12, 0)]), when="2024-08-15T10:00")
    with Session(db) as s, s.begin():
        # The sweep that comes later tells the members once and records publicity's end, not its own time.
        assert finalize_ratings(s, KEY, at("2024-08-20T00:05")) == 6
        assert finalize_ratings(s, KEY, at("2024-08-21T00:05")) == 0
        final_at = s.get(Appraisal, (KEY, B09[0])).final_at  # type: ignore[union-attr]
    assert final_at == at("2024-08-15T09:00")


def test_a_pending_objection_keeps_a_rating_from_being_final_past_its_days(db: Engine, tmp_path: Path) -> None:
    record_ballot(db, ballot(tmp_path, [(m, 12, 0, 0) for m in B09[:3]]))  # a quota of one
    with Session(db, expire_on_commit=False) as s, s.begin():
        approve(s, KEY, "B09", "M002", at("2024-08-10T09:00"))
        object_to(s, KEY, B09[0], B09[5], "有异议", at("2024-08-12T09:00"))
    with Session(db) as s, s.begin():
        with pytest.raises(Refused, match="not final"):
            select_excellent(s, KEY, [B09[0]], "M002", at("2024-08-16T09:00"))
        resolve(s, KEY, B09[0], False, "M001", "不属实", at("2024-08-16T10:00"))
        with pytest.raises(Refused, match="not final"):
            select_excellent(s, KEY, [B09[0]], "M002", at("2024-08-16T09:59"))
        assert select_excellent(s, KEY, [B09[0]], "M002", at("2024-08-16T10:00")) == [B09[0]]


def test_withdrawal_needs_confirmation_and_approval(db: Engine) -> None:
    sweep(db, KEY, at("2024-08-16T00:00:01"), seal_key=SEAL_KEY)
    with Session(db, expire_on_commit=False) as s, s.begin():
        assert member_view(s, KEY, "M063", at("2024-08-16T09:00"))["state"] == "withdrawal_pending"
        with pytest.raises(Refused):
            withdrawal(s, KEY, "M063", "M048", "late", at("2024-08-16T09:00"), confirm=False)  # no application
        withdrawal(s, KEY, "M063", "M048", "confirmed", at("2024-08-16T09:00"), confirm=True)
        result = approve(s, KEY, "B03", "M002", at("2024-08-17T09:00"))
        assert result.withdrawn == ["M063"]
        assert member_view(s, KEY, "M063", at("2024-08-17T09:00"))["state"] == "withdrawn"


def test_no_table_can_link_a_voter_to_a_choice(db: Engine) -> None:
    inspector = inspect(db)
    assert set(c["name"] for c in inspector.get_columns("ballot_tally")) == {"meeting_id", "member_id", "outcome"}
    voterish = ("voter", "voted_by", "ballot_by", "cast_by", "choice")
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            assert not any(word in column["name"] for word in voterish), (table, column["name"])




# -- a decision cannot predate what it decides on (issue 14, item 3), in simulated time as in real time -------------


def refused_as_predating(db: Engine, decide) -> None:  # noqa: ANN001
    """`decide(session)` is refused, one line naming what it would predate, and its transaction leaves nothing."""
    with pytest.raises(Refused, match="cannot predate") as caught, Session(db) as s, s.begin():
        decide(s)
    assert "\n" not in str(caught.value)


def test_an_approval_cannot_predate_its_ballot(db: Engine, tmp_path: Path) -> None:
    record_ballot(db, ballot(tmp_path, [(m, 12, 0, 0) for m in B09[:3]]), when="2024-08-08T15:00")
    refused_as_predating(db, lambda s: approve(s, KEY, "B09", "M002", at("2024-08-08T14:59")))
    refused_as_predating(db, lambda s: approve(s, KEY, "B09", "M002", at("2024-08-08T14:59"), reject=True, reason="r"))
    with Session(db) as s:
        assert s.get(Appraisal, (KEY, B09[0])).approved_at is None  # type: ignore[union-attr]
    with Session(db, expire_on_commit=False) as s, s.begin():
        assert approve(s, KEY, "B09", "M002", at("2024-08-08T15:00")).approved == B09[:3]


def test_a_ballot_cannot_predate_the_rating_it_replaces_nor_consolidation(db: Engine, tmp_path: Path) -> None:
    record_ballot(db, ballot(tmp_path, [(B09[0], 12, 0, 0)]), when="2024-08-08T15:00")
    with pytest.raises(Refused, match="cannot predate"):
        record_ballot(db, ballot(tmp_path, [(B09[0], 0, 12, 0)]), when="2024-08-08T14:00")
    with pytest.raises(Refused, match="cannot predate"):  # the member entered consolidation at 2024-08-01T00:00:01
        record_ballot(db, _dated(tmp_path, B09[1], "2024-07-31"), when="2024-07-31T23:00")
    with Session(db) as s:
        assert s.get(Appraisal, (KEY, B09[0])).rating == "qualified"  # type: ignore[union-attr]
        assert s.get(Appraisal, (KEY, B09[1])) is None


def _dated(tmp: Path, member_id: str, date: str) -> Path:
    path = tmp / f"dated-{member_id}.csv"
    path.write_text(
        "branch_id,date,entitled,present,member_id,qualified,basically_qualified,unqualified\n"
        f"B09,{date},12,12,{member_id},12,0,0\n",
        encoding="utf-8",
    )
    return path


def test_an_objection_cannot_predate_the_approval_nor_a_resolution_its_objection(db: Engine, tmp_path: Path) -> None:
    record_ballot(db, ballot(tmp_path, [(m, 12, 0, 0) for m in B09[:2]]))
    with Session(db, expire_on_commit=False) as s, s.begin():
        approve(s, KEY, "B09", "M002", at("2024-08-10T09:00"))
    refused_as_predating(db, lambda s: object_to(s, KEY, B09[0], B09[5], "早了", at("2024-08-10T08:59")))
    with Session(db, expire_on_commit=False) as s, s.begin():
        object_to(s, KEY, B09[0], B09[5], "有异议", at("2024-08-12T09:00"))
    refused_as_predating(db, lambda s: resolve(s, KEY, B09[0], False, "M001", "不属实", at("2024-08-12T08:00")))
    refused_as_predating(db, lambda s: resolve(s, KEY, B09[0], True, "M001", "属实", at("2024-08-11T09:00")))
    with Session(db) as s:
        assert s.get(Appraisal, (KEY, B09[0])).objection_pending is True  # type: ignore[union-attr]
    with Session(db, expire_on_commit=False) as s, s.begin():
        resolve(s, KEY, B09[0], False, "M001", "不属实", at("2024-08-12T09:00"))


def test_a_withdrawal_decision_cannot_predate_the_pending_state_nor_its_confirmation(db: Engine) -> None:
    sweep(db, KEY, at("2024-08-16T00:00:01"), seal_key=SEAL_KEY)  # M063 pending from the consolidation deadline
    refused_as_predating(
        db, lambda s: withdrawal(s, KEY, "M063", "M048", "confirmed", at("2024-08-15T09:00"), confirm=True)
    )
    with Session(db, expire_on_commit=False) as s, s.begin():
        withdrawal(s, KEY, "M063", "M048", "confirmed", at("2024-08-17T09:00"), confirm=True)
    refused_as_predating(db, lambda s: approve(s, KEY, "B03", "M002", at("2024-08-16T12:00")))
    with Session(db) as s:
        assert member_view(s, KEY, "M063", at("2024-08-17T09:00"))["state"] == "withdrawal_pending"
    with Session(db, expire_on_commit=False) as s, s.begin():
        assert approve(s, KEY, "B03", "M002", at("2024-08-17T09:00")).withdrawn == ["M063"]


def test_an_operator_action_cannot_predate_the_subjects_last_change(db: Engine) -> None:
    from states.operations import exempt, refer, retry

    # Every member of B09 entered consolidation at 2024-08-01T00:00:01 (the rectification deadline's sweep).
    before = at("2024-07-31T09:00")
    refused_as_predating(db, lambda s: exempt(s, KEY, B09[3], "M164", "出国", before))
    refused_as_predating(db, lambda s: refer(s, KEY, B09[3], "M002", "立案", before))
    refused_as_predating(db, lambda s: retry(s, KEY, "M164", "补录", before, members=[B09[3]]))
    refused_as_predating(db, lambda s: retry(s, KEY, "M164", "补录", before, branches=["B09"]))
    refused_as_predating(db, lambda s: retry(s, KEY, "M002", "补录", before, all_stuck=True))
    with Session(db) as s:
        assert member_view(s, KEY, B09[3], at("2024-08-02T09:00"))["state"] == "consolidation"
    with Session(db, expire_on_commit=False) as s, s.begin():
        assert exempt(s, KEY, B09[3], "M164", "出国", at("2024-08-01T00:00:01")) == "exempt"  # the same instant: fine


def test_a_ballot_leaves_each_members_outcome_and_no_count_anywhere(db: Engine, tmp_path: Path) -> None:
    """In a branch of few present, counts would tell how each voter voted: none is kept, logged or queued."""
    import json

    from sqlalchemy import select

    from states.models import BallotTally, Notice, TransitionLog

    rows = [(B09[0], 3, 0, 0), (B09[1], 2, 1, 0), (B09[2], 1, 1, 1)]  # three present: 3-0-0, 2-1-0, 1-1-1 (void)
    result = record_ballot(db, ballot(tmp_path, rows, entitled=5, present=3))
    assert result.ratings == {B09[0]: "qualified", B09[1]: "qualified"} and result.void == [B09[2]]
    assert {c["name"] for c in inspect(db).get_columns("ballot_tally")} == {"meeting_id", "member_id", "outcome"}
    with Session(db) as s:
        assert {(t.member_id, t.outcome) for t in s.scalars(select(BallotTally))} == {
            (B09[0], "qualified"), (B09[1], "qualified"), (B09[2], "void")
        }
        reasons = [e.reason for e in s.scalars(select(TransitionLog).where(TransitionLog.cause == "ballot"))]
        notices = [n.context for n in s.scalars(select(Notice).where(Notice.event == "approval_requested"))]
    assert sorted(reasons) == sorted(
        ["rating: qualified", "rating: qualified", "ballot void: no rating had more than half of the votes"]
    )
    for context in notices:  # how many members got each rating, the branch's figure — never a member's votes
        text = json.dumps(context, ensure_ascii=False)
        assert "2, 1, 0" not in text and "1, 1, 1" not in text and "votes" not in text
        assert context["counts"] == {"qualified": 2, "basically_qualified": 0, "unqualified": 0}
        assert all(m not in text for m in B09[:3])  # and no member named beside figures
