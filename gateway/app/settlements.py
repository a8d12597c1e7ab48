"""Non-local settlement use cases (Art. 23): (pre-)settlement through the insured region's agency, cancellation,
reversal and reading.

A settlement needs the insured region's answer now: sigw calls its agency within the caller's deadline, then
commits the answer atomically with the msgid record and the clearing totals. If the agency cannot be reached
nothing is recorded and the hospital gets UNAVAILABLE with RetryInfo; the agency dedups on msgid, so a retry
settles once.

Each outcome (settled, cancelled, reversed, or a settlement the insured region did not make) is told to
``on_outcome`` once, whether the hospital called over ``sigw.v1`` or the national interface (metrics); a replay
of an earlier answer is not a new outcome.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from gateway.app.filings import FilingService
from gateway.app.idempotency import RequestKey, replay
from gateway.app.ports import AgencyCallFailed, AgencyGateway, Clock, SettlementRepository, agency_error
from gateway.domain import access, ids
from gateway.domain.errors import FailedPrecondition, FieldViolation, NotFound, Unavailable, invalid
from gateway.domain.idempotency import IdempotencyRecord
from gateway.domain.participants import Participant
from gateway.domain.settlement.records import (
    Bill,
    Figures,
    SettlementRecord,
    SettlementState,
    cancelled,
    month_closed,
)
from gateway.domain.settlement.split import FilingStatus

__all__ = ["MIN_AGENCY_TIMEOUT_S", "MOVES_MONEY", "Outcome", "SettlementOutcome", "SettlementService"]

MIN_AGENCY_TIMEOUT_S = 0.05
"""Less time than this left of the caller's deadline: do not even ask the insured region."""
VOID_TIMEOUT_S = 5.0
"""How long taking back a settlement sigw could not record may take (the hospital's own deadline may be over)."""

log = logging.getLogger("sigw.settlements")


class Outcome(enum.StrEnum):
    SETTLED = "settled"
    CANCELLED = "cancelled"
    """Cancelled (撤销) by its settlement id."""
    REVERSED = "reversed"
    """Reversed (冲正) by the msgid of the message that made it."""
    REFUSED = "refused"
    """The insured region's agency refused the settlement: nothing settled."""
    UNAVAILABLE = "unavailable"
    """The insured region's agency did not answer in time: nothing settled (the hospital may retry)."""
    INCONSISTENT = "inconsistent"
    """The insured region's answer did not add up to the bill: nothing settled."""


MOVES_MONEY = frozenset({Outcome.SETTLED, Outcome.CANCELLED, Outcome.REVERSED})
"""The outcomes that move money between the regions (the others settled nothing)."""


@dataclass(frozen=True)
class SettlementOutcome:
    """What became of one settlement message, by region pair (no person, hospital or message in it)."""

    outcome: Outcome
    insured_region: str
    treatment_region: str
    fund_fen: int = 0
    """The fund's part settled (``SETTLED``) or given back (``CANCELLED``, ``REVERSED``); 0 otherwise."""


def _ignore(_: SettlementOutcome) -> None:
    pass


