"""Cells the software writes (CSV, report pages) made inert for spreadsheets."""

from __future__ import annotations

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
