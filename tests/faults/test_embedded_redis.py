"""Issue 13 point 10: the embedded Redis of `sigw serve` killed with SIGKILL is started again by the supervisor
(on its append-only file, after the restart backoff): the gateway is SERVING again without anyone's hand, and
what was committed before is still there."""

from __future__ import annotations

from pathlib import Path

import grpc
import psutil
import pytest

from adapters.simulated_agency import SimulatedAgencies
from gateway._gen.sigw.v1 import transfer_pb2, transfer_pb2_grpc
from gateway.domain.participants import AgencyKey, AgencyType
from tests.conftest import as_
from tests.faults.support import (
    FAST_RECONNECT,
    REGIONS,
    GatewayProcess,
    not_serving,
    report,
    serving,
    until,
    write_regions,
)
from tests.helpers import OPERATOR
from tests.integration.test_transfer_flow import create_request


def _redis_of(gateway: GatewayProcess) -> psutil.Process:
    assert gateway.process is not None
    found = [p for p in psutil.Process(gateway.process.pid).children() if p.name() == "redis-server"]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.faults
async def test_a_killed_embedded_redis_is_started_again(tmp_path: Path) -> None:
    sims = SimulatedAgencies("127.0.0.1:1")
    await sims.start((AgencyKey(code, t), "127.0.0.1:0") for code in REGIONS for t in AgencyType)
    for agency in sims.agencies.values():
        agency.act = False
    gateway = GatewayProcess(tmp_path, None, write_regions(tmp_path / "regions.toml", sims.endpoints), workers=1)
    channel = grpc.aio.insecure_channel(gateway.target, options=FAST_RECONNECT)
    stub = transfer_pb2_grpc.TransferServiceStub(channel)
    try:
        gateway.start("gw-redis")
        await gateway.ready(channel)
        created = (await stub.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))).transfer
        first = _redis_of(gateway)
        first.kill()
        await until(lambda: not_serving(channel), "NOT_SERVING while Redis is away")
        back = await until(lambda: serving(channel), "SERVING again, with no hand")
        assert _redis_of(gateway).pid != first.pid
        assert gateway.restarts("redis") == 1
        shown = await stub.GetTransfer(
            transfer_pb2.GetTransferRequest(transfer_id=created.transfer_id), metadata=OPERATOR
        )
        assert shown.transfer.transfer_id == created.transfer_id  # from the append-only file
        assert "embedded Redis started again" in gateway.log.read_text()
        report("embedded-redis-kill", serving_again_s=back)
    finally:
        await channel.close()
        gateway.stop()
        await sims.stop()
