"""`campaign db check-facts [--repair]`: the kept facts recomputed from the evidence, and the members per state
from the progress rows, and compared."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml

from states.sample import RECORD_FIELDS, demo_records, plan_2024_path, roster_path, write_csv


def test_check_facts_finds_a_tampered_row_and_repairs_it(cli, tmp_path: Path) -> None:  # noqa: ANN001
    assert cli("roster", "import", str(roster_path()), "--actor", "M002").code == 0
    assert cli("plan", "load", str(plan_2024_path()), "--actor", "M002").code == 0
    plan = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    records = write_csv(tmp_path / "records.csv", demo_records(plan, roster_path()), RECORD_FIELDS)
    assert cli("record", "import", str(records), "--actor", "M002").code == 0
    clean = cli("db", "check-facts")
    assert (clean.code, clean.out.strip()) == (0, "统计数据与原始记录一致")
    assert cli("db", "check-facts", "--lang", "en").out.strip() == "facts agree with the evidence"

    with sqlite3.connect(tmp_path / "campaign.db") as db:
        (windows,) = db.execute("SELECT count(*) FROM member_fact WHERE member_id = 'M054'").fetchone()
        (branch_rows,) = db.execute("SELECT count(*) FROM branch_fact WHERE branch_id = 'B01'").fetchone()
        db.execute("UPDATE member_fact SET study_hours = study_hours + 1 WHERE member_id = 'M054'")
        db.execute("DELETE FROM branch_fact WHERE branch_id = 'B01'")
        (enrolled,) = db.execute("SELECT count(*) FROM member_progress WHERE state = 'enrolled'").fetchone()
        db.execute("INSERT INTO progress_count (campaign_key, subject, state, delta) "
                   "VALUES ('sfao-2024', 'member', 'enrolled', -1)")
    found = cli("db", "check-facts")
    assert found.code == 1
    assert f"sfao-2024：党员统计数据有 {windows} 行与原始记录不符" in found.err, found.err
    assert f"sfao-2024：党支部统计数据有 {branch_rows} 行与原始记录不符" in found.err, found.err
    assert f"sfao-2024: {windows} member facts rows differ" in cli("db", "check-facts", "--lang", "en").err
    assert f"member enrolled: kept {enrolled - 1}, counted {enrolled}" in found.err, found.err
    assert cli("db", "check-facts", "--repair").code == 2  # who repairs must be named
    assert cli("db", "check-facts", "--repair", "--actor", "M005").code == 1  # a plain member may not
    repaired = cli("db", "check-facts", "--repair", "--actor", "M002")
    assert repaired.code == 0, repaired.err
    assert cli("db", "check-facts").code == 0
