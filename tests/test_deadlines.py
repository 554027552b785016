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
    after_working_days,
    due_at,
    extend,
    halfway,
    remaining,
    shift_by_remaining,
)

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
        remaining(naive, sh(2025, 9, 30, 16, 50))


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


def test_rejected_fix_reopens_with_remaining_time() -> None:
    due = sh(2025, 10, 9, 18, 0)
    left = remaining(due, sh(2025, 10, 9, 15, 0))
    assert left == timedelta(hours=3)
    reopened = shift_by_remaining(sh(2025, 10, 10, 9, 0), left)
    assert reopened == sh(2025, 10, 10, 12, 0)
    assert reopened.tzinfo is UTC


def test_reopened_with_no_time_left_is_due_at_once() -> None:
    left = remaining(sh(2025, 10, 9, 18, 0), sh(2025, 10, 10, 9, 0))
    assert left == timedelta(0)
    now = sh(2025, 10, 11, 9, 0)
    assert shift_by_remaining(now, left) == now
    assert shift_by_remaining(now, timedelta(hours=-1)) == now


def test_after_working_days_keeps_local_clock_time(calendar: WorkingDayCalendar) -> None:
    # Missed at 2025-09-30 18:00: one working day later is 10-09 18:00.
    missed = sh(2025, 9, 30, 18, 0)
    assert after_working_days(missed, 1, calendar, POLICY) == sh(2025, 10, 9, 18, 0)
    # After the close of day the time is still kept.
    late = sh(2025, 9, 30, 20, 30)
    assert after_working_days(late, 1, calendar, POLICY) == sh(2025, 10, 9, 20, 30)


def test_halfway() -> None:
    start = sh(2025, 10, 1, 23, 50)
    assert halfway(start, sh(2025, 10, 2, 0, 10)) == sh(2025, 10, 2, 0, 0)
    assert halfway(start, start + timedelta(minutes=15)).tzinfo is UTC
