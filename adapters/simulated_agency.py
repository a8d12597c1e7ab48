"""Simulated region agencies: real gRPC servers implementing ``RegionAgencyService``.

Each simulated agency dedups deliveries by message id, then acts as a real agency would, by calling the
gateway's ``TransferService`` back after ``act_delay_s``:

* TRANSFER_REQUESTED (it is the target): sends the contact letter;
* CONTACT_LETTER (it is the source): looks up the person's contribution record and sends the information
  table with the funds, computed by ``gateway.domain.pension``; or rejects when it has no record;
* TRANSFER_INFO (it is the target): completes the transfer.

Contribution records are made up deterministically from the ID number. A person whose ID number has the
sequence ``000`` (digits 15-17) has no record anywhere, so the source agency rejects the transfer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

import grpc
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_random_exponential

from adapters.demo_policies import DEMO_ACCOUNT_BALANCE_FEN, policy_for
from gateway._gen.sigw.v1 import agency_pb2, agency_pb2_grpc, settlement_pb2, transfer_pb2, transfer_pb2_grpc
from gateway.api.status import to_status
from gateway.domain.model import AgencyKey, Kind
from gateway.domain.pension import ContributionYear, compute_funds
from gateway.domain.rules import PENSION_KINDS
from gateway.domain.settlement import (
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
from gateway.errors import SigwError
from gateway.settlement_convert import split_to
from gateway.store.settlements import Figures
from gateway.tls import TlsFolder

log = logging.getLogger("sigw.sim")

NO_RECORD_SEQUENCE = "000"
PARTICIPANT_METADATA = "x-sigw-participant"


def contribution_record(id_number: str, last_year: int = 2025) -> tuple[list[ContributionYear], int]:
    """A made-up but plausible record for a person: years paid and the individual account balance (fen).

    Bases start between 2,000 and 5,000 yuan a month and grow 6% a year; the first year is a part year.
    The balance is what 11% (to 2005) and 8% (from 2006) of the bases credited, so it is within the caps.
    """
    seed = int.from_bytes(hashlib.sha256(id_number.encode()).digest()[:8], "big")
    first_year = 1996 + seed % 20
    base = 200_000 + (seed >> 8) % 300_001
    first_month = 1 + (seed >> 20) % 12
    years = []
    balance = 0
    for year in range(first_year, last_year + 1):
        start = first_month if year == first_year else 1
        years.append(ContributionYear(year, start, 12, base))
        if year >= 1998:
            balance += base * (12 - start + 1) * (11 if year <= 2005 else 8) // 100
        base = base * 106 // 100
    return years, balance


def transfer_info_for(details: agency_pb2.TransferDetails) -> transfer_pb2.TransferInfo:
    """The information table the source agency sends for this transfer."""
    kind = Kind(details.kind)
    years, balance = contribution_record(details.person.id_number)
    table = f"XX{details.source_region}-{details.transfer_id[-8:]}"
    if kind in (Kind.EMPLOYEE_PENSION, Kind.INSTITUTION_ENTERPRISE_PENSION):
        funds = compute_funds(
            years,
            balance,
            institution_to_enterprise=details.circumstances.direction
            == transfer_pb2.PENSION_DIRECTION_INSTITUTION_TO_ENTERPRISE,
        )
        return transfer_pb2.TransferInfo(
            table_number=table,
            individual_account_fen=funds.individual_account_fen,
            pooled_fund_fen=funds.pooled_fund_fen,
            funds_fen=funds.total_fen,
            contributions=[
                transfer_pb2.ContributionYear(
                    year=y.year, first_month=y.first_month, last_month=y.last_month, monthly_base_fen=y.monthly_base_fen
                )
                for y in years
            ],
        )
    if kind is Kind.UNEMPLOYMENT:
        if not details.circumstances.drawing_benefits:
            return transfer_pb2.TransferInfo(table_number=table)
        remaining, medical, training = 1_890_00 * 6, 300_00 * 6, 800_00
        return transfer_pb2.TransferInfo(
            table_number=table,
            remaining_benefit_fen=remaining,
            medical_subsidy_fen=medical,
            training_subsidy_fen=training,
            funds_fen=remaining + medical + training,
        )
    # resident pension and medical: the individual account balance only (a smaller one for residents).
    account = balance // 10 if kind in PENSION_KINDS else balance // 4
    return transfer_pb2.TransferInfo(table_number=table, individual_account_fen=account, funds_fen=account)


def split_message(split: Split) -> settlement_pb2.SettlementSplit:
    """The agency's answer: the domain split in the gateway's one message form."""
    figures = {name: getattr(split, name) for name in Figures.__dataclass_fields__ if name != "filing_status"}
    return split_to(Figures(**figures, filing_status=int(split.filing)))


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

    def refund(self, msgid: str, settlement_id: str) -> bool:
        """Undo a settlement once; False when this msgid (or the settlement) was refunded already."""
        if msgid in self.refunded or settlement_id not in self.settled:
            return False
        column, split, person = self.settled.pop(settlement_id)
        self.year_to_date[column] = revert_from_year(self.year_to_date[column], split)
        self.balances[person] += split.account_pay_fen
        self.refunded.add(msgid)
        return True


@dataclass
class AgencyStats:
    applied: int = 0
    duplicates: int = 0
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
        self.answer_delay_s = 0.0
        """Seconds each Deliver and ComputeSettlement takes (a slow agency)."""
        self.refuse_with: grpc.StatusCode | None = None
        """Answer every delivery with this (permanent) code."""
        self.on_deliver: Callable[[agency_pb2.DeliverRequest], None] | None = None
        """Called with each message applied (for benchmarks)."""
        self.ledger = SettlementLedger()
        self.stats = AgencyStats()
        self.received: list[agency_pb2.DeliverRequest] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._channel: grpc.aio.Channel | None = None

    @property
    def participant(self) -> str:
        return f"agency:{self.key.region}:{self.key.agency_type.slug}"

    async def Deliver(
        self, request: agency_pb2.DeliverRequest, context: grpc.aio.ServicerContext
    ) -> agency_pb2.DeliverResponse:
        if not self.available:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"agency {self.key} is down")
        if self.refuse_with is not None:
            await context.abort(self.refuse_with, f"agency {self.key} refuses this message")
        delay = self.answer_delay_s
        if delay:
            await asyncio.sleep(delay)
        if request.message_id in self.stats.applied_ids:
            self.stats.duplicates += 1
            return agency_pb2.DeliverResponse(duplicate=True)
        self.stats.applied_ids.add(request.message_id)
        self.stats.applied += 1
        self.received.append(request)
        if self.on_deliver is not None:
            self.on_deliver(request)
        if self.act and request.HasField("transfer_notice"):
            task = asyncio.create_task(self._respond(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return agency_pb2.DeliverResponse(duplicate=False)

    def _stub(self) -> transfer_pb2_grpc.TransferServiceStub:
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
        if notice.type == agency_pb2.NOTICE_TYPE_TRANSFER_REQUESTED:
            letter = transfer_pb2.SendContactLetterRequest(
                request_id=request_id, transfer_id=tid, letter_number=f"LXH-{self.key.region}-{tid[-8:]}"
            )
            answer = partial(stub.SendContactLetter, letter, metadata=self._metadata())
        elif notice.type == agency_pb2.NOTICE_TYPE_CONTACT_LETTER:
            if details.person.id_number[14:17] == NO_RECORD_SEQUENCE:
                refusal = transfer_pb2.RejectTransferRequest(
                    request_id=request_id,
                    transfer_id=tid,
                    reason=f"no contribution record for this person at {self.key.region}",
                )
                answer = partial(stub.RejectTransfer, refusal, metadata=self._metadata())
            else:
                table = transfer_pb2.SendTransferInfoRequest(
                    request_id=request_id, transfer_id=tid, info=transfer_info_for(details)
                )
                answer = partial(stub.SendTransferInfo, table, metadata=self._metadata())
        elif notice.type == agency_pb2.NOTICE_TYPE_TRANSFER_INFO:
            done = transfer_pb2.CompleteTransferRequest(request_id=request_id, transfer_id=tid)
            answer = partial(stub.CompleteTransfer, done, metadata=self._metadata())
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
        self, request: agency_pb2.ComputeSettlementRequest, context: grpc.aio.ServicerContext
    ) -> agency_pb2.ComputeSettlementResponse:
        if not self.available:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"agency {self.key} is down")
        delay = self.answer_delay_s
        if delay:
            await asyncio.sleep(delay)
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
                account_balance_fen=self.ledger.account(bill),
                policy=policy_for(self.key.region),
            )
        except SigwError as refusal:
            await context.abort_with_status(to_status(refusal))
        answer = split_message(split)
        if request.commit:
            self.ledger.record(request.settlement_id, bill, split, answer)
        return agency_pb2.ComputeSettlementResponse(split=answer)

    async def RefundSettlement(
        self, request: agency_pb2.RefundSettlementRequest, context: grpc.aio.ServicerContext
    ) -> agency_pb2.RefundSettlementResponse:
        if not self.available:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"agency {self.key} is down")
        return agency_pb2.RefundSettlementResponse(
            duplicate=not self.ledger.refund(request.msgid, request.settlement_id)
        )

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return ((PARTICIPANT_METADATA, self.participant),)

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

    def __init__(self, gateway_target: str, act_delay_s: float = 0.2, tls: TlsFolder | None = None) -> None:
        self.tls = tls
        self.gateway_target = gateway_target
        self.act_delay_s = act_delay_s
        self.agencies: dict[AgencyKey, SimulatedAgency] = {}
        self.endpoints: dict[AgencyKey, str] = {}
        self._servers: list[grpc.aio.Server] = []

    async def start(self, wanted: Iterable[tuple[AgencyKey, str]]) -> None:
        """Start an agency for each (key, listen address); port 0 picks a free port."""
        for key, listen in wanted:
            agency = SimulatedAgency(key, self.gateway_target, self.act_delay_s)
            server = grpc.aio.server()
            agency_pb2_grpc.add_RegionAgencyServiceServicer_to_server(agency, server)
            if self.tls is not None:
                participant = f"agency:{key.region}:{key.agency_type.slug}"
                agency.credentials = self.tls.channel_credentials(participant)
                port = server.add_secure_port(listen, self.tls.server_credentials(participant))
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
