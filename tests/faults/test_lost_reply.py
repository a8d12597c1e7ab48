"""A settlement whose reply is lost on its way back to the hospital: the gateway committed it, the hospital's call
failed (UNAVAILABLE). The hospital retries with the same msgid and gets the committed settlement; the insured
region's agency booked it once and the gateway has it once."""

from __future__ import annotations

import grpc
import pytest

from adapters.simulated_agency import SimulatedAgency
from gateway._gen.sigw.v1 import agency_pb2, common_pb2, settlement_pb2, settlement_pb2_grpc
from gateway.domain.participants import AgencyType
from tests.conftest import FakeClock, start_demo
from tests.faults.proxy import Faults, TcpProxy
from tests.faults.support import report
from tests.integration.test_settlement import HOSPITAL, ME, WORKED, bill, file

P = settlement_pb2


def reconcile(totals: P.ReconTotals | None = None) -> P.ReconcileRequest:
    """The hospital's reconciliation for March 2026 (the demo clock's month)."""
    return P.ReconcileRequest(
        hospital_code=HOSPITAL,
        start_date=common_pb2.Date(year=2026, month=3, day=1),
        end_date=common_pb2.Date(year=2026, month=3, day=31),
        totals=totals,
    )


def totals(s: P.Settlement) -> P.ReconTotals:
    return P.ReconTotals(
        count=1,
        total_fen=s.split.total_fen,
        fund_pay_fen=s.split.fund_pay_fen,
        account_pay_fen=s.split.account_pay_fen,
        cash_pay_fen=s.split.cash_pay_fen,
    )


@pytest.mark.faults
async def test_a_settlement_whose_reply_is_lost_is_settled_once(
    redis_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = []
    compute = SimulatedAgency.ComputeSettlement

    async def counted(
        self: SimulatedAgency,
        request: agency_pb2.ComputeSettlementRequest,
        context: grpc.aio.ServicerContext[agency_pb2.ComputeSettlementRequest, agency_pb2.ComputeSettlementResponse],
    ) -> agency_pb2.ComputeSettlementResponse:
        if request.commit:
            commits.append(request.bill.msgid)
        return await compute(self, request, context)

    monkeypatch.setattr(SimulatedAgency, "ComputeSettlement", counted)  # before the servers bind it
    demo = await start_demo(redis_url, clock)
    # The hospital reaches the gateway through a link that loses the first reply coming back.
    link = await TcpProxy.to(demo.gateway.target, Faults(drop_responses=1), seed=5).start()
    hospital = grpc.aio.insecure_channel(link.endpoint)
    via_link = settlement_pb2_grpc.SettlementServiceStub(hospital)
    direct = settlement_pb2_grpc.SettlementServiceStub(demo.channel)
    try:
        await file(demo)
        request = P.SettleRequest(bill=bill())
        try:
            await via_link.Settle(request, metadata=ME, timeout=5)
            raise AssertionError("the reply was to be lost")
        except grpc.aio.AioRpcError as error:
            first_code = error.code()
        assert first_code == grpc.StatusCode.UNAVAILABLE and link.stats.dropped_responses == 1

        # The gateway had committed it, though the hospital does not know.
        before = await direct.Reconcile(reconcile(), metadata=ME)
        assert before.gateway_totals.count == 1

        # The hospital's retry, same msgid: over the same (now healthy) link, and once more directly.
        again = (await via_link.Settle(request, metadata=ME, timeout=5)).settlement
        third = (await direct.Settle(request, metadata=ME, timeout=5)).settlement
        assert again.settlement_id == third.settlement_id and again.split == third.split
        assert again.state == P.SETTLEMENT_STATE_SETTLED and again.msgid == request.bill.msgid
        assert (again.split.fund_pay_fen, again.split.account_pay_fen, again.split.cash_pay_fen) == tuple(
            WORKED.values()
        )

        ledger = demo.agency("110000", AgencyType.HEALTHCARE_SECURITY).ledger
        got = await direct.GetSettlement(P.GetSettlementRequest(settlement_id=again.settlement_id), metadata=ME)
        recon = await direct.Reconcile(reconcile(totals(again)), metadata=ME)
        report(
            "lost_reply",
            first_call=first_code.name,
            dropped_replies=link.stats.dropped_responses,
            retries=2,
            agency_commit_calls=len(commits),
            agency_settled=len(ledger.settled),
            gateway_settlements=recon.gateway_totals.count,
            matched=recon.matched,
        )
        assert list(ledger.settled) == [again.settlement_id], "the insured region booked it exactly once"
        assert commits == [request.bill.msgid], "the retries were answered by the gateway, not the agency again"
        assert got.settlement.settlement_id == again.settlement_id
        assert recon.matched and recon.gateway_totals.count == 1 and not recon.differences
    finally:
        await hospital.close()
        await link.stop()
        await demo.channel.close()
        await demo.gateway.stop(grace_s=0.5)
        await demo.sims.stop()
