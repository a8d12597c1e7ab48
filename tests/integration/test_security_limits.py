"""Hostile callers: per-participant rate limits and the applicants' status-query guard."""

from __future__ import annotations

import grpc
import pytest

from gateway._gen.sigw.v1 import transfer_pb2
from tests.conftest import FakeClock, as_, start_demo
from tests.helpers import error_details, person_id, retry_delay
from tests.integration.test_transfer_flow import create_request

S = transfer_pb2


async def test_a_caller_over_its_rate_gets_resource_exhausted_with_retry_info(redis_url: str, clock: FakeClock) -> None:
    d = await start_demo(redis_url, clock, act=False, rate_per_s=5)
    try:
        codes = []
        for _ in range(15):  # a burst of 10 is allowed, then 5 a second
            try:
                await d.transfers.GetTransfer(
                    S.GetTransferRequest(transfer_id="T00-20260302-00000000"), metadata=as_("operator:greedy")
                )
            except grpc.aio.AioRpcError as error:
                codes.append(error.code())
                last = error
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 4
        assert error_details(last)[0] == "RATE_LIMITED" and 0 < (retry_delay(last) or 0) <= 0.2
        # Another participant is not held back by the greedy one.
        with pytest.raises(grpc.aio.AioRpcError) as other:
            await d.transfers.GetTransfer(
                S.GetTransferRequest(transfer_id="T00-20260302-00000000"), metadata=as_("operator:patient")
            )
        assert other.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await d.channel.close()
        await d.gateway.stop(grace_s=0.1)
        await d.sims.stop()


async def test_guessing_id_numbers_for_a_transfer_is_cut_off(redis_url: str, clock: FakeClock) -> None:
    d = await start_demo(redis_url, clock, act=False)
    try:
        t = (await d.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))).transfer
        portal = as_("portal:gov")
        for guess in range(5):
            with pytest.raises(grpc.aio.AioRpcError) as wrong:
                await d.transfers.QueryTransferStatus(
                    S.QueryTransferStatusRequest(transfer_id=t.transfer_id, id_number=person_id(sequence=500 + guess)),
                    metadata=portal,
                )
            assert wrong.value.code() == grpc.StatusCode.NOT_FOUND
        # Now even the right ID number is refused for a while, so guessing cannot go on.
        with pytest.raises(grpc.aio.AioRpcError) as blocked:
            await d.transfers.QueryTransferStatus(
                S.QueryTransferStatusRequest(transfer_id=t.transfer_id, id_number=person_id()), metadata=portal
            )
        assert blocked.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_details(blocked.value)[0] == "TOO_MANY_FAILED_QUERIES" and retry_delay(blocked.value) == 900
    finally:
        await d.channel.close()
        await d.gateway.stop(grace_s=0.1)
        await d.sims.stop()


async def test_a_message_over_4_mb_is_refused(redis_url: str, clock: FakeClock) -> None:
    d = await start_demo(redis_url, clock, act=False)
    try:
        huge = create_request()
        huge.note = "x" * (4 * 1024 * 1024 + 10)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await d.transfers.CreateTransfer(huge, metadata=as_("agency:310000:hrss"))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await d.channel.close()
        await d.gateway.stop(grace_s=0.1)
        await d.sims.stop()
