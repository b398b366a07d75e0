"""Reloading a plan: deadlines not yet fired may move, a phase whose deadline has fired may not change (nor the start
once it has fired), and each change is one log entry."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from states import audit
from states.db import MIGRATIONS
from states.errors import Refused
from states.models import Campaign, Notice, Phase, TransitionLog
from states.plan import Plan, load_plan
from states.status import summary
from states.sweep import sweep
from tests.fixtures import KEY, SEAL_KEY, at, load_sample


def reload(engine: Engine, plan: dict[str, Any], when: str, *, sealed: bool = True) -> None:
    """The plan reloaded, sealed unless `sealed` is False: under a schema older than the audit lanes (migration
    20261201_2100) today's seal has no `lane` column to write, and what such a test checks is not the chain."""
    moment = at(when)
    with Session(engine) as session, session.begin():
        load_plan(session, Plan.model_validate(plan), "M002", moment)
        if sealed:
            audit.seal(session, moment, SEAL_KEY)


def moved(plan: dict[str, Any], **windows: tuple[str, str]) -> dict[str, Any]:
    changed = copy.deepcopy(plan)
    for phase in changed["phases"]:
        if phase["name"] in windows:
            phase["start"], phase["end"] = (dt.date.fromisoformat(d) for d in windows[phase["name"]])
    return changed


