"""The appraisal with the CLI alone: applications, ballot, approval, publicity, outcomes, pledge; refusals change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from states.sample import (
    BALLOT_FIELDS,
    RECORD_FIELDS,
    demo_ballots,
    demo_records,
    plan_2024_path,
    roster_path,
    write_csv,
)


def test_branch_b05_from_applications_to_the_pledge(cli, tmp_path: Path) -> None:  # noqa: ANN001
    plan = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    assert cli("roster", "import", str(roster_path()), "--actor", "M002").code == 0
    assert cli("plan", "load", str(plan_2024_path()), "--actor", "M002").code == 0
    assert cli("record", "import", str(write_csv(tmp_path / "r.csv", demo_records(plan, roster_path()), RECORD_FIELDS)), "--actor", "M002").code == 0
    assert cli("sweep", "sfao-2024", "--at", "2024-08-08T00:00:01").code == 0
    rows = demo_ballots(plan, roster_path())["B05"]
    no_quorum = [{**r, "present": str(int(r["entitled"]) // 2)} for r in rows]
    for r in no_quorum:
        r.update(qualified="0", basically_qualified="0", unqualified="0")
    refused = cli("ballot", "import", "sfao-2024", str(write_csv(tmp_path / "nq.csv", no_quorum, BALLOT_FIELDS)), "--at", "2024-08-08T15:00", "--actor", "M002")
    assert refused.code == 1 and "不足法定人数" in refused.err, refused.err
    ballot = write_csv(tmp_path / "b05.csv", rows, BALLOT_FIELDS)
    assert cli("ballot", "import", "sfao-2024", str(ballot), "--at", "2024-08-08T15:00", "--actor", "M002").code == 0
    assert "此前已记录，未作更改" in cli("ballot", "import", "sfao-2024", str(ballot), "--at", "2024-08-08T15:00", "--actor", "M002").out
    assert cli("approve", "sfao-2024", "--branch", "B05", "--actor", "M083", "--at", "2024-08-09T09:00").code == 1  # a secretary
    assert cli("approve", "sfao-2024", "--branch", "B05", "--actor", "M002", "--at", "2024-08-09T09:00").code == 0
    assert cli("approve", "sfao-2024", "--branch", "B05", "--actor", "M002", "--at", "2024-08-09T09:01").code == 1  # nothing left
    assert cli("excellent", "sfao-2024", "--member", "M084", "--actor", "M002", "--at", "2024-08-10T09:00").code == 1  # not final
    for b in ("B01", "B02", "B03", "B04", "B06", "B07", "B08", "B09"):
        assert cli("ballot", "import", "sfao-2024", str(write_csv(tmp_path / f"{b}.csv", demo_ballots(plan, roster_path())[b], BALLOT_FIELDS)), "--at", "2024-08-08T15:00", "--actor", "M002").code == 0
        assert cli("approve", "sfao-2024", "--branch", b, "--actor", "M001", "--at", "2024-08-09T09:00").code == 0
    # Publicity: 5 × 24 h from 2024-08-09T09:00. Final at T whether or not a sweep ran since (none has).
    early = cli("excellent", "sfao-2024", "--member", "M084", "--actor", "M002", "--at", "2024-08-14T08:59:59")
    assert early.code == 1 and "尚未最终确定" in early.err, early.err
    before = json.loads(cli("status", "sfao-2024", "--member", "M084", "--at", "2024-08-14T08:59:59", "--json").out)
    assert before["appraisal"]["final"] is False
    after = json.loads(cli("status", "sfao-2024", "--member", "M084", "--at", "2024-08-14T09:00", "--json").out)
    assert after["appraisal"]["final"] is True
    assert cli("excellent", "sfao-2024", "--member", "M084", "--actor", "M002", "--at", "2024-08-14T09:00").code == 0
    swept = json.loads(cli("sweep", "sfao-2024", "--at", "2024-08-16T00:00:01", "--json").out)
    assert swept["fired"] == ["consolidation"]
    disq = json.loads(cli("status", "sfao-2024", "--member", "M089", "--at", "2024-08-16T09:00", "--json").out)
    assert disq["state"] == "disqualified"
    basic = json.loads(cli("status", "sfao-2024", "--member", "M094", "--at", "2024-08-16T09:00", "--json").out)
    assert basic["state"] == "pledge" and basic["appraisal"]["rating"] == "basically_qualified"
    pending = json.loads(cli("status", "sfao-2024", "--member", "M063", "--at", "2024-08-16T09:00", "--json").out)
    assert pending["state"] == "withdrawal_pending"
    assert cli("withdrawal", "sfao-2024", "--member", "M063", "--confirm", "--actor", "M048", "--reason", "未提交书面申请", "--at", "2024-08-17T09:00").code == 0
    assert cli("approve", "sfao-2024", "--branch", "B03", "--actor", "M002", "--at", "2024-08-18T09:00").code == 0
    final = json.loads(cli("sweep", "sfao-2024", "--at", "2024-09-01T00:00:01", "--json").out)
    assert final["fired"] == ["pledge"]
    status = json.loads(cli("status", "sfao-2024", "--at", "2024-09-01T00:00:01", "--json").out)
    assert status["members"]["completed"] == 172 and status["members"]["withdrawn"] == 1
    assert status["members"]["disqualified"] == 1 and status["branches"] == {"completed": 9}
    log = json.loads(cli("audit", "sfao-2024", "--json").out)
    ballots = [e for e in log if e["cause"] == "ballot"]
    assert ballots and all(e["reason"].startswith(("rating: ", "ballot void")) for e in ballots)  # ratings, never tallies
