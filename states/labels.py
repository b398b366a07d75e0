"""The organisation's own words, in Chinese and English, for phases, states, conditions, ratings and dates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, TypeAlias, TypeGuard
from zoneinfo import ZoneInfo

Locale: TypeAlias = Literal["zh-CN", "en"]
LOCALES: tuple[Locale, ...] = ("zh-CN", "en")
DEFAULT_LOCALE: Locale = "zh-CN"

# A figure as conditions report it: a number, a flag, a value such as "pass", or nothing recorded.
Figure: TypeAlias = bool | int | float | str | None

Labels: TypeAlias = dict[str, dict[Locale, str]]

PHASES: tuple[str, ...] = ("study", "analysis", "rectification", "consolidation", "pledge")

PHASE_LABELS: Labels = {
    "study": {"zh-CN": "教育学习", "en": "study"},
    "analysis": {"zh-CN": "分析评议", "en": "analysis and appraisal"},
    "rectification": {"zh-CN": "整改建设", "en": "rectification"},
    "consolidation": {"zh-CN": "巩固提高", "en": "consolidation"},
    "pledge": {"zh-CN": "宣誓承诺", "en": "oath and pledge"},
}

# Where the campaign as a whole stands on a day: a phase, or outside every phase's window.
STAGE_LABELS: Labels = {
    "not_started": {"zh-CN": "尚未开始", "en": "not started"},
    **PHASE_LABELS,
    "ended": {"zh-CN": "已结束", "en": "ended"},
}

# In the order reports list them: the main path first, then the side states of a member.
STATES: tuple[str, ...] = (
    "enrolled",
    *PHASES,
    "completed",
    "exempt",
    "referred",
    "withdrawal_pending",
    "withdrawn",
    "disqualified",
)

STATE_LABELS: Labels = {
    "enrolled": {"zh-CN": "已报名", "en": "enrolled"},
    **PHASE_LABELS,
    "completed": {"zh-CN": "已完成", "en": "completed"},
    "exempt": {"zh-CN": "免予参加", "en": "exempt"},
    "referred": {"zh-CN": "移交处理", "en": "referred"},
    "withdrawal_pending": {"zh-CN": "视为自行脱党待确认", "en": "withdrawal pending"},
    "withdrawn": {"zh-CN": "已除名", "en": "withdrawn"},
    "disqualified": {"zh-CN": "不合格处置", "en": "disqualified"},
}

RATINGS: tuple[str, ...] = ("qualified", "basically_qualified", "unqualified")

RATING_LABELS: Labels = {
    "qualified": {"zh-CN": "合格", "en": "qualified"},
    "basically_qualified": {"zh-CN": "基本合格", "en": "basically qualified"},
    "unqualified": {"zh-CN": "不合格", "en": "unqualified"},
}

# The responsibility chain (责任制), lowest first: the order in which a stuck branch escalates.
LEVELS: tuple[str, ...] = ("specific", "direct", "second", "first")

LEVEL_LABELS: Labels = {
    "specific": {"zh-CN": "具体责任人", "en": "specific responsible person"},
    "direct": {"zh-CN": "直接责任人", "en": "direct responsible person"},
    "second": {"zh-CN": "第二责任人", "en": "second responsible person"},
    "first": {"zh-CN": "第一责任人", "en": "first responsible person"},
}

LEVEL_ROLES: Labels = {
    "specific": {"zh-CN": "党支部书记", "en": "branch secretary"},
    "direct": {"zh-CN": "机关党委书记", "en": "secretary of the organ's party committee"},
    "second": {"zh-CN": "党组副书记", "en": "deputy secretary of the party group"},
    "first": {"zh-CN": "党组书记", "en": "secretary of the party group"},
}

# Values a condition may report as `have` or `need` besides numbers; anything else is shown as it is.
VALUE_LABELS: Labels = {
    "pass": {"zh-CN": "通过", "en": "passed"},
    "fail": {"zh-CN": "未通过", "en": "failed"},
    "rated": {"zh-CN": "已评定", "en": "rated"},
    **STATE_LABELS,
    **RATING_LABELS,
}


@dataclass(frozen=True)
class ConditionText:
    """How one condition reads in one language."""

    label: str
    missing: str
    """What is wrong when nothing is recorded: "未提交", "not submitted"."""
    ask: str
    """What the condition asks of its subject; "{n}" is replaced by the plan's figure where there is one."""
    mismatch: str = ""
    """How a wrong value reads ("{label}", "{have}", "{need}"); empty means the language's default."""


