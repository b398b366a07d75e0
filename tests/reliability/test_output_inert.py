"""What the software writes is inert: formula text neutralised in CSV cells, markup escaped in HTML reports."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from reports.cells import FORMULA_STARTS, csv_row, neutralise
from tests.reliability.synth import ROOT

FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1", " =1+1", "\uff1dSUM(A1)",
            '=HYPERLINK("http://evil.example","x")']


def test_formulas_are_neutralised() -> None:
    for text in FORMULAS:
        assert neutralise(text).startswith("'"), text
    for text in ("张三", "M001", "3", "a=b", "", "'already"):
        assert neutralise(text) == text


@given(st.text(max_size=40))
def test_no_cell_a_spreadsheet_would_evaluate(text: str) -> None:
    out = io.StringIO()
    csv.writer(out).writerow(csv_row([text, None, 3]))
    cell = next(csv.reader(io.StringIO(out.getvalue())))[0]
    assert cell.lstrip(" ")[:1] not in FORMULA_STARTS and cell[:1] not in FORMULA_STARTS


def test_no_csv_is_written_without_neutralising() -> None:
    """Any module of the service that writes CSV (csv.writer / DictWriter) must go through csv_row/neutralise.
    The sample generator (`states/sample`) writes the demo's own input files and is exempt."""
    offenders = []
    for path in [*(ROOT / "states").rglob("*.py"), *(ROOT / "flows").rglob("*.py")]:
        if "sample" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if ("csv.writer" in text or "DictWriter" in text) and "neutralise" not in text and "csv_row" not in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_report_cells_are_escaped(tmp_path: Path) -> None:
    """The report's Jinja2 environment autoescapes (reports/report.py); a hostile name renders as text."""
    from reports.render import make_environment

    env = make_environment()
    rendered = env.from_string("<td>{{ name }}</td>").render(name="<script>alert(1)</script>")
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered
