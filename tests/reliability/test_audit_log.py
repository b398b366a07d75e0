"""The audit log is append-only (no code updates or deletes it; the database's triggers refuse it) and tamper-evident:
`audit --verify` names the first broken block after any raw edit, deletion or insertion, a re-seal without the key,
or a tail cut off behind the latest anchor."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from readers import read_table
from states import anchors, audit, sweep
from states.db import ensure_schema, make_engine
from states.engine import Cause
from states.errors import Refused
from states.models import AuditLaneMerge, AuditSeal
from states.plan import load_plan, read_plan
from states.roster import import_roster
from states.sample import plan_2024_path, roster_path
from tests.fixtures import KEY, SEAL_KEY, at, load_sample
from tests.reliability.synth import ROOT, backup, counts, env_for, run_cli

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
    """The sample campaign with several sealed blocks: imports, operator actions and two sweeps of a chunk per
    branch, each chunk sealing on its lane (three seals on some lanes of the second sweep) merged at the sweep's end."""
    folder = tmp_path_factory.mktemp("audit")
    db = folder / "audit.db"
    engine = make_engine(f"sqlite:///{db}")
    ensure_schema(engine)
    load_sample(engine)
    engine.dispose()
    env = env_for(db, folder / "outbox", CAMPAIGN_CHUNK_BRANCHES="1")
    for args in (
        ["sweep", KEY, "--at", "2024-03-25T00:00:01"],
        ["exempt", KEY, "--member", "M026", "--actor", "M025", "--reason", "abroad", "--at", "2024-04-01T10:00"],
        ["refer", KEY, "--member", "M027", "--actor", "M002", "--reason", "case", "--at", "2024-04-02T10:00"],
        ["sweep", KEY, "--at", "2024-06-20T00:00:01"],
    ):
        assert run_cli(args, env).code == 0
    assert run_cli(["audit", KEY, "--verify"], env).code == 0
    return db


def _drop_triggers(conn: sqlite3.Connection) -> None:
    """What someone with the database file does first: the triggers make the log append-only only until then."""
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')


def _blocks(db: Path) -> list[str]:
    """The main chain's blocks, in order."""
    with closing(sqlite3.connect(db)) as conn:
        return [b for (b,) in conn.execute("SELECT block FROM audit_seal WHERE lane IS NULL ORDER BY id")]


def _entry_blocks(db: Path) -> list[str]:
    """The main chain's blocks that hold entries (not the merge seals), in order."""
    with closing(sqlite3.connect(db)) as conn:
        return [b for (b,) in conn.execute("SELECT block FROM audit_seal WHERE lane IS NULL AND scheme = 'hmac-sha256'"
                                           " ORDER BY id")]


def _lane_blocks(db: Path) -> list[str]:
    """Every lane's blocks, in seal order."""
    with closing(sqlite3.connect(db)) as conn:
        return [b for (b,) in conn.execute("SELECT block FROM audit_seal WHERE lane IS NOT NULL ORDER BY id")]


def _longest_lane(db: Path) -> list[str]:
    """The blocks of the lane with the most seals (the first such lane), in order."""
    with closing(sqlite3.connect(db)) as conn:
        (lane,) = conn.execute("SELECT lane FROM audit_seal WHERE lane IS NOT NULL GROUP BY lane"
                               " ORDER BY count(*) DESC, min(id) LIMIT 1").fetchone()
        return [b for (b,) in conn.execute("SELECT block FROM audit_seal WHERE lane = ? ORDER BY id", (lane,))]


def _says_why_in_chinese(err: str) -> None:
    """The reason after the broken block reads in Chinese, with no word of the English reason."""
    why = err.strip().rsplit("：", 1)[-1]
    assert re.search("[\u4e00-\u9fff]", why), err
    assert not re.search(r"\b(it|its|seal|seals|entries|lanes?|chain|sealed|merges?)\b", why), err


