"""SettlementService: identify the caller, validate the request, call one use case, convert the answer. And the
settlement and clearing metrics, which the use cases feed whichever interface (``sigw.v1`` or national) called."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, TypeAlias

import grpc
from prometheus_client import CollectorRegistry, Counter

from gateway._gen.sigw.v1 import settlement_pb2, settlement_pb2_grpc
from gateway.api.identity import IdentityResolver
from gateway.app.clearing import ClearingResult, ClearingService
from gateway.app.filings import FilingService
from gateway.app.idempotency import RequestKey
from gateway.app.settlements import MOVES_MONEY, SettlementOutcome, SettlementService
from gateway.domain import idnumber, ids
from gateway.domain.calendar import SHANGHAI
from gateway.domain.settlement import clearing, filing, reconciliation
from gateway.domain.settlement.records import FilingType
from gateway.wire import settlements as wire
from gateway.wire.validation import MAX_NOTE, Violations, fingerprint

__all__ = ["SettlementMetrics", "SettlementServicer", "agency_timeout"]

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
# Part of the caller's deadline kept back to commit after the insured region answered.
COMMIT_MARGIN_S = 0.25
AGENCY_TIMEOUT_S = 10.0
MAX_PAGE = 100
MAX_LINES = 100_000
_CURSOR = re.compile(r"[0-9]{1,15}")


class SettlementMetrics:
    """``sigw_settlements_total{insured_region,treatment_region,outcome}``, the fund's money moved,
    ``sigw_settlement_fund_fen_total{insured_region,treatment_region,outcome}`` (integer fen; settled, cancelled
    or reversed: the net is settled less the other two), and clearing: ``sigw_clearing_months_closed_total``,
    ``sigw_clearing_recounts_total{outcome}`` (matches, differs) and the hospitals' answers to a month's clearing
    details, ``sigw_clearing_confirmations_total{outcome}`` (confirmed, disputed). Regions are the registry's
    codes; no person, hospital or message is a label."""

    def __init__(self, registry: CollectorRegistry) -> None:
        pair = ["insured_region", "treatment_region"]
        self.settlements = Counter(
            "sigw_settlements_total",
            "Non-local settlement messages by region pair and outcome (settled, cancelled, reversed; refused, "
            "unavailable, inconsistent: the insured region settled nothing).",
            [*pair, "outcome"],
            registry=registry,
        )
        self.fund_fen = Counter(
            "sigw_settlement_fund_fen_total",
            "The fund's part of settlements (in fen) settled, cancelled or reversed, by region pair.",
            [*pair, "outcome"],
            registry=registry,
        )
        self.months_closed = Counter(
            "sigw_clearing_months_closed_total",
            "Clearing months closed by an operator (closing a closed month again counts too).",
            registry=registry,
        )
        self.recounts = Counter(
            "sigw_clearing_recounts_total",
            "Recounts of a clearing month from its settlements, by whether they matched the running totals.",
            ["outcome"],
            registry=registry,
        )
        self.confirmations = Counter(
            "sigw_clearing_confirmations_total",
            "Settlements hospitals confirmed or disputed in their clearing confirmations (national 3261; a "
            "settlement confirmed again counts again).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("matches", "differs"):  # both series from the start, so that the first one counts
            self.recounts.labels(outcome)
        for outcome in ("confirmed", "disputed"):
            self.confirmations.labels(outcome)

    def settlement(self, told: SettlementOutcome) -> None:
        labels = (told.insured_region, told.treatment_region, told.outcome.value)
        self.settlements.labels(*labels).inc()
        if told.outcome in MOVES_MONEY:
            self.fund_fen.labels(*labels).inc(told.fund_fen)

    def month_closed(self, _month: str) -> None:
        self.months_closed.inc()

    def recounted(self, matches: bool) -> None:
        self.recounts.labels("matches" if matches else "differs").inc()

    def confirmed(self, confirmed: int, disputed: int) -> None:
        self.confirmations.labels("confirmed").inc(confirmed)
        self.confirmations.labels("disputed").inc(disputed)


def agency_timeout(context: Context) -> float:
    """How long an agency may take: the caller's deadline less a margin to commit."""
    remaining = context.time_remaining()
    return AGENCY_TIMEOUT_S if remaining is None else min(AGENCY_TIMEOUT_S, remaining - COMMIT_MARGIN_S)


def _check_settlement_id(v: Violations, value: str) -> None:
    if not ids.SETTLEMENT_ID.fullmatch(value):
        v.add("settlement_id", "not a settlement id (like S03-1a2b3c4d5e6f7a8b)")


def _statement(result: ClearingResult) -> settlement_pb2.ClearingStatement:
    return wire.statement_to(result.statement, closed=result.closed)