@dataclass(frozen=True)
class ConditionWords:
    """A condition's words in every language, and whether its figures are counted amounts."""

    counted: bool
    """Counted amounts ("学时 38/50") always show their figures, even when the plan asks for just one."""
    texts: dict[Locale, ConditionText]


def _words(counted: bool, zh: tuple[str, ...], en: tuple[str, ...]) -> ConditionWords:
    return ConditionWords(counted, {"zh-CN": ConditionText(*zh), "en": ConditionText(*en)})


# Every condition of the campaign's rules, member and branch; `member_meeting_ballot` is both and reads the same.
CONDITIONS: dict[str, ConditionWords] = {
    # member: study → analysis
    "study_hours": _words(
        True,
        ("学时", "未完成", "学习培训累计不少于{n}学时"),
        ("study hours", "not done", "at least {n} class hours of study in total"),
    ),
    "concentrated_days": _words(
        True,
        ("集中学习培训天数", "未参加", "其中集中学习培训不少于{n}天"),
        (
            "concentrated training days",
            "none attended",
            "of which concentrated training on at least {n} days",
        ),
    ),
    "study_check": _words(
        False,
        ("学习培训成果检查", "未通过", "通过学习培训成果检查"),
        ("check of learning results", "not passed", "pass the check of your learning results"),
    ),
    # member: analysis → rectification
    "analysis_report": _words(
        False,
        ("剖析报告", "未提交", "撰写并提交剖析报告"),
        ("self-analysis report", "not submitted", "write and submit your self-analysis report"),
    ),
    "satisfaction_evaluation": _words(
        False,
        ("满意度测评", "未测评", "剖析报告接受满意度测评"),
        ("satisfaction evaluation", "not held", "have your report go through the satisfaction evaluation"),
    ),
    "heart_talk": _words(
        False,
        ("谈心交心", "未记录", "开展谈心交心活动"),
        ("heart-to-heart talk", "none recorded", "hold at least one heart-to-heart talk"),
    ),
    # member: rectification → consolidation
    "rectification_plan": _words(
        False,
        ("整改方案", "未提交", "制定并提交个人整改方案"),
        ("rectification plan", "not submitted", "draw up and submit your rectification plan"),
    ),
    "good_deed": _words(
        False,
        ("好事实事", "未记录", "为基层和群众办好事实事"),
        (
            "good deed",
            "none recorded",
            "do at least one practical good deed for the grassroots or the public",
        ),
    ),
    # member: consolidation → pledge (the appraisal)
    "pledge_application": _words(
        False,
        ("书面申请", "未提交", "向党组织提交保持共产党员先进性的书面申请"),
        (
            "written application",
            "not submitted",
            "hand the party organisation a written application to keep the standard of a party member",
        ),
    ),
    "member_meeting_ballot": _words(
        False,
        ("党员大会无记名投票", "未进行", "经党员大会以无记名投票确定评定意见"),
        (
            "secret ballot of the member meeting",
            "not held",
            "have your rating decided by the branch member meeting's secret ballot",
        ),
    ),
    "approval": _words(
        False,
        ("上级党委审批", "未批准", "评定意见经上级党委审查批准"),
        (
            "approval by the upper party committee",
            "not yet given",
            "have your rating approved by the upper party committee",
        ),
    ),
    "publicity": _words(
        False,
        ("公示", "未期满", "评定结果公示期满"),
        ("publicity", "not yet over", "have your rating published for the full publicity period"),
    ),
    "qualified": _words(
        False,
        ("评定结果", "未评定", "评定为合格或基本合格"),
        ("rating", "not yet rated", "be rated qualified or basically qualified"),
    ),
    "unqualified": _words(
        False,
        ("评定结果", "未评定", "评定为不合格"),
        ("rating", "not yet rated", "be rated unqualified"),
    ),
    "followup": _words(
        False,
        ("诫勉谈话", "未进行", "评定为基本合格的，接受诫勉谈话"),
        ("admonishment talk", "not yet held", "if rated basically qualified, have the admonishment talk"),
    ),
    # member: pledge → completed
    "oath": _words(
        False,
        ("重温入党誓词", "未参加", "参加重温入党誓词、集中宣誓"),
        ("renewal of the oath", "not taken part", "take part in the collective renewal of the oath"),
    ),
    "public_commitment": _words(
        False,
        ("公开承诺", "未作出", "向党组织和人民群众作出公开承诺"),
        ("public commitment", "not made", "make your public commitment to the party and the people"),
    ),
    # member: held by its branch (a member never moves ahead of it)
    "branch": _words(
        False,
        (
            "所在党支部",
            "尚未完成本阶段工作",
            "所在党支部完成本阶段工作",
            "所在党支部：尚处于{have}，未转入{need}",
        ),
        (
            "your branch",
            "has not finished this phase",
            "your branch finishes its own work for this phase",
            "your branch: still at {have}, not yet at {need}",
        ),
    ),
    # branch conditions
    "mobilization_meeting": _words(
        False,
        ("动员大会", "未召开", "召开动员大会"),
        ("mobilisation meeting", "not held", "hold the mobilisation meeting"),
    ),
    "concentrated_training": _words(
        True,
        ("集中学习培训天数", "未组织", "组织集中学习培训不少于{n}天"),
        ("concentrated training days", "none held", "hold concentrated training on at least {n} days"),
    ),
    "discussion_meeting": _words(
        False,
        ("保持先进性大讨论", "未开展", "开展保持先进性大讨论"),
        ("discussion on keeping the standard", "not held", "hold the discussion on keeping the standard"),
    ),
    "opinions_solicited": _words(
        False,
        ("征求意见", "未开展", "广泛征求基层、服务对象和党内外群众意见"),
        (
            "opinions solicited",
            "none solicited",
            "solicit opinions from units below, service users and people inside and outside the party",
        ),
    ),
    "analysis_meeting": _words(
        False,
        ("分析会", "未召开", "召开分析会"),
        ("analysis meeting", "not held", "hold the analysis meeting"),
    ),
    "branch_rectification_plan": _words(
        False,
        ("支部整改方案", "未制定", "制定支部整改方案"),
        ("branch rectification plan", "not drawn up", "draw up the branch's rectification plan"),
    ),
    "theme_activity": _words(
        False,
        ("转变机关作风主题活动", "未开展", "开展转变机关作风主题活动"),
        (
            "theme activity on the organ's working style",
            "not held",
            "hold the theme activity on the working style",
        ),
    ),
    "oath_ceremony": _words(
        False,
        ("集中宣誓仪式", "未举行", "组织重温入党誓词、集中宣誓"),
        ("oath ceremony", "not held", "hold the collective renewal of the oath"),
    ),
}

