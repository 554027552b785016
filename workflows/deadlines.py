"""Deadlines of a call: limits, when they fall due, extensions and reopening.

A catalog item's limit is either calendar minutes (emergencies: round the
clock, nights and holidays included) or working days (ending at the close of
the Nth working day after the call). All inputs must be timezone-aware; all
results are aware UTC, as stored.

A clock measured in working days also *runs* in working time: the working
hours (`WorkdayPolicy.workday_start` to `workday_end`, 09:00-18:00 by
default) of working days. So the time a reopened call has left, and the
middle of a limit (the halfway reminder), are counted in working time for a
working-day limit — never in a night, a weekend or a holiday — and in
wall-clock time for a calendar-time (minutes) limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from models import CatalogItem
from workflows.calendar import WorkingDayCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_WORKDAY_START = time(9, 0)
DEFAULT_WORKDAY_END = time(18, 0)
#: How far working time is looked for: a calendar with no working day in ten
#: years is a broken calendar, not a long holiday.
_MAX_DAYS = 3660


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
    """Where working days are counted, and the working hours of a working day
    (a working-day deadline falls at `workday_end`)."""

    tz: ZoneInfo = SHANGHAI
    workday_end: time = DEFAULT_WORKDAY_END
    workday_start: time = DEFAULT_WORKDAY_START

    def __post_init__(self) -> None:
        if self.workday_start >= self.workday_end:
            raise ValueError(f"the working day must start before it ends: "
                             f"{self.workday_start} >= {self.workday_end}")


@dataclass(frozen=True)
class CallLimits:
    """The three limits of a call."""

    acknowledge: Limit
    respond: Limit
    resolve: Limit


DEFAULT_LIMITS = CallLimits(Limit(1, LimitUnit.WORKING_DAYS), Limit(2, LimitUnit.WORKING_DAYS),
                            Limit(5, LimitUnit.WORKING_DAYS))


def limits_of(item: CatalogItem | None) -> CallLimits:
    """The limits of a call of catalog item `item`; a call the dispatcher
    routes without an item gets `DEFAULT_LIMITS` (1wd / 2wd / 5wd)."""
    if item is None:
        return DEFAULT_LIMITS
    return CallLimits(Limit.parse(item.acknowledge_limit), Limit.parse(item.respond_limit),
                      Limit.parse(item.resolve_limit))


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


def _working_windows(
    start: datetime, calendar: WorkingDayCalendar, policy: WorkdayPolicy
) -> Iterator[tuple[datetime, datetime]]:
    """The working hours from `start` on, as (begin, end) in UTC, in order;
    the first is cut to begin at `start`."""
    local_day = start.astimezone(policy.tz).date()
    begin_at = start.astimezone(UTC)
    for offset in range(_MAX_DAYS):
        day = local_day + timedelta(days=offset)
        if not calendar.is_working_day(day):
            continue
        opens = datetime.combine(day, policy.workday_start, tzinfo=policy.tz).astimezone(UTC)
        closes = _close_of(day, policy)
        if closes > begin_at:
            yield max(opens, begin_at), closes
    raise ValueError(f"no working day within {_MAX_DAYS} days of {start.isoformat()}")


def working_time_between(
    start: datetime, end: datetime, calendar: WorkingDayCalendar, policy: WorkdayPolicy
) -> timedelta:
    """The working time (working hours of working days) from `start` to `end`;
    negative when `end` is earlier. The one measure of working time: the time
    a reopened call has left, the halfway reminder, the board's "2 hours left"
    / "late by 5 hours" and the report's hours per step over a month of calls
    (emergencies count round the clock), so it is written to be cheap."""
    _require_aware("start", start)
    _require_aware("end", end)
    if end < start:
        return -working_time_between(end, start, calendar, policy)
    tz = policy.tz
    begin, finish = start.astimezone(tz), end.astimezone(tz)
    total = timedelta(0)
    day, last = begin.date(), finish.date()
    while day <= last:
        if calendar.is_working_day(day):
            # All in local time (one tzinfo: plain arithmetic, no conversion
            # per day). Exact while no clock change falls inside working hours,
            # which no time zone's does (they happen at night).
            opens = datetime.combine(day, policy.workday_start, tzinfo=tz)
            closes = datetime.combine(day, policy.workday_end, tzinfo=tz)
            low, high = max(opens, begin), min(closes, finish)
            if high > low:
                total += high - low
        day += timedelta(days=1)
    return total


def add_working_time(
    start: datetime, amount: timedelta, calendar: WorkingDayCalendar, policy: WorkdayPolicy
) -> datetime:
    """The moment `amount` of working time after `start`, in UTC. Nothing to
    add is `start` itself, even outside working hours (due at once)."""
    _require_aware("start", start)
    if amount <= timedelta(0):
        return start.astimezone(UTC)
    left = amount
    for opens, closes in _working_windows(start, calendar, policy):
        if left <= closes - opens:
            return opens + left
        left -= closes - opens
    raise AssertionError("unreachable: _working_windows raises when it runs out")


def time_left(
    due: datetime, at: datetime, unit: LimitUnit, calendar: WorkingDayCalendar,
    policy: WorkdayPolicy,
) -> timedelta:
    """What was left of a limit counted in `unit` at `at`, never negative:
    working time for working days, wall-clock time for minutes."""
    _require_aware("due", due)
    _require_aware("at", at)
    if unit is LimitUnit.WORKING_DAYS:
        return max(working_time_between(at, due, calendar, policy), timedelta(0))
    return max(due - at, timedelta(0))


def reopened_due(
    due: datetime, resolved_at: datetime, now: datetime, unit: LimitUnit,
    calendar: WorkingDayCalendar, policy: WorkdayPolicy,
) -> datetime:
    """The new deadline of a call whose fix is rejected at `now`: the time that
    was left when it was resolved (`resolved_at`), counted from `now` in the
    limit's own terms — working time for a working-day limit, so 8 working
    hours left on a Friday 17:00 rejection run 1 hour on Friday and 7 on the
    next working day. Nothing left: due at once, so the escalation ladder goes
    on where it stopped rather than restarting."""
    left = time_left(due, resolved_at, unit, calendar, policy)
    if unit is LimitUnit.WORKING_DAYS:
        return add_working_time(now, left, calendar, policy)
    return now.astimezone(UTC) + left


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


def midpoint(
    start: datetime, due: datetime, unit: LimitUnit, calendar: WorkingDayCalendar,
    policy: WorkdayPolicy,
) -> datetime:
    """The middle of a limit running from `start` to `due`, in UTC (for the
    halfway reminder): of the working time for a working-day limit, so it
    falls in working hours of a working day, never in a holiday; of the
    wall-clock time for a calendar-time (minutes) limit."""
    _require_aware("start", start)
    _require_aware("due", due)
    if unit is LimitUnit.WORKING_DAYS:
        half = working_time_between(start, due, calendar, policy) / 2
        return add_working_time(start, half, calendar, policy)
    return start.astimezone(UTC) + (due - start) / 2



def is_estimate(
    since: datetime, due: datetime, emergency: bool, calendar: WorkingDayCalendar,
    policy: WorkdayPolicy,
) -> bool:
    """Whether the deadline `due` of a call raised at `since` is only an
    estimate: a working-day clock whose days run through a year the calendar
    does not cover (the State Council's schedule for it is not loaded yet), so
    they were counted from the weekends alone (`WorkingDayCalendar`'s
    fallback). Every clock of a call starts at or after its raising, so the
    years from `since` to `due` are the ones it may have counted in. An
    emergency's clocks run round the clock (as the board and the report
    count them) and never are; nor is a deadline within covered years."""
    _require_aware("since", since)
    _require_aware("due", due)
    if emergency:
        return False
    first, last = since.astimezone(policy.tz).year, due.astimezone(policy.tz).year
    return any(not calendar.is_covered(year) for year in range(first, last + 1))
