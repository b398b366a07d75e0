"""The member and branch machines as pictures drawn from their transitions: our own layered SVG, and Mermaid text."""

from __future__ import annotations

import argparse
import math
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Literal, TypeAlias

from states import branch as branch_machine
from states import labels
from states import member as member_machine
from states.machine import MAIN_PATH, Transition

MachineName: TypeAlias = Literal["member", "branch"]
Words: TypeAlias = Literal["code", "zh-CN"]
"""What edge labels say: the identifiers of the code (docs), or the organisation's Chinese words (reports)."""

MACHINES: tuple[MachineName, ...] = ("member", "branch")
DOCS_DIR: Path = Path(__file__).resolve().parent.parent / "docs"

# Triggers are verbs of the code; labels.py names states and conditions but not triggers, so they live here.
TRIGGER_WORDS: dict[str, str] = {
    "start": "启动",
    "advance": "转入下一阶段",
    "lapse": "逾期未申请",
    "disqualify": "组织处置",
    "withdraw": "除名",
    "accept_late": "接受补交申请",
    "exempt": "免予参加",
    "unexempt": "撤销免予",
    "refer": "移交处理",
    "resume": "恢复",
}
# Guards of the side transitions that are facts of an operator's action, not conditions of the campaign's rules.
GUARD_WORDS: dict[str, str] = {
    "came_from_*": "回到原状态",
    "withdrawal_confirmed": "支部确认",
    "withdrawal_approved": "上级党委批准",
}

# Geometry (px). Text widths are estimated, so boxes are sized with a margin rather than measured.
FONT = "'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC',sans-serif"
NODE_H = 46.0
NODE_PAD = 14.0
TITLE_SIZE = 13.0
SUB_SIZE = 10.5
LABEL_SIZE = 10.5
LINE_H = 13.5
MIN_GAP = 56.0
TICK = 0.3
"""Where a state's line down to the bus leaves its box: this fraction of the box's width right of its centre."""
ROW_GAP = 128.0
MARGIN = 16.0
BUS_MIN_SOURCES = 3
"""A trigger reaching one state from this many sources is drawn once, from a bus, instead of once per source."""

MAIN_FILL, SIDE_FILL, END_FILL = "#e8f0fe", "#fff4e5", "#e6f4ea"
MAIN_STROKE, SIDE_STROKE, END_STROKE = "#3b6fd8", "#d98a1c", "#2f8a4c"
EDGE, RETURN_EDGE, TEXT, MUTED = "#44546a", "#8a94a6", "#1f2933", "#5f6b7a"


def definition(name: MachineName) -> tuple[tuple[str, ...], tuple[Transition, ...]]:
    """The states and transitions of a machine, exactly as the core defines them."""
    if name == "member":
        return member_machine.STATES, member_machine.TRANSITIONS
    if name == "branch":
        return branch_machine.STATES, branch_machine.TRANSITIONS
    raise ValueError(f"unknown machine {name!r} (member or branch)")


# -- grouping transitions into what is drawn -------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """One drawn edge: a single transition, or several that differ only in where they come from or go to."""

    trigger: str
    sources: tuple[str, ...]
    dests: tuple[str, ...]
    conditions: tuple[str, ...]
    unless: tuple[str, ...]

    @property
    def source(self) -> str:
        return self.sources[0]

    @property
    def dest(self) -> str:
        return self.dests[0]

    @property
    def fan_in(self) -> bool:
        return len(self.sources) > 1

    @property
    def fan_out(self) -> bool:
        return len(self.dests) > 1


def _generic(conditions: tuple[str, ...], state: str) -> tuple[str, ...]:
    # `came_from_<state>` is the same guard for every state it returns to: one name for the bundle.
    return tuple("came_from_*" if c == f"came_from_{state}" else c for c in conditions)


