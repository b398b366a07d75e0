"""Hostile input: the roster, records, ballot and plan readers fuzzed through the `campaign` entry point in-process.

Every input is imported whole (exit 0) or refused whole: exit 2 for a malformed file (one line on stderr naming the
file), exit 1 for what the rules refuse; never a traceback, never a partial write (every table counted before and
after). `CAMPAIGN_FUZZ_EXAMPLES` (default 60) sets the hypothesis examples per reader; FUZZ_CASES counts what ran.
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from states.db import ensure_schema, make_engine
from states.records import BRANCH_KINDS, MEMBER_KINDS
from states.roster import ROLES
from states.sample import plan_2024_path
from tests.fixtures import KEY, load_sample
from tests.reliability.synth import backup, counts, env_for, run_cli

EXAMPLES = int(os.environ.get("CAMPAIGN_FUZZ_EXAMPLES", "60"))
FUZZ_CASES: dict[str, int] = {}
FORMULA = "=cmd|' /C calc'!A0"
INJECTION = "'; DROP TABLE person; --"
HOSTILE = [
    "", " ", FORMULA, INJECTION, "+1+1", "@SUM(A1)", "-2+3", "<script>alert(1)</script>", "x" * 5000, "\u202eevil",
    '"', '""', '","', "a\nb", "a\r\nb", "\t", "NaN", "nan", "inf", "-inf", "1e308", "1e309", "-1", "0", "1e-320",
    "２", "0x10", "1_000", "四", "\ufeff1", "2024-02-30", "2024-13-01", "0000-01-01", "9999-12-31", "2024/04/01",
]
NUMBERS = ["0", "1", "3", "4", "2.5", "50", "100", "-1", "-0", "NaN", "inf", "1e308", "99999999999", "1.5", " 3 ", "3.0"]
DATES = ["2024-04-01", "2024-04-30", "2024-05-01", "2024-03-24", "2023-01-01", "2024-02-29", "2023-02-29", "2024-04-31"]
MEMBERS = ["M026", "M027", "M025", "M005", "M100", "X999", "I01"]
BRANCHES = ["B02", "B01", "B05", "B99"]


def _pick(values: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(values), st.sampled_from(HOSTILE), st.text(max_size=12))


def _csv(header: list[str], rows: list[list[str]], quote_all: bool, crlf: bool) -> str:
    def cell(value: str) -> str:
        if quote_all or any(c in value for c in ',"\r\n'):
            return '"' + value.replace('"', '""') + '"'
        return value

    end = "\r\n" if crlf else "\n"
    return end.join(",".join(cell(v) for v in row) for row in [header, *rows]) + end


def _encode(text: str, encoding: str, damage: int | None, rng: random.Random) -> bytes:
    if encoding == "gbk":
        try:
            raw = text.encode("gbk")
        except UnicodeEncodeError:
            raw = text.encode("gb18030")
    else:
        raw = text.encode(encoding)
    if damage is not None and raw:
        at = damage % len(raw)
        raw = raw[:at] + rng.choice([b"\x00", b"\xff\xfe", b"\x80", b"\xc3", b"\"", b"\n", b","]) + raw[at:]
    return raw


ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "gbk", "utf-16"])
DAMAGE = st.one_of(st.none(), st.none(), st.integers(min_value=0, max_value=10_000))


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    db = folder / "office.db"
    engine = make_engine(f"sqlite:///{db}")
    ensure_schema(engine)
    load_sample(engine)
    engine.dispose()
    assert run_cli(["sweep", KEY, "--at", "2024-03-25T00:00:01"], env_for(db, folder / "outbox")).code == 0
    return db


class Target:
    """One database for a reader's whole fuzz run: every call is checked against its own before and after."""

    def __init__(self, office: Path, folder: Path, name: str) -> None:
        self.db = folder / f"{name}.db"
        backup(office, self.db)
        self.env = env_for(self.db, folder / "outbox")
        self.folder, self.name, self.n = folder, name, 0

    def run(self, args: Callable[[str], list[str]], data: bytes, suffix: str = ".csv") -> tuple[int, dict[str, int], dict[str, int]]:
        self.n += 1
        path = self.folder / f"{self.name}-{self.n}{suffix}"
        path.write_bytes(data)
        before = counts(self.db)
        result = run_cli(args(str(path)), self.env)
        after = counts(self.db)
        FUZZ_CASES[self.name] = FUZZ_CASES.get(self.name, 0) + 1
        assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
        assert result.code in (0, 1, 2), (result.code, result.err)
        if result.code:
            assert after == before, f"refused (exit {result.code}: {result.err.strip()}) yet the database changed"
            assert result.err.startswith("campaign: ") and result.err.count("\n") == 1, result.err
            if result.code == 2 and "没有活动" not in result.err:
                assert str(path) in result.err, f"exit 2 without naming the file: {result.err}"
        path.unlink()
        return result.code, before, after


FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def test_records(office: Path, tmp_path: Path) -> None:
    target = Target(office, tmp_path, "records")
    kinds = [*MEMBER_KINDS, *BRANCH_KINDS, "bogus"]

    @FUZZ
    @given(
        rows=st.lists(
            st.tuples(_pick(MEMBERS + [""]), _pick(BRANCHES), _pick(kinds), _pick(DATES), _pick(NUMBERS + ["pass", "fail"])),
            min_size=1, max_size=8,
        ),
        quote_all=st.booleans(), crlf=st.booleans(), encoding=ENCODINGS, damage=DAMAGE, seed=st.integers(0, 9),
    )
    def case(rows: list[tuple[str, ...]], quote_all: bool, crlf: bool, encoding: str, damage: int | None, seed: int) -> None:
        text = _csv(["member_id", "branch_id", "kind", "date", "value"], [list(r) for r in rows], quote_all, crlf)
        code, before, after = target.run(
            lambda p: ["record", "import", p, "--actor", "M002", "--at", "2024-04-10T10:00"],
            _encode(text, encoding, damage, random.Random(seed)),
        )
        if code == 0 and damage is None and encoding != "utf-16":
            added = after["evidence"] - before["evidence"]
            assert added in (0, len([r for r in rows if any(v.strip() for v in r)])), "a partial import"

    case()


def test_records_that_must_import_whole(office: Path, tmp_path: Path) -> None:
    """Hostile but valid text is imported whole and kept inert: formula and SQL in a ref, GBK, a BOM."""
    target = Target(office, tmp_path, "records-valid")
    text = _csv(
        ["member_id", "branch_id", "kind", "date", "value", "ref"],
        [["M026", "B02", "study_self", "2024-04-01", "3", INJECTION], ["M026", "B02", "study_self", "2024-04-02", "2", "r2"],
         ["", "B02", "discussion_meeting", "2024-04-03", "10", "r3"]],
        quote_all=True, crlf=True,
    )
    for encoding in ("utf-8", "utf-8-sig", "gb18030", "gbk"):
        code, before, after = target.run(
            lambda p: ["record", "import", p, "--actor", "M002", "--at", "2024-04-10T10:00"],
            _encode(text, encoding, None, random.Random(0)),
        )
        assert code == 0
    assert counts(target.db)["person"] == counts(office)["person"]


def test_roster(office: Path, tmp_path: Path) -> None:
    target = Target(office, tmp_path, "roster")

    @FUZZ
    @given(
        rows=st.lists(
            st.tuples(
                _pick(MEMBERS + ["N001", "N002"]), _pick(["新成员", "O'Brien", "张三"]), _pick(BRANCHES + [""]),
                _pick(["亚洲处党支部", "新支部"]), _pick(["省外办"]), _pick(list(ROLES) + ["admin"]),
                _pick(["a@b.cn", "", "not-an-email"]), _pick(["zh-CN", "en", "fr"]),
            ),
            min_size=1, max_size=6,
        ),
        quote_all=st.booleans(), crlf=st.booleans(), encoding=ENCODINGS, damage=DAMAGE, seed=st.integers(0, 9),
    )
    def case(rows: list[tuple[str, ...]], quote_all: bool, crlf: bool, encoding: str, damage: int | None, seed: int) -> None:
        header = ["member_id", "name", "branch_id", "branch_name", "unit", "role", "email", "locale"]
        text = _csv(header, [list(r) for r in rows], quote_all, crlf)
        target.run(
            lambda p: ["roster", "import", p, "--actor", "M002", "--at", "2024-04-10T10:00"],
            _encode(text, encoding, damage, random.Random(seed)),
        )

    case()


