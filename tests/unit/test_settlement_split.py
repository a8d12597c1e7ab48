"""Non-local bill split (docs/design.md §3): catalogue classes, deductible, ratio by filing, annual cap, account pay."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.errors import FailedPrecondition, InvalidArgument
from gateway.domain.money import MAX_AMOUNT_FEN
from gateway.domain.settlement.split import (
    BillItem,
    CatalogueClass,
    FilingStatus,
    InsuranceType,
    MedicalType,
    RegionPolicy,
    SchemeRule,
    Split,
    YearToDate,
    apply_to_year,
    bill_errors,
    revert_from_year,
    split_bill,
)

A, B, C = CatalogueClass.A, CatalogueClass.B, CatalogueClass.C
EMP, RES = InsuranceType.EMPLOYEE, InsuranceType.RESIDENT
LONG, TEMP, EMERG, UNFILED = (
    FilingStatus.FILED_LONG_TERM,
    FilingStatus.FILED_TEMPORARY,
    FilingStatus.EMERGENCY,
    FilingStatus.UNFILED,
)

POLICY = RegionPolicy(
    region="110000",
    employee_inpatient=SchemeRule(130_000, {1: 95, 2: 90, 3: 85}, 50_000_000),  # 1,300 yuan; cap 500,000 yuan
    employee_outpatient=SchemeRule(50_000, {1: 70, 2: 60, 3: 50}, 1_000_000),
    resident_inpatient=SchemeRule(100_000, {1: 85, 2: 75, 3: 60}, 30_000_000),
    resident_outpatient=SchemeRule(20_000, {1: 60, 2: 55, 3: 50}, 40_000),
    temporary_drop_points=5,
    unfiled_drop_points=10,
)

NEW_YEAR = YearToDate()

# --- worked example: 20,000.00 yuan inpatient bill, employee, level-3 hospital ----------------------------------

BILL = (
    BillItem("XA01", "甲类西药", A, 1_200_000),  # 12,000.00 yuan, fully in scope
    BillItem("XB02", "乙类检查", B, 600_000, 10),  # 6,000.00 yuan, 10% self-paid first: 60_000
    BillItem("XC03", "丙类材料", C, 200_000),  # 2,000.00 yuan, out of scope
)
# total 2_000_000; in scope 2_000_000 - 200_000 - 60_000 = 1_740_000
# deductible 130_000 not yet met -> eligible 1_740_000 - 130_000 = 1_610_000
# fund 1_610_000 × 85% = 1_368_500; personal 2_000_000 - 1_368_500 = 631_500
# account 300_000 (its whole balance); cash 631_500 - 300_000 = 331_500


def split(
    items: tuple[BillItem, ...] = BILL,
    *,
    insurance: InsuranceType = EMP,
    medical: MedicalType = MedicalType.INPATIENT,
    level: int = 3,
    filing: FilingStatus = LONG,
    ytd: YearToDate = NEW_YEAR,
    balance: int = 300_000,
    policy: RegionPolicy = POLICY,
) -> Split:
    return split_bill(
        items,
        insurance=insurance,
        medical=medical,
        hospital_level=level,
        filing=filing,
        year_to_date=ytd,
        account_balance_fen=balance,
        policy=policy,
    )


def test_worked_example_every_figure() -> None:
    assert split() == Split(
        total_fen=2_000_000,
        class_c_fen=200_000,
        class_b_self_fen=60_000,
        in_scope_fen=1_740_000,
        deductible_fen=130_000,
        over_cap_fen=0,
        ratio_percent=85,
        fund_pay_fen=1_368_500,
        account_pay_fen=300_000,
        cash_pay_fen=331_500,
        filing=LONG,
        note="filed long-term: full ratio 85% (employee inpatient, level 3 hospital)",
    )


def test_worked_example_year_to_date() -> None:
    assert apply_to_year(YearToDate(), split()) == YearToDate(deductible_met_fen=130_000, fund_paid_fen=1_368_500)


def test_nonlocal_inpatient_code_uses_inpatient_column() -> None:
    assert split(medical=MedicalType.NONLOCAL_INPATIENT) == split()


def test_medical_type_inpatient_property() -> None:
    assert MedicalType("21").inpatient and MedicalType("25").inpatient
    assert not MedicalType("11").inpatient and not MedicalType("14").inpatient


def test_rule_picks_the_column() -> None:
    assert POLICY.rule(EMP, MedicalType.INPATIENT) is POLICY.employee_inpatient
    assert POLICY.rule(EMP, MedicalType.CHRONIC_OUTPATIENT) is POLICY.employee_outpatient
    assert POLICY.rule(RES, MedicalType.NONLOCAL_INPATIENT) is POLICY.resident_inpatient
    assert POLICY.rule(RES, MedicalType.OUTPATIENT) is POLICY.resident_outpatient
    assert InsuranceType("310") is EMP and InsuranceType("390") is RES


# --- deductible ---------------------------------------------------------------------------------------------------


def test_deductible_already_met() -> None:
    s = split(ytd=YearToDate(deductible_met_fen=130_000, fund_paid_fen=1_368_500))
    # eligible 1_740_000 × 85% = 1_479_000; personal 2_000_000 - 1_479_000 = 521_000; cash 521_000 - 300_000
    assert (s.deductible_fen, s.fund_pay_fen, s.account_pay_fen, s.cash_pay_fen) == (0, 1_479_000, 300_000, 221_000)


def test_deductible_partly_met() -> None:
    s = split(ytd=YearToDate(deductible_met_fen=100_000))
    # deductible 130_000 - 100_000 = 30_000; eligible 1_710_000 × 85% = 1_453_500
    assert (s.deductible_fen, s.fund_pay_fen) == (30_000, 1_453_500)
    assert s.cash_pay_fen == 2_000_000 - 1_453_500 - 300_000  # = 246_500


def test_deductible_larger_than_in_scope_carries_to_next_visit() -> None:
    first = split((BillItem("M1", "门诊", A, 30_000),), medical=MedicalType.OUTPATIENT, level=1)
    # outpatient deductible 50_000 but only 30_000 in scope: all of it goes to the deductible, fund 0
    assert (first.in_scope_fen, first.deductible_fen, first.fund_pay_fen) == (30_000, 30_000, 0)
    assert (first.account_pay_fen, first.cash_pay_fen) == (30_000, 0)
    ytd = apply_to_year(YearToDate(), first)
    assert ytd == YearToDate(30_000, 0)
    second = split((BillItem("M1", "门诊", A, 80_000),), medical=MedicalType.OUTPATIENT, level=1, ytd=ytd, balance=0)
    # remaining deductible 50_000 - 30_000 = 20_000; eligible 60_000 × 70% = 42_000; cash 80_000 - 42_000
    assert (second.deductible_fen, second.fund_pay_fen, second.account_pay_fen, second.cash_pay_fen) == (
        20_000,
        42_000,
        0,
        38_000,
    )


def test_deductible_met_beyond_a_lowered_deductible_is_no_deductible() -> None:
    s = split(ytd=YearToDate(deductible_met_fen=500_000))
    assert s.deductible_fen == 0 and s.fund_pay_fen == 1_479_000  # 1_740_000 × 85%


# --- annual cap ---------------------------------------------------------------------------------------------------


def test_cap_reached_mid_bill() -> None:
    ytd = YearToDate(deductible_met_fen=0, fund_paid_fen=49_000_000)
    s = split(ytd=ytd)
    # uncapped 1_368_500, headroom 50_000_000 - 49_000_000 = 1_000_000: fund 1_000_000, over cap 368_500
    assert (s.fund_pay_fen, s.over_cap_fen) == (1_000_000, 368_500)
    # personal 2_000_000 - 1_000_000 = 1_000_000: account 300_000, cash 700_000
    assert (s.account_pay_fen, s.cash_pay_fen) == (300_000, 700_000)
    assert s.note.endswith("; annual cap 50000000 fen reached: 368500 fen over the cap paid by the person")
    assert apply_to_year(ytd, s) == YearToDate(130_000, 50_000_000)


def test_cap_already_reached_fund_pays_nothing() -> None:
    s = split(ytd=YearToDate(130_000, 50_000_000))
    # uncapped 1_479_000 (deductible met) is all over the cap
    assert (s.fund_pay_fen, s.over_cap_fen, s.account_pay_fen, s.cash_pay_fen) == (0, 1_479_000, 300_000, 1_700_000)


def test_fund_paid_above_a_lowered_cap_pays_nothing() -> None:
    s = split(ytd=YearToDate(130_000, 60_000_000))
    assert (s.fund_pay_fen, s.over_cap_fen) == (0, 1_479_000)


# --- ratio by filing ----------------------------------------------------------------------------------------------


def test_temporary_filing_lowers_ratio() -> None:
    s = split(filing=TEMP)
    # 85 - 5 = 80%: 1_610_000 × 80% = 1_288_000; cash 2_000_000 - 1_288_000 - 300_000 = 412_000
    assert (s.ratio_percent, s.fund_pay_fen, s.cash_pay_fen, s.filing) == (80, 1_288_000, 412_000, TEMP)
    assert s.note == (
        "temporary trip filing: ratio 85% lowered by 5 points to 80% (employee inpatient, level 3 hospital)"
    )


def test_temporary_filing_without_configured_drop_is_full_ratio() -> None:
    s = split(filing=TEMP, policy=dataclasses.replace(POLICY, temporary_drop_points=0))
    assert (s.ratio_percent, s.fund_pay_fen) == (85, 1_368_500)
    assert s.note.startswith("temporary trip filing: full ratio 85% (no reduction configured)")


def test_each_filing_category_has_its_own_reduction() -> None:
    """医保发〔2022〕22号: the insured region sets the reduction for a referral, for another temporary trip and for
    unfiled care separately; emergency care counts as filed. The note names the category."""
    policy = dataclasses.replace(
        POLICY, referral_drop_points=3, temporary_drop_points=7, unfiled_drop_points=12, emergency_drop_points=0
    )
    cases = [
        (FilingStatus.FILED_REFERRAL, 82, "referral filing: ratio 85% lowered by 3 points to 82%"),
        (TEMP, 78, "temporary trip filing: ratio 85% lowered by 7 points to 78%"),
        (UNFILED, 73, "unfiled: ratio 85% lowered by 12 points to 73%"),
        (EMERG, 85, "emergency (counts as filed): full ratio 85% (no reduction configured)"),
        (LONG, 85, "filed long-term: full ratio 85%"),
    ]
    for filing, ratio, note in cases:
        s = split(filing=filing, policy=policy)
        assert (s.ratio_percent, s.filing) == (ratio, filing)
        assert s.note.startswith(note)


def test_unfiled_lowers_ratio() -> None:
    s = split(filing=UNFILED)
    # 85 - 10 = 75%: 1_610_000 × 75% = 1_207_500
    assert (s.ratio_percent, s.fund_pay_fen, s.filing) == (75, 1_207_500, UNFILED)
    assert s.note == "unfiled: ratio 85% lowered by 10 points to 75% (employee inpatient, level 3 hospital)"


def test_unfiled_drop_is_configurable_and_floored_at_zero() -> None:
    s = split(filing=UNFILED, policy=dataclasses.replace(POLICY, unfiled_drop_points=90))
    assert (s.ratio_percent, s.fund_pay_fen) == (0, 0)
    assert s.note.startswith("unfiled: ratio 85% lowered by 90 points, floored at 0%")
    # the whole bill is the person's: account 300_000, cash 1_700_000
    assert (s.account_pay_fen, s.cash_pay_fen) == (300_000, 1_700_000)


def test_unfiled_refused_when_policy_says_so() -> None:
    strict = dataclasses.replace(POLICY, refuse_unfiled=True)
    with pytest.raises(FailedPrecondition) as caught:
        split(filing=UNFILED, policy=strict)
    assert caught.value.reason == "NOT_FILED"
    assert split(filing=LONG, policy=strict).fund_pay_fen == 1_368_500  # filed care still settles


def test_emergency_is_full_ratio_even_under_strict_policy() -> None:
    strict = dataclasses.replace(POLICY, refuse_unfiled=True, temporary_drop_points=20)
    s = split(filing=EMERG, policy=strict)
    assert (s.ratio_percent, s.fund_pay_fen, s.filing) == (85, 1_368_500, EMERG)
    assert s.note.startswith("emergency (counts as filed): full ratio 85%")
    assert split(filing=EMERG, policy=dataclasses.replace(strict, emergency_drop_points=10)).ratio_percent == 75


def test_ratio_by_level() -> None:
    assert split(level=1).fund_pay_fen == 1_529_500  # 1_610_000 × 95%
    assert split(level=2).fund_pay_fen == 1_449_000  # 1_610_000 × 90%


@pytest.mark.parametrize("level", [0, 4, -1])
def test_unknown_hospital_level_is_invalid(level: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        split(level=level)
    assert caught.value.reason == "UNKNOWN_HOSPITAL_LEVEL"
    assert [v.field for v in caught.value.violations] == ["hospital_level"]


def test_level_missing_from_policy_is_invalid() -> None:
    rule = SchemeRule(130_000, {2: 90, 3: 85}, 50_000_000)
    with pytest.raises(InvalidArgument):
        split(level=1, policy=dataclasses.replace(POLICY, employee_inpatient=rule))


# --- account ------------------------------------------------------------------------------------------------------


def test_resident_has_no_account_pay() -> None:
    s = split(insurance=RES, level=2, balance=300_000)
    # resident inpatient: deductible 100_000, level 2 75%: 1_640_000 × 75% = 1_230_000; cash 2_000_000 - 1_230_000
    assert (s.deductible_fen, s.ratio_percent, s.fund_pay_fen, s.account_pay_fen, s.cash_pay_fen) == (
        100_000,
        75,
        1_230_000,
        0,
        770_000,
    )
    assert "(resident inpatient, level 2 hospital)" in s.note


def test_account_covers_whole_personal_share() -> None:
    s = split(balance=1_000_000)
    assert (s.account_pay_fen, s.cash_pay_fen) == (631_500, 0)


def test_policy_may_keep_account_out() -> None:
    s = split(policy=dataclasses.replace(POLICY, account_pays_personal_share=False))
    assert (s.account_pay_fen, s.cash_pay_fen) == (0, 631_500)


def test_negative_balance_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        split(balance=-1)
    assert [v.field for v in caught.value.violations] == ["account_balance_fen"]


# --- rounding -----------------------------------------------------------------------------------------------------


def test_class_b_self_share_rounds_half_up_per_item() -> None:
    items = (
        BillItem("B1", "乙类", B, 12_345, 15),  # 1_851.75 -> 1_852
        BillItem("B2", "乙类", B, 10, 5),  # 0.5 -> 1
        BillItem("B3", "乙类", B, 10, 5),  # 0.5 -> 1 (summed before rounding it would be 20 × 5% = 1 in all)
        BillItem("B4", "乙类", B, 30, 5),  # 1.5 -> 2
        BillItem("B5", "乙类", B, 49, 1),  # 0.49 -> 0
    )
    s = split(items, ytd=YearToDate(130_000))
    assert s.class_b_self_fen == 1_852 + 1 + 1 + 2 + 0  # = 1_856
    assert s.in_scope_fen == 12_444 - 1_856  # = 10_588
    assert s.fund_pay_fen == 9_000  # 10_588 × 85% = 8_999.8 -> 9_000


def test_fund_pay_rounds_half_up_once() -> None:
    items = (BillItem("A1", "甲类", A, 9), BillItem("B1", "乙类", B, 10, 5))  # in scope 9 + (10 - 1) = 18
    s = split(items, ytd=YearToDate(130_000), balance=0)
    assert s.fund_pay_fen == 15  # 18 × 85% = 15.3 -> 15
    s = split((BillItem("A1", "甲类", A, 10),), ytd=YearToDate(130_000), balance=0)
    assert (s.fund_pay_fen, s.cash_pay_fen) == (9, 1)  # 10 × 85% = 8.5 -> 9 (half up)


# --- year to date -------------------------------------------------------------------------------------------------


def test_revert_exactly_undoes_apply() -> None:
    before = YearToDate(12_345, 678_900)
    s = split(ytd=before)
    after = apply_to_year(before, s)
    # deductible 130_000 - 12_345 = 117_655; eligible 1_740_000 - 117_655 = 1_622_345;
    # × 85% = 1_378_993.25 -> 1_378_993; fund paid 678_900 + 1_378_993 = 2_057_893
    assert (s.deductible_fen, s.fund_pay_fen) == (117_655, 1_378_993)
    assert after == YearToDate(130_000, 2_057_893)
    assert revert_from_year(after, s) == before


def test_revert_of_a_split_never_applied_fails() -> None:
    with pytest.raises(ValueError):
        revert_from_year(YearToDate(), split())


def test_bad_figures_are_refused() -> None:
    with pytest.raises(ValueError):
        YearToDate(-1, 0)
    with pytest.raises(ValueError):
        SchemeRule(0, {1: 101}, 0)
    with pytest.raises(ValueError):
        SchemeRule(-1, {1: 50}, 0)
    with pytest.raises(ValueError):
        dataclasses.replace(POLICY, unfiled_drop_points=-1)


def test_bad_items_are_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as caught:
        split((BillItem("", "x", A, -5),))
    assert [v.field for v in caught.value.violations] == ["items[0].code", "items[0].amount_fen"]


# --- bill_errors --------------------------------------------------------------------------------------------------


def test_valid_bill_has_no_errors() -> None:
    assert bill_errors(BILL, 2_000_000) == []
    assert bill_errors((BillItem("X", "x", A, MAX_AMOUNT_FEN),), MAX_AMOUNT_FEN) == []
    assert bill_errors((BillItem("X" * 64, "名" * 64, B, 0, 100),), 0) == []


def test_total_must_match_items() -> None:
    assert bill_errors(BILL, 1_999_999) == [("total_fen", "items add up to 2000000 fen, not 1999999")]


def test_negative_and_absurd_amounts() -> None:
    items = (BillItem("X", "x", A, -1), BillItem("Y", "y", A, 10**10 + 1), BillItem("Z", "z", A, True))
    assert bill_errors(items, 0) == [
        ("items[0].amount_fen", "must not be negative"),
        ("items[1].amount_fen", "must not exceed 10000000000 fen"),
        ("items[2].amount_fen", "must be an integer (fen)"),
    ]  # the total is not checked against bad amounts
    assert bill_errors((BillItem("X", "x", A, 1),), -1)[0][0] == "total_fen"
    assert bill_errors((BillItem("X", "x", A, 1),), 10**10 + 1)[0][0] == "total_fen"


def test_self_pay_percent() -> None:
    items = (
        BillItem("A", "a", A, 100, 10),  # set on class A
        BillItem("C", "c", C, 100, 1),  # set on class C
        BillItem("B", "b", B, 100, 101),
        BillItem("B", "b", B, 100, -1),
    )
    assert bill_errors(items, 400) == [
        ("items[0].self_pay_percent", "only class B items have a self-paid share"),
        ("items[1].self_pay_percent", "only class B items have a self-paid share"),
        ("items[2].self_pay_percent", "must be an integer from 0 to 100"),
        ("items[3].self_pay_percent", "must be an integer from 0 to 100"),
    ]


def test_code_and_name() -> None:
    items = (BillItem("", "  ", A, 1), BillItem("X" * 65, "名" * 65, A, 1))
    assert bill_errors(items, 2) == [
        ("items[0].code", "must not be empty"),
        ("items[0].name", "must not be empty"),
        ("items[1].code", "must be at most 64 characters"),
        ("items[1].name", "must be at most 64 characters"),
    ]


def test_catalogue_class_must_be_known() -> None:
    item = BillItem("X", "x", 0, 1)  # type: ignore[arg-type]
    assert bill_errors((item,), 1) == [("items[0].catalogue_class", "must be A (1), B (2) or C (3)")]


def test_item_count_limits() -> None:
    assert bill_errors((), 0) == [("items", "a bill needs at least one item")]
    thousand = [BillItem(f"X{i}", "x", A, 1) for i in range(1000)]
    assert bill_errors(thousand, 1000) == []
    assert bill_errors([*thousand, BillItem("", "", A, -1)], 0) == [("items", "at most 1000 items, got 1001")]


# --- properties ---------------------------------------------------------------------------------------------------


@st.composite
def bill_items(draw: st.DrawFn) -> BillItem:
    klass = draw(st.sampled_from(CatalogueClass))
    percent = draw(st.integers(0, 100)) if klass is B else 0
    return BillItem("X", "x", klass, draw(st.integers(0, 10**8)), percent)


scheme_rules = st.builds(
    SchemeRule,
    st.integers(0, 300_000),
    st.fixed_dictionaries({1: st.integers(0, 100), 2: st.integers(0, 100), 3: st.integers(0, 100)}),
    st.integers(0, 10**8),
)
policies = st.builds(
    RegionPolicy,
    st.just("110000"),
    scheme_rules,
    scheme_rules,
    scheme_rules,
    scheme_rules,
    temporary_drop_points=st.integers(0, 100),
    unfiled_drop_points=st.integers(0, 100),
    account_pays_personal_share=st.booleans(),
)
bills = st.lists(bill_items(), min_size=1, max_size=15).map(tuple)
kinds = st.tuples(st.sampled_from(InsuranceType), st.sampled_from(MedicalType), st.integers(1, 3))


@given(
    bills,
    kinds,
    st.sampled_from(FilingStatus),
    st.integers(0, 400_000),
    st.integers(0, 2 * 10**8),
    st.integers(0, 10**9),
    policies,
)
def test_split_invariants(
    items: tuple[BillItem, ...],
    kind: tuple[InsuranceType, MedicalType, int],
    filing: FilingStatus,
    met: int,
    paid: int,
    balance: int,
    policy: RegionPolicy,
) -> None:
    insurance, medical, level = kind
    ytd = YearToDate(met, paid)
    s = split(
        items, insurance=insurance, medical=medical, level=level, filing=filing, ytd=ytd, balance=balance, policy=policy
    )
    rule = policy.rule(insurance, medical)
    assert s.fund_pay_fen + s.account_pay_fen + s.cash_pay_fen == s.total_fen == sum(i.amount_fen for i in items)
    assert s.class_c_fen + s.class_b_self_fen + s.in_scope_fen == s.total_fen
    assert 0 <= s.fund_pay_fen <= s.in_scope_fen - s.deductible_fen
    assert min(s.account_pay_fen, s.cash_pay_fen, s.over_cap_fen, s.deductible_fen, s.ratio_percent) >= 0
    assert s.account_pay_fen <= balance
    if insurance is RES or not policy.account_pays_personal_share:
        assert s.account_pay_fen == 0
    assert s.ratio_percent <= rule.ratio_by_level[level]
    after = apply_to_year(ytd, s)
    assert after.fund_paid_fen <= max(rule.annual_cap_fen, paid)
    assert after.deductible_met_fen <= max(rule.deductible_fen, met)
    assert revert_from_year(after, s) == ytd


@given(st.lists(st.tuples(bills, kinds), min_size=1, max_size=8), policies)
def test_year_to_date_never_exceeds_cap(
    visits: list[tuple[tuple[BillItem, ...], tuple[InsuranceType, MedicalType, int]]], policy: RegionPolicy
) -> None:
    ytds: dict[tuple[InsuranceType, bool], YearToDate] = {}
    for items, (insurance, medical, level) in visits:
        column = (insurance, medical.inpatient)
        ytd = ytds.get(column, YearToDate())
        s = split(items, insurance=insurance, medical=medical, level=level, ytd=ytd, policy=policy)
        ytds[column] = apply_to_year(ytd, s)
        rule = policy.rule(insurance, medical)
        assert ytds[column].fund_paid_fen <= rule.annual_cap_fen
        assert ytds[column].deductible_met_fen <= rule.deductible_fen
