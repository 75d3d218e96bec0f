"""Working days: our own counting rule, on data that can be updated without code."""
import datetime as dt

import pytest

from rules.calendar import WorkdayCalendar

CAL = WorkdayCalendar.bundled()
D = dt.date


def test_five_working_days_across_national_day_2023():
    count = CAL.add_working_days(D(2023, 9, 28), 5)
    assert count.due == D(2023, 10, 11)
    assert not count.provisional
    assert (D(2023, 10, 7), "国庆节") in count.makeup_days_counted
    assert D(2023, 9, 29) in [d for d, _ in count.holidays_skipped]


def test_the_day_of_the_event_is_not_counted_even_when_it_is_a_rest_day():
    # Saturday 2023-10-14: the next working days are Mon 16 … Fri 20.
    assert CAL.add_working_days(D(2023, 10, 14), 5).due == D(2023, 10, 20)
    # On a make-up Saturday (2023-10-07) the day itself is not counted either.
    assert CAL.add_working_days(D(2023, 10, 7), 1).due == D(2023, 10, 8)


def test_a_year_without_an_official_calendar_is_provisional():
    count = CAL.add_working_days(D(2026, 12, 28), 5)
    assert count.provisional and count.unknown_years == (2027,)
    assert count.due == D(2027, 1, 4)  # weekends only: Tue 29, Wed 30, Thu 31, Fri 1, Mon 4
    assert not CAL.add_working_days(D(2026, 12, 1), 5).provisional


def test_calendar_data_is_data():
    cal = WorkdayCalendar.from_data({"years": {2030: {"holidays": [{"date": "2030-01-01", "name": "元旦"}],
                                                      "makeup_workdays": [{"date": "2030-01-05", "for": "元旦"}]}}})
    assert not cal.is_workday(D(2030, 1, 1)) and cal.is_workday(D(2030, 1, 5))
    assert not cal.add_working_days(D(2029, 12, 31), 1).provisional


@pytest.mark.parametrize("year", range(2019, 2027))
def test_our_data_agrees_with_chinesecalendar_on_every_day(year):
    cc = pytest.importorskip("chinese_calendar")
    day = D(year, 1, 1)
    while day.year == year:
        assert CAL.is_workday(day) == cc.is_workday(day), day
        day += dt.timedelta(days=1)