def test_ballot(office: Path, tmp_path: Path) -> None:
    target = Target(office, tmp_path, "ballot")
    counts_ = ["0", "1", "2", "3", "20", "22", "-1", "NaN", "inf", "1e308", "2.5", "100000000"]

    @FUZZ
    @given(
        head=st.tuples(_pick(BRANCHES), _pick(DATES + ["2024-08-10"]), _pick(counts_ + ["21"]), _pick(counts_ + ["18"])),
        votes=st.lists(st.tuples(_pick(MEMBERS), _pick(counts_), _pick(counts_), _pick(counts_)), min_size=1, max_size=5),
        quote_all=st.booleans(), encoding=ENCODINGS, damage=DAMAGE, seed=st.integers(0, 9),
    )
    def case(head: tuple[str, ...], votes: list[tuple[str, ...]], quote_all: bool, encoding: str, damage: int | None, seed: int) -> None:
        header = ["branch_id", "date", "entitled", "present", "member_id", "qualified", "basically_qualified", "unqualified"]
        text = _csv(header, [[*head, *v] for v in votes], quote_all, False)
        target.run(
            lambda p: ["ballot", "import", KEY, p, "--actor", "M002", "--at", "2024-08-12T10:00"],
            _encode(text, encoding, damage, random.Random(seed)),
        )

    case()


def test_plan(office: Path, tmp_path: Path) -> None:
    target = Target(office, tmp_path, "plan")
    base = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    paths = [("key",), ("title",), ("timezone",), ("thresholds", "study_hours"), ("thresholds", "publicity_days"),
             ("thresholds", "excellent_max_fraction"), ("reminders_days_before",), ("escalation_days", "direct"),
             ("phases", 0, "end"), ("phases", 2, "name"), ("phases",), ("extra",)]
    values = st.one_of(
        st.sampled_from(HOSTILE), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
        st.none(), st.lists(st.integers(-5, 400), max_size=4), st.sampled_from(["sfao-2025", "UTC", "Mars/Base", "2/3", "4/3", "1/0"]),
    )

    @FUZZ
    @given(mutations=st.lists(st.tuples(st.sampled_from(paths), values), max_size=3), raw=st.one_of(st.none(), st.binary(max_size=200)),
           encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]))
    def case(mutations: list[tuple[tuple[object, ...], object]], raw: bytes | None, encoding: str) -> None:
        import copy

        plan = copy.deepcopy(base)
        for path, value in mutations:
            node = plan
            try:
                for step in path[:-1]:
                    node = node[step]  # type: ignore[index]
                node[path[-1]] = value  # type: ignore[index]
            except (TypeError, IndexError, KeyError):  # an earlier mutation replaced the container
                continue
        text = yaml.safe_dump(plan, allow_unicode=True)
        data = raw if raw is not None else text.encode(encoding, errors="replace")
        target.run(lambda p: ["plan", "load", p, "--actor", "M002", "--at", "2024-03-01T09:00"], data, ".yaml")

    case()


def test_fuzz_counts() -> None:
    """Runs last in this file: every reader was exercised (the totals go to docs/reliability.md)."""
    print(f"\n[fuzz] cases run: {FUZZ_CASES} total {sum(FUZZ_CASES.values())}")
    if not FUZZ_CASES:
        pytest.skip("no fuzz test ran in this selection")
    assert sum(FUZZ_CASES.values()) > 0


