"""The logs an operator reads: one structured line per event (JSON for a collector, text in a terminal), a call's
line with request id, participant, method, code and duration, and no ID number or mobile number anywhere."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import grpc
import pytest

from gateway._gen.sigw.v1 import transfer_pb2
from gateway.cli.logs import setup_logging
from tests.conftest import FakeClock, as_, start_demo
from tests.helpers import person_id
from tests.integration.test_transfer_flow import create_request

S = transfer_pb2


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    setup_logging("api-1", "json", out)
    yield out
    root.handlers[:], root.level = handlers, level


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_every_line_is_json_with_its_context_and_personal_data_masked(logged: io.StringIO) -> None:
    log = logging.getLogger("sigw.test")
    log.info("refused %s", person_id(), extra={"participant": "portal:gov", "note": "call 13812345678"})
    try:
        raise ValueError(f"bad {person_id()}")
    except ValueError:
        log.exception("failed")
    first, second = _lines(logged)
    assert first["event"] == f"refused {person_id()[:4]}**********{person_id()[14:]}"
    assert (first["level"], first["logger"], first["process"]) == ("info", "sigw.test", "api-1")
    assert first["participant"] == "portal:gov" and first["note"] == "call 138****5678"
    assert str(first["timestamp"]).endswith("Z")  # UTC
    assert "ValueError" in str(second["exception"]) and person_id() not in logged.getvalue()


def test_in_a_terminal_the_line_reads_as_text() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("delivery", "console", out)
        logging.getLogger("sigw.test").warning("lane is lagging", extra={"lane": "priority"})
    finally:
        root.handlers[:], root.level = handlers, level
    line = out.getvalue()
    assert "lane is lagging" in line and "lane=priority" in line and "process=delivery" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


async def test_a_calls_line_names_request_participant_method_code_and_duration(
    logged: io.StringIO, redis_url: str, clock: FakeClock
) -> None:
    demo = await start_demo(redis_url, clock, act=False, overrides={"log_calls": True})
    try:
        metadata = (*as_("agency:310000:hrss"), ("x-request-id", "req-42"))
        with pytest.raises(grpc.aio.AioRpcError):
            await demo.transfers.GetTransfer(
                S.GetTransferRequest(transfer_id="T01-20260302-0000ABCD"), metadata=metadata
            )
        await demo.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))  # OK: logged too
    finally:
        await demo.channel.close()
        await demo.gateway.stop(grace_s=0.2)
        await demo.sims.stop()
    [call] = [line for line in _lines(logged) if line.get("method") == "/sigw.v1.TransferService/GetTransfer"]
    assert call["request_id"] == "req-42" and call["participant"] == "agency:310000:hrss"
    assert call["code"] == "NOT_FOUND" and isinstance(call["duration_ms"], float)
    [created] = [line for line in _lines(logged) if line.get("method") == "/sigw.v1.TransferService/CreateTransfer"]
    assert created["code"] == "OK" and created["request_id"] == create_request().request_id  # its own key
    assert person_id() not in logged.getvalue()
