"""Chinese working days: chinesecalendar facts, the operator file, deadlines."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.calendar import (
    Deadline,
    WorkingDayCalendar,
    YearSchedule,
    parse_calendar_file,
)
from gateway.domain.errors import InvalidArgument

CAL = WorkingDayCalendar()

FILE_2027 = """
# holidays and swapped working days published by the State Council
[years.2027]
holidays = ["2027-01-01", "2027-02-15..2027-02-21"]   # single dates or inclusive ranges
workdays = ["2027-02-14"]                               # weekend days that are working days (调休)
"""


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


# --- chinesecalendar facts -------------------------------------------------------------------------


def test_known_years() -> None:
    assert CAL.knows_year(2004)
    assert CAL.knows_year(2026)
    assert not CAL.knows_year(2003)
    assert not CAL.knows_year(2027)
    assert not WorkingDayCalendar(use_chinesecalendar=False).knows_year(2026)


def test_national_day_2026() -> None:
    # 2026-10-01 (Thu) .. 2026-10-07 (Wed) off; Sunday 09-20 and Saturday 10-10 are swapped workdays.
    assert not any(CAL.is_workday(d) for d in days(date(2026, 10, 1), date(2026, 10, 7)))
    assert CAL.is_workday(date(2026, 9, 20))
    assert CAL.is_workday(date(2026, 10, 10))
    assert not CAL.is_workday(date(2026, 10, 11))
    assert CAL.is_workday(date(2026, 10, 8))


def test_spring_festival_2026() -> None:
    # 2026-02-15 (Sun) .. 2026-02-23 (Mon) off; Saturdays 02-14 and 02-28 are swapped workdays.
    assert not any(CAL.is_workday(d) for d in days(date(2026, 2, 15), date(2026, 2, 23)))
    assert CAL.is_workday(date(2026, 2, 14))
    assert CAL.is_workday(date(2026, 2, 28))
    assert CAL.is_workday(date(2026, 2, 24))


def test_without_chinesecalendar_is_weekends_only() -> None:
    cal = WorkingDayCalendar(use_chinesecalendar=False)
    assert cal.is_workday(date(2026, 10, 1))
    assert not cal.is_workday(date(2026, 10, 10))


def test_unknown_year_is_weekends_only() -> None:
    assert CAL.is_workday(date(2027, 1, 1))  # a Friday
    assert not CAL.is_workday(date(2027, 1, 2))  # a Saturday


# --- deadlines ------------------------------------------------------------------------------------


def test_swapped_saturday_counts() -> None:
    # Thu 02-12 -> Fri 02-13 (1), Sat 02-14 (2, swapped), 02-15..02-23 off, 02-24 (3), 02-25 (4), 02-26 (5).
    assert CAL.add_working_days(date(2026, 2, 12), 5) == Deadline(date(2026, 2, 26), provisional=False)
    assert CAL.add_working_days(date(2026, 2, 13), 1).due == date(2026, 2, 14)


def test_15_working_days_across_national_day() -> None:
    # Mon 09-28 -> 09-29, 09-30 (2), 10-01..10-07 off, 10-08, 10-09 (4), Sat 10-10 (5), 10-12..10-16 (10),
    # 10-19..10-23 (15). Weekends only would give 10-19.
    start = date(2026, 9, 28)
    assert CAL.add_working_days(start, 15) == Deadline(date(2026, 10, 23), provisional=False)
    assert WorkingDayCalendar(use_chinesecalendar=False).add_working_days(start, 15).due == date(2026, 10, 19)
    assert CAL.working_days_between(start, date(2026, 10, 23)) == 15


def test_start_does_not_count_and_zero_days() -> None:
    assert CAL.add_working_days(date(2026, 3, 2), 1).due == date(2026, 3, 3)
    assert CAL.add_working_days(date(2026, 3, 2), 0) == Deadline(date(2026, 3, 2), provisional=False)
    assert CAL.add_working_days(date(2027, 3, 2), 0) == Deadline(date(2027, 3, 2), provisional=True)
    with pytest.raises(ValueError):
        CAL.add_working_days(date(2026, 3, 2), -1)


def test_deadline_into_unknown_year_is_provisional() -> None:
    # Sun 2026-12-20 -> 12-21..12-25 (5), 12-28..12-31 (9), Fri 2027-01-01 (10), 01-04..01-08 (15).
    assert CAL.add_working_days(date(2026, 12, 20), 15) == Deadline(date(2027, 1, 8), provisional=True)


def test_operator_file_for_2027_shifts_deadline_and_is_not_provisional() -> None:
    cal = WorkingDayCalendar(parse_calendar_file(FILE_2027))
    assert cal.knows_year(2027)
    assert cal.add_working_days(date(2026, 12, 20), 15) == Deadline(date(2027, 1, 11), provisional=False)
    assert cal.is_workday(date(2027, 2, 14))  # Sunday, swapped
    assert not cal.is_workday(date(2027, 2, 17))


def test_operator_file_overrides_known_year() -> None:
    cal = WorkingDayCalendar(parse_calendar_file('[years.2026]\nholidays = ["2026-10-08"]\n'))
    assert not cal.is_workday(date(2026, 10, 8))
    assert cal.is_workday(date(2026, 10, 1))  # the file replaces chinesecalendar for the whole year
    assert not cal.is_workday(date(2026, 10, 10))


def test_working_days_between() -> None:
    assert CAL.working_days_between(date(2026, 10, 9), date(2026, 10, 9)) == 0
    assert CAL.working_days_between(date(2026, 10, 12), date(2026, 10, 9)) == 0
    assert CAL.working_days_between(date(2026, 9, 30), date(2026, 10, 8)) == 1
    assert CAL.working_days_between(date(2026, 10, 9), date(2026, 10, 10)) == 1


# --- the operator file ----------------------------------------------------------------------------


def test_parse_calendar_file() -> None:
    schedules = parse_calendar_file(FILE_2027)
    assert schedules == {
        2027: YearSchedule(
            year=2027,
            holidays=frozenset([date(2027, 1, 1), *days(date(2027, 2, 15), date(2027, 2, 21))]),
            workdays=frozenset([date(2027, 2, 14)]),
        )
    }
    assert parse_calendar_file("") == {}
    assert parse_calendar_file("[years.2028]\n") == {2028: YearSchedule(2028, frozenset(), frozenset())}


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        ('[years.2027]\nholidays = ["2027-02-30"]', "years.2027.holidays[0]", "not a valid date"),
        ('[years.2027]\nholidays = ["2027/01/01"]', "years.2027.holidays[0]", "not a date"),
        ('[years.2027]\nholidays = ["2027-01-01", "2027-1-2"]', "years.2027.holidays[1]", "not a date"),
        ("[years.2027]\nholidays = [20270101]", "years.2027.holidays[0]", "must be a string"),
        ('[years.2027]\nholidays = ["2027-02-21..2027-02-15"]', "years.2027.holidays[0]", "reversed"),
        ('[years.2027]\nholidays = ["2026-12-31"]', "years.2027.holidays[0]", "outside [years.2027]"),
        ('[years.2027]\nholidays = ["2027-12-31..2028-01-01"]', "years.2027.holidays[0]", "outside"),
        ('[years.2027]\nworkdays = ["2028-02-13"]', "years.2027.workdays[0]", "outside"),
        (
            '[years.2027]\nholidays = ["2027-02-13..2027-02-21"]\nworkdays = ["2027-02-14"]',
            "years.2027.workdays[0]",
            "also a holiday",
        ),
        ('[years.2027]\nworkdays = ["2027-02-15"]', "years.2027.workdays[0]", "Monday-Friday"),
        ('[years.2027]\nholiday = ["2027-01-01"]', "years.2027.holiday", "unknown key"),
        ('[year.2027]\nholidays = ["2027-01-01"]', "year", "unknown key"),
        ('[years.abc]\nholidays = ["2027-01-01"]', "years.abc", "not a year"),
        ('[years.2027]\nholidays = "2027-01-01"', "years.2027.holidays", "must be a list"),
        ("years = 2027", "years", "must be a table"),
        ("[years.2027\n", "calendar", "not valid TOML"),
    ],
)
def test_bad_calendar_file(text: str, field: str, needle: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_calendar_file(text)
    err = info.value
    assert err.reason == "BAD_CALENDAR_FILE"
    assert [v.field for v in err.violations] == [field]
    assert needle in err.violations[0].description


def test_bad_calendar_file_reports_every_violation() -> None:
    text = '[years.2027]\nholidays = ["2027-13-01", "2026-01-01"]\nextra = 1\n'
    with pytest.raises(InvalidArgument) as info:
        parse_calendar_file(text)
    fields = {v.field for v in info.value.violations}
    assert fields == {"years.2027.holidays[0]", "years.2027.holidays[1]", "years.2027.extra"}
    assert "2027-13-01" in info.value.message


# --- properties -----------------------------------------------------------------------------------

starts = st.dates(min_value=date(2003, 1, 1), max_value=date(2028, 12, 31))
counts = st.integers(min_value=0, max_value=400)
calendars = st.sampled_from([CAL, WorkingDayCalendar(parse_calendar_file(FILE_2027))])


@given(calendars, starts, st.integers(min_value=1, max_value=400))
def test_due_is_a_workday(cal: WorkingDayCalendar, start: date, n: int) -> None:
    due = cal.add_working_days(start, n).due
    assert due > start
    assert cal.is_workday(due)


@given(calendars, starts, counts)
def test_between_inverts_add(cal: WorkingDayCalendar, start: date, n: int) -> None:
    assert cal.working_days_between(start, cal.add_working_days(start, n).due) == n


@given(calendars, starts, counts)
def test_monotonic_in_n(cal: WorkingDayCalendar, start: date, n: int) -> None:
    assert cal.add_working_days(start, n + 1).due > cal.add_working_days(start, n).due


@given(starts, counts)
def test_provisional_iff_an_unknown_year_is_touched(start: date, n: int) -> None:
    deadline = CAL.add_working_days(start, n)
    years = range(start.year, deadline.due.year + 1)
    assert deadline.provisional == any(y < 2004 or y > 2026 for y in years)
