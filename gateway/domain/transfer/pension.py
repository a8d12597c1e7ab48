"""The funds that move with an employee basic pension transfer (城镇企业职工基本养老保险关系转移接续).

Rules (国办发〔2009〕66号 Art. 4 and its implementing procedures; 人社部规〔2017〕1号 for institutions):

* the individual account's whole balance (个人账户储存额, 本息: the credits and the interest credited over the
  years) moves in full;
* the pooled fund (统筹基金) is 12% of the actual contribution wage base (实际缴费工资基数) of each year
  from 1998-01-01; a part year counts by months paid, i.e. the sum over months paid of monthly base × 12%;
* transfers out of the institution scheme (机关事业单位 → 企业, and between institutions across regions) move
  the individual account in full plus 12% of each year's base from 2014-10-01 only;
* crediting caps (on by default): for 1998–2005 at most 11% of a year's base may have been credited
  (记账) to the individual account, from 2006 at most 8%. The caps bound each **year's credit**, never the
  balance: the interest (记账利息) is on top and always moves.

**The information table** carries, per year, the months paid, the monthly wage base, the amount credited to the
account (``account_credit_fen``) and the interest credited (``interest_fen``). From 1998 every record must state
its credit; the years before 1998 may be given by their months and bases alone, their accumulated balance with
interest (1998年前累计本息) being the part of the balance the itemised years do not explain. So the balance must
equal that pre-1998 part + Σ credits + Σ interest, where the pre-1998 part is zero unless the table has years
before 1998. Interest is never negative, and a year's interest above ``max_interest_rate_percent`` (default
10%) of the account it was earned on (the balance at the start of the year plus that year's credits) is refused
as implausible. :func:`account_errors` applies these checks.

All figures live in :class:`PensionFundRules`. Money is integer fen throughout; intermediate values are
exact (:class:`fractions.Fraction`), never float.

**Rounding** (:class:`Rounding`, a named convention the region picks): each calendar year's amount (pooled
fund, account cap) is computed exactly as ``monthly base × months × percent / 100`` summed over that year's
records, then rounded to the fen once per year, to the nearest fen with halves up (``nearest``, the default) or
down (``floor``, for a region that rounds down); the rounded yearly amounts are summed.

The record functions (:func:`months_counted`, :func:`pooled_fund`, :func:`compute_funds`) expect
records that :func:`record_errors` accepts, and raise ``ValueError`` otherwise: validate requests with
:func:`record_errors` first and turn its list into field violations.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from gateway.domain.money import MAX_AMOUNT_FEN, is_int, round_down, round_half_up

__all__ = [
    "DEFAULT_RULES",
    "MAX_MONTHLY_BASE_FEN",
    "MAX_YEAR",
    "MIN_YEAR",
    "ContributionYear",
    "PensionFundRules",
    "PensionFunds",
    "Rounding",
    "account_errors",
    "compute_funds",
    "months_counted",
    "pooled_fund",
    "record_errors",
]

#: Bases above this (1,000,000 yuan a month) are rejected as absurd.
MAX_MONTHLY_BASE_FEN = 100_000_000
MIN_YEAR = 1950
MAX_YEAR = 2100

_FIELD_PREFIX = "contributions"


class Rounding(enum.StrEnum):
    """How a year's exact amount becomes fen."""

    NEAREST = "nearest"
    """To the nearest fen, halves up (the default)."""
    FLOOR = "floor"
    """Down to the fen (a region that rounds down)."""

    def apply(self, value: Fraction) -> int:
        return round_down(value) if self is Rounding.FLOOR else round_half_up(value)

    @property
    def described(self) -> str:
        return "rounded to the nearest fen once a year" if self is Rounding.NEAREST else "rounded down once a year"


@dataclass(frozen=True)
class ContributionYear:
    """One record of the information table (信息表): the months paid in a year and their monthly base, with what
    they credited to the individual account and the interest credited.

    ``first_month``..``last_month`` (1..12, inclusive) are the months paid that year. A year with a gap or a
    change of base mid-year is given as several records for the same year whose months do not overlap; the
    year's credits and interest are the sums over its records.
    """

    year: int
    first_month: int
    last_month: int
    monthly_base_fen: int
    account_credit_fen: int | None = None
    """当年记账额: what these months credited to the individual account; required from 1998."""
    interest_fen: int | None = None
    """当年记账利息: the interest credited to the account for this year (0 when not stated)."""


