"""Who may act: every operator command × every role, through the CLI; refusals change nothing.

The target is M026, a plain member of branch B02, in `study` after the start fired. A command an actor may give
either succeeds or is refused by a precondition (exit 1 naming no authority); a command they may not give exits 1
with an authority reason (exit 2 for an actor who is not on the roster) and leaves every table as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from states.db import make_engine
from tests.fixtures import KEY, load_sample
from tests.reliability.synth import backup, counts, env_for, run_cli

AT = "2024-04-10T10:00"
TARGET, BRANCH = "M026", "B02"
ROLES = {
    "member": "M027",
    "branch_secretary_own": "M025",
    "branch_secretary_other": "M004",
    "committee_secretary": "M002",
    "party_group_deputy": "M047",
    "party_group_secretary": "M001",
    "office_director": "M003",
    "inspector": "I01",
    "unknown": "X404",
}
LEADERS = {"committee_secretary", "party_group_deputy", "party_group_secretary"}
PARTICIPANTS = set(ROLES) - {"inspector", "unknown"}
COMMANDS: dict[str, tuple[list[str], set[str]]] = {
    "retry": (["retry", KEY, "--member", TARGET, "--reason", "r"], LEADERS | {"branch_secretary_own"}),
    "retry-branch": (["retry", KEY, "--branch", BRANCH, "--reason", "r"], LEADERS | {"branch_secretary_own"}),
    "retry-all-stuck": (
        ["retry", KEY, "--all-stuck", "--reason", "r"],
        LEADERS | {"branch_secretary_own", "branch_secretary_other"},  # a secretary: every stuck member of their branch
    ),
    "exempt": (["exempt", KEY, "--member", TARGET, "--reason", "posted abroad"], LEADERS | {"branch_secretary_own"}),
    "refer": (["refer", KEY, "--member", TARGET, "--reason", "case 7"], LEADERS | {"branch_secretary_own"}),
    "resume": (["resume", KEY, "--member", TARGET, "--reason", "closed"], LEADERS | {"branch_secretary_own"}),
    "withdrawal": (["withdrawal", KEY, "--member", TARGET, "--confirm", "--reason", "r"], LEADERS | {"branch_secretary_own"}),
    "approve": (["approve", KEY, "--branch", BRANCH], LEADERS),
    "excellent": (["excellent", KEY, "--member", TARGET], LEADERS),
    "object": (["object", KEY, "--member", TARGET, "--reason", "r"], PARTICIPANTS),
    "resolve": (["resolve", KEY, "--member", TARGET, "--dismissed", "--reason", "r"], LEADERS),
}
# How a refusal for want of authority reads (Chinese, the default): 无权…, 只有上级党委可以…, 督导组成员, 的书记，不是….
AUTHORITY_WORDS = ("无权", "只有上级党委", "督导组成员", "的书记，不是")


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample office, its 2024 plan and evidence, the start fired: one database copied for each case."""
    folder = tmp_path_factory.mktemp("authority")
    db = folder / "office.db"
    engine = make_engine(f"sqlite:///{db}")
    from states.db import ensure_schema

    ensure_schema(engine)
    load_sample(engine)
    engine.dispose()
    result = run_cli(["sweep", KEY, "--at", "2024-03-25T00:00:01"], env_for(db, folder / "outbox"))
    assert result.code == 0, result.err
    return db


CASES = [(command, role) for command in COMMANDS for role in ROLES]
SEEN: dict[str, int] = {"cases": 0, "refused": 0, "allowed": 0}


@pytest.mark.parametrize(("command", "role"), CASES, ids=[f"{c}-{r}" for c, r in CASES])
def test_who_may_act(office: Path, tmp_path: Path, command: str, role: str) -> None:
    db = tmp_path / "case.db"
    backup(office, db)
    args, allowed = COMMANDS[command]
    before = counts(db)
    result = run_cli([*args, "--actor", ROLES[role], "--at", AT], env_for(db, tmp_path / "outbox"))
    SEEN["cases"] += 1
    assert "Traceback" not in result.err
    if role == "unknown":
        assert result.code == 2, (result.code, result.err)
        assert counts(db) == before
        return
    if role in allowed:
        SEEN["allowed"] += 1
        assert result.code in (0, 1), result.err
        if result.code == 1:
            assert not any(w in result.err for w in AUTHORITY_WORDS), f"{role} refused {command}: {result.err}"
            assert counts(db) == before, "a refusal changed something"
        else:
            entries = counts(db)["transition_log"] - before["transition_log"]
            assert entries >= 1, f"{command} by {role} left no audit entry"
        return
    SEEN["refused"] += 1
    assert result.code == 1, (command, role, result.code, result.err)
    assert any(w in result.err for w in AUTHORITY_WORDS), f"{command} by {role}: refused for another reason: {result.err}"
    assert result.err.count("\n") == 1 and result.err.startswith("campaign: ")
    assert counts(db) == before, f"{command} by {role} was refused but changed the database"


def test_actions_are_audited_with_actor_reason_time_and_source(office: Path, tmp_path: Path) -> None:
    """Each operator action (exempt, undo, refer, resume) is one entry with actor, reason and time; the source
    (cause) names the command."""
    import json

    db = tmp_path / "case.db"
    backup(office, db)
    env = env_for(db, tmp_path / "outbox")
    steps = [
        ["exempt", KEY, "--member", TARGET, "--actor", "M025", "--reason", "posted abroad", "--at", "2024-04-10T10:00"],
        ["exempt", KEY, "--member", TARGET, "--undo", "--actor", "M002", "--reason", "back home", "--at", "2024-04-11T10:00"],
        ["refer", KEY, "--member", TARGET, "--actor", "M047", "--reason", "case 7", "--at", "2024-04-12T10:00"],
        ["resume", KEY, "--member", TARGET, "--actor", "M001", "--reason", "case closed", "--at", "2024-04-13T10:00"],
    ]
    for step in steps:
        result = run_cli(step, env)
        assert result.code == 0, (step, result.err)
    result = run_cli(["audit", KEY, "--member", TARGET, "--json"], env)
    assert result.code == 0
    entries = [e for e in json.loads(result.out) if e["actor"] != "system"]
    assert [(e["actor"], e["reason"]) for e in entries] == [
        ("M025", "posted abroad"), ("M002", "back home"), ("M047", "case 7"), ("M001", "case closed")
    ]
    assert [e["at"][:10] for e in entries] == ["2024-04-10", "2024-04-11", "2024-04-12", "2024-04-13"]
    assert all(e["cause"] for e in entries)
    assert run_cli(["audit", KEY, "--verify"], env).code == 0


def test_every_successful_action_is_audited_even_when_nothing_moves(office: Path, tmp_path: Path) -> None:
    db = tmp_path / "case.db"
    backup(office, db)
    env = env_for(db, tmp_path / "outbox")
    before = counts(db)["transition_log"]
    result = run_cli(["retry", KEY, "--all-stuck", "--actor", "M002", "--reason", "weekly check", "--at", AT], env)
    assert result.code == 0
    assert counts(db)["transition_log"] > before, "an operator action without an audit entry"
