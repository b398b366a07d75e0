"""Reading the organisation's CSV files: encoding detected, header checked, every error naming file, line, column."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from states.errors import MalformedFile

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class CsvFile:
    path: str
    text: str
    sha256: str
    encoding: str


def read_text(path: Path | str) -> CsvFile:
    """UTF-8 (with or without BOM) first, then GB18030 (a superset of GBK); NUL bytes and broken bytes refused."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise MalformedFile(name, None, None, f"cannot read: {exc.strerror or exc}") from exc
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise MalformedFile(name, line, None, "contains a NUL byte (not a text file)")
    digest = hashlib.sha256(raw).hexdigest()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return CsvFile(name, raw.decode(encoding), digest, encoding)
        except UnicodeDecodeError as exc:
            failure = exc
    line = raw[: failure.start].count(b"\n") + 1
    raise MalformedFile(name, line, None, "is neither UTF-8 nor GB18030/GBK text")


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


def table(
    source: CsvFile, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The checked header (every required column, nothing unknown, no column twice) and the data rows as
    (line number, raw values), blank rows skipped and each row as wide as the header."""
    reader = csv.reader(lines(source.text), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise MalformedFile(source.path, 1, None, "is empty (no header row)") from None
    except csv.Error as exc:
        raise MalformedFile(source.path, 1, None, str(exc)) from None
    missing = [c for c in required if c not in header]
    if missing:
        raise MalformedFile(source.path, 1, missing[0], f"header lacks column {missing[0]!r}")
    unknown = [c for c in header if c not in required and c not in optional]
    if unknown:
        raise MalformedFile(source.path, 1, unknown[0], f"unknown column {unknown[0]!r}")
    if len(set(header)) != len(header):
        raise MalformedFile(source.path, 1, None, "a column is named twice")

    def data() -> Iterator[tuple[int, list[str]]]:
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise MalformedFile(source.path, reader.line_num, None, str(exc)) from None
            if not values or not "".join(values).strip():
                continue
            if len(values) != len(header):
                raise MalformedFile(
                    source.path, reader.line_num, None, f"has {len(values)} fields, the header {len(header)}"
                )
            yield reader.line_num, values

    return header, data()


def rows(
    source: CsvFile, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """Each data row as (line number, {column: stripped value}); the header must name every required column."""
    header, data = table(source, required, optional)
    for line, values in data:
        yield line, {h: v.strip() for h, v in zip(header, values, strict=True)}


def check_id(source: CsvFile, line: int, column: str, value: str) -> str:
    if not ID_PATTERN.match(value):
        raise MalformedFile(source.path, line, column, f"{value!r} is not an id (letters, digits, _ . -)")
    return value


def number(source: CsvFile, line: int, column: str, value: str, low: float, high: float) -> float:
    """A finite number within [low, high]; NaN, infinities and absurd magnitudes are refused."""
    try:
        parsed = float(value)
    except ValueError:
        raise MalformedFile(source.path, line, column, f"{value!r} is not a number") from None
    if not math.isfinite(parsed) or not low <= parsed <= high:
        raise MalformedFile(source.path, line, column, f"{value!r} is outside {low:g}..{high:g}")
    return parsed


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""What a spreadsheet may read as the start of a formula (OWASP's list, plus the full-width forms CJK input gives)."""


def neutralise(text: str) -> str:
    """Spreadsheet-formula text is made inert in anything we write (CSV cells, report cells): a leading apostrophe,
    also when spaces come before the formula sign (" =1+1")."""
    stripped = text.lstrip(" ")
    return "'" + text if stripped[:1] in FORMULA_STARTS or text[:1] in FORMULA_STARTS else text


def csv_row(values: list[object] | tuple[object, ...]) -> list[str]:
    """A row for csv.writer with every cell neutralised: use it for any CSV the software writes."""
    return [neutralise("" if v is None else str(v)) for v in values]
