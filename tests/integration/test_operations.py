"""What an operator sees: metrics, health (also while Redis is away), reflection."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from gateway._gen.sigw.v1 import transfer_pb2
from gateway.store.embedded import EmbeddedRedis
from tests.conftest import Demo, FakeClock, as_, start_demo
from tests.helpers import all_delivered, eventually, person_id, wait_for_state
from tests.integration.test_transfer_flow import create_request


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def test_metrics_use_go_grpc_prometheus_names_and_count_transfers(demo: Demo, redis_url: str) -> None:
    t = (await demo.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))).transfer
    await wait_for_state(demo.transfers, t.transfer_id, transfer_pb2.TRANSFER_STATE_COMPLETED)
    await all_delivered(redis_url)  # the last deliveries are counted once their agencies answered
    with contextlib.suppress(grpc.aio.AioRpcError):
        await demo.transfers.GetTransfer(transfer_pb2.GetTransferRequest(transfer_id="bad"), metadata=as_("operator:x"))
    await demo.gateway.check_store()
    status, text = await asyncio.to_thread(http_get, demo.gateway.http_port, "/metrics")
    assert status == 200
    assert (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="CreateTransfer",'
        'grpc_service="sigw.v1.TransferService",grpc_type="unary"} 1.0'
    ) in text
    assert 'grpc_code="INVALID_ARGUMENT",grpc_method="GetTransfer"' in text
    assert "grpc_server_handling_seconds_bucket" in text
    assert 'sigw_transfers{kind="EMPLOYEE_PENSION",state="COMPLETED"} 1.0' in text
    assert 'sigw_transfers{kind="EMPLOYEE_PENSION",state="SUBMITTED"} 0.0' in text
    assert 'sigw_deliveries_total{lane="ordinary",notice="CONTACT_LETTER",outcome="delivered"} 1.0' in text
    # No ID numbers and no transfer ids in any label.
    assert person_id() not in text and t.transfer_id not in text


async def _listed(channel: grpc.aio.Channel, version: str) -> set[str]:
    """The services a server lists over reflection ``version`` (v1 or v1alpha: the same messages)."""
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    replies = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    return {s.name async for reply in replies for s in reply.list_services_response.service}


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_reflection_lists_exactly_the_services_each_server_serves(demo: Demo, version: str) -> None:
    reflection = {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
    assert await _listed(demo.channel, version) == {
        "sigw.v1.TransferService",
        "sigw.v1.SettlementService",
        "sigw.v1.OperatorService",
        "grpc.health.v1.Health",
        *reflection,
    }  # not RegionAgencyService: agencies serve that
    agency = demo.sims.endpoints[next(iter(demo.sims.endpoints))]
    async with grpc.aio.insecure_channel(agency) as channel:
        assert await _listed(channel, version) == {"sigw.v1.RegionAgencyService", *reflection}


async def test_reflection_v1_describes_a_service(demo: Demo) -> None:
    call = demo.channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    ask = reflection_pb2.ServerReflectionRequest(file_containing_symbol="sigw.v1.TransferService")
    [reply] = [r async for r in call(iter([ask]))]
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(f) for f in reply.file_descriptor_response.file_descriptor_proto
    ]
    assert any(service.name == "TransferService" for f in files if f.package == "sigw.v1" for service in f.service)


async def test_health_is_not_serving_while_redis_is_away_and_recovers(tmp_path: Path, clock: FakeClock) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis", appendfsync="always")
    redis_server.start()
    d = await start_demo(redis_server.url, clock, act=False)
    health = health_pb2_grpc.HealthStub(d.channel)
    try:

        async def status() -> int:
            reply = await health.Check(health_pb2.HealthCheckRequest(service="sigw.v1.TransferService"))
            return int(reply.status)

        assert await status() == health_pb2.HealthCheckResponse.SERVING
        t = (await d.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))).transfer
        redis_server.kill()
        await d.gateway.check_store()
        assert await status() == health_pb2.HealthCheckResponse.NOT_SERVING
        code, body = await asyncio.to_thread(http_get, d.gateway.http_port, "/healthz")
        assert (code, body.strip()) == (503, "NOT_SERVING")
        # Calls fail clearly while the store is away.
        try:
            await d.transfers.GetTransfer(
                transfer_pb2.GetTransferRequest(transfer_id=t.transfer_id), metadata=as_("operator:x")
            )
            raise AssertionError("expected UNAVAILABLE")
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE
        redis_server.start()  # on the same append-only file
        await eventually(lambda: d.gateway.serving)
        assert await status() == health_pb2.HealthCheckResponse.SERVING
        back = await d.transfers.GetTransfer(
            transfer_pb2.GetTransferRequest(transfer_id=t.transfer_id), metadata=as_("operator:x")
        )
        assert back.transfer.transfer_id == t.transfer_id
    finally:
        await d.channel.close()
        await d.gateway.stop(grace_s=0.1)
        await d.sims.stop()
        redis_server.stop()


async def test_health_stays_not_serving_through_a_graceful_shutdown(demo: Demo) -> None:
    t = (await demo.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))).transfer
    # A call in flight (a watch) keeps the server in its grace period.
    watch = demo.transfers.WatchTransfer(
        transfer_pb2.WatchTransferRequest(transfer_id=t.transfer_id), metadata=as_("operator:x")
    )
    await watch.read()
    # The grace period is long: the open watch holds the server in it until the test cancels the watch below.
    stopping = asyncio.create_task(demo.gateway.stop(grace_s=60))
    await eventually(lambda: demo.gateway.stopping and not demo.gateway.serving)
    for _ in range(5):  # across several health-monitor rounds
        await demo.gateway.check_store()
        code, body = await asyncio.to_thread(http_get, demo.gateway.http_port, "/healthz")
        assert (code, body.strip()) == (503, "NOT_SERVING")
        await asyncio.sleep(0.2)
    watch.cancel()
    await stopping
