"""The foundation's rules through the real gRPC API, with real Redis and real simulated agencies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
import redis

from gateway._gen.sigw.v1 import agency_pb2, common_pb2, transfer_pb2
from gateway.app.transfers import LIST_SCAN_LIMIT
from gateway.domain.calendar import SHANGHAI
from gateway.domain.idempotency import IdempotencyRecord
from gateway.domain.ids import new_transfer_id
from gateway.domain.participants import AgencyType, Participant
from gateway.domain.transfer import machine
from gateway.domain.transfer.machine import MAX_RECORDED_REFUSALS
from gateway.wire import transfers as convert
from tests.conftest import Demo, FakeClock, as_, start_demo
from tests.helpers import OPERATOR, all_delivered, error_details, eventually, person_id, wait_for_state
from tests.integration.test_transfer_flow import CircumstancesFields, create_request

S = transfer_pb2
SH_HRSS = as_("agency:310000:hrss")
BJ_HRSS = as_("agency:110000:hrss")


def keys_in(redis_url: str) -> set[bytes]:
    """Every key except empty streams (the dispatcher creates its streams and groups at start)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return {k for k in cast(list[bytes], client.keys("*")) if client.type(k) != b"stream" or client.xlen(k)}
    finally:
        client.close()


async def expect_error(
    call: Awaitable[object], code: grpc.StatusCode
) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return error_details(caught.value)


@pytest.fixture
async def quiet(redis_url: str, clock: FakeClock) -> AsyncIterator[Demo]:
    """A gateway whose agencies take deliveries but never act: the tests play the agencies."""
    d = await start_demo(redis_url, clock, act=False)
    yield d
    await d.channel.close()
    await d.gateway.stop(grace_s=0.5)
    await d.sims.stop()


# --------------------------------------------------------------------------------------------- idempotency


