"""Every event of the notification table (docs/notifications.md) is queued by the situation that should queue it, and by no other.

The sample campaign is driven once (tests/notify/campaign.py) through its whole calendar; each step's new notices
are compared, as exact sets of (event, recipient, key), with what an oracle written from the notification and
campaign rules expects from the sample's own inputs (evidence, ballots, planted shortfalls, roster).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from states.authority import LEADERS
from states.db import make_engine
from states.machine import PHASES
from states.models import Notice
from tests.fixtures import KEY
from tests.notify.campaign import COMMITTEE, NEWCOMER, Driven, Step, moved_at

TZ = ZoneInfo("Asia/Shanghai")
DIRECTOR = "M003"
DEPUTY = "M047"
FIRST = "M001"
PHASE_ENDS = {
    "study": dt.date(2024, 4, 30),
    "analysis": dt.date(2024, 5, 31),
    "rectification": dt.date(2024, 7, 31),
    "consolidation": dt.date(2024, 8, 15),
    "pledge": dt.date(2024, 8, 31),
}
REMINDER_DAYS = (7, 3, 1)
MEMBER_CONDITIONS = {
    "study": ("study_hours", "concentrated_days", "study_check"),
    "analysis": ("analysis_report", "satisfaction_evaluation", "heart_talk"),
    "rectification": ("rectification_plan", "good_deed"),
    "consolidation": ("pledge_application",),
    "pledge": ("oath", "public_commitment"),
}
OUT_OF_PLEDGE = ("disqualified", "withdrawal_pending", "withdrawn", "exempt")


def deadline(phase: str) -> dt.datetime:
    return dt.datetime.combine(PHASE_ENDS[phase] + dt.timedelta(days=1), dt.time(), TZ)


def key(recipient: str, event: str, subject: str, occasion: str) -> str:
    return f"{recipient}:{event}:{KEY}:{subject}:{occasion}"


def of(step: Step, event: str) -> set[tuple[str, str]]:
    return {(r, k) for e, r, k in step.notices if e == event}


def sweeps(d: Driven) -> list[Step]:
    return [s for name, s in d.steps.items() if not name.startswith(("ballot ", "approve ", "join"))]


def secretary_of(d: Driven, branch_id: str) -> str:
    return next(m for m, p in d.people.items() if p["branch_id"] == branch_id and p["role"] == "branch_secretary")


def participants(d: Driven) -> set[str]:
    return {m for m, p in d.people.items() if p["branch_id"] and p["role"] != "inspector"}


def unmet(d: Driven, member: str, phase: str, day: dt.date) -> set[str]:
    """An oracle from the sample's evidence rows: the member's conditions of `phase` unmet with evidence up to `day`."""
    rows = [r for r in d.records if r["member_id"] == member and dt.date.fromisoformat(r["date"]) <= day]
    kinds = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r["date"], r["ref"])):
        kinds[r["kind"]].append(r)
    gaps = set()
    if phase == "study":
        if sum(float(r["value"]) for k in ("study_self", "study_concentrated") for r in kinds[k]) < 50:
            gaps.add("study_hours")
        if len({r["date"] for r in kinds["study_concentrated"]}) < 3:
            gaps.add("concentrated_days")
        if not kinds["study_check"] or kinds["study_check"][-1]["value"] != "pass":
            gaps.add("study_check")
    else:
        gaps = {c for c in MEMBER_CONDITIONS[phase] if not kinds[c]}
    return gaps


# -- the whole calendar ------------------------------------------------------------------------------------------

EXPECTED_EVENTS = {
    "before start": {"daily_digest"},
    "start": {"phase_started", "daily_digest"},
    "same day": set(),
    "quiet": {"daily_digest"},
    "study -7": {"deadline_reminder", "branch_reminder", "daily_digest"},
    "study -3": {"deadline_reminder", "branch_reminder", "daily_digest"},
    "study -1": {"deadline_reminder", "branch_reminder", "daily_digest"},
    "study last second": set(),
    "study deadline": {"phase_started", "member_stuck", "branch_escalation", "daily_digest"},
    "join": {"phase_started"},
    "mended": {"phase_started", "daily_digest"},
    "analysis -1 only": {"daily_digest"},  # everyone in analysis has met its conditions by then
    "analysis deadline": {"phase_started", "daily_digest"},
    "rectification deadline": {"phase_started", "daily_digest"},
    "in publicity": {"deadline_reminder", "branch_reminder", "daily_digest"},
    "publicity over": {"rating_final", "deadline_reminder", "branch_reminder", "daily_digest"},
    "consolidation deadline": {"phase_started", "withdrawal_pending", "oath_ceremony", "daily_digest"},
    "pledge -1": {"daily_digest"},
    "pledge deadline": {"daily_digest"},
    "after": {"daily_digest"},
}


def test_each_step_queues_exactly_its_kinds_of_notice(driven: Driven) -> None:
    for name, step in driven.steps.items():
        got = {e for e, _, _ in step.notices}
        if name.startswith("ballot "):
            assert got == {"approval_requested"}, name
        elif name.startswith("approve "):
            branch = name.split()[1]
            basically = {m for m in driven.shortfalls["basically_qualified"] if driven.people[m]["branch_id"] == branch}
            assert got == {"publicity_started"} | ({"admonishment_due"} if basically else set()), name
        else:
            assert got == EXPECTED_EVENTS[name], name


def test_a_repeated_step_queues_nothing(driven: Driven, idle: Driven) -> None:
    for d in (driven, idle):
        assert {name: s.repeat for name, s in d.steps.items() if s.repeat} == {}


def test_every_event_of_the_contract_occurs(driven: Driven, idle: Driven) -> None:
    events = {e for d in (driven, idle) for s in d.steps.values() for e, _, _ in s.notices}
    assert events == {
        "phase_started", "deadline_reminder", "branch_reminder", "member_stuck", "branch_escalation",
        "approval_requested",
        "publicity_started", "admonishment_due", "rating_final", "withdrawal_pending", "oath_ceremony",
        "daily_digest",
    }


# -- phase_started ---------------------------------------------------------------------------------------------


def test_phase_started_goes_to_each_member_entering_a_phase_and_only_then(driven: Driven) -> None:
    for name, step in driven.steps.items():
        entered = {
            m: s for m, s in step.states_after.items() if s in PHASES and step.states_before.get(m) != s
        }
        assert of(step, "phase_started") == {(m, key(m, "phase_started", m, s)) for m, s in entered.items()}, name
    assert {r for r, _ in of(driven.step("start"), "phase_started")} == participants(driven) - {NEWCOMER}
    assert of(driven.step("join"), "phase_started") == {(NEWCOMER, key(NEWCOMER, "phase_started", NEWCOMER, "study"))}


# -- deadline_reminder -----------------------------------------------------------------------------------------


def expected_reminders(d: Driven, step: Step) -> set[tuple[str, str]]:
    for phase in PHASES:
        due = [k for k in REMINDER_DAYS if deadline(phase) - dt.timedelta(days=k) <= step.at < deadline(phase)]
        if due:
            k = min(due)  # the latest one due
            day = step.at.astimezone(TZ).date()
            return {
                (m, key(m, "deadline_reminder", m, f"{phase}:{PHASE_ENDS[phase]}:{k}"))
                for m, s in step.states_after.items()
                if s == phase and unmet(d, m, phase, day)
            }
    return set()


def test_reminders_go_to_members_with_unmet_conditions_latest_step_only_never_after_the_deadline(
    driven: Driven,
) -> None:
    queued: set[tuple[str, str]] = set()
    for step in sweeps(driven):
        due = expected_reminders(driven, step)
        assert of(step, "deadline_reminder") == due - queued, step.name  # a cause already queued is not queued again
        queued |= due
    # The oracle is not vacuous: study shortfalls are reminded on the last day, and the consolidation reminder
    # three days before was skipped (no sweep ran then), so 08-15 queues the one-day step alone.
    last_day = {r for r, _ in of(driven.step("study -1"), "deadline_reminder")}
    assert last_day == set(driven.shortfalls["short_hours"]) | set(driven.shortfalls["failed_check"])
    assert {k.rsplit(":", 3)[-3:] == ["consolidation", "2024-08-15", "1"] for _, k in of(driven.step("publicity over"), "deadline_reminder")} == {True}
    assert {r for r, _ in of(driven.step("publicity over"), "deadline_reminder")} == set(driven.shortfalls["no_pledge_application"])
    assert {r for r, _ in of(driven.step("in publicity"), "deadline_reminder")} == set(driven.shortfalls["no_pledge_application"])


# -- branch_reminder -------------------------------------------------------------------------------------------

BRANCH_CONDITIONS = {
    "study": ("mobilization_meeting", "concentrated_training", "discussion_meeting"),
    "analysis": ("opinions_solicited", "analysis_meeting"),
    "rectification": ("branch_rectification_plan", "theme_activity"),
    "consolidation": ("member_meeting_ballot",),
    "pledge": ("oath_ceremony",),
}


def branch_unmet(d: Driven, branch: str, phase: str, day: dt.date, ballots_held: set[str]) -> set[str]:
    """An oracle from the sample's branch rows (no member id) and the ballots recorded so far."""
    rows = [
        r for r in d.records
        if not r["member_id"] and r["branch_id"] == branch and dt.date.fromisoformat(r["date"]) <= day
    ]
    gaps = set()
    for c in BRANCH_CONDITIONS[phase]:
        if c == "concentrated_training":
            held = len({r["date"] for r in rows if r["kind"] == c}) >= 3
        elif c == "opinions_solicited":
            held = sum(float(r["value"]) for r in rows if r["kind"] == c) >= 1
        elif c == "member_meeting_ballot":
            held = branch in ballots_held and dt.date.fromisoformat(d.ballots[branch][0]["date"]) <= day
        else:
            held = any(r["kind"] == c for r in rows)
        if not held:
            gaps.add(c)
    return gaps


