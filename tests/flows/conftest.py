"""Fixtures of the Prefect flow tests (the helpers they use are in helpers.py)."""

from __future__ import annotations

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
