"""The sample office, its plans and the demo evidence keep their invariants (no database)."""

from __future__ import annotations

import csv
import datetime
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from states import sample

MEMBER_KINDS = {
    "study_self",
    "study_concentrated",
    "study_check",
    "analysis_report",
    "satisfaction_evaluation",
    "heart_talk",
    "rectification_plan",
    "good_deed",
    "pledge_application",
    "admonishment_talk",
    "disposition",
    "oath",
    "public_commitment",
}
BRANCH_KINDS = {
    "mobilization_meeting",
    "concentrated_training",
    "discussion_meeting",
    "opinions_solicited",
    "analysis_meeting",
    "branch_rectification_plan",
    "theme_activity",
    "oath_ceremony",
}
ROLES = {
    "member",
    "branch_secretary",
    "committee_secretary",
    "party_group_deputy",
    "party_group_secretary",
    "office_director",
    "inspector",
}
LEADERSHIP = ("committee_secretary", "party_group_deputy", "party_group_secretary", "office_director")
KIND_PHASE = {
    "mobilization_meeting": "study",
    "concentrated_training": "study",
    "discussion_meeting": "study",
    "study_self": "study",
    "study_concentrated": "study",
    "study_check": "study",
    "opinions_solicited": "analysis",
    "analysis_meeting": "analysis",
    "analysis_report": "analysis",
    "satisfaction_evaluation": "analysis",
    "heart_talk": "analysis",
    "branch_rectification_plan": "rectification",
    "theme_activity": "rectification",
    "rectification_plan": "rectification",
    "good_deed": "rectification",
    "pledge_application": "consolidation",
    "admonishment_talk": "consolidation",
    "oath_ceremony": "pledge",
    "oath": "pledge",
    "public_commitment": "pledge",
    "disposition": "pledge",
}


@pytest.fixture(scope="module")
def roster() -> list[dict[str, str]]:
    with sample.roster_path().open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def participants(roster: list[dict[str, str]]) -> dict[str, list[str]]:
    branches: dict[str, list[str]] = defaultdict(list)
    for row in roster:
        if row["role"] != "inspector":
            branches[row["branch_id"]].append(row["member_id"])
    return dict(branches)


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    with sample.plan_2024_path().open(encoding="utf-8") as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


@pytest.fixture(scope="module")
def records(plan: dict[str, Any]) -> list[dict[str, str]]:
    return sample.demo_records(plan, sample.roster_path())


