"""Pension transfer funds (国办发〔2009〕66号 Art. 4; 人社部规〔2017〕1号): pooled fund, institution transfers, the
individual account with interest, crediting caps, rounding conventions, record checks."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.transfer.pension import (
    ContributionYear,
    PensionFundRules,
    PensionFunds,
    Rounding,
    account_errors,
    compute_funds,
    months_counted,
    pooled_fund,
    record_errors,
)

CY = ContributionYear
NO_CAPS = PensionFundRules(apply_account_caps=False)
FLOOR = PensionFundRules(rounding=Rounding.FLOOR)

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
    # the balance moves whole; the pooled fund is 12% of the bases from 1998
    assert funds == PensionFunds(individual_account_fen=1_234_567, pooled_fund_fen=955_234)
    assert funds.total_fen == 1_234_567 + 955_234  # = 2_189_801
    assert funds.total_fen == 2_189_801


def test_1997_alone_moves_no_pooled_fund() -> None:
    funds = compute_funds([CY(1997, 1, 12, 500_000)], 80_000)
    assert funds == PensionFunds(80_000, 0)


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
    funds = compute_funds(INSTITUTION, 150_000, since_institution_reform=True)
    assert funds == PensionFunds(individual_account_fen=150_000, pooled_fund_fen=720_000)
    assert funds.total_fen == 870_000


def test_same_records_enterprise_transfer_counts_everything() -> None:
    # 2013: 500_000 × 12 × 12% = 720_000; 2014: 600_000 × 12 × 12% = 864_000; 2015: 504_000
    funds = compute_funds(INSTITUTION, 150_000)
    assert funds.pooled_fund_fen == 720_000 + 864_000 + 504_000  # = 2_088_000


def test_institution_part_year_starting_after_october() -> None:
    records = [CY(2014, 11, 12, 400_000)]  # 2 months: 400_000 × 2 × 12% = 96_000
    assert compute_funds(records, 0, since_institution_reform=True).pooled_fund_fen == 96_000
    records = [CY(2014, 1, 9, 400_000)]  # all before October
    assert compute_funds(records, 0, since_institution_reform=True).pooled_fund_fen == 0


# --- the individual account: credits, interest, caps (66号 Art. 4) ----------------------------------------------


def _four_years() -> list[ContributionYear]:
    """The issue's first example: 2016-2019, a balance of 41,515.73 yuan of which 4,397.69 is interest. Credits at
    8% of each year's bases (2019's base gives 1,215,804.48 fen, credited as 1,215,804)."""
    return [
        CY(2016, 1, 12, 800_000, 768_000, 30_000),  # 8,000 yuan a month: 8% × 12 months = 7,680.00
        CY(2017, 1, 12, 850_000, 816_000, 70_000),
        CY(2018, 1, 12, 950_000, 912_000, 140_000),
        CY(2019, 1, 12, 1_266_463, 1_215_804, 199_769),
    ]


def test_the_balance_with_interest_moves_in_full() -> None:
    """66号 Art. 4: the account's whole balance (本息) moves; the 8% cap bounds each year's credit, not the balance."""
    years = _four_years()
    credits = 768_000 + 816_000 + 912_000 + 1_215_804
    interest = 30_000 + 70_000 + 140_000 + 199_769
    assert (credits, interest) == (3_711_804, 439_769)  # 37,118.04 + 4,397.69 yuan
    balance = 4_151_573  # 41,515.73 yuan
    assert credits + interest == balance
    assert account_errors(years, balance) == []
    assert compute_funds(years, balance).individual_account_fen == balance


def test_sixteen_years_of_interest_are_not_withheld() -> None:
    """The issue's second example: 2009-2024, a balance of 532,894.99 yuan of which 170,213.23 is interest (the old
    check withheld it). Each year credited at its 8% cap, the last year's credit below it; interest about 5%."""
    bases = [1_700_000 + 100_000 * i for i in range(16)]  # 17,000 yuan a month, rising 1,000 a year
    caps = [b * 12 * 8 // 100 for b in bases]  # exact: 96% of a base is whole fen here
    credits_total, interest_total = 36_268_176, 17_021_323  # 362,681.76 and 170,213.23 yuan
    credits = [*caps[:-1], credits_total - sum(caps[:-1])]
    assert 0 <= credits[-1] <= caps[-1]
    interest, opening = [], 0
    for credit in credits[:-1]:
        interest.append((opening + credit) * 5 // 100)
        opening += credit + interest[-1]
    interest.append(interest_total - sum(interest))
    assert interest[-1] * 10 <= opening + credits[-1]  # the last year too is under 10%
    years = [CY(2009 + i, 1, 12, bases[i], credits[i], interest[i]) for i in range(16)]
    balance = 53_289_499
    assert credits_total + interest_total == balance
    assert account_errors(years, balance) == []
    assert compute_funds(years, balance).individual_account_fen == balance


def test_a_credit_above_its_year_cap_is_refused() -> None:
    """Crediting caps: 11% of the year's bases 1998-2005, 8% from 2006."""
    years = [CY(2004, 1, 12, 100_000, 132_001, 0), CY(2006, 1, 12, 200_000, 192_000, 0)]
    assert account_errors(years, 324_001) == [
        (
            "contributions[0].account_credit_fen",
            "2004 credited 132001 fen, but at most 11% of the year's bases (132000 fen, rounded to the nearest fen "
            "once a year) may be credited",
        )
    ]
    at_caps = [CY(2004, 1, 12, 100_000, 132_000, 0), CY(2006, 1, 12, 200_000, 192_000, 0)]
    assert account_errors(at_caps, 324_000) == []


def test_caps_sum_a_years_records_and_can_be_switched_off() -> None:
    # 2010: Jan-Jun at 1,000 yuan and Jul-Dec at 2,000: cap 8% × (600,000 + 1,200,000) = 144,000
    years = [CY(2010, 1, 6, 100_000, 50_000, 0), CY(2010, 7, 12, 200_000, 94_000, 0)]
    assert account_errors(years, 144_000) == []
    over = [CY(2010, 1, 6, 100_000, 50_000, 0), CY(2010, 7, 12, 200_000, 94_001, 0)]
    assert [path for path, _ in account_errors(over, 144_001)] == ["contributions[0].account_credit_fen"]
    assert account_errors(over, 144_001, NO_CAPS) == []


def test_cap_ranges_are_configurable() -> None:
    years = [CY(2004, 1, 12, 100_000, 120_001, 0)]
    rules = PensionFundRules(account_caps=((1998, None, 10),))  # one 10% cap: 120,000
    assert [p for p, _ in account_errors(years, 120_001, rules)] == ["contributions[0].account_credit_fen"]


def test_the_cap_follows_the_rounding_convention() -> None:
    # 2000, one month at 50 fen: 11% = 5.5 fen: 6 to the nearest fen, 5 rounded down
    assert account_errors([CY(2000, 1, 1, 50, 6, 0)], 6) == []
    assert [p for p, _ in account_errors([CY(2000, 1, 1, 50, 6, 0)], 6, FLOOR)] == [
        "contributions[0].account_credit_fen"
    ]


def test_years_from_1998_must_state_their_credit() -> None:
    """A table that states only the balance is accepted for the years before 1998 (累计本息), not after."""
    assert account_errors([CY(1996, 1, 12, 100_000), CY(1997, 1, 12, 100_000)], 250_000) == []
    errors = account_errors([CY(1997, 1, 12, 100_000), CY(2003, 1, 12, 100_000)], 250_000)
    assert [path for path, _ in errors] == ["contributions[1].account_credit_fen"]
    assert "required for 2003" in errors[0][1] and "balance alone" in errors[0][1]


def test_years_before_1998_are_the_part_of_the_balance_the_table_does_not_itemise() -> None:
    # 1997 gives no credit; 1998 credits 132,000 with 6,000 interest; the balance holds 80,000 from before 1998
    years = [CY(1997, 1, 12, 100_000), CY(1998, 1, 12, 100_000, 132_000, 6_000)]
    assert account_errors(years, 80_000 + 132_000 + 6_000) == []
    # without a year before 1998, the balance must be exactly the credits and interest
    errors = account_errors(years[1:], 80_000 + 132_000 + 6_000)
    assert errors == [
        (
            "individual_account_fen",
            "218000 fen, but the table's credits and interest add up to 138000 fen; only years before 1998 may be "
            "given as a balance alone",
        )
    ]


def test_a_balance_below_the_stated_credits_is_refused() -> None:
    errors = account_errors([CY(2010, 1, 12, 100_000, 96_000, 4_000)], 99_999)
    assert errors == [
        ("individual_account_fen", "99999 fen, less than the 100000 fen of credits and interest the table states")
    ]


def test_interest_above_ten_percent_a_year_is_implausible() -> None:
    # 2010 credit 96,000: at most 9,600 of interest; 2011 on 105,600 + 96,000 = 201,600: at most 20,160
    ok = [CY(2010, 1, 12, 100_000, 96_000, 9_600), CY(2011, 1, 12, 100_000, 96_000, 20_160)]
    assert account_errors(ok, 96_000 * 2 + 9_600 + 20_160) == []
    high = [CY(2010, 1, 12, 100_000, 96_000, 9_600), CY(2011, 1, 12, 100_000, 96_000, 20_161)]
    assert account_errors(high, 96_000 * 2 + 9_600 + 20_161) == [
        (
            "contributions[1].interest_fen",
            "2011: 20161 fen of interest on an account of 201600 fen is more than 10% a year: implausible",
        )
    ]
    assert account_errors(high, 96_000 * 2 + 9_600 + 20_161, PensionFundRules(max_interest_rate_percent=11)) == []


def test_negative_interest_or_credit_is_bad_input() -> None:
    assert record_errors([CY(2010, 1, 12, 100_000, -1, -2)]) == [
        ("contributions[0].account_credit_fen", "must not be negative"),
        ("contributions[0].interest_fen", "must not be negative"),
    ]


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


def test_a_region_may_round_down() -> None:
    """The pooled-fund rounding is a named convention: ``floor`` for a region that rounds down."""
    assert pooled_fund([CY(2000, 1, 1, 50)], since=date(1998, 1, 1), rate_percent=5, rounding=Rounding.FLOOR) == 2
    assert compute_funds(WORKED, 0, rules=FLOOR).pooled_fund_fen == 86_400 + 187_200 + 213_629 + 468_003


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


# --- zero records ---------------------------------------------------------------------------------


def test_no_records() -> None:
    assert months_counted([], date(1998, 1, 1)) == 0
    assert pooled_fund([], since=date(1998, 1, 1), rate_percent=12) == 0
    assert compute_funds([], 0) == PensionFunds(0, 0)
    assert compute_funds([], 0).total_fen == 0
    assert compute_funds([], 12_345) == PensionFunds(12_345, 0)


def test_zero_base_record() -> None:
    assert compute_funds([CY(2010, 1, 12, 0)], 0) == PensionFunds(0, 0)
    # a zero base caps the year's credit at 0
    assert [p for p, _ in account_errors([CY(2010, 1, 12, 0, 500, 0)], 500)] == ["contributions[0].account_credit_fen"]


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
        compute_funds(WORKED, -1)
    with pytest.raises(ValueError):
        pooled_fund(WORKED, since=date(1998, 1, 1), rate_percent=-1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pooled_rate_percent": -1},
        {"pooled_rate_percent": 101},
        {"account_caps": ((2006, 2005, 8),)},
        {"account_caps": ((1998, 2005, 11), (2005, None, 8))},
        {"account_caps": ((1998, None, 11), (2006, 2010, 8))},
        {"account_caps": ((1998, 2005, -1),)},
        {"max_interest_rate_percent": -1},
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
    assert (rules.rounding, rules.max_interest_rate_percent, rules.itemised_from_year) == (Rounding.NEAREST, 10, 1998)


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


@given(records(), st.integers(min_value=0, max_value=10**12), st.booleans())
def test_total_is_account_plus_pooled(years: list[ContributionYear], balance: int, institution: bool) -> None:
    funds = compute_funds(years, balance, since_institution_reform=institution)
    assert funds.total_fen == funds.individual_account_fen + funds.pooled_fund_fen
    assert funds.individual_account_fen == balance  # the balance always moves whole
    assert funds.pooled_fund_fen >= 0
    since = PensionFundRules().institution_pooled_from if institution else PensionFundRules().pooled_from
    assert funds.pooled_fund_fen == pooled_fund(years, since=since, rate_percent=12)


@given(records(), st.data())
def test_credits_at_their_caps_with_no_interest_always_pass(years: list[ContributionYear], data: st.DataObject) -> None:
    rules = PensionFundRules()
    credited = []
    for r in years:
        percent = rules.cap_percent(r.year)
        months = r.last_month - r.first_month + 1
        credit = None if percent is None else (2 * r.monthly_base_fen * months * percent + 100) // 200
        credited.append(
            dataclasses.replace(r, account_credit_fen=credit, interest_fen=0 if credit is not None else None)
        )
    early = data.draw(st.integers(0, 10**9)) if any(r.year < 1998 for r in years) else 0
    balance = early + sum(r.account_credit_fen or 0 for r in credited)
    assert account_errors(credited, balance, rules) == []


@given(records(), st.integers(min_value=0, max_value=10**12))
def test_institution_pooled_fund_never_exceeds_enterprise(years: list[ContributionYear], balance: int) -> None:
    enterprise = compute_funds(years, balance)
    institution = compute_funds(years, balance, since_institution_reform=True)
    assert institution.pooled_fund_fen <= enterprise.pooled_fund_fen
    assert institution.individual_account_fen == enterprise.individual_account_fen
