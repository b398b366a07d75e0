"""Sample office (the seed's 省外办, 175 participants), its 2024 plan, and deterministic demo evidence and ballots."""

from __future__ import annotations

import csv
import datetime
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SAMPLE_DIR: Path = Path(__file__).resolve().parent

ROSTER_FIELDS: tuple[str, ...] = (
    "member_id",
    "name",
    "branch_id",
    "branch_name",
    "unit",
    "role",
    "email",
    "locale",
)
RECORD_FIELDS: tuple[str, ...] = ("member_id", "branch_id", "kind", "date", "value", "ref")
BALLOT_FIELDS: tuple[str, ...] = (
    "branch_id",
    "date",
    "entitled",
    "present",
    "member_id",
    "qualified",
    "basically_qualified",
    "unqualified",
)
PHASES: tuple[str, ...] = ("study", "analysis", "rectification", "consolidation", "pledge")

SECRETARY: str = "M002"
"""The sample office's committee secretary: who imports the sample roster and loads its plans (imports are acts
with authority)."""

# Hours of one concentrated-training sitting and the study-hours threshold the demo aims at.
_TRAINING_HOURS = 4
_STUDY_HOURS = 50


def roster_path() -> Path:
    """The sample roster (175 participants in nine branches, plus two inspectors)."""
    return SAMPLE_DIR / "roster.csv"


def plan_2024_path() -> Path:
    """The seed's own plan, ``sfao-2024`` (2024-03-25 → 2024-08-31)."""
    return SAMPLE_DIR / "plan-2024.yaml"


def _as_date(value: object) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value))


def _load_plan_2024() -> dict[str, Any]:
    with plan_2024_path().open(encoding="utf-8") as f:
        plan: dict[str, Any] = yaml.safe_load(f)
    return plan


def plan_starting(today: datetime.date, key: str = "sfao-live") -> dict[str, Any]:
    """The 2024 plan's shape (same phases, same number of days each, contiguous) starting on ``today``.

    Dates are ``datetime.date`` values, as ``yaml.safe_load`` of the 2024 file gives them, so the
    result can go straight to ``yaml.safe_dump``.
    """
    base = _load_plan_2024()
    phases: list[dict[str, Any]] = []
    start = _as_date(today)
    for phase in base["phases"]:
        days = (_as_date(phase["end"]) - _as_date(phase["start"])).days + 1
        end = start + datetime.timedelta(days=days - 1)
        phases.append({"name": phase["name"], "start": start, "end": end})
        start = end + datetime.timedelta(days=1)
    plan = dict(base)
    plan["key"] = key
    plan["title"] = f"{base['title']}（演示）"
    plan["phases"] = phases
    plan["thresholds"] = dict(base["thresholds"])
    plan["reminders_days_before"] = list(base["reminders_days_before"])
    plan["escalation_days"] = dict(base["escalation_days"])
    return plan


# --------------------------------------------------------------------------------------------
# The demo scenario: one deterministic pass computes records, ballots and the planted shortfalls.
# --------------------------------------------------------------------------------------------


@dataclass
class _Scenario:
    records: list[dict[str, str]] = field(default_factory=list)
    ballots: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    shortfalls: dict[str, list[str]] = field(default_factory=dict)


def _read_roster(roster_csv: Path) -> list[dict[str, str]]:
    with Path(roster_csv).open(encoding="utf-8-sig", newline="") as f:
        return [dict(row) for row in csv.DictReader(f)]


def _participants(roster: Iterable[Mapping[str, str]]) -> dict[str, list[str]]:
    """Branch id → member ids of its participants (everyone but inspectors), in roster order."""
    branches: dict[str, list[str]] = {}
    for row in roster:
        if row.get("role") == "inspector" or not row.get("branch_id"):
            continue
        branches.setdefault(row["branch_id"], []).append(row["member_id"])
    return branches


def _windows(plan: Mapping[str, Any]) -> dict[str, tuple[datetime.date, datetime.date]]:
    windows = {p["name"]: (_as_date(p["start"]), _as_date(p["end"])) for p in plan["phases"]}
    missing = [name for name in PHASES if name not in windows]
    if missing:
        raise ValueError(f"plan lacks phases: {', '.join(missing)}")
    return windows


def _day(window: tuple[datetime.date, datetime.date], offset: int) -> datetime.date:
    """``offset`` days into the window (negative: from its end), clamped to the window."""
    start, end = window
    day = (
        start + datetime.timedelta(days=offset) if offset >= 0 else end + datetime.timedelta(days=offset + 1)
    )
    return min(max(day, start), end)