def expected_branch_reminders(d: Driven, step: Step, ballots_held: set[str]) -> dict[tuple[str, str], tuple[set[str], int]]:
    """(secretary, key) → (the branch's unmet conditions, its members short), for branches with either."""
    for phase in PHASES:
        due = [k for k in REMINDER_DAYS if deadline(phase) - dt.timedelta(days=k) <= step.at < deadline(phase)]
        if not due:
            continue
        k, day = min(due), step.at.astimezone(TZ).date()
        out = {}
        for branch, state in step.branch_states_after.items():
            if state != phase:
                continue
            gaps = branch_unmet(d, branch, phase, day, ballots_held)
            short = sum(
                1 for m, s in step.states_after.items()
                if s == phase and d.people[m]["branch_id"] == branch and unmet(d, m, phase, day)
            )
            if gaps or short:
                sec = secretary_of(d, branch)
                out[(sec, key(sec, "branch_reminder", branch, f"{phase}:{PHASE_ENDS[phase]}:{k}"))] = (gaps, short)
        return out
    return {}


def stored_contexts(d: Driven, keys: set[str]) -> dict[str, dict[str, Any]]:
    engine = make_engine(f"sqlite:///{d.path}")
    try:
        with Session(engine) as session:
            return dict(session.execute(select(Notice.key, Notice.context).where(Notice.key.in_(keys))).all())
    finally:
        engine.dispose()


