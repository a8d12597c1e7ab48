"""Redis killed with SIGKILL while transfers are being created: the gateway reports NOT_SERVING (gRPC health and
/healthz) while it is away, recovers by itself once Redis is back on its append-only file, and every transfer it
acknowledged is still there and is delivered."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from gateway._gen.sigw.v1 import transfer_pb2, transfer_pb2_grpc
from gateway.store.embedded import EmbeddedRedis
from tests.conftest import FakeClock, as_, start_demo
from tests.faults.support import (
    applied_twice,
    dead_letters,
    health_status,
    http_status,
    not_serving,
    pension,
    report,
    requested,
    serving,
    undelivered,
    until,
)
from tests.helpers import OPERATOR

CLIENTS = 4
MAX_CREATES = 3000


class Load:
    """A few clients creating transfers until stopped, recording which were acknowledged and which failed."""

    def __init__(self, stub: transfer_pb2_grpc.TransferServiceAsyncStub) -> None:
        self.stub = stub
        self.acked: dict[str, str] = {}  # request id -> transfer id
        self.failed: dict[str, grpc.StatusCode] = {}
        self.failed_while_down = 0
        self.redis_down = False
        self.stopping = asyncio.Event()
        self._next = iter(range(MAX_CREATES))

    async def run(self) -> None:
        await asyncio.gather(*(self._client() for _ in range(CLIENTS)))

    async def _client(self) -> None:
        for i in self._next:
            if self.stopping.is_set():
                return
            request, caller = pension(i, "rk")
            try:
                reply = await self.stub.CreateTransfer(request, metadata=as_(caller), timeout=3)
                self.acked[request.request_id] = reply.transfer.transfer_id
            except grpc.aio.AioRpcError as error:
                self.failed[request.request_id] = error.code()
                self.failed_while_down += self.redis_down
                await asyncio.sleep(0.05)


@pytest.mark.faults
async def test_redis_killed_mid_run_loses_no_acknowledged_transfer(tmp_path: Path, clock: FakeClock) -> None:
    store = EmbeddedRedis(tmp_path / "redis", appendfsync="always")
    store.start()
    demo = await start_demo(store.url, clock, act=False)
    agencies = list(demo.sims.agencies.values())
    load = Load(demo.transfers)
    running = asyncio.create_task(load.run())
    try:
        await until(lambda: len(load.acked) >= 150, "transfers acknowledged before the kill")
        store.kill()
        load.redis_down = True
        killed = time.monotonic()
        acked_before = len(load.acked)
        noticed = await until(lambda: not_serving(demo.channel), "NOT_SERVING while Redis is away", 0.05)
        code, body = await asyncio.to_thread(http_status, demo.gateway.http_port)
        assert (code, body.strip()) == (503, "NOT_SERVING")
        await until(lambda: load.failed_while_down >= 20, "creates fail while Redis is away")
        failed = load.failed_while_down
        await until(lambda: load.failed_while_down >= failed + 20, "a little longer down, still failing")

        store.start()  # on the same append-only file
        load.redis_down = False
        restarted = time.monotonic()
        recover_s = await until(lambda: serving(demo.channel), "SERVING again by itself", 0.05)
        code, _ = await asyncio.to_thread(http_status, demo.gateway.http_port)
        assert code == 200
        acked_at_return = len(load.acked)
        await until(lambda: len(load.acked) >= acked_at_return + 150, "transfers acknowledged after")
        load.stopping.set()
        await asyncio.wait_for(running, timeout=10)

        # Every acknowledged transfer is still there...
        missing = []
        for request_id, transfer_id in load.acked.items():
            try:
                got = await demo.transfers.GetTransfer(
                    transfer_pb2.GetTransferRequest(transfer_id=transfer_id), metadata=OPERATOR, timeout=5
                )
                assert got.transfer.transfer_id == transfer_id
            except grpc.aio.AioRpcError:
                missing.append(request_id)
        # A failed create is retried with its request id: it gets the transfer if the commit happened after all
        # (the client never heard), else a new one; never a second transfer.
        await until(lambda: undelivered(store.url) == 0, "the outboxes drained", interval_s=0.1)
        committed_anyway = set(requested(agencies)) - set(load.acked.values())
        retried = {}
        for request_id in load.failed:
            request, caller = pension(int(request_id.split("-")[1]), "rk")
            reply = await demo.transfers.CreateTransfer(request, metadata=as_(caller), timeout=5)
            retried[request_id] = reply.transfer.transfer_id
        # ...and every transfer reaches its agency, once.
        acked = set(load.acked.values())
        everything = acked | set(retried.values())
        await until(lambda: everything <= set(requested(agencies)), "every acknowledged transfer delivered")
        seen = requested(agencies)
        twice = applied_twice(agencies) + sum(len(ids) - 1 for ids in seen.values())
        report(
            "redis_kill",
            acked=len(load.acked),
            acked_before_kill=acked_before,
            failed_while_down=load.failed_while_down,
            failed_codes=",".join(sorted({c.name for c in load.failed.values()})),
            not_serving_after_s=noticed,
            down_s=restarted - killed,
            recover_s=recover_s,
            lost=len(missing) + len(acked - set(seen)),
            delivered=len(seen),
            failed_but_committed=len(committed_anyway),
            duplicates_applied=twice,
            dead_letters=dead_letters(store.url),
        )
        assert not missing, f"acknowledged transfers lost: {missing[:5]}"
        assert acked <= set(seen) and twice == 0
        assert committed_anyway <= set(retried.values()), "a retry returns the transfer its failed call committed"
        assert set(seen) == everything, "one transfer per request id"
        assert {c for c in load.failed.values()} <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
        assert await health_status(demo.channel) == health_pb2.HealthCheckResponse.SERVING
    finally:
        load.stopping.set()
        if not running.done():
            running.cancel()
        await demo.channel.close()
        await demo.gateway.stop(grace_s=0.5)
        await demo.sims.stop()
        store.stop()
