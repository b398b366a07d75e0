"""What the office reads: Chinese by default, English on request, JSON unchanged by either; who is stuck; the
campaigns; exit 3 when the environment fails; one line when a command is used wrongly."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from states.sample import RECORD_FIELDS, demo_records, plan_2024_path, roster_path, write_csv
from tests.e2e.conftest import Cli

KEY = "sfao-2024"
T = "2024-05-01T09:00"
# What people must never read: Python's values, the machine's condition ids, UTC offsets.
MACHINE_WORDS = re.compile(r"\b(True|False|None|pass|study_hours|study_check|analysis_report)\b|\+00:00|T\d\d:\d\d")


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """The sample office with its study deadline fired: 25 members and branch B08 left behind."""
    cli = Cli(tmp_path_factory.mktemp("office"))
    plan = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    rows = [r for r in demo_records(plan, roster_path()) if r["date"] <= "2024-04-30"]
    for args in (
        ["roster", "import", str(roster_path()), "--actor", "M002", "--at", "2024-03-01T09:00"],
        ["plan", "load", str(plan_2024_path()), "--actor", "M002", "--at", "2024-03-01T09:00"],
        ["record", "import", str(write_csv(cli.tmp / "early.csv", rows, RECORD_FIELDS)), "--actor", "M002", "--at", "2024-03-01T09:00"],
        ["sweep", KEY, "--at", "2024-03-25T08:00"],
        ["sweep", KEY, "--at", "2024-05-01T00:00:01"],
    ):
        done = cli(*args)
        assert done.code == 0, (args, done.err)
    return cli


def ok(cli: Cli, *args: str) -> str:
    done = cli(*args)
    assert done.code == 0, (args, done.code, done.err)
    return done.out


def test_people_read_chinese_by_default(office: Cli) -> None:
    status = ok(office, "status", KEY, "--at", T)
    assert "当前阶段 分析评议" in status and "教育学习 25" in status and "滞留：25 名党员，1 个党支部" in status
    explain = ok(office, "explain", KEY, "--member", "M054", "--at", T)
    assert "教育学习" in explain and "已滞留" in explain and "学时 46/50" in explain
    assert "自 2024年3月25日 00:00 起" in explain  # the start fires at 00:00 local time (16:00 UTC the day before)
    failed = ok(office, "explain", KEY, "--member", "M100", "--at", T)
    assert "学习培训成果检查：未通过" in failed
    branch = ok(office, "status", KEY, "--branch", "B08", "--at", T)
    assert branch.startswith("党支部 B08 友协第一党支部：教育学习") and "保持先进性大讨论：未开展" in branch
    dry = ok(office, "sweep", KEY, "--at", T, "--dry-run")
    assert dry.startswith("试运行（未作任何更改）：") and "滞留：25 名党员，1 个党支部" in dry
    audit = ok(office, "audit", KEY, "--member", "M054")
    # times local to the campaign: the start's deadline is 00:00 in Shanghai, 16:00 the day before in UTC
    # (and, since the campaign is driven with --at, the real time each entry was written)
    assert re.search(r"^2024年3月25日 00:00（记录于 \d{4}年\d+月\d+日 \d\d:\d\d）  M054 ", audit, re.M), audit
    assert "已报名 → 教育学习" in audit and "定时推进" in audit
    retried = office("retry", KEY, "--member", "M054", "--actor", "M048", "--reason", "check", "--at", T)
    assert retried.code == 1 and "M054：仍处于教育学习（学时 46/50）" in retried.out
    assert retried.err == "campaign: 所列对象均未能推进\n"
    for text in (status, explain, failed, branch, dry, audit, retried.out):
        assert not MACHINE_WORDS.search(text), MACHINE_WORDS.search(text)


def test_english_on_request_everywhere_the_same_way(office: Cli) -> None:
    per_command = ok(office, "explain", KEY, "--member", "M054", "--at", T, "--lang", "en")
    assert "study hours 46 of 50" in per_command and "STUCK" in per_command and "since 25 March 2024, 00:00" in per_command
    assert ok(office, "--lang", "en", "explain", KEY, "--member", "M054", "--at", T) == per_command
    office.env["CAMPAIGN_LANG"] = "en"
    try:
        assert ok(office, "explain", KEY, "--member", "M054", "--at", T) == per_command
        # the command's own option wins over the environment
        assert "学时 46/50" in ok(office, "explain", KEY, "--member", "M054", "--at", T, "--lang", "zh")
    finally:
        del office.env["CAMPAIGN_LANG"]
    assert "stuck: 25 members, 1 branch" in ok(office, "status", KEY, "--at", T, "--lang", "en")
    assert re.search(r"^25 March 2024, 00:00 \(recorded [^)]+\)  M054 ", ok(office, "audit", KEY, "--member", "M054", "--lang", "en"), re.M)
    wrong = office("status", KEY, "--lang", "fr")
    assert wrong.code == 2 and wrong.err.count("\n") == 1 and "Traceback" not in wrong.err


def test_json_is_the_same_in_every_language(office: Cli) -> None:
    for args in (
        ["status", KEY, "--at", T],
        ["status", KEY, "--member", "M054", "--at", T],
        ["status", KEY, "--branch", "B08", "--at", T],
        ["explain", KEY, "--member", "M054", "--at", T],
        ["sweep", KEY, "--at", T, "--dry-run"],
        ["audit", KEY, "--member", "M054"],
        ["stuck", KEY, "--at", T],
        ["campaigns", "--at", T],
    ):
        zh = json.loads(ok(office, *args, "--json"))
        assert json.loads(ok(office, *args, "--json", "--lang", "en")) == zh, args
    summary = json.loads(ok(office, "status", KEY, "--at", T, "--json"))
    assert summary == {
        "campaign": KEY, "phase": "analysis", "members": {"study": 25, "analysis": 150},
        "branches": {"study": 1, "analysis": 8}, "stuck": {"members": 25, "branches": 1},
    }
    branch = json.loads(ok(office, "status", KEY, "--branch", "B08", "--at", T, "--json"))
    assert branch["unmet"] == [{"condition": "discussion_meeting", "have": 0, "need": 1}] and branch["stuck"] is True
    explained = json.loads(ok(office, "explain", KEY, "--member", "M054", "--at", T, "--json"))
    assert explained["unmet"] == [{"condition": "study_hours", "have": 46, "need": 50}] and explained["stuck"] is True
    assert json.loads(ok(office, "sweep", KEY, "--at", T, "--dry-run", "--json")) == {
        "fired": [], "advanced": {"members": 0, "branches": 0}, "stuck": {"members": 25, "branches": 1}
    }


def test_stuck_is_the_secretarys_list(office: Cli) -> None:
    listed = json.loads(ok(office, "stuck", KEY, "--at", T, "--json"))
    assert len([e for e in listed if e["member_id"]]) == 25
    assert [e for e in listed if e["member_id"] is None] == [
        {"member_id": None, "branch_id": "B08", "state": "study", "since": "2024-03-24T16:00:00+00:00",
         "unmet": [{"condition": "discussion_meeting", "have": 0, "need": 1}]}
    ]
    for entry in listed:
        assert set(entry) == {"member_id", "branch_id", "state", "since", "unmet"}
    for entry in [e for e in listed if e["member_id"]][:6]:  # a sample: each as explain gives it at T
        view = json.loads(ok(office, "explain", KEY, "--member", entry["member_id"], "--at", T, "--json"))
        assert (entry["branch_id"], entry["state"], entry["since"], entry["unmet"]) == (
            view["branch_id"], view["state"], view["since"], view["unmet"]
        )
    b08 = json.loads(ok(office, "stuck", KEY, "--branch", "B08", "--at", T, "--json"))
    assert b08 == [e for e in listed if e["branch_id"] == "B08"] and len(b08) == 15
    hours = json.loads(ok(office, "stuck", KEY, "--condition", "study_hours", "--at", T, "--json"))
    assert hours == [e for e in listed if any(u["condition"] == "study_hours" for u in e["unmet"])] and hours
    # The condition as the list names it, in either language, picks the same people.
    assert json.loads(ok(office, "stuck", KEY, "--condition", "学时", "--at", T, "--json")) == hours
    assert json.loads(ok(office, "stuck", KEY, "--condition", "Study Hours", "--at", T, "--json")) == hours

    text = ok(office, "stuck", KEY, "--at", T)
    assert "滞留：25 名党员，1 个党支部" in text and "党支部 B08 友协第一党支部" in text
    assert "M054 张敏建：教育学习，自 2024年3月25日 00:00 起 — 学时 46/50" in text
    assert "\n党支部 B03 欧美处党支部\n" in text  # a branch whose members alone are stuck is named too
    assert "所在党支部：尚处于教育学习，未转入分析评议" in text and not MACHINE_WORDS.search(text)

    out = office.tmp / "stuck.csv"
    ok(office, "stuck", KEY, "--at", T, "--csv", "--out", str(out))
    raw = out.read_bytes()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["党支部", "党员编号", "姓名", "所处阶段", "起始时间", "未满足条件"]
    assert len(rows) == 1 + len(listed)
    assert ["B03", "M054", "张敏建", "教育学习", "2024年3月25日 00:00", "学时 46/50"] in rows
    english = list(csv.reader(io.StringIO(ok(office, "stuck", KEY, "--at", T, "--csv", "--lang", "en"))))
    assert english[0][0] == "branch" and ["B03", "M054", "张敏建", "study", "25 March 2024, 00:00", "study hours 46 of 50"] in english

    from openpyxl import load_workbook

    book = office.tmp / "stuck.xlsx"
    ok(office, "stuck", KEY, "--at", T, "--xlsx", "--out", str(book))
    sheet = load_workbook(book, read_only=True).worksheets[0]
    assert [[c or "" for c in r] for r in sheet.iter_rows(values_only=True)] == rows  # an empty cell is empty
    assert not list(office.tmp.glob(".stuck*"))  # no temporary file left behind

    unknown = office("stuck", KEY, "--condition", "hours")
    assert unknown.code == 2 and "study_hours" in unknown.err and unknown.err.count("\n") == 1
    assert "没有条件叫“hours”" in unknown.err and "学时 (study_hours)" in unknown.err


def test_stuck_cells_cannot_run_as_formulas(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    roster = tmp_path / "roster.csv"
    evil = 'X9,"=HYPERLINK(""http://x"")",B01,办公室党支部,省外办,member,,zh-CN\n'
    roster.write_text(roster_path().read_text(encoding="utf-8").rstrip("\n") + "\n" + evil, encoding="utf-8")
    ok(cli, "roster", "import", str(roster), "--actor", "M002", "--at", "2024-03-01T09:00")
    ok(cli, "plan", "load", str(plan_2024_path()), "--actor", "M002", "--at", "2024-03-01T09:00")
    ok(cli, "sweep", KEY, "--at", "2024-05-01T00:00:01")
    rows = list(csv.reader(io.StringIO(ok(cli, "stuck", KEY, "--at", T, "--csv"))))
    assert [r[2] for r in rows if r[1] == "X9"] == ["'=HYPERLINK(\"http://x\")"]


def test_explain_says_why_evidence_does_not_count_and_what_comes_next(office: Cli) -> None:
    late = office.tmp / "odd.csv"
    late.write_text(
        "member_id,branch_id,kind,date,value\n"
        "M059,B03,study_self,2024-09-02,4\nM059,B03,study_self,2024-09-03,4\nM059,B03,study_self,2024-05-20,4\n",
        encoding="utf-8",
    )
    ok(office, "record", "import", str(late), "--actor", "M048")
    view = json.loads(ok(office, "explain", KEY, "--member", "M059", "--at", T, "--json"))
    assert view["uncounted"] == [
        {"condition": "study_hours", "reason": "after_at", "count": 1, "day": "2024-05-01"},
        {"condition": "study_hours", "reason": "after_window", "count": 2, "day": "2024-08-31"},
    ]
    text = ok(office, "explain", KEY, "--member", "M059", "--at", T)
    assert "学时：有 2 条记录日期在活动结束（2024年8月31日）之后，不计入" in text
    assert "学时：有 1 条记录日期晚于 2024年5月1日，到该日期后才计入" in text
    # before the deadline, a record dated after the phase's end is one the deadline will not count
    early = json.loads(ok(office, "explain", KEY, "--member", "M059", "--at", "2024-04-20T09:00", "--json"))
    assert {"condition": "study_hours", "reason": "after_phase", "count": 1, "day": "2024-04-30"} in early["uncounted"]

    ok(office, "exempt", KEY, "--member", "M060", "--actor", "M048", "--reason", "出国", "--at", T)
    exempt = json.loads(ok(office, "explain", KEY, "--member", "M060", "--at", T, "--json"))
    assert [(s["act"], s["to"]) for s in exempt["next_steps"]] == [("unexempt", "analysis")]
    assert exempt["next_steps"][0]["people"][0] == {"member_id": "M048", "name": "李祥娜", "role": "branch_secretary"}
    text = ok(office, "explain", KEY, "--member", "M060", "--at", T)
    assert "下一步：" in text and "撤销免予参加，回到分析评议（办理：党支部书记 李祥娜（M048）" in text
    ok(office, "exempt", KEY, "--member", "M060", "--actor", "M048", "--reason", "回国", "--undo", "--at", T)
    assert json.loads(ok(office, "explain", KEY, "--member", "M060", "--at", T, "--json"))["next_steps"] == []


def test_campaigns(office: Cli) -> None:
    assert json.loads(ok(office, "campaigns", "--at", T, "--json")) == [
        {"campaign": KEY, "title": "省外办保持共产党员先进性教育活动", "phase": "analysis", "members": 175}
    ]
    assert "当前阶段：分析评议  175 名党员" in ok(office, "campaigns", "--at", T)
    assert "phase: analysis and appraisal  175 members" in ok(office, "campaigns", "--at", T, "--lang", "en")


def test_a_command_without_its_target_says_so_in_one_line(office: Cli) -> None:
    bare = office("retry", KEY, "--actor", "M048", "--reason", "x")
    assert bare.code == 2 and bare.err.count("\n") == 1 and "--member" in bare.err and bare.out == ""
    missing = office("explain", KEY)
    assert missing.code == 2 and missing.err.count("\n") == 1 and "--member" in missing.err


def test_no_progress_bar_without_a_terminal(office: Cli) -> None:
    dispatched = office("notify", "dispatch")
    assert dispatched.code == 0 and dispatched.err == ""
    assert re.match(r"已发送 \d+ 条", dispatched.out)


def on_a_terminal(cli: Cli, *args: str) -> tuple[int, str]:
    """Run the command with stderr on a pseudo-terminal, as a person watching sees it: exit code, what the terminal
    showed."""
    import pty
    import subprocess
    import sys

    watcher, screen = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", *args], stdout=subprocess.DEVNULL, stderr=screen, env=cli.env,
            cwd=cli.tmp, timeout=300,
        )
        os.close(screen)
        shown = b""
        while True:
            try:
                chunk = os.read(watcher, 65536)
            except OSError:  # the terminal's other end is closed: everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(watcher)
    return done.returncode, shown.decode("utf-8", "replace")


def test_a_person_at_a_terminal_sees_imports_and_reports_progress(office: Cli) -> None:
    plan = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    rows = demo_records(plan, roster_path())[:2500]
    more = write_csv(office.tmp / "progress.csv", rows, RECORD_FIELDS)
    code, shown = on_a_terminal(office, "record", "import", str(more), "--actor", "M002", "--dry-run", "--at", "2024-03-01T09:00")
    assert code == 0 and "progress.csv：已读取行数 2500" in shown, shown
    code, shown = on_a_terminal(office, "report", KEY, "--out", str(office.tmp / "report-tty"))
    assert code == 0 and re.search(r"已生成页面 \d+", shown), shown


def test_the_environment_failing_is_exit_3(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.env["CAMPAIGN_DATABASE_URL"] = "postgresql+psycopg://postgres@127.0.0.1:1/x"
    refused = cli("status", KEY)
    assert refused.code == 3 and refused.err.startswith("campaign: ") and refused.err.count("\n") == 1
    (tmp_path / "a-file").write_text("")
    for url in (f"sqlite:///{tmp_path / 'a-file' / 'campaign.db'}", "sqlite:////proc/campaign.db"):
        cli.env["CAMPAIGN_DATABASE_URL"] = url
        unwritable = cli("campaigns")
        assert unwritable.code == 3 and unwritable.err.count("\n") == 1 and "Traceback" not in unwritable.err, url
    cli.env["CAMPAIGN_DATABASE_URL"] = "nonsense://x"
    assert cli("campaigns").code == 2  # a URL that names no database is the user's input


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_exit_3(office: Cli) -> None:
    full = office("stuck", KEY, "--at", T, "--csv", "--out", "/dev/full")
    assert full.code == 3 and full.err.count("\n") == 1 and "Traceback" not in full.err
