"""The dispatch-notifications flow: delivery is retried with backoff while notices stay undelivered."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

import flows.dispatch_flow as dispatch_flow
from states import sweep
from tests.fixtures import SEAL_KEY
from tests.flows.helpers import KEY, at

pytestmark = pytest.mark.prefect


@dataclass
class Outcome:
    sent: int
    failed: int
    undeliverable: int = 0


def fake_notify(monkeypatch: pytest.MonkeyPatch, outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Stand in for notices.dispatch with a channel that fails as told; returns the calls it received."""
    calls: list[dict[str, Any]] = []

    def dispatch(engine: Engine, settings: Any, channel: str = "file", at: Any = None, batch: int = 500) -> Outcome:
        calls.append({"channel": channel, "batch": batch})
        return outcomes[min(len(calls), len(outcomes)) - 1]

    monkeypatch.setitem(sys.modules, "notices.dispatch", types.SimpleNamespace(dispatch=dispatch))
    monkeypatch.setattr(dispatch_flow, "deliver", dispatch_flow.deliver.with_options(retry_delay_seconds=0))
    return calls


def test_a_failing_channel_is_retried_until_everything_is_delivered(
    prefect_harness: str, campaign_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_notify(monkeypatch, [Outcome(sent=3, failed=2), Outcome(sent=2, failed=0, undeliverable=1)])
    state = dispatch_flow.dispatch_notifications(KEY, channel="smtp", return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == {"campaign": KEY, "channel": "smtp", "sent": 2, "failed": 0, "undeliverable": 1}
    assert calls == [{"channel": "smtp", "batch": 500}] * 2


def test_notices_still_undelivered_after_the_last_retry_fail_the_run(
    prefect_harness: str, campaign_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_notify(monkeypatch, [Outcome(sent=0, failed=4)])
    state = dispatch_flow.dispatch_notifications(KEY, return_state=True)
    assert state.is_failed()
    assert state.message == "campaign: 4 条通知未能通过 file 送达（仍在队列中）；已发送 0 条"
    assert len(calls) == 1 + dispatch_flow.RETRIES


def test_the_file_channel_writes_the_queued_notices(prefect_harness: str, campaign_db: Engine, tmp_path: Path) -> None:
    pytest.importorskip("notices.dispatch")
    sweep.sweep(campaign_db, KEY, at("2024-03-25T00:00:01"), seal_key=SEAL_KEY)  # 175 phase_started notices, among others
    state = dispatch_flow.dispatch_notifications(KEY, return_state=True)
    assert state.is_completed(), state.message
    sent = state.result()["sent"]
    assert sent >= 175
    assert len(list((tmp_path / "db" / "outbox").glob("*.eml"))) == sent
    again = dispatch_flow.dispatch_notifications(KEY, return_state=True)
    assert again.result()["sent"] == 0
