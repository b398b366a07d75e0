"""The office's own files through the `campaign` command: an .xlsx roster with Chinese headers, a WPS-saved GBK CSV
of evidence with slashed dates and a remark column, `--dry-run` changing nothing, templates filled in and imported,
and errors naming the sheet and cell."""

from __future__ import annotations

import csv
import re
import sqlite3

from openpyxl import Workbook, load_workbook

from states import columns
from states.labels import ROLE_LABELS
from states.sample import plan_2024_path, roster_path
from tests.e2e.conftest import Cli

ACTOR = ("--actor", "M002")  # the sample office's committee secretary


def _office(cli: Cli) -> None:
    """The sample roster as an .xlsx with Chinese headers, Chinese role names and a remark column; the 2024 plan."""
    with roster_path().open(encoding="utf-8-sig", newline="") as f:
        people = list(csv.DictReader(f))
    book = Workbook(write_only=True)
    sheet = book.create_sheet("花名册")
    sheet.append([*columns.headers(columns.ROSTER, english=False), "备注"])
    for person in people:
        role = ROLE_LABELS[person["role"]]["zh-CN"]
        sheet.append([person[c.name] if c.name != "role" else role for c in columns.ROSTER] + ["—"])
    book.save(cli.tmp / "roster.xlsx")
    imported = cli("roster", "import", "roster.xlsx", *ACTOR)
    assert imported.code == 0, imported.err
    assert "已忽略的列: 备注" in imported.out and re.search(rf"\b{len(people)}\b", imported.out)
    loaded = cli("plan", "load", str(plan_2024_path()), *ACTOR)
    assert loaded.code == 0, loaded.err


def _count(cli: Cli, table: str) -> int:
    with sqlite3.connect(cli.tmp / "campaign.db") as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_wps_csv_with_slashed_dates_chinese_headers_and_a_remark_after_a_dry_run(cli: Cli) -> None:
    _office(cli)
    (cli.tmp / "wps.csv").write_bytes(
        "人员编号,支部编号,类别,日期,数值,备注\r\n"
        "M054,B03,自学学时,2024/4/2,４,补学\r\n"
        "M054,B03,study_self,2024年4月3日,3,\r\n"
        ",B03,动员大会,2024-3-26,20,\r\n".encode("gbk")
    )
    evidence, log = _count(cli, "evidence"), _count(cli, "transition_log")
    trial = cli("record", "import", "wps.csv", *ACTOR, "--dry-run")
    assert trial.code == 0, trial.err
    assert "已忽略的列: 备注" in trial.out and re.search(r"\b3\b", trial.out) and "--dry-run" in trial.out
    assert (_count(cli, "evidence"), _count(cli, "transition_log")) == (evidence, log)
    real = cli("record", "import", "wps.csv", *ACTOR)
    assert real.code == 0 and re.search(r"\b3\b", real.out), real.err
    assert _count(cli, "evidence") == evidence + 3
    with sqlite3.connect(cli.tmp / "campaign.db") as db:
        assert db.execute("SELECT kind, date, value FROM evidence WHERE member_id = 'M054' ORDER BY date").fetchall() == [
            ("study_self", "2024-04-02", "4"), ("study_self", "2024-04-03", "3")
        ]


def test_an_error_in_a_workbook_names_its_sheet_and_cell_and_changes_nothing(cli: Cli) -> None:
    _office(cli)
    book = Workbook()
    sheet = book.active
    sheet.title = "活动记录"
    sheet.append(columns.headers(columns.RECORDS, english=False))
    sheet.append(["M054", "B03", "study_self", "2024-04-02", 4])
    sheet.append(["M054", "B03", "study_self", "2024.4.3", 4])
    book.save(cli.tmp / "records.xlsx")
    evidence = _count(cli, "evidence")
    refused = cli("record", "import", "records.xlsx", *ACTOR)
    assert refused.code == 2 and refused.err.count("\n") == 1, refused.err
    assert "records.xlsx [活动记录] 第3行 D列 日期 (date)：'2024.4.3' 不是日期" in refused.err, refused.err
    assert _count(cli, "evidence") == evidence