class SettlementService:
    def __init__(
        self,
        store: SettlementRepository,
        filings: FilingService,
        agencies: AgencyGateway,
        clock: Clock,
        *,
        on_outcome: Callable[[SettlementOutcome], None] = _ignore,
    ) -> None:
        """``on_outcome`` is told each settlement made, cancelled or reversed, and each one the insured region did
        not make (metrics)."""
        self.store = store
        self.filings = filings
        self.agencies = agencies
        self.clock = clock
        self.on_outcome = on_outcome

    def _told(self, outcome: Outcome, bill: Bill, fund_fen: int = 0) -> None:
        self.on_outcome(SettlementOutcome(outcome, bill.insured_region, bill.treatment_region, fund_fen))

    async def _replay(self, record: IdempotencyRecord, key: RequestKey) -> SettlementRecord:
        return await replay(record, key, self.store.get, access.settlement_not_found)

    def _check_bill(self, actor: Participant, bill: Bill) -> None:
        access.require_hospital(actor, bill.hospital_code, bill.treatment_region)
        self.require_non_local(bill.treatment_region, bill.insured_region, "bill.insured_region")

    def require_non_local(self, treatment_region: str, insured_region: str, field: str) -> None:
        """Care of another region's insured person, whose healthcare agency sigw can ask (``field`` names the
        insured region in the request)."""
        if treatment_region == insured_region:
            raise FailedPrecondition(
                reason="NOT_NON_LOCAL", message="the insured region is the place of treatment: settle locally"
            )
        if not self.agencies.has_healthcare_agency(insured_region):
            raise invalid([FieldViolation(field, f"unknown region {insured_region}")], reason="UNKNOWN_REGION")

    async def _compute(
        self, bill: Bill, status: FilingStatus, *, commit: bool, settlement_id: str, timeout_s: float
    ) -> Figures:
        if timeout_s < MIN_AGENCY_TIMEOUT_S:
            raise Unavailable(
                reason="DEADLINE_TOO_SHORT", message="too little time left to ask the insured region", retry_after_s=0.0
            )
        try:
            figures = await self.agencies.compute_settlement(
                bill, status, commit=commit, settlement_id=settlement_id, timeout_s=timeout_s
            )
        except AgencyCallFailed as failed:
            error = agency_error(failed, bill.insured_region, "the settlement", "insured_region")
            if commit:
                self._told(Outcome.REFUSED if isinstance(error, FailedPrecondition) else Outcome.UNAVAILABLE, bill)
            raise error from failed
        if not figures.adds_up_to(bill.total_fen):
            if commit:
                self._told(Outcome.INCONSISTENT, bill)
                await self._void(SettlementRecord(settlement_id, bill, figures, settled_at=self.clock()))
            raise Unavailable(
                reason="AGENCY_ANSWER_INCONSISTENT",
                message="the insured region's answer does not add up to the bill; nothing settled",
                retry_after_s=5.0,
            )
        return figures

    async def _void(self, record: SettlementRecord) -> None:
        """The insured region committed a settlement sigw cannot record: take it back (``RefundSettlement`` under
        msgid ``void:<settlement id>``), so the region's books hold only what sigw holds, and the bill's msgid is
        free for the hospital's retry. Best effort: when it fails the region keeps it, and the operator is told in
        the log (without personal data). Only where sigw knows it recorded nothing: a store that did not answer
        may have written it, and the hospital's retry of the same msgid reconciles that case."""
        try:
            await self.agencies.refund_settlement(f"void:{record.settlement_id}", record, VOID_TIMEOUT_S)
        except AgencyCallFailed as failed:
            log.error(
                "settlement %s: committed at %s but not recorded here, and taking it back failed (%s): reconcile it",
                record.settlement_id,
                record.insured_region,
                failed.code,
            )

    async def pre_settle(self, actor: Participant, bill: Bill, timeout_s: float) -> Figures:
        self._check_bill(actor, bill)
        status = await self.filings.status_for(bill)
        return await self._compute(bill, status, commit=False, settlement_id="", timeout_s=timeout_s)

    async def settle(self, actor: Participant, bill: Bill, key: RequestKey, timeout_s: float) -> SettlementRecord:
        """``key`` is the bill's msgid. One round trip reads what the bill needs, the insured region answers, one
        more commits (nothing is written before it). A stay (``visit_id``) is the hospital's own numbering: two
        hospitals' stays never meet, so no claim on one is needed."""
        self._check_bill(actor, bill)
        context = await self.store.prepare(bill)
        if context.earlier:
            return await self._replay(context.earlier, key)
        if context.month_closed:
            raise month_closed(bill.clearing_month)
        settlement_id = ids.settlement_id(self.store.msg_shard(bill.msgid), bill.msgid)
        status = self.filings.status_among(bill, context.filings)
        figures = await self._compute(bill, status, commit=True, settlement_id=settlement_id, timeout_s=timeout_s)
        record = SettlementRecord(settlement_id=settlement_id, bill=bill, figures=figures, settled_at=self.clock())
        try:
            duplicate = await self.store.commit(
                record,
                key=bill.msgid,
                idempotency=IdempotencyRecord(key.fingerprint, settlement_id, "settle"),
                previous_version=0,
                sign=+1,
            )
        except FailedPrecondition:  # refused, nothing written (the month closed meanwhile)
            await self._void(record)
            raise
        if duplicate:
            return await self._replay(duplicate, key)
        self._told(Outcome.SETTLED, bill, figures.fund_pay_fen)
        return record

    async def cancel(
        self, actor: Participant, key: RequestKey, settlement_id: str, timeout_s: float, action: str = "cancel"
    ) -> SettlementRecord:
        """Cancel (撤销) a settlement by its id; ``key`` is the cancelling message's msgid."""
        settlement = await self.get(actor, settlement_id)
        access.require_hospital(actor, settlement.hospital_code)
        earlier = await self.store.recorded(ids.shard_of(settlement_id), key.key)
        if earlier:
            return await self._replay(earlier, key)
        if settlement.state is not SettlementState.SETTLED:
            raise FailedPrecondition(
                reason="ALREADY_CANCELLED",
                message=f"settlement {settlement_id} was already cancelled by {settlement.cancel_msgid}",
                metadata={"settlement_id": settlement_id},
            )
        if await self.store.is_closed(settlement.clearing_month):
            raise month_closed(settlement.clearing_month)
        try:
            await self.agencies.refund_settlement(key.key, settlement, timeout_s)
        except AgencyCallFailed as failed:
            raise agency_error(failed, settlement.insured_region, "the refund", "insured_region") from failed
        updated = cancelled(settlement, key.key, self.clock())
        duplicate = await self.store.commit(
            updated,
            key=key.key,
            idempotency=IdempotencyRecord(key.fingerprint, settlement_id, action),
            previous_version=settlement.version,
            sign=-1,
        )
        if duplicate:
            return await self._replay(duplicate, key)
        outcome = Outcome.REVERSED if action == "reverse" else Outcome.CANCELLED
        self._told(outcome, settlement.bill, settlement.figures.fund_pay_fen)
        return updated

    async def reverse(
        self, actor: Participant, key: RequestKey, original_msgid: str, timeout_s: float
    ) -> SettlementRecord:
        """Reverse (冲正) the settlement a message made, by that message's msgid. A hospital reverses its own
        messages only: another's msgid gets the same answer as none, without being looked up (so neither the answer
        nor its time tells whether it exists)."""
        unknown = NotFound(
            reason="ORIGINAL_MESSAGE_NOT_FOUND",
            message=f"no settlement was made under msgid {original_msgid}",
            metadata={"original_msgid": original_msgid},
        )
        access.require_hospital(actor, actor.code)
        if not original_msgid.startswith(actor.code):
            raise unknown
        original = await self.store.made_by(original_msgid)
        if original is None or original.hospital_code != actor.code:
            raise unknown
        return await self.cancel(actor, key, original.settlement_id, timeout_s, action="reverse")

    async def get(self, actor: Participant, settlement_id: str) -> SettlementRecord:
        settlement = await self.store.get(settlement_id)
        if settlement is None:
            raise access.settlement_not_found(settlement_id)
        access.may_read_settlement(actor, settlement.hospital_code, settlement.insured_region, settlement_id)
        return settlement
