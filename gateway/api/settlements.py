"""SettlementService: validate, identify the caller, call the settlement use cases, convert the answer."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from gateway._gen.sigw.v1 import settlement_pb2, settlement_pb2_grpc
from gateway.api.identity import IdentityResolver
from gateway.app.settlements import ClearingResult, SettlementService
from gateway.domain import idnumber
from gateway.domain.settlement import clearing
from gateway.domain.transfer.model import SHANGHAI
from gateway.wire.settlements import (
    FILING_ID,
    MONTH,
    SETTLEMENT_ID,
    TRANSACTION,
    bill_from,
    check_msgid,
    filing_to,
    settlement_to,
    split_to,
)
from gateway.wire.transfers import Violations, fingerprint

Context = Any  # grpc.aio.ServicerContext

# Part of the caller's deadline kept back to commit after the insured region answered.
COMMIT_MARGIN_S = 0.25
AGENCY_TIMEOUT_S = 10.0
MAX_PAGE = 100
_CURSOR = re.compile(r"[0-9]{1,15}")


def _check_settlement_id(v: Violations, value: str) -> None:
    if not SETTLEMENT_ID.fullmatch(value):
        v.add("settlement_id", "not a settlement id (like S03-1a2b3c4d5e6f7a8b)")


def agency_timeout(context: Context) -> float:
    """How long the insured region's agency may take: the caller's deadline less a margin to commit."""
    remaining = context.time_remaining()
    return AGENCY_TIMEOUT_S if remaining is None else min(AGENCY_TIMEOUT_S, remaining - COMMIT_MARGIN_S)


def statement_to(result: ClearingResult) -> settlement_pb2.ClearingStatement:
    s = result.statement
    return settlement_pb2.ClearingStatement(
        month=s.month,
        closed=result.closed,
        recount_matches=result.recount_matches,
        pairs=[
            settlement_pb2.ClearingPair(
                insured_region=p.insured_region,
                treating_region=p.treating_region,
                count=p.count,
                total_fen=p.total_fen,
                fund_pay_fen=p.fund_fen,
                account_pay_fen=p.account_fen,
                cash_pay_fen=p.cash_fen,
                owed_fen=p.owed_fen,
            )
            for p in s.pairs
        ],
        positions=[settlement_pb2.RegionPosition(region=r, net_fen=n) for r, n in sorted(s.net_fen.items())],
    )


def _line(msg: settlement_pb2.ReconLine) -> clearing.ReconLine:
    return clearing.ReconLine(msg.settlement_id, msg.total_fen, msg.fund_pay_fen, msg.account_pay_fen, msg.cash_pay_fen)


def _line_to(line: clearing.ReconLine | None) -> settlement_pb2.ReconLine | None:
    if line is None:
        return None
    return settlement_pb2.ReconLine(
        settlement_id=line.settlement_id,
        total_fen=line.total_fen,
        fund_pay_fen=line.fund_fen,
        account_pay_fen=line.account_fen,
        cash_pay_fen=line.cash_fen,
    )


class SettlementServicer(settlement_pb2_grpc.SettlementServiceServicer):
    def __init__(self, service: SettlementService, identity: IdentityResolver) -> None:
        self.service = service
        self.identity = identity

    def _today(self) -> date:
        return self.service.clock().astimezone(SHANGHAI).date()

    # ------------------------------------------------------------------------------------------- filings

    async def CreateFiling(
        self, request: settlement_pb2.CreateFilingRequest, context: Context
    ) -> settlement_pb2.CreateFilingResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.request_id(request.request_id)
        if request.type not in settlement_pb2.FilingType.values() or request.type == 0:
            v.add("type", "required: one of the FilingType values")
        error = idnumber.validation_error(request.person.id_number)
        if error:
            v.add("person.id_number", error)
        v.region("insured_region", request.insured_region)
        v.region("treatment_region", request.treatment_region)
        valid_from = v.date("valid_from", request.valid_from)
        long_term = request.type in (1, 2, 3)
        valid_until = v.date("valid_until", request.valid_until, required=not long_term)
        if long_term and valid_until:
            v.add("valid_until", "long-term filings are valid until cancelled: leave it empty")
        if valid_from and valid_until and valid_until < valid_from:
            v.add("valid_until", "before valid_from")
        if request.insured_region and request.insured_region == request.treatment_region:
            v.add("treatment_region", "must differ from the insured region")
        v.raise_if_any()
        assert valid_from is not None
        filing = await self.service.create_filing(
            actor,
            request.request_id,
            fingerprint(request),
            filing_type=request.type,
            id_number=request.person.id_number,
            insured_region=request.insured_region,
            treatment_region=request.treatment_region,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        return settlement_pb2.CreateFilingResponse(filing=filing_to(filing))

    async def CancelFiling(
        self, request: settlement_pb2.CancelFilingRequest, context: Context
    ) -> settlement_pb2.CancelFilingResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.request_id(request.request_id)
        if not FILING_ID.fullmatch(request.filing_id):
            v.add("filing_id", "not a filing id (like F03-20260302-8F3A2C1D)")
        v.text("reason", request.reason, limit=500, required=True)
        v.raise_if_any()
        filing = await self.service.cancel_filing(
            actor, request.request_id, fingerprint(request), request.filing_id, request.reason
        )
        return settlement_pb2.CancelFilingResponse(filing=filing_to(filing))

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
        filings, cursor = await self.service.list_filings(
            actor,
            request.insured_region,
            request.id_number or None,
            int(request.page_token) if request.page_token else None,
            request.page_size or 20,
        )
        return settlement_pb2.ListFilingsResponse(
            filings=[filing_to(f) for f in filings], next_page_token=str(cursor) if cursor is not None else ""
        )

    # ------------------------------------------------------------------------------------------- settling

    async def PreSettle(
        self, request: settlement_pb2.PreSettleRequest, context: Context
    ) -> settlement_pb2.PreSettleResponse:
        actor = self.identity.caller(context)
        bill = bill_from(request.bill, self._today())
        figures = await self.service.pre_settle(actor, bill, agency_timeout(context))
        return settlement_pb2.PreSettleResponse(split=split_to(figures))

    async def Settle(self, request: settlement_pb2.SettleRequest, context: Context) -> settlement_pb2.SettleResponse:
        actor = self.identity.caller(context)
        bill = bill_from(request.bill, self._today())
        record = await self.service.settle(actor, bill, fingerprint(request, "bill", "msgid"), agency_timeout(context))
        return settlement_pb2.SettleResponse(settlement=settlement_to(record))

    async def CancelSettlement(
        self, request: settlement_pb2.CancelSettlementRequest, context: Context
    ) -> settlement_pb2.CancelSettlementResponse:
        actor = self.identity.caller(context)
        v = Violations()
        check_msgid(v, "msgid", request.msgid, actor.code or None)
        _check_settlement_id(v, request.settlement_id)
        v.text("reason", request.reason, limit=500)
        v.raise_if_any()
        record = await self.service.cancel(
            actor, request.msgid, fingerprint(request, "msgid"), request.settlement_id, agency_timeout(context)
        )
        return settlement_pb2.CancelSettlementResponse(settlement=settlement_to(record))

    async def ReverseMessage(
        self, request: settlement_pb2.ReverseMessageRequest, context: Context
    ) -> settlement_pb2.ReverseMessageResponse:
        actor = self.identity.caller(context)
        v = Violations()
        check_msgid(v, "msgid", request.msgid, actor.code or None)
        check_msgid(v, "original_msgid", request.original_msgid)
        if request.original_transaction and not TRANSACTION.fullmatch(request.original_transaction):
            v.add("original_transaction", "a transaction code of 1-10 letters or digits")
        v.raise_if_any()
        record = await self.service.reverse(
            actor, request.msgid, fingerprint(request, "msgid"), request.original_msgid, agency_timeout(context)
        )
        return settlement_pb2.ReverseMessageResponse(settlement=settlement_to(record))

    async def GetSettlement(
        self, request: settlement_pb2.GetSettlementRequest, context: Context
    ) -> settlement_pb2.GetSettlementResponse:
        actor = self.identity.caller(context)
        v = Violations()
        _check_settlement_id(v, request.settlement_id)
        v.raise_if_any()
        return settlement_pb2.GetSettlementResponse(
            settlement=settlement_to(await self.service.get(actor, request.settlement_id))
        )

    # --------------------------------------------------------------------------------- reconcile, clear

    async def Reconcile(
        self, request: settlement_pb2.ReconcileRequest, context: Context
    ) -> settlement_pb2.ReconcileResponse:
        actor = self.identity.caller(context)
        v = Violations()
        start = v.date("start_date", request.start_date)
        end = v.date("end_date", request.end_date)
        if start and end and (end < start or (end - start).days > 92):
            v.add("end_date", "must be on or after start_date, at most 92 days later")
        t = request.totals
        for name in ("count", "total_fen", "fund_pay_fen", "account_pay_fen", "cash_pay_fen"):
            v.amount(f"totals.{name}", getattr(t, name))
        if len(request.lines) > 100_000:
            v.add("lines", "at most 100000 lines; reconcile a shorter period")
        v.raise_if_any()
        assert start and end
        totals = clearing.ReconTotals(t.count, t.total_fen, t.fund_pay_fen, t.account_pay_fen, t.cash_pay_fen)
        lines = [_line(line) for line in request.lines] if request.lines else None
        result = await self.service.reconcile(actor, request.hospital_code, start, end, totals, lines)
        g = result.gateway_totals
        return settlement_pb2.ReconcileResponse(
            matched=result.matched,
            gateway_totals=settlement_pb2.ReconTotals(
                count=g.count,
                total_fen=g.total_fen,
                fund_pay_fen=g.fund_fen,
                account_pay_fen=g.account_fen,
                cash_pay_fen=g.cash_fen,
            ),
            differences=[
                settlement_pb2.ReconDifference(
                    settlement_id=d.settlement_id,
                    kind=settlement_pb2.DifferenceKind.Value(f"DIFFERENCE_KIND_{d.kind}"),
                    gateway=_line_to(d.gateway),
                    hospital=_line_to(d.hospital),
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
        if not MONTH.fullmatch(request.month):
            v.add("month", "must be YYYY-MM")
        elif request.month > f"{self._today():%Y-%m}":
            v.add("month", "a month that has not begun cannot be closed")
        v.raise_if_any()
        return settlement_pb2.CloseMonthResponse(
            statement=statement_to(await self.service.close_month(actor, request.request_id, request.month))
        )

    async def GetClearingStatement(
        self, request: settlement_pb2.GetClearingStatementRequest, context: Context
    ) -> settlement_pb2.GetClearingStatementResponse:
        actor = self.identity.caller(context)
        v = Violations()
        if not MONTH.fullmatch(request.month):
            v.add("month", "must be YYYY-MM")
        v.raise_if_any()
        return settlement_pb2.GetClearingStatementResponse(
            statement=statement_to(await self.service.statement(actor, request.month))
        )
