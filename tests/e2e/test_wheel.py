"""A built wheel, not the editable checkout, holds every package, the templates, the sample office and the migrations:
it is unpacked into an empty folder and run from there, away from the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, pathlib, sys
import cli.main, notices.render, reports.report, states.sample, flows.deadline
here = pathlib.Path(sys.argv[1]).resolve()
modules = [cli.main, notices.render, reports.report, states.sample, flows.deadline]
assert all(pathlib.Path(m.__file__).resolve().is_relative_to(here) for m in modules), [m.__file__ for m in modules]
templates = sorted(p.relative_to(notices.render.TEMPLATES_DIR).as_posix() for p in notices.render.TEMPLATES_DIR.rglob("*.j2"))
env = notices.render.make_environment()
env.get_template("reports/index.html.j2")
print(json.dumps({"templates": templates, "roster": states.sample.roster_path().is_file()}))
"""


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        capture_output=True, text=True,
    )
    if built.returncode != 0 and "bdist_wheel" in built.stderr:
        pytest.skip("the wheel package is not installed (make test installs the dev extras)")
    assert built.returncode == 0, built.stderr
    assert "warning" not in built.stderr.lower(), built.stderr  # a clean build: no wall of setuptools warnings
    (wheel,) = out.glob("*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "CAMPAIGN_DATABASE_URL": f"sqlite:///{cwd / 'c.db'}"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_the_wheel_ships_templates_sample_and_every_package(unpacked: Path, tmp_path: Path) -> None:
    probe = _run(unpacked, tmp_path, "-c", PROBE, str(unpacked))
    assert probe.returncode == 0, probe.stderr
    shipped = probe.stdout
    repo_templates = sorted(p.relative_to(ROOT / "templates").as_posix() for p in (ROOT / "templates").rglob("*.j2"))
    assert all(name in shipped for name in repo_templates)
    assert '"roster": true' in shipped


def test_the_wheel_creates_a_schema_from_its_own_migrations(unpacked: Path, tmp_path: Path) -> None:
    done = _run(unpacked, tmp_path, "-m", "cli.main", "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "c.db").stat().st_size > 0
