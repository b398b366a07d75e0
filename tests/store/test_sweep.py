"""The sweep on SQLite and PostgreSQL: a whole study phase, catch-up, once-only, dry runs, concurrent sweepers."""

from __future__ import annotations

import multiprocessing
from collections import Counter

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from states import audit
from states.models import FiredDeadline, MemberProgress, Notice, Person, TransitionLog
from states.operations import retry
from states.status import member_view, summary
from states.sweep import sweep
from tests.fixtures import KEY, SEAL_KEY, at


def counts(engine: Engine) -> Counter:
    with Session(engine) as s:
        return Counter(dict(s.execute(select(MemberProgress.state, func.count()).group_by(MemberProgress.state)).all()))


def log_rows(engine: Engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(TransitionLog).where(TransitionLog.member_id.is_not(None))) or 0


def test_study_phase_end_to_end(sample: Engine) -> None:
    start = sweep(sample, KEY, at("2024-03-25T00:00:01"), seal_key=SEAL_KEY)
    assert start.fired == ["start"] and start.advanced_members == 175 and start.advanced_branches == 9
    early = sweep(sample, KEY, at("2024-04-30T23:59:59"), seal_key=SEAL_KEY)
    assert early.fired == [] and early.advanced_members == 0
    fired = sweep(sample, KEY, at("2024-05-01T00:00:01"), seal_key=SEAL_KEY)
    assert fired.fired == ["study"]
    # the sample's shortfalls: 8 short of hours, 3 failed checks, and branch B08 (14 members) held its discussion late
    assert fired.stuck_branches == 1 and fired.stuck_members == 8 + 3 + 14
    assert counts(sample) == Counter({"analysis": 150, "study": 25})
    with Session(sample) as s:
        view = member_view(s, KEY, "M054", at("2024-05-01T00:00:01"))
    assert view["stuck"] and view["unmet"] == [{"condition": "study_hours", "have": 46, "need": 50}]
    again = sweep(sample, KEY, at("2024-05-01T00:00:01"), seal_key=SEAL_KEY)
    assert again.fired == [] and again.advanced_members == 0 and again.advanced_branches == 0
    before = log_rows(sample)
    # the late mends are dated after the deadline: a stuck pass a few days on moves them
    mended = sweep(sample, KEY, at("2024-05-06T00:05"), seal_key=SEAL_KEY)
    assert mended.advanced_members == 25 and mended.advanced_branches == 1 and mended.stuck_members == 0
    assert log_rows(sample) == before + 25
    with Session(sample) as s:
        assert audit.verify(s, SEAL_KEY)[1] is None


def test_catch_up_decides_as_the_deadlines_would_have(sample: Engine) -> None:
    """One late sweep fires start and study in order, counting study evidence only up to 04-30, then the stuck pass."""
    dry = sweep(sample, KEY, at("2024-05-03T12:00"), seal_key=SEAL_KEY, dry_run=True)
    assert counts(sample) == Counter({"enrolled": 175})  # a dry run changes nothing
    late = sweep(sample, KEY, at("2024-05-03T12:00"), seal_key=SEAL_KEY)
    assert late.fired == dry.fired == ["start", "study"]
    assert late.as_json() == dry.as_json()
    with Session(sample) as s:
        log = s.execute(
            select(TransitionLog.from_state, TransitionLog.to_state, TransitionLog.at).where(TransitionLog.member_id == "M054")
        ).all()
        stuck_notice = s.scalar(select(func.count()).select_from(Notice).where(Notice.key == f"M054:member_stuck:{KEY}:M054:study"))
    # M054 mended on 05-03 or later: stuck at the deadline (told so), not moved by the deadline's firing
    assert [(f, t) for f, t, _ in log][:2] == [("enrolled", "study")] or stuck_notice == 1
    assert stuck_notice == 1


def test_notices_are_queued_once_however_often_sweeps_run(sample: Engine) -> None:
    for _ in range(2):
        sweep(sample, KEY, at("2024-03-25T00:00:01"), seal_key=SEAL_KEY)
        sweep(sample, KEY, at("2024-04-24T00:10"), seal_key=SEAL_KEY)  # the 7-days-before reminder
        sweep(sample, KEY, at("2024-05-01T00:00:01"), seal_key=SEAL_KEY)
    with Session(sample) as s:
        by_event = dict(s.execute(select(Notice.event, func.count()).group_by(Notice.event)).all())
        keys = s.scalar(select(func.count(func.distinct(Notice.key))))
        total = s.scalar(select(func.count()).select_from(Notice))
    assert keys == total
    assert by_event["phase_started"] == 175 + 150
    assert by_event["member_stuck"] > 25  # each stuck member and their branch secretary
    assert by_event["deadline_reminder"] > 0