TAMPERING = {
    "edit an actor": "UPDATE transition_log SET actor = 'M999' WHERE id = (SELECT min(id) FROM transition_log WHERE block = :block)",
    "edit a state": "UPDATE transition_log SET to_state = 'pledge' WHERE id = (SELECT max(id) FROM transition_log WHERE block = :block)",
    "edit a time": "UPDATE transition_log SET at = '2020-01-01 00:00:00.000000' WHERE id = (SELECT min(id) FROM transition_log WHERE block = :block)",
    "edit a recorded time": "UPDATE transition_log SET recorded_at = '2020-01-01 00:00:00.000000' WHERE id = (SELECT min(id) FROM transition_log WHERE block = :block)",
    "NULL made ''": "UPDATE transition_log SET flow_run_id = '' WHERE id = (SELECT min(id) FROM transition_log WHERE block = :block)",
    "a boundary moved": "UPDATE transition_log SET actor = substr(actor, 1, length(actor) - 1), reason = substr(actor, -1) || reason WHERE id = (SELECT min(id) FROM transition_log WHERE block = :block)",
    "delete an entry": "DELETE FROM transition_log WHERE id = (SELECT max(id) FROM transition_log WHERE block = :block)",
    "insert an entry": "INSERT INTO transition_log (campaign_key, member_id, cause, actor, reason, at, block)"
    " VALUES ('sfao-2024', 'M005', 'exempt', 'M001', 'forged', '2024-04-03 00:00:00.000000', :block)",
    "edit a seal": "UPDATE audit_seal SET digest = (CASE WHEN substr(digest, 1, 1) = '0' THEN '1' ELSE '0' END)"
    " || substr(digest, 2) WHERE block = :block",
}


