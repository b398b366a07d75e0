"""Reading an Excel workbook (.xlsx) as offices save it: one sheet streamed row by row (openpyxl's read-only mode),
each cell as the text the importers check — whole numbers without ".0", date cells as YYYY-MM-DD."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from readers.csvfile import CHUNK
from readers.text import plain
from states.columns import TITLE_ROWS, header_at, is_header
from states.errors import MalformedFile
from states.source import Source, column_letter


def cell_text(value: Any) -> str:
    """A cell's value as text: what a person sees in the cell, without Excel's float noise."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: a bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Excel keeps every number as a double: 46.0 is the 46 a person typed.
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return plain(str(value))


def _close(book: Any, fh: Any) -> None:
    book.close()
    fh.close()


def read_xlsx(path: Path | str, sheet: str | None = None) -> Source:
    """The first sheet (or `sheet`) as a `Source`: the header is the first row naming known columns within the
    first rows (a title above it is skipped), else the first non-blank row; rows keep the sheet's numbering, blank
    rows are skipped, and a value outside the header's columns is refused naming its cell. The file is read as
    openpyxl reads a zip, by its parts, never held whole; the workbook is closed when its rows are done."""
    from openpyxl import load_workbook

    name = str(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed with the workbook
    except OSError as exc:
        why = exc.strerror or exc
        raise MalformedFile(name, None, None, zh=f"无法读取：{why}", en=f"cannot read: {why}") from exc
    digest = hashlib.sha256()
    while chunk := fh.read(CHUNK):
        digest.update(chunk)
    fh.seek(0)
    try:
        # From an open file: openpyxl would refuse a workbook by its file name's extension alone.
        book = load_workbook(fh, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises zipfile, KeyError, XML and its own errors alike
        fh.close()
        kind = type(exc).__name__
        raise MalformedFile(
            name, None, None, zh=f"是 ZIP 压缩包，但不是 Excel 工作簿（.xlsx）：请在 Excel/WPS 中另存为 .xlsx 或 CSV ({kind})",
            en=f"is a ZIP archive but not an Excel workbook (.xlsx): save it as .xlsx or CSV in Excel/WPS ({kind})",
        ) from None
    if sheet is None:
        if not book.worksheets:
            _close(book, fh)
            raise MalformedFile(name, None, None, zh="没有工作表", en="has no worksheet")
        ws = book.worksheets[0]
    elif sheet in book.sheetnames:
        ws = book[sheet]
    else:
        names = ", ".join(book.sheetnames)
        _close(book, fh)
        raise MalformedFile(name, None, None, zh=f"没有工作表 {sheet!r}（其工作表：{names}）", en=f"has no sheet {sheet!r} (its sheets: {names})")
    title = str(ws.title)
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()  # a stale <dimension> written by some tools would cut rows off
    looked: list[tuple[int, list[str]]] = []
    for line, values in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
        texts = [cell_text(v).strip() for v in values]
        if any(texts):
            looked.append((line, texts))
            if is_header(texts) or len(looked) >= TITLE_ROWS:
                break
    if not looked:
        _close(book, fh)
        raise MalformedFile(name, None, None, zh=f"工作表 {title!r} 是空的（没有表头行）",
                            en=f"sheet {title!r} is empty (no header row)", sheet=title)
    header_line, header = looked[header_at([texts for _line, texts in looked])]
    while not header[-1]:
        header.pop()
    # Read again from the row after the header (read-only sheets stream: rows looked at are not kept).
    cells = enumerate(ws.iter_rows(min_row=header_line + 1, values_only=True), start=header_line + 1)
    width = len(header)

    def data() -> Iterator[tuple[int, list[str]]]:
        try:
            for line, values in cells:
                texts = [cell_text(v) for v in values]
                if not "".join(texts).strip():
                    continue
                for index in range(width, len(texts)):
                    if texts[index].strip():
                        raise MalformedFile(
                            name, line, None, zh="表头各列之外有内容", en="a value beyond the header's columns", sheet=title,
                            letter=column_letter(index),
                        )
                texts = texts[:width]
                texts += [""] * (width - len(texts))
                yield line, texts
        finally:
            _close(book, fh)

    return Source(name, digest.hexdigest(), header, data(), sheet=title, header_line=header_line)
