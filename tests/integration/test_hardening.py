"""What an outside attack on the running gateway found, each point with a test that failed before its fix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from aiohttp import web
from redis.asyncio import Redis

from gateway._gen.sigw.v1 import transfer_pb2
from gateway.api.connections import ConnectionLimits
from gateway.api.http import start_site
from gateway.store.client import redis_client
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


async def test_http_connections_are_capped_per_source_and_silent_ones_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Point 6, HTTP side: a source over its cap is closed at once, a connection that sends nothing is closed
    after the handshake timeout, a request still gets through, and each limit that bites is logged."""

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", hello)
    limits = ConnectionLimits(handshake_timeout_s=2.0, per_source=2)  # ample for the two steps before it
    site = await start_site(app, "127.0.0.1:0", limits=limits)
    try:
        held = [await asyncio.open_connection("127.0.0.1", site.port) for _ in range(2)]
        await eventually(lambda: site.counter.open["127.0.0.1"] == 2)
        reader, _ = await asyncio.open_connection("127.0.0.1", site.port)
        assert await reader.read() == b""  # closed at once: over the cap
        assert site.counter.refused["127.0.0.1"] == 1
        # The two silent ones are closed after the timeout, which frees the source's places.
        for silent, _ in held:
            assert await silent.read() == b""
        await eventually(lambda: site.counter.open["127.0.0.1"] == 0)
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{site.port}/") as reply:
            assert await reply.text() == "ok"
    finally:
        await site.stop()
    logged = [r.getMessage() for r in caplog.records if r.name == "sigw.connections"]
    assert any("per_source" in m for m in logged) and any("first_bytes" in m for m in logged)


async def reads(client: Redis, ended: asyncio.Event) -> None:
    try:
        for _ in range(10_000):
            await client.get("sigw:test:cancel")
    finally:
        ended.set()


async def test_a_cancelled_caller_stays_cancelled_through_redis_commands(redis_url: str) -> None:
    """Why a watcher that went away could hold its place for good: redis-py sends under ``asyncio.wait_for``,
    which on Python 3.11 can swallow the caller's cancellation. Through sigw's client every cancelled caller
    ends cancelled."""
    client = redis_client(redis_url, 4)
    await client.set("sigw:test:cancel", b"v")
    swallowed = 0
    try:
        for attempt in range(100):
            ended = asyncio.Event()
            task = asyncio.create_task(reads(client, ended))
            for _ in range(attempt % 7 + 1):  # cancel at different points of a command
                await asyncio.sleep(0)
            task.cancel()
            await ended.wait()
            swallowed += 0 if task.cancelled() else 1
    finally:
        await client.delete("sigw:test:cancel")
        await client.aclose()
    assert swallowed == 0