@pytest.mark.parametrize("how", list(TAMPERING))
@pytest.mark.parametrize("where", ["first", "middle", "last", "lane's first", "lane's middle", "lane's last"])
def test_tampering_is_detected_at_the_first_broken_block(logged: Path, tmp_path: Path, how: str, where: str) -> None:
    """On the main chain and on a sweep chunk's lane (after its merge), at each place."""
    db = tmp_path / "tampered.db"
    backup(logged, db)
    blocks = _longest_lane(db) if where.startswith("lane") else _entry_blocks(db)
    assert len(blocks) >= 3
    block = {"first": blocks[0], "middle": blocks[len(blocks) // 2], "last": blocks[-1]}[where.split()[-1]]
    with closing(sqlite3.connect(db)) as conn, conn:
        _drop_triggers(conn)
        changed = conn.execute(TAMPERING[how], {"block": block}).rowcount
    assert changed == 1
    result = run_cli(["audit", KEY, "--verify"], env_for(db, tmp_path / "outbox"))
    assert result.code == 1, result.out
    assert f"区块 {block}" in result.err, result.err
    _says_why_in_chinese(result.err)
    assert "Traceback" not in result.err


def test_an_unsealed_entry_breaks_the_chain(logged: Path, tmp_path: Path) -> None:
    db = tmp_path / "stray.db"
    backup(logged, db)
    with closing(sqlite3.connect(db)) as conn, conn:
        _drop_triggers(conn)
        conn.execute(
            "INSERT INTO transition_log (campaign_key, member_id, cause, actor, reason, at, block)"
            " VALUES ('sfao-2024', 'M005', 'exempt', 'M001', 'forged', '2024-04-03 00:00:00.000000', 'stray')"
        )
    result = run_cli(["audit", KEY, "--verify"], env_for(db, tmp_path / "outbox"))
    assert result.code == 1 and "区块 stray" in result.err


def _copy(logged: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the logged database with an anchor file of its own."""
    db = tmp_path / "copy.db"
    backup(logged, db)
    return db, env_for(db, tmp_path / "outbox", CAMPAIGN_AUDIT_ANCHORS=str(tmp_path / "anchors"))


def _session(db: Path) -> Session:
    return Session(make_engine(f"sqlite:///{db}"))


def _anchor(db: Path, file: Path) -> audit.Head:
    """The service's anchor of the copy's head, as a write command leaves it."""
    with _session(db) as session:
        head = audit.head(session)
    assert head is not None
    anchors.append(file, anchors.database_label(make_url(f"sqlite:///{db}")), head)
    return head


def _reseal(db: Path, key: bytes | None) -> None:
    """What someone with the database file (and perhaps a key) does after an edit: every seal recomputed in order,
    each on its chain (main or lane), with the old unkeyed digest (`key` None: a merge seal then becomes an unkeyed
    seal of its empty block) or keyed under `key`. Lane heads are left as merged (the edits here are on the main
    chain)."""
    with closing(sqlite3.connect(db)) as conn, conn:
        _drop_triggers(conn)
    with _session(db) as session, session.begin():
        heads: dict[str | None, str] = {}
        seals = select(AuditSeal.id, AuditSeal.block, AuditSeal.at, AuditSeal.lane, AuditSeal.scheme).order_by(AuditSeal.id)
        for seal_id, block, at, lane, scheme in session.execute(seals).all():
            previous = heads.get(lane) or (audit.lane_genesis(key, lane) if lane and key else audit.GENESIS)
            if key is None:
                _, digest = audit._legacy_digest(session, block, previous)
                scheme = None
            elif scheme == audit.MERGED:
                merged = select(AuditLaneMerge.lane, AuditLaneMerge.head, AuditLaneMerge.seals, AuditLaneMerge.entries)
                rows = [tuple(r) for r in session.execute(merged.where(AuditLaneMerge.merge_block == block))]
                digest = audit.merge_digest(key, previous, block, at, rows)
            else:
                _, digest = audit.block_digest(session, key, block, previous, at)
                scheme = audit.KEYED
            session.execute(
                text("UPDATE audit_seal SET digest = :d, prev_digest = :p, scheme = :s WHERE id = :i"),
                {"d": digest, "p": previous, "s": scheme, "i": seal_id},
            )
            heads[lane] = digest


def test_the_database_itself_refuses_to_rewrite_the_log(logged: Path, tmp_path: Path) -> None:
    db, env = _copy(logged, tmp_path)
    before = counts(db)
    with closing(sqlite3.connect(db)) as conn:
        for statement in ("UPDATE transition_log SET actor = 'M999'", "DELETE FROM transition_log",
                          "UPDATE audit_seal SET digest = ''", "DELETE FROM audit_seal"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
    assert counts(db) == before
    assert run_cli(["audit", KEY, "--verify"], env).code == 0


def test_a_decision_edited_and_resealed_without_the_key_fails(logged: Path, tmp_path: Path) -> None:
    db, env = _copy(logged, tmp_path)
    with closing(sqlite3.connect(db)) as conn, conn:
        _drop_triggers(conn)
        block = conn.execute("SELECT block FROM transition_log WHERE cause = 'exempt' AND actor = 'M025'").fetchone()[0]
        conn.execute("UPDATE transition_log SET actor = 'M002' WHERE cause = 'exempt' AND actor = 'M025'")
    _reseal(db, None)
    result = run_cli(["audit", KEY, "--verify"], env)
    assert result.code == 1
    # Unkeyed seals pass for old ones only on the main chain: the first lane seal is where it breaks.
    first_lane = _lane_blocks(db)[0]
    assert f"区块 {first_lane}" in result.err and "此处应为带密钥的封印" in result.err, result.err
    _reseal(db, b"an attacker's own key of 32 bytes")
    result = run_cli(["audit", KEY, "--verify"], env)
    assert result.code == 1 and f"区块 {_blocks(db)[0]}" in result.err, result.err
    assert block in _blocks(db)


def test_a_tail_cut_off_verifies_alone_but_fails_against_the_anchor(logged: Path, tmp_path: Path) -> None:
    db, env = _copy(logged, tmp_path)
    anchor_file = tmp_path / "anchors"
    head = _anchor(db, anchor_file)
    assert stat.S_IMODE(anchor_file.stat().st_mode) == 0o600
    assert run_cli(["audit", KEY, "--verify"], env).code == 0
    with closing(sqlite3.connect(db)) as conn, conn:
        _drop_triggers(conn)
        last = _blocks(db)[-1]  # the second sweep's merge: its lanes are left pending
        conn.execute("DELETE FROM transition_log WHERE block = ?", (last,))
        conn.execute("DELETE FROM audit_seal WHERE block = ?", (last,))
        conn.execute("DELETE FROM audit_lane_merge WHERE merge_block = ?", (last,))
    # The chain alone cannot tell a shorter log from a complete one ...
    alone = run_cli(["audit", KEY, "--verify"], {**env, "CAMPAIGN_AUDIT_ANCHORS": str(tmp_path / "none")})
    assert alone.code == 0, alone.err
    # ... the anchor outside the database can: found by default, or given.
    for args in ([], ["--anchor", str(anchor_file)]):
        result = run_cli(["audit", KEY, "--verify", *args], env)
        assert result.code == 1, result.out
        assert f"锚定的封印 {head.seal_id} 不在审计链上" in result.err, result.err
    # Writing on after the cut (a new head, anchored) does not hide it: every anchor since the last restore counts.
    assert run_cli(["refer", KEY, "--member", "M030", "--actor", "M002", "--reason", "case", "--at", "2024-06-21T10:00"], env).code == 0
    assert len(anchor_file.read_text().splitlines()) == 2
    result = run_cli(["audit", KEY, "--verify"], env)
    assert result.code == 1 and f"锚定的封印 {head.seal_id} " in result.err, result.err


def test_a_chain_rewritten_with_the_key_fails_against_an_anchor_kept_elsewhere(logged: Path, tmp_path: Path) -> None:
    db, env = _copy(logged, tmp_path)
    elsewhere = tmp_path / "artifact-anchor"
    head = _anchor(db, elsewhere)
    with closing(sqlite3.connect(db)) as conn, conn:
        _drop_triggers(conn)
        conn.execute("UPDATE transition_log SET actor = 'M002' WHERE cause = 'exempt' AND actor = 'M025'")
    _reseal(db, SEAL_KEY)  # someone with the server's shell holds the key
    assert run_cli(["audit", KEY, "--verify"], {**env, "CAMPAIGN_AUDIT_ANCHORS": str(tmp_path / "none")}).code == 0
    result = run_cli(["audit", KEY, "--verify", "--anchor", str(elsewhere)], env)
    assert result.code == 1 and f"锚定的封印 {head.seal_id} 摘要已不同" in result.err, result.err


def test_entries_record_the_real_time_they_were_written(logged: Path) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    entries = json.loads(run_cli(["audit", KEY, "--json"], env_for(logged, logged.parent / "outbox")).out)
    assert entries and all(set(e) >= {"at", "recorded_at"} for e in entries)
    for entry in entries:
        recorded = dt.datetime.fromisoformat(entry["recorded_at"])
        assert before < recorded <= dt.datetime.now(dt.UTC), entry  # the clock's, not T's (2024)
        assert dt.datetime.fromisoformat(entry["at"]).year == 2024


def _legacy_sample(folder: Path) -> Path:
    """A database whose first blocks were sealed before seals were keyed (plain SHA-256, scheme NULL)."""
    db = folder / "legacy.db"
    engine = make_engine(f"sqlite:///{db}")
    ensure_schema(engine)
    when = at("2024-03-01T09:00")
    with Session(engine) as session, session.begin():
        import_roster(session, read_table(roster_path()), "M002", when)
        load_plan(session, read_plan(plan_2024_path())[0], "M002", when)
        block = session.info.pop("audit_block")
        count, digest = audit._legacy_digest(session, block, audit.GENESIS)
        session.add(AuditSeal(block=block, entries=count, digest=digest, prev_digest=audit.GENESIS, at=when))
    engine.dispose()
    return db


def test_a_chain_from_before_keyed_seals_is_vouched_for_by_a_keyed_seal(tmp_path: Path) -> None:
    db = _legacy_sample(tmp_path)
    env = env_for(db, tmp_path / "outbox", CAMPAIGN_AUDIT_ANCHORS=str(tmp_path / "anchors"))
    result = run_cli(["audit", KEY, "--verify"], env)
    assert result.code == 1 and "未用密钥加封" in result.err, result.err
    assert run_cli(["db", "reseal"], env).code == 0
    assert run_cli(["audit", KEY, "--verify"], env).code == 0
    assert run_cli(["sweep", KEY, "--at", "2024-03-25T00:00:01"], env).code == 0
    assert run_cli(["audit", KEY, "--verify"], env).code == 0
    # The old blocks are vouched for: edit one and re-seal it the old way, and the keyed seal after it breaks.
    with closing(sqlite3.connect(db)) as conn, conn:
        _drop_triggers(conn)
        conn.execute("UPDATE transition_log SET actor = 'M999' WHERE id = 1")
    first = _blocks(db)[0]
    with _session(db) as session, session.begin():
        _, digest = audit._legacy_digest(session, first, audit.GENESIS)
        session.execute(text("UPDATE audit_seal SET digest = :d WHERE block = :b"), {"d": digest, "b": first})
    result = run_cli(["audit", KEY, "--verify"], env)
    assert result.code == 1 and f"区块 {_blocks(db)[1]}" in result.err, result.err


def test_a_seal_does_not_depend_on_how_entries_are_batched(logged: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _session(logged) as session:
        block, entries, digest, previous, when = session.execute(
            select(AuditSeal.block, AuditSeal.entries, AuditSeal.digest, AuditSeal.prev_digest, AuditSeal.at)
            .order_by(AuditSeal.entries.desc()).limit(1)
        ).one()
        assert entries > 7
        monkeypatch.setattr(audit, "BATCH", 3)
        assert audit.block_digest(session, SEAL_KEY, block, previous, when) == (entries, digest)


# -- lanes: a sweep's chunks seal on lanes of their own, merged into the main chain at the sweep's end -------------

FLIP = "(CASE WHEN substr({0}, 1, 1) = '0' THEN '1' ELSE '0' END) || substr({0}, 2)"
FIRST_MERGED = "(SELECT min(lane) FROM audit_lane_merge WHERE merge_block = :block)"
MERGE_TAMPERING = {
    "edit the merge seal": [f"UPDATE audit_seal SET digest = {FLIP.format('digest')} WHERE block = :block"],
    "edit a merged head": [f"UPDATE audit_lane_merge SET head = {FLIP.format('head')} WHERE lane = {FIRST_MERGED}"],
    "edit a merged count": [f"UPDATE audit_lane_merge SET entries = entries + 1 WHERE lane = {FIRST_MERGED}"],
    "drop a merge record": [f"DELETE FROM audit_lane_merge WHERE lane = {FIRST_MERGED}"],
    "add a merge record": ["INSERT INTO audit_lane_merge (lane, merge_block, head, seals, entries)"
                           " SELECT lane || 'x', merge_block, head, seals, entries FROM audit_lane_merge"
                           f" WHERE lane = {FIRST_MERGED}"],
    "drop a merged lane": [
        f"DELETE FROM transition_log WHERE block IN (SELECT block FROM audit_seal WHERE lane = {FIRST_MERGED})",
        f"DELETE FROM audit_seal WHERE lane = {FIRST_MERGED}",
    ],
    "cut a merged lane's tail": [
        "DELETE FROM transition_log WHERE block = (SELECT block FROM audit_seal WHERE id = (SELECT max(id) FROM"
        f" audit_seal WHERE lane = {FIRST_MERGED}))",
        f"DELETE FROM audit_seal WHERE id = (SELECT max(id) FROM audit_seal WHERE lane = {FIRST_MERGED})",
    ],
}


def _merges(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [b for (b,) in conn.execute("SELECT block FROM audit_seal WHERE scheme = 'hmac-merge' ORDER BY id")]


@pytest.mark.parametrize("how", list(MERGE_TAMPERING))
@pytest.mark.parametrize("which", ["first", "last"])
def test_tampering_with_a_merge_is_detected_at_the_merge_seal(logged: Path, tmp_path: Path, how: str, which: str) -> None:
    db, env = _copy(logged, tmp_path)
    merges = _merges(db)
    assert len(merges) == 2
    block = merges[0] if which == "first" else merges[-1]
    with closing(sqlite3.connect(db)) as conn, conn:
        _drop_triggers(conn)
        for statement in MERGE_TAMPERING[how]:
            assert conn.execute(statement, {"block": block}).rowcount >= 1, statement
    result = run_cli(["audit", KEY, "--verify"], env)
    assert result.code == 1, result.out
    assert f"区块 {block}" in result.err, result.err
    _says_why_in_chinese(result.err)


def _lane_seal(db: Path, lane: str, key: bytes) -> str:
    """What someone holding `key` (an attacker's own, or the service's on a stolen shell) or a unit that went on
    running after its sweep was merged would leave: one entry sealed on `lane`, chained to its head, inserted
    directly (past the refusal `seal` gives). Returns the block."""
    with _session(db) as session, session.begin():
        when = at("2024-06-20T00:00:01")
        audit.log(session, campaign_key=KEY, member_id="M005", cause="forged", actor="M001", at=when)
        block = session.info.pop("audit_block")
        previous = session.scalar(select(AuditSeal.digest).where(AuditSeal.lane == lane).order_by(AuditSeal.id.desc()).limit(1))
        count, digest = audit.block_digest(session, key, block, previous or audit.lane_genesis(key, lane), when)
        session.add(AuditSeal(block=block, entries=count, digest=digest, prev_digest=previous or audit.lane_genesis(key, lane),
                              at=when, scheme=audit.KEYED, lane=lane))
    return block


def _a_merged_lane(db: Path) -> str:
    with closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("SELECT min(lane) FROM audit_lane_merge").fetchone()[0])


@pytest.mark.parametrize("key", [SEAL_KEY, b"an attacker's own key of 32 bytes"], ids=["the key", "another key"])
@pytest.mark.parametrize("lane", ["the merged lane", "a new lane of the merged sweep"])
def test_a_lane_written_after_its_merge_fails(logged: Path, tmp_path: Path, key: bytes, lane: str) -> None:
    db, env = _copy(logged, tmp_path)
    merged = _a_merged_lane(db)
    target = merged if lane == "the merged lane" else merged.rsplit("/", 1)[0] + "/B99"
    block = _lane_seal(db, target, key)
    result = run_cli(["audit", KEY, "--verify"], env)
    assert result.code == 1, result.out
    assert f"区块 {block}" in result.err, result.err
    if key == SEAL_KEY:  # sealed rightly on its own, wrong only in where it stands
        why = "之后才加封到该通道" if lane == "the merged lane" else "并入该次扫描的通道之后才加入"
        assert why in result.err, result.err


def test_a_lane_merged_twice_fails(logged: Path, tmp_path: Path) -> None:
    """Even by someone holding the key who rebuilt the merge table without its primary key."""
    db, env = _copy(logged, tmp_path)
    lane = _a_merged_lane(db)
    with closing(sqlite3.connect(db)) as conn, conn:
        _drop_triggers(conn)
        conn.execute("CREATE TABLE loose AS SELECT * FROM audit_lane_merge")
        conn.execute("DROP TABLE audit_lane_merge")
        conn.execute("ALTER TABLE loose RENAME TO audit_lane_merge")
    with _session(db) as session, session.begin():
        when = at("2024-06-21T00:00:00")
        previous = session.scalar(select(AuditSeal.digest).where(AuditSeal.lane.is_(None)).order_by(AuditSeal.id.desc()).limit(1))
        row = session.execute(select(AuditLaneMerge.head, AuditLaneMerge.seals, AuditLaneMerge.entries)
                              .where(AuditLaneMerge.lane == lane)).one()
        block = "again"
        digest = audit.merge_digest(SEAL_KEY, previous, block, when, [(lane, *row)])
        session.execute(text("INSERT INTO audit_lane_merge VALUES (:l, :b, :h, :s, :e)"),
                        {"l": lane, "b": block, "h": row[0], "s": row[1], "e": row[2]})
        session.add(AuditSeal(block=block, entries=1, digest=digest, prev_digest=previous, at=when, scheme=audit.MERGED))
    result = run_cli(["audit", KEY, "--verify"], env)
    assert result.code == 1 and "区块 again" in result.err and f"它再次并入通道 {lane}" in result.err, result.err


def test_a_unit_of_a_merged_sweep_is_refused_its_seal(logged: Path) -> None:
    """A chunk unit still running after its sweep was merged (a stopped sweep's, merged by the next): its seal is
    refused, so its transaction keeps nothing and the chain stays whole."""
    lane = _a_merged_lane(logged)
    with _session(logged) as session, session.begin():
        audit.on_lane(session, lane.rsplit("/", 1)[0] + "/B99")
        audit.log(session, campaign_key=KEY, member_id="M005", cause="sweep", actor="system", at=at("2024-06-20T00:00:01"))
        with pytest.raises(Refused, match="merged into the main chain already"):
            audit.seal(session, at("2024-06-20T00:00:01"), SEAL_KEY)
        session.rollback()


def _stopped_sweep(db: Path, when: str) -> str:
    """A sweep that stopped before its finish unit (a crash): every other unit run and sealed. Its sweep id."""
    engine = make_engine(f"sqlite:///{db}")
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            plan = sweep.plan_sweep(session, KEY, at(when), 1)
        cause = Cause(cause="sweep", actor="system", sweep_id=plan.sweep_id)
        units = list(sweep.run_units(plan))
        assert units[-1][0] == "finish" and plan.due
        for unit in units[:-1]:
            with session.begin():
                sweep.run_unit(session, plan, unit, cause)
                audit.seal(session, at(when), SEAL_KEY)
    engine.dispose()
    return plan.sweep_id


def test_a_sweep_stopped_before_its_end_leaves_pending_lanes_that_its_re_run_merges(logged: Path, tmp_path: Path) -> None:
    db, env = _copy(logged, tmp_path)
    env = {**env, "CAMPAIGN_CHUNK_BRANCHES": "1"}
    stopped = _stopped_sweep(db, "2024-08-01T00:00:01")
    with _session(db) as session:
        verdict = audit.verify(session, SEAL_KEY)
        head = audit.head(session)
        assert head is not None and head == verdict.head
        newest = session.scalar(select(AuditSeal.lane).order_by(AuditSeal.id.desc()).limit(1))
        head_lane = session.scalar(select(AuditSeal.lane).where(AuditSeal.id == head.seal_id))
    assert newest is not None and head_lane is None  # the newest seals are the lanes'; the head is the main chain's
    assert verdict.broken is None and verdict.pending
    assert {p.sweep for p in verdict.pending} == {stopped} and sum(p.entries for p in verdict.pending) > 0
    # Reported, every time, not passed over: exit 0 (nothing was altered), a note naming the sweep.
    result = run_cli(["audit", KEY, "--verify"], env)
    assert result.code == 0 and stopped in result.err and "尚未并入主链" in result.err, result.err
    # A pending lane's seals are checked all the same.
    tampered = tmp_path / "tampered.db"
    backup(db, tampered)
    with closing(sqlite3.connect(tampered)) as conn, conn:
        _drop_triggers(conn)
        block = conn.execute("SELECT block FROM audit_seal WHERE lane LIKE ? ORDER BY id LIMIT 1", (f"%/{stopped}/%",)).fetchone()[0]
        conn.execute("UPDATE transition_log SET actor = 'M999' WHERE id = (SELECT min(id) FROM transition_log WHERE block = ?)", (block,))
    result = run_cli(["audit", KEY, "--verify"], env_for(tampered, tmp_path / "outbox"))
    assert result.code == 1 and f"区块 {block}" in result.err, result.err
    # The re-run finishes the firing (the stopped sweep's chunks are done and skipped) and merges its lanes.
    assert run_cli(["sweep", KEY, "--at", "2024-08-01T00:00:01"], env).code == 0
    result = run_cli(["audit", KEY, "--verify"], env)
    assert result.code == 0 and result.err == "", result.err
    with closing(sqlite3.connect(db)) as conn:
        lanes = conn.execute("SELECT count(DISTINCT lane) FROM audit_seal WHERE lane LIKE ?", (f"%/{stopped}/%",)).fetchone()[0]
        merged = conn.execute("SELECT count(*) FROM audit_lane_merge WHERE lane LIKE ?", (f"%/{stopped}/%",)).fetchone()[0]
    assert lanes == merged == len(verdict.pending)
