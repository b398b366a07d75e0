"""One study deadline on PostgreSQL, its chunks in the sweep's process and then on a work pool with 1 and 2 workers.

    .venv/bin/python -m bench.workers --members 100000
    .venv/bin/python -m bench.workers --members 200000 --branches-per-chunk 100 --group 5 --workers 1,2

The synthetic campaign of `bench.run` (50 members a branch, one in three short) is loaded once into a PostgreSQL
database and its start fired; each configuration then sweeps the study deadline on a copy of it (`CREATE DATABASE …
TEMPLATE`) through the real `phase-deadline` flow, against a Prefect server this script starts (its own
PREFECT_HOME, removed after): first with the chunks in the flow's own process (threads, the default), then with
`CAMPAIGN_CHUNK_POOL` set and N `prefect worker start --limit 1` processes on a process pool (`sweep-chunks`
deployed from prefect.yaml). Printed per configuration: the whole sweep (with the stuck pass, the finish and the report,
which stay in the sweep's process), the span of the deadline's chunk tasks wherever they ran (first start to last
end, from Prefect's API), and on the pool: the span of the chunk runs (process start-up and pick-up included), the
runs' own mean duration, how many each worker took, and the members advanced per second over that span. Every configuration must end with the same member states, or the script fails.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.run import AT_STUDY, BENCH_SEAL_KEY, PG_ADMIN, ROOT, generate, run_step

POOL = "bench-chunks"


def _prefect(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("prefect")), *args]


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def _url(name: str) -> str:
    return PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def children(commands: dict[str, list[str]], logs: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Each command in a process group of its own, dying with this process even if it is killed outright; on exit
    the whole group (a worker and the flow runs it started) gets SIGTERM, then SIGKILL."""
    from flows.serve import _die_with_parent

    parent = os.getpid()
    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            log = (logs / f"{name}.log").open("wb")
            started[name] = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=lambda: _die_with_parent(parent),  # noqa: PLW1509 - one prctl call
            )
        yield started
    finally:
        for child in started.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        for child in started.values():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            with contextlib.suppress(ProcessLookupError):  # what the worker started, if it outlived it
                os.killpg(child.pid, signal.SIGKILL)


def _online(names: set[str]) -> None:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + 180
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            if {w.name for w in client.read_workers_for_work_pool(POOL) if w.status.value == "ONLINE"} >= names:
                return
            time.sleep(0.5)
    raise SystemExit(f"workers {sorted(names)} did not come online")


def _chunk_runs(parent: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])))


def _fire_span(flow_runs: list[Any]) -> float:
    """First start to last end of the deadline's chunk tasks (`fire …`), wherever they ran."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        tasks = [
            t for t in client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_runs)))
            if t.name.startswith("fire ")
        ]
    return (max(t.end_time for t in tasks) - min(t.start_time for t in tasks)).total_seconds()


def _states(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, func, select

    from states.models import MemberProgress

    engine = create_engine(url)
    with engine.connect() as conn:
        found = dict(conn.execute(select(MemberProgress.state, func.count()).group_by(MemberProgress.state)).all())
    engine.dispose()
    return found


def sweep(name: str, template: str, work: Path, workers: int, group: int) -> dict[str, Any]:
    """The study deadline on a fresh copy of `template`: in the flow's process (workers=0) or on the pool."""
    from flows.deadline import phase_deadline

    copy = f"{template}_{name}"
    _admin(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
    url = _url(copy)
    os.environ["CAMPAIGN_DATABASE_URL"] = url
    os.environ.pop("CAMPAIGN_CHUNK_POOL", None)
    if workers:
        os.environ["CAMPAIGN_CHUNK_POOL"] = POOL
        os.environ["CAMPAIGN_CHUNK_GROUP"] = str(group)
    names = {f"worker-{n}": f"{name}-w{n}" for n in range(1, workers + 1)}
    commands = {key: _prefect("worker", "start", "--pool", POOL, "--name", value, "--limit", "1") for key, value in names.items()}
    try:
        with children(commands, work) as _:
            if workers:
                _online(set(names.values()))
            started = time.perf_counter()
            state = phase_deadline("bench-2024", at=AT_STUDY, return_state=True)
            seconds = time.perf_counter() - started
            if not state.is_completed():
                raise SystemExit(f"{name}: {state.message}")
        runs = _chunk_runs(state.state_details.flow_run_id)
        out: dict[str, Any] = {"config": name, "sweep_s": round(seconds, 1), "states": _states(url), "runs": len(runs)}
        fired = state.result()["advanced"]["members"]
        out["advanced"] = fired
        out["fire_span_s"] = round(_fire_span([state.state_details.flow_run_id, *(r.id for r in runs)]), 1)
        if runs:
            span = (max(r.end_time for r in runs) - min(r.start_time for r in runs)).total_seconds()
            out["pool_span_s"] = round(span, 1)
            out["run_mean_s"] = round(sum(r.total_run_time.total_seconds() for r in runs) / len(runs), 1)
            out["per_worker"] = dict(Counter(r.labels.get("prefect.worker.name") for r in runs))
            out["members_per_s_over_span"] = round(fired / span) if span else None
        return out
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workers")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--branches-per-chunk", type=int, default=100)
    parser.add_argument("--group", type=int, default=5, help="chunks per sweep-chunks flow run")
    parser.add_argument("--workers", default="1,2", help="worker counts to try, after the in-process sweep")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    os.environ.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_HOME=str(work / "prefect"),
        PREFECT_API_URL="http://127.0.0.1:4291/api", PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="WARNING",
        CAMPAIGN_AUDIT_KEY=BENCH_SEAL_KEY.hex(), CAMPAIGN_AUDIT_ANCHORS=str(work / "anchors"),
        CAMPAIGN_REPORT_DIR=str(work / "reports"), CAMPAIGN_OUTBOX_DIR=str(work / "outbox"),
        CAMPAIGN_KEY_DIR=str(work / "keys"), CAMPAIGN_SIMULATION="1",
        CAMPAIGN_CHUNK_BRANCHES=str(args.branches_per_chunk),
    )
    from flows.serve import start_server, stop_server

    template = f"bench_w_{os.getpid()}"
    _admin(f'CREATE DATABASE "{template}"')
    server = None
    try:
        data = work / "data"
        generate(args.members, data)
        url = _url(template)
        for step in ("setup", "roster", "records", "sweep_start"):
            run_step(step, url, data, args.members)
        print(f"{args.members} members loaded, start fired", flush=True)
        server = start_server(os.environ["PREFECT_API_URL"], work / "prefect")
        subprocess.run(_prefect("work-pool", "create", POOL, "--type", "process"), check=True, cwd=ROOT, capture_output=True)
        subprocess.run(_prefect("--no-prompt", "deploy", "--name", "sweep-chunks", "--pool", POOL), check=True, cwd=ROOT,
                       capture_output=True)
        results = [sweep("inprocess", template, work, 0, args.group)]
        results += [sweep(f"pool{n}", template, work, n, args.group) for n in (int(x) for x in args.workers.split(","))]
        for result in results:
            print({k: v for k, v in result.items() if k != "states"}, flush=True)
        if len({tuple(sorted(r["states"].items())) for r in results}) != 1:
            raise SystemExit(f"the configurations disagree: {[r['states'] for r in results]}")
        print("member states agree across configurations:", results[0]["states"])
    finally:
        stop_server(server)
        _admin(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
