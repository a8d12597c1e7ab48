"""What an outside attack on the running gateway found, each point with a test that failed before its fix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from gateway._gen.sigw.v1 import transfer_pb2
from tests.conftest import Demo, FakeClock, as_, start_demo
from tests.helpers import error_details, eventually
from tests.integration.test_transfer_flow import create_request

WATCHES = 3


@pytest.fixture
async def capped(redis_url: str, clock: FakeClock) -> AsyncIterator[Demo]:
    d = await start_demo(redis_url, clock, act=False, overrides={"max_watches": WATCHES})
    yield d
    await d.channel.close()
    await d.gateway.stop(grace_s=0.2)
    await d.sims.stop()


async def test_one_participant_cannot_hold_more_than_its_watches(capped: Demo) -> None:
    """Point 1: a cap on open WatchTransfer streams per participant, RESOURCE_EXHAUSTED beyond it."""
    t = (await capped.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))).transfer
    request = transfer_pb2.WatchTransferRequest(transfer_id=t.transfer_id)

    def watch(
        who: str = "operator:x",
    ) -> grpc.aio.UnaryStreamCall[transfer_pb2.WatchTransferRequest, transfer_pb2.WatchTransferResponse]:
        return capped.transfers.WatchTransfer(request, metadata=as_(who))

    held = [watch() for _ in range(WATCHES)]
    for stream in held:
        first = await stream.read()
        assert isinstance(first, transfer_pb2.WatchTransferResponse)
        assert first.state == transfer_pb2.TRANSFER_STATE_SUBMITTED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await watch().read()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_details(refused.value)[0] == "TOO_MANY_STREAMS"
    # Another participant is not affected, and closing a stream frees its place.
    bystander = watch("agency:310000:hrss")
    assert isinstance(await bystander.read(), transfer_pb2.WatchTransferResponse)
    held.pop().cancel()

    async def one_more() -> bool:
        stream = watch()
        try:
            await stream.read()
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            return False
        held.append(stream)
        return True

    await eventually(one_more)
    for stream in [*held, bystander]:
        stream.cancel()
