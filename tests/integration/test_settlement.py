"""Non-local medical settlement (Art. 23) through the real gateway, Redis and simulated agencies."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any, TypedDict

import grpc
import pytest
import redis

from bench.month import settlement as month_settlement
from gateway._gen.sigw.v1 import common_pb2, settlement_pb2, settlement_pb2_grpc
from gateway.api import settlements as settlements_api
from gateway.domain.calendar import SHANGHAI
from gateway.domain.participants import AgencyType
from gateway.store import keys
from gateway.store.settlements import FilingStore, SettlementStore
from tests.conftest import Demo, as_
from tests.helpers import OPERATOR, error_details, person_id, retry_delay
from tests.integration.test_transfer_rules import expect_error, keys_in

P = settlement_pb2
HOSPITAL = "H44030000001"  # a level-3 hospital in Shenzhen, the place of treatment
ME = as_(f"hospital:440300:{HOSPITAL}")
OTHER = as_("hospital:440300:H44030000002")
BJ_CARE = as_("agency:110000:healthcare")
_seq = itertools.count(1)


class ReconPeriod(TypedDict):
    """The period fields of a ``ReconcileRequest``."""

    start_date: common_pb2.Date
    end_date: common_pb2.Date


def msgid(hospital: str = HOSPITAL, when: str = "20260302083000") -> str:
    return f"{hospital}{when}{next(_seq):04d}"


def bill(
    *,
    insured: str = "110000",
    visit: str | None = None,
    person: str | None = None,
    emergency: bool = False,
    items: list[tuple[int, int, int]] | None = None,
    medical: str = "21",
    **overrides: Any,
) -> P.Bill:
    """A bill of (class, amount in fen, self-paid percent) items; by default 20,000.00 yuan:
    class A 12,000.00, class B 6,000.00 with 10% self-paid, class C 2,000.00."""
    if visit is None:  # one default stay per hospital
        hospital = overrides.get("hospital_code", HOSPITAL)
        visit = "V1" if hospital == HOSPITAL else f"V1-{hospital}"
    lines = items or [(1, 1_200_000, 0), (2, 600_000, 10), (3, 200_000, 0)]
    message = P.Bill(
        msgid=msgid(),
        hospital_code=HOSPITAL,
        hospital_level=3,
        treatment_region="440300",
        insured_region=insured,
        visit_id=visit,
        person=common_pb2.Person(id_number=person or person_id(), name="赵六"),
        credential_type=P.CREDENTIAL_TYPE_E_VOUCHER,
        insurance_type="310",
        medical_type=medical,
        admission_date=common_pb2.Date(year=2026, month=2, day=20),
        discharge_date=common_pb2.Date(year=2026, month=3, day=1),
        emergency=emergency,
        items=[
            P.BillItem(
                code=f"X{i:03d}",
                name=f"item {i}",
                catalogue_class=P.CatalogueClass.ValueType(c),
                amount_fen=a,
                self_pay_percent=s,
            )
            for i, (c, a, s) in enumerate(lines)
        ],
        total_fen=sum(a for _, a, _ in lines),
    )
    for name, value in overrides.items():
        setattr(message, name, value)
    return message


def stub(demo: Demo) -> settlement_pb2_grpc.SettlementServiceAsyncStub:
    return settlement_pb2_grpc.SettlementServiceStub(demo.channel)


async def file(
    demo: Demo,
    filing_type: int = P.FILING_TYPE_LONG_TERM_RESIDENT,
    *,
    treatment: str = "440300",
    valid_from: tuple[int, int, int] = (2026, 1, 1),
    until: tuple[int, int, int] | None = None,
    request_id: str = "f-1",
) -> P.Filing:
    request = P.CreateFilingRequest(
        request_id=request_id,
        type=P.FilingType.ValueType(filing_type),
        person=common_pb2.Person(id_number=person_id(), name="赵六"),
        insured_region="110000",
        treatment_region=treatment,
        valid_from=common_pb2.Date(year=valid_from[0], month=valid_from[1], day=valid_from[2]),
    )
    if until:
        request.valid_until.CopyFrom(common_pb2.Date(year=until[0], month=until[1], day=until[2]))
    return (await stub(demo).CreateFiling(request, metadata=BJ_CARE)).filing


# The worked example (README): Beijing employee policy, level-3 hospital: ratio 85%, deductible 1,300.00.
# In scope = 12,000 + 6,000 × 90% = 17,400.00; less deductible 1,300 = 16,100.00; × 85% = 13,685.00 fund.
# Person: 20,000 - 13,685 = 6,315.00; the account pays its 3,000.00, cash 3,315.00.
WORKED = {"fund": 1_368_500, "account": 300_000, "cash": 331_500}


async def test_a_filed_long_term_resident_is_settled_by_the_insured_regions_policy(demo: Demo) -> None:
    await file(demo)
    pre = (await stub(demo).PreSettle(P.PreSettleRequest(bill=bill()), metadata=ME)).split
    again = (await stub(demo).PreSettle(P.PreSettleRequest(bill=bill()), metadata=ME)).split
    assert pre == again  # pre-settlement commits nothing
    settled = (await stub(demo).Settle(P.SettleRequest(bill=bill()), metadata=ME)).settlement
    s = settled.split
    assert (s.fund_pay_fen, s.account_pay_fen, s.cash_pay_fen) == tuple(WORKED.values())
    assert s.fund_pay_fen + s.account_pay_fen + s.cash_pay_fen == s.total_fen == 2_000_000
    assert (s.class_c_fen, s.class_b_self_fen, s.in_scope_fen, s.deductible_fen, s.ratio_percent) == (
        200_000,
        60_000,
        1_740_000,
        130_000,
        85,
    )
    assert s.filing_status == P.FILING_STATUS_FILED_LONG_TERM and "full ratio 85%" in s.note
    assert settled.state == P.SETTLEMENT_STATE_SETTLED and settled.clearing_month == "2026-03"
    assert settled.id_number_masked.count("*") == 10
    # The year's deductible is now met and the account is empty: a second stay pays no deductible.
    second = (await stub(demo).Settle(P.SettleRequest(bill=bill(visit="V2")), metadata=ME)).settlement.split
    assert second.deductible_fen == 0 and second.account_pay_fen == 0
    assert second.fund_pay_fen == 1_740_000 * 85 // 100


async def test_a_retry_with_the_same_msgid_settles_once(demo: Demo) -> None:
    await file(demo)
    request = P.SettleRequest(bill=bill())
    one = (await stub(demo).Settle(request, metadata=ME)).settlement
    two = (await stub(demo).Settle(request, metadata=ME)).settlement
    assert one.settlement_id == two.settlement_id and one.split == two.split
    ledger = demo.agency("110000", AgencyType.HEALTHCARE_SECURITY).ledger
    assert len(ledger.settled) == 1
    changed = P.SettleRequest(bill=bill(msgid=request.bill.msgid, total_fen=2_000_000, items=[(1, 2_000_000, 0)]))
    reason, _, _ = await expect_error(stub(demo).Settle(changed, metadata=ME), grpc.StatusCode.ALREADY_EXISTS)
    assert reason == "MSGID_REUSED"


async def test_unfiled_care_is_settled_at_the_lower_ratio_or_refused_per_policy(demo: Demo) -> None:
    unfiled = (await stub(demo).Settle(P.SettleRequest(bill=bill()), metadata=ME)).settlement.split
    assert unfiled.filing_status == P.FILING_STATUS_UNFILED and unfiled.ratio_percent == 75
    assert "unfiled: ratio 85% lowered by 10 points to 75%" in unfiled.note
    # Shenzhen refuses unfiled care; here a Shenzhen-insured person is treated in Chengdu.
    chengdu = as_("hospital:510100:H51010000001")
    refused = bill(
        insured="440300", treatment_region="510100", hospital_code="H51010000001", msgid=msgid("H51010000001")
    )
    reason, metadata, _ = await expect_error(
        stub(demo).Settle(P.SettleRequest(bill=refused), metadata=chengdu), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert reason == "NOT_FILED" and metadata["insured_region"] == "440300"
    # Emergency care counts as filed: full ratio, even there.
    emergency = bill(
        insured="440300",
        treatment_region="510100",
        hospital_code="H51010000001",
        msgid=msgid("H51010000001"),
        emergency=True,
    )
    split = (await stub(demo).Settle(P.SettleRequest(bill=emergency), metadata=chengdu)).settlement.split
    assert split.filing_status == P.FILING_STATUS_EMERGENCY and split.ratio_percent == 90


async def test_a_filing_made_before_discharge_applies_to_the_stay(demo: Demo) -> None:
    # Admitted 2026-02-20, filed (temporary referral) from 2026-02-25, discharged 2026-03-01.
    await file(demo, P.FILING_TYPE_REFERRAL, valid_from=(2026, 2, 25), until=(2026, 8, 31))
    split = (await stub(demo).Settle(P.SettleRequest(bill=bill()), metadata=ME)).settlement.split
    assert split.filing_status == P.FILING_STATUS_FILED_REFERRAL
    # A filing for another place does not count.
    other = (await stub(demo).PreSettle(P.PreSettleRequest(bill=bill(visit="V9", insured="310000")), metadata=ME)).split
    assert other.filing_status == P.FILING_STATUS_UNFILED


async def test_filings_are_listed_and_cancelled_by_the_insured_region_only(demo: Demo) -> None:
    filing = await file(demo)
    listed = await stub(demo).ListFilings(P.ListFilingsRequest(insured_region="110000"), metadata=BJ_CARE)
    assert [f.filing_id for f in listed.filings] == [filing.filing_id]
    assert person_id() not in str(listed)
    mine = await stub(demo).ListFilings(
        P.ListFilingsRequest(insured_region="110000", id_number=person_id()), metadata=BJ_CARE
    )
    assert len(mine.filings) == 1
    await expect_error(
        stub(demo).ListFilings(P.ListFilingsRequest(insured_region="110000"), metadata=as_("agency:310000:healthcare")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await expect_error(
        stub(demo).CancelFiling(
            P.CancelFilingRequest(request_id="c", filing_id=filing.filing_id, reason="moved back"),
            metadata=as_("agency:310000:healthcare"),
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    done = await stub(demo).CancelFiling(
        P.CancelFilingRequest(request_id="c", filing_id=filing.filing_id, reason="moved back"), metadata=BJ_CARE
    )
    assert done.filing.state == P.FILING_STATE_CANCELLED
    split = (await stub(demo).PreSettle(P.PreSettleRequest(bill=bill()), metadata=ME)).split
    assert split.filing_status == P.FILING_STATUS_UNFILED


async def test_cancellation_and_reversal_restore_the_year_and_are_idempotent(demo: Demo) -> None:
    await file(demo)
    first = (await stub(demo).Settle(P.SettleRequest(bill=bill()), metadata=ME)).settlement
    cancel = P.CancelSettlementRequest(msgid=msgid(), settlement_id=first.settlement_id, reason="patient refund")
    theirs = P.CancelSettlementRequest(msgid=msgid("H44030000002"), settlement_id=first.settlement_id)
    await expect_error(stub(demo).CancelSettlement(theirs, metadata=OTHER), grpc.StatusCode.NOT_FOUND)
    done = (await stub(demo).CancelSettlement(cancel, metadata=ME)).settlement
    again = (await stub(demo).CancelSettlement(cancel, metadata=ME)).settlement
    assert done.state == again.state == P.SETTLEMENT_STATE_CANCELLED and done.cancel_msgid == cancel.msgid
    # The deductible and the account came back: the same bill splits as the first time.
    redo = (await stub(demo).Settle(P.SettleRequest(bill=bill(visit="V3")), metadata=ME)).settlement
    assert redo.split.deductible_fen == 130_000 and redo.split.account_pay_fen == 300_000
    # Reversal by the original msgid.
    reversed_ = (
        await stub(demo).ReverseMessage(
            P.ReverseMessageRequest(msgid=msgid(), original_msgid=redo.msgid, original_transaction="2304"), metadata=ME
        )
    ).settlement
    assert reversed_.settlement_id == redo.settlement_id and reversed_.state == P.SETTLEMENT_STATE_CANCELLED
    reason, _, _ = await expect_error(
        stub(demo).ReverseMessage(P.ReverseMessageRequest(msgid=msgid(), original_msgid=msgid()), metadata=ME),
        grpc.StatusCode.NOT_FOUND,
    )
    assert reason == "ORIGINAL_MESSAGE_NOT_FOUND"
    ledger = demo.agency("110000", AgencyType.HEALTHCARE_SECURITY).ledger
    assert not ledger.settled and len(ledger.refunded) == 2


async def test_an_unreachable_insured_region_gives_unavailable_and_records_nothing(
    demo: Demo, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    agency = demo.agency("110000", AgencyType.HEALTHCARE_SECURITY)
    agency.available = False
    request = P.SettleRequest(bill=bill())
    before = keys_in(redis_url)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub(demo).Settle(request, metadata=ME, timeout=3)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    reason, _, _ = error_details(caught.value)
    details = caught.value.details()
    assert details is not None  # the gateway sets details on every refusal
    assert reason == "AGENCY_UNAVAILABLE" and "retry" in details
    assert retry_delay(caught.value) == 1.0
    assert keys_in(redis_url) == before  # nothing at all, not even a claim on the stay (issue 13 point 2)
    # A slow agency: the answer still comes within the hospital's own deadline, as UNAVAILABLE (past it the
    # hospital's client would have ended the call with DEADLINE_EXCEEDED). The margin kept to answer is widened
    # so that a busy machine's pause cannot eat it.
    monkeypatch.setattr(settlements_api, "COMMIT_MARGIN_S", 1.0)
    agency.available, agency.answer_delay_s = True, 10.0
    with pytest.raises(grpc.aio.AioRpcError) as slow:
        await stub(demo).Settle(request, metadata=ME, timeout=3)
    assert slow.value.code() == grpc.StatusCode.UNAVAILABLE and retry_delay(slow.value) is not None
    agency.answer_delay_s = 0.0
    one = (await stub(demo).Settle(request, metadata=ME)).settlement
    two = (await stub(demo).Settle(request, metadata=ME)).settlement
    assert one.settlement_id == two.settlement_id and len(agency.ledger.settled) == 1


@pytest.mark.parametrize(
    "change, field",
    [
        ({"items": [(1, -5, 0)], "total_fen": -5}, "bill.items[0].amount_fen"),
        ({"total_fen": 1}, "bill.total_fen"),
        ({"items": [(7, 100, 0)], "total_fen": 100}, "bill.items[0].catalogue_class"),
        ({"insured_region": "99"}, "bill.insured_region"),
        ({"msgid": "H4403000000120260302083000"}, "bill.msgid"),
        ({"medical_type": "99"}, "bill.medical_type"),
    ],
)
async def test_bad_bills_are_refused_with_nothing_written(
    demo: Demo, redis_url: str, change: dict[str, Any], field: str
) -> None:
    before = keys_in(redis_url)
    _, _, violations = await expect_error(
        stub(demo).Settle(P.SettleRequest(bill=bill(**change)), metadata=ME), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert field in [f for f, _ in violations]
    assert keys_in(redis_url) == before


async def test_unknown_region_the_same_visit_number_at_two_hospitals_and_the_wrong_place(demo: Demo) -> None:
    reason, _, _ = await expect_error(
        stub(demo).Settle(P.SettleRequest(bill=bill(insured="620000")), metadata=ME), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert reason == "UNKNOWN_REGION"
    # A visit number is the hospital's own: another hospital's stay of the same number is another stay, and
    # neither settlement touches the other.
    mine = (await stub(demo).Settle(P.SettleRequest(bill=bill(visit="SHARED")), metadata=ME)).settlement
    theirs = bill(visit="SHARED", hospital_code="H44030000002", msgid=msgid("H44030000002"))
    other = (await stub(demo).Settle(P.SettleRequest(bill=theirs), metadata=OTHER)).settlement
    assert other.settlement_id != mine.settlement_id and other.hospital_code == "H44030000002"
    again = await stub(demo).GetSettlement(P.GetSettlementRequest(settlement_id=mine.settlement_id), metadata=ME)
    assert again.settlement == mine
    # A hospital settles only as itself and only in its own region.
    reason, _, _ = await expect_error(
        stub(demo).Settle(P.SettleRequest(bill=bill()), metadata=OTHER), grpc.StatusCode.PERMISSION_DENIED
    )
    assert reason == "NOT_THIS_HOSPITAL"
    reason, _, _ = await expect_error(
        stub(demo).Settle(P.SettleRequest(bill=bill(treatment_region="510100")), metadata=ME),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert reason == "NOT_PLACE_OF_TREATMENT"
    # A hospital's code is bound to its region: Shenzhen's code under Chengdu is nobody (issue 13 point 3).
    elsewhere = as_(f"hospital:510100:{HOSPITAL}")
    reason, _, _ = await expect_error(
        stub(demo).Settle(P.SettleRequest(bill=bill()), metadata=elsewhere), grpc.StatusCode.UNAUTHENTICATED
    )
    assert reason == "HOSPITAL_NOT_REGISTERED"


async def test_reconciliation_matches_or_lists_the_differences(demo: Demo) -> None:
    a = (await stub(demo).Settle(P.SettleRequest(bill=bill(visit="R1")), metadata=ME)).settlement
    b = (await stub(demo).Settle(P.SettleRequest(bill=bill(visit="R2")), metadata=ME)).settlement

    def line(s: P.Settlement) -> P.ReconLine:
        return P.ReconLine(
            settlement_id=s.settlement_id,
            total_fen=s.split.total_fen,
            fund_pay_fen=s.split.fund_pay_fen,
            account_pay_fen=s.split.account_pay_fen,
            cash_pay_fen=s.split.cash_pay_fen,
        )

    totals = P.ReconTotals(
        count=2,
        total_fen=4_000_000,
        fund_pay_fen=a.split.fund_pay_fen + b.split.fund_pay_fen,
        account_pay_fen=a.split.account_pay_fen + b.split.account_pay_fen,
        cash_pay_fen=a.split.cash_pay_fen + b.split.cash_pay_fen,
    )
    period: ReconPeriod = {
        "start_date": common_pb2.Date(year=2026, month=3, day=1),
        "end_date": common_pb2.Date(year=2026, month=3, day=31),
    }
    ok = await stub(demo).Reconcile(
        P.ReconcileRequest(hospital_code=HOSPITAL, totals=totals, lines=[line(a), line(b)], **period), metadata=ME
    )
    assert ok.matched and ok.gateway_totals == totals and not ok.differences
    wrong_b = line(b)
    wrong_b.cash_pay_fen += 1
    ghost = P.ReconLine(settlement_id="S00-0000000000000000", total_fen=1, cash_pay_fen=1)
    off = await stub(demo).Reconcile(
        P.ReconcileRequest(hospital_code=HOSPITAL, totals=totals, lines=[wrong_b, ghost], **period), metadata=ME
    )
    assert not off.matched
    kinds = {d.settlement_id: d.kind for d in off.differences}
    assert kinds == {
        a.settlement_id: P.DIFFERENCE_KIND_MISSING_AT_HOSPITAL,
        b.settlement_id: P.DIFFERENCE_KIND_AMOUNT_DIFFERS,
        ghost.settlement_id: P.DIFFERENCE_KIND_MISSING_AT_GATEWAY,
    }
    await expect_error(
        stub(demo).Reconcile(P.ReconcileRequest(hospital_code=HOSPITAL, totals=totals, **period), metadata=OTHER),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_closing_a_month_freezes_it_and_its_statement_nets_to_zero(demo: Demo) -> None:
    await stub(demo).Settle(P.SettleRequest(bill=bill(visit="C1")), metadata=ME)  # BJ owes SZ
    await stub(demo).Settle(P.SettleRequest(bill=bill(visit="C2", insured="310000")), metadata=ME)  # SH owes SZ
    chengdu = as_("hospital:510100:H51010000001")
    cd = bill(
        visit="C3",
        insured="110000",
        treatment_region="510100",
        hospital_code="H51010000001",
        msgid=msgid("H51010000001"),
    )
    cd_settled = (await stub(demo).Settle(P.SettleRequest(bill=cd), metadata=chengdu)).settlement  # BJ owes CD
    cancelled = (await stub(demo).Settle(P.SettleRequest(bill=bill(visit="C4")), metadata=ME)).settlement
    await stub(demo).CancelSettlement(
        P.CancelSettlementRequest(msgid=msgid(), settlement_id=cancelled.settlement_id), metadata=ME
    )
    await expect_error(
        stub(demo).CloseMonth(P.CloseMonthRequest(request_id="m", month="2026-03"), metadata=ME),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    statement = (
        await stub(demo).CloseMonth(P.CloseMonthRequest(request_id="m", month="2026-03"), metadata=OPERATOR)
    ).statement
    assert statement.closed and statement.recount == P.RECOUNT_OUTCOME_UNSPECIFIED  # from the running totals
    await expect_error(
        stub(demo).RecountMonth(P.RecountMonthRequest(month="2026-03"), metadata=ME), grpc.StatusCode.PERMISSION_DENIED
    )
    recount = await stub(demo).RecountMonth(P.RecountMonthRequest(month="2026-03"), metadata=OPERATOR)
    assert recount.statement.recount == P.RECOUNT_OUTCOME_MATCHES and not recount.recounted_pairs
    assert recount.settlements_counted == 3  # the cancelled one is not counted
    assert recount.statement.pairs == statement.pairs
    pairs = {(p.insured_region, p.treating_region): p for p in statement.pairs}
    assert set(pairs) == {("110000", "440300"), ("310000", "440300"), ("110000", "510100")}
    assert pairs[("110000", "440300")].count == 1  # the cancelled one is out
    assert pairs[("110000", "510100")].owed_fen == cd_settled.split.fund_pay_fen + cd_settled.split.account_pay_fen
    net = {p.region: p.net_fen for p in statement.positions}
    assert sum(net.values()) == 0 and net["440300"] > 0 and net["110000"] < 0 and net["310000"] < 0
    # Late messages for a closed month are refused.
    reason, metadata, _ = await expect_error(
        stub(demo).Settle(P.SettleRequest(bill=bill(visit="C5")), metadata=ME), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert (reason, metadata["month"]) == ("MONTH_CLOSED", "2026-03")
    reason, _, _ = await expect_error(
        stub(demo).CancelSettlement(
            P.CancelSettlementRequest(msgid=msgid("H51010000001"), settlement_id=cd_settled.settlement_id),
            metadata=chengdu,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert reason == "MONTH_CLOSED"
    read = (
        await stub(demo).GetClearingStatement(P.GetClearingStatementRequest(month="2026-03"), metadata=BJ_CARE)
    ).statement
    assert read == statement


async def test_a_recount_names_the_pair_whose_running_totals_were_altered(demo: Demo, redis_url: str) -> None:
    """The recount adds up the stored settlements themselves, so running totals changed behind the gateway's back
    are found, pair by pair."""
    settled = (await stub(demo).Settle(P.SettleRequest(bill=bill(visit="R1")), metadata=ME)).settlement
    client = redis.Redis.from_url(redis_url)
    try:
        shard = int(settled.settlement_id[1:3])
        client.hincrby(keys.clearing(shard, "2026-03"), "110000|440300|fund", 100)  # 1.00 yuan more owed
    finally:
        client.close()
    recount = await stub(demo).RecountMonth(P.RecountMonthRequest(month="2026-03"), metadata=OPERATOR)
    assert recount.statement.recount == P.RECOUNT_OUTCOME_DIFFERS
    assert recount.settlements_counted == 1
    [pair] = recount.recounted_pairs
    assert (pair.insured_region, pair.treating_region, pair.count) == ("110000", "440300", 1)
    assert pair.fund_pay_fen == settled.split.fund_pay_fen  # the recount's own figure
    [running] = recount.statement.pairs
    assert running.fund_pay_fen == settled.split.fund_pay_fen + 100


async def test_imported_settlements_are_read_and_recounted_like_settled_ones(demo: Demo) -> None:
    store = SettlementStore(
        demo.gateway.redis,
        demo.gateway.store.shards,
        demo.gateway.store.cipher,
        FilingStore(demo.gateway.redis, demo.gateway.store.shards, demo.gateway.store.cipher),
    )
    february = datetime(2026, 2, 1, tzinfo=SHANGHAI)
    records = [(month_settlement(i, february, demo.gateway.store.shards), f"fp-{i}") for i in range(5)]
    await store.import_settled(records)
    await store.import_settled(records[:2])  # already there: left as they are
    first = records[0][0]
    read = (
        await stub(demo).GetSettlement(P.GetSettlementRequest(settlement_id=first.settlement_id), metadata=OPERATOR)
    ).settlement
    assert read.split.total_fen == first.figures.total_fen and read.hospital_code == first.hospital_code
    recount = await stub(demo).RecountMonth(P.RecountMonthRequest(month="2026-02"), metadata=OPERATOR)
    assert recount.settlements_counted == 5 and recount.statement.recount == P.RECOUNT_OUTCOME_MATCHES
    assert sum(p.count for p in recount.statement.pairs) == 5


async def test_reversing_another_hospitals_message_tells_nothing(demo: Demo, redis_url: str) -> None:
    """Issue 13 point 9: another hospital asking to reverse a msgid that exists gets exactly the answer it gets
    for one that does not, and the settlement's id is in neither; nothing is written."""
    mine = (await stub(demo).Settle(P.SettleRequest(bill=bill()), metadata=ME)).settlement
    never = msgid()  # of the same hospital and shape, never used

    async def ask(original: str) -> tuple[str, str, dict[str, str]]:
        request = P.ReverseMessageRequest(msgid=msgid("H44030000002"), original_msgid=original)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub(demo).ReverseMessage(request, metadata=OTHER)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        reason, metadata, _ = error_details(caught.value)
        return (
            reason,
            (caught.value.details() or "").replace(original, "<msgid>"),
            {k: v.replace(original, "<msgid>") for k, v in metadata.items()},
        )

    before = keys_in(redis_url)
    existing, missing = await ask(mine.msgid), await ask(never)
    assert existing == missing and existing[0] == "ORIGINAL_MESSAGE_NOT_FOUND"
    assert mine.settlement_id not in str(existing)
    assert keys_in(redis_url) == before
    still = await stub(demo).GetSettlement(P.GetSettlementRequest(settlement_id=mine.settlement_id), metadata=ME)
    assert still.settlement.state == P.SETTLEMENT_STATE_SETTLED


