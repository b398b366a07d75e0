"""`make run` as an attacker and an operator meet it: `python -m flows.serve` in a process of its own, on a free port.

The API answers nothing without the login but the health probes, refuses a logged-in change without a CSRF token
and other origins' preflights; the banner names the credentials file and prints no password; and the Prefect server
it started dies with it, even when it is killed outright.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from flows import login
from flows.deployments import NAMES
from flows.serve import shown_url

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a reaper (a container's PID 1 may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def servers_on(port: int) -> list[int]:
    """The pids of `prefect server start … --port <port>` processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"server" in argv and b"start" in argv and str(port).encode() in argv and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@dataclass
class MakeRun:
    process: subprocess.Popen[str]
    url: str  # the UI's base URL; the API is under /api
    port: int
    credentials: Path
    banner: str
    folder: Path

    @property
    def auth(self) -> tuple[str, str]:
        user, _, password = self.credentials.read_text().strip().partition(":")
        return user, password


def start_make_run(folder: Path, extra: dict[str, str] | None = None, wait: float = 300) -> MakeRun:
    """`python -m flows.serve` with its own database, outbox, keys, login file, PREFECT_HOME and port; returns once
    its banner says it serves."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CAMPAIGN_"))}
    env.update(
        PREFECT_HOME=str(folder / "prefect"), PREFECT_API_URL=f"{url}/api", DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false", CAMPAIGN_DATABASE_URL=f"sqlite:///{folder / 'campaign.db'}",
        CAMPAIGN_OUTBOX_DIR=str(folder / "outbox"), CAMPAIGN_REPORT_DIR=str(folder / "reports"),
        CAMPAIGN_KEY_DIR=str(folder / "keys"), CAMPAIGN_UI_CREDENTIALS=str(folder / "ui-credentials"),
        PYTHONUNBUFFERED="1", **(extra or {}),
    )
    out = (folder / "make-run.out").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.serve"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + wait
    banner = ""
    while "Ctrl-C stops" not in banner:
        banner = (folder / "make-run.out").read_text()
        assert process.poll() is None, banner
        assert time.monotonic() < deadline, f"make run did not serve within {wait:.0f} s:\n{banner}"
        time.sleep(0.5)
    return MakeRun(process, url, port, folder / "ui-credentials", banner, folder)


def stop(run: MakeRun) -> None:
    if run.process.poll() is None:
        run.process.send_signal(signal.SIGTERM)
        try:
            run.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.wait()
    for pid in servers_on(run.port):  # never leave a server behind, whatever a test did
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def make_run() -> Iterator[MakeRun]:
    folder = Path(tempfile.mkdtemp(prefix="make-run-test-"))
    run = start_make_run(folder)
    try:
        yield run
    finally:
        stop(run)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_login_is_generated_private_and_named_in_the_banner_never_printed(make_run: MakeRun) -> None:
    text = make_run.credentials.read_text()
    assert stat.S_IMODE(make_run.credentials.stat().st_mode) == 0o600
    user, password = make_run.auth
    assert text.count("\n") == 1 and user == login.USER and len(password) >= 20
    assert password not in make_run.banner
    assert f"login           user:password in {make_run.credentials}" in make_run.banner


def csrf_headers(run: MakeRun) -> dict[str, str]:
    """A genuine CSRF token: only a logged-in client can get one (the token endpoint is behind the login too)."""
    client_id = str(uuid.uuid4())
    token = httpx.get(f"{run.url}/api/csrf-token", params={"client": client_id}, auth=run.auth, timeout=30)
    assert token.status_code == 200, token.text
    return {"Prefect-Csrf-Token": token.json()["token"], "Prefect-Csrf-Client": client_id}


def test_unauthenticated_api_calls_get_401_but_the_health_probe(make_run: MakeRun) -> None:
    """Every call without the right login is refused: 401; a change without a CSRF token is refused even before the
    login is looked at (403), so the login is tested with a genuine token as well."""
    api = f"{make_run.url}/api"
    some_run = uuid.uuid4()
    calls = [
        ("GET", "/admin/version", None),
        ("GET", f"/flow_runs/{some_run}", None),
        ("GET", "/csrf-token?client=x", None),
        ("GET", "/health/../admin/version", None),
        ("POST", "/deployments/filter", {}),
        ("POST", "/flow_runs/filter", {}),
        ("POST", f"/flow_runs/{some_run}/resume", {"run_input": {"decided_by": "M002"}}),
        ("POST", "/flow_runs/", {"flow_id": str(uuid.uuid4())}),
    ]
    genuine = csrf_headers(make_run)
    for method, path, body in calls:
        for auth in (None, ("operator", "wrong"), (make_run.auth[0], make_run.auth[1] + "x")):
            answer = httpx.request(method, f"{api}{path}", json=body, auth=auth, headers=genuine, timeout=30)
            assert answer.status_code == 401, (method, path, auth, answer.status_code)
            bare = httpx.request(method, f"{api}{path}", json=body, auth=auth, timeout=30)
            assert bare.status_code == (401 if method == "GET" else 403), (method, path, auth, bare.status_code)
    assert httpx.get(f"{api}/health", timeout=30).json() is True
    assert httpx.get(f"{api}/ready", timeout=30).status_code == 200
    assert httpx.get(f"{api}/admin/version", auth=make_run.auth, timeout=30).status_code == 200


def test_a_logged_in_change_needs_a_csrf_token_and_other_origins_are_refused(make_run: MakeRun) -> None:
    api = f"{make_run.url}/api"
    refused = httpx.post(f"{api}/deployments/filter", json={}, auth=make_run.auth, timeout=30)
    assert refused.status_code == 403 and "CSRF" in refused.text
    headers = csrf_headers(make_run)
    listed = httpx.post(f"{api}/deployments/filter", json={}, auth=make_run.auth, headers=headers, timeout=30)
    assert listed.status_code == 200 and {d["name"] for d in listed.json()} >= {"approval", "retry-stuck"}

    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            f"{api}/deployments/filter", timeout=30,
            headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type"},
        )

    assert preflight("http://evil.example").headers.get("access-control-allow-origin") is None
    assert preflight(make_run.url).headers.get("access-control-allow-origin") == make_run.url


def test_the_served_runs_and_the_cli_talk_to_prefect_with_the_login(make_run: MakeRun) -> None:
    """The start of `sfao-live` is due when make run loads it: its deadline run starts at once in the served
    deployment's process, which reports its states to the server through the login it inherited. The CLI, given
    only PREFECT_API_URL and the credentials file, finds those runs too."""
    headers = csrf_headers(make_run)
    deadline = time.monotonic() + 240
    states: list[str] = []
    while "COMPLETED" not in states:
        assert time.monotonic() < deadline, f"no deadline run completed: {states}"
        runs = httpx.post(
            f"{make_run.url}/api/flow_runs/filter", auth=make_run.auth, headers=headers, timeout=30,
            json={"flow_runs": {"idempotency_key": {"any_": ["sfao-live:start"]}}},
        )
        assert runs.status_code == 200, runs.text
        states = [r["state_type"] for r in runs.json()]
        time.sleep(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CAMPAIGN_"))}
    env.update(
        PREFECT_API_URL=f"{make_run.url}/api", PREFECT_HOME=str(make_run.folder / "cli-prefect-home"),
        CAMPAIGN_UI_CREDENTIALS=str(make_run.credentials), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    probe = (
        "from flows.login import use_for_clients\n"
        "assert use_for_clients()\n"
        "from prefect.client.orchestration import get_client\n"
        "with get_client(sync_client=True) as client:\n"
        "    print(sorted(d.name for d in client.read_deployments()))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == repr(sorted(NAMES)), done.stderr[-2000:]


@pytest.mark.browser
def test_a_browser_meets_the_login_page_and_sees_the_deployments_once_logged_in(make_run: MakeRun) -> None:
    """Debian's Chromium driven by Playwright (no browser download): the UI shows its login page and nothing else;
    a wrong login stays there; the generated credentials open the deployments page."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from flows.deployments import NAMES

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{make_run.url}/deployments")
            field = page.locator("input[type=password]")
            field.wait_for(timeout=60_000)
            assert not any(name in page.inner_text("body") for name in NAMES)
            page.screenshot(path=str(make_run.folder / "login.png"))
            field.fill("operator:not-the-password")
            page.keyboard.press("Enter")
            page.get_by_text("Authentication failed").first.wait_for(timeout=60_000)
            assert page.locator("input[type=password]").count() == 1
            field.fill(make_run.credentials.read_text().strip())
            page.keyboard.press("Enter")
            page.locator("input[type=password]").wait_for(state="detached", timeout=60_000)
            page.goto(f"{make_run.url}/deployments")
            for name in NAMES:
                page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
            page.screenshot(path=str(make_run.folder / "deployments.png"))
        finally:
            browser.close()