def test_branch_reminders_go_to_the_secretary_with_the_branchs_gaps_and_members_short_once(driven: Driven) -> None:
    queued: set[tuple[str, str]] = set()
    ballots_held: set[str] = set()
    told_figures = 0
    for name, step in driven.steps.items():
        if name.startswith("ballot "):
            ballots_held.add(name.split()[1])
        if name.startswith(("ballot ", "approve ", "join")):
            assert of(step, "branch_reminder") == set(), name
            continue
        due = expected_branch_reminders(driven, step, ballots_held)
        got = of(step, "branch_reminder")
        assert got == set(due) - queued, name  # a cause already queued is not queued again, nor after the deadline
        queued |= set(due)
        contexts = stored_contexts(driven, {k for _, k in got})
        for (_, k), (gaps, short) in due.items():
            if (_, k) not in got:
                continue
            context = contexts[k]
            assert context["members_short"] == short, k
            assert {c for c, f in context["figures"].items() if not f["ok"]} == gaps, k
            told_figures += bool(gaps)
    # Not vacuous: the sample's late branch is reminded of its own gaps before the study deadline, and branches
    # whose members alone are short are reminded too.
    late = driven.shortfalls["late_branches"][0]
    sec = secretary_of(driven, late)
    assert (sec, key(sec, "branch_reminder", late, "study:2024-04-30:1")) in of(driven.step("study -1"), "branch_reminder")
    assert told_figures > 0
    short_branches = {driven.people[m]["branch_id"] for m in driven.shortfalls["short_hours"]}
    assert {k.split(":")[3] for _, k in of(driven.step("study -1"), "branch_reminder")} >= short_branches


