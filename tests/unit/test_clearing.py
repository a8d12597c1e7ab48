"""Clearing between regions (running pair totals, recount, statement, CSV) and reconciliation differences."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.errors import InvalidArgument
from gateway.domain.settlement.clearing import CSV_COLUMNS, PairTotals, SettledAmounts, add, recount, statement
from gateway.domain.settlement.reconciliation import Difference, ReconLine, ReconTotals, differences, totals

BJ, SH, SZ, CD = "110000", "310000", "440300", "510100"


def settled(insured: str, treating: str, fund: int, account: int, cash: int, sign: int = 1) -> SettledAmounts:
    return SettledAmounts(insured, treating, fund + account + cash, fund, account, cash, sign)


ITEMS = [
    settled(BJ, SH, 1_368_500, 300_000, 331_500),  # the worked inpatient example: total 2_000_000
    settled(BJ, SH, 30_000, 5_000, 15_000),  # total 50_000
    settled(SH, BJ, 60_000, 0, 40_000),  # total 100_000
    settled(CD, SZ, 200_000, 20_000, 80_000),  # total 300_000
    settled(SZ, BJ, 7_000, 1_000, 2_000),  # total 10_000
]

PAIRS = {
    # BJ insured, SH treating: 2 settlements; fund 1_368_500 + 30_000; account 300_000 + 5_000; owed 1_703_500
    (BJ, SH): PairTotals(BJ, SH, 2, 2_050_000, 1_398_500, 305_000, 346_500),
    (SH, BJ): PairTotals(SH, BJ, 1, 100_000, 60_000, 0, 40_000),  # owed 60_000
    (CD, SZ): PairTotals(CD, SZ, 1, 300_000, 200_000, 20_000, 80_000),  # owed 220_000
    (SZ, BJ): PairTotals(SZ, BJ, 1, 10_000, 7_000, 1_000, 2_000),  # owed 8_000
}

NETS = {
    BJ: 60_000 + 8_000 - 1_703_500,  # receives from SH and SZ, pays SH: -1_635_500
    SH: 1_703_500 - 60_000,  # 1_643_500
    SZ: 220_000 - 8_000,  # 212_000
    CD: -220_000,
}


def test_recount_of_a_few_pairs() -> None:
    assert recount(ITEMS) == PAIRS
    assert PAIRS[(BJ, SH)].owed_fen == 1_703_500


def test_statement_nets_sum_to_zero() -> None:
    s = statement("2026-03", PAIRS)
    assert NETS == {BJ: -1_635_500, SH: 1_643_500, SZ: 212_000, CD: -220_000}
    assert dict(s.net_fen) == NETS
    assert sum(s.net_fen.values()) == -1_635_500 + 1_643_500 + 212_000 - 220_000 == 0
    assert list(s.net_fen) == [BJ, SH, SZ, CD]  # region code order
    assert [(p.insured_region, p.treating_region) for p in s.pairs] == [(BJ, SH), (SH, BJ), (SZ, BJ), (CD, SZ)]
    assert s.month == "2026-03"


def test_csv_shape() -> None:
    text = statement("2026-03", PAIRS).csv()
    assert text == (
        "row,month,insured_region,treating_region,count,total_fen,fund_fen,account_fen,cash_fen,owed_fen,region,net_fen\n"
        "pair,2026-03,110000,310000,2,2050000,1398500,305000,346500,1703500,,\n"
        "pair,2026-03,310000,110000,1,100000,60000,0,40000,60000,,\n"
        "pair,2026-03,440300,110000,1,10000,7000,1000,2000,8000,,\n"
        "pair,2026-03,510100,440300,1,300000,200000,20000,80000,220000,,\n"
        "net,2026-03,,,,,,,,,110000,-1635500\n"
        "net,2026-03,,,,,,,,,310000,1643500\n"
        "net,2026-03,,,,,,,,,440300,212000\n"
        "net,2026-03,,,,,,,,,510100,-220000\n"
    )
    assert all(len(line.split(",")) == len(CSV_COLUMNS) for line in text.splitlines())


def test_empty_month() -> None:
    s = statement("2026-01", {})
    assert (s.pairs, dict(s.net_fen)) == ((), {})
    assert s.csv() == ",".join(CSV_COLUMNS) + "\n"


def test_cancellation_reverses_settlement_in_add() -> None:
    one = add({}, ITEMS[1])
    assert one == {(BJ, SH): PairTotals(BJ, SH, 1, 50_000, 30_000, 5_000, 15_000)}
    assert add(one, settled(BJ, SH, 30_000, 5_000, 15_000, sign=-1)) == {}  # back to nothing: the pair is dropped
    two = add(one, ITEMS[0])
    assert add(two, settled(BJ, SH, 1_368_500, 300_000, 331_500, sign=-1)) == one


def test_add_leaves_its_input_alone() -> None:
    before = dict(PAIRS)
    add(PAIRS, ITEMS[0])
    assert before == PAIRS


def test_cancellation_reverses_settlement_in_recount() -> None:
    cancel_first = settled(BJ, SH, 1_368_500, 300_000, 331_500, sign=-1)
    pairs = recount([*ITEMS, cancel_first])
    # (BJ, SH) keeps only the second settlement: count 1, total 50_000, owed 35_000
    assert pairs[(BJ, SH)] == PairTotals(BJ, SH, 1, 50_000, 30_000, 5_000, 15_000)
    s = statement("2026-03", pairs)
    # BJ: 68_000 - 35_000 = 33_000; SH: 35_000 - 60_000 = -25_000
    assert dict(s.net_fen) == {BJ: 33_000, SH: -25_000, SZ: 212_000, CD: -220_000}


def test_cancellation_in_a_later_month_counts_negative() -> None:
    later = recount([settled(BJ, SH, 30_000, 5_000, 15_000, sign=-1)])
    assert later == {(BJ, SH): PairTotals(BJ, SH, -1, -50_000, -30_000, -5_000, -15_000)}
    s = statement("2026-04", later)
    assert dict(s.net_fen) == {BJ: 35_000, SH: -35_000}  # SH gives back what BJ paid for it


def test_statement_drops_all_zero_pairs() -> None:
    pairs = {**PAIRS, (BJ, CD): PairTotals(BJ, CD, 0, 0, 0, 0, 0)}
    assert statement("2026-03", pairs) == statement("2026-03", PAIRS)


@pytest.mark.parametrize("month", ["2026-3", "2026-13", "2026-00", "26-03", "2026-03-01", ""])
def test_statement_month_must_be_yyyy_mm(month: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        statement(month, PAIRS)
    assert [v.field for v in caught.value.violations] == ["month"]


def test_statement_refuses_mismatched_keys() -> None:
    with pytest.raises(ValueError):
        statement("2026-03", {(SH, BJ): PAIRS[(BJ, SH)]})


def test_settled_amounts_are_checked() -> None:
    with pytest.raises(ValueError):
        SettledAmounts(BJ, SH, 100, 50, 0, 50, 0)  # sign 0
    with pytest.raises(ValueError):
        SettledAmounts(BJ, SH, 100, 50, 0, 49, 1)  # does not add up
    with pytest.raises(ValueError):
        SettledAmounts(BJ, SH, 0, 50, 0, -50, 1)  # negative amount


# --- properties ---------------------------------------------------------------------------------------------------

regions = st.sampled_from([BJ, SH, SZ, CD])
amounts = st.builds(
    settled, regions, regions, st.integers(0, 10**8), st.integers(0, 10**7), st.integers(0, 10**8), st.just(1)
)


@given(st.lists(amounts, max_size=30), st.lists(st.integers(0, 29), max_size=10), st.randoms())
def test_recount_equals_incremental_adds(
    settlements: list[SettledAmounts], cancel_at: list[int], rnd: random.Random
) -> None:
    cancels = [
        SettledAmounts(s.insured_region, s.treating_region, s.total_fen, s.fund_fen, s.account_fen, s.cash_fen, -1)
        for s in (settlements[i] for i in sorted(set(cancel_at)) if i < len(settlements))
    ]
    events = settlements + cancels
    running: dict[tuple[str, str], PairTotals] = {}
    for event in events:
        running = add(running, event)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert recount(shuffled) == running
    # an independent model: group and sum, dropping the all-zero pairs
    model: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for e in events:
        sums = model[(e.insured_region, e.treating_region)]
        for i, v in enumerate((1, e.total_fen, e.fund_fen, e.account_fen, e.cash_fen)):
            sums[i] += e.sign * v
    assert running == {k: PairTotals(*k, *v) for k, v in model.items() if any(v)}
    s = statement("2026-03", running)
    assert sum(s.net_fen.values()) == 0
    assert statement("2026-03", recount(shuffled)) == s


@given(st.lists(amounts, max_size=20))
def test_cancelling_everything_leaves_nothing(settlements: list[SettledAmounts]) -> None:
    cancels = [
        SettledAmounts(s.insured_region, s.treating_region, s.total_fen, s.fund_fen, s.account_fen, s.cash_fen, -1)
        for s in settlements
    ]
    assert recount(settlements + cancels[::-1]) == {}


# --- reconciliation -----------------------------------------------------------------------------------------------

GATEWAY = [
    ReconLine("S0001", 2_000_000, 1_368_500, 300_000, 331_500),
    ReconLine("S0002", 50_000, 30_000, 5_000, 15_000),
    ReconLine("S0003", 100_000, 60_000, 0, 40_000),
    ReconLine("S0004", 10_000, 7_000, 1_000, 2_000),
]
HOSPITAL = [
    ReconLine("S0005", 300_000, 200_000, 20_000, 80_000),  # not at the gateway
    ReconLine("S0001", 2_000_000, 1_368_500, 300_000, 331_500),  # agrees
    ReconLine("S0003", 100_000, 60_000, 10_000, 30_000),  # account and cash differ
    ReconLine("S0002", 50_000, 30_000, 5_000, 15_000),  # agrees
    # S0004 missing at the hospital
]


def test_totals() -> None:
    assert totals(GATEWAY) == ReconTotals(
        count=4,
        total_fen=2_000_000 + 50_000 + 100_000 + 10_000,  # 2_160_000
        fund_fen=1_368_500 + 30_000 + 60_000 + 7_000,  # 1_465_500
        account_fen=300_000 + 5_000 + 0 + 1_000,  # 306_000
        cash_fen=331_500 + 15_000 + 40_000 + 2_000,  # 388_500
    )
    assert totals(GATEWAY) == ReconTotals(4, 2_160_000, 1_465_500, 306_000, 388_500)
    assert totals([]) == ReconTotals(0, 0, 0, 0, 0)
    assert totals(GATEWAY) != totals(HOSPITAL)


def test_differences_of_each_kind() -> None:
    assert differences(GATEWAY, HOSPITAL) == [
        Difference("S0003", "AMOUNT_DIFFERS", GATEWAY[2], HOSPITAL[2]),
        Difference("S0004", "MISSING_AT_HOSPITAL", GATEWAY[3], None),
        Difference("S0005", "MISSING_AT_GATEWAY", None, HOSPITAL[0]),
    ]


def test_no_differences_when_lines_agree() -> None:
    assert differences(GATEWAY, reversed(GATEWAY)) == []
    assert differences([], []) == []


def test_each_amount_counts() -> None:
    base = ReconLine("S1", 100, 50, 20, 30)
    for changed in (
        ReconLine("S1", 101, 50, 20, 30),
        ReconLine("S1", 100, 51, 20, 30),
        ReconLine("S1", 100, 50, 21, 30),
        ReconLine("S1", 100, 50, 20, 31),
    ):
        assert [d.kind for d in differences([base], [changed])] == ["AMOUNT_DIFFERS"]


def test_duplicate_hospital_line_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        differences(GATEWAY, [*HOSPITAL, HOSPITAL[1]])
    assert caught.value.reason == "DUPLICATE_SETTLEMENT_ID"
    assert [v.field for v in caught.value.violations] == ["lines[4].settlement_id"]


def test_duplicate_gateway_line_is_a_fault() -> None:
    with pytest.raises(ValueError):
        differences([*GATEWAY, GATEWAY[0]], HOSPITAL)
