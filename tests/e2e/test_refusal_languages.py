"""Why a command was refused, as the office reads it: one line in Chinese by default, in English with `--lang en` or
CAMPAIGN_LANG=en, with the exit code either way. Run in-process through the entry point (`cli.main.main`), so
walking every kind of refusal costs milliseconds, not a Python start each."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook

from cli.main import main
from states.sample import plan_2024_path, roster_path

KEY = "sfao-2024"
AT = "2024-03-01T09:00"
# Words a Chinese reader must not meet in a refusal: the English of places, verdicts and reasons.
ENGLISH = re.compile(r"\b(line|column|refused|unknown|is|not|may|cannot|the|of|needs)\b", re.IGNORECASE)
CJK = re.compile("[\u4e00-\u9fff]")


class Office:
    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp, self.capsys = tmp, capsys

    def __call__(self, *args: str) -> tuple[int, str]:
        """Exit code and stderr of `campaign ARGS`."""
        code, _out, err = self.run(*args)
        return code, err

    def run(self, *args: str) -> tuple[int, str, str]:
        """Exit code, stdout and stderr of `campaign ARGS`, the umask the entry point sets put back for other tests."""
        self.capsys.readouterr()
        umask = os.umask(0o022)
        os.umask(umask)
        try:
            with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit) as done:
                patch.setattr(sys, "argv", ["campaign", *args])
                main()
        finally:
            os.umask(umask)
        shown = self.capsys.readouterr()
        return int(done.value.code or 0), shown.out, shown.err


@pytest.fixture(scope="module")
def office_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("office")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAMPAIGN_DATABASE_URL", f"sqlite:///{tmp / 'campaign.db'}")
        patch.setenv("CAMPAIGN_OUTBOX_DIR", str(tmp / "outbox"))
        patch.setenv("CAMPAIGN_AUDIT_ANCHORS", str(tmp / "anchors"))
        patch.delenv("CAMPAIGN_LANG", raising=False)
        yield tmp


@pytest.fixture
def office(office_dir: Path, capsys: pytest.CaptureFixture[str]) -> Office:
    run = Office(office_dir, capsys)
    if not (office_dir / "loaded").exists():
        for args in (["roster", "import", str(roster_path())], ["plan", "load", str(plan_2024_path())]):
            code, err = run(*args, "--actor", "M002", "--at", AT)
            assert code == 0, err
        (office_dir / "loaded").touch()
    return run


def _csv(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _ballot_xlsx(path: Path, row: list[object]) -> str:
    """A ballot as offices keep it: a title above the Chinese header, on a sheet named for what it holds."""
    book = Workbook()
    sheet = book.active
    sheet.title = "计票"
    sheet.append(["省外办第五党支部党员大会民主评议计票表"])
    sheet.append(["支部编号", "会议日期", "应到人数", "实到人数", "人员编号", "合格票数", "基本合格票数", "不合格票数"])
    sheet.append(row)
    book.save(path)
    return str(path)


ROSTER_HEADER = "member_id,name,branch_id,branch_name,unit,role,email\n"
BALLOT_HEADER = "branch_id,date,entitled,present,member_id,qualified,basically_qualified,unqualified\n"


def cases(tmp: Path) -> list[tuple[list[str], int, str, str]]:
    """(arguments, exit code, what the Chinese line says, what the English line says), one kind of refusal each."""
    bad_role = _csv(tmp / "bad.csv", ROSTER_HEADER + "X1,甲,B01,办公室党支部,省外办,member,\nX2,乙,B01,办公室党支部,省外办,chief,\n")
    # A title row above the header, as a spreadsheet saved as CSV keeps it: the meeting is on line 3, not line 2.
    unknown_branch = _csv(tmp / "ballot.csv", "省外办党员大会计票表\n" + BALLOT_HEADER + "B99,2024-02-20,20,15,M054,15,0,0\n")
    crowded = _ballot_xlsx(tmp / "ballot.xlsx", ["B05", "2024-02-20", 999, 999, "M084", 900, 0, 0])
    return [
        (["roster", "import", bad_role, "--actor", "M002"], 2,
         "bad.csv 第3行，角色 (role) 列：'chief' 不是以下角色之一", "bad.csv, line 3, column role: 'chief' is not one of"),
        (["status", "nope"], 2, "没有活动 'nope'", "unknown campaign 'nope'"),
        (["exempt", KEY, "--member", "M054", "--actor", "M054", "--reason", "x", "--at", AT], 1,
         "M054（党员）无权对 M054 办理", "M054 (member) may not act on M054"),
        (["retry", KEY, "--all-stuck", "--actor", "I01", "--reason", "x", "--at", AT], 1,
         "I01 是督导组成员", "I01 is an inspector"),
        (["exempt", KEY, "--member", "M054", "--actor", "M002", "--reason", "x", "--undo", "--at", AT], 1,
         "M054 未被免予参加（当前处于已报名）", "M054 is not exempt (it is in enrolled)"),
        (["audit", KEY, "--anchor", "anchors"], 2, "--anchor 须与 --verify 一起使用", "--anchor goes with --verify"),
        (["ballot", "import", KEY, unknown_branch, "--actor", "M002", "--at", AT], 2,
         "ballot.csv 第3行，支部编号 (branch_id) 列：没有党支部 'B99'", "ballot.csv, line 3, column branch_id: unknown branch 'B99'"),
        (["ballot", "import", KEY, crowded, "--actor", "M002", "--at", AT], 2,
         "ballot.xlsx [计票] 第3行 C列 应到人数 (entitled)：应到 999 人，但该党支部只有",
         "ballot.xlsx [计票] 第3行 C列 应到人数 (entitled): 999 entitled, but the branch has"),
        (["sweep", KEY, "--at", "2024-13-01"], 2, "不是 ISO 8601 时间", "is not an ISO 8601 time"),
        (["withdrawal", KEY, "--member", "M054", "--actor", "M002", "--reason", "x"], 2,
         "请指明 --confirm 或 --accept-late（参见 ", "name --confirm or --accept-late (see: "),  # in-process: Click's own name
    ]


def test_refusals_in_chinese_by_default_and_in_english_on_request(office: Office) -> None:
    for args, code, zh, en in cases(office.tmp):
        got, chinese = office(*args)
        assert (got, chinese.count("\n")) == (code, 1) and chinese.startswith("campaign: "), (args, chinese)
        assert zh in chinese, (args, chinese)
        words = chinese.replace(str(office.tmp), "")
        assert CJK.search(words) and not ENGLISH.search(words), (args, ENGLISH.search(words), chinese)
        got, english = office(*args, "--lang", "en")
        assert (got, english.count("\n")) == (code, 1) and en in english, (args, english)


def test_the_environment_chooses_english_and_the_command_line_wins(office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGN_LANG", "en")
    assert office("status", "nope") == (2, "campaign: unknown campaign 'nope'\n")
    assert office("status", "nope", "--lang", "zh") == (2, "campaign: 没有活动 'nope'\n")
    assert office("--lang", "zh", "status", "nope") == (2, "campaign: 没有活动 'nope'\n")


@pytest.mark.parametrize(("args", "zh", "en"), [
    (["db", "harden"], "触发器已就位：transition_log、audit_seal", "triggers in place: transition_log, audit_seal"),
    (["db", "reseal"], "审计链已加密钥封印：最新封印 ", "audit chain keyed: head seal "),
    (["audit", KEY, "--verify"], "审计链完好：", "audit chain intact: "),
    (["db", "check-facts"], "统计数据与原始记录一致", "facts agree with the evidence"),
])
def test_the_database_commands_speak_chinese_by_default(office: Office, args: list[str], zh: str, en: str) -> None:
    code, chinese, _ = office.run(*args)
    assert code == 0 and chinese.startswith(zh), chinese
    assert not ENGLISH.search(chinese.replace(str(office.tmp), "")), chinese
    code, english, _ = office.run(*args, "--lang", "en")
    assert code == 0 and english.startswith(en) and not CJK.search(english), english
