"""`kill -9` of one process of `sigw serve`'s tree: the supervisor starts it again, and nothing is lost or done
twice. An API worker killed under load: the other keeps serving, every request (retried with its request id)
makes exactly one transfer. The delivery process killed with deliveries in flight: its successor (the same
consumer name) resumes them, and every agency applies every message once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
import redis

from adapters.simulated_agency import SimulatedAgencies, SimulatedAgency
from gateway._gen.sigw.v1 import transfer_pb2_grpc
from gateway.domain.participants import AgencyKey, AgencyType
from gateway.store import keys
from tests.faults.support import (
    FAST_RECONNECT,
    REGIONS,
    GatewayProcess,
    applied_twice,
    pending_messages,
    pending_of,
    report,
    requested,
    until,
    write_regions,
)
from tests.faults.test_gateway_kill import Creator

CHANNELS = 6
"""Connections the load spreads over, so both API workers get some (each a TCP connection of its own)."""


async def _agencies() -> tuple[SimulatedAgencies, list[SimulatedAgency]]:
    sims = SimulatedAgencies("127.0.0.1:1")
    await sims.start((AgencyKey(code, t), "127.0.0.1:0") for code in REGIONS for t in AgencyType)
    agencies = list(sims.agencies.values())
    for agency in agencies:
        agency.act = False  # count deliveries only
    return sims, agencies


def _submitted(redis_url: str) -> int:
    """Transfers the store counts, over every shard."""
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(int(client.hget(keys.counts(s), "EMPLOYEE_PENSION|SUBMITTED") or 0) for s in range(8))
    finally:
        client.close()


@pytest.mark.faults
async def test_a_killed_api_worker_is_replaced_and_every_request_makes_one_transfer(
    redis_url: str, tmp_path: Path
) -> None:
    n = 600
    sims, agencies = await _agencies()
    gateway = GatewayProcess(tmp_path, redis_url, write_regions(tmp_path / "regions.toml", sims.endpoints), workers=2)
    options = [*FAST_RECONNECT, ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(gateway.target, options=options) for _ in range(CHANNELS)]
    creator = Creator(*(transfer_pb2_grpc.TransferServiceStub(c) for c in channels), prefix="api-kill")
    try:
        gateway.start("gw-api")
        await gateway.ready(channels[0])
        await until(lambda: len(gateway.children("api")) == 2, "two API workers")
        creating = asyncio.create_task(creator.run(n))
        await until(lambda: len(creator.created) >= n // 4, "a quarter created")
        victim = gateway.children("api")[0]
        victim.kill()
        await asyncio.wait_for(creating, timeout=60)
        await until(lambda: gateway.restarts("api") == 1, "the supervisor started the worker again")
        replaced = await until(
            lambda: len(gateway.children("api")) == 2 and victim.pid not in {p.pid for p in gateway.children("api")},
            "two API workers again",
        )
        # One transfer per request: the store counts n, and each was answered with its own id.
        assert _submitted(redis_url) == n
        assert len(set(creator.created.values())) == n
        again = Creator(transfer_pb2_grpc.TransferServiceStub(channels[0]), prefix="api-kill")
        await again.run(n)  # the same request ids once more: the first answers, nothing new
        assert again.created == creator.created and _submitted(redis_url) == n
        await until(lambda: sum(a.stats.applied for a in agencies) >= n, "every transfer delivered")
        assert applied_twice(agencies) == 0
        report("api-kill", created=n, retries=creator.retries, replaced_s=replaced)
    finally:
        for channel in channels:
            await channel.close()
        gateway.stop()
        await sims.stop()


@pytest.mark.faults
async def test_a_killed_delivery_process_is_replaced_and_resumes_its_deliveries(redis_url: str, tmp_path: Path) -> None:
    n = 200
    sims, agencies = await _agencies()
    gateway = GatewayProcess(tmp_path, redis_url, write_regions(tmp_path / "regions.toml", sims.endpoints))
    channel = grpc.aio.insecure_channel(gateway.target, options=FAST_RECONNECT)
    creator = Creator(transfer_pb2_grpc.TransferServiceStub(channel), prefix="delivery-kill")
    hrss = [sims.agencies[AgencyKey(code, AgencyType.HRSS)] for code in REGIONS]  # every transfer goes to one
    try:
        for agency in hrss:
            await agency.hold()  # deliveries reach the agencies and wait there, in flight
        gateway.start("gw-delivery")
        await gateway.ready(channel)
        await creator.run(n)
        await until(lambda: all(a.held for a in hrss), "deliveries in flight at every agency")
        [victim] = gateway.children("delivery")
        victim.kill()
        await until(lambda: gateway.restarts("delivery") == 1, "the supervisor started delivery again")
        await until(lambda: len(gateway.children("delivery")) == 1, "a delivery process again")
        for agency in hrss:
            await agency.release()
        await until(lambda: sum(a.stats.applied for a in agencies) >= n, "every transfer delivered")
        await until(lambda: pending_messages(redis_url) == 0, "nothing left pending", interval_s=0.1)
        seen = requested(agencies)
        assert set(seen) == set(creator.created.values())
        assert applied_twice(agencies) == 0 and all(len(ids) == 1 for ids in seen.values())
        report("delivery-kill", delivered=len(seen), redelivered=sum(a.stats.duplicates for a in agencies))
    finally:
        await channel.close()
        gateway.stop()
        await sims.stop()


@pytest.mark.faults
async def test_messages_a_dead_router_had_read_are_routed_at_once_by_its_successor(
    redis_url: str, tmp_path: Path
) -> None:
    """A read whose reply never arrived (the process died, or its connection timed out) leaves messages pending
    under the consumer's name; the next process of that name routes them at once, not after the claim timeout."""
    sims, agencies = await _agencies()
    regions = write_regions(tmp_path / "regions.toml", sims.endpoints)
    gateway = GatewayProcess(tmp_path, redis_url, regions, claim_idle_ms=600_000)  # no takeover by idle time here
    channel = grpc.aio.insecure_channel(gateway.target, options=FAST_RECONNECT)
    creator = Creator(transfer_pb2_grpc.TransferServiceStub(channel), prefix="own-pending")
    try:
        gateway.start("gw-own")
        await gateway.ready(channel)

        def routing() -> bool:  # the router made its consumer groups: stop it only then
            probe = redis.Redis.from_url(redis_url)
            try:
                return all(probe.exists(keys.outbox(s)) and probe.xinfo_groups(keys.outbox(s)) for s in range(8))
            finally:
                probe.close()

        await until(routing, "the router's consumer groups exist")
        [delivery] = gateway.children("delivery")
        delivery.suspend()
        await creator.run(20)
        client = redis.Redis.from_url(redis_url)
        try:  # read the new outbox entries as that consumer, as its lost read would have
            for s in range(8):
                client.xreadgroup(keys.ROUTE_GROUP, "gw-own", {keys.outbox(s): ">"})
        finally:
            client.close()
        # Pending under its name: those read here, and those its blocked reads took while it was stopped.
        assert pending_of(redis_url, "gw-own") == 20
        delivery.kill()
        await until(lambda: gateway.restarts("delivery") == 1, "delivery started again")
        await until(lambda: sum(a.stats.applied for a in agencies) >= 20, "the pending messages delivered")
        assert set(requested(agencies)) == set(creator.created.values())
    finally:
        await channel.close()
        gateway.stop()
        await sims.stop()
