"""Chinese statutory working days (法定工作日), from data (rules/calendar/cn-workdays.yaml).

Weekends are rest days unless declared make-up working days (调休上班); weekdays are working days
unless public holidays. "Within N working days of an event": the event's own day is not counted;
the due date is the N-th working day after it. We own this counting rule (chinesecalendar's
find_workday counts from a rest day differently). A year whose official calendar is not in the
data is counted on weekends alone and the result is flagged provisional — never silently guessed.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class WorkingDayCount:
    due: dt.date
    provisional: bool
    unknown_years: tuple[int, ...]
    holidays_skipped: tuple[tuple[dt.date, str], ...]
    makeup_days_counted: tuple[tuple[dt.date, str], ...]
    holiday_runs: tuple[tuple[dt.date, dt.date], ...] = ()  # consecutive rest days that include a holiday


@dataclass
class WorkdayCalendar:
    holidays: dict[dt.date, str] = field(default_factory=dict)
    makeup_workdays: dict[dt.date, str] = field(default_factory=dict)
    known_years: frozenset[int] = frozenset()

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "WorkdayCalendar":
        holidays: dict[dt.date, str] = {}
        makeup: dict[dt.date, str] = {}
        years = set()
        for year, block in (data.get("years") or {}).items():
            years.add(int(year))
            for h in block.get("holidays") or []:
                holidays[_date(h["date"])] = str(h.get("name", ""))
            for w in block.get("makeup_workdays") or []:
                makeup[_date(w["date"])] = str(w.get("for", ""))
        return cls(holidays, makeup, frozenset(years))

    @classmethod
    def bundled(cls) -> "WorkdayCalendar":
        from rules.yamltext import load_yaml
        text = resources.files("rules").joinpath("calendar/cn-workdays.yaml").read_text(encoding="utf-8")
        return cls.from_data(load_yaml(text, int_keys=True))  # years as ints, dates as text

    def is_known(self, day: dt.date) -> bool:
        return day.year in self.known_years

    def is_workday(self, day: dt.date) -> bool:
        if day in self.makeup_workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: dt.date, n: int) -> WorkingDayCount:
        """The n-th working day after `start` (start itself not counted)."""
        day = start
        counted = 0
        unknown: set[int] = set()
        skipped: list[tuple[dt.date, str]] = []
        makeup: list[tuple[dt.date, str]] = []
        runs: list[tuple[dt.date, dt.date]] = []
        run: list[dt.date] = []
        while counted < n:
            day += dt.timedelta(days=1)
            if not self.is_known(day):
                unknown.add(day.year)
            if self.is_workday(day):
                counted += 1
                if day in self.makeup_workdays:
                    makeup.append((day, self.makeup_workdays[day]))
                if run and any(d in self.holidays for d in run):
                    runs.append((run[0], run[-1]))
                run = []
            else:
                run.append(day)
                if day in self.holidays:
                    skipped.append((day, self.holidays[day]))
        return WorkingDayCount(day, bool(unknown), tuple(sorted(unknown)), tuple(skipped), tuple(makeup), tuple(runs))


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
