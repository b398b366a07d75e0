"""`campaign report` as a user runs it: a past T after the campaign moved on, and a directory holding others' files."""

from __future__ import annotations

import re
from pathlib import Path

from states.sample import plan_2024_path, roster_path

CAVEATS = re.compile(r'<aside class="caveats" id="as-of">.*?</aside>\n', re.S)


def _pages(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.html"))}


def test_report_at_a_past_time_matches_the_one_written_then(cli, tmp_path: Path) -> None:  # noqa: ANN001
    assert cli("roster", "import", str(roster_path()), "--actor", "M002", "--at", "2024-03-01T09:00").code == 0
    assert cli("plan", "load", str(plan_2024_path()), "--actor", "M002", "--at", "2024-03-01T09:00").code == 0
    then, past = tmp_path / "then", tmp_path / "past"
    assert cli("report", "sfao-2024", "--out", str(then), "--at", "2024-03-20T09:00").code == 0
    assert cli("sweep", "sfao-2024", "--at", "2024-03-25T08:00", "--json").code == 0  # everyone starts studying
    written = cli("report", "sfao-2024", "--out", str(past), "--at", "2024-03-20T09:00")
    assert written.code == 0, written
    now = tmp_path / "now"
    assert cli("report", "sfao-2024", "--out", str(now), "--at", "2024-03-26T09:00").code == 0
    assert _pages(past).keys() == _pages(then).keys()
    for name, html in _pages(past).items():
        assert 'id="as-of"' in html and CAVEATS.sub("", html) == _pages(then)[name], name
    # Today the members are studying, at 20 March they were enrolled: the past report shows the latter.
    assert "教育学习" in _pages(now)["branch-B01.html"] and "教育学习</span>" not in _pages(past)["branch-B01.html"]


def test_a_directory_holding_someone_elses_page_is_refused(cli, tmp_path: Path) -> None:  # noqa: ANN001
    assert cli("roster", "import", str(roster_path()), "--actor", "M002", "--at", "2024-03-01T09:00").code == 0
    assert cli("plan", "load", str(plan_2024_path()), "--actor", "M002", "--at", "2024-03-01T09:00").code == 0
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("<p>the office's own start page</p>", encoding="utf-8")
    refused = cli("report", "sfao-2024", "--out", str(out), "--at", "2024-03-20T09:00")
    assert refused.code == 2, refused
    assert len(refused.err.strip().splitlines()) == 1 and "index.html" in refused.err and "Traceback" not in refused.err
    assert [p.name for p in out.iterdir()] == ["index.html"]
    assert (out / "index.html").read_text(encoding="utf-8") == "<p>the office's own start page</p>"
