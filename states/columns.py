"""The columns of every import file, with their English and Chinese headers: one table, read by the importers'
header check, the `template` command and docs/formats.md."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of an import file: its English name (what the importers use), its Chinese header, other Chinese
    headers offices use for it, whether a file must have it, and what it holds."""

    name: str
    zh: str
    required: bool = True
    aliases: tuple[str, ...] = ()
    doc: str = ""


ROSTER: tuple[Column, ...] = (
    Column("member_id", "人员编号", aliases=("党员编号", "编号"), doc="the person's id: letters, digits, _ . - (at most 64)"),
    Column("name", "姓名", doc="the person's name"),
    Column("branch_id", "支部编号", doc="the branch's id; empty only for an inspector"),
    Column("branch_name", "支部名称", aliases=("所在支部",), doc="the branch's name, the same on every row of the branch"),
    Column("unit", "单位", aliases=("所在单位",), doc="the unit (office or department)"),
    Column("role", "角色", aliases=("职务",), doc="one of the roles below, in English or Chinese"),
    Column("email", "电子邮箱", aliases=("邮箱",), doc="e-mail address; may be empty (notices then go to files only)"),
    Column("locale", "语言", required=False, doc="zh-CN (the default) or en: the language of the person's notices"),
)

RECORDS: tuple[Column, ...] = (
    Column("member_id", "人员编号", aliases=("党员编号", "编号"), doc="the member; empty for a branch's own record"),
    Column("branch_id", "支部编号", doc="the branch the member belongs or belonged to; the branch itself for its records"),
    Column("kind", "类别", aliases=("记录类别", "类型"), doc="what the fact is: one of the kinds below, in English or Chinese"),
    Column("date", "日期", doc="the day it happened"),
    Column("value", "数值", aliases=("值",), doc="depends on the kind (below); empty where the kind has none"),
    Column("ref", "来源编号", required=False, doc="the source system's id of the row: a row with a known ref corrects it"),
)

BALLOT: tuple[Column, ...] = (
    Column("branch_id", "支部编号", doc="the branch whose member meeting voted (the same on every row)"),
    Column("date", "会议日期", aliases=("日期",), doc="the meeting's day (the same on every row)"),
    Column("entitled", "应到人数", doc="members entitled to vote, at most the branch's participants (the same on every row)"),
    Column("present", "实到人数", doc="members present (the same on every row); more than half of entitled for a quorum"),
    Column("member_id", "人员编号", aliases=("党员编号", "编号"), doc="the member rated on this row"),
    Column("qualified", "合格票数", aliases=("合格",), doc="votes for qualified"),
    Column("basically_qualified", "基本合格票数", aliases=("基本合格",), doc="votes for basically qualified"),
    Column("unqualified", "不合格票数", aliases=("不合格",), doc="votes for unqualified"),
)

FILES: dict[str, tuple[Column, ...]] = {"roster": ROSTER, "records": RECORDS, "ballot": BALLOT}
"""Every import file read as a table (the plan is YAML), by the name the `template` command takes."""


def _english() -> dict[str, str]:
    names: dict[str, str] = {}
    for columns in FILES.values():
        for column in columns:
            for header in (column.zh, *column.aliases):
                assert names.get(header, column.name) == column.name, f"{header} names two columns"
                names[header] = column.name
    return names


ENGLISH: dict[str, str] = _english()
"""A Chinese header → the column's English name; one meaning in every file."""


def canonical(header: str) -> str:
    """The English name a header stands for: itself, lower-cased, or the column a Chinese header names."""
    text = header.strip()
    return ENGLISH.get(text, text.lower())


def chinese_header(name: str) -> str | None:
    """A column's Chinese header, as the template writes it (the first file naming the column decides), or None
    for a name no import file has (a plan's key)."""
    return next((c.zh for columns in FILES.values() for c in columns if c.name == name), None)


KNOWN: frozenset[str] = frozenset(c.name for columns in FILES.values() for c in columns)
TITLE_ROWS = 10
"""How many rows above the header a sheet may hold (a title such as 省外办党员花名册, a date, a blank row)."""


def is_header(cells: list[str]) -> bool:
    """Whether a row names at least two columns of some import file: the header, not a title above it."""
    return sum(canonical(c) in KNOWN for c in cells if c) >= 2


