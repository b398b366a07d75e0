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


def required(columns: tuple[Column, ...]) -> tuple[str, ...]:
    return tuple(c.name for c in columns if c.required)


def optional(columns: tuple[Column, ...]) -> tuple[str, ...]:
    return tuple(c.name for c in columns if not c.required)


def headers(columns: tuple[Column, ...], english: bool) -> list[str]:
    """A file's header row as the `template` command writes it."""
    return [c.name if english else c.zh for c in columns]
