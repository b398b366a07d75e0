"""`campaign plan load` of a changed plan as a user runs it: an unfired deadline moves, a fired phase is refused."""

from __future__ import annotations

import json
from pathlib import Path

from states.sample import plan_2024_path, roster_path


def test_moving_a_fired_phase_exits_1_naming_it_and_an_unfired_one_moves(cli, tmp_path: Path) -> None:  # noqa: ANN001
    assert cli("roster", "import", str(roster_path()), "--actor", "M002").code == 0
    assert cli("plan", "load", str(plan_2024_path()), "--actor", "M002", "--at", "2024-03-01T09:00").code == 0
    assert cli("sweep", "sfao-2024", "--at", "2024-05-01T00:00:01").code == 0  # start and study fired
    text = plan_2024_path().read_text(encoding="utf-8")
    late_study = tmp_path / "late-study.yaml"
    late_study.write_text(
        text.replace("end: 2024-04-30", "end: 2024-05-07").replace("start: 2024-05-01", "start: 2024-05-08"),
        encoding="utf-8",
    )
    refused = cli("plan", "load", str(late_study), "--actor", "M002", "--at", "2024-05-02T09:00")
    assert refused.code == 1, refused.err
    assert refused.err.count("\n") == 1 and "Traceback" not in refused.err
    assert "教育学习阶段：本阶段截止已触发，study.end 不能再改（2024-04-30 → 2024-05-07）" in refused.err, refused.err
    late_analysis = tmp_path / "late-analysis.yaml"
    late_analysis.write_text(
        text.replace("end: 2024-05-31", "end: 2024-06-07").replace("start: 2024-06-01", "start: 2024-06-08"),
        encoding="utf-8",
    )
    assert cli("plan", "load", str(late_analysis), "--actor", "M002", "--at", "2024-05-02T09:00").code == 0
    log = json.loads(cli("audit", "sfao-2024", "--json").out)
    changes = [e["reason"] for e in log if e["cause"] == "plan_change"]
    assert changes == ["analysis.end 2024-05-31 → 2024-06-07", "rectification.start 2024-06-01 → 2024-06-08"]
    fired = json.loads(cli("sweep", "sfao-2024", "--at", "2024-06-01T00:00:01", "--json").out)["fired"]
    assert fired == []  # the old analysis deadline fires nothing
    assert json.loads(cli("sweep", "sfao-2024", "--at", "2024-06-08T00:00:01", "--json").out)["fired"] == ["analysis"]