# The kinds of evidence a records file holds (its `kind` column), as the organisation names them; a kind that is
# also a condition reads as the condition does.
_KIND_OWN: Labels = {
    "study_self": {"zh-CN": "自学学时", "en": "self-study hours"},
    "study_concentrated": {"zh-CN": "集中学习学时", "en": "concentrated study hours"},
    "admonishment_talk": {"zh-CN": "诫勉谈话", "en": "admonishment talk"},
    "disposition": {"zh-CN": "组织处置", "en": "disposition"},
    "concentrated_training": {"zh-CN": "集中学习培训", "en": "concentrated training day"},
}
KINDS: tuple[str, ...] = (
    "study_self", "study_concentrated", "study_check", "analysis_report", "satisfaction_evaluation", "heart_talk",
    "rectification_plan", "good_deed", "pledge_application", "admonishment_talk", "disposition", "oath",
    "public_commitment", "mobilization_meeting", "concentrated_training", "discussion_meeting", "opinions_solicited",
    "analysis_meeting", "branch_rectification_plan", "theme_activity", "oath_ceremony",
)
KIND_LABELS: Labels = {
    k: _KIND_OWN[k] if k in _KIND_OWN else {loc: CONDITIONS[k].texts[loc].label for loc in LOCALES} for k in KINDS
}

