"""One sweep of a campaign at a time (`states.running`): a second sweep while one runs is refused at once, on SQLite
and PostgreSQL, and the running one ends as a sweep alone would — its lanes merged by its own finish, none taken
from under it."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from states import audit, running
from states.models import AuditLaneMerge, MemberProgress
from states.sweep import sweep
from tests.fixtures import KEY, SEAL_KEY, at

WHEN = "2024-05-01T00:00:01"  # start and study both due: 9 branches a chunk each, two firings
EARLY = "2024-03-25T00:00:01"  # the start alone due


def test_a_second_sweep_while_one_runs_is_refused_and_the_first_ends_whole(sample: Engine) -> None:
    refused: list[Exception] = []

    def beside(index: int, _total: int) -> None:
        if index == 1:  # the first chunk committed on its lane: the sweep is running
            try:
                # Unguarded, this one fires the start in every other chunk and its finish merges the first sweep's
                # lane: the first sweep's next chunk that writes (the study's) then has its seal refused.
                sweep(sample, KEY, at(EARLY), seal_key=SEAL_KEY, branches_per_chunk=1)
            except running.SweepRunning as exc:
                refused.append(exc)

    first = sweep(sample, KEY, at(WHEN), seal_key=SEAL_KEY, branches_per_chunk=1, progress=beside)
    assert [str(e) for e in refused] == [
        f"another sweep of campaign {KEY!r} is running (a command or a Prefect flow); nothing was changed: "
        "run it again once that one has ended"
    ]
    assert refused[0].text("zh-CN").startswith(f"活动 {KEY!r} 的另一次扫描正在进行") and refused[0].exit_code == 1
    assert first.fired == ["start", "study"]
    with Session(sample) as session:
        states = Counter(dict(session.execute(
            select(MemberProgress.state, func.count()).group_by(MemberProgress.state)).all()))
        verdict = audit.verify(session, SEAL_KEY)
        merges = session.scalars(select(AuditLaneMerge.merge_block).distinct()).all()
    assert states == Counter({"analysis": 150, "study": 25})
    assert verdict.broken is None and verdict.pending == ()
    assert len(merges) == 1  # the first sweep's finish merged its own lanes; nothing else merged them


def test_the_hold_is_freed_when_a_sweep_ends_or_fails(sample: Engine) -> None:
    with pytest.raises(RuntimeError), running.one_sweep(sample, KEY):
        raise RuntimeError("a sweep that failed")
    with running.one_sweep(sample, KEY), running.one_sweep(sample, "another-campaign"):
        pass  # free again, and campaigns do not hold each other
    assert sweep(sample, KEY, at(WHEN), seal_key=SEAL_KEY).fired == ["start", "study"]
