"""A transfer end to end: real gateway, real Redis, real simulated agencies on loopback."""

from __future__ import annotations

from typing import TypedDict, Unpack

from adapters.simulated_agency import contribution_record
from gateway._gen.sigw.v1 import agency_pb2, common_pb2, transfer_pb2
from gateway.domain.participants import AgencyType
from gateway.domain.transfer.pension import compute_funds
from tests.conftest import Demo, as_
from tests.helpers import all_delivered, eventually, person_id, wait_for_state

S = transfer_pb2


class CircumstancesFields(TypedDict, total=False):
    """The fields of ``transfer_pb2.Circumstances``, as ``create_request`` takes them."""

    drawing_benefits: bool
    hukou_moved: bool
    residence_changed: bool
    retired: bool
    continuous_enrolment_months: int
    direction: S.PensionDirection.ValueType
    hukou_region: str
    gap_months: int
    collection_source: S.CollectionSource.ValueType


def create_request(
    kind: int = S.TRANSFER_KIND_EMPLOYEE_PENSION,
    source: str = "110000",
    target: str = "310000",
    request_id: str = "req-1",
    id_number: str | None = None,
    **circumstances: Unpack[CircumstancesFields],
) -> transfer_pb2.CreateTransferRequest:
    return S.CreateTransferRequest(
        request_id=request_id,
        kind=S.TransferKind.ValueType(kind),
        source_region=source,
        target_region=target,
        person=common_pb2.Person(id_number=id_number or person_id(), name="张三"),
        circumstances=S.Circumstances(**circumstances),
    )


async def test_employee_pension_moves_from_beijing_to_shanghai(demo: Demo, redis_url: str) -> None:
    reply = await demo.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))
    t = reply.transfer
    assert t.state == S.TRANSFER_STATE_SUBMITTED
    assert (t.holder.region_code, t.holder.agency_type) == ("310000", common_pb2.AGENCY_TYPE_HRSS)
    assert t.person.id_number_masked == person_id()[:4] + "*" * 10 + person_id()[-4:]

    done = await wait_for_state(demo.transfers, t.transfer_id, S.TRANSFER_STATE_COMPLETED)

    # Each step held by the right agency, 15 working days each, counted from Monday 2026-03-02.
    steps = [
        (s.name, s.holder.region_code, s.working_days, (s.due_date.year, s.due_date.month, s.due_date.day))
        for s in done.steps
    ]
    assert steps == [
        (S.STEP_NAME_CONTACT_LETTER, "310000", 15, (2026, 3, 23)),
        (S.STEP_NAME_TRANSFER_OUT, "110000", 15, (2026, 3, 23)),
        (S.STEP_NAME_TRANSFER_IN, "310000", 15, (2026, 3, 23)),
    ]
    assert not done.overdue and not any(s.overdue for s in done.steps)
    assert [e.to_state for e in done.timeline] == [
        S.TRANSFER_STATE_SUBMITTED,
        S.TRANSFER_STATE_CONTACT_SENT,
        S.TRANSFER_STATE_FUNDS_SENT,
        S.TRANSFER_STATE_COMPLETED,
    ]
    assert [e.actor for e in done.timeline] == [
        "agency:310000:hrss",
        "agency:310000:hrss",
        "agency:110000:hrss",
        "agency:310000:hrss",
    ]
    # The funds the source computed from the record: account in full plus 12% of each year's base.
    years, balance = contribution_record(person_id())
    expected = compute_funds(years, balance)
    assert done.info.pooled_fund_fen == expected.pooled_fund_fen > 0
    assert done.info.funds_fen == expected.total_fen

    # Routed by line: the HRSS agencies got every message, the healthcare-security agencies none. The source
    # agency's TRANSFER_COMPLETED notice is delivered after the transfer completed: wait for it, do not race it.
    source = demo.agency("110000")
    await eventually(lambda: len(source.received) == 2)
    await all_delivered(redis_url)  # and nothing else is on its way to any agency
    got = {
        key: [m.transfer_notice.type for m in agency.received]
        for key, agency in demo.sims.agencies.items()
        if agency.received
    }
    assert {(k.region, k.agency_type) for k in got} == {("110000", AgencyType.HRSS), ("310000", AgencyType.HRSS)}
    assert got[next(k for k in got if k.region == "110000")] == [
        agency_pb2.NOTICE_TYPE_CONTACT_LETTER,
        agency_pb2.NOTICE_TYPE_TRANSFER_COMPLETED,
    ]
