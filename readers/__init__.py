"""Reading the organisation's files — encodings, CSV, spreadsheets — into the rows the core imports."""

from __future__ import annotations

from pathlib import Path

from readers.csvfile import read_table as read_text_table
from readers.xlsx import read_xlsx
from states.errors import MalformedFile
from states.source import Source

# What a file is, by its first bytes, whatever its name says; other binary kinds are refused with what to do.
ZIP = b"PK\x03\x04"
REFUSED: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "这是旧版 Excel .xls 文件（或 Word/受密码保护的文件）：请另存为 .xlsx 或 CSV 后导入"),
    (b"%PDF", "这是 PDF 文件，不是表格：请导入 .xlsx 或 CSV 文件"),
    (b"\x89PNG", "这是图片文件（PNG），不是表格：请导入 .xlsx 或 CSV 文件"),
    (b"\xff\xd8\xff", "这是图片文件（JPEG），不是表格：请导入 .xlsx 或 CSV 文件"),
    (b"GIF8", "这是图片文件（GIF），不是表格：请导入 .xlsx 或 CSV 文件"),
    (b"II*\x00", "这是图片文件（TIFF），不是表格：请导入 .xlsx 或 CSV 文件"),
    (b"MM\x00*", "这是图片文件（TIFF），不是表格：请导入 .xlsx 或 CSV 文件"),
    (b"{\\rtf", "这是 RTF 文档，不是表格：请导入 .xlsx 或 CSV 文件"),
    (b"\x1f\x8b", "这是压缩文件（gzip）：请解压后导入 .xlsx 或 CSV 文件"),
    (b"7z\xbc\xaf\x27\x1c", "这是压缩文件（7z）：请解压后导入 .xlsx 或 CSV 文件"),
    (b"Rar!", "这是压缩文件（RAR）：请解压后导入 .xlsx 或 CSV 文件"),
)


def read_table(path: Path | str, sheet: str | None = None) -> Source:
    """Any import file as a `Source`, its kind told by its content: an .xlsx workbook (its first sheet, or
    `sheet`), else a CSV or tab-separated text in UTF-8, GB18030/GBK or UTF-16; other binary files refused."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise MalformedFile(name, None, None, f"cannot read: {exc.strerror or exc}") from exc
    if raw.startswith(ZIP):
        return read_xlsx(path, raw, sheet)
    for magic, hint in REFUSED:
        if raw.startswith(magic):
            raise MalformedFile(name, None, None, hint)
    if sheet is not None:
        raise MalformedFile(name, None, None, f"--sheet {sheet!r}: only an .xlsx workbook has sheets; this is a text file")
    return read_text_table(path, raw)


__all__ = ["read_table"]