@dataclass(frozen=True)
class PensionFundRules:
    """The configurable figures; the defaults are the national rules.

    ``account_caps`` holds ``(from_year, to_year or None for open-ended, percent)`` ranges, which
    must not overlap. Raises ``ValueError`` on nonsensical figures.
    """

    pooled_rate_percent: int = 12
    pooled_from: date = date(1998, 1, 1)
    institution_pooled_from: date = date(2014, 10, 1)
    account_caps: tuple[tuple[int, int | None, int], ...] = ((1998, 2005, 11), (2006, None, 8))
    apply_account_caps: bool = True
    """Check each year's credit against its cap."""
    rounding: Rounding = Rounding.NEAREST
    """How each year's pooled fund and cap become fen (a regional convention)."""
    itemised_from_year: int = 1998
    """From this year every record must state its credit; earlier years may be a balance alone (累计本息)."""
    max_interest_rate_percent: int = 10
    """A year's interest above this share of the account it was earned on is implausible (*configurable*)."""

    def __post_init__(self) -> None:
        if not is_int(self.pooled_rate_percent) or not 0 <= self.pooled_rate_percent <= 100:
            raise ValueError("pooled_rate_percent must be an integer from 0 to 100")
        if not is_int(self.max_interest_rate_percent) or not 0 <= self.max_interest_rate_percent <= 100:
            raise ValueError("max_interest_rate_percent must be an integer from 0 to 100")
        spans: list[tuple[int, int | None]] = []
        for from_year, to_year, percent in self.account_caps:
            if not is_int(percent) or not 0 <= percent <= 100:
                raise ValueError("account cap percent must be an integer from 0 to 100")
            if to_year is not None and to_year < from_year:
                raise ValueError("account cap range ends before it starts")
            for other_from, other_to in spans:
                if (other_to is None or from_year <= other_to) and (to_year is None or other_from <= to_year):
                    raise ValueError("account cap ranges overlap")
            spans.append((from_year, to_year))

    def cap_percent(self, year: int) -> int | None:
        """The cap percent for ``year``, or ``None`` when no range covers it."""
        for from_year, to_year, percent in self.account_caps:
            if from_year <= year and (to_year is None or year <= to_year):
                return percent
        return None


DEFAULT_RULES = PensionFundRules()


@dataclass(frozen=True)
class PensionFunds:
    """What moves: the individual account's whole balance and the pooled fund."""

    individual_account_fen: int
    pooled_fund_fen: int

    @property
    def total_fen(self) -> int:
        return self.individual_account_fen + self.pooled_fund_fen


def _months_since(record: ContributionYear, since: date) -> int:
    """How many of the record's months fall in or after the month of ``since``."""
    if record.year < since.year:
        return 0
    first = record.first_month if record.year > since.year else max(record.first_month, since.month)
    return max(0, record.last_month - first + 1)


def _exact_by_year(years: Iterable[ContributionYear], since: date, percent_of: dict[int, int]) -> dict[int, Fraction]:
    """Per year, the exact Σ base × months × percent / 100 over its records (``percent_of`` by year)."""
    exact: dict[int, Fraction] = {}
    for record in years:
        months = _months_since(record, since)
        if months:
            amount = Fraction(record.monthly_base_fen * months * percent_of[record.year], 100)
            exact[record.year] = exact.get(record.year, Fraction(0)) + amount
    return exact


def _require_valid(years: Sequence[ContributionYear]) -> None:
    errors = record_errors(years)
    if errors:
        raise ValueError("invalid contribution records: " + "; ".join(f"{f}: {d}" for f, d in errors))


def months_counted(years: Sequence[ContributionYear], since: date) -> int:
    """Months paid in or after the month of ``since`` (only its year and month matter).

    Raises ``ValueError`` if :func:`record_errors` finds anything wrong with ``years``.
    """
    _require_valid(years)
    return sum(_months_since(record, since) for record in years)


