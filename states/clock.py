"""The campaign's time rules: instants in UTC, dates in the plan's timezone, deadlines at 00:00 of the next day."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from states.errors import BadInput, Refused

UTC = dt.UTC

FUTURE_SKEW = dt.timedelta(minutes=5)
"""How far ahead of the real clock a stated time may be outside simulation: clocks of two hosts differ a little."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadInput(zh=f"没有时区 {name!r}", en=f"unknown timezone {name!r}") from exc


def parse_instant(
    text: str | None, tz: str, now: dt.datetime | None = None, *, simulation: bool = False
) -> dt.datetime:
    """`--at`: ISO 8601; without an offset it is read in the campaign's timezone. Returns aware UTC.

    Outside simulation a time later than the real clock (`now`, plus `FUTURE_SKEW`) is refused: nobody fires a
    deadline early or dates a decision ahead by stating a time. Simulation (`CAMPAIGN_SIMULATION=1`: the demo, the
    tests) drives a whole campaign in simulated time."""
    real = (now or dt.datetime.now(UTC)).astimezone(UTC)
    if text is None or text == "":
        return real
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadInput(zh=f"--at {text!r} 不是 ISO 8601 时间（如 2024-05-01T09:00）", en=f"--at {text!r} is not an ISO 8601 time") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz))
    value = value.astimezone(UTC)
    if not simulation and value > real + FUTURE_SKEW:
        raise Refused(
            zh=f"时间 {text} 晚于当前时间（{real:%Y-%m-%dT%H:%M}Z）：只有模拟运行（CAMPAIGN_SIMULATION=1）才接受将来的时间",
            en=f"time {text} is later than now ({real:%Y-%m-%dT%H:%M}Z): a time ahead of the clock is accepted only in "
            "simulation (CAMPAIGN_SIMULATION=1)",
        )
    return value


def day_start(day: dt.date, tz: str) -> dt.datetime:
    """00:00 of `day` in the plan's timezone, as UTC."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone(tz)).astimezone(UTC)


def deadline_of(end: dt.date, tz: str) -> dt.datetime:
    """A phase's deadline: 00:00 of the day after its last day, in the plan's timezone."""
    return day_start(end + dt.timedelta(days=1), tz)


def local_date(at: dt.datetime, tz: str) -> dt.date:
    """The calendar date of an instant in the plan's timezone (evidence up to it counts)."""
    return as_utc(at).astimezone(zone(tz)).date()


def as_utc(value: dt.datetime) -> dt.datetime:
    """Instants come back from SQLite naive; they were stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_DATE = re.compile(r"(\d{4})(?:([-/])(\d{1,2})\2(\d{1,2})|年(\d{1,2})月(\d{1,2})日)", re.ASCII)


def parse_date(text: str) -> dt.date:
    """Dates in files: YYYY-MM-DD, and as Excel and WPS write them: YYYY/M/D, YYYY-M-D, YYYY年M月D日 (a spreadsheet's
    date cells reach here as YYYY-MM-DD, converted by the reader)."""
    found = _DATE.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD")
    year, _sep, month, day, month_zh, day_zh = found.groups()
    return dt.date(int(year), int(month or month_zh), int(day or day_zh))
