"""Dispatch throughput: N notices of the sample office written to files (not a test; run it by hand).

    .venv/bin/python -m tests.notify.bench_dispatch --notices 10000 [--channel file] [--batch 500]

It loads the sample office and its 2024 plan into a fresh SQLite database in a temporary directory, queues N
notices (phase_started, deadline_reminder with figures, member_stuck to member and secretary — the bulk of a
campaign's mail) for the 175 participants, then times `notices.dispatch.dispatch` over all of them and prints
notices per second. The outbox is on the same file system as the temporary directory (TMPDIR).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from notices.dispatch import dispatch
from states import outbox
from states.db import ensure_schema, make_engine
from states.models import Person
from states.settings import Settings
from tests.fixtures import KEY, at, load_sample


def queue_many(engine, count: int) -> None:  # type: ignore[no-untyped-def]
    when = at("2024-04-24T00:05")
    figures = {
        "study_hours": {"have": 46, "need": 50, "ok": False},
        "concentrated_days": {"have": 3, "need": 3, "ok": True},
        "study_check": {"have": None, "need": "pass", "ok": False},
    }
    with Session(engine) as session, session.begin():
        members = session.scalars(
            select(Person.member_id).where(Person.branch_id.is_not(None), Person.role != "inspector")
        ).all()
        for i in range(count):
            member = members[i % len(members)]
            kind = i % 3
            # What the sweep stores; dispatch adds the member's branch and names.
            base = {"phase": "study", "deadline": "2024-04-30"}
            if kind == 0:
                event, context = "phase_started", base
            elif kind == 1:
                event, context = "deadline_reminder", {**base, "days_before": 3, "figures": figures}
            else:
                event, context = "member_stuck", {**base, "member_id": member, "figures": figures}
            outbox.queue(
                session, event=event, campaign=KEY, recipient_id=member, subject=member, occasion=f"bench-{i}",
                context=context, at=when,
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notices", type=int, default=10_000)
    parser.add_argument("--channel", default="file")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'campaign.db'}")
        ensure_schema(engine)
        load_sample(engine, records=False)
        queue_many(engine, args.notices)
        settings = Settings(outbox_dir=Path(tmp) / "outbox")
        began = time.perf_counter()
        result = dispatch(engine, settings, args.channel, at=dt.datetime(2024, 4, 24, tzinfo=dt.UTC), batch=args.batch)
        seconds = time.perf_counter() - began
        files = len(list((Path(tmp) / "outbox").glob("*.eml")))
        print(
            f"{args.notices} notices, channel {args.channel}, batch {args.batch}: {seconds:.2f} s, "
            f"{result.sent / seconds:.0f} notices/s (sent {result.sent}, undeliverable {result.undeliverable}, "
            f"failed {result.failed}, files {files})"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
