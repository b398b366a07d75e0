"""Where the study sweep's time goes: the same 1M sweep with parts of its work taken away, against the floor.

A measuring tool, not a mode of the product: each variant runs in a child process that switches off parts of the
sweep by replacing functions (the audit seal, the notices' JSON context, the stuck pass after the firing, the
per-chunk transactions), so the cost of each requirement the floor does not have is measured rather than
estimated. The as-is run also times every statement by kind, and the commits.

    .venv/bin/python -m bench.ablate                       # 1M members: ~4 min to build, ~1 min a variant
    .venv/bin/python -m bench.ablate --n 100000 --work /tmp/ablate
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
VARIANTS: list[list[str]] = [
    [],
    ["no_seal"],
    ["no_seal", "no_context"],
    ["no_seal", "no_context", "no_stuck_pass"],
    ["no_seal", "no_context", "no_stuck_pass", "one_transaction"],
]
WHAT = {
    "no_seal": "no audit seal (entries still logged)",
    "no_context": "notices without their JSON context",
    "no_stuck_pass": "no stuck pass after the firing",
    "one_transaction": "the whole sweep in one transaction",
}


def _statement_kind(statement: str) -> str:
    words = statement.split()
    if words[0] in ("UPDATE", "ANALYZE"):
        return " ".join(words[:2])
    if words[0] == "INSERT":
        return " ".join(words[:3])
    return "SELECT (planning, audit, report)" if words[0] == "SELECT" else words[0]


def variant(db: Path, switched_off: list[str]) -> dict[str, Any]:
    """One timed study sweep over `db` with the named parts switched off."""
    from sqlalchemy import event, literal
    from sqlalchemy.orm import Session

    from states import audit, engine, sweep
    from states.db import make_engine

    if "no_seal" in switched_off:
        audit.seal = lambda session, at, key: session.info.pop("audit_block", None)  # type: ignore[assignment]
    if "no_context" in switched_off:
        engine.json_object = lambda *pairs: literal("{}")  # type: ignore[assignment]
    if "no_stuck_pass" in switched_off:
        sweep.stuck_pass_chunk = lambda *args, **kwargs: 0  # type: ignore[assignment]
    bind = make_engine(f"sqlite:///{db}")
    spent: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])

    @event.listens_for(bind, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["started"] = time.perf_counter()

    @event.listens_for(bind, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        entry = spent[_statement_kind(statement)]
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info["started"]

    at = _at(AT_STUDY)
    started = time.perf_counter()
    if "one_transaction" in switched_off:
        with Session(bind, expire_on_commit=False) as session, session.begin():
            plan = sweep.plan_sweep(session, KEY, at, 200)
            cause = engine.Cause(cause="sweep", actor="bench", sweep_id=plan.sweep_id)
            for unit in sweep.run_units(plan):
                sweep.run_unit(session, plan, unit, cause)
            audit.seal(session, at, BENCH_SEAL_KEY)
            report = sweep.report(session, plan)
    else:
        report = sweep.sweep(bind, KEY, at, seal_key=BENCH_SEAL_KEY, actor="bench", branches_per_chunk=200)
    took = time.perf_counter() - started
    return {"seconds": took, "advanced": report.advanced_members, "statements": dict(spent)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ablate", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="members (default 1,000,000)")
    parser.add_argument("--work", default=None, help="folder for the data and databases (default: a temporary one)")
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
        generate(args.n, data)
        base = data / "campaign.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{base}{suffix}").unlink(missing_ok=True)
        for step in BUILD:
            run_step(step, f"sqlite:///{base}", data, args.n)
        print(f"built {args.n:,} members up to the study deadline in {time.perf_counter() - started:.0f} s",
              flush=True)
        floor = run_step("floor", "", data, args.n)
        print(f"floor decide {floor['decide']:.2f} s (budget at 2×: {2 * floor['decide']:.2f} s)", flush=True)
        rows = []
        for parts in VARIANTS:
            copy = data / "variant.db"
            shutil.copyfile(base, copy)
            proc = subprocess.run(
                [sys.executable, "-m", "bench.ablate", "--db", str(copy), "--variant", ",".join(parts)],
                cwd=ROOT, capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0:
                raise SystemExit(f"variant {parts} failed:\n{proc.stderr}")
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            label = "as is" if not parts else "+ " + WHAT[parts[-1]]
            rows.append((label, got))
            print(f"  {label:45} {got['seconds']:7.2f} s  {got['seconds'] / floor['decide']:5.2f}× the floor  "
                  f"({got['advanced']:,} advanced)", flush=True)
            if not parts:
                for kind, (count, seconds) in sorted(got["statements"].items(), key=lambda kv: -kv[1][1])[:8]:
                    print(f"      {seconds:7.2f} s  {count:5d} × {kind}")
            Path(copy).unlink()
            for suffix in ("-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
        print(json.dumps({"size": args.n, "floor_decide_s": round(floor["decide"], 3),
                          "variants": {label: {"seconds": round(got["seconds"], 2), "advanced": got["advanced"]}
                                       for label, got in rows}}, ensure_ascii=False))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
