"""`make demo`: the sample 2024 campaign through every phase in simulated time, as Prefect flow runs.

A fresh database (var/demo/campaign.db), the sample office and `plan-2024.yaml` (sfao-2024); the demo evidence is
imported day by day on the days it happens; each deadline fires as a `phase-deadline` run at its instant; the daily
tick (`reminders`) runs on the days that matter (reminder days, the days after late mends, the end of publicity);
ballots are recorded on their meeting days and approved through `states.appraisal.approve` (what `campaign
approve` calls); excellent members are selected; notices go to .eml files in var/demo/outbox. It ends with a
summary table.

No server is started by hand: Prefect's own temporary server (ephemeral mode) starts on first use and stops at
exit. It keeps its database in var/demo/prefect, so the second demo starts it in ~8 s instead of ~20 s (the first
start creates the schema). With PREFECT_API_URL set to a running server (`make run`), the demo's runs go there
instead and can be browsed in its UI.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "var" / "demo"
KEY = "sfao-2024"
TICK = dt.time(0, 5)  # the daily tick's time of day
EXCELLENT_PER_BRANCH = 2
COMMITTEE = "M002"  # the sample's committee secretary (states.sample.SECRETARY): imports the sample, approves
SECRETARY = "M001"  # party-group secretary: selects excellent members


def _environment(demo_dir: Path) -> None:
    """Before Prefect is imported: no telemetry, the demo's own database and outbox, a temporary server."""
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ["CAMPAIGN_SIMULATION"] = "1"  # six months driven in simulated time: the future is allowed here only
    if not os.environ.get("PREFECT_API_URL"):
        os.environ["PREFECT_HOME"] = str(demo_dir / "prefect")
        os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "true"
        # The first start creates the server's schema: ~20 s here, more than the 20 s Prefect waits by default.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"  # what reaches the server's log
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"  # the terminal shows this demo's own lines
    os.environ["CAMPAIGN_DATABASE_URL"] = f"sqlite:///{demo_dir / 'campaign.db'}"
    os.environ["CAMPAIGN_OUTBOX_DIR"] = str(demo_dir / "outbox")
    os.environ["CAMPAIGN_REPORT_DIR"] = str(demo_dir / "reports")
    os.environ["CAMPAIGN_CHUNK_BRANCHES"] = "3"  # nine branches: three chunks, so each firing shows three tasks


def _fresh(demo_dir: Path) -> None:
    demo_dir.mkdir(parents=True, exist_ok=True)
    for name in ("campaign.db", "campaign.db-wal", "campaign.db-shm"):
        (demo_dir / name).unlink(missing_ok=True)
    for name in ("outbox", "reports", "inputs"):
        shutil.rmtree(demo_dir / name, ignore_errors=True)


_SEQUENCE = itertools.count()


@dataclass(order=True)
class Event:
    at: dt.datetime
    order: int  # same instant: records (0), ballot (1), approval (2), decisions (3), sweeps (4), dispatch (5)
    seq: int = field(init=False, default_factory=lambda: next(_SEQUENCE))  # then in the order they were made
    kind: str = field(compare=False)
    data: Any = field(compare=False, default=None)


@dataclass
class Log:
    lines: list[str] = field(default_factory=list)
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    seconds: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def say(self, when: dt.datetime, text: str, tz: str) -> None:
        from zoneinfo import ZoneInfo

        line = f"  {when.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}  {text}"
        self.lines.append(line)
        print(line, flush=True)


def main() -> None:
    os.umask(0o077)  # the demo's database, outbox and Prefect home are private, as the service's are
    demo_dir = Path(os.environ.get("CAMPAIGN_DEMO_DIR", DEMO_DIR)).resolve()
    _fresh(demo_dir)
    _environment(demo_dir)
    began = time.monotonic()
    from prefect import flow
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    campaign_demo = flow(name="campaign-demo", description="The sample 2024 campaign through every phase.")(run_demo)
    # The demo's runs are in-process and short: no heartbeat thread (it detects crashed runs of deployments, and
    # its join costs up to a second at the end of every flow run in Prefect 3.9).
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        summary = campaign_demo(str(demo_dir))
    print(summary)
    print(f"\n  done in {time.monotonic() - began:.0f} s — outbox: {demo_dir / 'outbox'}  database: {demo_dir / 'campaign.db'}")