async def test_a_settlement_sigw_cannot_record_is_taken_back_at_the_insured_region(demo: Demo) -> None:
    """The insured region commits before sigw does. When sigw then records nothing (the split does not add up,
    or the month was closed meanwhile), it takes the region's settlement back (RefundSettlement under
    void:<settlement id>), so both sides hold the same; the hospital's retry then settles it anew."""
    await file(demo)
    agency = demo.agency("110000", AgencyType.HEALTHCARE_SECURITY)

    async def off_by_one_fen(answer: P.SettlementSplit) -> None:
        answer.cash_pay_fen += 1  # recorded as computed, answered as it does not add up

    agency.after_commit = off_by_one_fen
    request = P.SettleRequest(bill=bill(visit="T1"))
    reason, _, _ = await expect_error(stub(demo).Settle(request, metadata=ME), grpc.StatusCode.UNAVAILABLE)
    assert reason == "AGENCY_ANSWER_INCONSISTENT"
    assert not agency.ledger.settled and not agency.ledger.answers  # taken back, its msgid free again
    assert any(m.startswith("void:") for m in agency.ledger.refunded)
    agency.after_commit = None
    settled = (await stub(demo).Settle(request, metadata=ME)).settlement  # the hospital's retry
    assert settled.split.fund_pay_fen == WORKED["fund"]  # the year as if the first attempt never happened
    assert list(agency.ledger.settled) == [settled.settlement_id]

    async def close_the_month(_: P.SettlementSplit) -> None:
        await stub(demo).CloseMonth(P.CloseMonthRequest(request_id="m", month="2026-03"), metadata=OPERATOR)

    agency.after_commit = close_the_month
    late = P.SettleRequest(bill=bill(visit="T2"))
    reason, _, _ = await expect_error(stub(demo).Settle(late, metadata=ME), grpc.StatusCode.FAILED_PRECONDITION)
    assert reason == "MONTH_CLOSED"
    assert list(agency.ledger.settled) == [settled.settlement_id]  # the late one was taken back