# The roles of the roster's `role` column.
ROLE_LABELS: Labels = {
    "member": {"zh-CN": "党员", "en": "member"},
    "branch_secretary": {"zh-CN": "党支部书记", "en": "branch secretary"},
    "committee_secretary": {"zh-CN": "机关党委书记", "en": "secretary of the organ's party committee"},
    "party_group_deputy": {"zh-CN": "党组副书记", "en": "deputy secretary of the party group"},
    "party_group_secretary": {"zh-CN": "党组书记", "en": "secretary of the party group"},
    "office_director": {"zh-CN": "办公室主任", "en": "office director"},
    "inspector": {"zh-CN": "督导组成员", "en": "inspector"},
}


def codes(table: Labels) -> dict[str, str]:
    """A Chinese label → its code: how a file's cell may name a kind or a role."""
    return {words["zh-CN"]: code for code, words in table.items()}


KIND_CODES: dict[str, str] = codes(KIND_LABELS)
ROLE_CODES: dict[str, str] = codes(ROLE_LABELS)


_DEFAULT_MISMATCH: dict[Locale, str] = {
    "zh-CN": "{label}：{have}（要求：{need}）",
    "en": "{label}: {have} (needs {need})",
}
_MISSING: dict[Locale, str] = {"zh-CN": "{label}：{missing}", "en": "{label}: {missing}"}
_AMOUNT: dict[Locale, str] = {"zh-CN": "{label} {have}/{need}", "en": "{label} {have} of {need}"}
_AT_LEAST: dict[Locale, str] = {"zh-CN": "{label}：不少于{n}", "en": "{label}: at least {n}"}
_ALTERNATIVE: dict[Locale, str] = {"zh-CN": "或", "en": " or "}
_BOOLEAN: dict[Locale, tuple[str, str]] = {"zh-CN": ("否", "是"), "en": ("no", "yes")}
_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _lookup(table: Labels, key: str, locale: Locale, what: str) -> str:
    try:
        return table[key][locale]
    except KeyError:
        # A missing word is a programming error; say which, rather than print a bare key to a member.
        raise KeyError(f"no {locale} label for {what} {key!r}") from None


def phase_label(name: str, locale: Locale) -> str:
    """A phase, or the campaign's `not_started`/`ended`."""
    return _lookup(STAGE_LABELS, name, locale, "phase")


def state_label(name: str, locale: Locale) -> str:
    return _lookup(STATE_LABELS, name, locale, "state")


def rating_label(name: str, locale: Locale) -> str:
    return _lookup(RATING_LABELS, name, locale, "rating")


def level_label(name: str, locale: Locale) -> str:
    return _lookup(LEVEL_LABELS, name, locale, "responsibility level")


def level_role(name: str, locale: Locale) -> str:
    return _lookup(LEVEL_ROLES, name, locale, "responsibility level")


def condition_text(condition: str, locale: Locale) -> ConditionText:
    try:
        return CONDITIONS[condition].texts[locale]
    except KeyError:
        raise KeyError(f"no {locale} words for condition {condition!r}") from None


def condition_label(condition: str, locale: Locale) -> str:
    return condition_text(condition, locale).label


