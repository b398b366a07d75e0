"""The retry-stuck flow: an operator's retry from the UI advances a mended member — with the actor's one-time code
for that very request, sent to the actor alone; a refusal fails in one line."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from flows import runtime
from flows.retry_flow import retry_stuck
from notices.dispatch import dispatch
from states import sweep
from states.models import Notice, TransitionLog
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


def delivered_code(outbox: Path, address: str) -> str:
    """The code of the one action_code message to `address`."""
    found = []
    for path in outbox.rglob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["X-Campaign-Event"] == "action_code" and message["To"].addresses[0].addr_spec == address:
            text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
            found += re.findall(r"\b([0-9]{8})\b", text)
    [code] = found
    return code


def retry_log(db: Engine) -> list[TransitionLog]:
    with Session(db) as session:
        return list(session.scalars(select(TransitionLog).where(TransitionLog.cause == "retry")))


def test_the_retry_flow_advances_a_mended_member_with_the_actor_s_code(prefect_harness: str, stuck: Engine) -> None:
    request = {"actor": "M002", "reason": "study hours mended", "members": [MENDED], "at": "2024-05-06T09:00"}
    asked = retry_stuck(KEY, **request, return_state=True)
    assert asked.is_failed() and asked.message.startswith("campaign: 本次申请的一次性验证码已发给 M002")
    assert member_states(stuck)[MENDED] == "study" and retry_log(stuck) == []
    with Session(stuck) as session:
        queued = session.scalars(select(Notice).where(Notice.event == "action_code")).all()
    assert [n.recipient_id for n in queued] == ["M002"]
    assert retry_stuck(KEY, **request, return_state=True).message == asked.message  # asked twice: one notice
    assert dispatch(stuck, runtime.settings()).failed == 0
    code = delivered_code(runtime.settings().outbox_dir, "m002@sfao.example.cn")
    assert code not in str(queued[0].context)

    for wrong in ("00000000", code[::-1] if code[::-1] != code else "11111111"):
        refused = retry_stuck(KEY, **request, code=wrong, return_state=True)
        assert refused.is_failed() and refused.message == "campaign: M002 的一次性验证码不正确"
    other_reason = retry_stuck(KEY, **{**request, "reason": "another reason"}, code=code, return_state=True)
    assert other_reason.message == "campaign: M002 的一次性验证码不正确"  # a code serves its own request only
    other_actor = retry_stuck(KEY, **{**request, "actor": "M001"}, code=code, return_state=True)
    assert other_actor.message == "campaign: M001 的一次性验证码不正确"
    assert member_states(stuck)[MENDED] == "study" and retry_log(stuck) == []

    state = retry_stuck(KEY, **request, code=code, return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["advanced"] == {MENDED: ["study", "analysis"]}
    assert member_states(stuck)[MENDED] == "analysis"
    [entry] = [e for e in retry_log(stuck) if e.member_id == MENDED and e.to_state == "analysis"]
    assert (entry.cause, entry.actor, entry.reason) == ("retry", "M002", "study hours mended (via prefect-ui, code verified)")
    assert entry.flow_run_id == str(state.state_details.flow_run_id)

    replay = retry_stuck(KEY, **request, code=code, return_state=True)
    assert replay.is_failed()
    assert replay.message == "campaign: M002 办理此项决定的一次性验证码已经用过"
    assert len(retry_log(stuck)) == 1  # the one entry of the one verified retry


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actor": "M010", "members": [MENDED]}, "campaign: M010（党员）无权对 M054 办理"),
        ({"actor": "M002", "members": ["M999"]}, "campaign: 没有党员 'M999'"),
        ({"actor": "M002", "members": [MENDED], "at": "2024-05-01T09:00"}, "campaign: 所列对象均未能推进"),
        ({"actor": "M002"}, "campaign: 请指定 members、branches 或 all_stuck"),
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