@pytest.fixture(scope="module")
def ballots(plan: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    return sample.demo_ballots(plan, sample.roster_path())


@pytest.fixture(scope="module")
def shortfalls(plan: dict[str, Any]) -> dict[str, list[str]]:
    return sample.demo_shortfalls(plan, sample.roster_path())


def _windows(plan: dict[str, Any]) -> dict[str, tuple[datetime.date, datetime.date]]:
    return {p["name"]: (p["start"], p["end"]) for p in plan["phases"]}


# ---- roster ------------------------------------------------------------------------------------


def test_roster_header_and_encoding() -> None:
    raw = sample.roster_path().read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    header = raw.decode("utf-8").splitlines()[0]
    assert header == "member_id,name,branch_id,branch_name,unit,role,email,locale"


def test_roster_invariants(roster: list[dict[str, str]], participants: dict[str, list[str]]) -> None:
    ids = [r["member_id"] for r in roster]
    assert len(ids) == len(set(ids))
    assert all(r["role"] in ROLES for r in roster)
    assert sum(len(m) for m in participants.values()) == 175
    roles = Counter(r["role"] for r in roster)
    for role in LEADERSHIP:
        assert roles[role] == 1, role
    assert roles["inspector"] == 2
    for r in roster:
        assert 2 <= len(r["name"]) <= 4
        assert r["locale"] in {"zh-CN", "en"}
        assert r["email"] == "" or (r["email"].isascii() and "@" in r["email"])
        if r["role"] == "inspector":
            assert r["member_id"].startswith("I") and r["branch_id"] == "" and r["unit"] == "省委巡视组"
        else:
            assert r["member_id"].startswith("M") and r["branch_id"].startswith("B")
            assert r["unit"] in {"省外办", "友协"}
    assert 3 <= sum(r["email"] == "" for r in roster) <= 8
    assert 3 <= sum(r["locale"] == "en" for r in roster) <= 8
    assert {r["unit"] for r in roster if r["role"] != "inspector"} == {"省外办", "友协"}


def test_every_branch_has_one_secretary_of_its_own(
    roster: list[dict[str, str]], participants: dict[str, list[str]]
) -> None:
    names: dict[str, set[str]] = defaultdict(set)
    for r in roster:
        if r["branch_id"]:
            names[r["branch_id"]].add(r["branch_name"])
    assert all(len(n) == 1 for n in names.values())
    secretaries = Counter(r["branch_id"] for r in roster if r["role"] == "branch_secretary")
    assert set(secretaries) == set(participants)
    assert all(count == 1 for count in secretaries.values())
    assert all(12 <= len(members) <= 30 for members in participants.values())


# ---- plans -------------------------------------------------------------------------------------


def test_plan_2024_is_the_seed_plan(plan: dict[str, Any]) -> None:
    assert plan["key"] == "sfao-2024"
    assert [p["name"] for p in plan["phases"]] == list(sample.PHASES)
    assert plan["phases"][0]["start"] == datetime.date(2024, 3, 25)
    assert plan["phases"][-1]["end"] == datetime.date(2024, 8, 31)
    assert plan["thresholds"]["study_hours"] == 50


def test_plan_starting_keeps_the_phase_lengths(plan: dict[str, Any]) -> None:
    today = datetime.date(2025, 2, 3)
    live = sample.plan_starting(today)
    assert live["key"] == "sfao-live"
    assert live["phases"][0]["start"] == today
    lengths = [(p["end"] - p["start"]).days for p in plan["phases"]]
    assert [(p["end"] - p["start"]).days for p in live["phases"]] == lengths
    for before, after in zip(live["phases"], live["phases"][1:], strict=False):
        assert after["start"] == before["end"] + datetime.timedelta(days=1)
    again = yaml.safe_load(yaml.safe_dump(live, allow_unicode=True))
    assert again == live
    assert sample.plan_starting(today, key="other")["key"] == "other"


# ---- demo records ------------------------------------------------------------------------------


def test_records_are_well_formed(
    plan: dict[str, Any], records: list[dict[str, str]], participants: dict[str, list[str]]
) -> None:
    member_branch = {m: b for b, ms in participants.items() for m in ms}
    assert records and all(set(r) == set(sample.RECORD_FIELDS) for r in records)
    refs = [r["ref"] for r in records]
    assert len(refs) == len(set(refs)) and all(ref.startswith("demo-") for ref in refs)
    windows = _windows(plan)
    study_end = windows["study"][1]
    for r in records:
        day = datetime.date.fromisoformat(r["date"])
        start, end = windows[KIND_PHASE[r["kind"]]]
        if r["member_id"]:
            assert r["kind"] in MEMBER_KINDS
            assert member_branch[r["member_id"]] == r["branch_id"]
        else:
            assert r["kind"] in BRANCH_KINDS
            assert r["branch_id"] in participants
        if r["kind"] in {"study_self", "study_check", "discussion_meeting"} and day > end:
            assert day <= study_end + datetime.timedelta(days=7), r  # a late mend, just after the window
        else:
            assert start <= day <= end, r
        if r["kind"] in {"study_self", "study_concentrated", "satisfaction_evaluation", "opinions_solicited"}:
            assert float(r["value"]) > 0
        if r["kind"] == "study_check":
            assert r["value"] in {"pass", "fail"}
        if r["kind"] in BRANCH_KINDS - {"opinions_solicited"}:
            assert 1 <= int(r["value"]) <= len(participants[r["branch_id"]]), r


def test_records_are_deterministic(plan: dict[str, Any], records: list[dict[str, str]]) -> None:
    assert sample.demo_records(plan, sample.roster_path()) == records
    assert sample.demo_records(plan, sample.roster_path(), seed=7) != records


def test_every_branch_and_member_is_driven_through(
    plan: dict[str, Any],
    records: list[dict[str, str]],
    participants: dict[str, list[str]],
    shortfalls: dict[str, list[str]],
) -> None:
    branch_kinds: dict[str, Counter[str]] = defaultdict(Counter)
    member_kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        if r["member_id"]:
            member_kinds[r["member_id"]][r["kind"]] += 1
        else:
            branch_kinds[r["branch_id"]][r["kind"]] += 1
    for b in participants:
        assert set(branch_kinds[b]) == BRANCH_KINDS
        assert branch_kinds[b]["concentrated_training"] >= 3
    skipped = set(shortfalls["no_pledge_application"])
    for m in (m for ms in participants.values() for m in ms):
        kinds = member_kinds[m]
        for kind in (
            "study_check",
            "analysis_report",
            "satisfaction_evaluation",
            "heart_talk",
            "rectification_plan",
            "good_deed",
        ):
            assert kinds[kind] >= 1, (m, kind)
        assert kinds["pledge_application"] == (0 if m in skipped else 1)
        takes_oath = m not in skipped and m not in shortfalls["unqualified"]
        assert (kinds["oath"] == 1 and kinds["public_commitment"] == 1) == takes_oath


def test_study_hours_and_planted_shortfalls(
    plan: dict[str, Any],
    records: list[dict[str, str]],
    participants: dict[str, list[str]],
    shortfalls: dict[str, list[str]],
) -> None:
    study_end = _windows(plan)["study"][1].isoformat()
    training = {(r["branch_id"], r["date"]) for r in records if r["kind"] == "concentrated_training"}
    by_deadline: Counter[str] = Counter()
    total: Counter[str] = Counter()
    days: dict[str, set[str]] = defaultdict(set)
    checks: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in records:
        if r["kind"] in {"study_self", "study_concentrated"}:
            total[r["member_id"]] += int(r["value"])
            if r["date"] <= study_end:
                by_deadline[r["member_id"]] += int(r["value"])
        if r["kind"] == "study_concentrated":
            assert (r["branch_id"], r["date"]) in training
            days[r["member_id"]].add(r["date"])
        if r["kind"] == "study_check":
            checks[r["member_id"]].append((r["date"], r["value"]))
    members = [m for ms in participants.values() for m in ms]
    assert all(total[m] >= 50 and len(days[m]) >= 3 for m in members)
    short = sorted(m for m in members if by_deadline[m] < 50)
    assert short == shortfalls["short_hours"] and 6 <= len(short) <= 10
    assert all(38 <= by_deadline[m] <= 49 for m in short)
    failed = sorted(m for m in members if any(v == "fail" for _, v in checks[m]))
    assert failed == shortfalls["failed_check"] and len(failed) == 3
    for m in members:
        assert max(checks[m])[1] == "pass"
        passed_in_time = [v for d, v in sorted(checks[m]) if d <= study_end]
        assert (passed_in_time[-1] == "pass") == (m not in failed)
    assert len(shortfalls["no_pledge_application"]) == 2
    late = [r["branch_id"] for r in records if r["kind"] == "discussion_meeting" and r["date"] > study_end]
    assert late == shortfalls["late_branches"] and len(late) == 1
    late_day = next(r["date"] for r in records if r["kind"] == "discussion_meeting" and r["date"] > study_end)
    assert datetime.date.fromisoformat(late_day) - _windows(plan)["study"][1] == datetime.timedelta(days=3)


def test_records_for_a_live_plan_fit_its_windows() -> None:
    live = sample.plan_starting(datetime.date(2030, 1, 1))
    rows = sample.demo_records(live, sample.roster_path())
    first, last = live["phases"][0]["start"], live["phases"][-1]["end"]
    assert all(first.isoformat() <= r["date"] <= last.isoformat() for r in rows)
    assert all(r["ref"].startswith("demo-sfao-live-") for r in rows)


# ---- demo ballots ------------------------------------------------------------------------------


def test_ballots_respect_quorum_and_votes(
    plan: dict[str, Any],
    records: list[dict[str, str]],
    ballots: dict[str, list[dict[str, str]]],
    participants: dict[str, list[str]],
    shortfalls: dict[str, list[str]],
) -> None:
    start, end = _windows(plan)["consolidation"]
    applied = {r["member_id"]: r["date"] for r in records if r["kind"] == "pledge_application"}
    assert set(ballots) == set(participants)
    ratings: dict[str, str] = {}
    for branch, rows in ballots.items():
        assert rows and all(set(r) == set(sample.BALLOT_FIELDS) for r in rows)
        heads = {(r["branch_id"], r["date"], r["entitled"], r["present"]) for r in rows}
        assert len(heads) == 1
        _, day, entitled, present = heads.pop()
        assert start <= datetime.date.fromisoformat(day) <= end
        assert int(entitled) == len(participants[branch])
        assert int(entitled) < 2 * int(present) <= 2 * int(entitled)
        assert sorted(r["member_id"] for r in rows) == sorted(m for m in participants[branch] if m in applied)
        for r in rows:
            assert applied[r["member_id"]] < day
            votes = {k: int(r[k]) for k in ("qualified", "basically_qualified", "unqualified")}
            assert all(v >= 0 for v in votes.values())
            cast = sum(votes.values())
            assert 0 < cast <= int(present)
            winner = max(votes, key=lambda k: votes[k])
            assert 2 * votes[winner] > cast
            ratings[r["member_id"]] = winner
    outcome = Counter(ratings.values())
    assert outcome["unqualified"] == 1 and 2 <= outcome["basically_qualified"] <= 3
    assert sorted(m for m, v in ratings.items() if v == "unqualified") == shortfalls["unqualified"]
    assert (
        sorted(m for m, v in ratings.items() if v == "basically_qualified")
        == shortfalls["basically_qualified"]
    )
    assert not set(ratings) & set(shortfalls["no_pledge_application"])


def test_write_csv_round_trips(tmp_path: Path, ballots: dict[str, list[dict[str, str]]]) -> None:
    rows = ballots["B01"]
    path = sample.write_csv(tmp_path / "ballot.csv", rows, sample.BALLOT_FIELDS)
    with path.open(encoding="utf-8", newline="") as f:
        assert list(csv.DictReader(f)) == rows


def test_the_sample_import_files_are_the_demo_scenario_written_out() -> None:
    """records-2024.csv, mended-2024.csv and the ballot beside the roster are what `python -m states.sample.write`
    writes: the README's session and the demo tell one story (M054 has 46 of 50 hours at the study deadline)."""
    files = sample.sample_files_2024()
    for name, (rows, fields) in files.items():
        with (sample.SAMPLE_DIR / name).open(encoding="utf-8", newline="") as f:
            assert [dict(r) for r in csv.DictReader(f)] == [{k: r.get(k, "") for k in fields} for r in rows], name
    records, _ = files["records-2024.csv"]
    mended, _ = files["mended-2024.csv"]
    hours = sum(float(r["value"]) for r in records if r["member_id"] == "M054" and r["kind"].startswith("study_")
                and r["kind"] != "study_check" and r["date"] <= "2024-04-30")
    assert hours == 46
    assert {r["member_id"] for r in mended} >= {"M054"} and all(r["date"] > "2024-04-30" for r in mended)
