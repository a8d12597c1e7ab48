"""Chinese working days, for deadlines such as "within 15 working days".

Weekends and public holidays are off; weekend days swapped into working days (调休) are on. Two sources:

* the ``chinesecalendar`` package, for the years it knows;
* an operator file (TOML text, read by the caller) listing a year's holidays and swapped workdays::

      [years.2027]
      holidays = ["2027-01-01", "2027-02-15..2027-02-21"]   # single dates or inclusive ranges
      workdays = ["2027-02-14"]                               # weekend days that are working days

  A year in the file replaces ``chinesecalendar`` for that whole year (so it can also correct a year).

A year neither source knows falls back to weekends only, and deadlines touching it are provisional.
Pure: no file or network I/O.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar

from gateway.domain.errors import FieldViolation, invalid

__all__ = ["CHINA_STANDARD_TIME", "SHANGHAI", "Deadline", "WorkingDayCalendar", "YearSchedule", "parse_calendar_file"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
"""The time zone of working days, dates and settlement months."""
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
"""UTC+8: Asia/Shanghai's offset since 1991 (no daylight saving); the cheap zone for decoding stored instants."""
_ONE_DAY = timedelta(days=1)
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_YEAR_KEYS = frozenset({"holidays", "workdays"})


@dataclass(frozen=True)
class YearSchedule:
    """One year's holidays and swapped workdays from the operator file."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]


@dataclass(frozen=True)
class Deadline:
    """A due date; ``provisional`` when a day counted (start..due) lies in a year no source knows."""

    due: date
    provisional: bool


@cache
def _chinesecalendar_knows(year: int) -> bool:
    """Whether ``chinesecalendar`` has data for ``year`` (probed, never raises)."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
        chinese_calendar.is_workday(date(year, 12, 31))
    except (NotImplementedError, ValueError, OverflowError):
        return False
    return True


def _is_weekday(day: date) -> bool:
    return day.weekday() < 5


