"""The retry-stuck flow: an operator's retry from the UI advances a mended member; a refusal fails in one line."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from flows.retry_flow import retry_stuck
from states import sweep
from states.models import TransitionLog
from tests.fixtures import SEAL_KEY
from tests.flows.helpers import KEY, at, campaign_slots_in_use, member_states

pytestmark = pytest.mark.prefect

MENDED = "M054"  # short of study hours at the study deadline; the demo records mend it 2–5 days later


@pytest.fixture
def stuck(campaign_db: Engine) -> Engine:
    sweep.sweep(campaign_db, KEY, at("2024-03-25T00:00:01"), seal_key=SEAL_KEY)
    sweep.sweep(campaign_db, KEY, at("2024-05-01T00:00:01"), seal_key=SEAL_KEY)
    assert member_states(campaign_db)[MENDED] == "study"
    return campaign_db


def test_the_retry_flow_advances_a_mended_member(prefect_harness: str, stuck: Engine) -> None:
    state = retry_stuck(
        KEY, actor="M002", reason="study hours mended", members=[MENDED], at="2024-05-06T09:00", return_state=True
    )
    assert state.is_completed(), state.message
    assert state.result()["advanced"] == {MENDED: ["study", "analysis"]}
    assert member_states(stuck)[MENDED] == "analysis"
    with Session(stuck) as session:
        entry = session.scalars(
            select(TransitionLog).where(TransitionLog.member_id == MENDED, TransitionLog.to_state == "analysis")
        ).one()
    assert (entry.cause, entry.actor, entry.reason) == ("retry", "M002", "study hours mended")
    assert entry.flow_run_id == str(state.state_details.flow_run_id)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actor": "M010", "members": [MENDED]}, "campaign: M010 (member) may not act on M054"),
        ({"actor": "M002", "members": ["M999"]}, "campaign: unknown member 'M999'"),
        ({"actor": "M002", "members": [MENDED], "at": "2024-05-01T09:00"}, "campaign: nothing named could advance"),
        ({"actor": "M002"}, "campaign: name members, branches or all_stuck"),
    ],
)
def test_a_refused_retry_fails_the_run_with_the_cli_s_one_line(
    prefect_harness: str, stuck: Engine, kwargs: dict, message: str
) -> None:
    state = retry_stuck(KEY, reason="try", return_state=True, **kwargs)
    assert state.is_failed()
    assert state.message == message
    assert member_states(stuck)[MENDED] == "study"
    assert campaign_slots_in_use() == 0
