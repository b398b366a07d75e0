"""The machine pictures: drawn from the transitions the code runs, and the copies in docs/ never drift from them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from reports import diagram
from states import branch as branch_machine
from states import labels
from states import member as member_machine


@pytest.mark.parametrize("name", diagram.MACHINES)
@pytest.mark.parametrize("words", ["code", "zh-CN"])
def test_svg_is_well_formed_and_names_every_state(name: diagram.MachineName, words: diagram.Words) -> None:
    text = diagram.svg(name, words)
    root = ET.fromstring(text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    shown = "".join(root.itertext())
    states, transitions = diagram.definition(name)
    for state in states:
        assert state in shown and labels.state_label(state, "zh-CN") in shown, state
    for transition in transitions:
        trigger = transition.trigger if words == "code" else diagram.TRIGGER_WORDS[transition.trigger]
        assert trigger in shown, transition
        if words == "code":
            for condition in transition.conditions:
                assert re.sub(r"came_from_\w+", "came_from_*", condition) in shown, condition
    assert "<script" not in text and "href=\"http" not in text


def test_every_trigger_has_chinese_words() -> None:
    triggers = {t.trigger for t in member_machine.TRANSITIONS} | {t.trigger for t in branch_machine.TRANSITIONS}
    assert triggers <= set(diagram.TRIGGER_WORDS)


def test_bundles_stand_for_every_transition() -> None:
    for name in diagram.MACHINES:
        _states, transitions = diagram.definition(name)
        drawn = {
            (edge.trigger, source, dest)
            for edge in diagram.edges_of(transitions)
            for source in edge.sources
            for dest in edge.dests
        }
        assert drawn == {(t.trigger, t.source, t.dest) for t in transitions}


def test_main_path_runs_left_to_right() -> None:
    layout = diagram.layout("member", "code")
    main = [layout.nodes[s] for s in ("enrolled", "study", "analysis", "rectification", "consolidation",
                                      "pledge", "completed")]
    assert all(n.row == 0 for n in main)
    assert [n.x for n in main] == sorted(n.x for n in main)
    assert all(layout.nodes[s].row > 0 for s in member_machine.SIDE_STATES)


@pytest.mark.parametrize("name", diagram.MACHINES)
def test_mermaid_has_every_transition(name: diagram.MachineName) -> None:
    text = diagram.mermaid(name)
    assert text.startswith("stateDiagram-v2\n")
    _states, transitions = diagram.definition(name)
    for t in transitions:
        assert re.search(rf"^    {t.source} --> {t.dest} : {t.trigger}\b", text, re.M), t


def test_state_table_lists_every_state() -> None:
    table = diagram.state_table("member")
    for state in member_machine.STATES:
        assert f"| `{state}` |" in table


def test_docs_are_what_the_generator_produces_now() -> None:
    for path, content in diagram.generated_docs().items():
        assert path.exists(), f"{path} is missing: run python -m reports.diagram --write"
        assert path.read_text(encoding="utf-8") == content, f"{path} drifted: run python -m reports.diagram --write"
    assert diagram.main(["--check"]) == 0