class SettlementServicer(settlement_pb2_grpc.SettlementServiceServicer):
    def __init__(
        self,
        settlements: SettlementService,
        filings: FilingService,
        clearing_service: ClearingService,
        identity: IdentityResolver,
    ) -> None:
        self.settlements = settlements
        self.filings = filings
        self.clearing = clearing_service
        self.identity = identity

    def _now(self) -> datetime:
        return self.settlements.clock().astimezone(SHANGHAI)

    def _today(self) -> date:
        return self._now().date()

    # ------------------------------------------------------------------------------------------- filings

    async def CreateFiling(
        self, request: settlement_pb2.CreateFilingRequest, context: Context
    ) -> settlement_pb2.CreateFilingResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.request_id(request.request_id)
        known_type = request.type in FilingType._value2member_map_
        if not known_type:
            v.add("type", "required: one of the FilingType values")
        error = idnumber.validation_error(request.person.id_number)
        if error:
            v.add("person.id_number", error)
        v.region("insured_region", request.insured_region)
        v.region("treatment_region", request.treatment_region)
        valid_from = v.date("valid_from", request.valid_from)
        valid_until = v.date("valid_until", request.valid_until, required=False)
        until = request.valid_until
        if known_type:
            for problem in filing.filing_errors(
                FilingType(request.type),
                request.insured_region,
                request.treatment_region,
                valid_from,
                valid_until,
                until_given=bool(until.year or until.month or until.day),
            ):
                v.add(problem.field, problem.description)
        v.raise_if_any()
        assert valid_from is not None
        created = await self.filings.create(
            actor,
            RequestKey(request.request_id, fingerprint(request)),
            filing_type=FilingType(request.type),
            id_number=request.person.id_number,
            insured_region=request.insured_region,
            treatment_region=request.treatment_region,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        return settlement_pb2.CreateFilingResponse(filing=wire.filing_to(created))

    async def CancelFiling(
        self, request: settlement_pb2.CancelFilingRequest, context: Context
    ) -> settlement_pb2.CancelFilingResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.request_id(request.request_id)
        if not ids.FILING_ID.fullmatch(request.filing_id):
            v.add("filing_id", "not a filing id (like F03-20260302-8F3A2C1D)")
        v.text("reason", request.reason, limit=MAX_NOTE, required=True)
        v.raise_if_any()
        cancelled = await self.filings.cancel(
            actor, RequestKey(request.request_id, fingerprint(request)), request.filing_id, request.reason
        )
        return settlement_pb2.CancelFilingResponse(filing=wire.filing_to(cancelled))

    async def ListFilings(
        self, request: settlement_pb2.ListFilingsRequest, context: Context
    ) -> settlement_pb2.ListFilingsResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.region("insured_region", request.insured_region)
        if request.id_number:
            error = idnumber.validation_error(request.id_number)
            if error:
                v.add("id_number", error)
        if not 0 <= request.page_size <= MAX_PAGE:
            v.add("page_size", f"must be 0-{MAX_PAGE}")
        if request.page_token and not _CURSOR.fullmatch(request.page_token):
            v.add("page_token", "not a token from a previous page")
        v.raise_if_any()
        found, cursor = await self.filings.list(
            actor,
            request.insured_region,
            request.id_number or None,
            int(request.page_token) if request.page_token else None,
            request.page_size or 20,
        )
        return settlement_pb2.ListFilingsResponse(
            filings=[wire.filing_to(f) for f in found], next_page_token=str(cursor) if cursor is not None else ""
        )

    # ------------------------------------------------------------------------------------------- settling

    async def PreSettle(
        self, request: settlement_pb2.PreSettleRequest, context: Context
    ) -> settlement_pb2.PreSettleResponse:
        actor = self.identity.caller(context)
        bill = wire.bill_from(request.bill, self._now())
        figures = await self.settlements.pre_settle(actor, bill, agency_timeout(context))
        return settlement_pb2.PreSettleResponse(split=wire.split_to(figures))

    async def Settle(self, request: settlement_pb2.SettleRequest, context: Context) -> settlement_pb2.SettleResponse:
        actor = self.identity.caller(context)
        bill = wire.bill_from(request.bill, self._now())
        key = RequestKey(bill.msgid, fingerprint(request, "bill", "msgid"), "msgid")
        record = await self.settlements.settle(actor, bill, key, agency_timeout(context))
        return settlement_pb2.SettleResponse(settlement=wire.settlement_to(record))

    async def CancelSettlement(
        self, request: settlement_pb2.CancelSettlementRequest, context: Context
    ) -> settlement_pb2.CancelSettlementResponse:
        actor = self.identity.caller(context)
        v = Violations()
        wire.check_msgid(v, "msgid", request.msgid, actor.code or None)
        _check_settlement_id(v, request.settlement_id)
        v.text("reason", request.reason, limit=MAX_NOTE)
        v.raise_if_any()
        key = RequestKey(request.msgid, fingerprint(request, "msgid"), "msgid")
        record = await self.settlements.cancel(actor, key, request.settlement_id, agency_timeout(context))
        return settlement_pb2.CancelSettlementResponse(settlement=wire.settlement_to(record))

    async def ReverseMessage(
        self, request: settlement_pb2.ReverseMessageRequest, context: Context
    ) -> settlement_pb2.ReverseMessageResponse:
        actor = self.identity.caller(context)
        v = Violations()
        wire.check_msgid(v, "msgid", request.msgid, actor.code or None)
        wire.check_msgid(v, "original_msgid", request.original_msgid)
        if request.original_transaction and not ids.TRANSACTION.fullmatch(request.original_transaction):
            v.add("original_transaction", "a transaction code of 1-10 letters or digits")
        v.raise_if_any()
        key = RequestKey(request.msgid, fingerprint(request, "msgid"), "msgid")
        record = await self.settlements.reverse(actor, key, request.original_msgid, agency_timeout(context))
        return settlement_pb2.ReverseMessageResponse(settlement=wire.settlement_to(record))

    async def GetSettlement(
        self, request: settlement_pb2.GetSettlementRequest, context: Context
    ) -> settlement_pb2.GetSettlementResponse:
        actor = self.identity.caller(context)
        v = Violations()
        _check_settlement_id(v, request.settlement_id)
        v.raise_if_any()
        record = await self.settlements.get(actor, request.settlement_id)
        return settlement_pb2.GetSettlementResponse(settlement=wire.settlement_to(record))

    # --------------------------------------------------------------------------------- reconcile, clear

    async def Reconcile(
        self, request: settlement_pb2.ReconcileRequest, context: Context
    ) -> settlement_pb2.ReconcileResponse:
        actor = self.identity.caller(context)
        v = Violations()
        start = v.date("start_date", request.start_date)
        end = v.date("end_date", request.end_date)
        if start and end:
            for problem in reconciliation.period_errors(start, end):
                v.add(problem.field, problem.description)
        t = request.totals
        for name in ("count", "total_fen", "fund_pay_fen", "account_pay_fen", "cash_pay_fen"):
            v.amount(f"totals.{name}", getattr(t, name))
        if len(request.lines) > MAX_LINES:
            v.add("lines", f"at most {MAX_LINES} lines; reconcile a shorter period")
        v.raise_if_any()
        assert start and end
        totals = reconciliation.ReconTotals(t.count, t.total_fen, t.fund_pay_fen, t.account_pay_fen, t.cash_pay_fen)
        lines = [wire.recon_line(line) for line in request.lines] if request.lines else None
        result = await self.clearing.reconcile(actor, request.hospital_code, start, end, totals, lines)
        return settlement_pb2.ReconcileResponse(
            matched=result.matched,
            gateway_totals=wire.recon_totals_to(result.gateway_totals),
            differences=[
                settlement_pb2.ReconDifference(
                    settlement_id=d.settlement_id,
                    kind=settlement_pb2.DifferenceKind.Value(f"DIFFERENCE_KIND_{d.kind}"),
                    gateway=wire.recon_line_to(d.gateway),
                    hospital=wire.recon_line_to(d.hospital),
                )
                for d in result.differences
            ],
        )

    async def CloseMonth(
        self, request: settlement_pb2.CloseMonthRequest, context: Context
    ) -> settlement_pb2.CloseMonthResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.request_id(request.request_id)
        for problem in clearing.close_errors(request.month, f"{self._today():%Y-%m}"):
            v.add(problem.field, problem.description)
        v.raise_if_any()
        result = await self.clearing.close_month(actor, request.request_id, request.month)
        return settlement_pb2.CloseMonthResponse(statement=_statement(result))

    async def GetClearingStatement(
        self, request: settlement_pb2.GetClearingStatementRequest, context: Context
    ) -> settlement_pb2.GetClearingStatementResponse:
        actor = self.identity.caller(context)
        v = Violations()
        if not wire.MONTH.fullmatch(request.month):
            v.add("month", "must be YYYY-MM")
        v.raise_if_any()
        result = await self.clearing.statement(actor, request.month)
        return settlement_pb2.GetClearingStatementResponse(statement=_statement(result))

    async def RecountMonth(
        self, request: settlement_pb2.RecountMonthRequest, context: Context
    ) -> settlement_pb2.RecountMonthResponse:
        actor = self.identity.caller(context)
        v = Violations()
        if not wire.MONTH.fullmatch(request.month):
            v.add("month", "must be YYYY-MM")
        v.raise_if_any()
        recount = await self.clearing.recount(actor, request.month)
        outcome = settlement_pb2.RECOUNT_OUTCOME_MATCHES if recount.matches else settlement_pb2.RECOUNT_OUTCOME_DIFFERS
        return settlement_pb2.RecountMonthResponse(
            statement=wire.statement_to(recount.result.statement, closed=recount.result.closed, recount=outcome),
            settlements_counted=recount.counted,
            recounted_pairs=[wire.pair_to(p) for _, p in sorted(recount.differing.items())],
        )