def edges_of(transitions: Sequence[Transition]) -> list[Edge]:
    """The transitions grouped: many sources with one trigger and dest → one fan-in; the mirror → one fan-out."""
    fan_in: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    fan_out: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for t in transitions:
        fan_in.setdefault((t.trigger, t.dest, t.conditions, t.unless), []).append(t.source)
        fan_out.setdefault((t.trigger, t.source, _generic(t.conditions, t.dest), t.unless), []).append(t.dest)
    drawn: list[Edge] = []
    done: set[Transition] = set()
    for t in transitions:
        if t in done:
            continue
        sources = fan_in[(t.trigger, t.dest, t.conditions, t.unless)]
        dests = fan_out[(t.trigger, t.source, _generic(t.conditions, t.dest), t.unless)]
        if len(sources) >= BUS_MIN_SOURCES:
            edge = Edge(t.trigger, tuple(sources), (t.dest,), t.conditions, t.unless)
        elif len(dests) >= BUS_MIN_SOURCES:
            edge = Edge(t.trigger, (t.source,), tuple(dests), _generic(t.conditions, t.dest), t.unless)
        else:
            edge = Edge(t.trigger, (t.source,), (t.dest,), t.conditions, t.unless)
        drawn.append(edge)
        done.update(
            x
            for x in transitions
            if x.trigger == edge.trigger and x.source in edge.sources and x.dest in edge.dests
        )
    return drawn


# -- words -----------------------------------------------------------------------------------------------------


def _state_title(state: str, words: Words) -> tuple[str, str]:
    chinese = labels.state_label(state, "zh-CN")
    return (chinese, state) if words == "zh-CN" else (state, chinese)


def _guard_text(name: str, words: Words) -> str:
    if words == "code":
        return name
    if name in GUARD_WORDS:
        return GUARD_WORDS[name]
    return labels.condition_label(name, "zh-CN") if name in labels.CONDITIONS else name


def edge_lines(edge: Edge, words: Words) -> list[str]:
    """An edge's label: the trigger, then one line per condition (and per `unless`)."""
    trigger = TRIGGER_WORDS.get(edge.trigger, edge.trigger) if words == "zh-CN" else edge.trigger
    lines = [trigger]
    lines += [_guard_text(c, words) for c in edge.conditions]
    negation = "无" if words == "zh-CN" else "unless "
    lines += [negation + _guard_text(c, words) for c in edge.unless]
    return lines


def text_width(text: str, size: float) -> float:
    """An estimate: CJK and other wide glyphs take a full em, everything else about 0.6 em."""
    wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in ("W", "F"))
    return (wide * 1.0 + (len(text) - wide) * 0.6) * size


# -- layout ----------------------------------------------------------------------------------------------------


@dataclass
class Node:
    state: str
    row: int
    col: int
    x: float = 0.0
    """Centre."""
    y: float = 0.0
    """Top."""
    terminal: bool = False
    main: bool = True


@dataclass
class Layout:
    nodes: dict[str, Node]
    edges: list[Edge]
    node_w: float
    width: float
    height: float
    top: float
    bus_y: float | None = None
    bus_members: tuple[str, ...] = ()
    bus_span: tuple[float, float] = (0.0, 0.0)


