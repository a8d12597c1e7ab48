"""Non-local settlement use cases (Art. 23): filings, (pre-)settlement through the insured region's agency,
cancellation and reversal, reconciliation and monthly clearing.

A settlement needs the insured region's answer now: sigw calls its agency within the caller's deadline, then
commits the answer atomically with the msgid record and the clearing totals. If the agency cannot be reached
nothing is recorded and the hospital gets UNAVAILABLE with RetryInfo; the agency dedups on msgid, so a retry
settles once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

import grpc

from adapters.agency_client import AgencyClients, DeliveryFailed
from gateway._gen.sigw.v1 import agency_pb2, settlement_pb2
from gateway.config import Registry
from gateway.domain import access
from gateway.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    NotFound,
    Unavailable,
    check_same_payload,
    invalid,
)
from gateway.domain.participants import Participant
from gateway.domain.settlement import clearing
from gateway.domain.settlement.split import FilingStatus
from gateway.domain.transfer.model import SHANGHAI, AgencyKey, AgencyType
from gateway.security.crypto import FieldCipher
from gateway.store.audit import AuditTrail
from gateway.store.settlements import (
    Figures,
    FilingRecord,
    MessageRecord,
    SettlementRecord,
    SettlementStore,
    cancelled,
    month_closed,
)
from gateway.wire.settlements import (
    ParsedBill,
    bill_json,
    bill_parse,
    figures_from,
    filing_status,
    split_to,
)

Clock = Callable[[], datetime]
MIN_AGENCY_TIMEOUT_S = 0.05


@dataclass(frozen=True)
class Reconciliation:
    matched: bool
    gateway_totals: clearing.ReconTotals
    differences: list[clearing.Difference]


@dataclass(frozen=True)
class ClearingResult:
    statement: clearing.Statement
    closed: bool
    recount_matches: bool


def settlement_id_for(shard: int, msgid: str) -> str:
    """Deterministic from the msgid, so a retried settlement gets the same id at the gateway and the agency."""
    return f"S{shard:02d}-{hashlib.sha256(msgid.encode()).hexdigest()[:16]}"


def _agency_error(failed: DeliveryFailed, region: str) -> FailedPrecondition | Unavailable:
    if failed.code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
        return FailedPrecondition(
            reason=failed.reason or "AGENCY_REFUSED",
            message=f"the insured region {region} refused: {failed.detail}",
            metadata={"insured_region": region},
        )
    return Unavailable(
        reason="AGENCY_UNAVAILABLE",
        message=f"the insured region {region}'s agency did not answer ({failed.code.name}); "
        "nothing was settled: retry with the same msgid",
        metadata={"insured_region": region},
        retry_after_s=failed.retry_after_s or 1.0,
    )


class SettlementService:
    def __init__(
        self, store: SettlementStore, registry: Registry, agencies: AgencyClients, clock: Clock, cipher: FieldCipher
    ) -> None:
        self.store = store
        self.registry = registry
        self.agencies = agencies
        self.clock = clock
        self.cipher = cipher

    def today(self) -> date:
        return self.clock().astimezone(SHANGHAI).date()

    def _agency(self, region: str, field: str) -> str:
        endpoint = self.registry.endpoint(AgencyKey(region, AgencyType.HEALTHCARE_SECURITY))
        if endpoint is None:
            raise invalid([FieldViolation(field, f"unknown region {region}")], reason="UNKNOWN_REGION")
        return endpoint

    # --------------------------------------------------------------------------------------------- filings

    async def create_filing(
        self,
        actor: Participant,
        request_id: str,
        fingerprint: str,
        *,
        filing_type: int,
        id_number: str,
        insured_region: str,
        treatment_region: str,
        valid_from: date,
        valid_until: date | None,
    ) -> FilingRecord:
        access.require_insured_agency(actor, insured_region)
        unknown = [
            FieldViolation(name, f"unknown region {code}")
            for name, code in (("insured_region", insured_region), ("treatment_region", treatment_region))
            if code not in self.registry.codes and not any(c[:2] == code[:2] for c in self.registry.codes)
        ]
        if unknown:
            raise invalid(unknown, reason="UNKNOWN_REGION")
        person = self.cipher.lookup_hash(id_number)
        shard = self.store.person_shard(person)
        scope = f"filing|{actor}|{request_id}"
        earlier = await self.store.message(shard, scope)
        if earlier is None:
            now = self.clock()
            filing = FilingRecord(
                filing_id=f"F{shard:02d}-{now.astimezone(SHANGHAI):%Y%m%d}-{secrets.token_hex(4).upper()}",
                filing_type=filing_type,
                id_number=id_number,
                person_key=person,
                insured_region=insured_region,
                treatment_region=treatment_region,
                valid_from=valid_from,
                valid_until=valid_until,
                created_at=now,
            )
            earlier = await self.store.put_filing(
                filing, scope=scope, record=MessageRecord(fingerprint, filing.filing_id, "file"), new=True, now=now
            )
            if earlier is None:
                return filing
        return await self._replay_filing(earlier, fingerprint)

    async def _replay_filing(self, record: MessageRecord, fingerprint: str) -> FilingRecord:
        check_same_payload(record.fingerprint, fingerprint)
        filing = await self.store.filing(record.settlement_id)
        if filing is None:
            raise NotFound(reason="FILING_NOT_FOUND", message=f"filing {record.settlement_id} not found")
        return filing

    async def cancel_filing(
        self, actor: Participant, request_id: str, fingerprint: str, filing_id: str, reason: str
    ) -> FilingRecord:
        filing = await self.store.filing(filing_id)
        if filing is None or actor.agency != AgencyKey(filing.insured_region, AgencyType.HEALTHCARE_SECURITY):
            raise NotFound(reason="FILING_NOT_FOUND", message=f"filing {filing_id} not found")
        scope = f"filing|{actor}|{request_id}"
        shard = int(filing_id[1:3])
        earlier = await self.store.message(shard, scope)
        if earlier is None:
            if filing.state != "ACTIVE":
                raise FailedPrecondition(reason="FILING_NOT_ACTIVE", message=f"filing {filing_id} is cancelled")
            updated = replace(filing, state="CANCELLED", cancel_reason=reason)
            earlier = await self.store.put_filing(
                updated,
                scope=scope,
                record=MessageRecord(fingerprint, filing_id, "cancel"),
                new=False,
                now=self.clock(),
            )
            if earlier is None:
                return updated
        return await self._replay_filing(earlier, fingerprint)

    async def list_filings(
        self, actor: Participant, region: str, id_number: str | None, before_ms: int | None, limit: int
    ) -> tuple[list[FilingRecord], int | None]:
        access.require_insured_agency(actor, region)
        if id_number:
            mine = [
                f
                for f in await self.store.person_filings(self.cipher.lookup_hash(id_number))
                if f.insured_region == region
            ]
            return sorted(mine, key=lambda f: f.created_at, reverse=True), None
        rows = await self.store.region_filings(region, before_ms, limit + 1)
        more = len(rows) > limit
        page = rows[:limit]
        return [f for _, f in page], (page[-1][0] if more and page else None)

    # --------------------------------------------------------------------------------------------- settling

    async def _filing_status(self, bill: ParsedBill) -> FilingStatus:
        msg = bill.message
        filings = await self.store.person_filings(self.cipher.lookup_hash(msg.person.id_number))
        mine = [f for f in filings if f.insured_region == msg.insured_region]
        return filing_status(mine, msg.treatment_region, bill.discharge, msg.emergency)

    async def _check_bill(self, actor: Participant, bill: ParsedBill) -> str:
        msg = bill.message
        access.require_hospital(actor, msg.hospital_code, msg.treatment_region)
        if msg.treatment_region == msg.insured_region:
            raise FailedPrecondition(
                reason="NOT_NON_LOCAL", message="the insured region is the place of treatment: settle locally"
            )
        return self._agency(msg.insured_region, "bill.insured_region")

    async def _compute(
        self, endpoint: str, bill: ParsedBill, status: FilingStatus, commit: bool, settlement_id: str, timeout_s: float
    ) -> Figures:
        if timeout_s < MIN_AGENCY_TIMEOUT_S:
            raise Unavailable(
                reason="DEADLINE_TOO_SHORT", message="too little time left to ask the insured region", retry_after_s=0.0
            )
        request = agency_pb2.ComputeSettlementRequest(
            bill=bill.message,
            filing_status=settlement_pb2.FilingStatus.ValueType(status),
            commit=commit,
            settlement_id=settlement_id,
        )
        try:
            reply = await self.agencies.compute_settlement(endpoint, request, timeout_s)
        except DeliveryFailed as failed:
            raise _agency_error(failed, bill.message.insured_region) from failed
        figures = figures_from(reply.split)
        parts = (figures.fund_pay_fen, figures.account_pay_fen, figures.cash_pay_fen)
        if figures.total_fen != bill.message.total_fen or sum(parts) != figures.total_fen or min(parts) < 0:
            raise Unavailable(
                reason="AGENCY_ANSWER_INCONSISTENT",
                message="the insured region's answer does not add up to the bill; nothing settled",
                retry_after_s=5.0,
            )
        return figures

    async def pre_settle(self, actor: Participant, bill: ParsedBill, timeout_s: float) -> Figures:
        endpoint = await self._check_bill(actor, bill)
        return await self._compute(endpoint, bill, await self._filing_status(bill), False, "", timeout_s)

    async def settle(
        self, actor: Participant, bill: ParsedBill, fingerprint: str, timeout_s: float
    ) -> SettlementRecord:
        endpoint = await self._check_bill(actor, bill)
        msg = bill.message
        shard = self.store.msg_shard(msg.msgid)
        earlier = await self.store.message(shard, msg.msgid)
        if earlier:
            return await self._replay(earlier, fingerprint)
        month = f"{bill.message_time:%Y-%m}"
        if await self.store.is_closed(month):
            raise month_closed(month)
        owner = await self.store.claim_visit(msg.visit_id, msg.hospital_code)
        if owner != msg.hospital_code:
            raise access.not_this_hospitals_visit(msg.visit_id)
        settlement_id = settlement_id_for(shard, msg.msgid)
        status = await self._filing_status(bill)
        figures = await self._compute(endpoint, bill, status, True, settlement_id, timeout_s)
        record = SettlementRecord(
            settlement_id=settlement_id,
            msgid=msg.msgid,
            hospital_code=msg.hospital_code,
            hospital_level=msg.hospital_level,
            treatment_region=msg.treatment_region,
            insured_region=msg.insured_region,
            visit_id=msg.visit_id,
            id_number=msg.person.id_number,
            name=msg.person.name,
            insurance_type=msg.insurance_type,
            medical_type=msg.medical_type,
            admission=bill.admission,
            discharge=bill.discharge,
            bill_json=bill_json(msg),
            figures=figures,
            settled_at=self.clock(),
            message_time=bill.message_time,
        )
        duplicate = await self.store.commit(
            record,
            msgid=msg.msgid,
            message=MessageRecord(fingerprint, settlement_id, "settle"),
            previous_version=0,
            sign=+1,
        )
        return await self._replay(duplicate, fingerprint) if duplicate else record

    async def _replay(self, record: MessageRecord, fingerprint: str) -> SettlementRecord:
        check_same_payload(record.fingerprint, fingerprint, "msgid")
        settlement = await self.store.get(record.settlement_id)
        if settlement is None:
            raise NotFound(reason="SETTLEMENT_NOT_FOUND", message=f"settlement {record.settlement_id} not found")
        return settlement

    async def cancel(
        self,
        actor: Participant,
        msgid: str,
        fingerprint: str,
        settlement_id: str,
        timeout_s: float,
        action: str = "cancel",
    ) -> SettlementRecord:
        settlement = await self.store.get(settlement_id)
        if settlement is None:
            raise NotFound(reason="SETTLEMENT_NOT_FOUND", message=f"settlement {settlement_id} not found")
        access.may_read_settlement(actor, settlement.hospital_code, settlement.insured_region, settlement_id)
        access.require_hospital(actor, settlement.hospital_code)
        earlier = await self.store.message(int(settlement_id[1:3]), msgid)
        if earlier:
            return await self._replay(earlier, fingerprint)
        if settlement.state != "SETTLED":
            raise FailedPrecondition(
                reason="ALREADY_CANCELLED",
                message=f"settlement {settlement_id} was already cancelled by {settlement.cancel_msgid}",
                metadata={"settlement_id": settlement_id},
            )
        if await self.store.is_closed(settlement.clearing_month):
            raise month_closed(settlement.clearing_month)
        request = agency_pb2.RefundSettlementRequest(
            msgid=msgid,
            settlement_id=settlement_id,
            bill=bill_parse(settlement.bill_json),
            split=split_to(settlement.figures),
        )
        endpoint = self._agency(settlement.insured_region, "settlement_id")
        try:
            await self.agencies.refund_settlement(endpoint, request, timeout_s)
        except DeliveryFailed as failed:
            raise _agency_error(failed, settlement.insured_region) from failed
        updated = cancelled(settlement, msgid, self.clock())
        duplicate = await self.store.commit(
            updated,
            msgid=msgid,
            message=MessageRecord(fingerprint, settlement_id, action),
            previous_version=settlement.version,
            sign=-1,
        )
        return await self._replay(duplicate, fingerprint) if duplicate else updated

    async def reverse(
        self, actor: Participant, msgid: str, fingerprint: str, original_msgid: str, timeout_s: float
    ) -> SettlementRecord:
        original = await self.store.message(self.store.msg_shard(original_msgid), original_msgid)
        if original is None or original.action != "settle":
            raise NotFound(
                reason="ORIGINAL_MESSAGE_NOT_FOUND",
                message=f"no settlement was made under msgid {original_msgid}",
                metadata={"original_msgid": original_msgid},
            )
        return await self.cancel(actor, msgid, fingerprint, original.settlement_id, timeout_s, action="reverse")

    async def get(self, actor: Participant, settlement_id: str) -> SettlementRecord:
        settlement = await self.store.get(settlement_id)
        if settlement is None:
            raise NotFound(reason="SETTLEMENT_NOT_FOUND", message=f"settlement {settlement_id} not found")
        access.may_read_settlement(actor, settlement.hospital_code, settlement.insured_region, settlement_id)
        return settlement

    # ------------------------------------------------------------------------------------ reconcile, clear

    async def reconcile(
        self,
        actor: Participant,
        hospital: str,
        start: date,
        end: date,
        totals: clearing.ReconTotals,
        lines: list[clearing.ReconLine] | None,
    ) -> Reconciliation:
        access.require_hospital(actor, hospital)
        first = datetime.combine(start, time.min, SHANGHAI)
        last = datetime.combine(end + timedelta(days=1), time.min, SHANGHAI)
        records = await self.store.hospital_records(
            hospital, int(first.timestamp() * 1000), int(last.timestamp() * 1000) - 1
        )
        ours = [
            clearing.ReconLine(
                r.settlement_id,
                r.figures.total_fen,
                r.figures.fund_pay_fen,
                r.figures.account_pay_fen,
                r.figures.cash_pay_fen,
            )
            for r in records
            if r.state == "SETTLED"
        ]
        gateway_totals = clearing.totals(ours)
        found = clearing.differences(ours, lines) if lines is not None else []
        return Reconciliation(gateway_totals == totals and not found, gateway_totals, found)

    async def clearing_statement(self, month: str) -> ClearingResult:
        running = await self.store.clearing_totals(month)
        pairs = {
            pair: clearing.PairTotals(pair[0], pair[1], f["count"], f["total"], f["fund"], f["account"], f["cash"])
            for pair, f in running.items()
        }
        recounted = clearing.recount(
            clearing.SettledAmounts(
                r.insured_region,
                r.treatment_region,
                r.figures.total_fen,
                r.figures.fund_pay_fen,
                r.figures.account_pay_fen,
                r.figures.cash_pay_fen,
                1,
            )
            for r in await self.store.month_records(month)
            if r.state == "SETTLED"
        )
        nonzero = {pair: totals for pair, totals in pairs.items() if totals.count or totals.total_fen}
        return ClearingResult(
            clearing.statement(month, nonzero), await self.store.is_closed(month), recounted == nonzero
        )

    async def statement(self, actor: Participant, month: str) -> ClearingResult:
        access.may_read_statement(actor)
        return await self.clearing_statement(month)

    async def close_month(self, actor: Participant, request_id: str, month: str) -> ClearingResult:
        access.require_operator(actor)
        now = self.clock()
        await self.store.close(month, now)
        await AuditTrail(self.store.client).record_operator(
            actor=str(actor), request=request_id, action="close clearing month", object=month, now=now
        )
        return await self.clearing_statement(month)
