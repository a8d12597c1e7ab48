"""Issue 13 point 6: 1,100 idle TCP connections (no TLS handshake, no HTTP/2 preface) against a gateway whose
open-file limit is 1,024 leave it serving. Before, grpc held each for its default 120 s handshake timeout, the
worker ran out of descriptors, new clients timed out and nothing was logged; now the handshake timeout drops
them, the connection cap (kept below the descriptor limit) bounds them, and the limit that bites is logged."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import grpc
import pytest

from adapters.simulated_agency import SimulatedAgencies
from gateway._gen.sigw.v1 import transfer_pb2, transfer_pb2_grpc
from gateway.domain.participants import AgencyKey, AgencyType
from tests.faults.support import FAST_RECONNECT, REGIONS, GatewayProcess, http_status, report, until, write_regions
from tests.helpers import OPERATOR

IDLE = 1_100
FD_LIMIT = 1_024


async def _idle_connection(port: int) -> asyncio.StreamWriter | None:
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(5):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            return writer
    return None


@pytest.mark.faults
async def test_idle_connections_leave_the_gateway_serving(redis_url: str, tmp_path: Path) -> None:
    sims = SimulatedAgencies("127.0.0.1:1")
    await sims.start((AgencyKey(code, t), "127.0.0.1:0") for code in REGIONS for t in AgencyType)
    gateway = GatewayProcess(
        tmp_path, redis_url, write_regions(tmp_path / "regions.toml", sims.endpoints), workers=1,
        fd_limit=FD_LIMIT, env={"SIGW_HANDSHAKE_TIMEOUT_S": "1"},
    )  # fmt: skip
    idle: list[asyncio.StreamWriter] = []
    channel = grpc.aio.insecure_channel(gateway.target, options=FAST_RECONNECT)
    try:
        gateway.start("gw-idle")
        await gateway.ready(channel)
        opened = await asyncio.gather(*(_idle_connection(gateway.grpc_port) for _ in range(IDLE)))
        idle = [w for w in opened if w is not None]
        # A newcomer on a connection of its own gets an answer while the idle ones are still open on our side.
        newcomer = grpc.aio.insecure_channel(
            gateway.target, options=[*FAST_RECONNECT, ("grpc.use_local_subchannel_pool", 1)]
        )
        stub = transfer_pb2_grpc.TransferServiceStub(newcomer)

        async def answered() -> bool:
            request = transfer_pb2.ListTransfersRequest(region_code="310000")
            try:
                await stub.ListTransfers(request, metadata=OPERATOR, timeout=5, wait_for_ready=True)
            except grpc.aio.AioRpcError as error:
                assert error.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
                return False
            return True

        waited = await until(answered, "a new client is answered", interval_s=0.2)
        status, body = await asyncio.to_thread(http_status, gateway.http_port)
        assert (status, body.strip()) == (200, "SERVING")
        await until(lambda: "connection limit total" in gateway.log.read_text(), "the limit that bit is logged")
        assert "connection cap lowered" in gateway.log.read_text()
        await newcomer.close()
        report("idle-connections", idle=len(idle), answered_after_s=waited)
    finally:
        for writer in idle:
            writer.close()
        await channel.close()
        gateway.stop()
        await sims.stop()