# -- member_stuck and branch_escalation ------------------------------------------------------------------------


def expected_stuck(d: Driven, step: Step, phase: str) -> set[tuple[str, str]]:
    moved = moved_at(d.engine, deadline(phase), phase)
    stuck = {m for m, s in step.states_before.items() if s == phase and m not in moved}
    out = set()
    for m in stuck:
        out.add((m, key(m, "member_stuck", m, phase)))
        secretary = secretary_of(d, d.people[m]["branch_id"])
        if secretary != m:
            out.add((secretary, key(secretary, "member_stuck", m, phase)))
    return out


def test_member_stuck_goes_to_member_and_branch_secretary_at_the_deadline(driven: Driven, idle: Driven) -> None:
    step = driven.step("study deadline")
    expected = expected_stuck(driven, step, "study")
    assert of(step, "member_stuck") == expected
    late = driven.shortfalls["late_branches"][0]
    stuck_members = {k.split(":")[3] for _, k in expected}
    planted = set(driven.shortfalls["short_hours"]) | set(driven.shortfalls["failed_check"])
    late_members = {m for m, p in driven.people.items() if p["branch_id"] == late and p["role"] != "inspector"}
    assert stuck_members == planted | late_members
    everyone = participants(idle)
    assert of(idle.step("study deadline"), "member_stuck") == expected_stuck(idle, idle.step("study deadline"), "study")
    assert len(of(idle.step("study deadline"), "member_stuck")) == len(everyone) + len(everyone) - 9


def test_a_stuck_branch_escalates_up_the_chain_at_its_days(driven: Driven, idle: Driven) -> None:
    late = driven.shortfalls["late_branches"][0]
    sec = secretary_of(driven, late)
    assert of(driven.step("study deadline"), "branch_escalation") == {
        (sec, key(sec, "branch_escalation", late, "study:specific"))
    }
    branches = sorted({p["branch_id"] for p in idle.people.values() if p["branch_id"]})
    chain = {
        "study deadline": {(secretary_of(idle, b), "specific") for b in branches},
        "+2 days": set(),
        "+3 days": {(COMMITTEE, "direct")},
        "+6 days": set(),
        "+7 days": {(DEPUTY, "second")},
        "+14 days": {(FIRST, "first")},
        "+20 days": set(),
    }
    for name, who in chain.items():
        expected = set()
        for b in branches:
            for recipient, level in who:
                if level != "specific" or recipient == secretary_of(idle, b):
                    expected.add((recipient, key(recipient, "branch_escalation", b, f"study:{level}")))
        assert of(idle.step(name), "branch_escalation") == expected, name
    roles = {"direct": "committee_secretary", "second": "party_group_deputy", "first": "party_group_secretary"}
    for level, role in roles.items():
        assert [m for m, p in idle.people.items() if p["role"] == role] == [
            {"direct": COMMITTEE, "second": DEPUTY, "first": FIRST}[level]
        ]


# -- the appraisal ---------------------------------------------------------------------------------------------


def standing(row: dict[str, str]) -> str:
    votes = {r: int(row[r]) for r in ("qualified", "basically_qualified", "unqualified")}
    return max(votes, key=lambda r: votes[r])


