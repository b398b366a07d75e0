"""Reading the organisation's files — encodings, CSV, spreadsheets — into the rows the core imports."""

from __future__ import annotations

from pathlib import Path

from readers.csvfile import read_table as read_text_table
from readers.xlsx import read_xlsx
from states.errors import MalformedFile
from states.source import Source

# What a file is, by its first bytes, whatever its name says; other binary kinds are refused with what to do.
ZIP = b"PK\x03\x04"
TABLE_ZH, TABLE_EN = "不是表格：请导入 .xlsx 或 CSV 文件", "not a table: import a .xlsx or CSV file"
UNPACK_ZH, UNPACK_EN = "请解压后导入 .xlsx 或 CSV 文件", "unpack it and import the .xlsx or CSV file inside"
REFUSED: tuple[tuple[bytes, str, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "这是旧版 Excel .xls 文件（或 Word/受密码保护的文件）：请另存为 .xlsx 或 CSV 后导入",
     "is an old Excel .xls file (or a Word or password-protected file): save it as .xlsx or CSV and import that"),
    (b"%PDF", f"这是 PDF 文件，{TABLE_ZH}", f"is a PDF file, {TABLE_EN}"),
    (b"\x89PNG", f"这是图片文件（PNG），{TABLE_ZH}", f"is an image (PNG), {TABLE_EN}"),
    (b"\xff\xd8\xff", f"这是图片文件（JPEG），{TABLE_ZH}", f"is an image (JPEG), {TABLE_EN}"),
    (b"GIF8", f"这是图片文件（GIF），{TABLE_ZH}", f"is an image (GIF), {TABLE_EN}"),
    (b"II*\x00", f"这是图片文件（TIFF），{TABLE_ZH}", f"is an image (TIFF), {TABLE_EN}"),
    (b"MM\x00*", f"这是图片文件（TIFF），{TABLE_ZH}", f"is an image (TIFF), {TABLE_EN}"),
    (b"{\\rtf", f"这是 RTF 文档，{TABLE_ZH}", f"is an RTF document, {TABLE_EN}"),
    (b"\x1f\x8b", f"这是压缩文件（gzip）：{UNPACK_ZH}", f"is compressed (gzip): {UNPACK_EN}"),
    (b"7z\xbc\xaf\x27\x1c", f"这是压缩文件（7z）：{UNPACK_ZH}", f"is an archive (7z): {UNPACK_EN}"),
    (b"Rar!", f"这是压缩文件（RAR）：{UNPACK_ZH}", f"is an archive (RAR): {UNPACK_EN}"),
)


def read_table(path: Path | str, sheet: str | None = None) -> Source:
    """Any import file as a `Source`, its kind told by its content: an .xlsx workbook (its first sheet, or
    `sheet`), else a CSV or tab-separated text in UTF-8, GB18030/GBK or UTF-16; other binary files refused."""
    name = str(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)  # what a file is, by its first bytes; the readers read the rest in pieces
    except OSError as exc:
        why = exc.strerror or exc
        raise MalformedFile(name, None, None, zh=f"无法读取：{why}", en=f"cannot read: {why}") from exc
    if head.startswith(ZIP):
        return read_xlsx(path, sheet)
    for magic, zh, en in REFUSED:
        if head.startswith(magic):
            raise MalformedFile(name, None, None, zh=zh, en=en)
    if sheet is not None:
        raise MalformedFile(name, None, None, zh=f"--sheet {sheet!r}：只有 .xlsx 工作簿才有工作表，这是文本文件",
                            en=f"--sheet {sheet!r}: only an .xlsx workbook has sheets; this is a text file")
    return read_text_table(path)


__all__ = ["read_table"]
