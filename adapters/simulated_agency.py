"""Simulated region agencies: real gRPC servers implementing ``RegionAgencyService``.

Each simulated agency dedups deliveries by message id, then acts as a real agency would, by calling the
gateway's ``TransferService`` back after ``act_delay_s``:

* TRANSFER_REQUESTED (it is the target): sends the contact letter, or opens the temporary account when the
  transfer keeps the relationship at the source (66号 Art. 5);
* CONTACT_LETTER (it is the source): looks up the person's contribution record and sends the information
  table with the funds, computed by ``gateway.domain.transfer.pension``; or rejects when it has no record;
* TRANSFER_INFO (it is the target): completes the transfer.

With TLS, an agency answers only the gateway: every call must come with the gateway's certificate (its
``sigw:gateway`` URI, ``pki.peer_is_gateway``); a hospital's, a portal's or another agency's certificate, though
issued by the same CA, gets ``PERMISSION_DENIED`` (``GatewayOnly``). A real agency should check the same.

Contribution records are made up deterministically from the ID number, with each year's credit and interest.
A person whose ID number has the sequence ``000`` (digits 15-17) has no record anywhere, so the source agency
rejects the transfer. ``ReportContributionPeriods`` answers from ``DEMO_HISTORIES``, picked by the ID number's
16th digit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from functools import partial
from typing import Any, TypeAlias

import grpc
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_random_exponential

from adapters.demo_policies import DEMO_ACCOUNT_BALANCE_FEN, policy_for
from adapters.gateway_only import GatewayOnly
from gateway._gen.sigw.v1 import (
    agency_pb2,
    agency_pb2_grpc,
    common_pb2,
    settlement_pb2,
    transfer_pb2,
    transfer_pb2_grpc,
)
from gateway.domain import idnumber
from gateway.domain.errors import SigwError
from gateway.domain.participants import AgencyKey, AgencyType, participant_of
from gateway.domain.settlement.records import CredentialType
from gateway.domain.settlement.split import (
    BillItem,
    CatalogueClass,
    FilingStatus,
    InsuranceType,
    MedicalType,
    Split,
    YearToDate,
    apply_to_year,
    revert_from_year,
    split_bill,
)
from gateway.domain.transfer.kinds import EMPLOYEE_FUND_KINDS, PENSION_KINDS
from gateway.domain.transfer.model import Kind, NoticeType
from gateway.domain.transfer.pension import ContributionYear, compute_funds, pooled_fund
from gateway.security import pki
from gateway.security.tls import TlsFolder
from gateway.wire import transfers as convert
from gateway.wire.reflection import enable_reflection
from gateway.wire.settlements import figures_of, split_to
from gateway.wire.status import to_status

__all__ = [
    "DEMO_HISTORIES",
    "DEMO_INTEREST_PERCENT",
    "NO_RECORD_SEQUENCE",
    "PARTICIPANT_METADATA",
    "AgencyStats",
    "Column",
    "Context",
    "SettlementLedger",
    "SimulatedAgencies",
    "SimulatedAgency",
    "contribution_record",
    "credited_years",
    "demo_history",
    "demo_periods",
    "split_message",
    "transfer_info_for",
]

log = logging.getLogger("sigw.sim")

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}
Refusal: TypeAlias = tuple[grpc.StatusCode, str]
_INVALID = grpc.StatusCode.INVALID_ARGUMENT
_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION

NO_RECORD_SEQUENCE = "000"
PARTICIPANT_METADATA = pki.PARTICIPANT_METADATA_KEY


# Interest credited to individual accounts (记账利率), percent a year. 2016-2024 are the rates the ministry
# announced for those years; the others are illustrative round figures. Demo data.
DEMO_INTEREST_PERCENT: dict[int, Fraction] = {
    2016: Fraction("8.31"),
    2017: Fraction("7.12"),
    2018: Fraction("8.29"),
    2019: Fraction("7.61"),
    2020: Fraction("6.04"),
    2021: Fraction("6.69"),
    2022: Fraction("6.12"),
    2023: Fraction("3.97"),
    2024: Fraction("2.62"),
}
_EARLY_INTEREST = Fraction("2.5")


def _round(value: Fraction) -> int:
    return (value.numerator * 2 + value.denominator) // (value.denominator * 2)


def credited_years(years: list[tuple[int, int, int, int]]) -> tuple[list[ContributionYear], int]:
    """Information-table records for ``(year, first month, last month, monthly base)`` rows, with each year's
    credit at the cap (11% to 2005, 8% from 2006) and its interest, and the balance they make.

    Years before 1998 are given by months and base alone; their credits (11%) make the accumulated balance the
    table does not itemise. A year's interest follows the usual account formula: the balance at the start of
    the year × the year's rate, plus the year's credits × rate × 1.083 / 2 (credited month by month).
    """
    records: list[ContributionYear] = []
    balance = 0
    for year, first, last, base in years:
        months = last - first + 1
        if year < 1998:
            balance += _round(Fraction(base * months * 11, 100))
            records.append(ContributionYear(year, first, last, base))
            continue
        credit = _round(Fraction(base * months * (11 if year <= 2005 else 8), 100))
        rate = DEMO_INTEREST_PERCENT.get(year, _EARLY_INTEREST) / 100
        interest = _round(balance * rate + credit * rate * Fraction("1.083") / 2)
        balance += credit + interest
        records.append(ContributionYear(year, first, last, base, credit, interest))
    return records, balance


def contribution_record(id_number: str, last_year: int = 2025) -> tuple[list[ContributionYear], int]:
    """A made-up but plausible record for a person: the information table's records and the individual
    account's balance with interest (fen).

    Bases start between 2,000 and 5,000 yuan a month and grow 6% a year; the first year is a part year.
    """
    seed = int.from_bytes(hashlib.sha256(id_number.encode()).digest()[:8], "big")
    first_year = 1996 + seed % 20
    base = 200_000 + (seed >> 8) % 300_001
    first_month = 1 + (seed >> 20) % 12
    rows = []
    for year in range(first_year, last_year + 1):
        rows.append((year, first_month if year == first_year else 1, 12, base))
        base = base * 106 // 100
    return credited_years(rows)


# Demo contribution histories across the demo regions (66号 Art. 6), picked by the ID number's 16th digit modulo
# 3: (region, first year, last year, holds the relationship now, temporary account).
DEMO_HISTORIES: tuple[tuple[tuple[str, int, int, bool, bool], ...], ...] = (
    # 0: Beijing 12 years, then Shanghai 14 years where the relationship is.
    (("110000", 2000, 2011, False, False), ("310000", 2012, 2025, True, False)),
    # 1: Chengdu 12 years, Shenzhen 8 years (the relationship), then Shanghai 7 years in a temporary account.
    (("510100", 1999, 2010, False, False), ("440300", 2011, 2018, True, False), ("310000", 2019, 2025, False, True)),
    # 2: Shenzhen 6 years (the relationship), then Shanghai 6 years in a temporary account.
    (("440300", 2014, 2019, True, False), ("310000", 2020, 2025, False, True)),
)


def demo_history(id_number: str) -> tuple[tuple[str, int, int, bool, bool], ...]:
    return DEMO_HISTORIES[int(id_number[15]) % len(DEMO_HISTORIES)]


def demo_periods(id_number: str, region: str) -> list[transfer_pb2.ContributionPeriod]:
    """What ``region``'s agency reports of the person's demo history."""
    return [
        transfer_pb2.ContributionPeriod(
            region_code=code,
            first_month=common_pb2.Date(year=first, month=1, day=1),
            last_month=common_pb2.Date(year=last, month=12, day=1),
            months=(last - first + 1) * 12,
            holds_relationship=holds,
            temporary_account=temporary,
        )
        for code, first, last, holds, temporary in demo_history(id_number)
        if code == region
    ]


def _history_rows(id_number: str, region: str, temporary: bool) -> list[tuple[int, int, int, int]]:
    """Contribution rows of a collection: the temporary account's years at ``region``, or for the relationship
    every year it carries (the periods outside temporary accounts)."""
    rows = []
    base = 600_000
    for code, first, last, _, in_temporary in demo_history(id_number):
        for year in range(first, last + 1):
            if (temporary and code == region and in_temporary) or (not temporary and not in_temporary):
                rows.append((year, 1, 12, base))
            base = base * 105 // 100
    return rows


def _table(table: str, years: list[ContributionYear], balance: int, pooled: int) -> transfer_pb2.TransferInfo:
    return transfer_pb2.TransferInfo(
        table_number=table,
        individual_account_fen=balance,
        pooled_fund_fen=pooled,
        funds_fen=balance + pooled,
        contributions=[convert.contribution_to(y) for y in years],
    )


def transfer_info_for(details: agency_pb2.TransferDetails) -> transfer_pb2.TransferInfo:
    """The information table the source agency sends for this transfer."""
    kind = Kind(details.kind)
    years, balance = contribution_record(details.person.id_number)
    table = f"XX{details.source_region}-{details.transfer_id[-8:]}"
    if kind is Kind.PENSION_COLLECTION:
        temporary = details.circumstances.collection_source == transfer_pb2.COLLECTION_SOURCE_TEMPORARY_ACCOUNT
        years, balance = credited_years(_history_rows(details.person.id_number, details.source_region, temporary))
        # A temporary account moves every contribution made there: the employer's 16% with the person's 8%.
        rate = 16 if temporary else 12
        return _table(table, years, balance, pooled_fund(years, since=date(1998, 1, 1), rate_percent=rate))
    if kind in EMPLOYEE_FUND_KINDS:
        reform = kind is Kind.INSTITUTION_PENSION or (
            details.circumstances.direction == transfer_pb2.PENSION_DIRECTION_INSTITUTION_TO_ENTERPRISE
        )
        funds = compute_funds(years, balance, since_institution_reform=reform)
        return _table(table, years, funds.individual_account_fen, funds.pooled_fund_fen)
    if kind is Kind.UNEMPLOYMENT:
        months = sum(y.last_month - y.first_month + 1 for y in years)
        if not details.circumstances.drawing_benefits:
            return transfer_pb2.TransferInfo(table_number=table, contribution_months=months)
        remaining, medical, training = 1_890_00 * 6, 300_00 * 6, 800_00
        return transfer_pb2.TransferInfo(
            table_number=table,
            remaining_benefit_fen=remaining,
            medical_subsidy_fen=medical,
            training_subsidy_fen=training,
            funds_fen=remaining + medical + training,
            contribution_months=months,
            remaining_benefit_months=6,
        )
    # resident pension and medical: the individual account balance only (a smaller one for residents).
    account = balance // 10 if kind in PENSION_KINDS else balance // 4
    return transfer_pb2.TransferInfo(table_number=table, individual_account_fen=account, funds_fen=account)


def split_message(split: Split) -> settlement_pb2.SettlementSplit:
    """The agency's answer: the domain split in the gateway's one message form."""
    return split_to(figures_of(split))


Column = tuple[str, int, str, bool]  # person, year, insurance type, inpatient


@dataclass
class SettlementLedger:
    """The insured region's books for non-local care: year-to-date figures per person and scheme column,
    individual-account balances, and what each msgid settled (so a repeat gets the first answer)."""

    year_to_date: dict[Column, YearToDate] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    answers: dict[str, settlement_pb2.SettlementSplit] = field(default_factory=dict)
    settled: dict[str, tuple[Column, Split, str]] = field(default_factory=dict)
    refunded: set[str] = field(default_factory=set)

    @staticmethod
    def column(bill: settlement_pb2.Bill) -> Column:
        return (
            bill.person.id_number,
            bill.discharge_date.year,
            bill.insurance_type,
            MedicalType(bill.medical_type).inpatient,
        )

    def account(self, bill: settlement_pb2.Bill) -> int:
        if bill.insurance_type != InsuranceType.EMPLOYEE.value:
            return 0
        return self.balances.setdefault(bill.person.id_number, DEMO_ACCOUNT_BALANCE_FEN)

    def record(
        self, settlement_id: str, bill: settlement_pb2.Bill, split: Split, answer: settlement_pb2.SettlementSplit
    ) -> None:
        column = self.column(bill)
        self.year_to_date[column] = apply_to_year(self.year_to_date.get(column, YearToDate()), split)
        self.balances[bill.person.id_number] = self.account(bill) - split.account_pay_fen
        self.answers[bill.msgid] = answer
        self.settled[settlement_id] = (column, split, bill.person.id_number)

    def refund(self, msgid: str, settlement_id: str, bill_msgid: str) -> bool:
        """Undo a settlement once; False when this msgid (or the settlement) was refunded already. The bill's
        msgid is free again: a later commit under it settles anew (the gateway takes back a settlement it could
        not record, and the hospital's retry then settles it)."""
        if msgid in self.refunded or settlement_id not in self.settled:
            return False
        self.answers.pop(bill_msgid, None)
        column, split, person = self.settled.pop(settlement_id)
        self.year_to_date[column] = revert_from_year(self.year_to_date[column], split)
        self.balances[person] += split.account_pay_fen
        self.refunded.add(msgid)
        return True


@dataclass
class AgencyStats:
    applied: int = 0
    duplicates: int = 0
    batches: int = 0
    applied_ids: set[str] = field(default_factory=set)


class SimulatedAgency(agency_pb2_grpc.RegionAgencyServiceServicer):
    """One agency. ``available=False`` makes it answer UNAVAILABLE, as a region that is down."""

    def __init__(
        self,
        key: AgencyKey,
        gateway_target: str,
        act_delay_s: float = 0.2,
        act: bool = True,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.key = key
        self.credentials = credentials
        """Its own certificate, to answer the gateway over mutual TLS (None: plain text, development)."""
        self.gateway_target = gateway_target
        self.act_delay_s = act_delay_s
        self.act = act
        self.available = True
        self.batches = True
        """Whether it implements DeliverBatch (False: UNIMPLEMENTED, so the gateway delivers one by one)."""
        self.answer_delay_s = 0.0
        """Seconds each Deliver and ComputeSettlement takes (a slow agency)."""
        self.refuse_with: grpc.StatusCode | None = None
        """Answer every delivery with this (permanent) code."""
        self.refuse_ids: set[str] = set()
        """ID numbers whose notices it refuses as invalid (a permanent refusal: they go to the dead letters)."""
        self.on_deliver: Callable[[agency_pb2.DeliverRequest], None] | None = None
        """Called with each message applied (for benchmarks)."""
        self.after_commit: Callable[[settlement_pb2.SettlementSplit], Awaitable[None]] | None = None
        """Awaited with each committed settlement's answer before it is sent (tests: what happens meanwhile, or
        an answer altered after the books were written)."""
        self.ledger = SettlementLedger()
        self.stats = AgencyStats()
        self.received: list[agency_pb2.DeliverRequest] = []
        self.calls: list[list[str]] = []
        """The message ids of each Deliver or DeliverBatch call, in the order the calls came."""
        self.held = 0
        """Deliveries waiting at the gate (see :meth:`hold`)."""
        self._permits: int | None = None
        self._gate = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._channel: grpc.aio.Channel | None = None

    async def hold(self, permits: int = 0) -> None:
        """Let only ``permits`` more deliveries through from now; the rest wait, undelivered, until
        :meth:`release` (tests: a backlog that cannot drain, a crash at an exact point)."""
        async with self._gate:
            self._permits = max(permits, 0)
            self._gate.notify_all()

    async def release(self, permits: int | None = None) -> None:
        """Let ``permits`` more deliveries through, or all (None: the gate open again)."""
        async with self._gate:
            self._permits = None if permits is None or self._permits is None else self._permits + permits
            self._gate.notify_all()

    async def _pass_gate(self) -> None:
        async with self._gate:
            self.held += 1
            try:
                await self._gate.wait_for(lambda: self._permits is None or self._permits > 0)
            finally:
                self.held -= 1
            if self._permits is not None:
                self._permits -= 1

    @property
    def participant(self) -> str:
        return participant_of(self.key)

    async def _take(self, request: agency_pb2.DeliverRequest) -> agency_pb2.DeliverResult:
        """Apply one message once (by message id), as Deliver and DeliverBatch both do."""
        if not self.available:
            down = f"agency {self.key} is down"
            return agency_pb2.DeliverResult(code=grpc.StatusCode.UNAVAILABLE.value[0], detail=down)
        if self.refuse_with is not None:
            return agency_pb2.DeliverResult(
                code=self.refuse_with.value[0], detail=f"agency {self.key} refuses this message"
            )
        refusal = self._delivery_refusal(request)
        if refusal is not None:  # a message it cannot apply: refused on its own, never applied
            code, detail = refusal
            return agency_pb2.DeliverResult(code=code.value[0], detail=detail)
        if request.transfer_notice.transfer.person.id_number in self.refuse_ids:
            return agency_pb2.DeliverResult(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], detail="refused")
        if self._permits is not None and request.message_id not in self.stats.applied_ids:
            await self._pass_gate()  # a repeat changes nothing, so it needs no permit
        delay = self.answer_delay_s
        if delay:
            await asyncio.sleep(delay)
        if request.message_id in self.stats.applied_ids:
            self.stats.duplicates += 1
            return agency_pb2.DeliverResult(duplicate=True)
        self.stats.applied_ids.add(request.message_id)
        self.stats.applied += 1
        self.received.append(request)
        if self.on_deliver is not None:
            self.on_deliver(request)
        if self.act and request.HasField("transfer_notice"):
            task = asyncio.create_task(self._respond(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return agency_pb2.DeliverResult(duplicate=False)

    def _delivery_refusal(self, request: agency_pb2.DeliverRequest) -> Refusal | None:
        """What a conforming agency refuses in a message (``sigw agency-check`` checks it), and with which code."""
        if not request.message_id:
            return _INVALID, "message_id is required"
        if not request.HasField("recipient"):
            return _INVALID, "recipient is required"
        if (request.recipient.region_code, int(request.recipient.agency_type)) != (
            self.key.region,
            int(self.key.agency_type),
        ):
            return _PRECONDITION, f"this is agency {self.key}, not the recipient"
        if not request.HasField("transfer_notice"):
            return _INVALID, "no message body this agency knows"
        notice = request.transfer_notice
        if notice.type not in NoticeType._value2member_map_:
            return _INVALID, f"unknown notice type {notice.type}"
        transfer = notice.transfer
        if not transfer.transfer_id:
            return _INVALID, "transfer.transfer_id is required"
        if self.key.region not in (transfer.source_region, transfer.target_region):
            return _PRECONDITION, f"transfer {transfer.transfer_id} is not one of region {self.key.region}"
        return None

    async def Deliver(self, request: agency_pb2.DeliverRequest, context: Context) -> agency_pb2.DeliverResponse:
        self.calls.append([request.message_id])
        result = await self._take(request)
        if result.code:
            await context.abort(_STATUS_CODES[result.code], result.detail)
        return agency_pb2.DeliverResponse(duplicate=result.duplicate)

    async def DeliverBatch(
        self, request: agency_pb2.DeliverBatchRequest, context: Context
    ) -> agency_pb2.DeliverBatchResponse:
        if not self.batches:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this agency takes messages one by one")
        if not self.available:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"agency {self.key} is down")
        self.stats.batches += 1
        self.calls.append([m.message_id for m in request.messages])
        return agency_pb2.DeliverBatchResponse(results=[await self._take(m) for m in request.messages])

    def _stub(self) -> transfer_pb2_grpc.TransferServiceAsyncStub:
        if self._channel is None:
            self._channel = (
                grpc.aio.secure_channel(self.gateway_target, self.credentials)
                if self.credentials is not None
                else grpc.aio.insecure_channel(self.gateway_target)
            )
        return transfer_pb2_grpc.TransferServiceStub(self._channel)

    async def _respond(self, request: agency_pb2.DeliverRequest) -> None:
        await asyncio.sleep(self.act_delay_s)
        notice = request.transfer_notice
        details = notice.transfer
        request_id = f"sim-{request.message_id}"
        tid = details.transfer_id
        stub = self._stub()
        answer: Callable[[], Awaitable[object]]
        if notice.type == agency_pb2.NOTICE_TYPE_TRANSFER_REQUESTED and details.temporary_account:
            opened = transfer_pb2.OpenTemporaryAccountRequest(
                request_id=request_id, transfer_id=tid, account_number=f"LS-{self.key.region}-{tid[-8:]}"
            )
            answer = partial(stub.OpenTemporaryAccount, opened, metadata=self._metadata(request.traceparent))
        elif notice.type == agency_pb2.NOTICE_TYPE_TRANSFER_REQUESTED:
            letter = transfer_pb2.SendContactLetterRequest(
                request_id=request_id, transfer_id=tid, letter_number=f"LXH-{self.key.region}-{tid[-8:]}"
            )
            answer = partial(stub.SendContactLetter, letter, metadata=self._metadata(request.traceparent))
        elif notice.type == agency_pb2.NOTICE_TYPE_CONTACT_LETTER:
            if details.person.id_number[14:17] == NO_RECORD_SEQUENCE:
                refusal = transfer_pb2.RejectTransferRequest(
                    request_id=request_id,
                    transfer_id=tid,
                    reason=f"no contribution record for this person at {self.key.region}",
                )
                answer = partial(stub.RejectTransfer, refusal, metadata=self._metadata(request.traceparent))
            else:
                table = transfer_pb2.SendTransferInfoRequest(
                    request_id=request_id, transfer_id=tid, info=transfer_info_for(details)
                )
                answer = partial(stub.SendTransferInfo, table, metadata=self._metadata(request.traceparent))
        elif notice.type == agency_pb2.NOTICE_TYPE_TRANSFER_INFO:
            done = transfer_pb2.CompleteTransferRequest(request_id=request_id, transfer_id=tid)
            answer = partial(stub.CompleteTransfer, done, metadata=self._metadata(request.traceparent))
        else:
            return
        await self._send(answer)

    async def _send(self, answer: Callable[[], Awaitable[object]]) -> None:
        """Send the answer, retrying while the gateway is unreachable (the request id makes it safe)."""
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_gateway_down),
                wait=wait_random_exponential(multiplier=0.1, max=2),
                stop=stop_after_delay(120),
                reraise=True,
            ):
                with attempt:
                    await answer()
        except grpc.aio.AioRpcError as error:
            log.warning("%s: the gateway refused our answer: %s %s", self.key, error.code().name, error.details())

    # ------------------------------------------------------------------------------------- settlement

    async def ComputeSettlement(
        self, request: agency_pb2.ComputeSettlementRequest, context: Context
    ) -> agency_pb2.ComputeSettlementResponse:
        if not self.available:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"agency {self.key} is down")
        delay = self.answer_delay_s
        if delay:
            await asyncio.sleep(delay)
        refused = self._settlement_refusal(request)
        if refused is not None:
            await context.abort(*refused)
        if request.commit and request.bill.msgid in self.ledger.answers:
            return agency_pb2.ComputeSettlementResponse(split=self.ledger.answers[request.bill.msgid])
        bill = request.bill
        column = self.ledger.column(bill)
        try:
            split = split_bill(
                [
                    BillItem(i.code, i.name, CatalogueClass(i.catalogue_class), i.amount_fen, i.self_pay_percent)
                    for i in bill.items
                ],
                insurance=InsuranceType(bill.insurance_type),
                medical=MedicalType(bill.medical_type),
                hospital_level=bill.hospital_level,
                filing=FilingStatus(request.filing_status),
                year_to_date=self.ledger.year_to_date.get(column, YearToDate()),
                account_balance_fen=0 if bill.account_declined else self.ledger.account(bill),
                policy=policy_for(self.key.region),
            )
        except SigwError as refusal:
            await context.abort_with_status(to_status(refusal))
        answer = split_message(split)
        if request.commit:
            self.ledger.record(request.settlement_id, bill, split, answer)
            if self.after_commit is not None:
                await self.after_commit(answer)
        return agency_pb2.ComputeSettlementResponse(split=answer)

    def _settlement_refusal(self, request: agency_pb2.ComputeSettlementRequest) -> Refusal | None:
        if not request.HasField("bill"):
            return _INVALID, "bill is required"
        bill = request.bill
        if bill.insured_region != self.key.region:
            return _PRECONDITION, f"the person is insured in {bill.insured_region}, not here"
        if request.filing_status not in FilingStatus._value2member_map_:
            return _INVALID, f"unknown filing status {request.filing_status}"
        if bill.insurance_type not in InsuranceType._value2member_map_:
            return _INVALID, f"unknown insurance type {bill.insurance_type!r}"
        if bill.medical_type not in MedicalType._value2member_map_:
            return _INVALID, f"unknown medical type {bill.medical_type!r}"
        if any(item.catalogue_class not in CatalogueClass._value2member_map_ for item in bill.items):
            return _INVALID, "an item of an unknown catalogue class"
        if request.commit and not (bill.msgid and request.settlement_id):
            return _INVALID, "a commit needs the bill's msgid and the settlement_id"
        return None

    async def RefundSettlement(
        self, request: agency_pb2.RefundSettlementRequest, context: Context
    ) -> agency_pb2.RefundSettlementResponse:
        if not self.available:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"agency {self.key} is down")
        if not (request.msgid and request.settlement_id):
            await context.abort(_INVALID, "msgid and settlement_id are required")
        if request.bill.insured_region != self.key.region:
            await context.abort(_PRECONDITION, f"the person is insured in {request.bill.insured_region}, not here")
        return agency_pb2.RefundSettlementResponse(
            duplicate=not self.ledger.refund(request.msgid, request.settlement_id, request.bill.msgid)
        )

    async def GetPersonInfo(
        self, request: agency_pb2.GetPersonInfoRequest, context: Context
    ) -> agency_pb2.GetPersonInfoResponse:
        """Every valid ID number is insured here in the demo: an employee (310) with an individual account, retired
        (psn_type 21) from 60, with a person number derived from the region and the ID number."""
        if not self.available:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"agency {self.key} is down")
        if self.key.agency_type is not AgencyType.HEALTHCARE_SECURITY:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "person information is the healthcare agency's")
        if request.credential_type not in CredentialType._value2member_map_:
            await context.abort(_INVALID, f"unknown credential type {request.credential_type}")
        id_number = request.person.id_number
        if not idnumber.is_valid(id_number) or id_number in self.refuse_ids:
            await context.abort(grpc.StatusCode.NOT_FOUND, "nobody insured here holds this credential")
        born = idnumber.birth_date(id_number)
        digest = int(hashlib.sha256(f"{self.key.region}:{id_number}".encode()).hexdigest()[:15], 16)
        employee = agency_pb2.PersonInsurance(
            insurance_type=InsuranceType.EMPLOYEE.value,
            balance_fen=self.ledger.balances.get(id_number, DEMO_ACCOUNT_BALANCE_FEN),
            person_type="21" if idnumber.age_on(id_number, date.today()) >= 60 else "11",
            insured_region=self.key.region,
            active=True,
            since=common_pb2.Date(year=max(born.year + 20, 1998), month=1, day=1),
        )
        return agency_pb2.GetPersonInfoResponse(
            person_number=f"{self.key.region}{digest % 10**14:014d}",
            name=request.person.name or "演示参保人",
            gender="1" if idnumber.is_male(id_number) else "2",
            birthday=common_pb2.Date(year=born.year, month=born.month, day=born.day),
            insurances=[employee],
        )

    async def ReportContributionPeriods(
        self, request: agency_pb2.ReportContributionPeriodsRequest, context: Context
    ) -> agency_pb2.ReportContributionPeriodsResponse:
        if not self.available:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"agency {self.key} is down")
        if self.key.agency_type is not AgencyType.HRSS:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "pension periods are the HRSS agency's")
        if not idnumber.is_valid(request.person.id_number):
            await context.abort(_INVALID, "person.id_number: not a valid ID number")
        return agency_pb2.ReportContributionPeriodsResponse(
            periods=demo_periods(request.person.id_number, self.key.region)
        )

    def _metadata(self, traceparent: str = "") -> tuple[tuple[str, str], ...]:
        """Who calls (development identity), and the trace the answer joins (the message's ``traceparent``)."""
        traced = (("traceparent", traceparent),) if traceparent else ()
        return ((PARTICIPANT_METADATA, self.participant), *traced)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._channel is not None:
            await self._channel.close()


