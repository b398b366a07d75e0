"""`python -m bench.ablate`: each variant switches off or varies a part of the sweep's work, never a decision —
otherwise the comparison with the floor would measure a different sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.run import is_short
from tests.reliability.synth import ROOT

# One variant per kind of switch (the built-in list repeats these kinds at 1M; each costs a child process here).
VARIANTS = ";".join([
    "", "no_seal", "no_context", "no_figures", "no_stuck_pass", "one_transaction", "chunk:1",
    "drop:ix_notice_event+ix_transition_log_sweep_id", "add:ix_trial=person(role/member_id)", "",
])


def test_every_variant_advances_the_same_members(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.ablate", "--n", "100", "--work", str(tmp_path), "--variants", VARIANTS],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    variants = result["variants"]
    assert len(variants) == 10  # the as-is run twice, the second labelled "(again)"
    # 100 generated members: one in three short of the hours (bench.run.is_short), one in fifty failing the check.
    moving = sum(1 for i in range(100) if not is_short(i) and i % 50 != 13)
    assert {v["advanced"] for v in variants.values()} == {moving}
    assert result["floor_decide_s"] > 0
    assert "× the floor" in proc.stdout and "fire: UPDATE member_progress" in proc.stdout
