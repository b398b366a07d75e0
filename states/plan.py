"""Loading a campaign plan (YAML): validated whole, then the campaign and its phases created or updated."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from states import audit, authority, facts
from states.clock import as_utc, day_start, deadline_of, zone
from states.errors import CampaignError, MalformedFile, Refused
from states.labels import phase_label
from states.machine import PHASES
from states.models import Campaign, FiredDeadline, Phase
from states.roster import enrol_newcomers

START = "start"  # the name the campaign's start fires under (states.sweep.START)
KEY = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class PhaseWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    start: dt.date
    end: dt.date


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    study_hours: float = Field(50, gt=0, le=10_000)
    concentrated_days: int = Field(3, ge=0, le=366)
    publicity_days: int = Field(5, ge=0, le=366)
    excellent_max_fraction: Fraction = Fraction(1, 3)

    @field_validator("excellent_max_fraction", mode="before")
    @classmethod
    def _fraction(cls, value: Any) -> Fraction:
        try:
            fraction = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{value!r} is not a fraction like 1/3") from None
        if not 0 <= fraction <= 1:
            raise ValueError("must lie between 0 and 1")
        return fraction


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    direct: int = Field(3, ge=0)
    second: int = Field(7, ge=0)
    first: int = Field(14, ge=0)

    @model_validator(mode="after")
    def _ascending(self) -> Escalation:
        if not self.direct <= self.second <= self.first:
            raise ValueError("escalation days must not decrease: direct ≤ second ≤ first")
        return self


class Plan(BaseModel):
    """A plan file as docs/formats.md describes it; every number a default the file may override."""

    model_config = ConfigDict(extra="forbid")
    key: str
    title: str = Field(min_length=1, max_length=400)
    timezone: str = "Asia/Shanghai"
    phases: list[PhaseWindow]
    thresholds: Thresholds = Thresholds()
    reminders_days_before: list[int] = [7, 3, 1]
    escalation_days: Escalation = Escalation()

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not KEY.match(value) or len(value) > 64:
            raise ValueError("lowercase letters, digits and dashes only")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zone(value)
        except (CampaignError, OSError, ValueError):  # an empty name, a folder like "America", a path
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("reminders_days_before")
    @classmethod
    def _reminders(cls, value: list[int]) -> list[int]:
        if any(k < 1 or k > 366 for k in value):
            raise ValueError("reminders are whole days before a deadline, 1..366")
        return sorted(set(value), reverse=True)

    @model_validator(mode="after")
    def _phases(self) -> Plan:
        names = [p.name for p in self.phases]
        if names != list(PHASES):
            raise ValueError(f"phases must be, in order: {', '.join(PHASES)}")
        previous: PhaseWindow | None = None
        for phase in self.phases:
            if phase.end < phase.start:
                raise ValueError(f"phase {phase.name} ends before it starts")
            if previous is not None and phase.start <= previous.end:
                raise ValueError(f"phase {phase.name} starts before {previous.name} has ended")
            previous = phase
        return self


def _one_line(text: object) -> str:
    """An error from a parser may span lines; the CLI's reason is one line."""
    return " ".join(str(text).split())[:300]