def pooled_fund(
    years: Sequence[ContributionYear], *, since: date, rate_percent: int, rounding: Rounding = Rounding.NEAREST
) -> int:
    """The pooled fund in fen: ``rate_percent`` of the monthly base for every month paid from ``since``.

    Each year's amount is exact (Σ base × months × rate / 100 over that year's records) and rounded to the fen
    once by ``rounding``; the yearly amounts are summed. Raises ``ValueError`` if :func:`record_errors` finds
    anything wrong with ``years`` or ``rate_percent`` is negative.
    """
    if not is_int(rate_percent) or rate_percent < 0:
        raise ValueError("rate_percent must be a non-negative integer")
    _require_valid(years)
    exact = _exact_by_year(years, since, {record.year: rate_percent for record in years})
    return sum(rounding.apply(amount) for amount in exact.values())


def compute_funds(
    years: Sequence[ContributionYear],
    account_balance_fen: int,
    *,
    since_institution_reform: bool = False,
    rules: PensionFundRules = DEFAULT_RULES,
) -> PensionFunds:
    """The funds that move for a person with contribution records ``years`` and account balance.

    The balance moves in full (check it with :func:`account_errors`). Pooled fund:
    ``rules.pooled_rate_percent`` of each month's base from ``rules.pooled_from``, or from
    ``rules.institution_pooled_from`` when ``since_institution_reform`` (out of the institution scheme).

    Raises ``ValueError`` if :func:`record_errors` finds anything wrong with ``years`` or the balance is
    negative.
    """
    if not is_int(account_balance_fen) or account_balance_fen < 0:
        raise ValueError("account_balance_fen must be a non-negative integer")
    since = rules.institution_pooled_from if since_institution_reform else rules.pooled_from
    pooled = pooled_fund(years, since=since, rate_percent=rules.pooled_rate_percent, rounding=rules.rounding)
    return PensionFunds(individual_account_fen=account_balance_fen, pooled_fund_fen=pooled)


def account_errors(
    years: Sequence[ContributionYear], account_balance_fen: int, rules: PensionFundRules = DEFAULT_RULES
) -> list[tuple[str, str]]:
    """Where the table's individual account does not hold together, as ``(field path, description)``; empty
    when it does (the rules in the module docstring). Paths: ``contributions[i].account_credit_fen``,
    ``contributions[i].interest_fen`` and ``individual_account_fen``.

    Raises ``ValueError`` if :func:`record_errors` finds anything wrong with ``years``.
    """
    _require_valid(years)
    errors: list[tuple[str, str]] = []
    credit: dict[int, int] = {}
    interest: dict[int, int] = {}
    first_index: dict[int, int] = {}
    for i, record in enumerate(years):
        first_index.setdefault(record.year, i)
        if record.account_credit_fen is None:
            if record.year >= rules.itemised_from_year:
                errors.append(
                    (
                        f"{_FIELD_PREFIX}[{i}].account_credit_fen",
                        f"required for {record.year}: from {rules.itemised_from_year} the table states what each "
                        f"year credited to the account; a balance alone is accepted only for the years before",
                    )
                )
            continue
        credit[record.year] = credit.get(record.year, 0) + record.account_credit_fen
        interest[record.year] = interest.get(record.year, 0) + (record.interest_fen or 0)
    if errors:
        return errors
    if rules.apply_account_caps:
        bases = _exact_by_year(years, date.min, dict.fromkeys((r.year for r in years), 1))
        for year in sorted(credit):
            percent = rules.cap_percent(year)
            if percent is None:
                continue
            cap = rules.rounding.apply(bases.get(year, Fraction(0)) * percent)
            if credit[year] > cap:
                errors.append(
                    (
                        f"{_FIELD_PREFIX}[{first_index[year]}].account_credit_fen",
                        f"{year} credited {credit[year]} fen, but at most {percent}% of the year's bases "
                        f"({cap} fen, {rules.rounding.described}) may be credited",
                    )
                )
    itemised = sum(credit.values()) + sum(interest.values())
    earlier = account_balance_fen - itemised
    has_early_years = any(r.year < rules.itemised_from_year for r in years)
    if earlier < 0:
        errors.append(
            (
                "individual_account_fen",
                f"{account_balance_fen} fen, less than the {itemised} fen of credits and interest the table states",
            )
        )
    elif earlier > 0 and not has_early_years:
        errors.append(
            (
                "individual_account_fen",
                f"{account_balance_fen} fen, but the table's credits and interest add up to {itemised} fen; only "
                f"years before {rules.itemised_from_year} may be given as a balance alone",
            )
        )
    opening = max(earlier, 0)
    for year in sorted(credit):
        earned_on = opening + credit[year]
        if interest[year] * 100 > earned_on * rules.max_interest_rate_percent:
            errors.append(
                (
                    f"{_FIELD_PREFIX}[{first_index[year]}].interest_fen",
                    f"{year}: {interest[year]} fen of interest on an account of {earned_on} fen is more than "
                    f"{rules.max_interest_rate_percent}% a year: implausible",
                )
            )
        opening = earned_on + interest[year]
    return errors


