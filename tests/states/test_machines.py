"""The machines, exhaustively: every state × trigger pair is allowed or refused exactly as the data says."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from states import branch, member
from states.errors import InvalidTransition
from states.machine import PHASES, Subject

# (state, trigger) → destination when every guard holds; absent pairs must be refused.
EXPECTED_MEMBER: dict[tuple[str, str], str] = {
    ("enrolled", "start"): "study",
    ("study", "advance"): "analysis",
    ("analysis", "advance"): "rectification",
    ("rectification", "advance"): "consolidation",
    ("consolidation", "advance"): "pledge",
    ("pledge", "advance"): "completed",
    ("consolidation", "lapse"): "withdrawal_pending",
    ("consolidation", "disqualify"): "disqualified",
    ("withdrawal_pending", "withdraw"): "withdrawn",
    ("withdrawal_pending", "accept_late"): "consolidation",
    **{(s, "exempt"): "exempt" for s in member.ACTIVE},
    **{(s, "refer"): "referred" for s in member.ACTIVE},
}


def Always() -> dict[str, bool]:  # noqa: N802 - reads as a value
    """Every condition of either machine holds."""
    names = {g for m in (member, branch) for t in m.TRANSITIONS for g in t.guards if not g.startswith("came_from_")}
    return dict.fromkeys(names, True)


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(member.STATES, member.machine().triggers)))
def test_member_state_trigger(state: str, trigger: str) -> None:
    machine = member.machine()
    if trigger in ("unexempt", "resume"):
        source = "exempt" if trigger == "unexempt" else "referred"
        if state != source:
            with pytest.raises(InvalidTransition):
                machine.fire(Subject(state, Always()), trigger)
            return
        for prior in member.ACTIVE:  # goes back exactly where it came from
            subject = Subject(state, Always(), prior=prior)
            assert machine.fire(subject, trigger)
            assert subject.state == prior
        return
    expected = EXPECTED_MEMBER.get((state, trigger))
    if expected is None:
        with pytest.raises(InvalidTransition):
            machine.fire(Subject(state, Always()), trigger)
        return
    # `lapse` fires when its `unless` condition fails: no written application.
    results = {"pledge_application": False} if trigger == "lapse" else Always()
    subject = Subject(state, results)
    assert machine.fire(subject, trigger)
    assert subject.state == expected


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(branch.STATES, branch.machine().triggers)))
def test_branch_state_trigger(state: str, trigger: str) -> None:
    machine = branch.machine()
    order = ("enrolled", *PHASES, "completed")
    allowed = (trigger == "start" and state == "enrolled") or (trigger == "advance" and state in PHASES)
    if not allowed:
        with pytest.raises(InvalidTransition):
            machine.fire(Subject(state, Always()), trigger)
        return
    subject = Subject(state, Always())
    assert machine.fire(subject, trigger)
    assert subject.state == order[order.index(state) + 1]


@pytest.mark.parametrize("phase", PHASES)
def test_each_condition_guards_the_advance(phase: str) -> None:
    """Any single unmet condition holds the member in its phase."""
    edge = member.advance_edge(phase)
    assert edge is not None and edge.conditions
    for failing in edge.conditions:
        results = {name: name != failing for name in edge.conditions}
        subject = Subject(phase, results)
        assert not member.machine().fire(subject, "advance")
        assert subject.state == phase


def test_no_shortcuts_to_states() -> None:
    """auto_transitions=False: no to_<state>() that would skip every guard."""
    subject = Subject("study", {})
    member.machine()._machine.add_model(subject, initial="study")
    try:
        assert not hasattr(subject, "to_completed")
    finally:
        member.machine()._machine.remove_model(subject)


def test_every_condition_named_in_a_machine_is_defined_once() -> None:
    from states.conditions import CONDITIONS, condition

    keys = [(c.scope, c.name) for c in CONDITIONS]
    assert len(keys) == len(set(keys))
    for scope, machine in (("member", member), ("branch", branch)):
        for edge in machine.TRANSITIONS:
            for name in edge.guards:
                if name.startswith("came_from_") or name.startswith("withdrawal_"):
                    continue
                assert condition(scope, name).name == name  # raises KeyError when missing


def test_core_imports_neither_prefect_nor_jinja() -> None:
    code = (
        "import sys, pkgutil, importlib, states\n"
        "for m in pkgutil.walk_packages(states.__path__, 'states.'): importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('prefect', 'jinja2')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
