"""`dispatch-notifications`: deliver the queued notices, with task retries and backoff for a channel that fails.

Delivery is idempotent (a notice is delivered once, however often dispatch runs), so a retry only tries what is
still queued. A notice that still fails after the last retry stays queued for the next run.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.states import Failed, State
from prefect.tasks import exponential_backoff

from flows import runtime

RETRIES = 3
BACKOFF_SECONDS = 10  # 10 s, 20 s, 40 s (± 20 %)


class NoticesNotDelivered(Exception):
    """Raised when a dispatch left notices undelivered: the task is retried with backoff."""


@task(
    name="deliver",
    cache_policy=NONE,
    retries=RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=BACKOFF_SECONDS),
    retry_jitter_factor=0.2,
)
def deliver(channel: str, batch: int) -> dict[str, int]:
    from notices.dispatch import dispatch  # the delivery code, imported where it runs

    found = runtime.settings()
    result = dispatch(runtime.engine(found), found, channel=channel, batch=batch)
    counts = {"sent": result.sent, "failed": result.failed, "undeliverable": result.undeliverable}
    if result.failed:
        raise NoticesNotDelivered(
            f"{result.failed} 条通知未能通过 {channel} 送达（仍在队列中）；已发送 {result.sent} 条"
        )
    return counts


@flow(name="dispatch-notifications", description="Deliver pending notices (file or smtp), retrying with backoff.")
def dispatch_notifications(campaign: str = "all", channel: str = "file", batch: int = 500) -> dict[str, Any] | State:
    """Deliver every pending notice.

    Args:
        campaign: shown in the run's name and results; delivery takes every campaign's queued notices
        channel: file (.eml files in CAMPAIGN_OUTBOX_DIR) or smtp (CAMPAIGN_SMTP_*)
        batch: notices per batch
    """
    if channel not in ("file", "smtp"):
        return Failed(message=f"campaign: 没有发送渠道 {channel!r}（file 或 smtp）")
    state = deliver(channel, batch, return_state=True)
    if state.is_failed():
        return Failed(message=runtime.one_line(state.result(raise_on_failure=False)))
    counts: dict[str, int] = state.result()
    get_run_logger().info(
        "%s: %d sent, %d undeliverable (no address for %s)", campaign, counts["sent"], counts["undeliverable"], channel
    )
    return {"campaign": campaign, "channel": channel, **counts}