def test_ballot_asks_every_leader_and_approval_tells_the_branch(driven: Driven) -> None:
    leaders = {m for m, p in driven.people.items() if p["role"] in LEADERS}
    assert COMMITTEE in leaders and len(leaders) == 3
    for branch, rows in driven.ballots.items():
        ballot = driven.step(f"ballot {branch}")
        asked = of(ballot, "approval_requested")
        assert {r for r, _ in asked} == leaders  # each in a notice of their own, with their own code at delivery
        assert all(k.startswith(key(r, "approval_requested", branch, "ballot-")) for r, k in asked)
        approval = driven.step(f"approve {branch}")
        sec = secretary_of(driven, branch)
        assert {r for r, _ in of(approval, "publicity_started")} == {sec}
        basically = {r["member_id"] for r in rows if standing(r) == "basically_qualified"}
        assert basically == {m for m in driven.shortfalls["basically_qualified"] if driven.people[m]["branch_id"] == branch}
        occasion = approval.at.astimezone(dt.UTC).isoformat()
        assert of(approval, "admonishment_due") == {
            (r, key(r, "admonishment_due", m, occasion)) for m in basically for r in (m, sec)
        }


def test_rating_final_when_publicity_ends_and_not_before(driven: Driven) -> None:
    assert of(driven.step("in publicity"), "rating_final") == set()
    expected = {
        (r["member_id"], key(r["member_id"], "rating_final", r["member_id"], standing(r)))
        for rows in driven.ballots.values()
        for r in rows
    }
    assert of(driven.step("publicity over"), "rating_final") == expected
    assert {k.rsplit(":", 1)[1] for _, k in expected} == {"qualified", "basically_qualified", "unqualified"}


def test_withdrawal_pending_at_the_consolidation_deadline_without_application(driven: Driven) -> None:
    missing = driven.shortfalls["no_pledge_application"]
    expected = {
        (r, key(r, "withdrawal_pending", m, "consolidation"))
        for m in missing
        for r in (m, secretary_of(driven, driven.people[m]["branch_id"]))
    }
    assert of(driven.step("consolidation deadline"), "withdrawal_pending") == expected


def test_oath_ceremony_tells_each_member_of_a_branch_entering_pledge(driven: Driven) -> None:
    step = driven.step("consolidation deadline")
    got = of(step, "oath_ceremony")
    recipients = {r for r, _ in got}
    assert got == {(m, key(m, "oath_ceremony", driven.people[m]["branch_id"], "pledge")) for m in recipients}
    # Every branch entered pledge at this deadline; each pledging member is told, and no one outside a branch.
    pledging = {m for m, s in step.states_after.items() if s == "pledge"}
    assert pledging <= recipients <= participants(driven)
    assert all(e != "oath_ceremony" for name, s in driven.steps.items() if name != "consolidation deadline" for e, _, _ in s.notices)


def test_oath_ceremony_skips_members_who_will_not_pledge(driven: Driven) -> None:
    step = driven.step("consolidation deadline")
    told = {r for r, _ in of(step, "oath_ceremony")}
    out = {m for m, s in step.states_after.items() if s in OUT_OF_PLEDGE}
    assert out, "the sample has disqualified and withdrawal-pending members"
    assert told & out == set()


# -- daily_digest ----------------------------------------------------------------------------------------------


def test_one_digest_a_day_that_a_sweep_runs_to_the_office_director(driven: Driven) -> None:
    directors = [m for m, p in driven.people.items() if p["role"] == "office_director"]
    assert directors == [DIRECTOR]
    seen: set[dt.date] = set()
    for step in sweeps(driven):
        day = step.at.astimezone(TZ).date()
        expected = set() if day in seen else {(DIRECTOR, key(DIRECTOR, "daily_digest", KEY, day.isoformat()))}
        seen.add(day)
        assert of(step, "daily_digest") == expected, step.name
    for name, step in driven.steps.items():
        if name.startswith(("ballot ", "approve ", "join")):
            assert of(step, "daily_digest") == set()
