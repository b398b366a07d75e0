"""The audit seal's cost: one block of N synthetic log entries digested keyed (HMAC over JSON batches) and with the
former unkeyed digest (SQL-built text, SHA-256 per row), each timed twice, alternating.

    python -m bench.seal 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from states import audit
from states.db import ensure_schema, make_engine

FILL = """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n)
INSERT INTO transition_log (campaign_key, member_id, branch_id, from_state, to_state, cause, trigger, sweep_id, actor,
    reason, flow_run_id, at, block, recorded_at)
SELECT 'bench-2024', 'M' || printf('%07d', i), 'B' || printf('%05d', i / 50), 'study', 'analysis', 'sweep', 'advance',
    'abcdef0123456789abcdef0123456789', 'system', '', NULL, '2024-05-01 00:00:01.000000', 'bench',
    strftime('%Y-%m-%d %H:%M:%f', 'now') || '000' FROM n"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entries", type=int, nargs="?", default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'seal.db'}")
        ensure_schema(engine)
        with engine.begin() as connection:
            connection.execute(text(FILL), {"n": args.entries})
        at = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
        ways = {
            "unkeyed (former)": lambda s: audit._legacy_digest(s, "bench", audit.GENESIS),
            "keyed (HMAC)": lambda s: audit.block_digest(s, b"k" * 32, "bench", audit.GENESIS, at),
        }
        for _ in range(2):
            for name, digest in ways.items():
                with Session(engine) as session:
                    start = time.perf_counter()
                    count, _ = digest(session)
                    print(f"{name:18} {count} entries  {time.perf_counter() - start:.2f} s")
        engine.dispose()


if __name__ == "__main__":
    main()
