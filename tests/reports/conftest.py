"""Fixtures of the report tests: the sample campaign built once per test module."""

from __future__ import annotations

import pytest

from tests.reports.campaign import Built, build


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A couple of seconds on SQLite: built once per module, shared by its tests."""
    return build(tmp_path_factory.mktemp("report"))
