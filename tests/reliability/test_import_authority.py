"""Imports are acts with authority (issue 14, item 4): each import and plan load names its actor, who must hold the
role for it; a refusal exits 1 (2 for someone not on the roster) and changes nothing; role and branch changes are
logged one by one.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from states.db import ensure_schema, make_engine
from states.sample import BALLOT_FIELDS, ROSTER_FIELDS, demo_ballots, plan_2024_path, roster_path, write_csv
from tests.fixtures import KEY, load_sample
from tests.reliability.synth import backup, counts, env_for, run_cli

AT = "2024-08-08T15:00"


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample office driven to consolidation (ballots may be recorded): one database copied for each case."""
    folder = tmp_path_factory.mktemp("import-authority")
    db = folder / "office.db"
    engine = make_engine(f"sqlite:///{db}")
    ensure_schema(engine)
    load_sample(engine)
    engine.dispose()
    for when in ("2024-03-25T00:00:01", "2024-05-01T00:00:01", "2024-06-01T00:00:01", "2024-08-01T00:00:01"):
        result = run_cli(["sweep", KEY, "--at", when], env_for(db, folder / "outbox"))
        assert result.code == 0, result.err
    return db


@pytest.fixture
def db(office: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "case.db"
    backup(office, copy)
    return copy


def cli(db: Path, *args: str):  # noqa: ANN201
    return run_cli(list(args), env_for(db, db.parent / "outbox"))


def roster_rows() -> list[dict[str, str]]:
    with roster_path().open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def with_changes(tmp: Path, name: str, changes: dict[str, dict[str, str]]) -> Path:
    rows = [{**r, **changes.get(r["member_id"], {})} for r in roster_rows()]
    return write_csv(tmp / name, rows, ROSTER_FIELDS)


def person(db: Path, member_id: str) -> tuple[str, str]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT role, branch_id FROM person WHERE member_id = ?", (member_id,)).fetchone()


def refused(db: Path, code: int, *args: str) -> str:
    """Run a command that must be refused with `code`; assert one line, no traceback and every table unchanged."""
    before = counts(db)
    result = cli(db, *args)
    assert result.code == code, (result.code, result.out, result.err)
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    assert counts(db) == before
    return result.err


def test_a_plain_member_cannot_make_himself_committee_secretary(db: Path, tmp_path: Path) -> None:
    coup = with_changes(tmp_path, "coup.csv", {"M027": {"role": "committee_secretary"}})
    err = refused(db, 1, "roster", "import", str(coup), "--actor", "M027", "--at", AT)
    assert "只有机关党委书记或党组可以导入名册" in err and "M027 是党员" in err, err
    assert person(db, "M027") == ("member", "B02")
    # … and so cannot approve afterwards either.
    refused(db, 1, "approve", KEY, "--branch", "B02", "--actor", "M027", "--at", AT)


@pytest.mark.parametrize("actor", ["M025", "M003", "I01"])  # a branch secretary, the office director, an inspector
def test_only_leaders_import_a_roster_or_load_a_plan(db: Path, tmp_path: Path, actor: str) -> None:
    same = with_changes(tmp_path, "same.csv", {"M026": {"email": "new@sfao.example.cn"}})
    refused(db, 1, "roster", "import", str(same), "--actor", actor, "--at", AT)
    plan = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    plan["title"] = "改过的标题"
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
    refused(db, 1, "plan", "load", str(tmp_path / "plan.yaml"), "--actor", actor, "--at", AT)
    for leader in ("M001", "M047"):  # the party group's secretary and deputy may, as the committee secretary may
        assert cli(db, "plan", "load", str(tmp_path / "plan.yaml"), "--actor", leader, "--at", AT).code == 0


def test_an_inspector_cannot_import_a_ballot_nor_another_branchs_secretary(db: Path, tmp_path: Path) -> None:
    plan = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    ballot = write_csv(tmp_path / "b05.csv", demo_ballots(plan, roster_path())["B05"], BALLOT_FIELDS)
    err = refused(db, 1, "ballot", "import", KEY, str(ballot), "--actor", "I01", "--at", AT)
    assert "督导组成员" in err, err
    err = refused(db, 1, "ballot", "import", KEY, str(ballot), "--actor", "M004", "--at", AT)  # B01's secretary
    assert "党支部 B05" in err, err
    refused(db, 1, "ballot", "import", KEY, str(ballot), "--actor", "M084", "--at", AT)  # a member of B05
    assert cli(db, "ballot", "import", KEY, str(ballot), "--actor", "M083", "--at", AT).code == 0  # B05's secretary


def test_nobody_and_no_one_are_refused(db: Path, tmp_path: Path) -> None:
    records = tmp_path / "r.csv"
    records.write_text("member_id,branch_id,kind,date,value\nM026,B02,good_deed,2024-07-01,\n", encoding="utf-8")
    plan = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    ballot = write_csv(tmp_path / "b05.csv", demo_ballots(plan, roster_path())["B05"], BALLOT_FIELDS)
    commands = [
        ["record", "import", str(records)],
        ["roster", "import", str(with_changes(tmp_path, "x.csv", {"M026": {"email": "x@sfao.example.cn"}}))],
        ["plan", "load", str(plan_2024_path())],
        ["ballot", "import", KEY, str(ballot)],
    ]
    for args in commands:
        err = refused(db, 2, *args, "--actor", "NOBODY", "--at", AT)
        assert "NOBODY" in err and "不是名册中的人员" in err, err
        err = refused(db, 2, *args, "--at", AT)  # --actor is required: no login-name default
        assert "--actor" in err


def test_a_branch_secretary_imports_records_of_their_own_branch_only(db: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "member_id,branch_id,kind,date,value\n"
        "M005,B01,good_deed,2024-07-01,\n"
        "M026,B02,good_deed,2024-07-01,\n",
        encoding="utf-8",
    )
    err = refused(db, 1, "record", "import", str(mixed), "--actor", "M004", "--at", AT)
    assert "第3行" in err and "B02" in err, err
    refused(db, 1, "record", "import", str(mixed), "--actor", "M005", "--at", AT)  # a plain member
    refused(db, 1, "record", "import", str(mixed), "--actor", "I01", "--at", AT)  # an inspector
    own = tmp_path / "own.csv"
    own.write_text("member_id,branch_id,kind,date,value\nM005,B01,good_deed,2024-07-01,\n", encoding="utf-8")
    assert cli(db, "record", "import", str(own), "--actor", "M004", "--at", AT).code == 0
    assert cli(db, "record", "import", str(mixed), "--actor", "M047", "--at", AT).code == 0  # a leader: any branch


def test_each_role_and_branch_change_is_its_own_log_entry(db: Path, tmp_path: Path) -> None:
    changed = with_changes(
        tmp_path, "changed.csv",
        {"M027": {"role": "branch_secretary"}, "M025": {"role": "member"},
         "M026": {"branch_id": "B03", "branch_name": "欧美处党支部"}},
    )
    result = cli(db, "roster", "import", str(changed), "--actor", "M002", "--at", AT)
    assert result.code == 0, result.err
    assert person(db, "M027") == ("branch_secretary", "B02") and person(db, "M026") == ("member", "B03")
    log = json.loads(cli(db, "audit", KEY, "--json").out)
    changes = [(e["member_id"], e["cause"], e["reason"], e["actor"]) for e in log if e["cause"] in ("role_change", "transfer")]
    assert changes == [
        ("M026", "transfer", "B02 → B03", "M002"),
        ("M025", "role_change", "branch_secretary → member", "M002"),
        ("M027", "role_change", "member → branch_secretary", "M002"),
    ]
    assert cli(db, "audit", KEY, "--verify").code == 0
    # The new secretary now may import B02's records; the old one no longer may.
    own = tmp_path / "b02.csv"
    own.write_text("member_id,branch_id,kind,date,value\nM028,B02,good_deed,2024-07-01,\n", encoding="utf-8")
    refused(db, 1, "record", "import", str(own), "--actor", "M025", "--at", AT)
    assert cli(db, "record", "import", str(own), "--actor", "M027", "--at", AT).code == 0


def test_the_first_roster_is_imported_by_a_leader_it_names(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    assert cli(db, "db", "upgrade").code == 0
    refused(db, 1, "roster", "import", str(roster_path()), "--actor", "M027")  # named, but a plain member
    refused(db, 1, "roster", "import", str(roster_path()), "--actor", "I01")  # named, an inspector
    err = refused(db, 1, "roster", "import", str(roster_path()), "--actor", "X404")  # not named at all
    assert "名册中没有 X404" in err, err
    assert cli(db, "roster", "import", str(roster_path()), "--actor", "M001").code == 0
    assert person(db, "M001") == ("party_group_secretary", "B01")
