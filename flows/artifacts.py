"""What a sweep shows in Prefect's UI: the `<campaign>-progress` table and a markdown summary of the run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from states.anchors import line as anchor_line
from states.audit import Head
from states.clock import as_utc, zone
from states.member import STATES as MEMBER_STATES
from states.models import Campaign
from states.status import branch_table, summary

# Beyond this many branches the table shows the totals and the most lagging branches, not every branch:
# the UI renders a table artifact whole, and a province has tens of thousands of branches.
FULL_TABLE_MAX = 200
MOST_LAGGING = 50
_PHASE_ORDER = {state: i for i, state in enumerate(MEMBER_STATES)}


def progress_key(campaign: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes; campaign keys are made of the same."""
    return f"{campaign}-progress"


def summary_key(campaign: str) -> str:
    return f"{campaign}-sweep-summary"


def _row(branch: dict[str, Any], states: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"branch": branch["branch_id"], "state": branch["state"], "stuck": branch["stuck"]}
    for state in states:
        row[state] = branch["members"].get(state, 0)
    row["stuck_members"] = branch["stuck_members"]
    return row


def _lag(branch: dict[str, Any]) -> tuple[int, int, str]:
    """Most lagging first: the earliest state, then the most stuck members."""
    return (_PHASE_ORDER.get(branch["state"], 0), -branch["stuck_members"], branch["branch_id"])


def progress_table(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """The table's rows, one per branch (members per state as columns); with very many branches, a totals row
    and the most lagging branches. Returns the rows and whether they were cut."""
    present = {state for branch in rows for state in branch["members"]}
    states = [s for s in MEMBER_STATES if s in present]
    if len(rows) <= FULL_TABLE_MAX:
        return [_row(branch, states) for branch in rows], False
    totals: dict[str, Any] = {
        "branch": f"ALL ({len(rows)} branches)",
        "state": "",
        "stuck": sum(1 for b in rows if b["stuck"]),
    }
    for state in states:
        totals[state] = sum(b["members"].get(state, 0) for b in rows)
    totals["stuck_members"] = sum(b["stuck_members"] for b in rows)
    lagging = sorted(rows, key=_lag)[:MOST_LAGGING]
    return [totals, *(_row(branch, states) for branch in lagging)], True


def local_time(session: Session, campaign: str, at: dt.datetime) -> str:
    """T as people of the campaign read it: in the campaign's timezone."""
    found = session.get(Campaign, campaign)
    return as_utc(at).astimezone(zone(found.timezone if found else "UTC")).strftime("%Y-%m-%d %H:%M:%S %Z")


def publish_report(session: Session, campaign: str, at: dt.datetime, report_dir: Path) -> Path:
    """Write the HTML report afresh and publish the machines as a markdown artifact (`<campaign>-machines`)."""
    from prefect.artifacts import create_markdown_artifact

    from reports import diagram
    from reports.report import write_report

    target = report_dir / campaign
    write_report(session, campaign, target, at)
    create_markdown_artifact(
        "\n".join(
            [
                f"# The machines of `{campaign}`",
                "Generated from `states/member.py` and `states/branch.py`.",
                "## Member",
                "```mermaid",
                diagram.mermaid("member"),
                "```",
                "## Branch",
                "```mermaid",
                diagram.mermaid("branch"),
                "```",
            ]
        ),
        key=f"{campaign}-machines",
        description="The member and branch state machines",
    )
    return target / "index.html"


def publish_progress(session: Session, campaign: str, at: dt.datetime, report_dir: Path | None = None) -> UUID:
    """The `<campaign>-progress` table artifact (a new version of the same key at every sweep)."""
    from prefect.artifacts import create_table_artifact

    rows, cut = progress_table(branch_table(session, campaign, at))
    facts = summary(session, campaign, at)
    description = (
        f"**{campaign}** at {local_time(session, campaign, at)} — phase `{facts['phase']}`; stuck: "
        f"{facts['stuck']['members']} members, {facts['stuck']['branches']} branches."
    )
    if cut:
        description += f" First row: totals; then the {MOST_LAGGING} most lagging branches."
    if report_dir is not None:
        index = (report_dir / campaign / "index.html").resolve()
        description += f" Full report: `campaign report {campaign}` → [{index}](file://{index})"
    return create_table_artifact(rows, key=progress_key(campaign), description=description)


def sweep_markdown(campaign: str, at: str, result: dict[str, Any], facts: dict[str, Any]) -> str:
    fired = ", ".join(result.get("fired", [])) or "nothing (no deadline was due)"
    members = " · ".join(f"{state} {n}" for state, n in facts["members"].items()) or "none"
    branches = " · ".join(f"{state} {n}" for state, n in facts["branches"].items()) or "none"
    return "\n".join(
        [
            f"# Sweep of `{campaign}` at {at}",
            "",
            f"- **fired:** {fired}",
            f"- **advanced:** {result['advanced']['members']} members, {result['advanced']['branches']} branches",
            f"- **stuck:** {result['stuck']['members']} members, {result['stuck']['branches']} branches",
            f"- **phase now:** `{facts['phase']}`",
            f"- **members:** {members}",
            f"- **branches:** {branches}",
            "",
            f"Per branch: the table artifact `{progress_key(campaign)}`.",
        ]
    )


def publish_summary(campaign: str, at: str, result: dict[str, Any], facts: dict[str, Any]) -> UUID:
    """The markdown summary of one sweep; `at` as people read it (see local_time)."""
    from prefect.artifacts import create_markdown_artifact

    return create_markdown_artifact(
        sweep_markdown(campaign, at, result, facts),
        key=summary_key(campaign),
        description=f"What the sweep of {campaign} did",
    )


def audit_head_key(campaign: str) -> str:
    return f"{campaign}-audit-head"


def audit_head_markdown(campaign: str, at: str, db: str, head: Head | None) -> str:
    """The head as one anchor line too, so it can be pasted into a file for `audit --verify --anchor FILE`."""
    if head is None:
        return f"# 审计链头 `{campaign}`（{at}）\n\n审计链为空。"
    return "\n".join(
        [
            f"# 审计链头 `{campaign}`（{at}）",
            "",
            f"- **链 chain:** `{head.chain}`",
            f"- **封印 seal:** {head.seal_id}",
            f"- **摘要 digest:** `{head.digest}`",
            "",
            "核对（check）: 把下面一行存入文件 FILE，运行 `campaign audit "
            f"{campaign} --verify --anchor FILE`:",
            "",
            "```",
            anchor_line(db, head),
            "```",
        ]
    )


def publish_audit_head(campaign: str, at: str, db: str, head: Head | None) -> UUID:
    """`<campaign>-audit-head`: the audit chain's head after the sweep, kept in Prefect's database, outside ours."""
    from prefect.artifacts import create_markdown_artifact

    return create_markdown_artifact(
        audit_head_markdown(campaign, at, db, head),
        key=audit_head_key(campaign),
        description=f"The audit chain's head after the sweep of {campaign}",
    )