def _setup(demo: Path) -> tuple[Any, dict[str, Any], list[dict[str, str]], dict[str, list[dict[str, str]]]]:
    import yaml

    from flows import runtime
    from readers import read_table
    from states import sample
    from states.plan import load_plan, read_plan
    from states.roster import import_roster

    db = runtime.engine()
    plan, _ = read_plan(sample.plan_2024_path())
    raw = yaml.safe_load(sample.plan_2024_path().read_text(encoding="utf-8"))
    loaded = dt.datetime(2024, 3, 20, 1, 0, tzinfo=dt.UTC)
    with runtime.write(db, loaded) as session:
        import_roster(session, read_table(sample.roster_path()), COMMITTEE, loaded)
        load_plan(session, plan, COMMITTEE, loaded)
    records = sample.demo_records(raw, sample.roster_path())
    ballots = sample.demo_ballots(raw, sample.roster_path())
    (demo / "inputs").mkdir(parents=True, exist_ok=True)
    return db, raw, records, ballots


def run_demo(demo_dir: str) -> str:
    """The demo's body; main() runs it as the flow `campaign-demo` (Prefect is imported only once the environment
    is set)."""
    from prefect import task
    from prefect.cache_policies import NONE
    from sqlalchemy import select

    from flows import runtime
    from flows.deadline import phase_deadline
    from flows.dispatch_flow import dispatch_notifications
    from flows.reminders import reminders
    from readers import read_table
    from states import appraisal, sample, sweep
    from states.clock import day_start, local_date
    from states.models import Appraisal, MemberProgress, Person
    from states.records import import_records
    from states.status import summary

    demo = Path(demo_dir)
    db, raw, records, ballots = _setup(demo)
    tz = str(raw["timezone"])
    log = Log()

    @task(name="import-records", cache_policy=NONE, task_run_name="records {day}")
    def import_day(day: str, rows: list[dict[str, str]], at: dt.datetime) -> int:
        path = sample.write_csv(demo / "inputs" / f"records-{day}.csv", rows, sample.RECORD_FIELDS)
        with runtime.write(db, at) as session:
            return import_records(session, read_table(path), COMMITTEE, at).added

    @task(name="import-ballot", cache_policy=NONE, task_run_name="ballot {branch_id}")
    def import_ballot(branch_id: str, rows: list[dict[str, str]], at: dt.datetime) -> dict[str, Any]:
        path = sample.write_csv(demo / "inputs" / f"ballot-{branch_id}.csv", rows, sample.BALLOT_FIELDS)
        with runtime.write(db, at) as session:
            secretary = session.scalar(
                select(Person.member_id).where(Person.branch_id == branch_id, Person.role == "branch_secretary")
            )
            result = appraisal.import_ballot(session, KEY, read_table(path), secretary or COMMITTEE, at)
        return {"meeting_id": result.meeting_id, "ratings": result.ratings, "void": result.void}

    @task(name="approve", cache_policy=NONE, task_run_name="approve {branch_id}")
    def approve(branch_id: str, at: dt.datetime) -> dict[str, list[str]]:
        with runtime.write(db, at) as session:
            result = appraisal.approve(session, KEY, branch_id, COMMITTEE, at, source="demo", flow_run_id=runtime.flow_run_id())
        return {"approved": result.approved, "withdrawn": result.withdrawn}

    @task(name="confirm-withdrawals", cache_policy=NONE)
    def confirm_withdrawals(at: dt.datetime) -> list[str]:
        confirmed = []
        with runtime.write(db, at) as session:
            pending = session.execute(
                select(Person.member_id, Person.branch_id)
                .join(MemberProgress, MemberProgress.member_id == Person.member_id)
                .where(MemberProgress.campaign_key == KEY, MemberProgress.state == "withdrawal_pending")
            ).all()
            for member_id, branch_id in pending:
                secretary = session.scalar(
                    select(Person.member_id).where(Person.branch_id == branch_id, Person.role == "branch_secretary")
                )
                appraisal.withdrawal(
                    session, KEY, member_id, secretary or COMMITTEE, "no written application; the member confirmed",
                    at, confirm=True,
                )
                confirmed.append(member_id)
        return confirmed

    @task(name="select-excellent", cache_policy=NONE)
    def select_excellent(at: dt.datetime) -> list[str]:
        chosen: list[str] = []
        with runtime.write(db, at) as session:
            final = session.execute(
                select(Appraisal.member_id, Person.branch_id)
                .join(Person, Person.member_id == Appraisal.member_id)
                .where(Appraisal.campaign_key == KEY, Appraisal.rating == "qualified", Appraisal.final_at.is_not(None))
                .order_by(Person.branch_id, Appraisal.member_id)
            ).all()
            per_branch: dict[str, list[str]] = {}
            for member_id, branch_id in final:
                if len(per_branch.setdefault(branch_id, [])) < EXCELLENT_PER_BRANCH:
                    per_branch[branch_id].append(member_id)
            for members in per_branch.values():
                chosen += appraisal.select_excellent(session, KEY, members, SECRETARY, at)
        return chosen

    def stuck_members(at: dt.datetime) -> int:
        with runtime.read(db) as session:
            return int(summary(session, KEY, at)["stuck"]["members"])

    def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        return day_start(day, tz) + dt.timedelta(hours=hour, minutes=minute)

    def iso(at: dt.datetime) -> str:
        return at.isoformat()

    # ---- the calendar ------------------------------------------------------------------------------------------
    with runtime.read(db) as session:
        deadlines = sweep.deadlines(session, KEY)
    events: list[Event] = []
    by_day: dict[str, list[dict[str, str]]] = {}
    for row in records:
        by_day.setdefault(row["date"], []).append(row)
    for day, rows in by_day.items():
        events.append(Event(local(dt.date.fromisoformat(day), 18), 0, "records", (day, rows)))
    ticks: set[dt.datetime] = set()

    def schedule_tick(when: dt.datetime, why: str) -> None:
        """The daily tick at `when`, once however many reasons it has."""
        if when not in ticks:
            ticks.add(when)
            heapq.heappush(events, Event(when, 4, "tick", why))

    for deadline in deadlines:
        events.append(Event(deadline.due_at, 4, "deadline", deadline.name))
        if deadline.name != sweep.START:
            for k in raw["reminders_days_before"]:  # the reminder days: deadline − k days, at 00:05
                due = deadline.due_at - dt.timedelta(days=int(k))
                schedule_tick(due + dt.timedelta(hours=TICK.hour, minutes=TICK.minute), f"{k} days before {deadline.name}")
            events.append(Event(deadline.due_at + dt.timedelta(minutes=30), 5, "dispatch", deadline.name))
    for branch_id, rows in sorted(ballots.items()):
        events.append(Event(local(dt.date.fromisoformat(rows[0]["date"]), 15), 1, "ballot", (branch_id, rows)))
    consolidation = next(d for d in deadlines if d.name == "consolidation")
    events.append(Event(consolidation.due_at + dt.timedelta(hours=9), 3, "withdrawals"))
    events.append(Event(consolidation.due_at + dt.timedelta(hours=10), 2, "approve-withdrawals"))
    events.append(Event(consolidation.due_at + dt.timedelta(hours=11), 3, "excellent"))
    heapq.heapify(events)

    publicity_days = int(raw["thresholds"]["publicity_days"])

    def tick_after(at: dt.datetime, why: str, days: int = 1) -> None:
        """The daily tick `days` days after the day of `at`."""
        schedule_tick(local(local_date(at, tz) + dt.timedelta(days=days), TICK.hour, TICK.minute), why)

    print(f"\n  {KEY}: {len(records)} evidence records on {len(by_day)} days, {len(ballots)} ballots, "
          f"{len(deadlines)} deadlines — simulated time, Prefect flow runs\n", flush=True)
    fired_at: dict[str, dt.datetime] = {}
    while events:
        event = heapq.heappop(events)
        at = event.at
        clock = time.monotonic()
        if event.kind == "records":
            day, rows = event.data
            import_day(day, rows, at)
            if fired_at and stuck_members(at):  # someone is stuck: tomorrow's tick moves those who mended
                tick_after(at, "after late evidence")
        elif event.kind in ("deadline", "tick"):
            runner = phase_deadline if event.kind == "deadline" else reminders
            result = runner(KEY, at=iso(at))
            log.sweeps.append({**result, "when": at, "kind": event.kind, "why": event.data})
            fired = ", ".join(result["fired"]) or "—"
            what = f"deadline {event.data}" if event.kind == "deadline" else f"tick ({event.data})"
            log.say(at, f"{runner.name:<15} {what:<34} fired {fired:<14} advanced {result['advanced']['members']:>3}  "
                        f"stuck {result['stuck']['members']:>3} members, {result['stuck']['branches']} branches", tz)
            for name in result["fired"]:
                fired_at[name] = at
        elif event.kind == "ballot":
            branch_id, rows = event.data
            outcome = import_ballot(branch_id, rows, at)
            log.say(at, f"ballot {branch_id}: {len(outcome['ratings'])} ratings stand, {len(outcome['void'])} void", tz)
            heapq.heappush(events, Event(at + dt.timedelta(hours=2), 2, "approve", branch_id))
        elif event.kind in ("approve", "approve-withdrawals"):
            branches = [event.data] if event.kind == "approve" else sorted(ballots)
            for branch_id in branches:
                done = approve(branch_id, at)
                if done["approved"] or done["withdrawn"]:
                    log.say(at, f"approve {branch_id} (by {COMMITTEE}): {len(done['approved'])} ratings, "
                                f"{len(done['withdrawn'])} withdrawals", tz)
            if event.kind == "approve":
                tick_after(at, "publicity ends", days=publicity_days + 1)
        elif event.kind == "withdrawals":
            confirmed = confirm_withdrawals(at)
            log.say(at, f"withdrawals confirmed by their branch secretaries: {', '.join(confirmed) or 'none'}", tz)
        elif event.kind == "excellent":
            chosen = select_excellent(at)
            log.say(at, f"excellent members selected (by {SECRETARY}): {len(chosen)}", tz)
        elif event.kind == "dispatch":
            sent = dispatch_notifications(KEY)
            log.say(at, f"dispatch-notifications: {sent['sent']} notices written", tz)
        log.seconds[event.kind] += time.monotonic() - clock
    final = dispatch_notifications(KEY)
    if final["sent"]:
        print(f"  dispatch-notifications: {final['sent']} notices written", flush=True)
    return render_summary(db, tz, log)


