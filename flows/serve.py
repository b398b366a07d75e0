"""`make run`: the database, the sample office and a plan starting today, a local Prefect server, every deployment.

A second `make run` reuses the database and a server that already answers. Ctrl-C stops the served deployments
and the server this process started (a server it found running is left alone). Flow logs go to the UI; the
terminal shows warnings and errors only.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
HOST, PORT = "127.0.0.1", 4200
LIVE_KEY = "sfao-live"
LIVE_TZ = "Asia/Shanghai"


def _environment() -> None:
    """Before Prefect is imported: no telemetry, state under var/, logs to the UI rather than the terminal."""
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.setdefault("PREFECT_HOME", str(ROOT / "var" / "prefect"))
    os.environ.setdefault("PREFECT_API_URL", f"http://{HOST}:{PORT}/api")
    os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"  # what reaches the UI
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")  # what reaches the terminal
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def start_server(api_url: str, home: Path, wait: float = 120.0) -> subprocess.Popen[bytes] | None:
    """`prefect server start` as a child (SQLite under PREFECT_HOME), unless a server already answers."""
    if healthy(api_url):
        print(f"Prefect server already answers at {api_url}: reusing it")
        return None
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "server.log").open("ab")
    prefect = Path(sys.executable).with_name("prefect")
    command = [str(prefect) if prefect.exists() else "prefect", "server", "start", "--host", HOST, "--port", str(PORT)]
    # A session of its own: the terminal's Ctrl-C reaches this process only, which stops the runner first and the
    # server after it.
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    print(f"starting the Prefect server (log: {home / 'server.log'}) …", flush=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"the Prefect server exited with {child.returncode}; see {home / 'server.log'}")
        if healthy(api_url, timeout=1.0):
            return child
        time.sleep(0.5)
    stop_server(child)
    raise SystemExit(f"the Prefect server did not answer within {wait:.0f} s; see {home / 'server.log'}")


def stop_server(child: subprocess.Popen[bytes] | None) -> None:
    if child is None or child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=15)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def seed_if_empty(today: dt.date | None = None) -> str | None:
    """An empty database gets the sample office (175 members) and the sample plan starting today; returns its key."""
    import yaml
    from sqlalchemy import func, select

    from flows import runtime
    from readers import read_table
    from states import sample
    from states.models import Campaign, Person
    from states.plan import load_plan, read_plan
    from states.roster import import_roster

    db = runtime.engine()
    with runtime.read(db) as session:
        people = session.scalar(select(func.count()).select_from(Person)) or 0
        campaigns = session.scalar(select(func.count()).select_from(Campaign)) or 0
    if people or campaigns:
        return None
    now = dt.datetime.now(dt.UTC)
    today = today or now.astimezone(ZoneInfo(LIVE_TZ)).date()
    plan_file = ROOT / "var" / "plans" / f"{LIVE_KEY}.yaml"
    plan_file.parent.mkdir(parents=True, exist_ok=True)
    plan_file.write_text(
        yaml.safe_dump(sample.plan_starting(today, key=LIVE_KEY), allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    plan, _digest = read_plan(plan_file)
    with runtime.write(db, now) as session:
        import_roster(session, read_table(sample.roster_path()), "make-run", now)
        load_plan(session, plan, "make-run", now)
    return plan.key


def campaigns() -> dict[str, str]:
    from sqlalchemy import select

    from flows import runtime
    from states.models import Campaign

    with runtime.read(runtime.engine()) as session:
        return dict(session.execute(select(Campaign.key, Campaign.timezone).order_by(Campaign.key)).all())


def main() -> None:
    _environment()
    os.chdir(ROOT)  # deployments' entrypoints (flows/<file>.py) are relative to the repository
    from flows import runtime

    found = runtime.settings()
    runtime.engine(found)  # creates or migrates the schema
    seeded = seed_if_empty()
    if seeded:
        print(f"empty database: loaded the sample office and plan {seeded!r} starting today")
    api_url = os.environ["PREFECT_API_URL"]
    home = Path(os.environ["PREFECT_HOME"])
    server = start_server(api_url, home)
    try:
        from prefect import serve

        from flows.deployments import runner_deployments
        from flows.schedule import schedule_all

        loaded = campaigns()
        deployments = runner_deployments(loaded)
        for deployment in deployments:
            deployment.apply()  # phase-deadline must exist before its runs are scheduled
        scheduled = schedule_all()
        ui = api_url.removesuffix("/api")
        from states.db import absolute_url

        print(
            "\n".join(
                [
                    "",
                    f"  Prefect UI      {ui}  (deployments: {', '.join(d.name for d in deployments)})",
                    f"  database        {absolute_url(found.database_url)}",
                    f"  outbox          {found.outbox_dir.resolve()}",
                    f"  PREFECT_HOME    {home}",
                    f"  campaigns       {', '.join(f'{k} ({tz})' for k, tz in loaded.items()) or 'none'}",
                    f"  deadline runs   {', '.join(f'{k}: {n} new' for k, n in scheduled.items()) or 'none'}",
                    "",
                    "  serving; flow logs are in the UI. Ctrl-C stops.",
                ]
            ),
            flush=True,
        )
        # pause_on_shutdown=False: a restart must find the deployments (and their scheduled runs) as they were.
        serve(*deployments, print_starting_message=False, pause_on_shutdown=False)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping …", flush=True)
        stop_server(server)
        if server is not None:
            print("Prefect server stopped", flush=True)


if __name__ == "__main__":
    main()