def header_at(rows: list[list[str]]) -> int:
    """Which of a file's first rows is its header: the first naming known columns, when every row above it looks
    like a title (at most two cells filled: 省外办党员花名册, 制表日期 …); else the first row not blank. A row that
    looks like data ends the search, so no data row is ever taken for a title and skipped."""
    for index, row in enumerate(rows):
        if is_header(row):
            return index
        if sum(1 for c in row if c.strip()) > 2:
            break
    return next((i for i, row in enumerate(rows) if any(c.strip() for c in row)), 0)


def required(columns: tuple[Column, ...]) -> tuple[str, ...]:
    return tuple(c.name for c in columns if c.required)


def optional(columns: tuple[Column, ...]) -> tuple[str, ...]:
    return tuple(c.name for c in columns if not c.required)


def headers(columns: tuple[Column, ...], english: bool) -> list[str]:
    """A file's header row as the `template` command writes it."""
    return [c.name if english else c.zh for c in columns]


@dataclass(frozen=True)
class KindDoc:
    """What a records file's `kind` means: whose record it is, what its `value` holds, and an example row."""

    subject: str  # "member" or "branch"
    value: str
    example: str


_SIGNED = "members signed in: a whole number up to the branch's participants, or empty"
KIND_DOCS: dict[str, KindDoc] = {
    "study_self": KindDoc("member", "hours of one sitting, 0–24 (2.5 allowed)", "M054,B03,study_self,2024/4/2,3"),
    "study_concentrated": KindDoc(
        "member", "hours of one concentrated sitting, 0–24; each distinct day counts as a concentrated day",
        "M054,B03,study_concentrated,2024-04-08,4",
    ),
    "study_check": KindDoc(
        "member", "pass or fail (通过/未通过); the latest date decides, on one date the row imported last",
        "M054,B03,study_check,2024-04-27,pass",
    ),
    "analysis_report": KindDoc("member", "empty, or the report's title (at most 2000 characters)", "M054,B03,analysis_report,2024-05-12,"),
    "satisfaction_evaluation": KindDoc("member", "percent satisfied, 0–100 (recorded is what counts)", "M054,B03,satisfaction_evaluation,2024-05-22,92"),
    "heart_talk": KindDoc("member", "empty, or a note", "M054,B03,heart_talk,2024-05-10,与支部书记谈心"),
    "rectification_plan": KindDoc("member", "empty, or a note", "M054,B03,rectification_plan,2024-06-08,"),
    "good_deed": KindDoc("member", "what was done", "M054,B03,good_deed,2024-06-20,扶贫帮困"),
    "pledge_application": KindDoc("member", "empty, or a note (the written application, 书面申请)", "M054,B03,pledge_application,2024-08-02,"),
    "admonishment_talk": KindDoc("member", "empty, or a note (for a member rated basically qualified)", "M094,B05,admonishment_talk,2024-08-15,"),
    "disposition": KindDoc("member", "the disposition decided for a member rated unqualified", "M089,B05,disposition,2024-08-24,限期改正"),
    "oath": KindDoc("member", "empty (took part in the collective oath)", "M054,B03,oath,2024-08-19,"),
    "public_commitment": KindDoc("member", "empty, or the commitment", "M054,B03,public_commitment,2024-08-22,"),
    "mobilization_meeting": KindDoc("branch", _SIGNED, ",B03,mobilization_meeting,2024-03-26,19"),
    "concentrated_training": KindDoc("branch", _SIGNED + "; one row per training day", ",B03,concentrated_training,2024-04-08,20"),
    "discussion_meeting": KindDoc("branch", _SIGNED, ",B03,discussion_meeting,2024-04-26,18"),
    "opinions_solicited": KindDoc("branch", "how many opinions were gathered: a whole number, at least 1 to count", ",B03,opinions_solicited,2024-05-06,35"),
    "analysis_meeting": KindDoc("branch", _SIGNED, ",B03,analysis_meeting,2024-05-22,19"),
    "branch_rectification_plan": KindDoc("branch", _SIGNED, ",B03,branch_rectification_plan,2024-06-08,20"),
    "theme_activity": KindDoc("branch", _SIGNED, ",B03,theme_activity,2024-06-28,17"),
    "oath_ceremony": KindDoc("branch", _SIGNED, ",B03,oath_ceremony,2024-08-19,19"),
}
"""Every kind of evidence, in the order of the campaign (its Chinese name is in `states.labels.KIND_LABELS`)."""