RECORD_HEAD = "member_id,branch_id,kind,date,value\n"
FIXED = {
    # name: (bytes, expected exit, a word the reason must hold)
    "negative hours": (RECORD_HEAD + "M026,B02,study_self,2024-04-01,-3\n", 2, "value"),
    "NaN hours": (RECORD_HEAD + "M026,B02,study_self,2024-04-01,NaN\n", 2, "value"),
    "inf hours": (RECORD_HEAD + "M026,B02,study_self,2024-04-01,inf\n", 2, "value"),
    "1e308 hours": (RECORD_HEAD + "M026,B02,study_self,2024-04-01,1e308\n", 2, "value"),
    "impossible date": (RECORD_HEAD + "M026,B02,study_self,2023-02-29,3\n", 2, "date"),
    "unknown member": (RECORD_HEAD + "X999,B02,study_self,2024-04-01,3\n", 2, "X999"),
    "member in the wrong branch": (RECORD_HEAD + "M026,B01,study_self,2024-04-01,3\n", 2, "B01"),
    "formula as a value": (RECORD_HEAD + "M026,B02,study_self,2024-04-01,=cmd|' /C calc'!A0\n", 2, "value"),
    "injection as an id": (RECORD_HEAD + "'; DROP TABLE person; --,B02,study_self,2024-04-01,3\n", 2, "member_id"),
    "unterminated quote": (RECORD_HEAD + 'M026,B02,study_self,2024-04-01,"3\n', 2, "行"),
    "too many fields": (RECORD_HEAD + "M026,B02,study_self,2024-04-01,3,4\n", 2, "第2行"),
    "huge field": (RECORD_HEAD + "M026,B02,study_self,2024-04-01," + "9" * 200_000 + "\n", 2, "行"),
    "one bad row of three": (RECORD_HEAD + "M026,B02,study_self,2024-04-01,3\nM026,B02,study_self,2024-04-02,x\n"
                             "M026,B02,study_self,2024-04-03,3\n", 2, "第3行"),
}


@pytest.mark.parametrize("name", list(FIXED))
def test_fixed_hostile_records(office: Path, tmp_path: Path, name: str) -> None:
    text, expected, word = FIXED[name]
    path = tmp_path / "records.csv"
    path.write_text(text, encoding="utf-8")
    db = tmp_path / "db.db"
    backup(office, db)
    before = counts(db)
    result = run_cli(["record", "import", str(path), "--actor", "M002", "--at", "2024-04-10T10:00"], env_for(db, tmp_path))
    FUZZ_CASES["fixed"] = FUZZ_CASES.get("fixed", 0) + 1
    assert (result.code, str(path) in result.err) == (expected, True), result.err
    assert word in result.err, result.err
    assert counts(db) == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM person").fetchone()[0] == before["person"]


@pytest.mark.parametrize(("raw", "why"), [
    (b"member_id,branch_id,kind,date,value\nM026,B02,study_self,2024-04-01,3\x00\n", "NUL"),
    (b"member_id,branch_id,kind,date,value\nM026,B02,study_self,2024-04-01,\xff\xfe\x80\n", "UTF-8"),
    ("\ufeffmember_id,branch_id,kind,date,value\nM026,B02,study_self,2024-04-01,3\n".encode(), None),
    ("member_id,branch_id,kind,date,value\nM026,B02,study_self,2024-04-01,3\n".encode("utf-16"), None),  # Excel's Unicode text
    ("member_id\tbranch_id\tkind\tdate\tvalue\nM026\tB02\tstudy_self\t2024/4/1\t3\n".encode("utf-16-le"), None),
    ("member_id,branch_id,kind,date,value\nM026,B02,study_self,2024-04-01,3\n".encode("utf-16")[:-1], "UTF-16"),
    (b"%PDF-1.4\n" + b"\x00" * 30, "PDF"),
])
def test_encodings(office: Path, tmp_path: Path, raw: bytes, why: str | None) -> None:
    path = tmp_path / "records.csv"
    path.write_bytes(raw)
    db = tmp_path / "db.db"
    backup(office, db)
    before = counts(db)
    result = run_cli(["record", "import", str(path), "--actor", "M002", "--at", "2024-04-10T10:00"], env_for(db, tmp_path))
    if why is None:
        assert result.code == 0 and counts(db)["evidence"] == before["evidence"] + 1, result.err
    else:
        assert result.code == 2 and why in result.err and str(path) in result.err, result.err
        assert counts(db) == before
