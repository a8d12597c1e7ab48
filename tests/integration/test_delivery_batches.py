"""Delivery in batches: several messages per DeliverBatch call, in commit order, each answered on its own; one
message per Deliver call for an agency that does not take batches."""

from __future__ import annotations

import redis

from gateway.store import keys
from tests.conftest import HELD_DELIVERIES, FakeClock, as_, start_demo
from tests.helpers import eventually, person_id
from tests.integration.test_transfer_flow import create_request

BACKLOG = 30


async def _backlog_then_release(redis_url: str, clock: FakeClock, *, batches: bool) -> list[list[str]]:
    """30 transfers for 310000 committed while its agency holds every delivery, then released: the calls it got."""
    d = await start_demo(redis_url, clock, act=False, concurrency=1, retry=HELD_DELIVERIES)
    try:
        agency = d.agency("310000")
        agency.batches = batches
        await agency.hold()
        for i in range(BACKLOG):
            await d.transfers.CreateTransfer(
                create_request(request_id=f"b-{i}", id_number=person_id(sequence=100 + i)),
                metadata=as_("agency:310000:hrss"),
            )
        await agency.release()
        await eventually(lambda: agency.stats.applied == BACKLOG)
        await eventually(lambda: _lane_length(redis_url, "310000:hrss") == 0)  # acknowledged and deleted
        created = [m.transfer_notice.transfer.transfer_id for m in agency.received]
        assert len(set(created)) == BACKLOG and agency.stats.duplicates == 0
        return agency.calls
    finally:
        await d.channel.close()
        await d.gateway.stop(grace_s=0.2)
        await d.sims.stop()


def _lane_length(redis_url: str, agency: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(int(client.xlen(keys.agency_lane(agency, lane))) for lane in keys.LANES)
    finally:
        client.close()


async def test_a_backlog_goes_out_in_batches_each_message_once(redis_url: str, clock: FakeClock) -> None:
    calls = await _backlog_then_release(redis_url, clock, batches=True)
    assert any(len(call) > 1 for call in calls)  # the waiting backlog went several messages per call
    assert sum(len(call) for call in calls) == BACKLOG


async def test_an_agency_without_batches_gets_one_message_per_call(redis_url: str, clock: FakeClock) -> None:
    calls = await _backlog_then_release(redis_url, clock, batches=False)
    # Its one refused batch call is recorded by no one; every message came alone.
    assert all(len(call) == 1 for call in calls)
    assert sum(len(call) for call in calls) == BACKLOG


async def test_each_message_of_a_batch_is_answered_on_its_own(redis_url: str, clock: FakeClock) -> None:
    """A permanent refusal inside a batch dead-letters that message only; the others are delivered."""
    d = await start_demo(redis_url, clock, act=False, concurrency=1, retry=HELD_DELIVERIES)
    try:
        agency = d.agency("310000")
        await agency.hold()
        for i in range(6):
            await d.transfers.CreateTransfer(
                create_request(request_id=f"r-{i}", id_number=person_id(sequence=200 + i)),
                metadata=as_("agency:310000:hrss"),
            )
        refused = person_id(sequence=203)
        agency.refuse_ids = {refused}
        await agency.release()
        await eventually(lambda: agency.stats.applied == 5)
        client = redis.Redis.from_url(redis_url)
        try:
            await eventually(lambda: client.xlen(keys.DEAD_LETTERS) == 1)
            await eventually(lambda: _lane_length(redis_url, "310000:hrss") == 0)
        finally:
            client.close()
        assert refused not in {m.transfer_notice.transfer.person.id_number for m in agency.received}
    finally:
        await d.channel.close()
        await d.gateway.stop(grace_s=0.2)
        await d.sims.stop()
