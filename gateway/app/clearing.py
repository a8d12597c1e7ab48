"""Clearing (清算) and reconciliation (对账) use cases (Art. 23): a month's statement from its running totals,
closing a month, recounting it from the stored settlements, and a hospital's reconciliation of a period.

Each month closed and each recount's outcome are told to ``on_closed`` and ``on_recounted`` (metrics)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from gateway.app.ports import Clock, OperatorAudit, SettlementRepository
from gateway.domain import access
from gateway.domain.calendar import SHANGHAI
from gateway.domain.participants import Participant
from gateway.domain.settlement import clearing, reconciliation
from gateway.domain.settlement.records import SettlementRecord, SettlementState

__all__ = ["ClearingResult", "ClearingService", "Reconciliation", "Recount"]


@dataclass(frozen=True)
class Reconciliation:
    matched: bool
    gateway_totals: reconciliation.ReconTotals
    differences: list[reconciliation.Difference[reconciliation.ReconLine]]


@dataclass(frozen=True)
class ClearingResult:
    statement: clearing.Statement
    closed: bool


@dataclass(frozen=True)
class Recount:
    """A month added up again from its stored settlements, against its running totals."""

    result: ClearingResult
    counted: int
    """Settlements added up (settled, not cancelled)."""
    differing: dict[tuple[str, str], clearing.PairTotals]
    """The recount's own totals of each pair whose running totals differ (a pair missing from one side counts
    as zero there); empty when the recount matches."""

    @property
    def matches(self) -> bool:
        return not self.differing


def _line(r: SettlementRecord) -> reconciliation.ReconLine:
    f = r.figures
    return reconciliation.ReconLine(r.settlement_id, f.total_fen, f.fund_pay_fen, f.account_pay_fen, f.cash_pay_fen)


def _ignore(_: object) -> None:
    pass


class ClearingService:
    def __init__(
        self,
        store: SettlementRepository,
        audit: OperatorAudit,
        clock: Clock,
        *,
        on_closed: Callable[[str], None] = _ignore,
        on_recounted: Callable[[bool], None] = _ignore,
    ) -> None:
        """``on_closed(month)`` is called for each month an operator closes (also again), ``on_recounted(matches)``
        for each recount, with whether it matched the running totals."""
        self.store = store
        self.audit = audit
        self.clock = clock
        self.on_closed = on_closed
        self.on_recounted = on_recounted

    async def reconcile(
        self,
        actor: Participant,
        hospital: str,
        start: date,
        end: date,
        totals: reconciliation.ReconTotals,
        lines: list[reconciliation.ReconLine] | None,
        where: Callable[[SettlementRecord], bool] | None = None,
    ) -> Reconciliation:
        """The hospital's totals (and lines) for ``start``..``end`` against the gateway's settled records (those
        ``where`` admits, when given)."""
        access.require_hospital(actor, hospital)
        first = datetime.combine(start, time.min, SHANGHAI)
        after = datetime.combine(end + timedelta(days=1), time.min, SHANGHAI)
        records = await self.store.hospital_records(hospital, first, after)
        ours = [_line(r) for r in records if r.state is SettlementState.SETTLED and (where is None or where(r))]
        gateway_totals = reconciliation.totals(ours)
        found = reconciliation.differences(ours, lines) if lines is not None else []
        return Reconciliation(gateway_totals == totals and not found, gateway_totals, found)

    async def _running(self, month: str) -> dict[tuple[str, str], clearing.PairTotals]:
        running = await self.store.clearing_totals(month)
        return {pair: totals for pair, totals in running.items() if not totals.zero}

    async def _statement(self, month: str) -> ClearingResult:
        """The statement from the running totals (read in one round trip, whatever the month holds)."""
        return ClearingResult(clearing.statement(month, await self._running(month)), await self.store.is_closed(month))

    async def statement(self, actor: Participant, month: str) -> ClearingResult:
        access.may_read_statement(actor)
        return await self._statement(month)

    async def close_month(self, actor: Participant, request_id: str, month: str) -> ClearingResult:
        """Freeze ``month`` for good (idempotent: closing a closed month changes nothing) and state it."""
        access.require_operator(actor)
        now = self.clock()
        await self.store.close(month, now)
        await self.audit.record(actor, request_id, "close clearing month", month, now)
        self.on_closed(month)
        return await self._statement(month)

    async def recount(self, actor: Participant, month: str) -> Recount:
        """Add the month's settlements up again, in chunks, and compare with its running totals (read after the
        scan: exact for a closed month; an open one may move meanwhile)."""
        access.require_operator(actor)
        recounted: dict[tuple[str, str], clearing.PairTotals] = {}
        counted = 0
        async for chunk in self.store.month_amounts(month):
            recounted = clearing.recount(chunk, recounted)
            counted += len(chunk)
        result = await self._statement(month)
        running = {(p.insured_region, p.treating_region): p for p in result.statement.pairs}
        differing = {
            pair: recounted.get(pair) or clearing.PairTotals(pair[0], pair[1], 0, 0, 0, 0, 0)
            for pair in running.keys() | recounted.keys()
            if running.get(pair) != recounted.get(pair)
        }
        recount = Recount(result, counted, differing)
        self.on_recounted(recount.matches)
        return recount
