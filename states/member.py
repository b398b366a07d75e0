"""The member machine: every state a member can be in, every transition with its named conditions, as data."""

from __future__ import annotations

from functools import cache

from states.machine import PHASES, StrictMachine, Transition

SIDE_STATES: tuple[str, ...] = ("exempt", "referred", "withdrawal_pending", "withdrawn", "disqualified")
STATES: tuple[str, ...] = ("enrolled", *PHASES, "completed", *SIDE_STATES)
TERMINAL: frozenset[str] = frozenset({"completed", "withdrawn", "disqualified"})
# States a member can be exempted from or referred out of, and so returned to.
ACTIVE: tuple[str, ...] = ("enrolled", *PHASES, "withdrawal_pending")

# The exit conditions of each phase (the campaign's rules), in the order people read them. `branch`: the member's
# branch has already left the phase, since a member never moves ahead of its branch.
ADVANCE: dict[str, tuple[str, ...]] = {
    "study": ("branch", "study_hours", "concentrated_days", "study_check"),
    "analysis": ("branch", "analysis_report", "satisfaction_evaluation", "heart_talk"),
    "rectification": ("branch", "rectification_plan", "good_deed"),
    "consolidation": (
        "branch",
        "pledge_application",
        "member_meeting_ballot",
        "approval",
        "publicity",
        "qualified",
        "followup",
    ),
    "pledge": ("branch", "oath", "public_commitment"),
}


def _transitions() -> list[Transition]:
    edges = [Transition("start", "enrolled", "study")]
    order = (*PHASES, "completed")
    for here, there in zip(order, order[1:], strict=False):
        edges.append(Transition("advance", here, there, ADVANCE[here]))
    edges += [
        # The consolidation deadline finds no written application (only the deadline's firing uses it).
        Transition("lapse", "consolidation", "withdrawal_pending", unless=("pledge_application",)),
        # Rated unqualified, approved and published: organisational disposition follows.
        Transition("disqualify", "consolidation", "disqualified", ("unqualified", "approval", "publicity")),
        Transition("withdraw", "withdrawal_pending", "withdrawn", ("withdrawal_confirmed", "withdrawal_approved")),
        Transition("accept_late", "withdrawal_pending", "consolidation", ("pledge_application",)),
    ]
    # "Go back where it came from" is one guarded transition per source state, generated from data.
    for source in ACTIVE:
        edges.append(Transition("exempt", source, "exempt"))
        edges.append(Transition("unexempt", "exempt", source, (f"came_from_{source}",)))
        edges.append(Transition("refer", source, "referred"))
        edges.append(Transition("resume", "referred", source, (f"came_from_{source}",)))
    return edges


TRANSITIONS: tuple[Transition, ...] = tuple(_transitions())


@cache
def machine() -> StrictMachine:
    """The one member Machine of this process."""
    return StrictMachine("member", STATES, TRANSITIONS)


def advance_edge(state: str) -> Transition | None:
    """The `advance` edge out of a phase, or None."""
    found = [t for t in TRANSITIONS if t.trigger == "advance" and t.source == state]
    return found[0] if found else None
