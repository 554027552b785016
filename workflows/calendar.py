"""The working-day calendar of mainland China, with an admin-editable override.

Working days follow the State Council's schedule, including make-up working
days (调休). The `chinese-calendar` package knows the years it was released
with and raises `NotImplementedError` for later ones; the State Council
publishes each next year's schedule around November. So a year is decided, in
this order:

1. the override file, if it lists the year (it replaces the package for that
   year);
2. `chinese-calendar`, if it knows the year;
3. otherwise the weekends-only fallback (Monday to Friday are working days),
   logged once per year and reported to admins by `coverage_warning`.

The override file is YAML, edited by admins::

    # years listed here are "covered"; a listed year replaces chinese-calendar for that year
    2027:
      holidays: [2027-01-01, 2027-02-08, 2027-02-09]  # weekdays that are days off
      workdays: [2027-02-20]                          # weekends that are working days (调休)

A listed year is a Monday-to-Friday week except for the dates it names. Both
keys may be left out or empty. Dates are ISO (`YYYY-MM-DD`) and must fall in
their year; a date may not be both a holiday and a workday.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar
import yaml
from chinese_calendar import constants as chinese_calendar_data

log = logging.getLogger(__name__)

_SCHEDULE_KEYS = ("holidays", "workdays")

# The package's own data tells which years it knows; a newer release of it
# then extends coverage without a code change.
_PACKAGE_YEARS: frozenset[int] = frozenset(
    d.year for d in (*chinese_calendar_data.holidays, *chinese_calendar_data.workdays)
)


class CalendarFileError(ValueError):
    """An override file that cannot be read; the message names file, year and value."""


class _DateAsTextLoader(yaml.SafeLoader):
    """A safe YAML loader that leaves dates as text.

    PyYAML would otherwise raise its own error on an impossible date such as
    2027-13-01, before we could say which year it was listed under.
    """


_DateAsTextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class YearSchedule:
    """One year's exceptions to the Monday-to-Friday week."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    def is_working_day(self, d: date) -> bool:
        """Whether `d` is a working day under this schedule."""
        if d in self.holidays:
            return False
        if d in self.workdays:
            return True
        return d.weekday() < 5


@dataclass(frozen=True)
class CalendarOverride:
    """Holidays and make-up working days per year, as admins wrote them."""

    years: dict[int, YearSchedule] = field(default_factory=dict)

    def covers(self, year: int) -> bool:
        """Whether the override lists `year`."""
        return year in self.years


def load_override(path: Path | None) -> CalendarOverride:
    """Read the admins' override file; no path or a missing file is an empty override.

    Raises `CalendarFileError` on anything it cannot trust: a bad file is
    refused rather than half-applied, since wrong holidays silently move
    every deadline.
    """
    if path is None or not path.exists():
        return CalendarOverride()
    try:
        # _DateAsTextLoader is a SafeLoader: no arbitrary Python objects.
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_DateAsTextLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CalendarFileError(f"{path}: cannot read calendar override: {exc}") from exc
    if raw is None:  # only comments
        return CalendarOverride()
    if not isinstance(raw, dict):
        raise CalendarFileError(
            f"{path}: calendar override must map years to schedules, got {raw!r}"
        )
    years: dict[int, YearSchedule] = {}
    for year, body in raw.items():
        # bool is an int in Python, but `true:` is surely not a year.
        if not isinstance(year, int) or isinstance(year, bool):
            raise CalendarFileError(f"{path}: year {year!r} is not an integer year")
        years[year] = _parse_year(path, year, body)
    return CalendarOverride(years)


def _parse_year(path: Path, year: int, body: Any) -> YearSchedule:
    """One year's entry of the override file, checked."""
    where = f"{path}: year {year}"
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise CalendarFileError(f"{where}: expected holidays/workdays, got {body!r}")
    unknown = [key for key in body if key not in _SCHEDULE_KEYS]
    if unknown:
        raise CalendarFileError(
            f"{where}: unknown key {unknown[0]!r} (expected holidays, workdays)"
        )
    holidays = _parse_dates(where, year, "holidays", body.get("holidays"))
    workdays = _parse_dates(where, year, "workdays", body.get("workdays"))
    both = sorted(holidays & workdays)
    if both:
        raise CalendarFileError(
            f"{where}: {both[0].isoformat()} is listed as both holiday and workday"
        )
    return YearSchedule(holidays, workdays)


def _parse_dates(where: str, year: int, key: str, values: Any) -> frozenset[date]:
    """The dates listed under one key of one year."""
    if values is None:
        return frozenset()
    if not isinstance(values, list):
        raise CalendarFileError(f"{where}: {key} must be a list of dates, got {values!r}")
    dates: set[date] = set()
    for value in values:
        try:
            d = date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            d = None
        if d is None:
            raise CalendarFileError(f"{where}: {key}: {value!r} is not a date (YYYY-MM-DD)")
        if d.year != year:
            raise CalendarFileError(f"{where}: {key}: {d.isoformat()} is not in {year}")
        dates.add(d)
    return frozenset(dates)


class WorkingDayCalendar:
    """Answers "is this a working day?" for deadlines, whatever the year."""

    def __init__(self, override: CalendarOverride | None = None) -> None:
        self._override = override or CalendarOverride()
        self._cache: dict[date, bool] = {}
        # Years for which the fallback was used and logged: a warning per
        # day would flood the log when a sweep computes many deadlines.
        self._fallback_logged: set[int] = set()

    def is_covered(self, year: int) -> bool:
        """Whether `year` follows an official schedule (override or package)."""
        return self._override.covers(year) or year in _PACKAGE_YEARS

    def is_working_day(self, d: date) -> bool:
        """Whether `d` is a working day in mainland China, make-up days included."""
        if isinstance(d, datetime):  # a datetime would miss the date-keyed data
            d = d.date()
        cached = self._cache.get(d)
        if cached is None:
            cached = self._cache[d] = self._decide(d)
        return cached

    def _decide(self, d: date) -> bool:
        schedule = self._override.years.get(d.year)
        if schedule is not None:
            return schedule.is_working_day(d)
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:
            pass
        if d.year not in self._fallback_logged:
            self._fallback_logged.add(d.year)
            log.warning(
                "Working-day calendar does not cover %d; using the weekends-only "
                "fallback (first needed for %s). Add the year to the override file.",
                d.year,
                d.isoformat(),
            )
        return d.weekday() < 5

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after `d`."""
        return self.add_working_days(d, 1)

    def add_working_days(self, d: date, n: int) -> date:
        """The `n`th working day strictly after `d` (`n` >= 1); `d` itself never counts."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        day = d
        while n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                n -= 1
        return day

    def uncovered_days(self, start: date, days: int = 60) -> list[date]:
        """The days in [start, start + days) whose year has no official schedule."""
        window = (start + timedelta(days=i) for i in range(days))
        return [d for d in window if not self.is_covered(d.year)]

    def coverage_warning(self, today: date, days: int = 60) -> str | None:
        """An admin-facing English warning if the next `days` days are not all covered."""
        uncovered = self.uncovered_days(today, days)
        if not uncovered:
            return None
        years = ", ".join(str(y) for y in sorted({d.year for d in uncovered}))
        return (
            f"Working-day calendar does not cover {years} (from {uncovered[0].isoformat()}); "
            "deadlines in those days use the weekends-only fallback. "
            "Add the State Council schedule to the override file."
        )
