"""Bulk moves: one compare-and-set UPDATE per edge and scope, the log and notices written from the changed rows.

Nothing here loops over members in Python: a scope is a SQL filter (a chunk of branches, a list of ids), and
the rows that changed are found again by the statement's step id.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, ColumnElement, String, and_, cast, literal, or_, select, update
from sqlalchemy.orm import Session, aliased

from states import audit, counts, outbox
from states.conditions import EvalContext, Row
from states.db import changed, json_object
from states.evaluate import BranchScope, MemberScope, branch_rows, member_rows, passes
from states.machine import Transition
from states.models import BranchProgress, MemberProgress, Person


@dataclass(frozen=True)
class Cause:
    """Why rows move: written into every log entry."""

    cause: str
    actor: str
    reason: str = ""
    flow_run_id: str | None = None
    sweep_id: str | None = None
    """Set by a sweep, so it can count who moved forward at least once."""

    def columns(self, trigger: str) -> list[Any]:
        """cause, trigger, sweep_id, actor, reason, flow_run_id as literals (LOG_COLUMNS order)."""
        return [
            literal(self.cause),
            literal(trigger),
            literal(self.sweep_id, String),
            literal(self.actor),
            literal(self.reason),
            literal(self.flow_run_id, String),
        ]


def new_step() -> str:
    return uuid.uuid4().hex


def move_members(
    session: Session, ctx: EvalContext, edge: Transition, scope: MemberScope, cause: Cause
) -> tuple[str, int]:
    """Move every member of `scope` in `edge.source` whose conditions hold; returns (step, how many moved)."""
    step = new_step()
    anyone = select(literal(1)).where(
        MemberProgress.campaign_key == ctx.campaign_key, MemberProgress.state == edge.source
    ).limit(1)  # answered from ix_member_progress_state alone
    if session.scalar(anyone) is None:
        return step, 0  # nobody anywhere in the source state: one index probe instead of a pass over the scope
    row = Row()
    ready = member_rows(row, ctx, edge.guards, scope, edge.source).add_columns(row.mp.member_id).where(
        passes("member", edge, ctx, row)
    )
    values: dict[str, Any] = {
        "state": edge.dest,
        "state_since": ctx.at,
        "version": MemberProgress.version + 1,
        "step": step,
    }
    if edge.dest in ("exempt", "referred"):
        values["prior_state"] = edge.source
    moved = changed(session.execute(
        update(MemberProgress)
        .where(
            MemberProgress.campaign_key == ctx.campaign_key,
            MemberProgress.state == edge.source,  # compare-and-set: a concurrent or repeated move finds nothing
            MemberProgress.member_id.in_(ready.scalar_subquery()),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ))
    if moved:
        counts.shift(session, ctx.campaign_key, "member", edge.source, edge.dest, moved)
        _log_members(session, ctx, step, edge, cause, scope)
    return step, moved


def _moved_rows(ctx: EvalContext, step: str, scope: MemberScope | None) -> tuple[Row, ColumnElement[bool]]:
    """The members the statement `step` moved, found within the scope it moved (a chunk's people by their branch
    index, then their progress rows by key): `step` has no index, which every moved row would write."""
    row = Row()
    found = and_(row.mp.campaign_key == ctx.campaign_key, row.mp.step == step)
    return row, found if scope is None else and_(found, scope(row))


def _log_members(
    session: Session, ctx: EvalContext, step: str, edge: Transition, cause: Cause, scope: MemberScope
) -> None:
    row, moved = _moved_rows(ctx, step, scope)
    audit.log_from(
        session,
        select(
            row.mp.campaign_key,
            row.mp.member_id,
            row.person.branch_id,
            literal(edge.source),
            row.mp.state,
            *cause.columns(edge.trigger),
            literal(ctx.at),
        )
        .select_from(row.person)
        .join(row.mp, row.mp.member_id == row.person.member_id)
        .where(moved),
    )


def move_branches(
    session: Session, ctx: EvalContext, edge: Transition, scope: BranchScope, cause: Cause
) -> tuple[str, int]:
    row = Row()
    ready = branch_rows(row, ctx, edge.guards, scope).add_columns(row.bp.branch_id).where(
        row.bp.state == edge.source, passes("branch", edge, ctx, row)
    )
    step = new_step()
    moved = changed(session.execute(
        update(BranchProgress)
        .where(
            BranchProgress.campaign_key == ctx.campaign_key,
            BranchProgress.state == edge.source,
            BranchProgress.branch_id.in_(ready.scalar_subquery()),
        )
        .values(state=edge.dest, state_since=ctx.at, version=BranchProgress.version + 1, step=step)
        .execution_options(synchronize_session=False)
    ))
    if moved:
        counts.shift(session, ctx.campaign_key, "branch", edge.source, edge.dest, moved)
        audit.log_from(
            session,
            select(
                BranchProgress.campaign_key,
                literal(None, String),
                BranchProgress.branch_id,
                literal(edge.source),
                BranchProgress.state,
                *cause.columns(edge.trigger),
                literal(ctx.at),
            ).where(BranchProgress.step == step),
        )
    return step, moved


# -- notices caused by moves, set-based --------------------------------------------------------------------------


def _key(*parts: Any) -> ColumnElement[str]:
    """A notice key built in SQL from columns and literals joined by ':'."""
    expr: ColumnElement[str] = cast(parts[0], String) if not isinstance(parts[0], str) else literal(parts[0])
    for part in parts[1:]:
        expr = expr + literal(":") + (literal(part) if isinstance(part, str) else cast(part, String))
    return expr


def figures_json(scope: str, names: tuple[str, ...], ctx: EvalContext, row: Row) -> ColumnElement[Any]:
    """{condition: {have, need, ok}} built in SQL, so a million notices carry their figures without a loop."""
    from states.conditions import condition

    pairs: list[Any] = []
    for name in names:
        cond = condition(scope, name)  # type: ignore[arg-type]
        pairs += [
            literal(name),
            json_object(
                literal("have"), cond.have(ctx, row), literal("need"), cond.need(ctx, row),
                literal("ok"), cond.ok(ctx, row),
            ),
        ]
    return json_object(*pairs)


def queue_members_moved(
    session: Session, ctx: EvalContext, step: str, event: str, phase: str, deadline: str, occasion: str,
    scope: MemberScope | None = None,
) -> int:
    """A notice to each member the statement `step` moved within `scope` (phase_started, withdrawal_pending …)."""
    row, moved = _moved_rows(ctx, step, scope)
    mp, p = row.mp, row.person
    source = (
        select(
            _key(p.member_id, event, ctx.campaign_key, p.member_id, occasion).label("key"),
            literal(ctx.campaign_key).label("campaign_key"),
            p.member_id.label("recipient_id"),
            # The same for every row: the member is the recipient, the branch theirs (dispatch reads both).
            literal({"phase": phase, "deadline": deadline}, JSON).label("context"),
        )
        .select_from(p)
        .join(mp, mp.member_id == p.member_id)
        .where(moved)
    )
    return outbox.queue_from(session, event, source, ctx.at)


def queue_members_and_secretaries(
    session: Session,
    ctx: EvalContext,
    event: str,
    context: Callable[[Row], list[Any]],
    occasion: str,
    *,
    where: Callable[[Row], ColumnElement[bool]] | None = None,
    names: tuple[str, ...] = (),
    scope: MemberScope | None = None,
    state: str | None = None,
) -> int:
    """A notice to each selected member and one to their branch secretary (member_stuck, withdrawal_pending);
    `names` are the conditions `where` reads, `scope` and `state` bound the evidence they tally (see
    `member_rows`). Whether a copy goes to the secretary is the recipient not being the member (dispatch)."""
    # One statement for both: each selected row joins its own person and its branch secretary, so the evidence
    # is tallied once. A secretary who is selected gets one notice, as a member.
    row = Row()
    recipient = aliased(Person, name="rcpt")
    base = member_rows(row, ctx, names, scope, state)
    if where is not None:
        base = base.where(where(row))
    source = base.join(
        recipient,
        or_(
            recipient.member_id == row.person.member_id,
            and_(recipient.branch_id == row.person.branch_id, recipient.role == "branch_secretary"),
        ),
    ).add_columns(
        _key(recipient.member_id, event, ctx.campaign_key, row.mp.member_id, occasion).label("key"),
        literal(ctx.campaign_key).label("campaign_key"),
        recipient.member_id.label("recipient_id"),
        json_object(*context(row)).label("context"),
    )
    return outbox.queue_from(session, event, source, ctx.at)


def member_context(ctx: EvalContext, row: Row, phase: str, deadline: str, **extra: Any) -> list[Any]:
    """What a member notice stores beside its figures: its member, phase and deadline. The campaign is the notice's
    own column and the branch the member's (`notices.dispatch` adds both), so a million rows carry no more than
    they must."""
    pairs: list[Any] = [
        literal("member_id"), row.mp.member_id, literal("phase"), literal(phase), literal("deadline"), literal(deadline),
    ]
    for name, value in extra.items():
        pairs += [literal(name), value if isinstance(value, ColumnElement) else literal(value)]
    return pairs


def at_iso(at: dt.datetime) -> str:
    return at.isoformat()
