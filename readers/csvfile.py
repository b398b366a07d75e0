"""Reading the organisation's text tables: the encoding (UTF-8, GB18030/GBK, UTF-16) and the separator (comma or
tab) detected, rows streamed with their line numbers."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from readers.text import has_wide, plain
from states.columns import TITLE_ROWS, header_at, is_header
from states.errors import MalformedFile
from states.source import Source


@dataclass(frozen=True)
class CsvFile:
    path: str
    text: str
    sha256: str
    encoding: str


def utf16_without_bom(raw: bytes) -> str | None:
    """"utf-16-le" or "utf-16-be" when `raw` looks like UTF-16 text written without a BOM: in its first bytes,
    many of every other byte are NUL (the high byte of ASCII: ids, digits, separators) and almost none between."""
    head = raw[:4096]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    for encoding, highs, lows in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if highs.count(0) >= 0.3 * len(highs) and lows.count(0) * 4 <= highs.count(0):
            return encoding
    return None


def decode(name: str, raw: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-16 with a BOM or recognisably without one, else UTF-8 (with or without BOM), else
    GB18030 (a superset of GBK); NUL characters and broken bytes refused."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates: tuple[str, ...] = ("utf-16",)
    else:
        utf16 = utf16_without_bom(raw) if b"\x00" in raw else None
        candidates = (utf16,) if utf16 else ("utf-8-sig", "gb18030")
    if candidates[0] == "utf-8-sig" and b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise MalformedFile(name, line, None, zh="含有 NUL 字节（不是文本文件：请导入 .xlsx 或 CSV 文件）",
                            en="contains a NUL byte (not a text file: import a .xlsx or a CSV file)")
    for encoding in candidates:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            failure = exc
            continue
        if "\x00" in text:
            line = text[: text.index("\x00")].count("\n") + 1
            raise MalformedFile(name, line, None, zh="含有 NUL 字符（不是文本文件：请导入 .xlsx 或 CSV 文件）",
                                en="contains a NUL character (not a text file: import a .xlsx or a CSV file)")
        return text, encoding
    if candidates[0].startswith("utf-16"):
        raise MalformedFile(name, None, None, zh="不是有效的 UTF-16 文本", en="is not valid UTF-16 text")
    line = raw[: failure.start].count(b"\n") + 1
    raise MalformedFile(name, line, None, zh="既不是 UTF-8 也不是 GB18030/GBK 文本", en="is neither UTF-8 nor GB18030/GBK text")


def read_text(path: Path | str, raw: bytes | None = None) -> CsvFile:
    """The file's text and its digest; `raw`, when given, is the file's bytes already read."""
    name = str(path)
    if raw is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            why = exc.strerror or exc
            raise MalformedFile(name, None, None, zh=f"无法读取：{why}", en=f"cannot read: {why}") from exc
    text, encoding = decode(name, raw)
    return CsvFile(name, text, hashlib.sha256(raw).hexdigest(), encoding)


def separator(text: str) -> str:
    """Tab when the header line holds more tabs than commas (Excel's "Unicode text", a tab-separated export)."""
    end = text.find("\n")
    first = text if end < 0 else text[:end]
    return "\t" if first.count("\t") > first.count(",") else ","


def lines(text: str) -> Iterator[str]:
    """The text's lines as `io.StringIO(text, newline="")` yields them, without its copy of the whole text (four
    bytes a character: 1.2 GB for a million members' evidence)."""
    if text.count("\r") != text.count("\r\n"):  # a lone CR ends a line too: leave that to StringIO
        yield from io.StringIO(text, newline="")
        return
    position, size = 0, len(text)
    while position < size:
        end = text.find("\n", position)
        end = size if end < 0 else end + 1
        yield text[position:end]
        position = end


def _broken(path: str, line: int, exc: csv.Error) -> MalformedFile:
    """A row Python's CSV reader cannot take (an unclosed quote …): its own words after ours."""
    return MalformedFile(path, line, None, zh=f"CSV 格式有误（{exc}）", en=str(exc))


def read_table(path: Path | str, raw: bytes | None = None) -> Source:
    """A CSV or tab-separated file as a `Source`: its encoding and separator detected, its header row read, its data
    rows streamed as (line, values) with full-width digits, letters and spaces made plain, blank rows skipped and
    each row as wide as the header."""
    source = read_text(path, raw)
    # Made plain as a whole, and only when something needs it: a per-cell pass would double a million rows' time.
    text = plain(source.text) if has_wide(source.text) else source.text
    reader = csv.reader(lines(text), delimiter=separator(text), strict=True)
    # The header is the first row naming known columns among the first rows (a title row a spreadsheet saved
    # above it is skipped), else the first row; rows read while looking are data again.
    looked: list[tuple[int, list[str]]] = []
    try:
        while len(looked) < TITLE_ROWS:
            row = next(reader)
            looked.append((reader.line_num, row))
            if is_header(row):
                break
    except StopIteration:
        pass
    except csv.Error as exc:
        raise _broken(source.path, reader.line_num, exc) from None
    if not looked:
        raise MalformedFile(source.path, 1, None, zh="是空文件（没有表头行）", en="is empty (no header row)")
    at = header_at([row for _line, row in looked])
    header_line, header = looked[at][0], [h.strip() for h in looked[at][1]]
    replay = looked[at + 1 :]

    def data() -> Iterator[tuple[int, list[str]]]:
        pending = iter(replay)
        while True:
            try:
                line, values = next(pending, None) or (0, next(reader))
            except StopIteration:
                return
            except csv.Error as exc:
                raise _broken(source.path, reader.line_num, exc) from None
            line = line or reader.line_num
            if not values or not "".join(values).strip():
                continue
            if len(values) != len(header):
                raise MalformedFile(source.path, line, None, zh=f"有 {len(values)} 个字段，表头有 {len(header)} 个",
                                    en=f"has {len(values)} fields, the header {len(header)}")
            yield line, values

    return Source(source.path, source.sha256, header, data(), header_line=header_line)
