"""Military transfers (Art. 17) and the priority lane; fairness between regions; the overdue sweeper; dead
letters and their re-drive."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any, cast

import grpc
import pytest
import redis

from gateway._gen.sigw.v1 import agency_pb2, common_pb2, operator_pb2, operator_pb2_grpc, transfer_pb2
from tests.conftest import HELD_DELIVERIES, Demo, FakeClock, as_, start_demo
from tests.helpers import OPERATOR, eventually, person_id, stream_rows, wait_for_state
from tests.integration.test_transfer_flow import create_request
from tests.integration.test_transfer_rules import expect_error

S = transfer_pb2
MILITARY = as_("military:JUN001")


def military_request(
    kind: int = S.TRANSFER_KIND_MILITARY_PENSION,
    target: str = "310000",
    request_id: str = "m-1",
    spouse: bool = False,
    sequence: int = 321,
) -> S.CreateTransferRequest:
    request = create_request(
        kind=kind, source="910000", target=target, request_id=request_id, id_number=person_id(sequence=sequence)
    )
    request.military.CopyFrom(
        S.MilitaryService(
            service_start=common_pb2.Date(year=2010, month=9, day=1),
            service_end=common_pb2.Date(year=2026, month=2, day=28),
            subsidy_fen=8_800_000,
            account_fen=2_300_000,
            voucher_numbers=["JT-2026-0001"],
            spouse=spouse,
        )
    )
    return request


@pytest.fixture
async def quiet(redis_url: str, clock: FakeClock) -> AsyncIterator[Demo]:
    d = await start_demo(redis_url, clock, act=False, concurrency=1)
    yield d
    await d.channel.close()
    await d.gateway.stop(grace_s=0.2)
    await d.sims.stop()


async def test_a_military_transfer_is_started_by_the_military_agency_and_completed_by_the_civilian_one(
    demo: Demo,
) -> None:
    t = (await demo.transfers.CreateTransfer(military_request(), metadata=MILITARY)).transfer
    assert t.state == S.TRANSFER_STATE_FUNDS_SENT and t.priority
    assert t.info.funds_fen == 11_100_000 and t.military.voucher_numbers == ["JT-2026-0001"]
    step = t.steps[0]
    # Half the ordinary 15 working days, rounded up: 8 working days from Monday 2026-03-02.
    assert (step.name, step.holder.region_code, step.working_days) == (S.STEP_NAME_TRANSFER_IN, "310000", 8)
    assert (step.due_date.year, step.due_date.month, step.due_date.day) == (2026, 3, 12)
    done = await wait_for_state(demo.transfers, t.transfer_id, S.TRANSFER_STATE_COMPLETED)
    assert "186 months of service count" in done.timeline[0].note  # 2010-09 .. 2026-02
    # The military agency follows it like any other party; the person too, through a portal.
    mine = await demo.transfers.GetTransfer(S.GetTransferRequest(transfer_id=t.transfer_id), metadata=MILITARY)
    assert mine.transfer.state == S.TRANSFER_STATE_COMPLETED
    status = await demo.transfers.QueryTransferStatus(
        S.QueryTransferStatusRequest(transfer_id=t.transfer_id, id_number=person_id(sequence=321)),
        metadata=as_("portal:gov"),
    )
    assert status.transfer.state == S.TRANSFER_STATE_COMPLETED
    # Medical, for an accompanying spouse: to the healthcare-security agency, 3 working days.
    medical = (
        await demo.transfers.CreateTransfer(
            military_request(S.TRANSFER_KIND_MILITARY_MEDICAL, request_id="m-2", spouse=True, sequence=322),
            metadata=MILITARY,
        )
    ).transfer
    assert medical.steps[0].working_days == 3 and medical.steps[0].holder.agency_type == 2
    assert "accompanying spouse" in medical.timeline[0].note
    await wait_for_state(demo.transfers, medical.transfer_id, S.TRANSFER_STATE_COMPLETED)


async def test_only_a_military_agency_starts_one_and_only_from_area_910000(quiet: Demo) -> None:
    reason, _, _ = await expect_error(
        quiet.transfers.CreateTransfer(military_request(), metadata=as_("agency:310000:hrss")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert reason == "NOT_MILITARY_AGENCY"
    wrong_area = military_request()
    wrong_area.source_region = "110000"
    await expect_error(quiet.transfers.CreateTransfer(wrong_area, metadata=MILITARY), grpc.StatusCode.INVALID_ARGUMENT)
    missing = military_request()
    missing.ClearField("military")
    _, _, violations = await expect_error(
        quiet.transfers.CreateTransfer(missing, metadata=MILITARY), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert [f for f, _ in violations] == ["military"]


async def test_a_military_message_overtakes_a_backlog_for_a_slow_agency(redis_url: str, clock: FakeClock) -> None:
    """A military message goes in the first call after those in flight when it was committed, ahead of every
    ordinary message still waiting (Art. 17)."""
    d = await start_demo(redis_url, clock, act=False, concurrency=1, retry=HELD_DELIVERIES)
    try:
        agency = d.agency("310000")
        await agency.hold()  # the backlog cannot drain: the agency takes nothing until it is released
        await d.transfers.CreateTransfer(
            create_request(request_id="o-0", id_number=person_id(sequence=10)), metadata=as_("agency:310000:hrss")
        )
        await eventually(lambda: agency.held == 1)  # concurrency 1: this one call is in flight, held
        for i in range(1, 12):
            await d.transfers.CreateTransfer(
                create_request(request_id=f"o-{i}", id_number=person_id(sequence=10 + i)),
                metadata=as_("agency:310000:hrss"),
            )
        await eventually(lambda: waiting_on(redis_url, "ordinary") == 12)  # 11 waiting, one in flight
        await d.transfers.CreateTransfer(military_request(), metadata=MILITARY)
        await eventually(lambda: waiting_on(redis_url, "priority") == 1)  # routed to the agency's priority lane
        await agency.release()
        await eventually(lambda: agency.stats.applied == 13)
        kinds = [m.transfer_notice.transfer.kind for m in agency.received]
        assert kinds.index(S.TRANSFER_KIND_MILITARY_PENSION) == 1  # right after the one that was in flight
    finally:
        await d.channel.close()
        await d.gateway.stop(grace_s=0.2)
        await d.sims.stop()


def waiting_on(redis_url: str, lane: str) -> int:
    """Messages on a lane of 310000's HRSS agency (waiting, or in flight)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return client.xlen(f"sigw:{{q:310000:hrss}}:{lane}")
    finally:
        client.close()


