"""One-time codes in the database: spent once, a few wrong tries then locked, a replayed attempt counted once, and
two submissions of the right code at once — only one wins (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from states import codes
from states.models import CodeUse
from tests.fixtures import at

KEY = bytes(range(32))
ARGS = {"purpose": "approval", "campaign": "sfao-2024", "subject": codes.ballot_subject("B01", 7), "person": "M002"}


def redeem(engine: Engine, given: str, attempt: str | None = None, variant: str = "approve") -> codes.Verdict:
    with Session(engine) as session, session.begin():
        return codes.redeem(
            session, KEY, **ARGS, given=given, at=at("2024-08-09T10:00"), attempt=attempt or uuid.uuid4().hex,
            variant=variant,
        )


def right(variant: str = "approve") -> str:
    return codes.code_for(KEY, **ARGS, variant=variant)


def test_a_code_is_8_digits_bound_to_everything_it_decides() -> None:
    code = right()
    assert len(code) == 8 and code.isdigit()
    others = {
        codes.code_for(KEY, **{**ARGS, "person": "M001"}, variant="approve"),
        codes.code_for(KEY, **{**ARGS, "subject": codes.ballot_subject("B01", 8)}, variant="approve"),
        codes.code_for(KEY, **{**ARGS, "campaign": "sfao-2025"}, variant="approve"),
        codes.code_for(KEY, **{**ARGS, "purpose": "retry"}, variant="approve"),
        codes.code_for(KEY, **ARGS, variant="reject"),
        codes.code_for(bytes(32), **ARGS, variant="approve"),
    }
    assert code not in others and len(others) == 6
    # The fields are length-prefixed: moving a separator changes the message.
    assert codes.code_for(KEY, "retry", "a", "b:c", "d") != codes.code_for(KEY, "retry", "a:b", "c", "d")


def test_the_right_code_works_once_and_spends_the_other_decision_s_code_too(engine: Engine) -> None:
    assert redeem(engine, "") is codes.Verdict.WRONG
    assert redeem(engine, right("reject")) is codes.Verdict.WRONG  # the reject code does not approve
    assert redeem(engine, f" {right()[:4]}-{right()[4:]} ") is codes.Verdict.VERIFIED  # spaces and a dash are fine
    assert redeem(engine, right()) is codes.Verdict.SPENT
    assert redeem(engine, right("reject"), variant="reject") is codes.Verdict.SPENT
    with Session(engine) as session:
        rows = session.execute(select(CodeUse.attempt, CodeUse.outcome)).all()
    assert sorted(o for _, o in rows) == ["used", "wrong", "wrong"]
    assert all(right() not in (a, o) for a, o in rows)  # the code itself is stored nowhere


def test_five_wrong_tries_lock_the_person_out_and_a_replayed_try_counts_once(engine: Engine) -> None:
    for _ in range(3):
        assert redeem(engine, "00000000", attempt="run-1:0") is codes.Verdict.WRONG  # one attempt, replayed
    for n in range(1, codes.MAX_FAILURES):
        assert redeem(engine, "00000000", attempt=f"run-2:{n}") is codes.Verdict.WRONG
    assert redeem(engine, right()) is codes.Verdict.LOCKED  # even the right code, now
    with Session(engine) as session, session.begin():  # another leader is not locked out
        assert codes.redeem(
            session, KEY, **{**ARGS, "person": "M001"}, given=codes.code_for(KEY, **{**ARGS, "person": "M001"}),
            at=at("2024-08-09T10:00"), attempt="x",
        ) is codes.Verdict.VERIFIED


@pytest.mark.parametrize("rounds", [5])
def test_of_two_submissions_of_the_right_code_at_once_one_wins(engine: Engine, rounds: int) -> None:
    for n in range(rounds):
        subject = codes.ballot_subject("B02", n)
        given = codes.code_for(KEY, "approval", "sfao-2024", subject, "M002")
        start = threading.Barrier(2)
        verdicts: list[codes.Verdict] = []

        def submit(
            given: str = given, subject: str = subject, start: threading.Barrier = start,
            verdicts: list[codes.Verdict] = verdicts,
        ) -> None:
            start.wait()
            with Session(engine) as session, session.begin():
                verdicts.append(
                    codes.redeem(
                        session, KEY, purpose="approval", campaign="sfao-2024", subject=subject, person="M002",
                        given=given, at=at("2024-08-09T10:00"), attempt=uuid.uuid4().hex,
                    )
                )

        threads = [threading.Thread(target=submit) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(v.value for v in verdicts) == ["spent", "verified"]