def test_templates_filled_in_import_in_either_language(cli: Cli) -> None:
    _office(cli)
    made = cli("template", "records", "--xlsx")
    assert made.code == 0 and (cli.tmp / "records.xlsx").exists(), made.err
    book = load_workbook(cli.tmp / "records.xlsx")
    assert [c.value for c in book.active[1]] == ["人员编号", "支部编号", "类别", "日期", "数值", "来源编号"]
    book.active.append(["M054", "B03", "自学学时", "2024/4/2", 4, "t-1"])
    book.save(cli.tmp / "records.xlsx")
    imported = cli("record", "import", "records.xlsx", *ACTOR)
    assert imported.code == 0 and re.search(r"\b1\b", imported.out), imported.err

    made = cli("template", "roster", "--lang", "en", "--out", "people.csv")
    assert made.code == 0, made.err
    raw = (cli.tmp / "people.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfmember_id,name,branch_id,")  # a BOM: Excel opens it as UTF-8
    (cli.tmp / "people.csv").write_bytes(raw + "M900,王新,B03,欧美处党支部,省外办,member,,\r\n".encode())
    joined = cli("roster", "import", "people.csv", *ACTOR)
    assert joined.code == 0 and re.search(r"\b1\b", joined.out), joined.err

    again = cli("template", "roster", "--lang", "en", "--out", "people.csv")
    assert again.code == 2 and "已存在" in again.err, again.err
    assert (cli.tmp / "people.csv").read_bytes().endswith(b"M900,\xe7\x8e\x8b\xe6\x96\xb0,B03,\xe6\xac\xa7\xe7\xbe\x8e\xe5\xa4\x84\xe5\x85\x9a\xe6\x94\xaf\xe9\x83\xa8,\xe7\x9c\x81\xe5\xa4\x96\xe5\x8a\x9e,member,,\r\n")

    assert cli("template", "ballot", "--out", "ballot.csv").code == 0
    with (cli.tmp / "ballot.csv").open("a", encoding="utf-8") as f:
        f.write("B03,2024/8/8,20,18,M054,17,1,0\r\n")
    trial = cli("ballot", "import", "sfao-2024", "ballot.csv", *ACTOR, "--dry-run", "--at", "2024-08-09T10:00")
    # The Chinese headers are read; the rules then refuse (M054 is not in consolidation): nothing is written.
    assert trial.code in (1, 2) and "表头" not in trial.err, trial.err
    assert _count(cli, "ballot_meeting") == 0


