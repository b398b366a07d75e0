"""What the member and branch machines share: the phase order and a strict `transitions` Machine built from data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine, MachineError

from states.errors import InvalidTransition
from states.labels import state_label

PHASES: tuple[str, ...] = ("study", "analysis", "rectification", "consolidation", "pledge")
MAIN_PATH: tuple[str, ...] = ("enrolled", *PHASES, "completed")


def ordinal(state: str) -> int:
    """Position on the main path; side states have none (-1)."""
    return MAIN_PATH.index(state) if state in MAIN_PATH else -1


def next_phase(state: str) -> str:
    return MAIN_PATH[MAIN_PATH.index(state) + 1]


@dataclass(frozen=True)
class Transition:
    """One edge of a machine, as data: the sweep turns it into SQL, the Machine into callbacks."""

    trigger: str
    source: str
    dest: str
    conditions: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "source": self.source,
            "dest": self.dest,
            "conditions": list(self.conditions),
            "unless": list(self.unless),
        }

    @property
    def guards(self) -> tuple[str, ...]:
        return self.conditions + self.unless


@dataclass
class Subject:
    """A member or branch as the Machine sees it: its state and the evaluated conditions of this moment.

    Conditions are looked up by name (transitions resolves them with getattr), so the machine's named
    conditions read the very results `explain` shows.
    """

    state: str
    results: Mapping[str, bool] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)
    prior: str | None = None
    """The state a side state (exempt, referred) was entered from: `came_from_<state>` reads it."""

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not found normally: condition names, facts and came_from_<state>.
        if name.startswith("came_from_"):
            return self.__dict__.get("prior") == name.removeprefix("came_from_")
        results = self.__dict__.get("results", {})
        if name in results:
            return bool(results[name])
        facts = self.__dict__.get("facts", {})
        if name in facts:
            return bool(facts[name])
        raise AttributeError(name)


class StrictMachine:
    """One `transitions.Machine` per machine type per process; subjects are attached only for a single step."""

    def __init__(self, name: str, states: Sequence[str], transitions: Sequence[Transition]) -> None:
        self.name = name
        self.states = tuple(states)
        self.transitions = tuple(transitions)
        self._machine = Machine(
            model=None,
            states=list(states),
            transitions=[t.as_dict() for t in transitions],
            initial=states[0],
            auto_transitions=False,
            ignore_invalid_triggers=False,
            name=name,
        )

    @property
    def triggers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.trigger for t in self.transitions))

    def edges(self, trigger: str, source: str) -> list[Transition]:
        return [t for t in self.transitions if t.trigger == trigger and t.source == source]

    def allowed(self, trigger: str, source: str) -> bool:
        return bool(self.edges(trigger, source))

    def fire(self, subject: Subject, trigger: str) -> bool:
        """Try `trigger` on `subject`; True when it moved. Raises InvalidTransition when not allowed from its state."""
        if not self.allowed(trigger, subject.state):
            raise InvalidTransition(
                zh=f"{self.name}：处于{state_label(subject.state, 'zh-CN')}时不能办理 '{trigger}'",
                en=f"{self.name}: '{trigger}' is not possible from '{subject.state}'",
            )
        self._machine.add_model(subject, initial=subject.state)
        try:
            return bool(getattr(subject, trigger)())
        except MachineError as exc:  # pragma: no cover - allowed() checked it
            raise InvalidTransition(zh=f"{self.name}：状态机拒绝 '{trigger}'（{exc}）", en=str(exc)) from exc
        finally:
            self._machine.remove_model(subject)
