"""The sample campaign, driven once per session, shared by the notification tests that read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.notify.campaign import Driven, drive_idle, drive_sample


@pytest.fixture(scope="session")
def driven(tmp_path_factory: pytest.TempPathFactory) -> Driven:
    """The whole sample campaign in simulated time (SQLite), with the notices each step queued."""
    return drive_sample(Path(tmp_path_factory.mktemp("campaign")))


@pytest.fixture(scope="session")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Driven:
    """The sample office with no evidence: every branch stuck from the study deadline on."""
    return drive_idle(Path(tmp_path_factory.mktemp("idle")))