def test_a_pdf_is_refused_with_a_hint(cli: Cli) -> None:
    (cli.tmp / "roster.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    refused = cli("roster", "import", "roster.pdf", *ACTOR)
    assert refused.code == 2 and "roster.pdf" in refused.err and "PDF" in refused.err, refused.err


def test_a_ballot_dry_run_reports_the_ratings_and_records_nothing(cli: Cli) -> None:
    """The sample ballot of B03, tried and then recorded, in the sample campaign swept into consolidation."""
    from states.sample import SAMPLE_BALLOT_BRANCH, SAMPLE_DIR

    KEY = "sfao-2024"
    for args in (
        ("roster", "import", str(roster_path()), *ACTOR),
        ("plan", "load", str(plan_2024_path()), *ACTOR),
        ("record", "import", str(SAMPLE_DIR / "records-2024.csv"), *ACTOR),
        ("record", "import", str(SAMPLE_DIR / "mended-2024.csv"), *ACTOR),
        ("sweep", KEY, "--at", "2024-08-01T00:00:01"),
        ("sweep", KEY, "--at", "2024-08-09T00:00:01"),
    ):
        done = cli(*args)
        assert done.code == 0, (args, done.err)
    path = SAMPLE_DIR / f"ballot-{SAMPLE_BALLOT_BRANCH}-2024.csv"
    args = ("ballot", "import", KEY, str(path), "--actor", "M048", "--at", "2024-08-09T10:00")
    trial = cli(*args, "--dry-run")
    assert trial.code == 0, trial.err
    assert "--dry-run" in trial.out
    assert _count(cli, "ballot_meeting") == 0 and _count(cli, "ballot_tally") == 0
    real = cli(*args)
    assert real.code == 0, real.err
    assert _count(cli, "ballot_meeting") == 1 and _count(cli, "ballot_tally") > 0


def test_a_plan_dry_run_loads_nothing_and_sheet_picks_the_sheet(cli: Cli) -> None:
    roster = cli("roster", "import", str(roster_path()), *ACTOR)
    assert roster.code == 0, roster.err
    trial = cli("plan", "load", str(plan_2024_path()), *ACTOR, "--dry-run")
    assert trial.code == 0 and "sfao-2024" in trial.out, trial.err
    assert _count(cli, "campaign") == 0 and _count(cli, "phase") == 0
    assert cli("plan", "load", str(plan_2024_path()), *ACTOR).code == 0
    assert _count(cli, "campaign") == 1

    book = Workbook()
    book.active.title = "说明"
    book.active.append(["请在“记录”表中填写"])
    sheet = book.create_sheet("记录")
    sheet.append(columns.headers(columns.RECORDS, english=True))
    sheet.append(["M054", "B03", "oath", "2024-08-20", None, "s-1"])
    book.save(cli.tmp / "book.xlsx")
    first = cli("record", "import", "book.xlsx", *ACTOR)  # the first sheet is the note: its "header" lacks columns
    assert first.code == 2 and "book.xlsx [说明]" in first.err and "表头缺少列" in first.err, first.err
    chosen = cli("record", "import", "book.xlsx", "--sheet", "记录", *ACTOR)
    assert chosen.code == 0, chosen.err
    assert _count(cli, "evidence") == 1


# -- issue 15's "done when": a newcomer's own campaign, from the office's files to a report of a past day ---------

OWN_PLAN = """\
key: da-2024
title: 市档案局保持共产党员先进性教育活动
timezone: Asia/Shanghai
phases:
  - {name: study,         start: 2024-03-04, end: 2024-03-31}
  - {name: analysis,      start: 2024-04-01, end: 2024-04-30}
  - {name: rectification, start: 2024-05-01, end: 2024-05-31}
  - {name: consolidation, start: 2024-06-01, end: 2024-06-15}
  - {name: pledge,        start: 2024-06-16, end: 2024-06-30}
thresholds: {study_hours: 10, concentrated_days: 3, publicity_days: 5, excellent_max_fraction: "1/3"}
"""
OWN_PEOPLE = [  # id, name, branch, branch name, role (as the office writes it, in Chinese)
    ("A01", "周国强", "B1", "综合科党支部", "党组书记"), ("A02", "陈立新", "B1", "综合科党支部", "机关党委书记"),
    ("A03", "吴晓梅", "B1", "综合科党支部", "办公室主任"), ("A04", "郑海燕", "B1", "综合科党支部", "党支部书记"),
    ("A05", "孙伟", "B1", "综合科党支部", "党员"), ("A06", "赵丽", "B2", "业务科党支部", "党支部书记"),
    ("A07", "钱明", "B2", "业务科党支部", "党员"), ("A08", "李强", "B2", "业务科党支部", "党员"),
]
CJK = re.compile(r"[\u4e00-\u9fff]")


def _own_files(cli: Cli) -> None:
    """The office's roster as its own workbook (a title row, Chinese headers and roles) and its evidence as WPS saves
    a CSV: GBK, CRLF, Chinese headers and kinds, slashed dates, a remark column. 李强 (A08) is 4 hours short and 孙伟
    (A05) failed the check; everything else the study phase asks is there."""
    book = Workbook()
    sheet = book.active
    sheet.title = "花名册"
    sheet.append(["市档案局党员花名册"])
    sheet.append(columns.headers(columns.ROSTER, english=False))
    for member_id, name, branch, branch_name, role in OWN_PEOPLE:
        sheet.append([member_id, name, branch, branch_name, "市档案局", role, f"{member_id.lower()}@da.example.cn", None])
    book.save(cli.tmp / "花名册.xlsx")
    rows = ["人员编号,支部编号,类别,日期,数值,备注"]
    for member_id, _, branch, _, _ in OWN_PEOPLE:
        rows.append(f"{member_id},{branch},自学学时,2024/3/5,{2 if member_id == 'A08' else 6},")
        rows += [f"{member_id},{branch},集中学习学时,2024/3/{d},{4 if d == 12 else 0}," for d in (12, 13, 14)]
        rows.append(f"{member_id},{branch},学习培训成果检查,2024/3/28,{'未通过' if member_id == 'A05' else '通过'},")
    for branch in ("B1", "B2"):
        rows.append(f",{branch},动员大会,2024/3/4,,")
        rows += [f",{branch},集中学习培训,2024/3/{d},," for d in (12, 13, 14)]
        rows.append(f",{branch},保持先进性大讨论,2024/3/20,,补录")
    (cli.tmp / "学习记录.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode("gbk"))
    (cli.tmp / "plan.yaml").write_text(OWN_PLAN, encoding="utf-8")


def test_a_newcomers_own_campaign_reads_chinese_finds_the_stuck_and_reports_a_past_day(cli: Cli) -> None:
    from tests.e2e.test_office_cli import MACHINE_WORDS
    from tests.e2e.test_report_cli import CAVEATS, _pages

    _own_files(cli)
    told: list[str] = []

    def said(*args: str) -> str:
        done = cli(*args)
        assert done.code == 0, (args, done.err)
        told.append(done.out)
        return done.out

    said("roster", "import", "花名册.xlsx", "--actor", "A02", "--at", "2024-03-01T09:00")
    assert cli("plan", "load", "plan.yaml", "--actor", "A02", "--at", "2024-03-01T09:00").out == "da-2024\n"
    imported = said("record", "import", "学习记录.csv", "--actor", "A02", "--at", "2024-03-30T09:00")
    assert "学习记录.csv：新增 50 条记录" in imported and "已忽略的列: 备注" in imported
    fired = said("sweep", "da-2024", "--at", "2024-04-01T00:00:01")  # the start, then the study deadline
    assert "触发：活动开始、教育学习阶段截止" in fired and "滞留：2 名党员，0 个党支部" in fired
    stuck = said("stuck", "da-2024", "--at", "2024-04-01T09:00")
    assert stuck.splitlines() == [
        "da-2024 截至 2024年4月1日 09:00 滞留：2 名党员，0 个党支部",
        "",
        "党支部 B1 综合科党支部",
        "  A05 孙伟：教育学习，自 2024年3月4日 00:00 起 — 学习培训成果检查：未通过（要求：通过）",
        "",
        "党支部 B2 业务科党支部",
        "  A08 李强：教育学习，自 2024年3月4日 00:00 起 — 学时 6/10",
    ]
    said("report", "da-2024", "--out", "then", "--at", "2024-04-01T09:00")
    # The campaign moves on: 李强 makes up his hours and his secretary has him re-checked.
    (cli.tmp / "补录.csv").write_bytes("人员编号,支部编号,类别,日期,数值\r\nA08,B2,自学学时,2024/4/3,4\r\n".encode("gbk"))
    said("record", "import", "补录.csv", "--actor", "A06", "--at", "2024-04-03T10:00")
    assert "A08：教育学习 → 分析评议" in said(
        "retry", "da-2024", "--member", "A08", "--actor", "A06", "--reason", "学时已补齐", "--at", "2024-04-03T11:00"
    )
    said("report", "da-2024", "--out", "later", "--at", "2024-04-01T09:00")
    # The list takes today's states (李强 has moved on) and says so; the report is where the past stands.
    since = said("stuck", "da-2024", "--at", "2024-04-01T09:00").splitlines()
    assert since[1].startswith("（注意：此后已有变动。") and "campaign report --at" in since[1]
    assert [line for line in since if line.startswith("  ")] == [stuck.splitlines()[3]]
    then, later = _pages(cli.tmp / "then"), _pages(cli.tmp / "later")
    assert then.keys() == later.keys() == {"index.html", "branch-B1.html", "branch-B2.html"}
    for name, html in later.items():
        assert CAVEATS.sub("", html) == then[name], name
    # As of that day 李强 was stuck in study (today he is in analysis): the past report says so.
    page = re.sub(r"<[^>]+>", " ", then["branch-B2.html"])
    assert re.search(r"A08\s+李强\s+党员\s+教育学习\s+滞留\s+2024年3月4日 00:00\s+学时 6/10", page)
    # Every line people read is in Chinese, with none of the machine's words.
    for out in told:
        for line in filter(None, out.splitlines()):
            assert CJK.search(line) and not MACHINE_WORDS.search(line), line
