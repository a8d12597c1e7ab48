"""How the CLI writes what the contract sends."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from gateway.cli.render import time_text


def test_an_instant_is_printed_in_shanghai_with_its_offset() -> None:
    instant = Timestamp()
    instant.FromDatetime(datetime(2026, 3, 1, 17, 30, tzinfo=UTC))  # 01:30 the next day in Beijing time
    assert time_text(instant) == "2026-03-02 01:30:00+08:00"
    assert time_text(Timestamp()) == "-"
