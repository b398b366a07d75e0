"""Fixtures shared by every test folder: a temporary SQLite database, and one Prefect test server per session.

The Prefect server starts only when a test asks for `prefect_harness` (it takes ~10–20 s), never for the others.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports Prefect: no telemetry, and Prefect's home in a temporary folder, not ~/.prefect or var/.
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
# The tests drive campaigns in simulated time (2024 and later); the clock's bound has tests of its own.
os.environ["CAMPAIGN_SIMULATION"] = "1"
_PREFECT_HOME = tempfile.mkdtemp(prefix="campaign-prefect-home-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
# The audit seal's key and anchor file: never the developer's var/keys or var/audit-anchors.
os.environ.setdefault("CAMPAIGN_AUDIT_KEY", "5ea1" * 16)
os.environ["CAMPAIGN_AUDIT_ANCHORS"] = os.path.join(_PREFECT_HOME, "audit-anchors")
atexit.register(shutil.rmtree, _PREFECT_HOME, True)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """One temporary Prefect server (its own SQLite database) for the whole session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL of a fresh SQLite file in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'campaign.db'}"
