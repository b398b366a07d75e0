"""The reports' charts as geometry for inline SVG: the campaign's timeline and the branches' stacked bars."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reports import diagram
from reports.words import LOCALE, fmt_at
from states import labels
from states.clock import as_utc, day_start
from states.models import Phase

# One colour per state for the chart: the phases darken as they advance, side states stand apart.
STATE_COLOURS: dict[str, str] = {
    "enrolled": "#cbd5e1",
    "study": "#bfdbfe",
    "analysis": "#93c5fd",
    "rectification": "#60a5fa",
    "consolidation": "#3b82f6",
    "pledge": "#1d4ed8",
    "completed": "#15803d",
    "exempt": "#a8a29e",
    "referred": "#a855f7",
    "withdrawal_pending": "#f59e0b",
    "withdrawn": "#57534e",
    "disqualified": "#7f1d1d",
}
DARK_STATES = frozenset({"rectification", "consolidation", "pledge", "completed", "referred", "withdrawn", "disqualified"})
"""States whose fill is dark enough that the count written on it is white."""


def state_colour(state: str) -> str:
    return STATE_COLOURS.get(state, "#94a3b8")


# -- the timeline --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseSpan:
    """A phase on the timeline: its window, where it sits on the bar (percent) and whether its deadline fired."""

    name: str
    label: str
    start: str
    end: str
    short: str
    """"3月25日—4月30日": what fits on the bar."""
    deadline: str
    left: float
    width: float
    status: str
    """"past", "current" or "future" at T."""
    fired: bool


@dataclass(frozen=True)
class Timeline:
    phases: list[PhaseSpan]
    at_percent: float
    at_label: str
    stage: str
    stage_label: str


def timeline(windows: Sequence[Phase], fired: set[str], stage: str, at: dt.datetime, tz: str) -> Timeline:
    """The five phases as a bar in proportion to their length, T as a line across it."""
    first, last = windows[0].start, windows[-1].end
    total = (last - first).days + 1
    spans = []
    for phase in windows:
        deadline = as_utc(phase.deadline_at)
        status = "past" if deadline <= at else "future" if at < as_utc(phase.starts_at) else "current"
        spans.append(
            PhaseSpan(
                name=phase.name,
                label=labels.phase_label(phase.name, LOCALE),
                start=labels.format_date(phase.start, LOCALE),
                end=labels.format_date(phase.end, LOCALE),
                short=f"{phase.start.month}月{phase.start.day}日—{phase.end.month}月{phase.end.day}日",
                deadline=fmt_at(deadline, tz),
                left=round(100 * (phase.start - first).days / total, 3),
                width=round(100 * ((phase.end - phase.start).days + 1) / total, 3),
                status=status,
                fired=phase.name in fired,
            )
        )
    span = (day_start(last + dt.timedelta(days=1), tz) - day_start(first, tz)).total_seconds()
    elapsed = (at - day_start(first, tz)).total_seconds()
    return Timeline(
        phases=spans,
        at_percent=round(max(0.0, min(100.0, 100 * elapsed / span)), 3),
        at_label=fmt_at(at, tz),
        stage=stage,
        stage_label=labels.phase_label(stage, LOCALE),
    )


# -- the branches' bars --------------------------------------------------------------------------------------------

CHART_WIDTH = 1100.0
CHART_BAR_X = 230.0
CHART_BAR_W = 420.0


@dataclass(frozen=True)
class Chart:
    """The stacked bar chart's geometry (SVG user units): names left, bars, counts, then the reason."""

    height: float
    width: float = CHART_WIDTH
    name_x: float = CHART_BAR_X - 10
    bar_x: float = CHART_BAR_X
    bar_w: float = CHART_BAR_W
    count_x: float = CHART_BAR_X + CHART_BAR_W + 10
    why_x: float = CHART_BAR_X + CHART_BAR_W + 122
    top: float = 44.0
    row_h: float = 30.0
    bar_h: float = 22.0


@dataclass(frozen=True)
class Segment:
    """One state's share of a branch's bar in the chart (x and width in chart units)."""

    state: str
    label: str
    count: int
    x: float
    width: float
    colour: str
    stuck: bool
    ink: str = "#1f2933"
    """The colour of the count written on the segment: white on the dark fills."""


def chart(rows: int) -> Chart:
    """The chart for `rows` branches: as tall as its rows."""
    geometry = Chart(height=0.0)
    return Chart(height=geometry.top + rows * geometry.row_h + 12)


def short_name(name: str) -> str:
    """A branch's name as the chart shows it: long names cut."""
    return name if len(name) <= 14 else name[:13] + "…"


def marker_x(short: str) -> float:
    """Where the chart's "stuck" dot goes: left of the branch's (short) name."""
    return round(Chart(height=0.0).name_x - diagram.text_width(short, 13.0) - 10, 1)


def segments(by_state: Mapping[str, int], members: int, passed: set[str]) -> list[Segment]:
    """A branch's members per state as parts of one 100% bar, main path first, side states after."""
    x = CHART_BAR_X
    out = []
    for state in labels.STATES:
        count = by_state.get(state, 0)
        if not count:
            continue
        width = CHART_BAR_W * count / members
        out.append(
            Segment(
                state=state,
                label=labels.state_label(state, LOCALE),
                count=count,
                x=round(x, 2),
                width=round(width, 2),
                colour=state_colour(state),
                stuck=state in passed,
                ink="#ffffff" if state in DARK_STATES else "#1f2933",
            )
        )
        x += width
    return out


def legend(by_states: Sequence[Mapping[str, int]], passed: set[str]) -> list[Segment]:
    """One swatch per state that occurs, in the chart's order, laid out in one row."""
    present = [s for s in labels.STATES if any(by_state.get(s) for by_state in by_states)]
    out, x = [], 0.0
    for state in present:
        label = labels.state_label(state, LOCALE)
        out.append(Segment(state, label, 0, round(x, 1), 0.0, state_colour(state), state in passed))
        x += 26 + diagram.text_width(label, 12.0) + 14
    return out
