"""Fixtures of the Prefect flow tests (the helpers they use are in helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.flows.helpers import load_sample, use_database


@pytest.fixture
def campaign_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    """A fresh campaign database with the sample office, the 2024 plan and its records, found by the flows."""
    db = use_database(monkeypatch, tmp_path / "db")
    load_sample(db, tmp_path)
    return db


@pytest.fixture(autouse=True)
def no_flow_heartbeats() -> Iterator[None]:
    """Flow runs in these tests are in-process and short: no heartbeat thread, whose join costs up to a second
    at the end of every flow run (Prefect 3.9 sleeps in one-second steps between heartbeats)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
