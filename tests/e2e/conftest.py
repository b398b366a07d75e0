"""Running the `campaign` command as a user does, in-process (fast) or as a real process (exit codes, stderr)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Run:
    code: int
    out: str
    err: str


class Cli:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = {
            **os.environ,
            "CAMPAIGN_DATABASE_URL": f"sqlite:///{tmp / 'campaign.db'}",
            "CAMPAIGN_OUTBOX_DIR": str(tmp / "outbox"),
        }

    def __call__(self, *args: str) -> Run:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=self.env, cwd=self.tmp
        )
        return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)