def render_summary(db: Any, tz: str, log: Log) -> str:
    from sqlalchemy import func, select

    from flows import runtime
    from states.machine import PHASES
    from states.models import FiredDeadline, Notice, TransitionLog
    from states.status import summary

    out = ["", "  Summary", ""]
    header = f"  {'phase':<14} {'deadline (local)':<18} {'at deadline':>11} {'stuck then':>10} {'caught up later':>15}"
    out += [header, "  " + "-" * (len(header) - 2)]
    with runtime.read(db) as session:
        fired = {name: (due, run) for name, due, run in session.execute(
            select(FiredDeadline.name, FiredDeadline.due_at, FiredDeadline.flow_run_id).where(FiredDeadline.campaign_key == KEY)
        )}
        stuck_then = {s["fired"][0]: s["stuck"]["members"] for s in log.sweeps if s["fired"]}
        for phase in PHASES:
            if phase not in fired:
                continue
            due, run = fired[phase]
            moved = select(func.count(func.distinct(TransitionLog.member_id))).where(
                TransitionLog.campaign_key == KEY, TransitionLog.from_state == phase,
                TransitionLog.member_id.is_not(None), TransitionLog.trigger == "advance",
            )
            at_deadline = session.scalar(moved.where(TransitionLog.flow_run_id == run)) or 0
            later = session.scalar(moved.where(TransitionLog.flow_run_id.is_distinct_from(run))) or 0
            from states.clock import as_utc, zone

            local = as_utc(due).astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M")
            out.append(f"  {phase:<14} {local:<18} {at_deadline:>11} {stuck_then.get(phase, 0):>10} {later:>15}")
        last = max(s["when"] for s in log.sweeps)
        facts = summary(session, KEY, last)
        notices = dict(session.execute(
            select(Notice.event, func.count()).where(Notice.campaign_key == KEY).group_by(Notice.event).order_by(Notice.event)
        ).all())
    out += ["", "  final states: " + ", ".join(f"{state} {n}" for state, n in facts["members"].items()),
            "  branches:     " + ", ".join(f"{state} {n}" for state, n in facts["branches"].items()),
            f"  flow runs:    {len(log.sweeps)} sweeps ({sum(1 for s in log.sweeps if s['kind'] == 'deadline')} phase-deadline, "
            f"{sum(1 for s in log.sweeps if s['kind'] == 'tick')} reminders)", "", "  notices per event:"]
    files = Counter()
    outbox = Path(os.environ["CAMPAIGN_OUTBOX_DIR"])
    for path in outbox.glob("*.eml"):
        with path.open("rb") as handle:
            for line in handle:
                if line.lower().startswith(b"x-campaign-event:"):
                    files[line.split(b":", 1)[1].strip().decode()] += 1
                    break
                if not line.strip():
                    break
    width = max((len(e) for e in notices), default=10)
    for event, count in notices.items():
        out.append(f"    {event:<{width}} {count:>5} queued {files.get(event, 0):>5} written")
    out.append(f"    {'total':<{width}} {sum(notices.values()):>5} queued {sum(files.values()):>5} written")
    spent = ", ".join(f"{kind} {seconds:.0f} s" for kind, seconds in log.seconds.most_common())
    out += ["", f"  time spent: {spent}"]
    return "\n".join(out)


if __name__ == "__main__":
    main()