def read_plan(path: Path | str) -> tuple[Plan, str]:
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        why = exc.strerror or exc
        raise MalformedFile(name, None, None, zh=f"无法读取：{why}", en=f"cannot read: {why}") from exc
    try:
        data = yaml.safe_load(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise MalformedFile(name, None, None, zh="不是 UTF-8 文本", en="is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        column = str(mark.column + 1) if mark is not None else None
        why = _one_line(getattr(exc, "problem", None) or exc)
        raise MalformedFile(name, line, column, zh=f"不是有效的 YAML：{why}", en=f"is not valid YAML: {why}") from None
    except RecursionError:
        raise MalformedFile(name, None, None, zh="不是有效的 YAML：嵌套过深", en="is not valid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise MalformedFile(name, None, None, zh="不是活动方案（应为含 key、title、phases 等键的映射）",
                            en="is not a plan (a mapping with key, title, phases …)")
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or None
        why = _one_line(error["msg"])
        raise MalformedFile(name, None, where, zh=f"方案内容有误：{why}", en=why) from None
    except (RecursionError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedFile(name, None, None, zh=f"不是有效的活动方案：{_one_line(exc)}", en=f"is not a valid plan: {_one_line(exc)}") from None
    return plan, hashlib.sha256(raw).hexdigest()


# Thresholds that decide a phase's own exit: once its deadline has fired they are part of what was decided.
PHASE_THRESHOLDS = {"study_hours": "study", "concentrated_days": "study"}


def _plain(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="minutes")
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def plan_changes(campaign: Campaign, phases: dict[str, Phase], plan: Plan) -> list[tuple[str, str, str]]:
    """What reloading `plan` changes, one (field, was, becomes) per change, in the plan's order."""
    fraction = plan.thresholds.excellent_max_fraction
    pairs: list[tuple[str, Any, Any]] = [
        ("title", campaign.title, plan.title),
        ("timezone", campaign.timezone, plan.timezone),
    ]
    for window in plan.phases:
        phase = phases.get(window.name)
        if phase is None:
            continue
        pairs += [(f"{window.name}.start", phase.start, window.start), (f"{window.name}.end", phase.end, window.end)]
    pairs += [
        ("thresholds.study_hours", campaign.study_hours, plan.thresholds.study_hours),
        ("thresholds.concentrated_days", campaign.concentrated_days, plan.thresholds.concentrated_days),
        ("thresholds.publicity_days", campaign.publicity_days, plan.thresholds.publicity_days),
        ("thresholds.excellent_max_fraction", Fraction(campaign.excellent_num, campaign.excellent_den), fraction),
        ("reminders_days_before", sorted(campaign.reminders_days_before, reverse=True), plan.reminders_days_before),
    ]
    for level, days in plan.escalation_days.model_dump().items():
        pairs.append((f"escalation_days.{level}", (campaign.escalation_days or {}).get(level), days))
    return [(name, _plain(was), _plain(becomes)) for name, was, becomes in pairs if was != becomes]


def _refuse_fired(session: Session, campaign: Campaign, phases: dict[str, Phase], plan: Plan) -> None:
    """A phase whose deadline has fired keeps its window (and the start, once fired, its instant): what fired was
    decided on them. Compared as instants, so a changed timezone that would move them is refused too."""
    fired = set(session.scalars(select(FiredDeadline.name).where(FiredDeadline.campaign_key == campaign.key)))
    refused: list[tuple[str, str]] = []
    for window in plan.phases:
        phase = phases.get(window.name)
        if phase is None:
            continue
        starts_at, deadline_at = day_start(window.start, plan.timezone), deadline_of(window.end, plan.timezone)
        moved = []
        if as_utc(phase.starts_at) != starts_at:
            moved.append(("start", phase.start, window.start, phase.starts_at, starts_at))
        if as_utc(phase.deadline_at) != deadline_at:
            moved.append(("end", phase.end, window.end, phase.deadline_at, deadline_at))
        for part, was, becomes, was_at, becomes_at in moved:
            start_fired = part == "start" and phase.seq == 0 and START in fired
            if window.name not in fired and not start_fired:
                continue
            own = window.name in fired
            what_en = "its deadline" if own else "the campaign's start"
            change = f"{was} → {becomes}" if was != becomes else f"{_plain(as_utc(was_at))} → {_plain(becomes_at)}"
            refused.append((
                f"{phase_label(window.name, 'zh-CN')}阶段：{'本阶段截止' if own else '活动开始'}已触发，"
                f"{window.name}.{part} 不能再改（{change}）",
                f"phase {window.name}: {what_en} has fired, "
                f"{window.name}.{part} cannot change ({change})",
            ))
    for name, phase_name in PHASE_THRESHOLDS.items():
        was, becomes = getattr(campaign, name), getattr(plan.thresholds, name)
        if phase_name in fired and was != becomes:
            change = f"{_plain(was)} → {_plain(becomes)}"
            refused.append((
                f"{phase_label(phase_name, 'zh-CN')}阶段：本阶段截止已触发，thresholds.{name} 不能再改（{change}）",
                f"phase {phase_name}: its deadline has fired, thresholds.{name} cannot change ({change})",
            ))
    if refused:
        raise Refused(zh=f"方案 {campaign.key}：" + "；".join(zh for zh, _en in refused),
                      en=f"plan {campaign.key}: " + "; ".join(en for _zh, en in refused))


def load_plan(session: Session, plan: Plan, actor: str, at: dt.datetime) -> Campaign:
    """Create or update the campaign; deadlines not yet fired may move, a phase whose deadline has fired may not
    change (Refused, naming it); each change is one log entry; participants get their progress rows.
    An act with authority: the committee secretary or the party group only."""
    authority.importer(session, actor, zh="载入方案", en="load a plan")
    fraction = plan.thresholds.excellent_max_fraction
    values = {
        "title": plan.title,
        "timezone": plan.timezone,
        "study_hours": plan.thresholds.study_hours,
        "concentrated_days": plan.thresholds.concentrated_days,
        "publicity_days": plan.thresholds.publicity_days,
        "excellent_num": fraction.numerator,
        "excellent_den": fraction.denominator,
        "reminders_days_before": plan.reminders_days_before,
        "escalation_days": plan.escalation_days.model_dump(),
        "plan": plan.model_dump(mode="json"),
        "loaded_at": at,
    }
    campaign = session.get(Campaign, plan.key)
    created = campaign is None
    changes: list[tuple[str, str, str]] = []
    if campaign is None:
        campaign = Campaign(key=plan.key, **values)
        session.add(campaign)
    else:
        phases = {
            p.name: p for p in session.scalars(select(Phase).where(Phase.campaign_key == plan.key))
        }
        _refuse_fired(session, campaign, phases, plan)
        changes = plan_changes(campaign, phases, plan)
        for name, value in values.items():
            setattr(campaign, name, value)
    session.flush()
    before = facts.campaign_windows(session, plan.key)
    for seq, window in enumerate(plan.phases):
        phase = session.get(Phase, (plan.key, window.name))
        if phase is None:
            phase = Phase(campaign_key=plan.key, name=window.name)
            session.add(phase)
        phase.seq = seq
        phase.start, phase.end = window.start, window.end
        phase.starts_at = day_start(window.start, plan.timezone)
        phase.deadline_at = deadline_of(window.end, plan.timezone)
    session.flush()
    if facts.campaign_windows(session, plan.key) != before:  # a new campaign, or its windows moved
        facts.rebuild(session, plan.key)
    enrol_newcomers(session, plan.key, actor, at)
    audit.log(
        session, campaign_key=plan.key, member_id=None, branch_id=None, from_state=None, to_state=None,
        cause="plan_load", actor=actor,
        reason="created" if created else (f"updated: {len(changes)} changes" if changes else "unchanged"), at=at,
    )
    for name, was, becomes in changes:
        audit.log(
            session, campaign_key=plan.key, member_id=None, branch_id=None, from_state=None, to_state=None,
            cause="plan_change", actor=actor, reason=f"{name} {was} → {becomes}", at=at,
        )
    return campaign