def layout(name: MachineName, words: Words) -> Layout:
    """Layered: the main path left to right on row 0; side states below, near the states they connect to.

    States entered from many sources (exempt, referred) hang off a bus drawn under the main path rather than
    drawing one arrow from each source, which would hide the main path under a thicket of arrows.
    """
    states, transitions = definition(name)
    edges = edges_of(transitions)
    main = [s for s in MAIN_PATH if s in states]
    outgoing = {t.source for t in transitions}
    nodes: dict[str, Node] = {s: Node(s, 0, i, main=True) for i, s in enumerate(main)}
    bus_states = [e.dest for e in edges if e.fan_in and e.dest not in nodes]
    bus_members = tuple(dict.fromkeys(s for e in edges if e.fan_in for s in e.sources))
    taken = {(0, i) for i in range(len(main))}

    def place(state: str, row: int, col: int) -> None:
        while (row, col) in taken:
            col += 1
        taken.add((row, col))
        nodes[state] = Node(state, row, col, main=False)

    # Side states next to their neighbours, in the order the machine defines them; a side state whose only
    # neighbours are side states goes a row below the first of them.
    pending = [s for s in states if s not in nodes and s not in bus_states]
    for _ in range(len(pending) + 1):
        for state in list(pending):
            neighbours = [e.source for e in edges if e.dest == state and not e.fan_in] + [
                e.dest for e in edges if e.source == state and not e.fan_out
            ]
            anchors = [nodes[n] for n in neighbours if n in nodes]
            if not anchors:
                continue
            on_main = [a for a in anchors if a.row == 0]
            if on_main:
                place(state, 1, min(a.col for a in on_main))
            else:
                place(state, anchors[0].row + 1, anchors[0].col)
            pending.remove(state)
    for state in pending:  # unconnected: still shown, at the end of row 1
        place(state, 1, len(main))
    for index, state in enumerate(bus_states):
        place(state, 1, index)
    for node in nodes.values():
        node.terminal = node.state not in outgoing

    # Widths: one box size for all, a gap after each main column wide enough for its edge's label.
    titles = [_state_title(s, words) for s in nodes]
    node_w = max(max(text_width(a, TITLE_SIZE), text_width(b, SUB_SIZE)) for a, b in titles) + 2 * NODE_PAD
    main_edges = {(e.source, e.dest): e for e in edges if not e.fan_in and not e.fan_out}
    columns = max(n.col for n in nodes.values()) + 1
    gaps: list[float] = []
    tallest = 0
    for col in range(columns - 1):
        edge = main_edges.get((main[col], main[col + 1])) if col + 1 < len(main) else None
        lines = edge_lines(edge, words) if edge else []
        tallest = max(tallest, len(lines))
        gaps.append(max(MIN_GAP, max((text_width(line, LABEL_SIZE) for line in lines), default=0) + 20))
    top = MARGIN + tallest * LINE_H + 10
    # Room on the left for the initial dot, and for the labels of arrows down into bundled states there.
    bundled = [edge_lines(e, words) for e in edges if e.fan_in]
    left = MARGIN + max([30.0] + [text_width(line, LABEL_SIZE) + 10 - node_w * 0.28 for b in bundled for line in b])
    x = left + node_w / 2
    centres = [x]
    for gap in gaps:
        x += node_w + gap
        centres.append(x)
    rows = max(n.row for n in nodes.values()) + 1
    for node in nodes.values():
        node.x = centres[node.col]
        node.y = top + node.row * (NODE_H + ROW_GAP)
    bus_y = top + NODE_H + ROW_GAP * 0.28 if bus_states else None
    right = centres[-1] + node_w / 2
    bus_span: tuple[float, float] = (0.0, 0.0)
    if bus_states:
        xs = [nodes[s].x + node_w * TICK for s in bus_members] + [nodes[s].x for s in bus_states]
        bus_span = (min(xs) - 8, max(xs) + 8)
        right = max(right, bus_span[1] + 6 + text_width(bus_note(len(bus_members), words), LABEL_SIZE))
    # Slanted and vertical labels stay within the columns; a side state's right-hand label may not.
    for node in nodes.values():
        if node.row > 0:
            right = max(right, node.x + node_w / 2 + 40)
    width = right + MARGIN
    height = top + rows * NODE_H + (rows - 1) * ROW_GAP + MARGIN + 4
    return Layout(nodes, edges, node_w, width, height, top, bus_y, bus_members, bus_span)


# -- SVG -------------------------------------------------------------------------------------------------------


def _n(value: float) -> str:
    """Numbers as short, stable text (the docs' SVG is compared byte for byte)."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def _text(x: float, y: float, content: str, *, size: float, anchor: str = "middle", fill: str = TEXT,
          weight: str = "normal") -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}" fill="{fill}"'
        f'{" font-weight=" + chr(34) + weight + chr(34) if weight != "normal" else ""}>{escape(content)}</text>'
    )


def bus_note(count: int, words: Words) -> str:
    return "任一进行中状态" if words == "zh-CN" else f"any of {count} active states"


def _label(
    x: float, y_bottom: float, lines: list[str], *, anchor: str = "middle", bold_first: bool = True
) -> list[str]:
    """A label block whose last line sits on `y_bottom`; the trigger (first line) in bold.

    A white halo under each line keeps it legible where a line of the drawing passes behind it.
    """
    out = ['<g stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke">']
    first = y_bottom - (len(lines) - 1) * LINE_H
    for index, line in enumerate(lines):
        out.append(
            _text(x, first + index * LINE_H, line, size=LABEL_SIZE, anchor=anchor,
                  fill=TEXT if index == 0 and bold_first else MUTED,
                  weight="bold" if index == 0 and bold_first else "normal")
        )
    out.append("</g>")
    return out


def _boundary(node: Node, w: float, toward_x: float, toward_y: float) -> tuple[float, float]:
    """Where the line from the node's centre toward a point leaves its box."""
    cx, cy = node.x, node.y + NODE_H / 2
    dx, dy = toward_x - cx, toward_y - cy
    if dx == 0 and dy == 0:
        return cx, cy
    scale = min(
        (w / 2) / abs(dx) if dx else math.inf,
        (NODE_H / 2) / abs(dy) if dy else math.inf,
    )
    return cx + dx * scale, cy + dy * scale