def is_number(value: object) -> TypeGuard[int | float]:
    """A real amount: `True` is an int to Python but a flag to us."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_number(value: float) -> str:
    """38.0 → "38", 37.5 → "37.5": hours are recorded in halves, and "38.0 学时" reads like a machine."""
    if isinstance(value, int):
        return str(value)
    # Two decimals at most, and never an exponent: 37.333… hours reads "37.33", 1200000.0 "1200000".
    return f"{value:.2f}".rstrip("0").rstrip(".")


def format_value(value: Figure, locale: Locale) -> str:
    """A `have`/`need` figure in words: numbers, flags, states, ratings, "a|b" alternatives."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _BOOLEAN[locale][value]
    if is_number(value):
        return format_number(value)
    parts = [VALUE_LABELS[part][locale] if part in VALUE_LABELS else part for part in str(value).split("|")]
    return _ALTERNATIVE[locale].join(parts)


def _is_flag(need: Figure) -> bool:
    return need is True or (is_number(need) and need == 1)


def _is_missing(have: Figure) -> bool:
    return have is None or have is False or have == "" or (is_number(have) and have == 0)


def describe_unmet(condition: str, have: Figure, need: Figure, locale: Locale) -> str:
    """One unmet condition as people read it: "学时 38/50", "剖析报告：未提交", "study hours 38 of 50"."""
    words = CONDITIONS.get(condition)
    text = condition_text(condition, locale)
    if words is not None and words.counted and is_number(need) and (have is None or is_number(have)):
        return _AMOUNT[locale].format(
            label=text.label, have=format_number(have or 0), need=format_number(need)
        )
    if _is_missing(have) and (_is_flag(need) or isinstance(need, str)):
        return _MISSING[locale].format(label=text.label, missing=text.missing)
    if is_number(have) and is_number(need):
        return _AMOUNT[locale].format(label=text.label, have=format_number(have), need=format_number(need))
    template = text.mismatch or _DEFAULT_MISMATCH[locale]
    have_words = text.missing if _is_missing(have) else format_value(have, locale)
    return template.format(label=text.label, have=have_words, need=format_value(need, locale))


def describe_ask(condition: str, need: Figure, locale: Locale) -> str:
    """What a condition asks, with the plan's figure where it matters: "学习培训累计不少于 50 学时"."""
    text = condition_text(condition, locale)
    if "{n}" in text.ask:
        if is_number(need):
            return text.ask.format(n=format_number(need))
        return text.label
    if is_number(need) and need > 1:
        # A plan may ask more than one of something that is usually one (two heart-to-heart talks).
        return _AT_LEAST[locale].format(label=text.label, n=format_number(need))
    return text.ask


def format_date(value: dt.date | str, locale: Locale) -> str:
    """A calendar day: "2024年4月30日", "30 April 2024" (no locale database needed)."""
    day = dt.date.fromisoformat(value) if isinstance(value, str) else value
    if locale == "zh-CN":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"


def format_datetime(value: dt.datetime | str, timezone: str, locale: Locale) -> str:
    """An instant as the campaign's local date and time; a time without offset is already local."""
    instant = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    zone = ZoneInfo(timezone)
    local = instant.replace(tzinfo=zone) if instant.tzinfo is None else instant.astimezone(zone)
    separator = " " if locale == "zh-CN" else ", "
    return f"{format_date(local.date(), locale)}{separator}{local:%H:%M}"


# -- the log, and what stands between a member and its next step ---------------------------------------