def test_the_server_dies_with_make_run_even_when_make_run_is_killed(make_run: MakeRun) -> None:
    [server] = servers_on(make_run.port)
    make_run.process.send_signal(signal.SIGKILL)
    make_run.process.wait()
    deadline = time.monotonic() + 60  # a bound for a busy machine, not a measurement: it takes ~1 s here
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not alive(server), "the Prefect server outlived make run"


def test_a_second_signal_while_stopping_stops_at_once(tmp_path: Path) -> None:
    """A server slow to shut down (here: one that notes SIGTERM and goes on) would get 600 s of grace; a second
    SIGTERM to the stopping process ends it now: it kills the server and returns."""
    noted = tmp_path / "term-received"
    slow = tmp_path / "slow.py"
    slow.write_text(
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: pathlib.Path(sys.argv[1]).touch())\n"
        "print(1, flush=True)\n"
        "while True:\n"
        "    time.sleep(1)\n"
    )
    script = tmp_path / "stopping.py"
    script.write_text(
        "import subprocess, sys\n"
        "from flows.serve import stop_server\n"
        "child = subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE)\n"
        "child.stdout.readline()\n"
        "print(child.pid, flush=True)\n"
        "stop_server(child, grace=600)\n"
        "print(child.returncode, flush=True)\n"
    )
    stopping = subprocess.Popen(
        [sys.executable, str(script), str(slow), str(noted)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert stopping.stdout is not None
    child = int(stopping.stdout.readline())
    deadline = time.monotonic() + 60
    while not noted.exists():  # the first SIGTERM reached the server: stop_server is waiting out its grace
        assert time.monotonic() < deadline and stopping.poll() is None
        time.sleep(0.1)
    stopping.send_signal(signal.SIGTERM)
    out, _ = stopping.communicate(timeout=120)
    assert out.strip() == str(-signal.SIGKILL)
    assert not alive(child)


def test_a_database_password_is_masked() -> None:
    shown = shown_url("postgresql+psycopg://campaign:s3cret-pw@db.example:5432/campaign")
    assert "s3cret-pw" not in shown and shown == "postgresql+psycopg://campaign:***@db.example:5432/campaign"