def plan_log(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [
            (cause, reason)
            for cause, reason in session.execute(
                select(TransitionLog.cause, TransitionLog.reason)
                .where(TransitionLog.campaign_key == KEY, TransitionLog.cause.in_(("plan_load", "plan_change")))
                .order_by(TransitionLog.id)
            )
        ]


def windows(engine: Engine) -> dict[str, tuple[str, str]]:
    with Session(engine) as session:
        return {
            p.name: (p.start.isoformat(), p.end.isoformat())
            for p in session.scalars(select(Phase).where(Phase.campaign_key == KEY))
        }


def test_an_unfired_deadline_moves_each_change_logged_and_the_sweep_follows(engine: Engine) -> None:
    plan = load_sample(engine, records=False)
    later = moved(plan, study=("2024-03-25", "2024-05-07"), analysis=("2024-05-08", "2024-05-31"))
    reload(engine, later, "2024-04-20T09:00")
    assert plan_log(engine) == [
        ("plan_load", "created"),
        ("plan_load", "updated: 2 changes"),
        ("plan_change", "study.end 2024-04-30 → 2024-05-07"),
        ("plan_change", "analysis.start 2024-05-01 → 2024-05-08"),
    ]
    assert windows(engine)["study"] == ("2024-03-25", "2024-05-07")
    assert sweep(engine, KEY, at("2024-05-01T00:00:01"), seal_key=SEAL_KEY).fired == ["start"]  # the old instant fires nothing
    assert sweep(engine, KEY, at("2024-05-08T00:00:01"), seal_key=SEAL_KEY).fired == ["study"]
    reload(engine, later, "2024-05-09T09:00")  # the same plan again: nothing changes, nothing is refused
    assert plan_log(engine)[-1] == ("plan_load", "unchanged")


def test_a_phase_whose_deadline_fired_is_refused_naming_it_and_nothing_changes(engine: Engine) -> None:
    plan = load_sample(engine, records=False)
    sweep(engine, KEY, at("2024-05-01T00:00:01"), seal_key=SEAL_KEY)  # start and study fired
    before = plan_log(engine)
    with pytest.raises(Refused, match=r"phase study: its deadline has fired, study\.end cannot change \(2024-04-30 → 2024-05-07\)"):
        reload(engine, moved(plan, study=("2024-03-25", "2024-05-07"), analysis=("2024-05-08", "2024-05-31")), "2024-05-02T09:00")
    with pytest.raises(Refused, match=r"phase study: .*study\.start cannot change"):
        reload(engine, moved(plan, study=("2024-03-26", "2024-04-30")), "2024-05-02T09:00")
    stricter = copy.deepcopy(plan)
    stricter["thresholds"]["study_hours"] = 60
    with pytest.raises(Refused, match=r"phase study: .*thresholds\.study_hours cannot change \(50 → 60\)"):
        reload(engine, stricter, "2024-05-02T09:00")
    assert plan_log(engine) == before
    assert windows(engine)["study"] == ("2024-03-25", "2024-04-30")
    # The unfired ones may still move, and a threshold of no fired phase may change.
    later = moved(plan, analysis=("2024-05-01", "2024-06-07"), rectification=("2024-06-08", "2024-07-31"))
    later["thresholds"]["publicity_days"] = 7
    reload(engine, later, "2024-05-02T09:00")
    assert plan_log(engine)[len(before):] == [
        ("plan_load", "updated: 3 changes"),
        ("plan_change", "analysis.end 2024-05-31 → 2024-06-07"),
        ("plan_change", "rectification.start 2024-06-01 → 2024-06-08"),
        ("plan_change", "thresholds.publicity_days 5 → 7"),
    ]


def test_once_the_start_has_fired_it_stays_put_and_status_agrees_with_itself(engine: Engine) -> None:
    plan = load_sample(engine, records=False)
    sweep(engine, KEY, at("2024-03-25T00:00:01"), seal_key=SEAL_KEY)
    with pytest.raises(Refused, match=r"phase study: the campaign's start has fired, study\.start cannot change \(2024-03-25 → 2024-04-01\)"):
        reload(engine, moved(plan, study=("2024-04-01", "2024-04-30")), "2024-03-26T09:00")
    elsewhere = copy.deepcopy(plan)
    elsewhere["timezone"] = "Europe/Berlin"  # every instant would move: the start's too
    with pytest.raises(Refused, match=r"phase study: the campaign's start has fired, study\.start cannot change"):
        reload(engine, elsewhere, "2024-03-26T09:00")
    # The study deadline has not fired: it may move.
    reload(engine, moved(plan, study=("2024-03-25", "2024-04-29")), "2024-03-26T09:00")
    with Session(engine) as session:
        assert summary(session, KEY, at("2024-03-26T09:00"))["phase"] == "study"
        assert session.get(Campaign, KEY).timezone == "Asia/Shanghai"  # type: ignore[union-attr]


REMINDERS = ("deadline_reminder", "branch_reminder")


def reminder_keys(engine: Engine) -> dict[str, set[str]]:
    with Session(engine) as session:
        return {e: set(session.scalars(select(Notice.key).where(Notice.event == e))) for e in REMINDERS}


def redated(keys: dict[str, set[str]], was: str, becomes: str) -> dict[str, set[str]]:
    return {e: {k.replace(was, becomes) for k in ks} for e, ks in keys.items()}


def reminded_a_week_before_study(engine: Engine) -> tuple[dict[str, Any], dict[str, set[str]]]:
    """The sample without evidence (everyone short), the start fired and study's 7-day step (for 2024-04-30) swept."""
    plan = load_sample(engine, records=False)
    sweep(engine, KEY, at("2024-03-25T00:00:01"), seal_key=SEAL_KEY)
    sweep(engine, KEY, at("2024-04-24T00:10"), seal_key=SEAL_KEY)
    first = reminder_keys(engine)
    assert all(first.values())
    assert {k.split(f"{KEY}:", 1)[1].split(":", 1)[1] for ks in first.values() for k in ks} == {"study:2024-04-30:7"}
    return plan, first


def test_a_moved_deadline_is_reminded_again_for_its_new_date_and_an_unmoved_one_never_twice(engine: Engine) -> None:
    plan, first = reminded_a_week_before_study(engine)
    # Another deadline moves: study's is the same, so the same step is not reminded again.
    reload(engine, moved(plan, analysis=("2024-05-01", "2024-06-07"), rectification=("2024-06-08", "2024-07-31")), "2024-04-24T09:00")
    sweep(engine, KEY, at("2024-04-24T12:00"), seal_key=SEAL_KEY)
    assert reminder_keys(engine) == first
    # Study's deadline moves a week: the old date's 3-day step finds the new deadline ten days away, nothing is due;
    # the new date's 7-day step reminds the same people once.
    later = moved(plan, study=("2024-03-25", "2024-05-07"), analysis=("2024-05-08", "2024-06-07"), rectification=("2024-06-08", "2024-07-31"))
    reload(engine, later, "2024-04-25T09:00")
    sweep(engine, KEY, at("2024-04-28T00:10"), seal_key=SEAL_KEY)
    assert reminder_keys(engine) == first
    sweep(engine, KEY, at("2024-05-01T00:10"), seal_key=SEAL_KEY)
    sweep(engine, KEY, at("2024-05-01T18:00"), seal_key=SEAL_KEY)
    now = reminder_keys(engine)
    assert {e: now[e] - first[e] for e in REMINDERS} == redated(first, ":study:2024-04-30:7", ":study:2024-05-07:7")


def migrate(engine: Engine, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, direction)(config, revision)


def test_reminders_keyed_before_the_deadlines_date_are_rekeyed_from_the_date_they_named(engine: Engine) -> None:
    plan, first = reminded_a_week_before_study(engine)
    undated = redated(first, ":study:2024-04-30:7", ":study:7")
    migrate(engine, "downgrade", "20261201_1900")  # the keys as the older code wrote them
    assert reminder_keys(engine) == undated
    migrate(engine, "upgrade", "head")
    assert reminder_keys(engine) == first
    sweep(engine, KEY, at("2024-04-24T12:00"), seal_key=SEAL_KEY)  # the unmoved deadline: not reminded twice
    assert reminder_keys(engine) == first
    # The deadline moves under the older code; the upgrade keys its reminders by the date they named, not the new one.
    migrate(engine, "downgrade", "20261201_1900")
    reload(engine, moved(plan, study=("2024-03-25", "2024-05-07"), analysis=("2024-05-08", "2024-05-31")), "2024-04-25T09:00",
           sealed=False)
    migrate(engine, "upgrade", "head")
    assert reminder_keys(engine) == first
    sweep(engine, KEY, at("2024-05-01T00:10"), seal_key=SEAL_KEY)
    again = redated(first, ":study:2024-04-30:7", ":study:2024-05-07:7")
    assert reminder_keys(engine) == {e: first[e] | again[e] for e in REMINDERS}
    # Down again: the current deadline's reminders lose their date, the moved one's keep it (keys stay unique).
    migrate(engine, "downgrade", "20261201_1900")
    assert reminder_keys(engine) == {e: first[e] | undated[e] for e in REMINDERS}