def _gateway_down(error: BaseException) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )


class SimulatedAgencies:
    """Several simulated agencies, each on its own port of 127.0.0.1."""

    def __init__(
        self, gateway_target: str, act_delay_s: float = 0.2, tls: TlsFolder | None = None, act: bool = True
    ) -> None:
        self.tls = tls
        self.gateway_target = gateway_target
        self.act_delay_s = act_delay_s
        self.act = act
        self.agencies: dict[AgencyKey, SimulatedAgency] = {}
        self.endpoints: dict[AgencyKey, str] = {}
        self._servers: list[grpc.aio.Server] = []

    async def start(self, wanted: Iterable[tuple[AgencyKey, str]]) -> None:
        """Start an agency for each (key, listen address); port 0 picks a free port."""
        for key, listen in wanted:
            agency = SimulatedAgency(key, self.gateway_target, self.act_delay_s, act=self.act)
            server = grpc.aio.server(interceptors=[GatewayOnly()] if self.tls is not None else [])
            agency_pb2_grpc.add_RegionAgencyServiceServicer_to_server(agency, server)
            enable_reflection([agency_pb2.DESCRIPTOR.services_by_name["RegionAgencyService"].full_name], server)
            if self.tls is not None:
                agency.credentials = self.tls.channel_credentials(agency.participant)
                port = server.add_secure_port(listen, self.tls.server_credentials(agency.participant))
            else:
                port = server.add_insecure_port(listen)
            await server.start()
            host = listen.rsplit(":", 1)[0]
            self.agencies[key] = agency
            self.endpoints[key] = f"{host}:{port}"
            self._servers.append(server)

    def connect(self, gateway_target: str) -> None:
        """Point every agency's answers at this gateway (for agencies started before it)."""
        self.gateway_target = gateway_target
        for agency in self.agencies.values():
            agency.gateway_target = gateway_target

    async def stop(self) -> None:
        for agency in self.agencies.values():
            await agency.close()
        for server in self._servers:
            await server.stop(grace=0.5)