def _frac(window: tuple[datetime.date, datetime.date], fraction: float, jitter: int = 0) -> datetime.date:
    start, end = window
    length = (end - start).days
    return _day(window, max(0, min(length, round(length * fraction) + jitter)))


def _spread_days(
    rng: random.Random, window: tuple[datetime.date, datetime.date], n: int
) -> list[datetime.date]:
    start, end = window
    days = (end - start).days + 1
    return sorted(start + datetime.timedelta(days=rng.randrange(days)) for _ in range(n))


def _signed_in(rng: random.Random, participants: int, low: float = 0.85) -> int:
    """A realistic sign-in count: between ``low`` and all of the branch's participants."""
    return max(1, min(participants, round(participants * rng.uniform(low, 1.0))))


def _hours(rng: random.Random, total: int) -> list[int]:
    """Split ``total`` self-study hours into sittings of 2–4 hours."""
    sittings: list[int] = []
    left = total
    while left > 0:
        h = min(left, rng.choice((2, 2, 3, 3, 4)))
        if 0 < left - h < 2:  # avoid a trailing 1-hour sitting
            h = left
        sittings.append(h)
        left -= h
    return sittings


def _scenario(plan: Mapping[str, Any], roster_csv: Path, seed: int) -> _Scenario:
    roster = _read_roster(roster_csv)
    roles = {row["member_id"]: row.get("role", "member") for row in roster}
    branches = _participants(roster)
    branch_ids = sorted(branches)
    win = _windows(plan)
    study, analysis, rectif, consol, pledge = (win[p] for p in PHASES)
    key = str(plan.get("key", "demo"))
    rng = random.Random(seed)

    # ---- who falls short (plain members only; each at most one kind of shortfall) ----
    late_branch = rng.choice(branch_ids)
    plain = [m for b in branch_ids for m in branches[b] if roles.get(m) == "member"]
    others = [m for m in plain if m not in set(branches[late_branch])]
    picked = rng.sample(others, min(len(others), 8 + 3 + 2 + 1 + 3))
    short_hours = sorted(picked[:8])
    failed_check = sorted(picked[8:11])
    no_pledge = sorted(picked[11:13])
    unqualified = sorted(picked[13:14])
    basically = sorted(picked[14 : 14 + rng.choice((2, 3))])
    out = _Scenario()
    out.shortfalls = {
        "short_hours": short_hours,
        "failed_check": failed_check,
        "no_pledge_application": no_pledge,
        "late_branches": [late_branch],
        "basically_qualified": basically,
        "unqualified": unqualified,
    }

    rows: list[tuple[datetime.date, str, str, str, str]] = []  # (date, branch, member, kind, value)

    def add(day: datetime.date, branch: str, member: str, kind: str, value: object = "") -> None:
        rows.append((day, branch, member, kind, str(value)))

    study_end = study[1]
    oath_day = _frac(pledge, 0.2)  # the office's collective oath (集中宣誓), one day for all branches
    for b in branch_ids:
        members = branches[b]
        n = len(members)
        # ---- study: mobilisation, training days, discussion; each member's hours and check ----
        mobilization = _day(study, rng.randrange(0, 3))
        add(mobilization, b, "", "mobilization_meeting", _signed_in(rng, n, 0.9))
        n_training = rng.choice((3, 4))
        fractions = (0.1, 0.3, 0.5, 0.7)[:n_training]
        training = sorted({_frac(study, f, rng.randrange(0, 3)) for f in fractions})
        attended: dict[str, list[datetime.date]] = {}
        for m in members:
            days = list(training)
            if len(days) > 3 and rng.random() < 0.2:
                days.pop(rng.randrange(len(days)))  # missed one training day, still ≥ 3
            attended[m] = days
        for d in training:
            add(d, b, "", "concentrated_training", sum(d in attended[m] for m in members))
        if b == late_branch:
            add(study_end + datetime.timedelta(days=3), b, "", "discussion_meeting", _signed_in(rng, n))
        else:
            add(_day(study, -rng.randrange(3, 6)), b, "", "discussion_meeting", _signed_in(rng, n))
        self_window = (mobilization, study_end - datetime.timedelta(days=1))
        for m in members:
            concentrated = _TRAINING_HOURS * len(attended[m])
            for d in attended[m]:
                add(d, b, m, "study_concentrated", _TRAINING_HOURS)
            short = m in short_hours
            total = rng.randint(38, 49) if short else rng.randint(_STUDY_HOURS + 2, _STUDY_HOURS + 14)
            sittings = _hours(rng, max(0, total - concentrated))
            for d, h in zip(_spread_days(rng, self_window, len(sittings)), sittings, strict=True):
                add(d, b, m, "study_self", h)
            if m in short_hours:  # mended a few days after the study deadline
                mend = _hours(rng, _STUDY_HOURS - total + rng.randint(0, 3))
                for i, h in enumerate(mend):
                    add(study_end + datetime.timedelta(days=2 + min(i, 3)), b, m, "study_self", h)
            if m in failed_check:
                add(study_end - datetime.timedelta(days=3), b, m, "study_check", "fail")
                add(study_end + datetime.timedelta(days=4), b, m, "study_check", "pass")
            else:
                add(_day(study, -rng.randrange(1, 3)), b, m, "study_check", "pass")

        # ---- analysis: opinions, reports, talks, analysis meeting with satisfaction evaluation ----
        add(_day(analysis, rng.randrange(3, 8)), b, "", "opinions_solicited", rng.randint(12, 60))
        meeting = _day(analysis, rng.randrange(19, 24))
        add(meeting, b, "", "analysis_meeting", _signed_in(rng, n))
        for m in members:
            add(_day(analysis, rng.randrange(8, 18)), b, m, "analysis_report")
            add(meeting, b, m, "satisfaction_evaluation", rng.choice((85, 88, 90, 92, 95, 96, 98, 100)))
            for _ in range(rng.choice((1, 1, 2))):
                add(_day(analysis, rng.randrange(4, 27)), b, m, "heart_talk")

        # ---- rectification: plans, theme activity, good deeds ----
        add(_day(rectif, rng.randrange(5, 11)), b, "", "branch_rectification_plan", _signed_in(rng, n))
        add(_frac(rectif, 0.45, rng.randrange(0, 8)), b, "", "theme_activity", _signed_in(rng, n, 0.8))
        for m in members:
            add(_day(rectif, rng.randrange(2, 16)), b, m, "rectification_plan")
            for _ in range(rng.choice((1, 1, 2))):
                add(_frac(rectif, rng.uniform(0.2, 0.9)), b, m, "good_deed")

        # ---- consolidation: written applications; the ballot (see demo_ballots) ----
        ballot_day = _day(consol, rng.randrange(5, 8))
        applicants = [m for m in members if m not in no_pledge]
        for m in applicants:
            add(_day(consol, rng.randrange(0, 5)), b, m, "pledge_application")
        for m in applicants:
            if m in basically:
                add(consol[1], b, m, "admonishment_talk")
        out.ballots[b] = _ballot(rng, b, ballot_day, members, applicants, basically, unqualified)

        # ---- pledge: the collective oath and public commitments ----
        oath_takers = [m for m in applicants if m not in unqualified]
        add(oath_day, b, "", "oath_ceremony", len(oath_takers))
        for m in oath_takers:
            add(oath_day, b, m, "oath")
            add(_day(pledge, rng.randrange(3, 10)), b, m, "public_commitment")
        for m in members:
            if m in unqualified:
                add(_frac(pledge, 0.5), b, m, "disposition")

    rows.sort(key=lambda r: (r[0], r[1], r[2]))  # stable: same-day study_check fail/pass keep their order
    out.records = [
        {
            "member_id": member,
            "branch_id": branch,
            "kind": kind,
            "date": day.isoformat(),
            "value": value,
            "ref": f"demo-{key}-{i:06d}",
        }
        for i, (day, branch, member, kind, value) in enumerate(rows, start=1)
    ]
    return out


