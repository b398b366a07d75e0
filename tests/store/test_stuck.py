"""`stuck_list` on SQLite and PostgreSQL: exactly the stuck, each as `explain` sees it, whatever the chunking."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from states.errors import BadInput, NotFound
from states.models import BranchProgress, MemberProgress, Person
from states.status import branch_view, member_view, passed_phases
from states.stuck import stuck_list
from states.sweep import sweep
from tests.fixtures import KEY, SEAL_KEY, at

T = "2024-05-01T09:00"


@pytest.fixture
def fired(sample: Engine) -> Engine:
    """The sample office with its study deadline fired: 25 members and one branch (B08) left behind."""
    sweep(sample, KEY, at("2024-03-25T00:00:01"), seal_key=SEAL_KEY)
    sweep(sample, KEY, at("2024-05-01T00:00:01"), seal_key=SEAL_KEY)
    return sample


def test_every_stuck_member_and_branch_as_explain_sees_them(fired: Engine) -> None:
    when = at(T)
    with Session(fired) as s:
        found = stuck_list(s, KEY, when)
        passed = passed_phases(s, KEY, when)
        expected_members = set(
            s.scalars(select(MemberProgress.member_id).where(MemberProgress.campaign_key == KEY, MemberProgress.state.in_(passed)))
        )
        expected_branches = set(
            s.scalars(select(BranchProgress.branch_id).where(BranchProgress.campaign_key == KEY, BranchProgress.state.in_(passed)))
        )
        assert {e["member_id"] for e in found if e["member_id"]} == expected_members
        assert {e["branch_id"] for e in found if e["member_id"] is None} == expected_branches
        assert len(expected_members) == 25 and expected_branches == {"B08"}
        for entry in found:
            if entry["member_id"] is None:
                view = branch_view(s, KEY, entry["branch_id"], when)
            else:
                view = member_view(s, KEY, entry["member_id"], when)
                assert entry["since"] == view["since"]
                assert entry["branch_id"] == s.get(Person, entry["member_id"]).branch_id  # type: ignore[union-attr]
            assert entry["unmet"] == view["unmet"] and entry["state"] == view["state"] and entry["unmet"]
    # branch by branch: the branch's own entry first, then its members by id
    order = [(e["branch_id"], e["member_id"] is not None, e["member_id"] or "") for e in found]
    assert order == sorted(order)
    assert found[[e["branch_id"] for e in found].index("B08")]["member_id"] is None


def test_chunking_filters_and_refusals(fired: Engine) -> None:
    when = at(T)
    with Session(fired) as s:
        whole = stuck_list(s, KEY, when)
        assert stuck_list(s, KEY, when, branches_per_chunk=1) == whole
        b08 = stuck_list(s, KEY, when, branch="B08")
        assert b08 == [e for e in whole if e["branch_id"] == "B08"] and len(b08) == 15
        hours = stuck_list(s, KEY, when, condition="study_hours")
        assert hours and hours == [e for e in whole if any(u["condition"] == "study_hours" for u in e["unmet"])]
        assert len(hours) < len(whole)
        branch_only = stuck_list(s, KEY, when, condition="discussion_meeting")
        assert [e["member_id"] for e in branch_only] == [None]
        assert stuck_list(s, KEY, at("2024-04-30T23:00")) == []  # before the deadline nobody is stuck
        with pytest.raises(BadInput, match="study_hours"):
            stuck_list(s, KEY, when, condition="hours")
        with pytest.raises(NotFound):
            stuck_list(s, KEY, when, branch="B99")
        with pytest.raises(NotFound):
            stuck_list(s, "nope", when)