def svg(machine_name: MachineName, words: Words = "code") -> str:
    """The machine as a standalone SVG document (no scripts, no external fonts or images)."""
    lay = layout(machine_name, words)
    w = lay.node_w
    ident = f"{machine_name}-machine"
    arrow, hollow = f"{ident}-arrow", f"{ident}-return"
    title = "党员状态机" if machine_name == "member" else "党支部状态机"
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(lay.width)} {_n(lay.height)}" '
        f'width="{_n(lay.width)}" height="{_n(lay.height)}" role="img" aria-labelledby="{ident}-title" '
        f'font-family="{escape(FONT)}" class="machine-diagram">',
        f'<title id="{ident}-title">{escape(title)} ({machine_name} machine)</title>',
        "<defs>",
        f'<marker id="{arrow}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE}"/></marker>',
        f'<marker id="{hollow}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{RETURN_EDGE}"/></marker>',
        "</defs>",
        f'<rect x="0" y="0" width="{_n(lay.width)}" height="{_n(lay.height)}" fill="#ffffff"/>',
    ]
    nodes = lay.nodes

    # The initial pseudo-state, left of the first state.
    first = next(n for n in nodes.values() if n.row == 0 and n.col == 0)
    mid_y = first.y + NODE_H / 2
    start_x = first.x - w / 2
    parts.append(f'<circle cx="{_n(start_x - 22)}" cy="{_n(mid_y)}" r="5" fill="{TEXT}"/>')
    parts.append(
        f'<path d="M{_n(start_x - 17)},{_n(mid_y)} L{_n(start_x - 1)},{_n(mid_y)}" '
        f'stroke="{EDGE}" stroke-width="1.4" fill="none" marker-end="url(#{arrow})"/>'
    )

    # The bus: every state a bundled trigger leaves from, joined by one line.
    if lay.bus_y is not None and lay.bus_members:
        members = [nodes[s] for s in lay.bus_members]
        tick = w * TICK
        left, right = lay.bus_span
        parts.append(
            f'<path d="M{_n(left)},{_n(lay.bus_y)} L{_n(right)},{_n(lay.bus_y)}" stroke="{EDGE}" '
            f'stroke-width="2.2" fill="none"/>'
        )
        parts += _label(right + 6, lay.bus_y + 4, [bus_note(len(lay.bus_members), words)], anchor="start",
                        bold_first=False)
        for n in members:
            y_from = n.y + NODE_H if n.row == 0 else n.y
            parts.append(
                f'<path d="M{_n(n.x + tick)},{_n(y_from)} L{_n(n.x + tick)},{_n(lay.bus_y)}" stroke="{EDGE}" '
                f'stroke-width="1.2" stroke-dasharray="3 2" fill="none"/>'
            )
            parts.append(f'<circle cx="{_n(n.x + tick)}" cy="{_n(lay.bus_y)}" r="2.6" fill="{EDGE}"/>')

    # Edges.
    pairs: dict[frozenset[str], int] = {}
    for edge in lay.edges:
        if not edge.fan_in and not edge.fan_out:
            key = frozenset((edge.source, edge.dest))
            pairs[key] = pairs.get(key, 0) + 1
    for edge in lay.edges:
        lines = edge_lines(edge, words)
        if edge.fan_in or edge.fan_out:
            # Down from the bus into a bundled state (fan-in), or back up to it (fan-out, dashed).
            target = nodes[edge.dest] if edge.fan_in else nodes[edge.source]
            assert lay.bus_y is not None
            offset = -w * 0.28 if edge.fan_in else w * 0.28
            x = target.x + offset
            if edge.fan_in:
                parts.append(
                    f'<path d="M{_n(x)},{_n(lay.bus_y)} L{_n(x)},{_n(target.y)}" stroke="{EDGE}" '
                    f'stroke-width="1.4" fill="none" marker-end="url(#{arrow})"/>'
                )
            else:
                parts.append(
                    f'<path d="M{_n(x)},{_n(target.y)} L{_n(x)},{_n(lay.bus_y)}" stroke="{RETURN_EDGE}" '
                    f'stroke-width="1.4" stroke-dasharray="5 3" fill="none" marker-end="url(#{hollow})"/>'
                )
            mid = (lay.bus_y + target.y) / 2 + LINE_H / 2
            anchor = "end" if edge.fan_in else "start"
            parts += _label(x + (-4 if edge.fan_in else 4), mid, lines, anchor=anchor)
            continue
        a, b = nodes[edge.source], nodes[edge.dest]
        if a.row == b.row == 0 and b.col == a.col + 1:
            y = a.y + NODE_H / 2
            x1, x2 = a.x + w / 2, b.x - w / 2
            parts.append(
                f'<path d="M{_n(x1)},{_n(y)} L{_n(x2 - 1)},{_n(y)}" stroke="{EDGE}" stroke-width="1.6" '
                f'fill="none" marker-end="url(#{arrow})"/>'
            )
            parts += _label((x1 + x2) / 2, y - 8, lines)
            continue
        # Any other edge: a straight line between the boxes; a pair in both directions is pulled apart.
        ax, ay = a.x, a.y + NODE_H / 2
        bx, by = b.x, b.y + NODE_H / 2
        shift = 0.0
        if pairs[frozenset((a.state, b.state))] > 1:
            # Shift perpendicular to the pair's canonical direction, so the two arrows land on opposite sides.
            upper, lower = sorted((a, b), key=lambda n: (n.row, n.col))
            length = math.hypot(lower.x - upper.x, lower.y - upper.y) or 1.0
            sign = 1.0 if a is upper else -1.0
            px, py = -(lower.y - upper.y) / length * 9 * sign, (lower.x - upper.x) / length * 9 * sign
            shift = sign
        else:
            px = py = 0.0
        sx, sy = _boundary(a, w, bx + px, by + py)
        ex, ey = _boundary(b, w, ax + px, ay + py)
        sx, sy, ex, ey = sx + px, sy + py, ex + px, ey + py
        parts.append(
            f'<path d="M{_n(sx)},{_n(sy)} L{_n(ex)},{_n(ey)}" stroke="{EDGE}" stroke-width="1.4" fill="none" '
            f'marker-end="url(#{arrow})"/>'
        )
        if abs(ex - sx) < abs(ey - sy) / 3:
            # Nearly vertical: the label beside the arrow, below the bus when the arrow crosses it.
            low, high = min(sy, ey), max(sy, ey)
            if lay.bus_y is not None and low < lay.bus_y < high:
                low = lay.bus_y
            centre = (low + high) / 2 + LINE_H / 2 - (len(lines) - 1) * LINE_H / 2 + (len(lines) - 1) * LINE_H
            right = px >= 0 if shift else True
            x = (sx + ex) / 2 + (6 if right else -6)
            parts += _label(x, centre, lines, anchor="start" if right else "end")
        else:
            # Slanted: the label on the open side of the line near its end, clear of the bus above.
            t = 0.82
            lx, ly = sx + (ex - sx) * t, sy + (ey - sy) * t
            going_right = ex > sx
            parts += _label(lx + (8 if going_right else -8), ly - 8, lines, anchor="start" if going_right else "end")

    # Boxes last, so lines never cross their text.
    for node in nodes.values():
        fill, stroke = (MAIN_FILL, MAIN_STROKE) if node.main else (SIDE_FILL, SIDE_STROKE)
        if node.terminal:
            fill, stroke = END_FILL, END_STROKE
        x0 = node.x - w / 2
        parts.append(
            f'<rect x="{_n(x0)}" y="{_n(node.y)}" width="{_n(w)}" height="{_n(NODE_H)}" rx="9" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.6"/>'
        )
        if node.terminal:  # a final state: double border, as in UML
            parts.append(
                f'<rect x="{_n(x0 + 3)}" y="{_n(node.y + 3)}" width="{_n(w - 6)}" height="{_n(NODE_H - 6)}" '
                f'rx="7" fill="none" stroke="{stroke}" stroke-width="0.8"/>'
            )
        big, small = _state_title(node.state, words)
        parts.append(_text(node.x, node.y + 20, big, size=TITLE_SIZE, weight="bold"))
        parts.append(_text(node.x, node.y + 36, small, size=SUB_SIZE, fill=MUTED))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# -- Mermaid and the docs --------------------------------------------------------------------------------------