def _ballot(
    rng: random.Random,
    branch: str,
    day: datetime.date,
    members: Sequence[str],
    applicants: Sequence[str],
    basically: Sequence[str],
    unqualified: Sequence[str],
) -> list[dict[str, str]]:
    entitled = len(members)
    present = max(entitled // 2 + 1, round(entitled * rng.uniform(0.82, 0.97)))
    present = min(present, entitled)
    rows: list[dict[str, str]] = []
    for m in applicants:
        cast = present - rng.choice((0, 0, 0, 1, 2)) if present > 4 else present
        minority = rng.randint(0, cast // 6)  # < half of the votes cast: the majority rating stands
        if m in unqualified:
            q = rng.randint(0, minority)
            bq, uq = minority - q, cast - minority
        elif m in basically:
            q, bq, uq = minority, cast - minority, 0
        else:
            uq = 1 if minority >= 3 and rng.random() < 0.3 else 0
            q, bq = cast - minority, minority - uq
        rows.append(
            {
                "branch_id": branch,
                "date": day.isoformat(),
                "entitled": str(entitled),
                "present": str(present),
                "member_id": m,
                "qualified": str(q),
                "basically_qualified": str(bq),
                "unqualified": str(uq),
            }
        )
    return rows


def demo_records(plan: Mapping[str, Any], roster_csv: Path, seed: int = 2024) -> list[dict[str, str]]:
    """Rows of a records.csv (``RECORD_FIELDS``, all values strings) driving ``plan`` through every phase.

    Every branch holds its meetings in each phase window and every participant records its
    study, reports, talks, plans, deeds, application, oath and commitment; the shortfalls named by
    :func:`demo_shortfalls` are planted: short study hours mended 2–5 days after the study end,
    a failed study check passed 4 days after it, no written application, one branch's discussion
    meeting 3 days after the study end. Basically-qualified members get an admonishment talk on the
    consolidation end day and the unqualified member a disposition in the pledge window.
    """
    return _scenario(plan, roster_csv, seed).records


def demo_ballots(
    plan: Mapping[str, Any], roster_csv: Path, seed: int = 2024
) -> dict[str, list[dict[str, str]]]:
    """Per branch id, the rows (``BALLOT_FIELDS``, all values strings) of one member-meeting ballot.csv.

    The meeting is in the consolidation window after the written applications; entitled = the
    branch's participants, present > half, votes per member ≤ present; members without an
    application get no row. Ratings match ``demo_shortfalls(...)['basically_qualified'|'unqualified']``.
    """
    return _scenario(plan, roster_csv, seed).ballots


def demo_shortfalls(plan: Mapping[str, Any], roster_csv: Path, seed: int = 2024) -> dict[str, list[str]]:
    """Which ids :func:`demo_records` / :func:`demo_ballots` made fall short, for the same arguments.

    Keys: ``short_hours`` (38–49 hours at the study deadline), ``failed_check`` (fail, then a late
    pass), ``no_pledge_application``, ``late_branches`` (discussion meeting 3 days late),
    ``basically_qualified`` and ``unqualified`` (ballot outcomes); member ids are sorted.
    """
    return _scenario(plan, roster_csv, seed).shortfalls


def write_csv(path: Path, rows: Iterable[Mapping[str, object]], fields: Sequence[str]) -> Path:
    """Write ``rows`` as a UTF-8 CSV with header ``fields`` (e.g. ``RECORD_FIELDS``, ``BALLOT_FIELDS``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in fields})
    return path


# --------------------------------------------------------------------------------------------
# The sample import files beside the roster, for the README's first session (`python -m states.sample.write` renews them).
# --------------------------------------------------------------------------------------------

SAMPLE_BALLOT_BRANCH = "B03"


def sample_files_2024() -> dict[str, tuple[list[dict[str, str]], tuple[str, ...]]]:
    """The 2024 campaign's import files, by file name: ``records-2024.csv`` (all its evidence but the study hours
    that short members made up after the study deadline), ``mended-2024.csv`` (those hours), and the member
    meeting's ballot of ``SAMPLE_BALLOT_BRANCH``."""
    plan = _load_plan_2024()
    study_end = _windows(plan)["study"][1].isoformat()
    short = set(demo_shortfalls(plan, roster_path())["short_hours"])
    records = demo_records(plan, roster_path())

    def mended(row: Mapping[str, str]) -> bool:
        return row["member_id"] in short and row["kind"] == "study_self" and row["date"] > study_end

    ballot = demo_ballots(plan, roster_path())[SAMPLE_BALLOT_BRANCH]
    return {
        "records-2024.csv": ([r for r in records if not mended(r)], RECORD_FIELDS),
        "mended-2024.csv": ([r for r in records if mended(r)], RECORD_FIELDS),
        f"ballot-{SAMPLE_BALLOT_BRANCH}-2024.csv": (ballot, BALLOT_FIELDS),
    }


def write_sample_files(folder: Path = SAMPLE_DIR) -> list[Path]:
    """Write `sample_files_2024()` into `folder` (UTF-8 CSV)."""
    return [write_csv(folder / name, rows, fields) for name, (rows, fields) in sample_files_2024().items()]
