"""Tests for workflows.deadlines: limits, due times, extensions, reopening."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from workflows.calendar import WorkingDayCalendar, load_override
from workflows.deadlines import (
    SHANGHAI,
    Limit,
    LimitUnit,
    WorkdayPolicy,
    add_working_time,
    after_working_days,
    due_at,
    extend,
    is_estimate,
    midpoint,
    reopened_due,
    time_left,
    working_time_between,
)

WD, MIN = LimitUnit.WORKING_DAYS, LimitUnit.MINUTES

OVERRIDE_2027 = Path(__file__).parent / "data" / "calendar_override_2027.yaml"
POLICY = WorkdayPolicy()


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment in Asia/Shanghai."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def calendar() -> WorkingDayCalendar:
    return WorkingDayCalendar()


def test_brief_example_national_day(calendar: WorkingDayCalendar) -> None:
    # Raised Tue 2025-09-30 16:50; 10-01..10-08 holiday; 10-09 is the 1st working day after.
    due = due_at(sh(2025, 9, 30, 16, 50), Limit(1, LimitUnit.WORKING_DAYS), calendar, POLICY)
    assert due == sh(2025, 10, 9, 18, 0)
    assert due == datetime(2025, 10, 9, 10, 0, tzinfo=UTC)
    assert due.tzinfo is UTC


def test_day_of_the_call_never_counts(calendar: WorkingDayCalendar) -> None:
    # Raised early on a working day: still due the close of the next working day.
    due = due_at(sh(2025, 9, 29, 8, 0), Limit.parse("1wd"), calendar, POLICY)
    assert due == sh(2025, 9, 30, 18, 0)


def test_local_date_decides_not_utc_date(calendar: WorkingDayCalendar) -> None:
    # 2025-10-09 16:30 UTC is 2025-10-10 00:30 in Shanghai (Friday); the next working
    # day after Friday 10-10 is the make-up Saturday 10-11.
    start = datetime(2025, 10, 9, 16, 30, tzinfo=UTC)
    assert due_at(start, Limit.parse("1wd"), calendar, POLICY) == sh(2025, 10, 11, 18, 0)


def test_across_spring_festival_2026(calendar: WorkingDayCalendar) -> None:
    # Fri 2026-02-13 → Sat 02-14 make-up (1); 02-15..02-23 holiday; 02-24 (2); 02-25 (3).
    due = due_at(sh(2026, 2, 13, 9, 0), Limit.parse("3wd"), calendar, POLICY)
    assert due == sh(2026, 2, 25, 18, 0)


def test_into_2027_with_override() -> None:
    calendar = WorkingDayCalendar(load_override(OVERRIDE_2027))
    # Wed 2026-12-30 → Thu 12-31 (1); Fri 2027-01-01 New Year holiday; weekend;
    # Mon 01-04 (2); Tue 01-05 (3).
    due = due_at(sh(2026, 12, 30, 10, 0), Limit.parse("3wd"), calendar, POLICY)
    assert due == sh(2027, 1, 5, 18, 0)


def test_into_2027_without_override_uses_fallback(
    calendar: WorkingDayCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    # Weekends only: Thu 12-31 (1); Fri 2027-01-01 counts (2); weekend; Mon 01-04 (3).
    with caplog.at_level(logging.WARNING, logger="workflows.calendar"):
        due = due_at(sh(2026, 12, 30, 10, 0), Limit.parse("3wd"), calendar, POLICY)
    assert due == sh(2027, 1, 4, 18, 0)
    assert any("2027" in r.getMessage() for r in caplog.records)


def test_emergency_minutes_run_through_nights_and_holidays(
    calendar: WorkingDayCalendar,
) -> None:
    due = due_at(sh(2025, 10, 1, 23, 50), Limit.parse("15m"), calendar, POLICY)
    assert due == sh(2025, 10, 2, 0, 5)
    assert due.tzinfo is UTC


def test_policy_sets_close_of_day(calendar: WorkingDayCalendar) -> None:
    policy = WorkdayPolicy(workday_end=time(17, 30))
    due = due_at(sh(2025, 9, 30, 16, 50), Limit.parse("1wd"), calendar, policy)
    assert due == sh(2025, 10, 9, 17, 30)


def test_naive_datetime_refused(calendar: WorkingDayCalendar) -> None:
    naive = datetime(2025, 9, 30, 16, 50)
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(naive, Limit.parse("1wd"), calendar, POLICY)
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(naive, Limit.parse("15m"), calendar, POLICY)
    with pytest.raises(ValueError, match="timezone-aware"):
        time_left(naive, sh(2025, 9, 30, 16, 50), MIN, calendar, POLICY)


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("15m", Limit(15, LimitUnit.MINUTES)),
        ("30 minutes", Limit(30, LimitUnit.MINUTES)),
        ("1 minute", Limit(1, LimitUnit.MINUTES)),
        ("2h", Limit(120, LimitUnit.MINUTES)),
        ("1 hour", Limit(60, LimitUnit.MINUTES)),
        ("1wd", Limit(1, LimitUnit.WORKING_DAYS)),
        ("5 working days", Limit(5, LimitUnit.WORKING_DAYS)),
        ("3 working_days", Limit(3, LimitUnit.WORKING_DAYS)),
        (" 1 Working Day ", Limit(1, LimitUnit.WORKING_DAYS)),
    ],
)
def test_limit_parse(text: str, limit: Limit) -> None:
    assert Limit.parse(text) == limit
    assert Limit.parse(str(limit)) == limit


def test_limit_canonical_text() -> None:
    assert str(Limit.parse("15 minutes")) == "15m"
    assert str(Limit.parse("2h")) == "120m"
    assert str(Limit.parse("5 working days")) == "5wd"
    assert LimitUnit("working_days") is LimitUnit.WORKING_DAYS


@pytest.mark.parametrize("text", ["", "15", "0m", "-1m", "1.5h", "m15", "5 days", "5wd later"])
def test_limit_parse_errors(text: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        Limit.parse(text)
    assert repr(text) in str(excinfo.value)


def test_limit_amount_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Limit(0, LimitUnit.WORKING_DAYS)


def test_extend_counts_from_the_deadline(calendar: WorkingDayCalendar) -> None:
    # Due Thu 2025-10-09; +2: Fri 10-10 (1), make-up Sat 10-11 (2).
    due = sh(2025, 10, 9, 18, 0)
    assert extend(due, 2, calendar, POLICY) == sh(2025, 10, 11, 18, 0)


def test_a_rejected_fix_keeps_the_working_time_that_was_left(
    calendar: WorkingDayCalendar,
) -> None:
    # Resolved Thu 10-09 10:00 with the deadline at 18:00: 8 working hours left.
    due, resolved = sh(2025, 10, 9, 18), sh(2025, 10, 9, 10)
    assert time_left(due, resolved, WD, calendar, POLICY) == timedelta(hours=8)
    # Rejected Fri 10-10 17:00: 1 hour on Friday; Sat 10-11 is a make-up working
    # day (调休) and takes the other 7: due 10-11 16:00.
    reopened = reopened_due(due, resolved, sh(2025, 10, 10, 17), WD, calendar, POLICY)
    assert reopened == sh(2025, 10, 11, 16)
    assert reopened.tzinfo is UTC
    # An ordinary Friday: 1 hour on Friday, 7 on Monday (never Saturday 01:00).
    due, resolved = sh(2025, 11, 13, 18), sh(2025, 11, 13, 10)
    reopened = reopened_due(due, resolved, sh(2025, 11, 14, 17), WD, calendar, POLICY)
    assert reopened == sh(2025, 11, 17, 16)


def test_a_rejected_fix_of_a_calendar_time_limit_keeps_wall_clock_time(
    calendar: WorkingDayCalendar,
) -> None:
    due = sh(2025, 10, 9, 18, 0)
    assert time_left(due, sh(2025, 10, 9, 15, 0), MIN, calendar, POLICY) == timedelta(hours=3)
    reopened = reopened_due(due, sh(2025, 10, 9, 15, 0), sh(2025, 10, 10, 23, 0), MIN,
                            calendar, POLICY)
    assert reopened == sh(2025, 10, 11, 2, 0)


@pytest.mark.parametrize("unit", [WD, MIN])
def test_reopened_with_no_time_left_is_due_at_once(
    calendar: WorkingDayCalendar, unit: LimitUnit,
) -> None:
    due, late = sh(2025, 10, 9, 18, 0), sh(2025, 10, 10, 9, 0)
    assert time_left(due, late, unit, calendar, POLICY) == timedelta(0)
    now = sh(2025, 10, 11, 23, 0)  # outside working hours: still at once
    assert reopened_due(due, late, now, unit, calendar, POLICY) == now


def test_working_time_counts_working_hours_of_working_days(
    calendar: WorkingDayCalendar,
) -> None:
    # 9-30 16:50 to 10-09 18:00: 1h10m on 9-30, nothing in the holiday, 9h on 10-09.
    start, due = sh(2025, 9, 30, 16, 50), sh(2025, 10, 9, 18)
    assert working_time_between(start, due, calendar, POLICY) == timedelta(hours=10, minutes=10)
    assert working_time_between(due, start, calendar, POLICY) == -timedelta(hours=10, minutes=10)
    # From outside working hours the clock starts at the next opening.
    assert add_working_time(sh(2025, 10, 1, 12), timedelta(hours=1), calendar, POLICY) == sh(
        2025, 10, 9, 10)
    # A whole day's working time ends at the close, not the next morning.
    assert add_working_time(sh(2025, 10, 9, 9), timedelta(hours=9), calendar, POLICY) == sh(
        2025, 10, 9, 18)
    assert add_working_time(sh(2025, 10, 9, 9), timedelta(0), calendar, POLICY) == sh(
        2025, 10, 9, 9)


def test_the_working_day_must_start_before_it_ends() -> None:
    with pytest.raises(ValueError):
        WorkdayPolicy(workday_start=time(18), workday_end=time(9))


def test_after_working_days_keeps_local_clock_time(calendar: WorkingDayCalendar) -> None:
    # Missed at 2025-09-30 18:00: one working day later is 10-09 18:00.
    missed = sh(2025, 9, 30, 18, 0)
    assert after_working_days(missed, 1, calendar, POLICY) == sh(2025, 10, 9, 18, 0)
    # After the close of day the time is still kept.
    late = sh(2025, 9, 30, 20, 30)
    assert after_working_days(late, 1, calendar, POLICY) == sh(2025, 10, 9, 20, 30)


def test_midpoint_of_a_calendar_time_limit_is_wall_clock() -> None:
    calendar = WorkingDayCalendar()
    start = sh(2025, 10, 1, 23, 50)
    assert midpoint(start, sh(2025, 10, 2, 0, 10), MIN, calendar, POLICY) == sh(2025, 10, 2)
    assert midpoint(start, start + timedelta(minutes=15), MIN, calendar, POLICY).tzinfo is UTC


def test_midpoint_of_a_working_day_limit_is_never_in_a_holiday() -> None:
    calendar = WorkingDayCalendar()
    # The National Day call: 10h10m of working time, half is 5h05m: 1h10m on
    # 9-30, then 3h55m into 10-09 → 12:55 (wall-clock half would be 10-05 05:25).
    start, due = sh(2025, 9, 30, 16, 50), sh(2025, 10, 9, 18)
    middle = midpoint(start, due, WD, calendar, POLICY)
    assert middle == sh(2025, 10, 9, 12, 55)
    # Any start and limit: the midpoint is in working hours of a working day.
    for day in range(1, 60):
        start = sh(2025, 9, 1) + timedelta(days=day, hours=day * 5 % 24)
        for days in (1, 2, 5, 10):
            due = due_at(start, Limit(days, WD), calendar, POLICY)
            local = midpoint(start, due, WD, calendar, POLICY).astimezone(SHANGHAI)
            assert calendar.is_working_day(local.date())
            assert time(9) <= local.time() <= time(18)


def test_a_deadline_counted_in_an_uncovered_year_is_an_estimate(
    calendar: WorkingDayCalendar,
) -> None:
    # chinese-calendar 1.11 knows 2026, not 2027.
    raised = sh(2026, 12, 30, 10)
    assert not is_estimate(raised, sh(2026, 12, 31, 18), False, calendar, POLICY)
    assert is_estimate(raised, sh(2027, 1, 6, 18), False, calendar, POLICY)
    assert is_estimate(sh(2027, 3, 1, 10), sh(2027, 3, 2, 18), False, calendar, POLICY)
    # Round the clock: the calendar is not asked.
    assert not is_estimate(raised, sh(2027, 1, 1, 2), True, calendar, POLICY)
    # Once the State Council's schedule is loaded, 2027 is exact.
    loaded = WorkingDayCalendar(load_override(OVERRIDE_2027))
    assert not is_estimate(raised, sh(2027, 1, 6, 18), False, loaded, POLICY)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_estimate(datetime(2027, 1, 1), sh(2027, 1, 6, 18), False, calendar, POLICY)


def test_working_time_skips_nights_weekends_holidays_and_counts_make_up_days(
    calendar: WorkingDayCalendar,
) -> None:
    def hours(start: datetime, end: datetime, policy: WorkdayPolicy = POLICY) -> float:
        return working_time_between(start, end, calendar, policy) / timedelta(hours=1)

    # 16:50-18:00, then the National Day holiday, then 09:00-09:12.
    assert hours(sh(2025, 9, 30, 16, 50), sh(2025, 10, 9, 9, 12)) == pytest.approx(82 / 60)
    # Friday 17-18, and Saturday 11 October is a make-up working day.
    assert hours(sh(2025, 10, 10, 17), sh(2025, 10, 11, 10)) == pytest.approx(2.0)
    assert hours(sh(2025, 10, 9, 20), sh(2025, 10, 10, 8)) == 0.0  # a night
    assert hours(sh(2025, 10, 11, 18), sh(2025, 10, 13, 9)) == 0.0  # a Sunday between
    # Configured hours: 08:30-17:30.
    early = WorkdayPolicy(workday_start=time(8, 30), workday_end=time(17, 30))
    assert hours(sh(2025, 10, 9, 8), sh(2025, 10, 10, 9), early) == pytest.approx(9.5)


@pytest.mark.parametrize("policy", [POLICY, WorkdayPolicy(workday_start=time(8, 30),
                                                          workday_end=time(17, 30))])
def test_working_time_between_and_add_working_time_are_inverse(
    calendar: WorkingDayCalendar, policy: WorkdayPolicy
) -> None:
    """The two walks over working time (the one measure, used by the clocks,
    the board and the report; and the one that adds it) agree: counting the
    working time to a moment in working hours and adding it back lands there."""
    start = sh(2025, 9, 26, 7, 15)
    for step in range(0, 24 * 20, 7):  # every 7 hours over 20 days, National Day included
        end = start + timedelta(hours=step, minutes=13)
        spent = working_time_between(start, end, calendar, policy)
        back = add_working_time(start, spent, calendar, policy)
        assert working_time_between(start, back, calendar, policy) == spent
        local = end.astimezone(policy.tz)
        if calendar.is_working_day(local.date()) and (
                policy.workday_start < local.time() <= policy.workday_end):
            assert back == end
