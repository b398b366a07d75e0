"""Where the study sweep's time goes: the same sweep with parts of its work taken away or varied, against the floor.

A measuring tool, not a mode of the product: each variant runs in a child process on a fresh copy of the campaign
built up to the study deadline, and switches off or varies one part of the sweep — by replacing functions (the
audit seal, the notices' context or their figures, the stuck pass after the firing, the per-chunk transactions),
by a chunk size, or by dropping or adding an index on the copy — so the cost of each requirement the floor does not
have, and what each index costs the writes, is measured rather than estimated. Every variant prints its seconds and
ratio to the floor's decide (same run) and a statement timer: seconds by part (the firing, the stuck pass, the
seal) and by statement kind (a notice INSERT by event), and the commits.

    .venv/bin/python -m bench.ablate --n 200000 --work /tmp/ablate    # ~1 min to build, ~15 s a variant
    .venv/bin/python -m bench.ablate --work /tmp/ablate               # 1M: ~4 min to build, ~1 min a variant
    .venv/bin/python -m bench.ablate --n 200000 --variants ";drop:ix_notice_event;no_seal,chunk:1000"
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import AT_STUDY, BENCH_SEAL_KEY, KEY, ROOT, _at, generate, run_step

BUILD = ["setup", "roster", "records", "sweep_start", "reminders"]  # the campaign just before the study deadline
INDEXES = [
    "ix_member_progress_state", "ix_branch_progress_step", "ix_person_branch_role",
    "ix_transition_log_campaign_at", "ix_transition_log_member_id", "ix_transition_log_sweep_id",
    "ix_transition_log_block", "ix_notice_event", "ix_notice_status",
]
LOG_INDEXES = "+".join(i for i in INDEXES if i.startswith("ix_transition_log"))
VARIANTS: list[list[str]] = [
    [],
    ["no_seal"],
    ["no_context"],
    ["no_figures"],
    ["no_stuck_pass"],
    ["one_transaction"],
    ["chunk:1000"],
    *[[f"drop:{name}"] for name in INDEXES],
    [f"drop:{LOG_INDEXES}"],
    ["add:ix_member_progress_step=member_progress(step)"],  # as the schema had it before 20261201_2010
    ["no_seal", "no_context", "no_stuck_pass", "one_transaction", f"drop:{LOG_INDEXES}+ix_notice_event+ix_notice_status"],
    [],  # as is again, last: how far the machine's load moved the figures during the run
]
WHAT = {
    "no_seal": "no audit seal (entries still logged)",
    "no_context": "notices with an empty context",
    "no_figures": "notices without their figures",
    "no_stuck_pass": "no stuck pass after the firing",
    "one_transaction": "the whole sweep in one transaction",
    "chunk": "chunks of {} branches",
    "drop": "without {}",
    "add": "with {}",
}
"""A switch is a name, or a name and its argument after a colon: `drop:` takes index names joined by `+`,
`add:` an index as name=table(col/col…), `chunk:` the branches per chunk (the product's default is 200)."""


def describe(parts: list[str]) -> str:
    if not parts:
        return "as is"
    said = []
    for part in parts:
        name, _, arg = part.partition(":")
        said.append(WHAT[name].format(arg.replace("+", ", ").replace("/", ", ")) if arg else WHAT[name])
    return " + ".join(said)


def _statement_kind(statement: str, parameters: Any) -> str:
    """The statement's verb and table; a notice INSERT also names its event (a bound literal)."""
    words = statement.replace("(", " ").split()
    if words[0] == "INSERT":
        kind = " ".join(words[:3])
        if words[2] == "notice":
            from states.outbox import EVENTS

            values = parameters.values() if isinstance(parameters, dict) else parameters or ()
            kind += " " + next((v for v in values if isinstance(v, str) and v in EVENTS), "?")
        return kind
    if words[0] in ("UPDATE", "ANALYZE", "DELETE"):
        return " ".join(words[:2])
    return words[0]


class Timer:
    """Seconds by part of the sweep (the firing, the stuck pass, the seal, the rest) and statement kind, and the
    commits: wraps the functions that make each part and listens to every cursor execution."""

    def __init__(self) -> None:
        self.part = "plan, report, finish"
        self.spent: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
        self.parts: dict[str, float] = collections.defaultdict(float)

    def wrap(self, module: Any, name: str, part: str) -> None:
        inner = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            outer, self.part = self.part, part
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.parts[part] += time.perf_counter() - started
                self.part = outer

        setattr(module, name, timed)

    def listen(self, bind: Any) -> None:
        from sqlalchemy import event

        @event.listens_for(bind, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            conn.info["started"] = time.perf_counter()

        @event.listens_for(bind, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
            entry = self.spent[f"{self.part}: {_statement_kind(statement, parameters)}"]
            entry[0] += 1
            entry[1] += time.perf_counter() - conn.info["started"]

        commit = bind.dialect.do_commit

        def timed_commit(dbapi_connection: Any) -> None:
            started = time.perf_counter()
            commit(dbapi_connection)
            entry = self.spent["COMMIT"]
            entry[0] += 1
            entry[1] += time.perf_counter() - started

        bind.dialect.do_commit = timed_commit


def _switch_off(parts: list[str], db: Path) -> int:
    """Apply the variant's switches to the imported modules and to the database copy; returns branches per chunk."""
    import sqlite3

    from sqlalchemy import literal

    from states import audit, engine, sweep

    per_chunk = 200
    for part in parts:
        name, _, arg = part.partition(":")
        if name == "no_seal":
            audit.seal = lambda session, at, key: session.info.pop("audit_block", None)  # type: ignore[assignment]
        elif name == "no_context":
            engine.json_object = lambda *pairs: literal("{}")  # type: ignore[assignment]
        elif name == "no_figures":
            engine.figures_json = sweep.figures_json = lambda *args: literal(None)  # type: ignore[assignment]
        elif name == "no_stuck_pass":
            sweep.stuck_pass_chunk = lambda *args, **kwargs: 0  # type: ignore[assignment]
        elif name == "chunk":
            per_chunk = int(arg)
        elif name in ("drop", "add"):
            with sqlite3.connect(db) as conn:
                for index in arg.split("+"):
                    if name == "drop":
                        conn.execute(f"DROP INDEX {index}")
                    else:
                        index_name, _, on = index.partition("=")
                        conn.execute(f"CREATE INDEX {index_name} ON {on.replace('/', ',')}")
        elif name != "one_transaction":
            raise SystemExit(f"unknown switch {part!r}")
    return per_chunk


def variant(db: Path, parts: list[str]) -> dict[str, Any]:
    """One timed study sweep over `db` with the named parts switched off or varied."""
    from sqlalchemy.orm import Session

    from states import audit, engine, sweep
    from states.db import make_engine

    per_chunk = _switch_off(parts, db)
    timer = Timer()
    timer.wrap(sweep, "fire_chunk", "fire")
    timer.wrap(sweep, "stuck_pass_chunk", "stuck pass")
    timer.wrap(audit, "seal", "seal")
    bind = make_engine(f"sqlite:///{db}")
    timer.listen(bind)
    at = _at(AT_STUDY)
    started = time.perf_counter()
    if "one_transaction" in parts:
        with Session(bind, expire_on_commit=False) as session, session.begin():
            plan = sweep.plan_sweep(session, KEY, at, per_chunk)
            cause = engine.Cause(cause="sweep", actor="bench", sweep_id=plan.sweep_id)
            for unit in sweep.run_units(plan):
                sweep.run_unit(session, plan, unit, cause)
            audit.seal(session, at, BENCH_SEAL_KEY)
            report = sweep.report(session, plan)
    else:
        report = sweep.sweep(bind, KEY, at, seal_key=BENCH_SEAL_KEY, actor="bench", branches_per_chunk=per_chunk)
    took = time.perf_counter() - started
    return {"seconds": took, "advanced": report.advanced_members, "statements": dict(timer.spent),
            "parts": dict(timer.parts), "status_ms": _status_ms(bind)}


def _status_ms(bind: Any) -> float:
    """`status` in-process after the sweep: the median of five `summary` calls on a warm connection, in ms."""
    import statistics

    from sqlalchemy.orm import Session

    from states.status import summary

    with Session(bind) as session:
        summary(session, KEY, _at(AT_STUDY))
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            summary(session, KEY, _at(AT_STUDY))
            runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def _print_parts(got: dict[str, Any], floor: float, top: int) -> None:
    statements = sum(seconds for _, seconds in got["statements"].values())
    parts = ", ".join(f"{part} {seconds:.2f} s" for part, seconds in sorted(got["parts"].items()))
    print(f"      parts: {parts}; Python outside statements and commits "
          f"{got['seconds'] - statements:.2f} s", flush=True)
    for kind, (count, seconds) in sorted(got["statements"].items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"      {seconds:7.2f} s {seconds / floor:5.2f}× {int(count):6d} × {kind}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ablate", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="members (default 1,000,000)")
    parser.add_argument("--work", default=None, help="folder for the data and databases (default: a temporary one)")
    parser.add_argument("--variants", default=None,
                        help="variants separated by ';', each switches joined by ',' (default: the built-in list)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the campaign built by an earlier run in --work (same --n), skip the build")
    parser.add_argument("--top", type=int, default=12, help="statement kinds printed per variant (default 12)")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.db:
        print(json.dumps(variant(Path(args.db), [v for v in args.variant.split(",") if v])))
        return
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="campaign-ablate-"))
    data = work / f"n{args.n}"
    try:
        started = time.perf_counter()
        base = data / "campaign.db"
        built: dict[str, dict[str, Any]] = {}
        if not (args.reuse and base.exists()):
            generate(args.n, data)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{base}{suffix}").unlink(missing_ok=True)
            for step in BUILD:
                built[step] = run_step(step, f"sqlite:///{base}", data, args.n)
            print(f"built {args.n:,} members up to the study deadline in {time.perf_counter() - started:.0f} s",
                  flush=True)
        floor = run_step("floor", "", data, args.n)
        print(f"floor decide {floor['decide']:.2f} s (budget at 2×: {2 * floor['decide']:.2f} s)", flush=True)
        if "reminders" in built:  # the daily tick at deadline − 7 d, run by the build: its target is 1× the floor
            tick = built["reminders"]["timed"]
            print(f"daily tick at deadline − 7 d (build step): {tick:.2f} s  {tick / floor['decide']:.2f}× the floor",
                  flush=True)
        rows = []
        chosen = VARIANTS if args.variants is None else [
            [p for p in v.split(",") if p] for v in args.variants.split(";")]
        print(f"  {'as is' if not chosen[0] else describe(chosen[0])} first; ratios to the floor's decide "
              "(same run); the statement timer by part and kind, per variant", flush=True)
        for parts in chosen:
            copy = data / "variant.db"
            shutil.copyfile(base, copy)
            proc = subprocess.run(
                [sys.executable, "-m", "bench.ablate", "--db", str(copy), "--variant", ",".join(parts)],
                cwd=ROOT, capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0:
                raise SystemExit(f"variant {parts} failed:\n{proc.stderr}")
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            label = describe(parts)
            if any(seen == label for seen, _ in rows):
                label += " (again)"
            rows.append((label, got))
            print(f"  {label}: {got['seconds']:.2f} s  {got['seconds'] / floor['decide']:.2f}× the floor  "
                  f"({got['advanced']:,} advanced; status then {got['status_ms']:.1f} ms)", flush=True)
            _print_parts(got, floor["decide"], args.top if not parts else min(args.top, 6))
            Path(copy).unlink()
            for suffix in ("-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
        print(json.dumps({"size": args.n, "floor_decide_s": round(floor["decide"], 3),
                          "variants": {label: {"seconds": round(got["seconds"], 2), "advanced": got["advanced"],
                                               "ratio": round(got["seconds"] / floor["decide"], 2),
                                               "status_ms": round(got["status_ms"], 1)}
                                       for label, got in rows}}, ensure_ascii=False))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
