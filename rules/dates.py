"""Calendar arithmetic the rules share (pure)."""
from __future__ import annotations

import datetime as dt


def d(value: str | dt.date | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def anniversary(start: dt.date, years: int) -> dt.date:
    """The same day `years` later; 29 Feb → 1 Mar in a non-leap year (so the day before is 28 Feb)."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return dt.date(start.year + years, 3, 1)


def day_before_anniversary(start: dt.date, years: int) -> dt.date:
    return anniversary(start, years) - dt.timedelta(days=1)


def iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None
