"""The funds that move with an employee basic pension transfer (城镇企业职工基本养老保险关系转移接续).

Rules (国办发〔2009〕66号 Art. 4; 人社部规〔2017〕1号 for institutions):

* the individual account balance (个人账户储存额) moves in full;
* the pooled fund (统筹基金) is 12% of the actual contribution wage base (实际缴费工资基数) of each year
  from 1998-01-01; a part year counts by months paid, i.e. the sum over months paid of
  monthly base × 12%;
* institution → enterprise transfers (机关事业单位 → 企业) move the individual account in full plus
  12% of each year's base from 2014-10-01 only;
* optional crediting caps (on by default): for 1998–2005 at most 11% of the base may have been
  credited to the individual account, from 2006 at most 8%. The part of the account balance above
  the cap total is reported as ``account_excess_fen`` and does not move.

All figures live in :class:`PensionFundRules`. Money is integer fen throughout; intermediate values are
exact (:class:`fractions.Fraction`), never float.

**Rounding**: each calendar year's amount (pooled fund, account cap) is computed exactly as
``monthly base × months × percent / 100`` summed over that year's records, then rounded half up to
the fen once per year; the rounded yearly amounts are summed.

**Caps and uncapped months**: the cap total is only finite when there is at least one record and
every record's year is covered by a cap range. A month outside every range (e.g. 1997, before the
caps and the individual account rules of 1998) may have been credited without limit, and its money is
in the balance, so no excess is reported then. The balance also contains interest (记账利息), which
the cap total does not include: a balance with interest will show that interest as excess.

The record functions (:func:`months_counted`, :func:`pooled_fund`, :func:`compute_funds`) expect
records that :func:`record_errors` accepts, and raise ``ValueError`` otherwise: validate requests with
:func:`record_errors` first and turn its list into field violations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

__all__ = [
    "DEFAULT_RULES",
    "MAX_MONTHLY_BASE_FEN",
    "MAX_YEAR",
    "MIN_YEAR",
    "ContributionYear",
    "PensionFundRules",
    "PensionFunds",
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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ContributionYear:
    """One year's record from the information table (信息表): the months paid and the monthly base.

    ``first_month``..``last_month`` (1..12, inclusive) are the months paid that year. A year with a
    gap or a change of base mid-year is given as several records for the same year whose months do
    not overlap.
    """

    year: int
    first_month: int
    last_month: int
    monthly_base_fen: int


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

    def __post_init__(self) -> None:
        if not _is_int(self.pooled_rate_percent) or not 0 <= self.pooled_rate_percent <= 100:
            raise ValueError("pooled_rate_percent must be an integer from 0 to 100")
        spans: list[tuple[int, int | None]] = []
        for from_year, to_year, percent in self.account_caps:
            if not _is_int(percent) or not 0 <= percent <= 100:
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
    """What moves: ``individual_account_fen`` + ``pooled_fund_fen``; ``account_excess_fen`` stays."""

    individual_account_fen: int
    pooled_fund_fen: int
    account_excess_fen: int

    @property
    def total_fen(self) -> int:
        """The amount transferred: individual account plus pooled fund (the excess is not included)."""
        return self.individual_account_fen + self.pooled_fund_fen


def _round_half_up(value: Fraction) -> int:
    """Round to the nearest integer, halves up (towards +infinity)."""
    return (value.numerator * 2 + value.denominator) // (value.denominator * 2)


def _months_since(record: ContributionYear, since: date) -> int:
    """How many of the record's months fall in or after the month of ``since``."""
    if record.year < since.year:
        return 0
    first = record.first_month if record.year > since.year else max(record.first_month, since.month)
    return max(0, record.last_month - first + 1)


def _yearly_sums(years: Iterable[ContributionYear], since: date, percent_of: dict[int, int]) -> int:
    """Sum over years of round_half_up(Σ base × months × percent / 100); ``percent_of`` by year."""
    exact: dict[int, Fraction] = {}
    for record in years:
        months = _months_since(record, since)
        if months:
            amount = Fraction(record.monthly_base_fen * months * percent_of[record.year], 100)
            exact[record.year] = exact.get(record.year, Fraction(0)) + amount
    return sum(_round_half_up(amount) for amount in exact.values())


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