# Why a row of the log was written (`transition_log.cause`); a cause not listed here is shown as it is.
CAUSE_LABELS: Labels = {
    "sweep": {"zh-CN": "定时推进", "en": "sweep"},
    "retry": {"zh-CN": "重新检查", "en": "retry"},
    "exempt": {"zh-CN": "免予参加", "en": "exempted"},
    "exempt_undo": {"zh-CN": "撤销免予参加", "en": "exemption reversed"},
    "refer": {"zh-CN": "移交处理", "en": "referred"},
    "resume": {"zh-CN": "恢复参加", "en": "resumed"},
    "accept_late": {"zh-CN": "接受补交书面申请", "en": "late application accepted"},
    "withdrawal_confirmed": {"zh-CN": "支部确认脱党", "en": "withdrawal confirmed"},
    "withdrawal_approved": {"zh-CN": "上级党委批准除名", "en": "withdrawal approved"},
    "withdrawal_rejected": {"zh-CN": "上级党委未批准除名", "en": "withdrawal rejected"},
    "ballot": {"zh-CN": "党员大会投票", "en": "ballot"},
    "approval": {"zh-CN": "上级党委批准", "en": "approved"},
    "approval_rejected": {"zh-CN": "上级党委退回", "en": "approval rejected"},
    "objection": {"zh-CN": "提出异议", "en": "objection"},
    "objection_upheld": {"zh-CN": "异议成立", "en": "objection upheld"},
    "objection_dismissed": {"zh-CN": "异议不成立", "en": "objection dismissed"},
    "excellent": {"zh-CN": "评为优秀共产党员", "en": "selected as excellent"},
    "roster_import": {"zh-CN": "导入名册", "en": "roster import"},
    "record_import": {"zh-CN": "导入记录", "en": "record import"},
    "plan_load": {"zh-CN": "载入方案", "en": "plan load"},
}

# Why a member's evidence does not count at T (`explain`): "学时：有 3 条记录日期在本阶段截止（2024年4月30日）之后，不计入".
UNCOUNTED: dict[str, dict[Locale, str]] = {
    "before_window": {
        "zh-CN": "{label}：有 {n} 条记录日期在活动开始（{date}）之前，不计入",
        "en": "{label}: {n} record(s) dated before the campaign began ({date}) do not count",
    },
    "after_window": {
        "zh-CN": "{label}：有 {n} 条记录日期在活动结束（{date}）之后，不计入",
        "en": "{label}: {n} record(s) dated after the campaign ended ({date}) do not count",
    },
    "after_phase": {
        "zh-CN": "{label}：有 {n} 条记录日期在本阶段截止（{date}）之后，截止时不计入",
        "en": "{label}: {n} record(s) dated after this phase ends ({date}) will not count at its deadline",
    },
    "after_at": {
        "zh-CN": "{label}：有 {n} 条记录日期晚于 {date}，到该日期后才计入",
        "en": "{label}: {n} record(s) dated after {date} count only from their date on",
    },
}

# The acts that take a member out of a side state (the member machine's triggers, and the acts their conditions
# wait for), with the command that performs each.
ACT_LABELS: Labels = {
    "start": {"zh-CN": "活动开始时自动转入教育学习", "en": "moves to study when the campaign starts"},
    "unexempt": {"zh-CN": "撤销免予参加，回到{prior}", "en": "reverse the exemption, back to {prior}"},
    "resume": {"zh-CN": "恢复参加，回到{prior}", "en": "resume, back to {prior}"},
    "withdrawal_confirmed": {"zh-CN": "党支部确认视为自行脱党", "en": "the branch confirms the withdrawal"},
    "withdrawal_approved": {"zh-CN": "上级党委审批除名", "en": "the upper committee approves the withdrawal"},
    "accept_late": {
        "zh-CN": "补交书面申请后，党支部可接受，回到巩固提高",
        "en": "once a written application is recorded, the branch may accept it, back to consolidation",
    },
    "disposition": {"zh-CN": "记录组织处置情况", "en": "record the organisational disposition"},
}


def role_label(name: str, locale: Locale) -> str:
    return ROLE_LABELS[name][locale] if name in ROLE_LABELS else name


def cause_label(name: str, locale: Locale) -> str:
    return CAUSE_LABELS[name][locale] if name in CAUSE_LABELS else name


def describe_uncounted(condition: str, reason: str, count: int, day: dt.date | str, locale: Locale) -> str:
    """Why `count` records of a condition's evidence do not count at T, naming the day that decides."""
    return UNCOUNTED[reason][locale].format(
        label=condition_label(condition, locale), n=count, date=format_date(day, locale)
    )


def describe_act(act: str, locale: Locale, prior: str | None = None) -> str:
    """A next step out of a side state: "撤销免予参加，回到教育学习"."""
    return _lookup(ACT_LABELS, act, locale, "act").format(prior=state_label(prior, locale) if prior else "—")
