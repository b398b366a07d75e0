"""The branch machine: a branch only moves along the phases, each exit guarded by the branch's own conditions."""

from __future__ import annotations

from functools import cache

from states.machine import MAIN_PATH, PHASES, StrictMachine, Transition

STATES: tuple[str, ...] = MAIN_PATH

ADVANCE: dict[str, tuple[str, ...]] = {
    "study": ("mobilization_meeting", "concentrated_training", "discussion_meeting"),
    "analysis": ("opinions_solicited", "analysis_meeting"),
    "rectification": ("branch_rectification_plan", "theme_activity"),
    "consolidation": ("member_meeting_ballot",),
    "pledge": ("oath_ceremony",),
}


def _transitions() -> list[Transition]:
    order = (*PHASES, "completed")
    edges = [Transition("start", "enrolled", "study")]
    for here, there in zip(order, order[1:], strict=False):
        edges.append(Transition("advance", here, there, ADVANCE[here]))
    return edges


TRANSITIONS: tuple[Transition, ...] = tuple(_transitions())


@cache
def machine() -> StrictMachine:
    """The one branch Machine of this process."""
    return StrictMachine("branch", STATES, TRANSITIONS)


def advance_edge(state: str) -> Transition | None:
    found = [t for t in TRANSITIONS if t.trigger == "advance" and t.source == state]
    return found[0] if found else None
