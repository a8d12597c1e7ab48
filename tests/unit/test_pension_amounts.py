"""Pension transfer funds: pooled fund, institution transfers, account caps, rounding, record checks."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.pension import (
    ContributionYear,
    PensionFundRules,
    PensionFunds,
    compute_funds,
    months_counted,
    pooled_fund,
    record_errors,
)

CY = ContributionYear
NO_CAPS = PensionFundRules(apply_account_caps=False)

# --- worked example: 1997-2010, part years, a mid-year base change ---------------------------------

WORKED = (
    CY(1997, 1, 12, 100_000),  # before 1998-01-01: not counted
    CY(1998, 7, 12, 120_000),  # 6 months: 120_000 × 6 × 12% = 86_400
    CY(1999, 1, 12, 130_000),  # 12 months: 130_000 × 12 × 12% = 187_200
    CY(2005, 3, 9, 254_321),  # 7 months: 254_321 × 7 = 1_780_247; × 12% = 213_629.64 -> 213_630
    CY(2010, 1, 6, 300_000),  # 6 months: 300_000 × 6 × 12% = 216_000
    CY(2010, 7, 12, 350_005),  # 6 months: 350_005 × 6 = 2_100_030; × 12% = 252_003.6
    # 2010 is rounded once: 216_000 + 252_003.6 = 468_003.6 -> 468_004
)
WORKED_POOLED = 86_400 + 187_200 + 213_630 + 468_004  # = 955_234


def test_worked_example_records_are_valid() -> None:
    assert record_errors(WORKED) == []


def test_worked_example_months() -> None:
    assert months_counted(WORKED, date(1998, 1, 1)) == 6 + 12 + 7 + 6 + 6  # = 37
    assert months_counted(WORKED, date(1950, 1, 1)) == 12 + 37  # 1997 too
    assert months_counted(WORKED, date(2005, 6, 1)) == 4 + 12  # 2005-06..09 and all 2010


def test_worked_example_pooled_fund() -> None:
    assert WORKED_POOLED == 955_234
    assert pooled_fund(WORKED, since=date(1998, 1, 1), rate_percent=12) == 955_234


def test_worked_example_funds() -> None:
    funds = compute_funds(WORKED, 1_234_567)
    # the 1997 record is outside every cap range, so the caps cannot be judged: no excess
    assert funds == PensionFunds(individual_account_fen=1_234_567, pooled_fund_fen=955_234, account_excess_fen=0)
    assert funds.total_fen == 1_234_567 + 955_234  # = 2_189_801
    assert funds.total_fen == 2_189_801


def test_worked_example_same_without_caps() -> None:
    assert compute_funds(WORKED, 1_234_567, rules=NO_CAPS) == compute_funds(WORKED, 1_234_567)


def test_1997_alone_moves_no_pooled_fund() -> None:
    funds = compute_funds([CY(1997, 1, 12, 500_000)], 80_000)
    assert funds == PensionFunds(80_000, 0, 0)


def test_pooled_from_is_configurable() -> None:
    rules = PensionFundRules(pooled_from=date(1999, 1, 1), apply_account_caps=False)
    # drops 1998 (86_400): 955_234 - 86_400 = 868_834
    assert compute_funds(WORKED, 0, rules=rules).pooled_fund_fen == 868_834


def test_rate_is_configurable() -> None:
    # 10% instead of 12%: 1998 72_000; 1999 156_000; 2005 178_024.7 -> 178_025;
    # 2010 180_000 + 210_003 = 390_003 -> total 796_028
    assert pooled_fund(WORKED, since=date(1998, 1, 1), rate_percent=10) == 796_028
    rules = PensionFundRules(pooled_rate_percent=10, apply_account_caps=False)
    assert compute_funds(WORKED, 0, rules=rules).pooled_fund_fen == 796_028


# --- institution -> enterprise --------------------------------------------------------------------

INSTITUTION = (
    CY(2013, 1, 12, 500_000),  # before 2014-10: not counted for institution -> enterprise
    CY(2014, 1, 12, 600_000),  # only Oct-Dec: 600_000 × 3 × 12% = 216_000
    CY(2015, 1, 6, 700_000),  # 700_000 × 6 × 12% = 504_000
)


def test_institution_to_enterprise_counts_from_october_2014() -> None:
    assert months_counted(INSTITUTION, date(2014, 10, 1)) == 3 + 6
    funds = compute_funds(INSTITUTION, 150_000, institution_to_enterprise=True)
    assert funds == PensionFunds(individual_account_fen=150_000, pooled_fund_fen=720_000, account_excess_fen=0)
    assert funds.total_fen == 870_000


def test_same_records_enterprise_transfer_counts_everything() -> None:
    # 2013: 500_000 × 12 × 12% = 720_000; 2014: 600_000 × 12 × 12% = 864_000; 2015: 504_000
    funds = compute_funds(INSTITUTION, 150_000)
    assert funds.pooled_fund_fen == 720_000 + 864_000 + 504_000  # = 2_088_000


def test_institution_part_year_starting_after_october() -> None:
    records = [CY(2014, 11, 12, 400_000)]  # 2 months: 400_000 × 2 × 12% = 96_000
    assert compute_funds(records, 0, institution_to_enterprise=True).pooled_fund_fen == 96_000
    records = [CY(2014, 1, 9, 400_000)]  # all before October
    assert compute_funds(records, 0, institution_to_enterprise=True).pooled_fund_fen == 0


# --- account caps ---------------------------------------------------------------------------------

CAPPED = (
    CY(2004, 1, 12, 100_000),  # cap 11%: 100_000 × 12 × 11% = 132_000; pooled 144_000
    CY(2006, 1, 12, 200_000),  # cap 8%: 200_000 × 12 × 8% = 192_000; pooled 288_000
)
# cap total 324_000; pooled 432_000


def test_caps_make_an_excess() -> None:
    funds = compute_funds(CAPPED, 400_000)
    # 400_000 - 324_000 = 76_000 stays behind
    assert funds == PensionFunds(individual_account_fen=324_000, pooled_fund_fen=432_000, account_excess_fen=76_000)
    assert funds.total_fen == 756_000  # excess not included


def test_balance_at_or_under_the_cap_has_no_excess() -> None:
    assert compute_funds(CAPPED, 324_000).account_excess_fen == 0
    assert compute_funds(CAPPED, 300_000) == PensionFunds(300_000, 432_000, 0)


def test_caps_can_be_switched_off() -> None:
    assert compute_funds(CAPPED, 400_000, rules=NO_CAPS) == PensionFunds(400_000, 432_000, 0)


def test_cap_ranges_are_configurable() -> None:
    # one 10% cap for every year from 1998: 100_000×12×10% + 200_000×12×10% = 120_000 + 240_000
    rules = PensionFundRules(account_caps=((1998, None, 10),))
    assert compute_funds(CAPPED, 400_000, rules=rules).account_excess_fen == 400_000 - 360_000


def test_uncapped_year_disables_the_caps() -> None:
    records = (CY(1997, 1, 12, 100_000), *CAPPED)
    assert compute_funds(records, 400_000).account_excess_fen == 0
    # empty cap table: no year is capped
    assert compute_funds(CAPPED, 400_000, rules=PensionFundRules(account_caps=())).account_excess_fen == 0


def test_caps_apply_to_institution_transfers_too() -> None:
    # 2015 Jan-Jun: 8% cap = 700_000 × 6 × 8% = 336_000
    funds = compute_funds([CY(2015, 1, 6, 700_000)], 400_000, institution_to_enterprise=True)
    assert funds == PensionFunds(individual_account_fen=336_000, pooled_fund_fen=504_000, account_excess_fen=64_000)


def test_cap_is_rounded_half_up_per_year() -> None:
    # 2000, one month at 50 fen: 50 × 11% = 5.5 -> 6; balance 10 -> excess 4
    funds = compute_funds([CY(2000, 1, 1, 50)], 10)
    assert funds.account_excess_fen == 4
    assert funds.individual_account_fen == 6
    # pooled: 50 × 12% = 6.0
    assert funds.pooled_fund_fen == 6


# --- rounding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (10, 1),  # 10 × 5% = 0.5 -> 1 (half up, not half even: 0)
        (30, 2),  # 1.5 -> 2
        (50, 3),  # 2.5 -> 3 (half even would give 2)
        (9, 0),  # 0.45 -> 0
        (11, 1),  # 0.55 -> 1
        (0, 0),
    ],
)
def test_rounding_half_up(base: int, expected: int) -> None:
    assert pooled_fund([CY(2000, 1, 1, base)], since=date(1998, 1, 1), rate_percent=5) == expected


def test_rounding_is_once_per_year_not_per_record() -> None:
    # 12_345 × 12% = 1_481.4 per month. Per record: 1_481 + 1_481 = 2_962.
    # Per year: 2_962.8 -> 2_963.
    same_year = [CY(2012, 1, 1, 12_345), CY(2012, 2, 2, 12_345)]
    assert pooled_fund(same_year, since=date(1998, 1, 1), rate_percent=12) == 2_963
    # in two different years each is rounded on its own: 1_481 + 1_481
    two_years = [CY(2012, 1, 1, 12_345), CY(2013, 1, 1, 12_345)]
    assert pooled_fund(two_years, since=date(1998, 1, 1), rate_percent=12) == 2_962


def test_record_order_does_not_matter() -> None:
    assert pooled_fund(WORKED[::-1], since=date(1998, 1, 1), rate_percent=12) == 955_234


def test_amounts_are_ints() -> None:
    funds = compute_funds(WORKED, 1)
    assert type(funds.pooled_fund_fen) is int
    assert type(funds.individual_account_fen) is int
    assert type(funds.account_excess_fen) is int


# --- zero records ---------------------------------------------------------------------------------


def test_no_records() -> None:
    assert months_counted([], date(1998, 1, 1)) == 0
    assert pooled_fund([], since=date(1998, 1, 1), rate_percent=12) == 0
    assert compute_funds([], 0) == PensionFunds(0, 0, 0)
    assert compute_funds([], 0).total_fen == 0
    # no records, so nothing to judge the caps by: the balance moves whole
    assert compute_funds([], 12_345) == PensionFunds(12_345, 0, 0)


def test_zero_base_record() -> None:
    funds = compute_funds([CY(2010, 1, 12, 0)], 0)
    assert funds == PensionFunds(0, 0, 0)
    # a zero base caps the account at 0: any balance is excess
    assert compute_funds([CY(2010, 1, 12, 0)], 500) == PensionFunds(0, 0, 500)


# --- bad input ------------------------------------------------------------------------------------


def test_record_errors() -> None:
    records = [
        CY(1949, 1, 12, 100),  # 0: year too early
        CY(2000, 0, 13, 100),  # 1: both months out of range
        CY(2001, 6, 5, 100),  # 2: last before first
        CY(2002, 1, 12, -1),  # 3: negative base
        CY(2003, 1, 12, 100_000_001),  # 4: absurd base
        CY(2004, 1, 6, 1),  # 5: fine
        CY(2004, 6, 12, 1),  # 6: June overlaps record 5
        CY(2004, 1, 6, 1),  # 7: duplicate of record 5
        CY(2101, 1, 12, 1),  # 8: year too late
        CY(2005, 1, 6, 1),  # 9: fine
        CY(2005, 7, 12, 2),  # 10: fine, same year, later months
        CY(2005, 7, 7, 3),  # 11: July overlaps record 10's first month
    ]
    assert record_errors(records) == [
        ("contributions[0].year", "must be from 1950 to 2100"),
        ("contributions[1].first_month", "must be from 1 to 12"),
        ("contributions[1].last_month", "must be from 1 to 12"),
        ("contributions[2].last_month", "must not be before first_month"),
        ("contributions[3].monthly_base_fen", "must not be negative"),
        ("contributions[4].monthly_base_fen", "must not exceed 100000000 fen a month"),
        ("contributions[6]", "overlaps contributions[5] (year 2004, months 6-6)"),
        ("contributions[7]", "overlaps contributions[5] (year 2004, months 1-6)"),
        ("contributions[8].year", "must be from 1950 to 2100"),
        ("contributions[11]", "overlaps contributions[10] (year 2005, months 7-7)"),
    ]


def test_record_errors_boundaries_are_allowed() -> None:
    assert record_errors([CY(1950, 1, 12, 0), CY(2100, 12, 12, 100_000_000), CY(2000, 5, 5, 1)]) == []


def test_record_errors_non_integers() -> None:
    assert record_errors([CY(2000, 1, 12, 1.5)]) == [  # type: ignore[arg-type]
        ("contributions[0].monthly_base_fen", "must be an integer")
    ]
    assert record_errors([CY(2000, True, 12, 100)]) == [("contributions[0].first_month", "must be an integer")]


def test_compute_refuses_bad_records() -> None:
    with pytest.raises(ValueError, match=r"contributions\[0\]\.last_month"):
        compute_funds([CY(2001, 6, 5, 100)], 0)
    with pytest.raises(ValueError):
        pooled_fund([CY(2002, 1, 12, -1)], since=date(1998, 1, 1), rate_percent=12)
    with pytest.raises(ValueError):
        months_counted([CY(2004, 1, 6, 1), CY(2004, 6, 12, 1)], date(1998, 1, 1))


def test_compute_refuses_negative_balance_and_rate() -> None:
    with pytest.raises(ValueError):
        compute_funds(CAPPED, -1)
    with pytest.raises(ValueError):
        pooled_fund(CAPPED, since=date(1998, 1, 1), rate_percent=-1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pooled_rate_percent": -1},
        {"pooled_rate_percent": 101},
        {"account_caps": ((2006, 2005, 8),)},
        {"account_caps": ((1998, 2005, 11), (2005, None, 8))},
        {"account_caps": ((1998, None, 11), (2006, 2010, 8))},
        {"account_caps": ((1998, 2005, -1),)},
    ],
)
def test_rules_reject_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PensionFundRules(**kwargs)  # type: ignore[arg-type]


def test_default_rules() -> None:
    rules = PensionFundRules()
    assert (rules.pooled_rate_percent, rules.pooled_from, rules.institution_pooled_from) == (
        12,
        date(1998, 1, 1),
        date(2014, 10, 1),
    )
    assert rules.cap_percent(1997) is None
    assert rules.cap_percent(1998) == 11
    assert rules.cap_percent(2005) == 11
    assert rules.cap_percent(2006) == 8
    assert rules.cap_percent(2099) == 8


# --- properties -----------------------------------------------------------------------------------

bases = st.integers(min_value=0, max_value=100_000_000)


@st.composite
def records(draw: st.DrawFn) -> list[ContributionYear]:
    years = draw(st.lists(st.integers(min_value=1950, max_value=2100), unique=True, max_size=12))
    out = []
    for year in years:
        first = draw(st.integers(min_value=1, max_value=12))
        last = draw(st.integers(min_value=first, max_value=12))
        out.append(ContributionYear(year, first, last, draw(bases)))
    return out


sinces = st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 12, 31))
rates = st.integers(min_value=0, max_value=100)


@given(records(), sinces, rates)
def test_pooled_fund_is_never_negative(years: list[ContributionYear], since: date, rate: int) -> None:
    assert pooled_fund(years, since=since, rate_percent=rate) >= 0


@given(records(), sinces, rates, st.data())
def test_pooled_fund_is_monotonic_in_base(
    years: list[ContributionYear], since: date, rate: int, data: st.DataObject
) -> None:
    if not years:
        return
    i = data.draw(st.integers(min_value=0, max_value=len(years) - 1))
    raised = dataclasses.replace(
        years[i], monthly_base_fen=data.draw(st.integers(years[i].monthly_base_fen, 100_000_000))
    )
    more = [*years[:i], raised, *years[i + 1 :]]
    assert pooled_fund(more, since=since, rate_percent=rate) >= pooled_fund(years, since=since, rate_percent=rate)


@given(records(), sinces, rates)
def test_pooled_fund_matches_integer_oracle(years: list[ContributionYear], since: date, rate: int) -> None:
    # one record per year here, so: round_half_up(base × months × rate / 100) = (2·x + 100) // 200
    expected = 0
    for r in years:
        if (r.year, r.last_month) < (since.year, since.month):
            continue
        first = r.first_month if r.year > since.year else max(r.first_month, since.month)
        expected += (2 * r.monthly_base_fen * (r.last_month - first + 1) * rate + 100) // 200
    assert pooled_fund(years, since=since, rate_percent=rate) == expected


@given(records(), st.integers(min_value=0, max_value=10**12), st.booleans(), st.booleans())
def test_total_is_account_plus_pooled(
    years: list[ContributionYear], balance: int, institution: bool, caps: bool
) -> None:
    rules = PensionFundRules(apply_account_caps=caps)
    funds = compute_funds(years, balance, institution_to_enterprise=institution, rules=rules)
    assert funds.total_fen == funds.individual_account_fen + funds.pooled_fund_fen
    assert funds.individual_account_fen + funds.account_excess_fen == balance
    assert funds.individual_account_fen >= 0
    assert funds.account_excess_fen >= 0
    assert funds.pooled_fund_fen >= 0
    if not caps:
        assert funds.account_excess_fen == 0
    since = rules.institution_pooled_from if institution else rules.pooled_from
    assert funds.pooled_fund_fen == pooled_fund(years, since=since, rate_percent=12)


@given(records(), st.integers(min_value=0, max_value=10**12))
def test_institution_pooled_fund_never_exceeds_enterprise(years: list[ContributionYear], balance: int) -> None:
    enterprise = compute_funds(years, balance)
    institution = compute_funds(years, balance, institution_to_enterprise=True)
    assert institution.pooled_fund_fen <= enterprise.pooled_fund_fen
    assert institution.individual_account_fen == enterprise.individual_account_fen
