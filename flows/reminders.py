"""`reminders`: the daily tick at 00:05 in the campaign's timezone — a sweep at that time.

It queues the day's reminders, escalations and digest, ends publicity periods, and fires any deadline that was
due and missed (a server that was down at a deadline's instant catches up here, deciding as the deadline would
have). It is the same sweep as `phase-deadline`, so the two share one body and one concurrency slot.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import State

from flows.deadline import run_sweep

CRON = "5 0 * * *"
TIMEZONE = "Asia/Shanghai"


@flow(name="reminders", description="The daily tick: reminders, escalations, digest, publicity ends, missed deadlines.")
def reminders(campaign: str, at: str | None = None) -> dict[str, Any] | State:
    """A sweep at T (default now, i.e. the tick's time).

    Args:
        campaign: the campaign's key, e.g. sfao-2024
        at: simulated time T, ISO 8601 (no offset = the campaign's timezone); empty = now
    """
    # No `actor` parameter: a flow parameter is a stranger's word, so a sweep is logged as the system's own act
    # (with its flow run id), never in a name someone typed into a form.
    return run_sweep(campaign, at or None, "system")
