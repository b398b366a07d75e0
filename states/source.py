"""A file's rows as the importers check them: its name, digest, header and data rows, each with where it came from.

Reading a file (its encoding, CSV or a spreadsheet) is the edge's work (`readers/`); the core receives a `Source`
and validates and imports rows without opening anything.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from states.columns import canonical, chinese_header
from states.errors import MalformedFile

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class Source:
    """`path` names the source in errors and in the import log; `sha256` is the digest of its bytes (the same file
    imported twice changes nothing); `data` yields (line, raw values) once, blank rows already skipped and each row
    as wide as the header. A spreadsheet's rows are numbered as the sheet numbers them, and errors name `sheet`
    and the cell's column letter; `header_line` is the row the header stands on."""

    path: str
    sha256: str
    header: list[str]
    data: Iterable[tuple[int, list[str]]]
    sheet: str | None = None
    header_line: int = 1


def _names(source: Source, required: tuple[str, ...], optional: tuple[str, ...]) -> list[str]:
    known = set(required) | set(optional)
    return [name if (name := canonical(h)) in known else "" for h in source.header]


def _shown(header: str, index: int) -> str:
    return header.strip() or f"({index + 1})"


def checked(source: Source, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[str]:
    """The header as the importers read it: each column's English name (a Chinese header translated, see
    `states.columns`), "" for a column this file does not use (ignored; `ignored` names them). Refused when it
    lacks a required column — every missing one and every unused one named at once — or names a column twice."""
    names = _names(source, required, optional)
    missing = [c for c in required if c not in names]
    if missing:
        unused = ", ".join(map(repr, (_shown(h, i) for i, (h, n) in enumerate(zip(source.header, names, strict=True)) if not n)))
        lacks = ", ".join(map(repr, missing))
        own = (*required, *optional)
        zh = f"表头缺少列 {'、'.join(_both(c) for c in missing)}" + (f"；不属于本文件的列：{unused}" if unused else "")
        en = f"header lacks column{'s' if len(missing) > 1 else ''} {lacks}" + (f"; not columns of this file: {unused}" if unused else "")
        raise MalformedFile(
            source.path, source.header_line, None,
            zh=f"{zh}（本文件的列：{'、'.join(_both(c) for c in own)}；见 docs/formats.md）",
            en=f"{en} (its columns: {', '.join(own)}; docs/formats.md)",
        )
    twice = ", ".join(map(repr, sorted(n for n, count in Counter(names).items() if n and count > 1)))
    if twice:
        raise MalformedFile(source.path, source.header_line, None, zh=f"列 {twice} 出现了两次", en=f"column {twice} is named twice")
    return names


def _both(column: str) -> str:
    """A column by its Chinese header and its English name: `人员编号 (member_id)`."""
    zh = chinese_header(column)
    return f"{zh} ({column})" if zh else column


def ignored(source: Source, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[str]:
    """The headers, as the file writes them, of the columns its kind does not use: ignored, and named to the user."""
    names = _names(source, required, optional)
    return [_shown(h, i) for i, (h, n) in enumerate(zip(source.header, names, strict=True)) if not n]


def column_letter(index: int) -> str:
    """A spreadsheet's name for the column at `index` (0 → A, 26 → AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


@contextmanager
def located(source: Source, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Iterator[None]:
    """Errors about `source` raised inside, naming the column as the file heads it (a Chinese header beside its
    English name) and, in a spreadsheet, the sheet and the cell's column letter."""
    try:
        yield
    except MalformedFile as exc:
        if exc.path != source.path or exc.sheet is not None:
            raise
        names = _names(source, required, optional)
        index = names.index(exc.column) if exc.column in names else None
        header = source.header[index].strip() if index is not None else None
        if source.sheet is None and (header is None or header == exc.column):
            raise
        raise MalformedFile(
            exc.path, exc.line, exc.column, zh=exc.why_zh, en=exc.why_en, sheet=source.sheet, header=header,
            letter=column_letter(index) if index is not None and source.sheet is not None else None,
        ) from None


def rows(
    source: Source, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """Each data row as (line number, {column: stripped value}); the header must name every required column."""
    header = checked(source, required, optional)
    for line, values in source.data:
        yield line, {h: v.strip() for h, v in zip(header, values, strict=True) if h}


def check_id(source: Source, line: int, column: str, value: str) -> str:
    if not ID_PATTERN.match(value):
        raise MalformedFile(source.path, line, column, zh=f"{value!r} 不是编号（字母、数字、_ . -）",
                            en=f"{value!r} is not an id (letters, digits, _ . -)")
    return value


def number(source: Source, line: int, column: str, value: str, low: float, high: float) -> float:
    """A finite number within [low, high]; NaN, infinities and absurd magnitudes are refused."""
    try:
        parsed = float(value)
    except ValueError:
        raise MalformedFile(source.path, line, column, zh=f"{value!r} 不是数字", en=f"{value!r} is not a number") from None
    if not math.isfinite(parsed) or not low <= parsed <= high:
        raise MalformedFile(source.path, line, column, zh=f"{value!r} 不在 {low:g}～{high:g} 之间",
                            en=f"{value!r} is outside {low:g}..{high:g}")
    return parsed


# C0 and C1 controls (CR and LF among them), DEL, the Unicode line and paragraph separators, and the bidirectional
# overrides and isolates: in a name or an address they break a header or a line of a notice, or disguise text.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def check_plain(source: Source, line: int, row: dict[str, str]) -> None:
    """Every field of the row free of control characters; the first one found names its column (exit 2)."""
    if not CONTROL.search("".join(row.values())):
        return
    for column, value in row.items():
        found = CONTROL.search(value)
        if found:
            code = f"U+{ord(found.group()):04X}"
            raise MalformedFile(source.path, line, column, zh=f"含有控制字符（{code}）：只能是文字",
                                en=f"contains a control character ({code}); text only")