def mermaid(machine_name: MachineName) -> str:
    """The machine as a Mermaid `stateDiagram-v2`, one line per transition (Mermaid lays it out itself)."""
    states, transitions = definition(machine_name)
    outgoing = {t.source for t in transitions}
    lines = ["stateDiagram-v2"]
    for state in states:
        lines.append(f'    state "{state} {labels.state_label(state, "zh-CN")}" as {state}')
    lines.append(f"    [*] --> {states[0]}")
    for t in transitions:
        guards = [*t.conditions, *(f"unless {u}" for u in t.unless)]
        suffix = f" [{', '.join(guards)}]" if guards else ""
        lines.append(f"    {t.source} --> {t.dest} : {t.trigger}{suffix}")
    for state in states:
        if state not in outgoing:
            lines.append(f"    {state} --> [*]")
    return "\n".join(lines) + "\n"


def state_table(machine_name: MachineName) -> str:
    """A Markdown table: each state, the triggers that leave it (grouped as drawn) and their conditions."""
    states, transitions = definition(machine_name)
    edges = edges_of(transitions)
    rows = ["| state | 中文 | trigger | to | conditions |", "|---|---|---|---|---|"]
    for state in states:
        leaving = [e for e in edges if state in e.sources]
        first = f"`{state}` | {labels.state_label(state, 'zh-CN')}"
        if not leaving:
            rows.append(f"| {first} | — | (final) | |")
            continue
        for index, edge in enumerate(leaving):
            head = first if index == 0 else " | "
            dests = (
                "the state it came from (" + ", ".join(f"`{d}`" for d in edge.dests) + ")"
                if edge.fan_out
                else f"`{edge.dest}`"
            )
            guards = [f"`{c}`" for c in edge.conditions] + [f"unless `{u}`" for u in edge.unless]
            rows.append(f"| {head} | `{edge.trigger}` | {dests} | {', '.join(guards) or '—'} |")
    return "\n".join(rows) + "\n"


