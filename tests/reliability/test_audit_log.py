"""The audit log is append-only (no code updates or deletes it) and tamper-evident (`audit --verify` names the first
broken block after any raw edit, deletion or insertion)."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from states.db import ensure_schema, make_engine
from tests.fixtures import KEY, load_sample
from tests.reliability.synth import ROOT, backup, env_for, run_cli

SOURCES = [p for d in ("states", "readers", "notices", "reports", "cli", "flows", "migrations", "bench") for p in (ROOT / d).rglob("*.py")]
LOG_NAMES = r"(transition_log|audit_seal|TransitionLog|AuditSeal)"
FORBIDDEN = [
    re.compile(rf"\b(UPDATE|DELETE\s+FROM|TRUNCATE(\s+TABLE)?)\s+[\"']?{LOG_NAMES}\b", re.IGNORECASE),
    re.compile(rf"\b(update|delete)\(\s*{LOG_NAMES}\b"),
    re.compile(rf"\b{LOG_NAMES}\.__table__\.(update|delete)\("),
    re.compile(rf"query\(\s*{LOG_NAMES}\s*\)[^\n]*\.(update|delete)\("),
]


def test_no_code_updates_or_deletes_the_log() -> None:
    assert len(SOURCES) > 20
    offences = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for pattern in FORBIDDEN:
            for match in pattern.finditer(text):
                line = text[: match.start()].count("\n") + 1
                offences.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)}")
        # an ORM object of the log deleted or edited in place
        for match in re.finditer(r"session\.delete\((entry|seal|log_row|row)\)", text):
            offences.append(f"{path.relative_to(ROOT)}: {match.group(0)} (check it is not a log row)")
    assert offences == []


def test_the_scan_would_catch_an_offence() -> None:
    samples = [
        "session.execute(text('UPDATE transition_log SET actor = 1'))",
        "session.execute(delete(TransitionLog).where(TransitionLog.id == 1))",
        'conn.execute("DELETE FROM audit_seal")',
        "session.execute(update(AuditSeal).values(digest=''))",
    ]
    for sample in samples:
        assert any(p.search(sample) for p in FORBIDDEN), sample


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample campaign with several sealed blocks: imports, a sweep, operator actions."""
    folder = tmp_path_factory.mktemp("audit")
    db = folder / "audit.db"
    engine = make_engine(f"sqlite:///{db}")
    ensure_schema(engine)
    load_sample(engine)
    engine.dispose()
    env = env_for(db, folder / "outbox")
    for args in (
        ["sweep", KEY, "--at", "2024-03-25T00:00:01"],
        ["exempt", KEY, "--member", "M026", "--actor", "M025", "--reason", "abroad", "--at", "2024-04-01T10:00"],
        ["refer", KEY, "--member", "M027", "--actor", "M002", "--reason", "case", "--at", "2024-04-02T10:00"],
        ["sweep", KEY, "--at", "2024-05-01T00:00:01"],
    ):
        assert run_cli(args, env).code == 0
    assert run_cli(["audit", KEY, "--verify"], env).code == 0
    return db


def _blocks(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [b for (b,) in conn.execute("SELECT block FROM audit_seal ORDER BY id")]


TAMPERING = {
    "edit an actor": "UPDATE transition_log SET actor = 'M999' WHERE id = (SELECT min(id) FROM transition_log WHERE block = :block)",
    "edit a state": "UPDATE transition_log SET to_state = 'pledge' WHERE id = (SELECT max(id) FROM transition_log WHERE block = :block)",
    "edit a time": "UPDATE transition_log SET at = '2020-01-01 00:00:00.000000' WHERE id = (SELECT min(id) FROM transition_log WHERE block = :block)",
    "delete an entry": "DELETE FROM transition_log WHERE id = (SELECT max(id) FROM transition_log WHERE block = :block)",
    "insert an entry": "INSERT INTO transition_log (campaign_key, member_id, cause, actor, reason, at, block)"
    " VALUES ('sfao-2024', 'M005', 'exempt', 'M001', 'forged', '2024-04-03 00:00:00.000000', :block)",
    "edit a seal": "UPDATE audit_seal SET digest = (CASE WHEN substr(digest, 1, 1) = '0' THEN '1' ELSE '0' END)"
    " || substr(digest, 2) WHERE block = :block",
}


@pytest.mark.parametrize("how", list(TAMPERING))
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_tampering_is_detected_at_the_first_broken_block(logged: Path, tmp_path: Path, how: str, where: str) -> None:
    db = tmp_path / "tampered.db"
    backup(logged, db)
    blocks = _blocks(db)
    assert len(blocks) >= 5
    block = {"first": blocks[0], "middle": blocks[len(blocks) // 2], "last": blocks[-1]}[where]
    with closing(sqlite3.connect(db)) as conn, conn:
        changed = conn.execute(TAMPERING[how], {"block": block}).rowcount
    assert changed == 1
    result = run_cli(["audit", KEY, "--verify"], env_for(db, tmp_path / "outbox"))
    assert result.code == 1, result.out
    assert f"block {block}" in result.err, result.err
    assert "Traceback" not in result.err


def test_an_unsealed_entry_breaks_the_chain(logged: Path, tmp_path: Path) -> None:
    db = tmp_path / "stray.db"
    backup(logged, db)
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "INSERT INTO transition_log (campaign_key, member_id, cause, actor, reason, at, block)"
            " VALUES ('sfao-2024', 'M005', 'exempt', 'M001', 'forged', '2024-04-03 00:00:00.000000', 'stray')"
        )
    result = run_cli(["audit", KEY, "--verify"], env_for(db, tmp_path / "outbox"))
    assert result.code == 1 and "block stray" in result.err