async def test_same_request_id_returns_the_same_transfer_and_another_payload_is_refused(
    quiet: Demo, redis_url: str
) -> None:
    first = await quiet.transfers.CreateTransfer(create_request(request_id="r-42"), metadata=SH_HRSS)
    again = await quiet.transfers.CreateTransfer(create_request(request_id="r-42"), metadata=SH_HRSS)
    assert again.transfer.transfer_id == first.transfer.transfer_id
    reason, _, _ = await expect_error(
        quiet.transfers.CreateTransfer(create_request(request_id="r-42", source="510100"), metadata=SH_HRSS),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert reason == "REQUEST_ID_REUSED"
    listed = await quiet.transfers.ListTransfers(S.ListTransfersRequest(region_code="310000"), metadata=OPERATOR)
    assert len(listed.transfers) == 1
    # One delivery for one create, however often it was repeated.
    await eventually(lambda: quiet.agency("310000").stats.applied == 1)
    await all_delivered(redis_url)  # nothing left that could still arrive
    assert quiet.agency("310000").stats.applied == 1


async def test_a_repeated_step_call_is_applied_once(quiet: Demo) -> None:
    t = (await quiet.transfers.CreateTransfer(create_request(), metadata=SH_HRSS)).transfer
    letter = S.SendContactLetterRequest(request_id="letter-1", transfer_id=t.transfer_id, letter_number="L1")
    one = await quiet.transfers.SendContactLetter(letter, metadata=SH_HRSS)
    two = await quiet.transfers.SendContactLetter(letter, metadata=SH_HRSS)
    assert one.transfer.state == two.transfer.state == S.TRANSFER_STATE_CONTACT_SENT
    assert len(two.transfer.timeline) == 2


# --------------------------------------------------------------------------------------------- eligibility


@pytest.mark.parametrize(
    "kind, line_word", [(S.TRANSFER_KIND_WORK_INJURY, "work-injury"), (S.TRANSFER_KIND_MATERNITY, "maternity")]
)
async def test_work_injury_and_maternity_are_refused_with_enrolment_advice(
    quiet: Demo, redis_url: str, kind: int, line_word: str
) -> None:
    before = keys_in(redis_url)
    caller = SH_HRSS if kind == S.TRANSFER_KIND_WORK_INJURY else as_("agency:310000:healthcare")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await quiet.transfers.CreateTransfer(create_request(kind=kind), metadata=caller)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = caught.value.details()
    assert details is not None  # the gateway sets details on every refusal
    assert f"{line_word} insurance" in details and "enrol" in details
    reason, metadata, _ = error_details(caught.value)
    assert reason == "NOT_TRANSFERABLE" and metadata["enrol_region"] == "310000"
    assert keys_in(redis_url) == before


@pytest.mark.parametrize(
    "kind, circumstances, reason",
    [
        (S.TRANSFER_KIND_RESIDENT_PENSION, {"hukou_moved": True, "drawing_benefits": True}, "BENEFITS_STARTED"),
        (S.TRANSFER_KIND_RESIDENT_PENSION, {}, "HUKOU_NOT_MOVED"),
        (S.TRANSFER_KIND_EMPLOYEE_MEDICAL, {"retired": True}, "RETIREE_EXCLUDED"),
        (S.TRANSFER_KIND_RESIDENT_MEDICAL, {}, "NO_GROUND_FOR_TRANSFER"),
    ],
)
async def test_eligibility_refusals(
    quiet: Demo, redis_url: str, kind: int, circumstances: CircumstancesFields, reason: str
) -> None:
    line = "hrss" if kind == S.TRANSFER_KIND_RESIDENT_PENSION else "healthcare"
    before = keys_in(redis_url)
    got, _, _ = await expect_error(
        quiet.transfers.CreateTransfer(
            create_request(kind=kind, **circumstances), metadata=as_(f"agency:310000:{line}")
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert got == reason
    assert keys_in(redis_url) == before


async def test_same_region_is_refused_except_institution_enterprise(quiet: Demo) -> None:
    reason, _, _ = await expect_error(
        quiet.transfers.CreateTransfer(create_request(source="310000"), metadata=SH_HRSS),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert reason == "SAME_REGION"
    ok = await quiet.transfers.CreateTransfer(
        create_request(
            kind=S.TRANSFER_KIND_INSTITUTION_ENTERPRISE_PENSION,
            source="310000",
            direction=S.PENSION_DIRECTION_INSTITUTION_TO_ENTERPRISE,
        ),
        metadata=SH_HRSS,
    )
    assert ok.transfer.state == S.TRANSFER_STATE_SUBMITTED


async def test_unknown_region_is_refused(quiet: Demo, redis_url: str) -> None:
    before = keys_in(redis_url)
    reason, _, violations = await expect_error(
        quiet.transfers.CreateTransfer(create_request(source="990000"), metadata=SH_HRSS),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert reason == "UNKNOWN_REGION" and violations == [("source_region", "unknown region 990000")]
    assert keys_in(redis_url) == before


# --------------------------------------------------------------------------------------------- bad input


async def test_bad_input_lists_every_field_and_never_echoes_the_id_number(quiet: Demo, redis_url: str) -> None:
    good = person_id()
    bad_id = good[:-1] + ("0" if good[-1] != "0" else "1")  # wrong check character
    request = S.CreateTransferRequest(
        request_id="x" * 65,
        kind=S.TRANSFER_KIND_UNSPECIFIED,
        source_region="11",
        target_region="310000",
        person=common_pb2.Person(id_number=bad_id, name="李" * 65),
        note="n" * 501,
    )
    before = keys_in(redis_url)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await quiet.transfers.CreateTransfer(request, metadata=SH_HRSS)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, _, violations = error_details(caught.value)
    assert reason == "INVALID_ARGUMENT"
    assert {f for f, _ in violations} == {
        "request_id",
        "kind",
        "person.id_number",
        "person.name",
        "source_region",
        "note",
    }
    assert dict(violations)["person.id_number"] == "check character does not match"
    assert bad_id not in str(caught.value.details()) and bad_id not in str(violations)
    assert keys_in(redis_url) == before


async def test_absurd_and_negative_amounts_are_refused(quiet: Demo) -> None:
    t = (await quiet.transfers.CreateTransfer(create_request(), metadata=SH_HRSS)).transfer
    await quiet.transfers.SendContactLetter(
        S.SendContactLetterRequest(request_id="l", transfer_id=t.transfer_id), metadata=SH_HRSS
    )
    info = S.TransferInfo(individual_account_fen=-1, pooled_fund_fen=10**13, funds_fen=5)
    _, _, violations = await expect_error(
        quiet.transfers.SendTransferInfo(
            S.SendTransferInfoRequest(request_id="i", transfer_id=t.transfer_id, info=info), metadata=BJ_HRSS
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert dict(violations) == {
        "info.individual_account_fen": "must not be negative",
        "info.pooled_fund_fen": "more than 10000000000 fen is not a plausible amount",
    }
    still = await quiet.transfers.GetTransfer(S.GetTransferRequest(transfer_id=t.transfer_id), metadata=OPERATOR)
    assert still.transfer.state == S.TRANSFER_STATE_CONTACT_SENT and len(still.transfer.timeline) == 2


async def test_unknown_and_malformed_transfer_ids(quiet: Demo) -> None:
    reason, _, _ = await expect_error(
        quiet.transfers.GetTransfer(S.GetTransferRequest(transfer_id="T01-20260302-ABCDEF12"), metadata=OPERATOR),
        grpc.StatusCode.NOT_FOUND,
    )
    assert reason == "TRANSFER_NOT_FOUND"
    _, _, violations = await expect_error(
        quiet.transfers.GetTransfer(S.GetTransferRequest(transfer_id="../../etc"), metadata=OPERATOR),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert [f for f, _ in violations] == ["transfer_id"]


async def test_without_development_identity_every_call_is_unauthenticated(redis_url: str, clock: FakeClock) -> None:
    from gateway.config import Settings
    from gateway.domain.regions import Region, Registry
    from gateway.server import start_gateway

    registry = Registry({"110000": Region("110000", "北京市", {}), "310000": Region("310000", "上海市", {})})
    gateway = await start_gateway(
        Settings(
            grpc_listen="127.0.0.1:0",
            national_listen="127.0.0.1:0",
            http_listen="127.0.0.1:0",
            redis_url=redis_url,
            calendar_file=None,
            shards=2,
            insecure=True,
        ),
        registry,
        clock=clock,
    )
    try:
        async with grpc.aio.insecure_channel(gateway.target) as channel:
            from gateway._gen.sigw.v1 import transfer_pb2_grpc

            stub = transfer_pb2_grpc.TransferServiceStub(channel)
            reason, _, _ = await expect_error(
                stub.CreateTransfer(create_request(), metadata=SH_HRSS), grpc.StatusCode.UNAUTHENTICATED
            )
            assert reason == "NO_IDENTITY"
    finally:
        await gateway.stop(grace_s=0.1)


# --------------------------------------------------------------------------------------------- funds check


async def test_funds_that_do_not_match_the_table_stop_the_transfer(quiet: Demo) -> None:
    t = (await quiet.transfers.CreateTransfer(create_request(), metadata=SH_HRSS)).transfer
    await quiet.transfers.SendContactLetter(
        S.SendContactLetterRequest(request_id="l", transfer_id=t.transfer_id), metadata=SH_HRSS
    )
    # 2010, 12 months at 5,000.00 yuan: 12% pooled = 720,000 fen. The source claims one fen more. The account:
    # 8% credited (480,000 fen), no interest.
    year = S.ContributionYear(
        year=2010, first_month=1, last_month=12, monthly_base_fen=500_000, account_credit_fen=480_000, interest_fen=0
    )
    info = S.TransferInfo(
        table_number="XX-1",
        contributions=[year],
        individual_account_fen=480_000,
        pooled_fund_fen=720_001,
        funds_fen=1_200_001,
    )
    request = S.SendTransferInfoRequest(request_id="i-1", transfer_id=t.transfer_id, info=info)
    reason, _, violations = await expect_error(
        quiet.transfers.SendTransferInfo(request, metadata=BJ_HRSS), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert reason == "FUNDS_MISMATCH"
    assert [f for f, _ in violations] == ["info.pooled_fund_fen"]
    # The same request again gets the same refusal, without a second timeline entry.
    again, _, _ = await expect_error(
        quiet.transfers.SendTransferInfo(request, metadata=BJ_HRSS), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert again == "FUNDS_MISMATCH"
    now = (
        await quiet.transfers.GetTransfer(S.GetTransferRequest(transfer_id=t.transfer_id), metadata=OPERATOR)
    ).transfer
    assert now.state == S.TRANSFER_STATE_CONTACT_SENT and now.holder.region_code == "110000"
    assert [e.note.split(":")[0] for e in now.timeline][-1] == "information table refused"
    assert len(now.timeline) == 3
    # It can never complete from here.
    reason, _, _ = await expect_error(
        quiet.transfers.CompleteTransfer(
            S.CompleteTransferRequest(request_id="c", transfer_id=t.transfer_id), metadata=SH_HRSS
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert reason == "WRONG_STATE"
    # A corrected table goes through.
    info.pooled_fund_fen, info.funds_fen = 720_000, 1_200_000
    fixed = await quiet.transfers.SendTransferInfo(
        S.SendTransferInfoRequest(request_id="i-2", transfer_id=t.transfer_id, info=info), metadata=BJ_HRSS
    )
    assert fixed.transfer.state == S.TRANSFER_STATE_FUNDS_SENT


# --------------------------------------------------------------------------------------------- who may act


async def test_only_the_holder_acts_and_strangers_learn_nothing(quiet: Demo) -> None:
    t = (await quiet.transfers.CreateTransfer(create_request(), metadata=SH_HRSS)).transfer
    letter = S.SendContactLetterRequest(request_id="l", transfer_id=t.transfer_id)
    reason, _, _ = await expect_error(
        quiet.transfers.SendContactLetter(letter, metadata=BJ_HRSS), grpc.StatusCode.PERMISSION_DENIED
    )
    assert reason == "NOT_STEP_HOLDER"
    # Another region's agency, or the right region's other agency, is told the transfer does not exist.
    for stranger in ("agency:440300:hrss", "agency:310000:healthcare"):
        await expect_error(
            quiet.transfers.GetTransfer(S.GetTransferRequest(transfer_id=t.transfer_id), metadata=as_(stranger)),
            grpc.StatusCode.NOT_FOUND,
        )
    await expect_error(
        quiet.transfers.CreateTransfer(create_request(request_id="other"), metadata=BJ_HRSS),
        grpc.StatusCode.PERMISSION_DENIED,
    )


# --------------------------------------------------------------------------------------------- applicant


async def test_applicant_reads_own_status_with_the_id_number(demo: Demo) -> None:
    t = (await demo.transfers.CreateTransfer(create_request(), metadata=SH_HRSS)).transfer
    portal = as_("portal:gov")
    mine = await demo.transfers.QueryTransferStatus(
        S.QueryTransferStatusRequest(transfer_id=t.transfer_id, id_number=person_id()), metadata=portal
    )
    assert mine.transfer.transfer_id == t.transfer_id and mine.transfer.timeline
    assert person_id() not in str(mine)
    wrong, _, _ = await expect_error(
        demo.transfers.QueryTransferStatus(
            S.QueryTransferStatusRequest(transfer_id=t.transfer_id, id_number=person_id(sequence=125)), metadata=portal
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    unknown, _, _ = await expect_error(
        demo.transfers.QueryTransferStatus(
            S.QueryTransferStatusRequest(transfer_id="T00-20260302-00000000", id_number=person_id()), metadata=portal
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert wrong == unknown == "TRANSFER_NOT_FOUND"


# --------------------------------------------------------------------------------------------- kinds end to end


@pytest.mark.parametrize(
    "kind, line, circumstances, days",
    [
        # 医保办发〔2021〕43号: out within 10 working days of acceptance, no separate forwarding allowance, in 5
        (S.TRANSFER_KIND_EMPLOYEE_MEDICAL, "healthcare", {}, [0, 10, 5]),
        (S.TRANSFER_KIND_RESIDENT_MEDICAL, "healthcare", {"residence_changed": True}, [0, 10, 5]),
        (S.TRANSFER_KIND_EMPLOYEE_RESIDENT_MEDICAL, "healthcare", {"continuous_enrolment_months": 30}, [0, 10, 5]),
        (S.TRANSFER_KIND_INSTITUTION_PENSION, "hrss", {}, [15, 15, 15]),
        (S.TRANSFER_KIND_RESIDENT_PENSION, "hrss", {"hukou_moved": True}, [15, 15, 15]),
        (S.TRANSFER_KIND_UNEMPLOYMENT, "hrss", {"drawing_benefits": True}, [15, 15, 15]),
        (
            S.TRANSFER_KIND_INSTITUTION_ENTERPRISE_PENSION,
            "hrss",
            {"direction": S.PENSION_DIRECTION_ENTERPRISE_TO_INSTITUTION},
            [15, 15, 15],
        ),
    ],
)
async def test_every_kind_completes_through_the_right_agencies(
    demo: Demo, redis_url: str, kind: int, line: str, circumstances: CircumstancesFields, days: list[int]
) -> None:
    t = (
        await demo.transfers.CreateTransfer(
            create_request(kind=kind, source="440300", target="510100", **circumstances),
            metadata=as_(f"agency:510100:{line}"),
        )
    ).transfer
    done = await wait_for_state(demo.transfers, t.transfer_id, S.TRANSFER_STATE_COMPLETED)
    assert [s.working_days for s in done.steps] == days
    agency_type = AgencyType.HRSS if line == "hrss" else AgencyType.HEALTHCARE_SECURITY
    assert {s.holder.agency_type for s in done.steps} == {int(agency_type)}
    assert done.info.funds_fen > 0
    other = AgencyType.HEALTHCARE_SECURITY if agency_type is AgencyType.HRSS else AgencyType.HRSS
    await all_delivered(redis_url)  # nothing is on its way to anyone: the other line's agencies got nothing at all
    assert not demo.agency("440300", other).received and not demo.agency("510100", other).received


async def test_the_source_agency_rejects_a_person_it_has_no_record_of(demo: Demo) -> None:
    t = (
        await demo.transfers.CreateTransfer(create_request(id_number=person_id(sequence=0)), metadata=SH_HRSS)
    ).transfer
    done = await wait_for_state(demo.transfers, t.transfer_id, S.TRANSFER_STATE_REJECTED)
    assert done.close_reason == "no contribution record for this person at 110000"
    assert done.timeline[-1].actor == "agency:110000:hrss" and not done.HasField("holder")
    # The target agency is told.
    await eventually(lambda: len(demo.agency("310000").received) == 2)
    notices = [m.transfer_notice.type for m in demo.agency("310000").received]
    assert notices[-1] == agency_pb2.NOTICE_TYPE_TRANSFER_CLOSED


async def test_cancel_before_funds_tells_the_source(quiet: Demo) -> None:
    t = (await quiet.transfers.CreateTransfer(create_request(), metadata=SH_HRSS)).transfer
    await quiet.transfers.SendContactLetter(
        S.SendContactLetterRequest(request_id="l", transfer_id=t.transfer_id), metadata=SH_HRSS
    )
    cancelled = await quiet.transfers.CancelTransfer(
        S.CancelTransferRequest(request_id="c", transfer_id=t.transfer_id, reason="applicant withdrew"),
        metadata=SH_HRSS,
    )
    assert cancelled.transfer.state == S.TRANSFER_STATE_CANCELLED
    await eventually(lambda: len(quiet.agency("110000").received) == 2)
    assert [m.transfer_notice.type for m in quiet.agency("110000").received] == [
        agency_pb2.NOTICE_TYPE_CONTACT_LETTER,
        agency_pb2.NOTICE_TYPE_TRANSFER_CLOSED,
    ]


# --------------------------------------------------------------------------------------------- deadlines


async def test_a_transfer_filed_on_2026_12_20_gets_a_provisional_deadline(redis_url: str) -> None:
    clock = FakeClock(datetime(2026, 12, 20, 10, 0, tzinfo=SHANGHAI))
    d = await start_demo(redis_url, clock, act=False)
    try:
        t = (await d.transfers.CreateTransfer(create_request(), metadata=SH_HRSS)).transfer
        step = t.steps[0]
        # 15 working days after Sunday 2026-12-20, 2027 counted as weekends only: Friday 2027-01-08.
        assert (step.due_date.year, step.due_date.month, step.due_date.day) == (2027, 1, 8)
        assert step.provisional
    finally:
        await d.channel.close()
        await d.gateway.stop(grace_s=0.1)
        await d.sims.stop()


async def test_an_operator_calendar_file_makes_the_deadline_firm(redis_url: str, tmp_path: Path) -> None:
    calendar = tmp_path / "calendar.toml"
    calendar.write_text('[years.2027]\nholidays = ["2027-01-01"]\nworkdays = []\n')
    clock = FakeClock(datetime(2026, 12, 20, 10, 0, tzinfo=SHANGHAI))
    d = await start_demo(redis_url, clock, act=False, calendar_file=calendar)
    try:
        step = (await d.transfers.CreateTransfer(create_request(), metadata=SH_HRSS)).transfer.steps[0]
        assert (step.due_date.year, step.due_date.month, step.due_date.day) == (2027, 1, 11)
        assert not step.provisional
    finally:
        await d.channel.close()
        await d.gateway.stop(grace_s=0.1)
        await d.sims.stop()


async def test_overdue_steps_are_flagged_and_filterable(quiet: Demo) -> None:
    late = (await quiet.transfers.CreateTransfer(create_request(request_id="a"), metadata=SH_HRSS)).transfer
    quiet.clock.advance(days=22)  # Tuesday 2026-03-24: the contact letter was due on the 23rd
    fresh = (
        await quiet.transfers.CreateTransfer(
            create_request(request_id="b", id_number=person_id(sequence=7)), metadata=SH_HRSS
        )
    ).transfer
    overdue = await quiet.transfers.ListTransfers(
        S.ListTransfersRequest(region_code="310000", overdue_only=True), metadata=SH_HRSS
    )
    assert [t.transfer_id for t in overdue.transfers] == [late.transfer_id]
    assert overdue.transfers[0].steps[0].overdue
    # Acting late completes the step but it stays marked overdue.
    after = await quiet.transfers.SendContactLetter(
        S.SendContactLetterRequest(request_id="l", transfer_id=late.transfer_id), metadata=SH_HRSS
    )
    assert after.transfer.steps[0].overdue and not after.transfer.steps[1].overdue and not after.transfer.overdue
    assert fresh.transfer_id != late.transfer_id


# --------------------------------------------------------------------------------------------- listing


async def test_listing_pages_through_a_region_newest_first_with_filters(quiet: Demo) -> None:
    ids = []
    for i in range(7):
        quiet.clock.advance(minutes=1)
        kind = S.TRANSFER_KIND_EMPLOYEE_PENSION if i % 2 == 0 else S.TRANSFER_KIND_UNEMPLOYMENT
        t = (
            await quiet.transfers.CreateTransfer(
                create_request(request_id=f"p{i}", kind=kind, id_number=person_id(sequence=100 + i)), metadata=SH_HRSS
            )
        ).transfer
        ids.append(t.transfer_id)
    seen, token = [], ""
    while True:
        page = await quiet.transfers.ListTransfers(
            S.ListTransfersRequest(region_code="310000", page_size=3, page_token=token), metadata=SH_HRSS
        )
        assert len(page.transfers) <= 3
        seen += [t.transfer_id for t in page.transfers]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    unemployment = await quiet.transfers.ListTransfers(
        S.ListTransfersRequest(region_code="110000", kind=S.TRANSFER_KIND_UNEMPLOYMENT), metadata=BJ_HRSS
    )
    assert [t.transfer_id for t in unemployment.transfers] == [ids[5], ids[3], ids[1]]
    await quiet.transfers.SendContactLetter(
        S.SendContactLetterRequest(request_id="l", transfer_id=ids[0]), metadata=SH_HRSS
    )
    contact = await quiet.transfers.ListTransfers(
        S.ListTransfersRequest(region_code="310000", state=S.TRANSFER_STATE_CONTACT_SENT), metadata=OPERATOR
    )
    assert [t.transfer_id for t in contact.transfers] == [ids[0]]
    # The healthcare-security agency of the region sees none of these pension/unemployment transfers.
    theirs = await quiet.transfers.ListTransfers(
        S.ListTransfersRequest(region_code="310000"), metadata=as_("agency:310000:healthcare")
    )
    assert not theirs.transfers
    await expect_error(
        quiet.transfers.ListTransfers(S.ListTransfersRequest(region_code="310000"), metadata=as_("agency:440300:hrss")),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_page_tokens_are_opaque_bound_to_their_request_and_pages_do_bounded_work(quiet: Demo) -> None:
    """Issue 13 point 13 (AIP-158): a page token cannot be read or made, is refused with other filters or by
    another caller, and a filter that matches nothing answers after reading at most LIST_SCAN_LIMIT index
    entries, with a token to go on, instead of walking the region's whole index."""
    total = LIST_SCAN_LIMIT + 60
    AGENCY = Participant.parse("agency:310000:hrss")
    store = quiet.gateway.store
    for i in range(total):  # made in bulk through the store, as the gateway makes them (no agency acts)
        quiet.clock.advance(seconds=1)
        app = convert.application_from(create_request(request_id=f"b{i}", id_number=person_id(sequence=i % 900)))
        decision = machine.open_transfer(
            app, new_transfer_id(i % 4, quiet.clock()), AGENCY, quiet.clock(), quiet.gateway.transfers.policy
        )
        await store.commit(decision, scope=f"b{i}", record=IdempotencyRecord("f", decision.transfer.transfer_id),
                           messages=[], previous=None)  # fmt: skip
    first = await quiet.transfers.ListTransfers(
        S.ListTransfersRequest(region_code="310000", page_size=2), metadata=SH_HRSS
    )
    token = first.next_page_token
    assert token and first.transfers[-1].transfer_id not in token  # opaque: the cursor is not to be read

    def listing(**fields: Any) -> S.ListTransfersRequest:
        return S.ListTransfersRequest(region_code="310000", page_size=2, **fields)

    for changed, caller in (
        (listing(page_token=token, kind=S.TRANSFER_KIND_UNEMPLOYMENT), SH_HRSS),  # other filters
        (listing(page_token=token), OPERATOR),  # another caller
        (listing(page_token=token[:-2] + "AA"), SH_HRSS),  # edited
        (listing(page_token="9999999999999:T00-20260302-00000000"), SH_HRSS),  # made up
    ):
        reason, _, violations = await expect_error(quiet.transfers.ListTransfers(changed, metadata=caller),
                                                   grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
        assert reason == "INVALID_PAGE_TOKEN" and [f for f, _ in violations] == ["page_token"]
    second = await quiet.transfers.ListTransfers(
        S.ListTransfersRequest(region_code="310000", page_size=5, page_token=token), metadata=SH_HRSS
    )  # the page size may change between pages
    assert len(second.transfers) == 5 and not {t.transfer_id for t in second.transfers} & {
        t.transfer_id for t in first.transfers
    }
    # Nothing is CANCELLED: the first page reads at most LIST_SCAN_LIMIT entries and hands over a token; the
    # walk still ends, having seen every entry once.
    pages, token = 0, ""
    while True:
        page = await quiet.transfers.ListTransfers(
            listing(state=S.TRANSFER_STATE_CANCELLED, page_token=token), metadata=SH_HRSS
        )
        assert not page.transfers
        pages, token = pages + 1, page.next_page_token
        if not token:
            break
    assert pages == -(-total // LIST_SCAN_LIMIT)  # ceil: every page but the last read the whole budget


# --------------------------------------------------------------------------------------------- watch


async def test_watch_streams_every_event_until_the_transfer_ends(demo: Demo) -> None:
    t = (await demo.transfers.CreateTransfer(create_request(), metadata=SH_HRSS)).transfer
    stream = demo.transfers.WatchTransfer(
        S.WatchTransferRequest(transfer_id=t.transfer_id), metadata=OPERATOR, timeout=15
    )
    states = [item.state async for item in stream]
    assert states == [
        S.TRANSFER_STATE_SUBMITTED,
        S.TRANSFER_STATE_CONTACT_SENT,
        S.TRANSFER_STATE_FUNDS_SENT,
        S.TRANSFER_STATE_COMPLETED,
    ]


async def test_refusals_are_recorded_up_to_a_bound_and_views_carry_the_newest_events(quiet: Demo) -> None:
    """Issue 13 point 12: a sender repeating a bad information table under new request ids is answered every
    time, but the timeline records only the first MAX_RECORDED_REFUSALS; and a view carries at most the newest
    MAX_TIMELINE_SHOWN events, counting the rest in timeline_omitted."""
    t = (await quiet.transfers.CreateTransfer(create_request(), metadata=SH_HRSS)).transfer
    await quiet.transfers.SendContactLetter(
        S.SendContactLetterRequest(request_id="l", transfer_id=t.transfer_id), metadata=SH_HRSS
    )
    year = S.ContributionYear(
        year=2010, first_month=1, last_month=12, monthly_base_fen=500_000, account_credit_fen=480_000, interest_fen=0
    )
    info = S.TransferInfo(table_number="XX-1", contributions=[year], individual_account_fen=480_000,
                          pooled_fund_fen=720_001, funds_fen=1_200_001)  # fmt: skip
    sent = MAX_RECORDED_REFUSALS + 15
    for n in range(sent):
        request = S.SendTransferInfoRequest(request_id=f"bad-{n}", transfer_id=t.transfer_id, info=info)
        reason, _, _ = await expect_error(
            quiet.transfers.SendTransferInfo(request, metadata=BJ_HRSS), grpc.StatusCode.FAILED_PRECONDITION
        )
        assert reason == "FUNDS_MISMATCH"  # every one answered
    shown = (
        await quiet.transfers.GetTransfer(S.GetTransferRequest(transfer_id=t.transfer_id), metadata=OPERATOR)
    ).transfer
    refusals = [e.note for e in shown.timeline if e.note.startswith("information table refused")]
    assert len(refusals) == MAX_RECORDED_REFUSALS and "no longer recorded" in refusals[-1]
    assert shown.timeline_omitted == 0 and len(shown.timeline) == 2 + MAX_RECORDED_REFUSALS


def test_a_view_carries_the_newest_events() -> None:
    from datetime import UTC, datetime

    from gateway.domain.transfer.model import Event, State
    from gateway.wire.transfers import MAX_TIMELINE_SHOWN, transfer_to
    from tests.unit.test_transitions import contacted

    t = contacted()
    events = [
        (f"{i:013d}-0", Event(datetime(2026, 3, 2, tzinfo=UTC), "x", State.SUBMITTED, State.SUBMITTED, f"e{i}"))
        for i in range(MAX_TIMELINE_SHOWN + 7)
    ]
    view = transfer_to(t, t.created_at.date(), events)
    assert len(view.timeline) == MAX_TIMELINE_SHOWN and view.timeline_omitted == 7
    assert view.timeline[0].note == "e7" and view.timeline[-1].note == f"e{MAX_TIMELINE_SHOWN + 6}"
