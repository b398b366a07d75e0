"""Several processes firing one deadline's chunks at once (PostgreSQL), as workers of a work pool would.

    python -m bench.parallel worker --url URL --campaign KEY --at T --deadline study --mode claim --worker 1

`claim`: each chunk is taken under a row lock of a claim table (`SELECT … FOR UPDATE SKIP LOCKED`), held while the
chunk's own transaction runs, so a chunk is in one worker's hands at a time and a finished one (`done_chunk`) is
never taken again. `race`: no claims at all — every worker tries every chunk, in its own order — which leaves only
the sweep's own guards (the done-chunk record, compare-and-set updates, keyed notices) between them and a double
move. The worker prints one JSON line: the chunks it fired itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import time
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bench.run import BENCH_SEAL_KEY

CLAIMS = "sweep_claim"


def prepare_claims(engine: Engine, key: str, at: dt.datetime, deadline: str, branches_per_chunk: int) -> int:
    """The claim table of one deadline: one row per chunk of the sweep's plan. Returns the number of chunks."""
    from states.sweep import plan_sweep

    with Session(engine) as session, session.begin():
        plan = plan_sweep(session, key, at, branches_per_chunk)
        session.execute(text(
            f"CREATE TABLE IF NOT EXISTS {CLAIMS} (campaign_key text, deadline text, lo text, hi text, "
            "PRIMARY KEY (campaign_key, deadline, lo))"
        ))
        for lo, hi in plan.chunks:
            session.execute(
                text(f"INSERT INTO {CLAIMS} VALUES (:k, :d, :lo, :hi) ON CONFLICT DO NOTHING"),
                {"k": key, "d": deadline, "lo": lo, "hi": hi},
            )
        return len(plan.chunks)


def _fire(session: Session, plan: Any, deadline: Any, chunk: tuple[str, str], cause: Any) -> bool:
    """Fire one chunk in the session's transaction; True when this call did it (it was not done before)."""
    from states.models import DoneChunk
    from states.sweep import run_unit

    if session.get(DoneChunk, (plan.key, deadline.name, chunk[0])) is not None:
        return False
    run_unit(session, plan, ("fire", deadline, chunk), cause)
    return True


def work(url: str, key: str, at: dt.datetime, deadline_name: str, mode: str, worker: int, branches_per_chunk: int,
         pause: float) -> list[str]:
    from states import audit
    from states.db import make_engine
    from states.engine import Cause
    from states.sweep import plan_sweep

    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            plan = plan_sweep(session, key, at, branches_per_chunk)
        deadline = next(d for d in plan.due if d.name == deadline_name)
        cause = Cause(cause="sweep", actor=f"worker-{worker}", flow_run_id=f"worker-{worker}", sweep_id=plan.sweep_id)
        mine: list[str] = []
        if mode == "claim":
            while True:
                with session.begin():
                    claimed = session.execute(
                        text(
                            f"SELECT c.lo, c.hi FROM {CLAIMS} c WHERE c.campaign_key = :k AND c.deadline = :d "
                            "AND NOT EXISTS (SELECT 1 FROM done_chunk dc WHERE dc.campaign_key = c.campaign_key "
                            "AND dc.deadline = c.deadline AND dc.lo = c.lo) "
                            "ORDER BY c.lo LIMIT 1 FOR UPDATE SKIP LOCKED"
                        ),
                        {"k": key, "d": deadline_name},
                    ).first()
                    if claimed is None:
                        break
                    if _fire(session, plan, deadline, (claimed[0], claimed[1]), cause):
                        mine.append(claimed[0])
                    audit.seal(session, at, BENCH_SEAL_KEY)
                    time.sleep(pause)  # holds the claim a little, so the other workers get their share
            return mine
        order = list(plan.chunks)
        random.Random(worker).shuffle(order)
        for chunk in order:
            for attempt in range(20):
                try:
                    with session.begin():
                        if _fire(session, plan, deadline, chunk, cause):
                            mine.append(chunk[0])
                        audit.seal(session, at, BENCH_SEAL_KEY)
                    break
                except DBAPIError as exc:  # a deadlock or a duplicate done-chunk between racing workers: retry
                    if attempt == 19:
                        raise
                    time.sleep(0.05 * (attempt + 1))
                    _ = exc
            time.sleep(pause)
        return mine


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parallel")
    parser.add_argument("command", choices=["worker"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--campaign", required=True)
    parser.add_argument("--at", required=True)
    parser.add_argument("--deadline", required=True)
    parser.add_argument("--mode", choices=["claim", "race"], default="claim")
    parser.add_argument("--worker", type=int, default=1)
    parser.add_argument("--branches-per-chunk", type=int, default=200)
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args(argv)
    at = dt.datetime.fromisoformat(args.at).astimezone(dt.UTC)
    mine = work(args.url, args.campaign, at, args.deadline, args.mode, args.worker, args.branches_per_chunk, args.pause)
    print(json.dumps({"worker": args.worker, "chunks": mine}))


if __name__ == "__main__":
    main()
