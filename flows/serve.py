"""`make run`: the database, the sample office and a plan starting today, a local Prefect server, every deployment.

A second `make run` reuses the database and a server that already answers. The UI and API ask for a login
(Prefect's basic auth, `flows/login.py`); CSRF protection is on and cross-origin requests are refused but from the
UI's own origin. Ctrl-C (or SIGTERM) stops the served deployments and the server this process started (a server
it found running is left alone); a second one while stopping stops at once; and the server dies with this process
even when it is killed outright (the kernel's parent-death signal). Flow logs go to the UI; the terminal shows
warnings and errors only.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
HOST, PORT = "127.0.0.1", 4200
LIVE_KEY = "sfao-live"
LIVE_TZ = "Asia/Shanghai"


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _environment() -> str:
    """Before Prefect is imported: no telemetry, state under var/, the login for the server and for every client
    this process starts (served runs inherit the environment), logs to the UI rather than the terminal. Returns
    where the login is (a file or a variable's name)."""
    from flows import login

    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.setdefault("PREFECT_HOME", str(ROOT / "var" / "prefect"))
    os.environ.setdefault("PREFECT_API_URL", f"http://{HOST}:{PORT}/api")
    try:
        auth, where = login.ensure_credentials()
    except login.LoginUnavailable as exc:
        raise SystemExit(f"campaign: {exc}") from None
    os.environ[login.SERVER_VARIABLE] = auth
    os.environ[login.CLIENT_VARIABLE] = auth
    os.environ["PREFECT_SERVER_CSRF_PROTECTION_ENABLED"] = "true"
    os.environ["PREFECT_SERVER_CORS_ALLOWED_ORIGINS"] = os.environ["PREFECT_API_URL"].removesuffix("/api").rstrip("/")
    os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"  # what reaches the UI
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")  # what reaches the terminal
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    return where


def shown_url(url: str) -> str:
    """A database URL fit for a terminal: the password masked."""
    from sqlalchemy.engine import make_url

    from states.db import absolute_url

    return make_url(absolute_url(url)).render_as_string(hide_password=True)


def authorized(api_url: str, timeout: float = 5.0) -> bool:
    """Whether the server takes this process's login (health answers anyone; this asks an authenticated path)."""
    import httpx

    from flows import login

    found = login.read_credentials()
    user, _, password = (found[0] if found else ":").partition(":")
    try:
        answer = httpx.get(f"{api_url.rstrip('/')}/admin/version", auth=(user, password), timeout=timeout)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


def _die_with_parent(parent: int) -> None:
    """In the server's child process, before exec: the kernel sends it SIGTERM when its parent dies, however it
    dies (SIGKILL included). If the parent is already gone by now, no signal would ever come: exit at once."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0 or os.getppid() != parent:
        os._exit(1)


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def start_server(api_url: str, home: Path, wait: float = 120.0) -> subprocess.Popen[bytes] | None:
    """`prefect server start` as a child (SQLite under PREFECT_HOME), unless a server already answers. The child
    dies with this process (PR_SET_PDEATHSIG; the signal follows the thread that forks, here the main thread)."""
    if healthy(api_url):
        if not authorized(api_url):
            raise SystemExit(f"campaign: a Prefect server answers at {api_url} but refuses this login; stop it first")
        print(f"Prefect server already answers at {api_url}: reusing it")
        return None
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "server.log").open("ab")
    prefect = Path(sys.executable).with_name("prefect")
    where = urlsplit(api_url)
    command = [
        str(prefect) if prefect.exists() else "prefect", "server", "start",
        "--host", where.hostname or HOST, "--port", str(where.port or PORT),
    ]
    # A session of its own: the terminal's Ctrl-C reaches this process only, which stops the runner first and the
    # server after it.
    parent = os.getpid()
    child = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
        preexec_fn=lambda: _die_with_parent(parent),  # noqa: PLW1509 - async-signal-safe enough: one prctl call
    )
    os.chmod(home / "server.log", 0o600)
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


class _Again(Exception):
    """A second Ctrl-C or SIGTERM while stopping: stop now."""


def stop_server(child: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
    """SIGTERM, `grace` seconds to finish, then SIGKILL; a second Ctrl-C or SIGTERM meanwhile kills it at once."""
    if child is None or child.poll() is not None:
        return

    def again(_signum: int, _frame: object) -> None:
        raise _Again

    previous = {s: signal.signal(s, again) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=grace)
    except (subprocess.TimeoutExpired, _Again, KeyboardInterrupt):
        child.kill()
        child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


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
        import_roster(session, read_table(sample.roster_path()), sample.SECRETARY, now)
        load_plan(session, plan, sample.SECRETARY, now)
    return plan.key


def campaigns() -> dict[str, str]:
    from sqlalchemy import select

    from flows import runtime
    from states.models import Campaign

    with runtime.read(runtime.engine()) as session:
        return dict(session.execute(select(Campaign.key, Campaign.timezone).order_by(Campaign.key)).all())


def _terminate_as_interrupt(_signum: int, _frame: object) -> None:
    # SIGTERM stops like Ctrl-C: through the same `finally` that stops the server.
    raise KeyboardInterrupt


def main() -> None:
    os.chdir(ROOT)  # deployments' entrypoints (flows/<file>.py) are relative to the repository; var/ is here
    os.umask(0o077)  # what the service writes (the database, Prefect's, the logs, the credentials) is private
    login_at = _environment()
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
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
        from flows import login

        where = login_at if login_at in (login.SERVER_VARIABLE, login.CLIENT_VARIABLE) else str(Path(login_at).resolve())
        print(
            "\n".join(
                [
                    "",
                    f"  Prefect UI      {ui}  (deployments: {', '.join(d.name for d in deployments)})",
                    f"  login           user:password in {where}",
                    f"  database        {shown_url(found.database_url)}",
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
        try:
            stop_server(server)
        except KeyboardInterrupt:  # a second Ctrl-C between the runner's end and stop_server's own handlers
            if server is not None:
                server.kill()
        if server is not None:
            print("Prefect server stopped", flush=True)


if __name__ == "__main__":
    main()
