"""When the scheduler wakes: scheduler.jobs.next_wakeups on hand-made judgments, with the
bundled rules' `reminders:` policies, and the aware-datetime helpers."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from rules.catalogue import Catalogue
from rules.judgment import Judgment
from scheduler.jobs import (NaiveDatetimeError, at_shanghai, next_wakeups, parse_time_of_day, require_aware,
                            today_in_shanghai, wakeup_instants)
from scheduler.policy import plan_notices

D = dt.date.fromisoformat
SHANGHAI = ZoneInfo("Asia/Shanghai")


def judgment(rule: str, due: str, status: str = "open", subject: str = "c-icv", period: str = "2023",
             trigger: str | None = None, unit: str | None = "sh-zjy") -> Judgment:
    return Judgment(rule=rule, rule_version=1, jurisdiction="shanghai", subject=subject, subject_kind="center",
                    period=period, trigger=trigger, due=due, status=status, satisfied_on=None, provisional=False,
                    citation={"document": "沪市监计量〔2023〕213号", "clause": "五(二)"}, explanation="", title="",
                    unit=unit, facts=[], as_of="2023-10-01")


@pytest.fixture(scope="module")
def policies() -> dict[str, dict]:
    return {v.id: v.reminders for v in Catalogue.bundled().in_force(D("2023-10-01"))}


def test_the_bundled_policies_are_the_ones_these_cases_assume(policies):
    assert policies["center-major-event"]["before_due_days"] == [2]
    assert policies["center-major-event"]["overdue_every_days"] == 7
    assert policies["center-annual-report"]["before_due_days"] == [30, 7, 1]
    assert policies["center-annual-report"]["overdue_every_days"] == 14
    assert policies["training-hours"]["overdue_every_days"] is None


def test_a_major_event_open_before_its_due_date_wakes_for_the_reminder_the_first_overdue_notice_and_weekly_repeats(policies):
    j = judgment("center-major-event", "2023-10-11", period="2023-09-28", trigger="ev-me1")
    days = next_wakeups([j], policies, after=D("2023-10-01"), horizon_days=30)
    # due - 2; due + 1; due + 1 + 7k while ≤ 2023-10-31
    assert days == [D("2023-10-09"), D("2023-10-12"), D("2023-10-19"), D("2023-10-26")]


def test_dates_on_or_before_after_are_not_wakeups(policies):
    j = judgment("center-major-event", "2023-10-11", period="2023-09-28", trigger="ev-me1")
    assert next_wakeups([j], policies, after=D("2023-10-09"), horizon_days=12) == [D("2023-10-12"), D("2023-10-19")]
    assert next_wakeups([j], policies, after=D("2023-10-12"), horizon_days=7) == [D("2023-10-19")]


def test_an_overdue_annual_report_wakes_only_for_its_repeats_every_fourteen_days(policies):
    j = judgment("center-annual-report", "2023-11-30", status="overdue")
    # first overdue notice 2023-12-01, repeats 12-15, 12-29, 2024-01-12, 01-26 …
    assert next_wakeups([j], policies, after=D("2023-12-20"), horizon_days=40) == [D("2023-12-29"), D("2024-01-12"),
                                                                                   D("2024-01-26")]


def test_a_yearly_total_without_repeats_wakes_once_after_the_year_and_then_never(policies):
    j = judgment("training-hours", "2023-12-31", subject="p-001")
    assert next_wakeups([j], policies, after=D("2023-11-15"), horizon_days=60) == [
        D("2023-12-01"), D("2023-12-24"), D("2023-12-30"), D("2024-01-01")]
    breached = judgment("training-hours", "2023-12-31", status="breached", subject="p-001")
    assert next_wakeups([breached], policies, after=D("2024-01-01"), horizon_days=365) == []


def test_fulfilled_instances_never_wake_the_scheduler(policies):
    for status in ("met", "met-late"):
        j = judgment("center-major-event", "2023-10-11", status=status, period="2023-09-28", trigger="ev-me1")
        assert next_wakeups([j], policies, after=D("2023-10-01")) == []


def test_a_rule_without_a_policy_still_wakes_for_its_first_overdue_notice():
    j = judgment("some-new-rule", "2023-10-11")
    assert next_wakeups([j], {}, after=D("2023-10-01")) == [D("2023-10-12")]


def test_the_horizon_bounds_the_dates_and_several_instances_merge_sorted_without_duplicates(policies):
    a = judgment("center-major-event", "2023-10-11", period="2023-09-28", trigger="ev-me1")
    b = judgment("center-major-event", "2023-10-11", period="2023-09-28", trigger="ev-me2")
    c = judgment("center-rectification", "2023-11-15", period="2023-10-09", trigger="ev-ro1")
    days = next_wakeups([c, a, b], policies, after=D("2023-10-01"), horizon_days=60)
    assert days == sorted(set(days))
    assert all(D("2023-10-01") < d <= D("2023-11-30") for d in days)
    assert {D("2023-11-01"), D("2023-11-12"), D("2023-11-16"), D("2023-11-23"), D("2023-11-30")} <= set(days)
    assert D("2023-12-07") not in days  # beyond the 60 days


def test_every_wakeup_is_a_day_on_which_the_policy_plans_a_notice_it_did_not_plan_the_day_before(policies):
    """The wake-up dates agree with scheduler.policy: on each, a new idempotency key appears."""
    j_open = judgment("center-rectification", "2023-11-15", period="2023-10-09", trigger="ev-ro1")
    after = D("2023-10-20")
    days = next_wakeups([j_open], policies, after=after, horizon_days=90)

    def keys(day: dt.date) -> set[str]:
        status = "open" if day <= D("2023-11-15") else "overdue"
        j = judgment("center-rectification", "2023-11-15", status=status, period="2023-10-09", trigger="ev-ro1")
        return {p.key for p in plan_notices([j], policies, day, {"shanghai": "sh-jlc"}, {})}

    changed = [after + dt.timedelta(days=i) for i in range(1, 91)
               if keys(after + dt.timedelta(days=i)) - keys(after + dt.timedelta(days=i - 1))]
    assert days == changed


# -- aware datetimes only ---------------------------------------------------------------------------------
def test_wakeup_instants_are_aware_and_in_shanghai_at_the_sweep_time():
    instants = wakeup_instants([D("2023-10-09"), D("2023-10-12")], "08:30")
    for t in instants:
        assert t.tzinfo is not None and t.utcoffset() == dt.timedelta(hours=8)
        assert t.tzinfo == SHANGHAI and (t.hour, t.minute) == (8, 30)
    assert instants[0].astimezone(dt.timezone.utc) == dt.datetime(2023, 10, 9, 0, 30, tzinfo=dt.timezone.utc)
    assert require_aware(instants[0]) is instants[0]


def test_a_naive_datetime_is_refused():
    with pytest.raises(NaiveDatetimeError, match="naive"):
        require_aware(dt.datetime(2023, 10, 9, 8, 30))
    with pytest.raises(NaiveDatetimeError):
        today_in_shanghai(dt.datetime(2023, 10, 9, 23, 30))
    with pytest.raises(ValueError):
        at_shanghai(D("2023-10-09"), dt.time(8, 30, tzinfo=dt.timezone.utc))


def test_today_in_shanghai_reads_an_aware_instant_in_shanghai():
    # 16:30 UTC on the 9th is 00:30 on the 10th in Shanghai
    assert today_in_shanghai(dt.datetime(2023, 10, 9, 16, 30, tzinfo=dt.timezone.utc)) == D("2023-10-10")
    assert today_in_shanghai(dt.datetime(2023, 10, 9, 15, 59, tzinfo=dt.timezone.utc)) == D("2023-10-09")


def test_the_sweep_time_must_be_a_time_of_day():
    assert parse_time_of_day("08:30") == dt.time(8, 30)
    for bad in ("8h30", "25:00", "", None):
        with pytest.raises(ValueError):
            parse_time_of_day(bad)
