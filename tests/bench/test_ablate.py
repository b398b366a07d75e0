"""`python -m bench.ablate`: each variant switches off a part of the sweep's work, never a decision — otherwise the
comparison with the floor would measure a different sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.run import is_short
from tests.reliability.synth import ROOT


def test_every_variant_advances_the_same_members(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.ablate", "--n", "100", "--work", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    variants = result["variants"]
    assert len(variants) == 5
    # 100 generated members: one in three short of the hours (bench.run.is_short), one in fifty failing the check.
    moving = sum(1 for i in range(100) if not is_short(i) and i % 50 != 13)
    assert {v["advanced"] for v in variants.values()} == {moving}
    assert result["floor_decide_s"] > 0
    assert "× the floor" in proc.stdout
