"""A file's rows as the importers check them: its name, digest, header and data rows, each with where it came from.

Reading a file (its encoding, CSV or a spreadsheet) is the edge's work (`readers/`); the core receives a `Source`
and validates and imports rows without opening anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from states.errors import MalformedFile

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class Source:
    """`path` names the source in errors and in the import log; `sha256` is the digest of its bytes (the same file
    imported twice changes nothing); `data` yields (line, raw values) once, blank rows already skipped and each row
    as wide as the header."""

    path: str
    sha256: str
    header: list[str]
    data: Iterable[tuple[int, list[str]]]


def checked(source: Source, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[str]:
    """The header, once it names every required column, nothing unknown and no column twice."""
    header = source.header
    missing = [c for c in required if c not in header]
    if missing:
        raise MalformedFile(source.path, 1, missing[0], f"header lacks column {missing[0]!r}")
    unknown = [c for c in header if c not in required and c not in optional]
    if unknown:
        raise MalformedFile(source.path, 1, unknown[0], f"unknown column {unknown[0]!r}")
    if len(set(header)) != len(header):
        raise MalformedFile(source.path, 1, None, "a column is named twice")
    return header


def rows(
    source: Source, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """Each data row as (line number, {column: stripped value}); the header must name every required column."""
    header = checked(source, required, optional)
    for line, values in source.data:
        yield line, {h: v.strip() for h, v in zip(header, values, strict=True)}


def check_id(source: Source, line: int, column: str, value: str) -> str:
    if not ID_PATTERN.match(value):
        raise MalformedFile(source.path, line, column, f"{value!r} is not an id (letters, digits, _ . -)")
    return value


def number(source: Source, line: int, column: str, value: str, low: float, high: float) -> float:
    """A finite number within [low, high]; NaN, infinities and absurd magnitudes are refused."""
    try:
        parsed = float(value)
    except ValueError:
        raise MalformedFile(source.path, line, column, f"{value!r} is not a number") from None
    if not math.isfinite(parsed) or not low <= parsed <= high:
        raise MalformedFile(source.path, line, column, f"{value!r} is outside {low:g}..{high:g}")
    return parsed
