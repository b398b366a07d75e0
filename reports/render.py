"""Rendering the reports: the one Jinja2 environment, and every page rendered from its model, the overview last."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from reports import charts, diagram
from reports.appraisal import appraisal, publicity
from reports.cells import neutralise
from reports.data import BRANCHES_PER_CHUNK, Facts, chunks
from reports.pages import BranchLine, MemberLine, Pages, member_order
from reports.words import LOCALE, ROLE_LABELS
from states import labels

TEMPLATES_DIR: Path = Path(__file__).resolve().parent.parent / "templates"
STUCK_LIST_LIMIT = 300
"""Stuck members listed on the overview; beyond that the overview counts them and the branch pages list them."""

_FIGURE = re.compile(r"^[+-]?[\d.,:/ ]*%?$")


def _inert(value: object) -> object:
    """Every text a cell shows is made inert for spreadsheets (a copied table must not run "=HYPERLINK(…)");
    plain figures such as "-1" or "+3" stay as they are."""
    if isinstance(value, str) and not isinstance(value, Markup) and not _FIGURE.match(value):
        return neutralise(value)
    return value


def make_environment(templates_dir: Path | None = None) -> Environment:
    """The one Jinja2 environment for reports: absolute loader path, HTML autoescaped, undefined names fail."""
    root = (templates_dir or TEMPLATES_DIR).resolve()
    env = Environment(
        loader=FileSystemLoader(str(root)),
        # select_autoescape compares name endings, so "html.j2" is what makes `index.html.j2` escape.
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_inert,
    )
    env.globals["state_colour"] = charts.state_colour
    env.globals["state_label"] = lambda state: labels.state_label(state, LOCALE)
    return env


def render_all(facts: Facts, env: Environment, add: Callable[[str, str], None]) -> None:
    """Branch pages and publicity notices chunk by chunk as they are evaluated, the overview last."""
    branch_template = env.get_template("reports/branch.html.j2")
    publicity_template = env.get_template("reports/publicity.html.j2")
    index_template = env.get_template("reports/index.html.j2")
    pages = Pages(facts)
    timeline = charts.timeline(facts.windows, facts.fired(), facts.stage(), facts.at, facts.tz)
    escalations = facts.escalations()
    secretaries, leaders = facts.officers()
    contact = "；".join(f"{name}（{ROLE_LABELS['committee_secretary']}{'，' + email if email else ''}）"
                       for _id, name, email in leaders)

    lines: list[BranchLine] = []
    stuck_members: list[MemberLine] = []
    stuck_total = 0
    held_by_branch: dict[str, int] = defaultdict(int)
    raw_by_branch: dict[str, list[Any]] = {}
    disposed_all: set[str] = set()
    all_branches = facts.branches()
    for branches in chunks(all_branches, BRANCHES_PER_CHUNK):
        chunk = facts.chunk(branches)
        disposed_all |= chunk.disposed
        raw: dict[str, list[Any]] = defaultdict(list)
        for row in chunk.members:
            raw[row["branch_id"]].append(row)
        for branch in branches:
            branch_id = branch[0]
            members = [
                pages.member_line(m, chunk.member_results.get(m["member_id"]), chunk.disposed)
                for m in raw.get(branch_id, [])
            ]
            notices = publicity(raw.get(branch_id, []), facts.tz, facts.at)
            line = pages.branch_line(
                branch, members, chunk.branch_results.get(branch_id), "、".join(secretaries.get(branch_id, [])),
                escalations.get(branch_id, []), bool(notices),
            )
            line.segments = charts.segments(line.by_state, line.members, facts.passed)
            lines.append(line)
            raw_by_branch[branch_id] = [
                # Only what the overview's appraisal section needs, and only for members with an outcome.
                {k: row[k] for k in ("member_id", "name", "state", "rating", "approved_at", "final_at", "excellent",
                                     "withdrawal_confirmed_at", "appraisal_unknown")}
                for row in raw.get(branch_id, [])
                if row["rating"] or row["excellent"] or row["appraisal_unknown"]
                or row["state"] in ("withdrawal_pending", "withdrawn", "disqualified")
            ]
            for m in members:
                if m.stuck:
                    stuck_total += 1
                    if m.held_by_branch_only:
                        held_by_branch[branch_id] += 1
                    elif len(stuck_members) < STUCK_LIST_LIMIT:
                        stuck_members.append(m)
            members.sort(key=member_order)
            add(
                line.page,
                branch_template.render(
                    campaign=pages.info,
                    timeline=timeline,
                    branch=line,
                    members=members,
                    meetings=pages.meeting_lines(chunk, branch_id),
                    evidence=pages.evidence_counts(chunk, branch_id),
                    escalations=pages.escalation_lines(escalations.get(branch_id, [])),
                    log=pages.log_lines([e for e in chunk.log if e.branch_id == branch_id]),
                    publicity=line.publicity_page,
                ),
            )
            if notices:
                add(
                    line.publicity_page,
                    publicity_template.render(campaign=pages.info, branch=line, notices=notices, contact=contact),
                )

    order = sorted(lines, key=BranchLine.lag_key)
    rank = {line.branch_id: index for index, line in enumerate(order)}
    stuck_members.sort(key=lambda m: (rank.get(m.branch_id, 0), -m.days_stuck, m.member_id))
    by_id = {line.branch_id: line for line in lines}
    outcomes = appraisal(order, raw_by_branch, disposed_all)
    add(
        "index.html",
        index_template.render(
            campaign=pages.info,
            timeline=timeline,
            summary=facts.summary(),
            branches=order,
            branch_by_id=by_id,
            stuck_branches=[line for line in order if line.stuck],
            stuck_members=stuck_members,
            stuck_total=stuck_total,
            held_by_branch=[(by_id[b], n) for b, n in sorted(held_by_branch.items(), key=lambda i: rank[i[0]])],
            stuck_limit=STUCK_LIST_LIMIT,
            chart=charts.chart(len(order)),
            chart_legend=charts.legend([line.by_state for line in order], facts.passed),
            appraisal=outcomes,
            member_diagram=Markup(diagram.svg("member", "zh-CN")),
            branch_diagram=Markup(diagram.svg("branch", "zh-CN")),
        ),
    )

