"""The honest clock: outside simulation nobody states a time ahead of now; inside it the whole campaign may run."""

from __future__ import annotations

import datetime as dt

import pytest

from states.clock import FUTURE_SKEW, parse_instant
from states.errors import BadInput, Refused

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def test_no_time_is_now() -> None:
    assert parse_instant(None, "Asia/Shanghai", NOW) == NOW


def test_a_past_time_is_read_in_the_campaigns_zone() -> None:
    assert parse_instant("2024-05-01T08:00", "Asia/Shanghai", NOW) == dt.datetime(2024, 5, 1, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("ahead", [dt.timedelta(0), FUTURE_SKEW])
def test_a_time_within_the_skew_is_accepted(ahead: dt.timedelta) -> None:
    text = (NOW + ahead).isoformat()
    assert parse_instant(text, "Asia/Shanghai", NOW) == NOW + ahead


@pytest.mark.parametrize("ahead", [FUTURE_SKEW + dt.timedelta(seconds=1), dt.timedelta(days=200)])
def test_a_time_ahead_of_the_clock_is_refused_outside_simulation(ahead: dt.timedelta) -> None:
    with pytest.raises(Refused, match="CAMPAIGN_SIMULATION"):
        parse_instant((NOW + ahead).isoformat(), "Asia/Shanghai", NOW)


def test_simulation_accepts_the_future() -> None:
    later = NOW + dt.timedelta(days=200)
    assert parse_instant(later.isoformat(), "Asia/Shanghai", NOW, simulation=True) == later


def test_a_malformed_time_is_bad_input() -> None:
    with pytest.raises(BadInput):
        parse_instant("next tuesday", "Asia/Shanghai", NOW)
