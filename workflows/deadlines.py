"""Deadlines of a call: limits, when they fall due, extensions and reopening.

A catalog item's limit is either calendar minutes (emergencies: round the
clock, nights and holidays included) or working days (ending at the close of
the Nth working day after the call). All inputs must be timezone-aware; all
results are aware UTC, as stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from workflows.calendar import WorkingDayCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_WORKDAY_END = time(18, 0)


class LimitUnit(StrEnum):
    """What a limit counts: calendar minutes or working days (a str, as stored)."""

    MINUTES = "minutes"
    WORKING_DAYS = "working_days"


_LIMIT_RE = re.compile(
    r"""^\s*(?P<amount>\d+)\s*(?:
        (?P<minutes>m|mins?|minutes?)
      | (?P<hours>h|hrs?|hours?)
      | (?P<working_days>wd|working[\s_]days?)
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True)
class Limit:
    """How long a step of a call may take, as a catalog item sets it."""

    amount: int
    unit: LimitUnit

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise ValueError(f"limit must be positive, got {self.amount} {self.unit.value}")

    @classmethod
    def parse(cls, text: str) -> Limit:
        """A limit from text such as "15m", "30 minutes", "2h", "1wd" or "5 working days".

        Hours become minutes; raises ValueError naming the text if it is not a limit.
        """
        match = _LIMIT_RE.match(text)
        if match is None:
            raise ValueError(f"not a limit: {text!r} (try '15m', '2h' or '5wd')")
        amount = int(match["amount"])
        if amount <= 0:
            raise ValueError(f"limit must be positive: {text!r}")
        if match["working_days"]:
            return cls(amount, LimitUnit.WORKING_DAYS)
        if match["hours"]:
            return cls(amount * 60, LimitUnit.MINUTES)
        return cls(amount, LimitUnit.MINUTES)

    def __str__(self) -> str:
        suffix = "m" if self.unit is LimitUnit.MINUTES else "wd"
        return f"{self.amount}{suffix}"


@dataclass(frozen=True)
class WorkdayPolicy:
    """Where working days are counted and when a working day closes."""

    tz: ZoneInfo = SHANGHAI
    workday_end: time = DEFAULT_WORKDAY_END


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _close_of(day: date, policy: WorkdayPolicy) -> datetime:
    """The close of the working day `day` (a local date), in UTC."""
    return datetime.combine(day, policy.workday_end, tzinfo=policy.tz).astimezone(UTC)


def due_at(
    start: datetime, limit: Limit, calendar: WorkingDayCalendar, policy: WorkdayPolicy
) -> datetime:
    """When a step started at `start` with `limit` falls due, in UTC.

    Minutes run round the clock. Working days end at `policy.workday_end` of
    the Nth working day strictly after the local date of `start`: the day of
    the call never counts, even when it is raised early on a working day, so
    a call raised 2025-09-30 16:50 with 1 working day is due 2025-10-09 18:00
    Asia/Shanghai (10-01..10-08 are the National Day holiday).
    """
    _require_aware("start", start)
    if limit.unit is LimitUnit.MINUTES:
        # In UTC, so a zone with daylight saving would still get elapsed
        # minutes rather than wall-clock minutes.
        return start.astimezone(UTC) + timedelta(minutes=limit.amount)
    local_date = start.astimezone(policy.tz).date()
    return _close_of(calendar.add_working_days(local_date, limit.amount), policy)


def extend(
    due: datetime, days: int, calendar: WorkingDayCalendar, policy: WorkdayPolicy
) -> datetime:
    """A working-day deadline moved by an approved extension of `days` working days.

    Counts from the deadline's own local date and lands on the close of day.
    """
    _require_aware("due", due)
    local_date = due.astimezone(policy.tz).date()
    return _close_of(calendar.add_working_days(local_date, days), policy)


def remaining(due: datetime, now: datetime) -> timedelta:
    """Time left until `due` at `now`, never negative; kept when a fix is rejected."""
    _require_aware("due", due)
    _require_aware("now", now)
    return max(due - now, timedelta(0))


def shift_by_remaining(now: datetime, remaining: timedelta) -> datetime:
    """The new deadline of a call reopened at `now` with `remaining` time left, in UTC.

    A call reopened with no time left is due at once, i.e. immediately overdue,
    so the escalation ladder continues where it stopped rather than restarting.
    """
    _require_aware("now", now)
    return now.astimezone(UTC) + max(remaining, timedelta(0))


def after_working_days(
    moment: datetime, n: int, calendar: WorkingDayCalendar, policy: WorkdayPolicy
) -> datetime:
    """The same local clock time `n` working days after the local date of `moment`, in UTC.

    Used for escalation steps such as "still missed after 1 working day". The
    clock time is kept even when `moment` is after the close of day (a deadline
    missed at 18:00 escalates at 18:00); whether the nudge then waits for the
    morning is for the quiet-hours rule, not for this function.
    """
    _require_aware("moment", moment)
    local = moment.astimezone(policy.tz)
    day = calendar.add_working_days(local.date(), n)
    return datetime.combine(day, local.time(), tzinfo=policy.tz).astimezone(UTC)


def halfway(start: datetime, due: datetime) -> datetime:
    """The midpoint between `start` and `due`, in UTC (for a halfway reminder)."""
    _require_aware("start", start)
    _require_aware("due", due)
    return start.astimezone(UTC) + (due - start) / 2


def working_time_between(
    start: datetime, end: datetime, calendar: WorkingDayCalendar, policy: WorkdayPolicy
) -> timedelta:
    """The time from `start` to `end` not counting days off (weekends and
    holidays by the calendar, in local time); negative when `end` is earlier.

    The board's clocks ("2 days 3 hours left", "late by 5 hours") use it for
    working-day limits, so a call due after National Day does not look a
    week late on the first working day; emergencies count round the clock.
    """
    _require_aware("start", start)
    _require_aware("end", end)
    sign = 1 if end >= start else -1
    first, last = (start, end) if sign == 1 else (end, start)
    total = last - first
    day = first.astimezone(policy.tz).date()
    last_day = last.astimezone(policy.tz).date()
    while day <= last_day:
        if not calendar.is_working_day(day):
            day_start = datetime.combine(day, time(0), tzinfo=policy.tz)
            day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=policy.tz)
            overlap = min(last, day_end) - max(first, day_start)
            if overlap > timedelta(0):
                total -= overlap
        day += timedelta(days=1)
    return total * sign