def _amount_error(value: object) -> str | None:
    if not is_int(value):
        return "must be an integer"
    if value < 0:
        return "must not be negative"
    if value > MAX_AMOUNT_FEN:
        return f"must not exceed {MAX_AMOUNT_FEN} fen"
    return None


def record_errors(years: Sequence[ContributionYear]) -> list[tuple[str, str]]:
    """Everything wrong with the records, as ``(field path, description)`` pairs; empty when valid.

    Paths look like ``contributions[2].last_month``; a record that overlaps an earlier one is reported
    as ``contributions[i]``. Checks: integer fields; year in 1950..2100; months in 1..12;
    ``last_month`` not before ``first_month``; base not negative and not above 100,000,000 fen
    (1,000,000 yuan) a month; a stated credit or interest not negative and not above 10**10 fen; no two
    records for the same year with overlapping months (duplicates included). Descriptions never contain
    personal data.
    """
    errors: list[tuple[str, str]] = []
    seen: list[tuple[int, int, int, int]] = []  # (index, year, first, last) of well-formed records
    for i, record in enumerate(years):
        path = f"{_FIELD_PREFIX}[{i}]"
        ok = True
        for name in ("year", "first_month", "last_month", "monthly_base_fen"):
            if not is_int(getattr(record, name)):
                errors.append((f"{path}.{name}", "must be an integer"))
                ok = False
        for name in ("account_credit_fen", "interest_fen"):
            value = getattr(record, name)
            problem = None if value is None else _amount_error(value)
            if problem:
                errors.append((f"{path}.{name}", problem))
        if not ok:
            continue
        if not MIN_YEAR <= record.year <= MAX_YEAR:
            errors.append((f"{path}.year", f"must be from {MIN_YEAR} to {MAX_YEAR}"))
            ok = False
        months_ok = True
        for name in ("first_month", "last_month"):
            if not 1 <= getattr(record, name) <= 12:
                errors.append((f"{path}.{name}", "must be from 1 to 12"))
                months_ok = False
        if months_ok and record.last_month < record.first_month:
            errors.append((f"{path}.last_month", "must not be before first_month"))
            months_ok = False
        if record.monthly_base_fen < 0:
            errors.append((f"{path}.monthly_base_fen", "must not be negative"))
        elif record.monthly_base_fen > MAX_MONTHLY_BASE_FEN:
            errors.append((f"{path}.monthly_base_fen", f"must not exceed {MAX_MONTHLY_BASE_FEN} fen a month"))
        if not (ok and months_ok):
            continue
        for j, year, first, last in seen:
            if year == record.year and record.first_month <= last and first <= record.last_month:
                errors.append(
                    (
                        path,
                        f"overlaps {_FIELD_PREFIX}[{j}] (year {year}, months "
                        f"{max(first, record.first_month)}-{min(last, record.last_month)})",
                    )
                )
                break
        seen.append((i, record.year, record.first_month, record.last_month))
    return errors
