"""The README's first session runs as it stands on a fresh checkout: its code block, line by line, in a folder of
its own holding only the repository's sample files; every command exits 0 and shows what the README says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def first_session() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A first session with the command line", 1)[1]
    block = re.search(r"^```\n(.*?)^```", section, re.S | re.M)
    assert block is not None, "the README's first session has no code block"
    return block.group(1)


def test_the_readme_first_session_runs_verbatim(tmp_path: Path) -> None:
    script = first_session()
    commands = [line for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert any(c.startswith("campaign record import states/sample/mended-2024.csv") for c in commands)
    shutil.copytree(ROOT / "states" / "sample", tmp_path / "states" / "sample")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CAMPAIGN_", "PREFECT_API"))
    } | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "CAMPAIGN_SIMULATION": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    # `set -e`: the first command that fails stops the session; `-x` names it on stderr.
    done = subprocess.run(
        ["bash", "-e", "-x", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "sfao-2024" in done.stdout
    assert re.search(r"46\D+50", done.stdout), done.stdout[-2000:]  # explain: study hours 46 of 50
    assert (tmp_path / "var" / "reports" / "sfao-2024" / "index.html").exists()
    assert any((tmp_path / "var" / "outbox").rglob("*.eml"))


def test_nothing_in_the_repository_points_outside_it() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    outside = re.compile(r"\.\./shared|/work/shared|\b(?:CONTRACT|DOMAIN|DESIGN|STYLE|TIPS)\.md")
    here = Path(__file__).resolve()
    found = []
    for name in tracked:
        path = ROOT / name
        if path == here or not path.is_file() or path.suffix in (".png", ".svg", ".db"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{name}: {m.group(0)}" for m in outside.finditer(text)]
    assert found == []
