"""The `<campaign>-progress` table: one row per branch, or the totals and the most lagging with very many branches."""

from __future__ import annotations

from flows.artifacts import FULL_TABLE_MAX, MOST_LAGGING, progress_key, progress_table


def branch(i: int, state: str, members: dict[str, int], stuck: bool = False) -> dict:
    stuck_members = sum(members.get(s, 0) for s in ("study",)) if stuck else 0
    return {"branch_id": f"B{i:05d}", "state": state, "stuck": stuck, "members": members, "stuck_members": stuck_members}


def test_one_row_per_branch_with_members_per_state() -> None:
    rows, cut = progress_table([branch(1, "study", {"study": 3, "exempt": 1}, stuck=True), branch(2, "analysis", {"analysis": 5})])
    assert not cut
    assert rows == [
        {"branch": "B00001", "state": "study", "stuck": True, "study": 3, "analysis": 0, "exempt": 1, "stuck_members": 3},
        {"branch": "B00002", "state": "analysis", "stuck": False, "study": 0, "analysis": 5, "exempt": 0, "stuck_members": 0},
    ]


def test_very_many_branches_give_the_totals_and_the_most_lagging() -> None:
    many = [branch(i, "analysis", {"analysis": 10}) for i in range(FULL_TABLE_MAX + 100)]
    many[250] = branch(250, "study", {"study": 4, "analysis": 6}, stuck=True)
    many[7] = branch(7, "study", {"study": 9, "analysis": 1}, stuck=True)
    rows, cut = progress_table(many)
    assert cut and len(rows) == 1 + MOST_LAGGING
    assert rows[0]["branch"] == "ALL (300 branches)"
    assert rows[0]["study"] == 13 and rows[0]["stuck_members"] == 13 and rows[0]["stuck"] == 2
    assert [r["branch"] for r in rows[1:3]] == ["B00007", "B00250"]  # earliest state, then most stuck members


def test_the_key_names_the_campaign() -> None:
    assert progress_key("sfao-2024") == "sfao-2024-progress"
