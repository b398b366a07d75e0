"""What the audit seal costs a parallel sweep on PostgreSQL: the study deadline's chunks fired by W worker processes
(`bench.parallel` claim workers) on copies of one database, with this checkout's code and, given `--before DIR`,
with another checkout's (the seal before lanes: one advisory lock every chunk's commit queues on), alternately.
While the workers run, `pg_stat_activity` is sampled every 50 ms for backends waiting on an advisory lock; after
them, this checkout's lane seals are digested again and timed (what the former lock was held for, per chunk).

    git archive 5a1511b | tar -x -C /tmp/before        # main just before lanes
    python -m bench.parallel_seal 200000 --workers 4 --before /tmp/before
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.parallel import prepare_claims
from bench.run import (
    AT_STUDY,
    BENCH_SEAL_KEY,
    KEY,
    PG_ADMIN,
    ROOT,
    _at,
    _pg_create,
    _pg_drop,
    generate,
    run_step,
)

SETUP = ("setup", "roster", "records", "sweep_start")


def _url(name: str) -> str:
    return PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/" + name


def _clone(template: str) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


class Waits(threading.Thread):
    """Samples, until stopped, how many of the database's backends wait on an advisory lock (the seal's)."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.samples: list[int] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            while not self.stopped.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
                    " AND wait_event = 'advisory'", (self.database,),
                ).fetchone()
                self.samples.append(int(row[0]) if row else 0)
                time.sleep(0.05)

    def summary(self) -> dict[str, float]:
        n = max(len(self.samples), 1)
        return {"mean_waiting": round(sum(self.samples) / n, 2),
                "share_with_a_waiter": round(sum(1 for s in self.samples if s) / n, 2)}


def fire(database: str, code: Path, workers: int, per_chunk: int) -> dict[str, Any]:
    """The study deadline's chunks by `workers` processes running the code at `code`: wall seconds from their start to
    the last one's end (their start-up and plan included, the same for every variant)."""
    waits = Waits(database)
    waits.start()
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.parallel", "worker", "--url", _url(database), "--campaign", KEY, "--at",
             AT_STUDY, "--deadline", "study", "--mode", "claim", "--worker", str(i), "--branches-per-chunk",
             str(per_chunk)],
            cwd=code, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(workers)
    ]
    fired = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"worker failed ({code}):\n{err}")
        fired.append(len(json.loads(out.strip().splitlines()[-1])["chunks"]))
    seconds = time.perf_counter() - started
    waits.stopped.set()
    waits.join()
    return {"seconds": round(seconds, 2), "chunks_per_worker": fired, **waits.summary()}


def seal_hashing(database: str) -> dict[str, Any]:
    """The lanes not merged yet (the workers' chunks) digested again, each seal timed: how long the former single lock
    was held per chunk before its commit (its hashing; the commit came on top)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from states import audit
    from states.db import make_engine
    from states.models import AuditLaneMerge, AuditSeal

    engine = make_engine(_url(database))
    try:
        with Session(engine) as session, session.begin():
            seals = session.execute(
                select(AuditSeal.block, AuditSeal.prev_digest, AuditSeal.at)
                .where(AuditSeal.lane.is_not(None), AuditSeal.lane.not_in(select(AuditLaneMerge.lane)))
            ).all()
            times = []
            for block, previous, at in seals:
                started = time.perf_counter()
                audit.block_digest(session, BENCH_SEAL_KEY, block, previous, at)
                times.append(time.perf_counter() - started)
        return {"seals": len(times), "hash_s_total": round(sum(times), 2),
                "hash_s_max": round(max(times, default=0.0), 3)}
    finally:
        engine.dispose()


def finish(database: str, per_chunk: int) -> dict[str, Any]:
    """The rest of the sweep with this checkout's code (the deadline recorded, the stuck pass, the finish unit that
    merges the lanes), then the chain verified."""
    from sqlalchemy.orm import Session

    from states import audit
    from states.db import make_engine
    from states.engine import Cause
    from states.sweep import plan_sweep, run_unit, run_units

    engine = make_engine(_url(database))
    try:
        with Session(engine, expire_on_commit=False) as session:
            with session.begin():
                plan = plan_sweep(session, KEY, _at(AT_STUDY), per_chunk)
            cause = Cause(cause="sweep", actor="bench", sweep_id=plan.sweep_id)
            started = time.perf_counter()
            for unit in run_units(plan):
                if unit[0] == "fire":
                    continue
                with session.begin():
                    run_unit(session, plan, unit, cause)
                    audit.seal(session, _at(AT_STUDY), BENCH_SEAL_KEY)
            rest = time.perf_counter() - started
            with session.begin():
                started = time.perf_counter()
                verdict = audit.verify(session, BENCH_SEAL_KEY)
                checked = time.perf_counter() - started
        if verdict.broken or verdict.pending:
            raise SystemExit(f"chain not whole after the sweep: {verdict}")
        return {"rest_s": round(rest, 2), "verify_s": round(checked, 2), "blocks": verdict.checked}
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parallel_seal", description=__doc__.splitlines()[0])
    parser.add_argument("members", type=int, nargs="?", default=200_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--branches-per-chunk", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", type=Path, default=None, help="another checkout's root (the code to compare)")
    args = parser.parse_args(argv)
    variants = [("lanes (this checkout)", ROOT)] + ([("one lock (--before)", args.before)] if args.before else [])
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        shape = generate(args.members, data)
        base = _pg_create()
        if base is None:
            raise SystemExit(1)
        try:
            for step in SETUP:
                result = run_step(step, _url(base), data, args.members)
                print(f"setup {step:12} {float(result.get('timed', result.get('seconds', 0))):7.1f} s", flush=True)
            print(f"{args.members:,} members, {shape['branches']:,} branches, {args.workers} workers", flush=True)
            for round_ in range(1, args.rounds + 1):
                for label, code in variants:
                    clone = _clone(base)
                    try:
                        from states.db import make_engine

                        engine = make_engine(_url(clone))
                        chunks = prepare_claims(engine, KEY, _at(AT_STUDY), "study", args.branches_per_chunk)
                        engine.dispose()
                        fired = fire(clone, code, args.workers, args.branches_per_chunk)
                        line = {"round": round_, "code": label, "chunks": chunks, **fired}
                        if code == ROOT:
                            line.update(seal_hashing(clone))
                            line.update(finish(clone, args.branches_per_chunk))
                        print(json.dumps(line), flush=True)
                    finally:
                        _pg_drop(clone)
        finally:
            _pg_drop(base)


if __name__ == "__main__":
    main()
