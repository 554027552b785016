"""Tests for workflows.calendar: official days, make-up days, override file, fallback."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest

from workflows.calendar import (
    CalendarFileError,
    CalendarOverride,
    WorkingDayCalendar,
    YearSchedule,
    load_override,
)

OVERRIDE_2027 = Path(__file__).parent / "data" / "calendar_override_2027.yaml"


@pytest.fixture
def plain() -> WorkingDayCalendar:
    return WorkingDayCalendar()


@pytest.fixture
def with_2027() -> WorkingDayCalendar:
    return WorkingDayCalendar(load_override(OVERRIDE_2027))


def test_national_day_2025_and_make_up_saturday(plain: WorkingDayCalendar) -> None:
    assert not plain.is_working_day(date(2025, 10, 4))
    assert not plain.is_working_day(date(2025, 10, 8))
    assert plain.is_working_day(date(2025, 10, 11))  # a Saturday, 调休
    assert plain.is_working_day(date(2025, 9, 30))


def test_spring_festival_2026_from_the_package(plain: WorkingDayCalendar) -> None:
    # chinese-calendar 1.11.0: holiday 2026-02-15..02-23, make-up 02-14 (Sat) and 02-28 (Sat).
    assert plain.is_working_day(date(2026, 2, 14))
    assert not any(plain.is_working_day(date(2026, 2, d)) for d in range(15, 24))
    assert plain.is_working_day(date(2026, 2, 24))
    assert plain.is_working_day(date(2026, 2, 28))
    # Fri 02-13 → 02-14 (1), holiday to 02-23, 02-24 (2), 02-25 (3).
    assert plain.add_working_days(date(2026, 2, 13), 3) == date(2026, 2, 25)


def test_next_working_day_is_strictly_after(plain: WorkingDayCalendar) -> None:
    assert plain.next_working_day(date(2025, 9, 29)) == date(2025, 9, 30)
    assert plain.next_working_day(date(2025, 9, 30)) == date(2025, 10, 9)
    with pytest.raises(ValueError):
        plain.add_working_days(date(2025, 9, 30), 0)


def test_coverage_follows_package_data(plain: WorkingDayCalendar) -> None:
    assert plain.is_covered(2004)
    assert plain.is_covered(2026)
    assert not plain.is_covered(2027)
    assert not plain.is_covered(2003)


def test_uncovered_year_falls_back_to_weekends_and_logs_once(
    plain: WorkingDayCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="workflows.calendar"):
        assert plain.is_working_day(date(2027, 1, 1))  # Friday
        assert not plain.is_working_day(date(2027, 1, 2))  # Saturday
        assert plain.is_working_day(date(2027, 2, 10))  # would be Spring Festival
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2027" in warnings[0].getMessage()


def test_override_replaces_the_year(
    with_2027: WorkingDayCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert with_2027.is_covered(2027)
        assert not with_2027.is_working_day(date(2027, 1, 1))
        assert with_2027.is_working_day(date(2027, 1, 4))
        assert not with_2027.is_working_day(date(2027, 2, 10))
        assert with_2027.is_working_day(date(2027, 2, 13))  # make-up Saturday
        assert not with_2027.is_working_day(date(2027, 2, 14))
        # Fri 02-05 → 02-13 (1, make-up Saturday), Mon 02-15 (2).
        assert with_2027.add_working_days(date(2027, 2, 5), 2) == date(2027, 2, 15)
    assert not caplog.records
    # Years not in the override still come from the package.
    assert with_2027.is_working_day(date(2025, 10, 11))


def test_override_may_replace_a_year_the_package_knows() -> None:
    calendar = WorkingDayCalendar(CalendarOverride({2025: YearSchedule()}))
    # Without the package's data, 2025-10-11 is an ordinary Saturday.
    assert not calendar.is_working_day(date(2025, 10, 11))
    assert calendar.is_working_day(date(2025, 10, 1))


def test_uncovered_days_and_warning(
    plain: WorkingDayCalendar, with_2027: WorkingDayCalendar
) -> None:
    # [2026-11-26, 2027-01-25): 2027-01-01..01-24 are uncovered.
    uncovered = plain.uncovered_days(date(2026, 11, 26))
    assert len(uncovered) == 24
    assert uncovered[0] == date(2027, 1, 1)
    assert uncovered[-1] == date(2027, 1, 24)
    # [2026-11-02, 2027-01-01) ends just before the new year.
    assert plain.uncovered_days(date(2026, 11, 2)) == []
    assert plain.uncovered_days(date(2026, 11, 3)) == [date(2027, 1, 1)]
    assert plain.coverage_warning(date(2026, 11, 2)) is None

    warning = plain.coverage_warning(date(2026, 11, 26))
    assert warning is not None
    assert "2027" in warning
    assert "2027-01-01" in warning

    assert with_2027.uncovered_days(date(2026, 11, 26)) == []
    assert with_2027.coverage_warning(date(2026, 11, 26)) is None
    # The override covers 2027 only: late 2027 warns about 2028.
    late = with_2027.coverage_warning(date(2027, 11, 15))
    assert late is not None and "2028" in late


def test_missing_override_file_is_empty(tmp_path: Path) -> None:
    assert load_override(None) == CalendarOverride()
    assert load_override(tmp_path / "absent.yaml") == CalendarOverride()
    comments_only = tmp_path / "empty.yaml"
    comments_only.write_text("# nothing yet\n", encoding="utf-8")
    assert load_override(comments_only) == CalendarOverride()


def test_override_file_is_parsed() -> None:
    override = load_override(OVERRIDE_2027)
    assert set(override.years) == {2027}
    assert date(2027, 1, 1) in override.years[2027].holidays
    assert override.years[2027].workdays == frozenset({date(2027, 2, 13)})


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("- 2027-01-01\n", "must map years"),
        ("next:\n  holidays: [2027-01-01]\n", "year 'next'"),
        ("true:\n  holidays: [2027-01-01]\n", "year True"),
        ("2027:\n  holidays: [2027-13-01]\n", "year 2027: holidays: '2027-13-01' is not a date"),
        ("2027:\n  holidays: [soon]\n", "year 2027: holidays: 'soon' is not a date"),
        ("2027:\n  workdays: [2028-01-01]\n", "year 2027: workdays: 2028-01-01 is not in 2027"),
        (
            "2027:\n  holidays: [2027-01-01]\n  workdays: [2027-01-01]\n",
            "year 2027: 2027-01-01 is listed as both",
        ),
        ("2027:\n  holiday: [2027-01-01]\n", "year 2027: unknown key 'holiday'"),
        ("2027:\n  holidays: 2027-01-01\n", "year 2027: holidays must be a list"),
        ("2027: [2027-01-01]\n", "year 2027: expected holidays/workdays"),
        ("2027:\n  holidays: [2027-01-01\n", "cannot read"),
    ],
)
def test_bad_override_file(tmp_path: Path, text: str, fault: str) -> None:
    path = tmp_path / "override.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarFileError) as excinfo:
        load_override(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert fault in message
    assert isinstance(excinfo.value, ValueError)