def machines_markdown() -> str:
    """docs/machines.md, generated."""
    parts = [
        "# The member and branch machines",
        "",
        "<!-- Generated by `python -m reports.diagram --write` from states/member.py and states/branch.py."
        " Do not edit: tests/reports/test_diagram.py fails when this file and the machines differ. -->",
        "",
        "Drawn from the transitions the code runs (`states.member.TRANSITIONS`, `states.branch.TRANSITIONS`).",
        "In the pictures, a trigger that leaves every active state (`exempt`, `refer`) is drawn once, from the",
        "bus under the main path, and the way back (`unexempt`, `resume`: to the state it came from) as a dashed",
        "arrow up to that bus. Double borders mark final states.",
        "",
    ]
    for name in MACHINES:
        heading = "Member machine (党员)" if name == "member" else "Branch machine (党支部)"
        parts += [
            f"## {heading}",
            "",
            f"![{name} machine]({name}-machine.svg)",
            "",
            "```mermaid",
            mermaid(name).rstrip("\n"),
            "```",
            "",
            state_table(name).rstrip("\n"),
            "",
        ]
    return "\n".join(parts)


def generated_docs() -> dict[Path, str]:
    """Every file this module writes into docs/, with its content now."""
    return {
        DOCS_DIR / "member-machine.svg": svg("member"),
        DOCS_DIR / "branch-machine.svg": svg("branch"),
        DOCS_DIR / "machines.md": machines_markdown(),
    }


def _write(path: Path, content: str) -> None:
    # Replace atomically, so a reader never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(content, encoding="utf-8", newline="\n")
    temp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.diagram", description=__doc__)
    parser.add_argument("--write", action="store_true", help="write docs/*-machine.svg and docs/machines.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if the files in docs/ are out of date")
    parser.add_argument("--mermaid", choices=MACHINES, help="print one machine as Mermaid text")
    args = parser.parse_args(argv)
    files = generated_docs()
    if args.write:
        for path, content in files.items():
            _write(path, content)
            print(f"wrote {path}")
        return 0
    if args.check:
        stale = [p for p, c in files.items() if not p.exists() or p.read_text(encoding="utf-8") != c]
        for path in stale:
            print(f"out of date: {path} (run python -m reports.diagram --write)", file=sys.stderr)
        return 1 if stale else 0
    print(mermaid(args.mermaid or "member"), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
