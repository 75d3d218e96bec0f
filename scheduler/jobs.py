"""When the scheduler must wake next (pure: no clock, no I/O, no APScheduler).

The daily sweep catches up whatever is due; these are the dates on which something *becomes*
due, so the service can also wake then: a reminder step on `due - k` for each `k` of the rule's
`before_due_days`, the first overdue notice on `due + 1`, and its repeats on
`due + 1 + m * overdue_every_days` — the same steps as scheduler.policy.plan_notices, whose
idempotency key changes exactly on those dates (an escalation changes no key, so it is no date).

Instants handed to the scheduler are aware datetimes in Asia/Shanghai; a naive one is refused,
because APScheduler would read it in whatever zone the host happens to run.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable
from zoneinfo import ZoneInfo

from rules.judgment import Judgment

SHANGHAI = ZoneInfo("Asia/Shanghai")
HORIZON_DAYS = 60


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone reached the scheduler."""


def require_aware(instant: dt.datetime, what: str = "instant") -> dt.datetime:
    """Return `instant` if it carries a time zone; refuse a naive one."""
    if not isinstance(instant, dt.datetime):
        raise TypeError(f"{what}: expected a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.tzinfo.utcoffset(instant) is None:
        raise NaiveDatetimeError(f"{what}: naive datetime {instant.isoformat()} — pass an aware datetime "
                                 "(Asia/Shanghai), the scheduler never guesses a time zone")
    return instant


def today_in_shanghai(now: dt.datetime) -> dt.date:
    """The calendar day in Shanghai at an aware instant."""
    return require_aware(now, "now").astimezone(SHANGHAI).date()


def parse_time_of_day(text: str) -> dt.time:
    """`HH:MM` (settings.sweep_time) → a time of day."""
    try:
        hour, minute = (int(p) for p in str(text).strip().split(":"))
        return dt.time(hour, minute)
    except (TypeError, ValueError):
        raise ValueError(f"expected a time of day HH:MM, got {text!r}") from None


def at_shanghai(day: dt.date, time_of_day: dt.time | str) -> dt.datetime:
    """The aware instant of `time_of_day` on `day` in Asia/Shanghai."""
    if isinstance(time_of_day, str):
        time_of_day = parse_time_of_day(time_of_day)
    if time_of_day.tzinfo is not None:
        raise ValueError("time of day: give a wall-clock time; the zone is always Asia/Shanghai")
    return dt.datetime.combine(day, time_of_day, SHANGHAI)


def _notice_dates(due: dt.date, policy: dict, after: dt.date, until: dt.date) -> Iterable[dt.date]:
    for k in policy.get("before_due_days") or ():
        yield due - dt.timedelta(days=int(k))
    first_overdue = due + dt.timedelta(days=1)
    yield first_overdue
    every = policy.get("overdue_every_days")
    if every:
        every = int(every)
        # first repeat m ≥ 1 that falls after `after`
        m = max(1, -(-((after - first_overdue).days + 1) // every))
        while (day := first_overdue + dt.timedelta(days=m * every)) <= until:
            yield day
            m += 1


def next_wakeups(judgments: Iterable[Judgment], policies: dict[str, dict], after: dt.date,
                 horizon_days: int | None = HORIZON_DAYS) -> list[dt.date]:
    """The sorted distinct dates after `after` (and within `horizon_days` of it; None: no bound
    but repeats, which never end, stop at a year) on which a reminder step or overdue notice of
    an unfulfilled obligation instance becomes due. `policies` are RuleVersion.reminders by rule id."""
    until = after + dt.timedelta(days=horizon_days if horizon_days is not None else 366)
    out: set[dt.date] = set()
    for j in judgments:
        if j.status in ("met", "met-late"):
            continue
        due = dt.date.fromisoformat(j.due)
        for day in _notice_dates(due, policies.get(j.rule) or {}, after, until):
            if after < day <= until:
                out.add(day)
    return sorted(out)


def wakeup_instants(days: Iterable[dt.date], time_of_day: dt.time | str) -> list[dt.datetime]:
    """Aware Asia/Shanghai instants at `time_of_day` on each day."""
    return [at_shanghai(d, time_of_day) for d in days]
