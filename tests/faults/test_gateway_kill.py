"""`kill -9` of a gateway process in the middle of dispatching: after a restart every transfer reaches its
agency, and no agency applies any message twice.

The agencies run in this test process (they only count deliveries), Redis outlives the gateway, and the gateway
is its own process. It is killed twice: once restarted under the same consumer name (it resumes its own pending
deliveries at once), once under another name (it takes the dead consumer's pending messages over with
XAUTOCLAIM once they have been idle ``SIGW_CLAIM_IDLE_MS``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from adapters.simulated_agency import SimulatedAgencies
from gateway._gen.sigw.v1 import transfer_pb2_grpc
from gateway.domain.participants import AgencyKey, AgencyType
from tests.conftest import as_
from tests.faults.support import (
    FAST_RECONNECT,
    REGIONS,
    GatewayProcess,
    applied_twice,
    dead_letters,
    pending_messages,
    pending_of,
    pension,
    report,
    requested,
    until,
    write_regions,
)

N = 2000
CLIENTS = 24
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class Creator:
    """Creates the N transfers with a few concurrent clients; a call that fails because the gateway is down is
    tried again with the same request id (so it never creates a second transfer)."""

    def __init__(self, *stubs: transfer_pb2_grpc.TransferServiceAsyncStub, prefix: str = "k9") -> None:
        self.stubs = stubs
        self.prefix = prefix
        self.created: dict[int, str] = {}
        self.retries = 0

    async def run(self, n: int) -> None:
        todo = iter(range(n))
        await asyncio.gather(*(self._client(todo) for _ in range(CLIENTS)))

    async def _client(self, todo: Iterator[int]) -> None:
        for i in todo:
            request, caller = pension(i, self.prefix)
            stub = self.stubs[i % len(self.stubs)]
            for _ in range(300):  # at least 0.1 s apart: 30 s at most
                try:
                    reply = await stub.CreateTransfer(request, metadata=as_(caller), timeout=5)
                    self.created[i] = reply.transfer.transfer_id
                    break
                except grpc.aio.AioRpcError as error:
                    if error.code() not in RETRYABLE:
                        raise
                    self.retries += 1
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"transfer {i} never created")


@pytest.mark.faults
async def test_a_gateway_killed_mid_dispatch_delivers_every_transfer_once_after_restart(
    redis_url: str, tmp_path: Path
) -> None:
    sims = SimulatedAgencies("127.0.0.1:1")
    await sims.start((AgencyKey(code, t), "127.0.0.1:0") for code in REGIONS for t in AgencyType)
    agencies = list(sims.agencies.values())
    for agency in agencies:
        agency.act = False  # count deliveries only
    gateway = GatewayProcess(tmp_path, redis_url, write_regions(tmp_path / "regions.toml", sims.endpoints))
    channel = grpc.aio.insecure_channel(gateway.target, options=FAST_RECONNECT)
    creator = Creator(transfer_pb2_grpc.TransferServiceStub(channel))

    def applied() -> int:
        return sum(a.stats.applied for a in agencies)

    hrss = [sims.agencies[AgencyKey(code, AgencyType.HRSS)] for code in REGIONS]  # every transfer goes to one

    async def hold_at(share: float) -> None:
        """Let deliveries through until ``share`` of the transfers were applied, then hold the rest at the agencies
        (the targets take turns, so each takes an equal part)."""
        for agency in hrss:
            await agency.hold(int(N * share) // len(hrss) - agency.stats.applied)

    async def kill_at(share: float, restart_as: str, then: float | None) -> tuple[int, float]:
        """Kill -9 once ``share`` of the transfers were delivered (the agencies hold the rest, so the kill lands
        exactly there, with deliveries in flight), restart and let deliveries go on up to ``then`` (None: all);
        (delivered at the kill, seconds from the kill until deliveries flow again)."""
        # The agencies' quotas stop deliveries exactly at ``share``; what comes after waits (or is in flight).
        await until(lambda: applied() >= N * share, f"{share:.0%} delivered")
        gateway.kill()
        killed, at = time.monotonic(), applied()
        gateway.start(restart_as)
        await gateway.ready(channel)
        resumed = applied()
        if then is None:
            for agency in hrss:
                await agency.release()
        else:
            await hold_at(then)
        await until(lambda: applied() > resumed, "deliveries flow again after the restart")
        return at, time.monotonic() - killed

    creating: asyncio.Task[None] | None = None
    started = time.monotonic()
    try:
        await hold_at(0.2)
        gateway.start("gw-a")
        await gateway.ready(channel)
        creating = asyncio.create_task(creator.run(N))
        at1, recover1 = await kill_at(0.2, restart_as="gw-a", then=0.6)  # same consumer: resumes its own pending
        at2, recover2 = await kill_at(0.6, restart_as="gw-b", then=None)  # another consumer: XAUTOCLAIM takes over
        orphaned = pending_of(redis_url, "gw-a")
        takeover = await until(lambda: pending_of(redis_url, "gw-a") == 0, "gw-b took gw-a's messages over")
        await asyncio.wait_for(creating, timeout=40)
        await until(lambda: applied() >= N, "every transfer delivered")
        await until(lambda: pending_messages(redis_url) == 0, "nothing left pending", interval_s=0.1)

        seen = requested(agencies)
        sent = set(creator.created.values())
        lost = len(sent - set(seen))
        twice = applied_twice(agencies) + sum(len(ids) - 1 for ids in seen.values())
        redelivered = sum(a.stats.duplicates for a in agencies)
        report(
            "kill9",
            sent=len(sent),
            delivered=len(set(seen) & sent),
            duplicates_applied=twice,
            lost=lost,
            redelivered=redelivered,
            kill1_at=at1,
            kill2_at=at2,
            recover1_s=recover1,
            recover2_s=recover2,
            orphaned=orphaned,
            takeover_s=takeover,
            create_retries=creator.retries,
            dead_letters=dead_letters(redis_url),
            total_s=time.monotonic() - started,
        )
        assert len(sent) == len(creator.created) == N
        assert at1 >= N * 0.1 and at2 <= N * 0.9, "each kill landed in the middle of dispatching"
        assert set(seen) == sent and lost == 0
        assert twice == 0 and applied() == N
        assert dead_letters(redis_url) == 0
    finally:
        if creating is not None and not creating.done():
            creating.cancel()
        gateway.stop()
        await channel.close()
        await sims.stop()
