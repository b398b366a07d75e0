"""The command line end to end, as a new user tries it: import, plan, evidence, sweep, explain, mend, retry."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml

from states.sample import RECORD_FIELDS, demo_records, plan_2024_path, roster_path, write_csv


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_a_whole_study_phase(cli, tmp_path: Path) -> None:  # noqa: ANN001
    assert cli("roster", "import", str(roster_path()), "--actor", "M002").code == 0
    again = cli("roster", "import", str(roster_path()), "--actor", "M002")
    assert again.code == 0 and "此前已导入，未作更改" in again.out
    loaded = cli("plan", "load", str(plan_2024_path()), "--actor", "M002")
    assert loaded.code == 0 and loaded.out.strip() == "sfao-2024"
    plan = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    # the evidence up to the study deadline; the late mends come later, as a user would import them
    rows = demo_records(plan, roster_path())
    early = [r for r in rows if r["date"] <= "2024-04-30"]
    late = [r for r in rows if "2024-05-01" <= r["date"] <= "2024-05-31"]
    assert cli("record", "import", str(write_csv(tmp_path / "early.csv", early, RECORD_FIELDS)), "--actor", "M002").code == 0

    start = json.loads(cli("sweep", "sfao-2024", "--at", "2024-03-25T08:00", "--json").out)
    assert start["fired"] == ["start"] and start["advanced"] == {"members": 175, "branches": 9}
    before = json.loads(cli("sweep", "sfao-2024", "--at", "2024-04-30T23:59:59", "--json").out)
    assert before["fired"] == []
    dry = json.loads(cli("sweep", "sfao-2024", "--at", "2024-05-01T00:00:01", "--json", "--dry-run").out)
    fired = json.loads(cli("sweep", "sfao-2024", "--at", "2024-05-01T00:00:01", "--json").out)
    assert dry == fired and fired["fired"] == ["study"]
    assert fired["stuck"] == {"members": 25, "branches": 1}
    second = json.loads(cli("sweep", "sfao-2024", "--at", "2024-05-01T00:00:01", "--json").out)
    assert second["advanced"] == {"members": 0, "branches": 0}

    explained = json.loads(cli("explain", "sfao-2024", "--member", "M054", "--at", "2024-05-01T09:00", "--json").out)
    assert explained["state"] == "study" and explained["stuck"] is True
    assert explained["unmet"] == [{"condition": "study_hours", "have": 46, "need": 50}]
    held = json.loads(cli("explain", "sfao-2024", "--member", "M150", "--at", "2024-05-01T09:00", "--json").out)
    assert [u["condition"] for u in held["unmet"]] == ["branch"]  # B08 held only by its branch

    refused = cli("retry", "sfao-2024", "--member", "M054", "--actor", "M048", "--reason", "check", "--at", "2024-05-01T09:00")
    assert refused.code == 1 and "学时 46/50" in refused.out
    assert cli("retry", "sfao-2024", "--member", "M054", "--actor", "M005", "--reason", "x").code == 1  # plain member
    assert cli("retry", "sfao-2024", "--member", "M054", "--actor", "I01", "--reason", "x").code == 1  # inspector
    assert cli("retry", "sfao-2024", "--member", "M054", "--actor", "M004", "--reason", "x").code == 1  # other branch

    assert cli("record", "import", str(write_csv(tmp_path / "late.csv", late, RECORD_FIELDS)), "--actor", "M002").code == 0
    mended = cli("retry", "sfao-2024", "--member", "M054", "--actor", "M048", "--reason", "hours mended", "--at", "2024-05-06T09:00", "--json")
    assert mended.code == 0 and json.loads(mended.out)["advanced"] == {"M054": ["study", "analysis"]}
    status = json.loads(cli("status", "sfao-2024", "--at", "2024-05-06T09:00", "--json").out)
    assert status["phase"] == "analysis" and status["members"]["analysis"] == 151
    log = json.loads(cli("audit", "sfao-2024", "--member", "M054", "--json").out)
    assert log[-1]["cause"] == "retry" and log[-1]["actor"] == "M048" and log[-1]["reason"] == "hours mended"
    assert cli("audit", "sfao-2024", "--verify").code == 0
    dispatched = cli("notify", "dispatch")
    assert dispatched.code == 0 and len(list((tmp_path / "outbox").glob("*.eml"))) > 175


def test_bad_input_is_one_line_exit_2_and_changes_nothing(cli, tmp_path: Path) -> None:  # noqa: ANN001
    assert cli("roster", "import", str(roster_path()), "--actor", "M002").code == 0
    header = "member_id,name,branch_id,branch_name,unit,role,email\n"
    bad = write(tmp_path / "bad.csv", header + "X1,甲,B01,办公室党支部,省外办,member,\nX2,乙,B01,办公室党支部,省外办,chief,\n")
    run = cli("roster", "import", str(bad), "--actor", "M002")
    assert run.code == 2 and "bad.csv 第3行，角色 (role) 列：'chief' 不是以下角色之一" in run.err and "Traceback" not in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert cli("status", "nope").code == 2
    gbk = write(tmp_path / "gbk.csv", header + "X1,张三,B01,办公室党支部,省外办,member,\n", "gbk")
    assert cli("roster", "import", str(gbk), "--actor", "M002").code == 0
    broken = tmp_path / "broken.csv"
    broken.write_bytes(header.encode() + b"X3,\xff\xfe\xfa,B01,x,y,member,\n")
    assert cli("roster", "import", str(broken), "--actor", "M002").code == 2
    assert cli("plan", "load", str(write(tmp_path / "p.yaml", "key: Bad Key\ntitle: t\nphases: []\n")), "--actor", "M002").code == 2
    assert cli("plan", "load", str(plan_2024_path()), "--actor", "M002").code == 0
    records = write(tmp_path / "r.csv", "member_id,branch_id,kind,date,value\nM005,B01,study_self,2024-04-01,4\nM005,B02,study_self,2024-04-02,4\n")
    run = cli("record", "import", str(records), "--actor", "M002")
    assert run.code == 2 and "r.csv 第3行" in run.err and "从未属于" in run.err, run.err
    for value in ("-1", "NaN", "1e308", "abc"):
        run = cli("record", "import", str(write(tmp_path / "v.csv", f"member_id,branch_id,kind,date,value\nM005,B01,study_self,2024-04-01,{value}\n")), "--actor", "M002")
        assert run.code == 2, value
    assert cli("record", "import", str(write(tmp_path / "d.csv", "member_id,branch_id,kind,date,value\nM005,B01,heart_talk,2024-02-30,\n")), "--actor", "M002").code == 2
    assert cli("sweep", "sfao-2024", "--at", "yesterday").code == 2
    status = json.loads(cli("status", "sfao-2024", "--at", "2024-03-01", "--json").out)
    assert status["members"] == {"enrolled": 176} and status["phase"] == "not_started"


def test_a_time_ahead_of_the_clock_is_refused_without_simulation(cli, tmp_path: Path) -> None:  # noqa: ANN001
    plan = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    assert cli("roster", "import", str(roster_path()), "--actor", "M002", "--at", "2024-03-01T09:00").code == 0
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
    assert cli("plan", "load", str(tmp_path / "plan.yaml"), "--actor", "M002", "--at", "2024-03-01T09:00").code == 0
    before = json.loads(cli("audit", "sfao-2024", "--json").out)
    cli.env["CAMPAIGN_SIMULATION"] = "0"
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    refused = cli("sweep", "sfao-2024", "--at", far, "--json")
    assert refused.code == 1, refused
    assert "CAMPAIGN_SIMULATION" in refused.err and "Traceback" not in refused.err
    assert json.loads(cli("audit", "sfao-2024", "--json").out) == before  # nothing fired, nothing recorded
    # The past is still the past: a sweep at a real, earlier time fires what was due then.
    assert cli("sweep", "sfao-2024", "--at", "2024-05-01T00:00:01", "--json").code == 0