def test_retry_moves_a_mended_member_and_refuses_the_rest(sample: Engine) -> None:
    sweep(sample, KEY, at("2024-05-01T00:00:01"), seal_key=SEAL_KEY)
    when = at("2024-05-06T09:00")
    with Session(sample) as s, s.begin():
        result = retry(s, KEY, "M048", "hours mended", when, members=["M054"])
        audit.seal(s, when, SEAL_KEY)
    assert result.advanced == {"M054": ["study", "analysis"]}
    with Session(sample) as s:
        assert summary(s, KEY, when)["members"]["study"] == 24


def _sweep_in_process(url: str, when: str) -> dict:
    from states.db import make_engine
    from states.running import SweepRunning

    try:
        return sweep(make_engine(url), KEY, at(when), seal_key=SEAL_KEY).as_json()
    except SweepRunning:
        return {"fired": [], "refused": True}  # the other one was running: it did everything


def test_two_sweeps_at_once_change_everything_exactly_once(sample: Engine) -> None:
    url = sample.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_sweep_in_process, [(url, "2024-05-01T00:00:01")] * 2)
    # one after the other, or overlapping: then the second is refused at once (states.running) and the first does all
    assert set().union(*(r["fired"] for r in results)) == {"start", "study"}
    assert counts(sample) == Counter({"analysis": 150, "study": 25})
    with Session(sample) as s:
        per_member = s.execute(
            select(TransitionLog.member_id, func.count())
            .where(TransitionLog.member_id.is_not(None), TransitionLog.cause == "sweep")
            .group_by(TransitionLog.member_id)
        ).all()
        fired = s.scalar(select(func.count()).select_from(FiredDeadline))
    assert fired == 2
    assert Counter(n for _, n in per_member) == Counter({2: 150, 1: 25})  # start (+ study) once each


def test_the_daily_digest_names_the_lagging_branches_with_their_stuck_members(sample: Engine) -> None:
    sweep(sample, KEY, at("2024-05-01T00:00:01"), seal_key=SEAL_KEY)
    with Session(sample) as s:
        digest = s.scalars(select(Notice).where(Notice.key == f"M003:daily_digest:{KEY}:{KEY}:2024-05-01")).one()
    lagging = digest.context["lagging"]
    assert lagging[0] == {"branch_id": "B08", "state": "study", "stuck_members": 14}
    assert sum(b["stuck_members"] for b in lagging) == digest.context["stuck"]["members"] == 25


def test_branch_reminders_agree_with_the_member_reminders_once_and_never_after_the_deadline(sample: Engine) -> None:
    sweep(sample, KEY, at("2024-03-25T00:00:01"), seal_key=SEAL_KEY)

    def queued(event: str) -> list[Notice]:
        with Session(sample) as s:
            return list(s.scalars(select(Notice).where(Notice.event == event).order_by(Notice.id)))

    sweep(sample, KEY, at("2024-04-30T00:05"), seal_key=SEAL_KEY)  # the one-day step
    branch = queued("branch_reminder")
    with Session(sample) as s:  # a member's reminder goes to the member; the branch is theirs
        members = Counter(
            s.scalars(
                select(Person.branch_id).join(Notice, Notice.recipient_id == Person.member_id)
                .where(Notice.event == "deadline_reminder")
            )
        )
    assert branch, "the sample has shortfalls in the study phase"
    for notice in branch:
        context = notice.context
        assert notice.key == f"{notice.recipient_id}:branch_reminder:{KEY}:{context['branch_id']}:study:2024-04-30:1"
        # The count a secretary reads is the number of the branch's members the same sweep reminded.
        assert context["members_short"] == members[context["branch_id"]]
        gaps = {c for c, f in context["figures"].items() if not f["ok"]}
        assert gaps or context["members_short"] > 0
    assert {n.context["branch_id"] for n in branch} >= set(members)
    assert "B08" in {n.context["branch_id"] for n in branch if not n.context["figures"]["discussion_meeting"]["ok"]}
    sweep(sample, KEY, at("2024-04-30T18:00"), seal_key=SEAL_KEY)  # the same step again: nothing new
    sweep(sample, KEY, at("2024-05-01T00:00:01"), seal_key=SEAL_KEY)  # the deadline: no reminder at or after it
    sweep(sample, KEY, at("2024-05-02T00:05"), seal_key=SEAL_KEY)
    assert len(queued("branch_reminder")) == len(branch)
