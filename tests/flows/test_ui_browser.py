"""Prefect's UI as a person sees it: a real `prefect server` behind the login `make run` sets up (basic auth, CSRF,
CORS to its own origin), the deployments of prefect.yaml, one deadline run, and Debian's Chromium, driven by
Playwright, logging in and showing the deployments page and the progress artifact (screenshots in
docs/screenshots/)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.flows.helpers import KEY, load_sample, use_database

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
# A test run leaves the checkout as it found it: the docs' pictures are renewed only when asked for.
KEEP_SCREENSHOTS = os.environ.get("CAMPAIGN_KEEP_SCREENSHOTS") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AUTH = f"operator:{secrets.token_urlsafe(18)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[str]:
    """`prefect server start` on a free port with its own PREFECT_HOME; yields the base URL (UI; API under /api)."""
    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="prefect-ui-test-"))
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
        PREFECT_UI_API_URL=f"{url}/api", PREFECT_SERVER_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_API_AUTH_STRING=AUTH, PREFECT_SERVER_CSRF_PROTECTION_ENABLED="true",
        PREFECT_SERVER_CORS_ALLOWED_ORIGINS=url,
    )
    prefect = Path(sys.executable).with_name("prefect")
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (home / "server.log").read_text()
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the Prefect server did not answer within 120 s"
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(home, ignore_errors=True)


REGISTER_AND_SWEEP = """
from flows.deadline import phase_deadline
from flows.deployments import runner_deployments

for deployment in runner_deployments({"sfao-2024": "Asia/Shanghai"}):
    deployment.apply()
for when in ("2024-03-25T00:00:01", "2024-05-01T00:00:01"):  # the start, then the study deadline
    state = phase_deadline("sfao-2024", at=when, return_state=True)
    assert state.is_completed(), state.message
"""


def render(page: object, url: str, screenshot: Path, *texts: str) -> str:
    """Open a page of the single-page app in the logged-in browser, wait until it shows every one of `texts` (it
    fetches its data after it loads), save a screenshot and return the DOM."""
    page.goto(url)  # type: ignore[attr-defined]
    for text in texts:
        page.get_by_text(text).first.wait_for(timeout=90_000)  # type: ignore[attr-defined]
    page.screenshot(path=str(screenshot))  # type: ignore[attr-defined]
    return str(page.content())  # type: ignore[attr-defined]


def test_the_ui_lists_the_deployments_and_shows_the_progress_artifact(
    prefect_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows.deployments import NAMES

    db = use_database(monkeypatch, tmp_path / "db")
    load_sample(db, tmp_path)
    # A process of its own, as a user's would be: Prefect's clients and background workers in this process belong to
    # the session's test server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_API_URL=f"{prefect_server}/api", PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_API_AUTH_STRING=AUTH,
    )
    subprocess.run([sys.executable, "-c", REGISTER_AND_SWEEP], env=env, cwd=ROOT, check=True, timeout=180)
    login = tuple(AUTH.split(":", 1))
    client_id = secrets.token_hex(8)
    token = httpx.get(f"{prefect_server}/api/csrf-token", params={"client": client_id}, auth=login).json()["token"]
    latest = httpx.post(
        f"{prefect_server}/api/artifacts/filter", auth=login,
        headers={"Prefect-Csrf-Token": token, "Prefect-Csrf-Client": client_id},
        json={"artifacts": {"key": {"any_": [f"{KEY}-progress"]}}, "sort": "CREATED_DESC", "limit": 1},
    ).json()[0]

    from playwright.sync_api import sync_playwright

    shots = SCREENSHOTS if KEEP_SCREENSHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{prefect_server}/deployments")
            field = page.locator("input[type=password]")  # the login page: one field, user:password
            field.wait_for(timeout=90_000)
            field.fill(AUTH)
            page.keyboard.press("Enter")
            field.wait_for(state="detached", timeout=90_000)
            deployments = render(page, f"{prefect_server}/deployments", shots / "prefect-deployments.png", *NAMES)
            table = render(
                page, f"{prefect_server}/artifacts/artifact/{latest['id']}", shots / "prefect-artifact.png",
                f"{KEY}-progress", "stuck_members", "B08",
            )
        finally:
            browser.close()
    for name in NAMES:
        assert name in deployments
    assert f"{KEY}-progress" in table and "stuck_members" in table and "B09" in table
    for name in ("prefect-deployments.png", "prefect-artifact.png"):
        assert (shots / name).stat().st_size > 10_000
