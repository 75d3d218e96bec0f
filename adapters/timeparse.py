"""Dates and instants on the command line and in the API (Asia/Shanghai unless an offset is given)."""
from __future__ import annotations

import datetime as dt

from adapters.settings import SHANGHAI
from adapters.store import format_instant


class InputError(ValueError):
    """Bad input or usage: exit code 2, nothing stored."""


def parse_day(text: str, what: str = "--as-of") -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise InputError(f"{what}: expected a date YYYY-MM-DD, got {text!r}") from None
    if not 1900 <= day.year <= 2999:
        raise InputError(f"{what}: {text!r} is outside the years 1900–2999")
    return day


def parse_known_at(text: str | None) -> str | None:
    """An ISO 8601 instant → the store's commit-time text (UTC). Without an offset it is Shanghai
    time; a bare date means the end of that day in Shanghai."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            instant = dt.datetime.combine(day, dt.time(23, 59, 59, 999999), SHANGHAI)
        else:
            instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if instant.tzinfo is None:
                instant = instant.replace(tzinfo=SHANGHAI)
    except ValueError:
        raise InputError(f"--known-at: expected an ISO 8601 timestamp, got {text!r}") from None
    return format_instant(instant)


def today_in_shanghai(now: dt.datetime) -> dt.date:
    return now.astimezone(SHANGHAI).date()
