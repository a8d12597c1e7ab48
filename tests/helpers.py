"""Small helpers for integration tests: reading google.rpc details off errors, waiting for states and events.

Tests wait for an event, never for a fixed time. The waits below poll for their condition and give up only after
a generous bound (``PATIENCE_S``), which a passing test never reaches: a busy machine makes a test slower, never
red."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import cast

import grpc
import redis
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway._gen.sigw.v1 import transfer_pb2, transfer_pb2_grpc
from gateway.domain.idnumber import make_id_number
from gateway.store.client import StreamRows

OPERATOR = (("x-sigw-participant", "operator:test"),)
PATIENCE_S = 60.0
"""How long a wait may take before the test fails: far beyond what any event takes, even on a loaded machine."""


def person_id(sequence: int = 123, area: str = "110105") -> str:
    """A valid ID number of a person born 1990-06-15: under 40 in the tests' 2026, so no transfer of theirs opens a
    temporary account (66号 Art. 5) unless a test asks for one."""
    from datetime import date

    return make_id_number(area, date(1990, 6, 15), sequence)


def error_details(error: grpc.aio.AioRpcError) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    """(ErrorInfo reason, its metadata, BadRequest field violations) of a failed call."""
    status = rpc_status.from_call(error)
    reason, metadata, violations = "", {}, []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.description) for v in bad.field_violations]
    return reason, metadata, violations


async def wait_for_state(
    stub: transfer_pb2_grpc.TransferServiceAsyncStub, transfer_id: str, state: int, timeout_s: float = PATIENCE_S
) -> transfer_pb2.Transfer:
    """Poll GetTransfer (as an operator) until the transfer reaches ``state``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        reply = await stub.GetTransfer(transfer_pb2.GetTransferRequest(transfer_id=transfer_id), metadata=OPERATOR)
        if reply.transfer.state == state:
            return reply.transfer
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{transfer_id} stayed {reply.transfer.state}, wanted {state}")
        await asyncio.sleep(0.05)


async def eventually(condition: Callable[[], object], timeout_s: float = PATIENCE_S) -> None:
    """Wait until ``condition()`` is true (awaiting it when it returns an awaitable), polling; fail after
    ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def retry_delay(error: grpc.aio.AioRpcError) -> float | None:
    """The RetryInfo delay of a failed call, in seconds, or None when it has none."""
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


def stream_rows(client: redis.Redis, name: str | bytes) -> StreamRows:
    """XRANGE of a whole stream. The tests' clients leave decode_responses off, so ids, field names and values are
    bytes (redis-py types them as ``bytes | str`` either way)."""
    return cast(StreamRows, client.xrange(name))


def undelivered(redis_url: str) -> int:
    """Messages not yet delivered: entries left in every outbox and agency lane (a delivered message is deleted
    from its stream), and dead letters are not counted."""
    client = redis.Redis.from_url(redis_url)
    try:
        streams = [k for k in cast(list[bytes], client.keys("sigw:*")) if client.type(k) == b"stream"]
        pending = [s for s in streams if b":outbox" in s or s.endswith((b":priority", b":ordinary"))]
        lengths = [client.xlen(s) for s in pending]
        return sum(lengths)
    finally:
        client.close()


async def all_delivered(redis_url: str) -> None:
    """Wait until every committed message was delivered (none left to deliver, so none can still arrive)."""
    await eventually(lambda: undelivered(redis_url) == 0)