def pooled_fund(years: Sequence[ContributionYear], *, since: date, rate_percent: int) -> int:
    """The pooled fund in fen: ``rate_percent`` of the monthly base for every month paid from ``since``.

    Each year's amount is exact (Σ base × months × rate / 100 over that year's records) and rounded
    half up to the fen once; the yearly amounts are summed. Raises ``ValueError`` if
    :func:`record_errors` finds anything wrong with ``years`` or ``rate_percent`` is negative.
    """
    if not _is_int(rate_percent) or rate_percent < 0:
        raise ValueError("rate_percent must be a non-negative integer")
    _require_valid(years)
    return _yearly_sums(years, since, {record.year: rate_percent for record in years})


def _account_cap_total(years: Sequence[ContributionYear], rules: PensionFundRules) -> int | None:
    """The most the account could hold from crediting (before interest), or ``None`` if unbounded.

    Unbounded when there are no records (nothing to judge the balance by) or a record's year is
    outside every cap range.
    """
    if not years:
        return None
    percent_of: dict[int, int] = {}
    for record in years:
        percent = rules.cap_percent(record.year)
        if percent is None:
            return None
        percent_of[record.year] = percent
    return _yearly_sums(years, date.min, percent_of)


def compute_funds(
    years: Sequence[ContributionYear],
    account_balance_fen: int,
    *,
    institution_to_enterprise: bool = False,
    rules: PensionFundRules = DEFAULT_RULES,
) -> PensionFunds:
    """The funds that move for a person with contribution records ``years`` and account balance.

    Pooled fund: ``rules.pooled_rate_percent`` of each month's base from ``rules.pooled_from``, or
    from ``rules.institution_pooled_from`` when ``institution_to_enterprise``. Individual account:
    the balance, less ``account_excess_fen`` when ``rules.apply_account_caps`` and the balance is
    above the cap total (each year's cap rounded half up to the fen; see the module docstring for
    months outside every cap range and for interest). The caps apply the same way to institution
    transfers.

    Raises ``ValueError`` if :func:`record_errors` finds anything wrong with ``years`` or the balance is
    negative.
    """
    if not _is_int(account_balance_fen) or account_balance_fen < 0:
        raise ValueError("account_balance_fen must be a non-negative integer")
    _require_valid(years)
    since = rules.institution_pooled_from if institution_to_enterprise else rules.pooled_from
    pooled = _yearly_sums(years, since, {record.year: rules.pooled_rate_percent for record in years})
    excess = 0
    if rules.apply_account_caps:
        cap_total = _account_cap_total(years, rules)
        if cap_total is not None:
            excess = max(0, account_balance_fen - cap_total)
    return PensionFunds(
        individual_account_fen=account_balance_fen - excess,
        pooled_fund_fen=pooled,
        account_excess_fen=excess,
    )


def record_errors(years: Sequence[ContributionYear]) -> list[tuple[str, str]]:
    """Everything wrong with the records, as ``(field path, description)`` pairs; empty when valid.

    Paths look like ``contributions[2].last_month``; a record that overlaps an earlier one is reported
    as ``contributions[i]``. Checks: integer fields; year in 1950..2100; months in 1..12;
    ``last_month`` not before ``first_month``; base not negative and not above 100,000,000 fen
    (1,000,000 yuan) a month; no two records for the same year with overlapping months (duplicates
    included). Descriptions never contain personal data.
    """
    errors: list[tuple[str, str]] = []
    seen: list[tuple[int, int, int, int]] = []  # (index, year, first, last) of well-formed records
    for i, record in enumerate(years):
        path = f"{_FIELD_PREFIX}[{i}]"
        ok = True
        for name in ("year", "first_month", "last_month", "monthly_base_fen"):
            if not _is_int(getattr(record, name)):
                errors.append((f"{path}.{name}", "must be an integer"))
                ok = False
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
