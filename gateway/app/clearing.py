"""Clearing (清算) and reconciliation (对账) use cases (Art. 23): a month's statement with its recount, closing a
month, and a hospital's reconciliation of a period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from gateway.app.ports import Clock, OperatorAudit, SettlementRepository
from gateway.domain import access
from gateway.domain.calendar import SHANGHAI
from gateway.domain.participants import Participant
from gateway.domain.settlement import clearing, reconciliation
from gateway.domain.settlement.records import SettlementRecord, SettlementState

__all__ = ["ClearingResult", "ClearingService", "Reconciliation"]


@dataclass(frozen=True)
class Reconciliation:
    matched: bool
    gateway_totals: reconciliation.ReconTotals
    differences: list[reconciliation.Difference]


@dataclass(frozen=True)
class ClearingResult:
    statement: clearing.Statement
    closed: bool
    recount_matches: bool


def _line(r: SettlementRecord) -> reconciliation.ReconLine:
    f = r.figures
    return reconciliation.ReconLine(r.settlement_id, f.total_fen, f.fund_pay_fen, f.account_pay_fen, f.cash_pay_fen)


def _amounts(r: SettlementRecord) -> clearing.SettledAmounts:
    f = r.figures
    return clearing.SettledAmounts(
        r.insured_region, r.treatment_region, f.total_fen, f.fund_pay_fen, f.account_pay_fen, f.cash_pay_fen, 1
    )


class ClearingService:
    def __init__(self, store: SettlementRepository, audit: OperatorAudit, clock: Clock) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock

    async def reconcile(
        self,
        actor: Participant,
        hospital: str,
        start: date,
        end: date,
        totals: reconciliation.ReconTotals,
        lines: list[reconciliation.ReconLine] | None,
    ) -> Reconciliation:
        """The hospital's totals (and lines) for ``start``..``end`` against the gateway's settled records."""
        access.require_hospital(actor, hospital)
        first = datetime.combine(start, time.min, SHANGHAI)
        after = datetime.combine(end + timedelta(days=1), time.min, SHANGHAI)
        records = await self.store.hospital_records(hospital, first, after)
        ours = [_line(r) for r in records if r.state is SettlementState.SETTLED]
        gateway_totals = reconciliation.totals(ours)
        found = reconciliation.differences(ours, lines) if lines is not None else []
        return Reconciliation(gateway_totals == totals and not found, gateway_totals, found)

    async def _statement(self, month: str) -> ClearingResult:
        running = await self.store.clearing_totals(month)
        recounted = clearing.recount(
            _amounts(r) for r in await self.store.month_records(month) if r.state is SettlementState.SETTLED
        )
        nonzero = {pair: totals for pair, totals in running.items() if totals.count or totals.total_fen}
        return ClearingResult(
            clearing.statement(month, nonzero), await self.store.is_closed(month), recounted == nonzero
        )

    async def statement(self, actor: Participant, month: str) -> ClearingResult:
        access.may_read_statement(actor)
        return await self._statement(month)

    async def close_month(self, actor: Participant, request_id: str, month: str) -> ClearingResult:
        """Freeze ``month`` for good (idempotent: closing a closed month changes nothing) and state it."""
        access.require_operator(actor)
        now = self.clock()
        await self.store.close(month, now)
        await self.audit.record(actor, request_id, "close clearing month", month, now)
        return await self._statement(month)
