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
from states.errors import Refused
from states.models import Campaign, Phase, TransitionLog
from states.plan import Plan, load_plan
from states.status import summary
from states.sweep import sweep
from tests.fixtures import KEY, SEAL_KEY, at, load_sample


def reload(engine: Engine, plan: dict[str, Any], when: str) -> None:
    moment = at(when)
    with Session(engine) as session, session.begin():
        load_plan(session, Plan.model_validate(plan), "M002", moment)
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