class WorkingDayCalendar:
    """Chinese working days from the operator schedules, then ``chinesecalendar``, then weekends only."""

    def __init__(
        self,
        schedules: Mapping[int, YearSchedule] | None = None,
        *,
        use_chinesecalendar: bool = True,
    ) -> None:
        self._schedules: dict[int, YearSchedule] = dict(schedules or {})
        self._use_chinesecalendar = use_chinesecalendar
        self._years: dict[int, tuple[int, tuple[bool, ...]]] = {}

    def knows_year(self, year: int) -> bool:
        """Whether some source has ``year``'s holidays (otherwise it is weekends only)."""
        return year in self._schedules or (self._use_chinesecalendar and _chinesecalendar_knows(year))

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a working day (each year is worked out once, then looked up)."""
        year = self._years.get(day.year)
        if year is None:
            year = self._years[day.year] = self._work_out_year(day.year)
        first, flags = year
        return flags[day.toordinal() - first]

    def _work_out_year(self, year: int) -> tuple[int, tuple[bool, ...]]:
        """The ordinal of 1 January and, for each day of ``year``, whether it is a working day."""
        first = date(year, 1, 1)
        days = (date(year + 1, 1, 1) - first).days if year < 9999 else 365
        return first.toordinal(), tuple(self._source_says(first + timedelta(days=n)) for n in range(days))

    def _source_says(self, day: date) -> bool:
        schedule = self._schedules.get(day.year)
        if schedule is not None:
            if day in schedule.workdays:
                return True
            return day not in schedule.holidays and _is_weekday(day)
        if self._use_chinesecalendar and _chinesecalendar_knows(day.year):
            return bool(chinese_calendar.is_workday(day))
        return _is_weekday(day)

    def add_working_days(self, start: date, days: int) -> Deadline:
        """The ``days``-th working day after ``start`` (which does not count); 0 gives ``start``."""
        if days < 0:
            raise ValueError(f"days must be >= 0, got {days}")
        due = start
        remaining = days
        while remaining:
            due += _ONE_DAY
            if self.is_workday(due):
                remaining -= 1
        provisional = any(not self.knows_year(y) for y in range(start.year, due.year + 1))
        return Deadline(due=due, provisional=provisional)

    def working_days_between(self, start: date, end: date) -> int:
        """The number of working days in ``(start, end]``; 0 when ``end <= start``."""
        count = 0
        day = start
        while day < end:
            day += _ONE_DAY
            count += self.is_workday(day)
        return count


def parse_calendar_file(text: str) -> dict[int, YearSchedule]:
    """Parse the operator calendar file; any bad entry raises ``InvalidArgument`` (BAD_CALENDAR_FILE)."""
    violations: list[FieldViolation] = []
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise invalid([FieldViolation("calendar", f"not valid TOML: {exc}")], reason="BAD_CALENDAR_FILE") from exc
    for key in sorted(doc.keys() - {"years"}):
        violations.append(FieldViolation(key, "unknown key (expected only [years.N] tables)"))
    years = doc.get("years", {})
    if not isinstance(years, dict):
        violations.append(FieldViolation("years", "must be a table of [years.N] tables"))
        years = {}
    result: dict[int, YearSchedule] = {}
    for year_key, table in years.items():
        schedule = _parse_year(year_key, table, violations)
        if schedule is not None:
            result[schedule.year] = schedule
    if violations:
        raise invalid(violations, reason="BAD_CALENDAR_FILE")
    return result


def _parse_year(key: str, table: Any, violations: list[FieldViolation]) -> YearSchedule | None:
    """One ``[years.N]`` table, or None after appending its violations."""
    path = f"years.{key}"
    if not (key.isascii() and key.isdigit() and 1 <= int(key) <= 9999):
        violations.append(FieldViolation(path, f"{key!r} is not a year"))
        return None
    if not isinstance(table, dict):
        violations.append(FieldViolation(path, "must be a table with holidays and workdays"))
        return None
    year = int(key)
    before = len(violations)
    for unknown in sorted(table.keys() - _YEAR_KEYS):
        violations.append(FieldViolation(f"{path}.{unknown}", "unknown key (expected holidays, workdays)"))
    days: dict[str, dict[date, str]] = {}  # kind -> day -> entry path
    for kind in sorted(_YEAR_KEYS):
        days[kind] = {}
        entries = table.get(kind, [])
        if not isinstance(entries, list):
            violations.append(FieldViolation(f"{path}.{kind}", "must be a list of dates or date ranges"))
            continue
        for i, entry in enumerate(entries):
            entry_path = f"{path}.{kind}[{i}]"
            try:
                for day in _expand(entry, year):
                    days[kind].setdefault(day, entry_path)
            except ValueError as exc:
                violations.append(FieldViolation(entry_path, f"{entry!r}: {exc}"))
    for day, entry_path in sorted(days["workdays"].items()):
        if _is_weekday(day):
            violations.append(FieldViolation(entry_path, f"{day} is a Monday-Friday, not a swapped weekend workday"))
        if day in days["holidays"]:
            violations.append(FieldViolation(entry_path, f"{day} is also a holiday (at {days['holidays'][day]})"))
    if len(violations) > before:
        return None
    return YearSchedule(year, frozenset(days["holidays"]), frozenset(days["workdays"]))


def _expand(entry: object, year: int) -> list[date]:
    """The days of one entry (``"YYYY-MM-DD"`` or inclusive ``"YYYY-MM-DD..YYYY-MM-DD"``), all in ``year``."""
    if not isinstance(entry, str):
        raise ValueError('must be a string "YYYY-MM-DD" or "YYYY-MM-DD..YYYY-MM-DD"')
    first_text, sep, last_text = entry.partition("..")
    first = _parse_date(first_text)
    last = _parse_date(last_text) if sep else first
    if last < first:
        raise ValueError("range is reversed")
    for bound in (first, last):
        if bound.year != year:
            raise ValueError(f"{bound} is outside [years.{year}]")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _parse_date(text: str) -> date:
    text = text.strip()
    if not _DATE_RE.fullmatch(text):
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date") from None