@pytest.mark.parametrize("batch_size", [1, 100], ids=["one-per-call", "batches"])
async def test_the_ordinary_lane_keeps_its_share_and_one_flooded_region_holds_up_no_other(
    redis_url: str, clock: FakeClock, batch_size: int
) -> None:
    """While both lanes have work, at least one message in ten goes to the ordinary lane: one call in ten when
    each call takes one message, a tenth of each call when calls take batches. One call at a time
    (``concurrency=1``), so that the order the agency gets its calls in is the order they were cut in (concurrent
    calls may reach it in any order, and the check reads what each lane still had from that order)."""
    quiet = await start_demo(redis_url, clock, act=False, batch_size=batch_size, retry=HELD_DELIVERIES, concurrency=1)
    try:
        await _flood_both_lanes(quiet, batch_size)
    finally:
        await quiet.channel.close()
        await quiet.gateway.stop(grace_s=0.2)
        await quiet.sims.stop()


async def _flood_both_lanes(quiet: Demo, batch_size: int) -> None:
    slow = quiet.agency("310000")
    await slow.hold()  # flooded: it takes nothing until released, so both its lanes fill up
    for i in range(40):
        await quiet.transfers.CreateTransfer(
            create_request(request_id=f"o-{i}", id_number=person_id(sequence=100 + i)),
            metadata=as_("agency:310000:hrss"),
        )
    for i in range(40):
        await quiet.transfers.CreateTransfer(military_request(request_id=f"m-{i}", sequence=200 + i), metadata=MILITARY)
    # Meanwhile another region is served at once.
    for i in range(3):
        await quiet.transfers.CreateTransfer(
            create_request(request_id=f"sz-{i}", target="440300", id_number=person_id(sequence=300 + i)),
            metadata=as_("agency:440300:hrss"),
        )
    await eventually(lambda: quiet.agency("440300").stats.applied == 3)
    assert slow.stats.applied < 80
    await slow.release()
    await eventually(lambda: slow.stats.applied == 80)
    lane_of = {
        m.message_id: "priority" if m.transfer_notice.transfer.kind == S.TRANSFER_KIND_MILITARY_PENSION else "ordinary"
        for m in slow.received
    }
    lanes = [lane_of[mid] for mid in itertools.chain.from_iterable(slow.calls) if mid in lane_of]
    if batch_size == 1:
        first_military = lanes.index("priority")
        busy = lanes[first_military : first_military + 30]  # while both lanes had work
        assert busy.count("ordinary") >= 2, busy
        assert busy.count("priority") >= 25
        return
    # A call of several messages gives the ordinary lane a tenth of it (at least one); when the agency is slow,
    # calls shrink to one message each, and then one call in ten is the ordinary lane's.
    ordinary_left, priority_calls_in_a_row = lanes.count("ordinary"), 0
    for call in slow.calls:
        call_lanes = [lane_of[mid] for mid in call if mid in lane_of]
        both = "priority" in call_lanes and ordinary_left > 0  # both lanes had work when this call was cut
        if both and len(call_lanes) > 1:
            assert call_lanes.count("ordinary") >= max(1, len(call_lanes) // 10), call_lanes
        priority_calls_in_a_row = priority_calls_in_a_row + 1 if both and len(call_lanes) == 1 else 0
        assert priority_calls_in_a_row < 10, slow.calls
        ordinary_left -= call_lanes.count("ordinary")


async def test_the_sweeper_reminds_overdue_steps_once_military_first(quiet: Demo) -> None:
    ordinary = (
        await quiet.transfers.CreateTransfer(create_request(request_id="o"), metadata=as_("agency:310000:hrss"))
    ).transfer
    military = (await quiet.transfers.CreateTransfer(military_request(), metadata=MILITARY)).transfer
    sweeper = quiet.gateway.sweeper
    assert sweeper is not None  # the test gateway has every role
    quiet.clock.advance(days=40)
    reminded = await sweeper.sweep()
    assert reminded == [military.transfer_id, ordinary.transfer_id]
    assert await sweeper.sweep() == []  # once per step
    after = (
        await quiet.transfers.GetTransfer(S.GetTransferRequest(transfer_id=ordinary.transfer_id), metadata=OPERATOR)
    ).transfer
    assert after.overdue and after.steps[0].HasField("remind_time")
    assert after.timeline[-1].actor == "sigw:sweeper" and "overdue since 2026-03-23" in after.timeline[-1].note
    agency = quiet.agency("310000")
    await eventually(
        lambda: sum(m.transfer_notice.type == agency_pb2.NOTICE_TYPE_STEP_OVERDUE for m in agency.received) == 2
    )
    # A step that moves on is no longer due; the next one gets its own reminder when it is overdue.
    await quiet.transfers.SendContactLetter(
        S.SendContactLetterRequest(request_id="l", transfer_id=ordinary.transfer_id), metadata=as_("agency:310000:hrss")
    )
    assert await sweeper.sweep() == []
    quiet.clock.advance(days=30)
    assert await sweeper.sweep() == [ordinary.transfer_id]


async def test_dead_letters_are_listed_and_redriven_on_the_record(quiet: Demo, redis_url: str) -> None:
    import redis

    agency = quiet.agency("310000")
    agency.refuse_with = grpc.StatusCode.INVALID_ARGUMENT
    t = (await quiet.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))).transfer
    ops = operator_pb2_grpc.OperatorServiceStub(quiet.channel)

    async def dead() -> Any:
        return (await ops.ListDeadLetters(operator_pb2.ListDeadLettersRequest(), metadata=OPERATOR)).messages

    await eventually(dead)
    [letter] = await dead()
    assert letter.transfer_id == t.transfer_id and letter.notice == "TRANSFER_REQUESTED"
    assert "INVALID_ARGUMENT" in letter.reason and len(letter.attempts) == 1
    await expect_error(
        ops.RedriveDeadLetters(
            operator_pb2.RedriveDeadLettersRequest(request_id="r", all=True), metadata=as_("agency:310000:hrss")
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    agency.refuse_with = None
    reply = await ops.RedriveDeadLetters(
        operator_pb2.RedriveDeadLettersRequest(request_id="r", all=True), metadata=OPERATOR
    )
    assert reply.redriven == 1
    await eventually(lambda: agency.stats.applied == 1)
    assert not await dead()
    log = stream_rows(redis.Redis.from_url(redis_url), "sigw:{ops}:audit")
    assert [(f[b"actor"], f[b"action"], f[b"request"]) for _, f in log] == [
        (b"operator:test", b"redrive dead letters", b"r")
    ]


async def test_one_transfers_messages_reach_an_agency_in_order(redis_url: str, clock: FakeClock) -> None:
    d = await start_demo(redis_url, clock, act=False, concurrency=4)
    try:
        source = d.agency("110000")
        # Every other delivery is slow: were two messages of one transfer sent at once, the second would overtake.
        delays = itertools.cycle([0.08, 0.0])
        type(source).answer_delay_s = property(lambda _: next(delays), lambda _, __: None)  # type: ignore[assignment]
        target = as_("agency:310000:hrss")
        ids = []
        for i in range(8):
            t = (
                await d.transfers.CreateTransfer(
                    create_request(request_id=f"c-{i}", id_number=person_id(sequence=600 + i)), metadata=target
                )
            ).transfer
            await d.transfers.SendContactLetter(
                S.SendContactLetterRequest(request_id=f"l-{i}", transfer_id=t.transfer_id), metadata=target
            )
            await d.transfers.CancelTransfer(
                S.CancelTransferRequest(request_id=f"x-{i}", transfer_id=t.transfer_id, reason="withdrawn"),
                metadata=target,
            )
            ids.append(t.transfer_id)
        await eventually(lambda: source.stats.applied == 16)
        for tid in ids:
            notices = [m.transfer_notice.type for m in source.received if m.transfer_notice.transfer.transfer_id == tid]
            assert notices == [agency_pb2.NOTICE_TYPE_CONTACT_LETTER, agency_pb2.NOTICE_TYPE_TRANSFER_CLOSED]
    finally:
        del type(source).answer_delay_s  # type: ignore[misc]  # removes the class-level property patched in above
        await d.channel.close()
        await d.gateway.stop(grace_s=0.2)
        await d.sims.stop()


async def test_a_quiet_step_gets_its_notice_once_more(quiet: Demo) -> None:
    """Issue 13 point 11: an open step with no answer for the quiet time (default 10 minutes) gets its notice
    again, once, under a new message id, so an answer lost in flight does not wait 15 working days for the
    overdue reminder; a step that moved on is left alone, and the next step gets its own quiet time."""
    t = (
        await quiet.transfers.CreateTransfer(create_request(request_id="q"), metadata=as_("agency:310000:hrss"))
    ).transfer
    sweeper = quiet.gateway.sweeper
    assert sweeper is not None
    agency = quiet.agency("310000")

    def requested() -> list[str]:
        return [
            m.message_id for m in agency.received if m.transfer_notice.type == agency_pb2.NOTICE_TYPE_TRANSFER_REQUESTED
        ]

    await eventually(lambda: len(requested()) == 1)
    quiet.clock.advance(minutes=9)
    assert await sweeper.sweep_quiet() == []  # not quiet long enough
    quiet.clock.advance(minutes=1)
    assert await sweeper.sweep_quiet() == [t.transfer_id]
    await eventually(lambda: len(requested()) == 2)
    assert len(set(requested())) == 2  # a new message id: the agency, which dedups by id, takes it
    assert await sweeper.sweep_quiet() == []  # once per step
    quiet.clock.advance(hours=5)
    assert await sweeper.sweep_quiet() == []
    shown = (
        await quiet.transfers.GetTransfer(S.GetTransferRequest(transfer_id=t.transfer_id), metadata=OPERATOR)
    ).transfer
    assert shown.state == S.TRANSFER_STATE_SUBMITTED and "sent again" in shown.timeline[-1].note
    # The agency answers; the next step (the source's) has a quiet time of its own.
    await quiet.transfers.SendContactLetter(
        S.SendContactLetterRequest(request_id="l", transfer_id=t.transfer_id), metadata=as_("agency:310000:hrss")
    )
    assert await sweeper.sweep_quiet() == []
    quiet.clock.advance(minutes=10)
    assert await sweeper.sweep_quiet() == [t.transfer_id]
    source = quiet.agency("110000")
    await eventually(
        lambda: sum(m.transfer_notice.type == agency_pb2.NOTICE_TYPE_CONTACT_LETTER for m in source.received) == 2
    )


async def test_a_dead_letter_for_a_recipient_the_registry_no_longer_lists_stays_dead(redis_url: str) -> None:
    import redis.asyncio as aioredis

    from gateway.domain.participants import AgencyKey, AgencyType, PortalKey
    from gateway.store import keys
    from gateway.store.deliveries import DeliveryQueueStore

    listed = AgencyKey("310000", AgencyType.HRSS)

    def letter(recipient: str) -> dict[Any, Any]:
        return {"lane": "ordinary", "message_id": "m", "reason": "no", "attempts": "1", "recipient": recipient}

    sync = redis.Redis.from_url(redis_url)
    kept = cast(bytes, sync.xadd(keys.DEAD_LETTERS, letter(str(listed)))).decode()
    gone = sync.xadd(keys.DEAD_LETTERS, letter("portal:gone"))
    client = aioredis.Redis.from_url(redis_url)
    try:
        queue = DeliveryQueueStore(client, [listed, PortalKey("gov")])
        assert await queue.redrive(None) == [kept]  # no worker would deliver to portal:gone
    finally:
        await client.aclose()
    assert [eid for eid, _ in stream_rows(sync, keys.DEAD_LETTERS)] == [gone]
    assert sync.xlen(keys.agency_lane(str(listed), "ordinary")) == 1
