"""Files as offices have them: .xlsx workbooks, Excel's UTF-16 "Unicode text", WPS's GBK CSV, full-width digits,
Chinese headers and dates; other binary files refused with a hint; errors in a workbook name its sheet and cell."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from openpyxl import Workbook

from readers import read_table
from readers.text import plain
from states import columns
from states.clock import parse_date
from states.errors import MalformedFile
from states.labels import KIND_LABELS, KINDS, ROLE_LABELS
from states.records import BRANCH_KINDS, MEMBER_KINDS
from states.records import COLUMNS as RECORD_COLUMNS
from states.roster import COLUMNS as ROSTER_COLUMNS
from states.roster import ROLES
from states.source import checked, column_letter, ignored, located, rows

ROSTER = columns.required(columns.ROSTER), columns.optional(columns.ROSTER)
RECORDS = columns.required(columns.RECORDS), columns.optional(columns.RECORDS)


def _xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    book = Workbook()
    book.remove(book.active)
    for title, table in sheets.items():
        sheet = book.create_sheet(title)
        for row in table:
            sheet.append(row)
    book.save(path)
    return path


def _rows(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = (), sheet: str | None = None) -> list:
    return list(rows(read_table(path, sheet), required, optional))


def test_an_xlsx_roster_is_read_from_its_first_sheet_with_numbers_and_dates_as_typed(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "roster.xlsx", {
        "花名册": [
            ["人员编号", "姓名", "支部编号", "支部名称", "单位", "角色", "电子邮箱", "备注"],
            ["M001", "张君高", "B01", "办公室党支部", "省外办", "党组书记", "m001@x.cn", dt.datetime(2024, 3, 5)],
            [None] * 8,  # a blank row is skipped; the next keeps the sheet's own row number
            [1002, "刘建华", "B01", "办公室党支部", "省外办", "member", None, 46.0],
        ],
        "其他": [["x"]],
    })
    source = read_table(path)
    assert source.sheet == "花名册"
    assert ignored(source, *ROSTER) == ["备注"]
    got = list(rows(source, *ROSTER))
    assert [line for line, _ in got] == [2, 4]
    assert got[0][1]["member_id"] == "M001" and got[0][1]["role"] == "党组书记"
    assert got[1][1]["member_id"] == "1002"  # an id typed as a number: no ".0"
    assert got[1][1]["email"] == ""
    assert "备注" not in got[0][1]


def test_xlsx_cells_become_the_text_a_person_sees(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "r.xlsx", {"记录": [
        ["member_id", "branch_id", "kind", "date", "value"],
        ["M005", "B01", "study_self", dt.datetime(2024, 3, 26), 2.5],
        ["M005", "B01", "study_self", dt.date(2024, 3, 27), 4.0],
        ["Ｍ００５", "B01", "study_check", "2024年3月28日", "pass"],
    ]})
    got = [row for _line, row in _rows(path, *RECORDS)]
    assert [(r["date"], r["value"]) for r in got] == [("2024-03-26", "2.5"), ("2024-03-27", "4"), ("2024年3月28日", "pass")]
    assert got[2]["member_id"] == "M005"


def test_a_named_sheet_is_read_and_an_unknown_one_lists_the_sheets(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "book.xlsx", {"说明": [["填写说明"]], "记录": [list(RECORD_COLUMNS), ["M005", "B01", "oath", "2024-08-20", ""]]})
    assert [line for line, _ in _rows(path, *RECORDS, sheet="记录")] == [2]
    with pytest.raises(MalformedFile) as caught:
        read_table(path, "Sheet9")
    assert "has no sheet 'Sheet9' (its sheets: 说明, 记录)" in str(caught.value)


def test_errors_in_a_workbook_name_the_sheet_and_the_cell(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "roster.xlsx", {"花名册": [
        ["人员编号", "姓名", "支部编号", "支部名称", "单位", "角色", "电子邮箱"],
        ["M001", "张君高", "B01", "办公室党支部", "省外办", "member", ""],
        ["M002", "刘建华", "B01", "办公室党支部", "省外办", "member", "", "stray"],
    ]})
    source = read_table(path)
    with pytest.raises(MalformedFile) as caught, located(source, *ROSTER):
        list(rows(source, *ROSTER))
    assert str(caught.value) == f"{path} [花名册] 第3行 H列: a value beyond the header's columns"
    assert caught.value.zh == f"{path} [花名册] 第3行 H列：表头各列之外有内容"

    source = read_table(path)
    with pytest.raises(MalformedFile) as caught, located(source, *ROSTER):
        for line, row in rows(source, *ROSTER):
            raise MalformedFile(source.path, line, "role", zh=f"{row['role']!r} 有误", en=f"{row['role']!r} is wrong")
    assert str(caught.value) == f"{path} [花名册] 第2行 F列 角色 (role): 'member' is wrong"
    assert caught.value.zh == f"{path} [花名册] 第2行 F列 角色 (role)：'member' 有误"


def test_csv_messages_name_line_and_column_in_either_language_and_a_chinese_header(tmp_path: Path) -> None:
    english = tmp_path / "r.csv"
    english.write_text("member_id,branch_id,kind,date,value\nM005,B01,oath,2024-08-20,\n", encoding="utf-8")
    source = read_table(english)
    with pytest.raises(MalformedFile) as caught, located(source, *RECORDS):
        raise MalformedFile(source.path, 2, "kind", zh="有误", en="bad")
    assert str(caught.value) == f"{english}, line 2, column kind: bad"
    # In Chinese a file with English headers still reads the column's Chinese header beside its name.
    assert caught.value.zh == f"{english} 第2行，类别 (kind) 列：有误"
    chinese = tmp_path / "c.csv"
    chinese.write_text("人员编号,支部编号,类别,日期,数值\nM005,B01,oath,2024-08-20,\n", encoding="utf-8")
    source = read_table(chinese)
    with pytest.raises(MalformedFile) as caught, located(source, *RECORDS):
        raise MalformedFile(source.path, 2, "kind", zh="有误", en="bad")
    assert str(caught.value) == f"{chinese}, line 2, column 类别 (kind): bad"
    assert caught.value.text("zh-CN") == f"{chinese} 第2行，类别 (kind) 列：有误"
    assert caught.value.text("en") == str(caught.value)


@pytest.mark.parametrize("bom", [True, False])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_excel_unicode_text_utf16_and_tabs(tmp_path: Path, bom: bool, encoding: str) -> None:
    text = "人员编号\t支部编号\t类别\t日期\t数值\r\nM054\tB03\t自学学时\t2024/4/2\t4\r\n\t\t\t\t\r\nM055\tB03\toath\t2024-8-20\t\"a\tb\"\r\n"
    raw = text.encode(encoding)
    if bom:
        raw = ("\ufeff").encode(encoding) + raw
    path = tmp_path / "unicode.txt"
    path.write_bytes(raw)
    got = _rows(path, *RECORDS)
    assert [(line, r["member_id"], r["kind"], r["date"], r["value"]) for line, r in got] == [
        (2, "M054", "自学学时", "2024/4/2", "4"),
        (4, "M055", "oath", "2024-8-20", "a\tb"),
    ]


def test_wps_gbk_csv_with_chinese_headers_slashed_dates_and_a_remark(tmp_path: Path) -> None:
    path = tmp_path / "wps.csv"
    path.write_bytes("人员编号,支部编号,类别,日期,数值,备注\r\nM054,B03,自学学时,2024/4/2,４,补学\r\n".encode("gbk"))
    source = read_table(path)
    assert ignored(source, *RECORDS) == ["备注"]
    [(line, row)] = list(rows(source, *RECORDS))
    assert (line, row) == (2, {"member_id": "M054", "branch_id": "B03", "kind": "自学学时", "date": "2024/4/2", "value": "4"})


@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "这是 PDF 文件"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "这是旧版 Excel .xls 文件"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "这是图片文件（PNG）"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "这是图片文件（JPEG）"),
        (b"PK\x03\x04" + b"\x00" * 40, "不是 Excel 工作簿"),
        (b"member_id,name\nM1,\x00x\n", "含有 NUL 字节"),
    ],
)
def test_other_binary_files_are_refused_with_a_hint(tmp_path: Path, raw: bytes, hint: str) -> None:
    path = tmp_path / "roster.csv"  # the name says CSV; the content decides
    path.write_bytes(raw)
    with pytest.raises(MalformedFile) as caught:
        read_table(path)
    assert hint in caught.value.zh and caught.value.zh.startswith(str(path))
    assert str(caught.value).startswith(str(path)) and not re.search("[\u4e00-\u9fff]", str(caught.value).removeprefix(str(path)))


def test_sheet_is_refused_for_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("member_id\n", encoding="utf-8")
    with pytest.raises(MalformedFile, match="only an .xlsx workbook has sheets"):
        read_table(path, "Sheet1")


def test_full_width_digits_letters_and_spaces_are_made_plain_and_names_are_not_touched() -> None:
    assert plain("２０２４／３／５") == "2024/3/5"
    assert plain("Ｍ０５４　") == "M054 "
    assert plain("ｍ００１＠ｓｆａｏ．ｃｎ") == "m001@sfao.cn"
    for name in ("张敏建", "欧阳娜娜", "\uf900\u2f00", "李　四"[:1] + "四"):
        assert plain(name) == name  # NFKC would fold U+F900 and U+2F00: a name keeps its characters


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2024-03-05", dt.date(2024, 3, 5)),
        ("2024/3/5", dt.date(2024, 3, 5)),
        ("2024-3-5", dt.date(2024, 3, 5)),
        ("2024/03/05", dt.date(2024, 3, 5)),
        ("2024年3月5日", dt.date(2024, 3, 5)),
        ("2024年12月31日", dt.date(2024, 12, 31)),
    ],
)
def test_dates_as_excel_and_wps_write_them(text: str, day: dt.date) -> None:
    assert parse_date(text) == day


@pytest.mark.parametrize("text", ["2024-3/5", "2024/02/30", "24/3/5", "2024年3月5", "5/3/2024", "2024-13-01", "２０２４-3-5", ""])
def test_other_dates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date(text)


def test_a_refused_header_names_every_missing_and_unknown_column_at_once(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("人员编号,kindd,日期,note\n", encoding="utf-8")
    with pytest.raises(MalformedFile) as caught:
        checked(read_table(path), *RECORDS)
    assert str(caught.value) == (
        f"{path}, line 1: header lacks columns 'branch_id', 'kind', 'value'; not columns of this file: 'kindd', "
        "'note' (its columns: member_id, branch_id, kind, date, value, ref; docs/formats.md)"
    )


def test_a_column_named_twice_in_either_language_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("member_id,branch_id,kind,date,value,日期\n", encoding="utf-8")
    with pytest.raises(MalformedFile, match="column 'date' is named twice"):
        checked(read_table(path), *RECORDS)


def test_the_column_tables_are_the_importers_columns() -> None:
    assert columns.required(columns.ROSTER) == ROSTER_COLUMNS
    assert columns.required(columns.RECORDS) == RECORD_COLUMNS
    from states.appraisal import BALLOT_COLUMNS

    assert columns.required(columns.BALLOT) == tuple(BALLOT_COLUMNS)
    assert set(KINDS) == set(MEMBER_KINDS + BRANCH_KINDS) and set(KIND_LABELS) == set(KINDS)
    assert set(ROLE_LABELS) == set(ROLES)
    assert list(columns.KIND_DOCS) == list(KINDS)
    assert len({w["zh-CN"] for w in KIND_LABELS.values()}) == len(KINDS)  # a Chinese kind names one kind


def test_column_letters() -> None:
    assert [column_letter(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"
    ]


def test_utf16_without_bom_mostly_chinese_is_still_recognised(tmp_path: Path) -> None:
    """U+4E00 一 has a NUL low byte: a text rich in it must not pass for binary, nor for another encoding."""
    rows = "".join(f"M{i:03d}\tB01\t好事实事\t2024/6/{i}\t一一一帮一{i}\r\n" for i in range(1, 9))
    path = tmp_path / "u.txt"
    path.write_bytes(("人员编号\t支部编号\t类别\t日期\t数值\r\n" + rows).encode("utf-16-le"))
    got = _rows(path, *RECORDS)
    assert [r["value"] for _line, r in got][:2] == ["一一一帮一1", "一一一帮一2"] and len(got) == 8


def test_a_title_above_the_header_is_skipped_in_a_workbook_and_a_csv(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "roster.xlsx", {"花名册": [
        ["省外办党员花名册"],
        [None, "制表日期", dt.datetime(2024, 3, 1)],
        [],
        ["人员编号", "姓名", "支部编号", "支部名称", "单位", "角色", "电子邮箱"],
        ["M001", "张君高", "B01", "办公室党支部", "省外办", "member", ""],
    ]})
    source = read_table(path)
    assert source.header_line == 4 and [line for line, _ in rows(source, *ROSTER)] == [5]
    csv_path = tmp_path / "wps.csv"
    csv_path.write_text("活动记录,,,,\n\n人员编号,支部编号,类别,日期,数值\nM054,B03,oath,2024-08-20,\n", encoding="utf-8")
    source = read_table(csv_path)
    assert source.header_line == 3 and [(line, r["kind"]) for line, r in rows(source, *RECORDS)] == [(4, "oath")]


def test_a_data_row_is_never_taken_for_a_title(tmp_path: Path) -> None:
    """A misspelt header stays the header (and is refused), even when a later row happens to name columns."""
    path = tmp_path / "r.csv"
    path.write_text("memberid,branchid,kinds,dates,values\nM054,B03,good_deed,2024-06-20,name unit\n"
                    "x,y,kind,date,value\n", encoding="utf-8")
    source = read_table(path)
    assert source.header_line == 1
    with pytest.raises(MalformedFile, match="header lacks columns"):
        list(rows(source, *RECORDS))


def test_a_csv_changed_while_it_is_read_is_refused_not_imported_under_the_old_digest(tmp_path: Path) -> None:
    """A text file is read twice (its digest and encoding, then its rows, piece by piece): rows from a file that
    changed in between would not be the rows its digest names."""
    path = tmp_path / "r.csv"
    path.write_text("member_id,branch_id,kind,date,value\nM005,B01,oath,2024-08-20,\n", encoding="utf-8")
    source = read_table(path)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("M006,B01,oath,2024-08-20,\n")
    with pytest.raises(MalformedFile, match="changed while it was being read"):
        list(source.data)
