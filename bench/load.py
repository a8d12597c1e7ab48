"""The load generator: one process, grpc.aio over mutual TLS on loopback, bounded in time. ``make bench`` runs
it against the echo server and the gateway alike and reads the JSON summary it prints.

Closed loop (``--concurrency`` calls in flight for ``--seconds``) finds a maximum; open loop (``--rate`` calls a
second, each sent on schedule whatever the replies do) measures latency from the scheduled send, so a stalled
server cannot hide its queue (no coordinated omission).

    python -m bench.load --target 127.0.0.1:50051 --tls-dir var/pki --scenario create --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from bench.echo import METHOD
from gateway._gen.sigw.v1 import common_pb2, settlement_pb2, settlement_pb2_grpc, transfer_pb2, transfer_pb2_grpc
from gateway.domain.calendar import SHANGHAI
from gateway.domain.idnumber import make_id_number
from gateway.security.tls import TlsFolder

CREATOR = "agency:110000:hrss"
HOSPITAL = "hospital:440300:H44030000001"
SOURCES = ("310000", "440300", "510100")
CHANNELS = 16
"""Connections the load spreads over (each its own TCP connection), so SO_REUSEPORT spreads it over the API
processes."""
MAX_IN_FLIGHT = 2000
"""Open loop: a server this far behind has failed the run; stop sending rather than grow without bound."""


def person(i: int) -> str:
    """The i-th distinct valid ID number (born 1990 onwards, so no age rule interferes)."""
    return make_id_number("110105", date(1990, 1, 1) + timedelta(days=i // 999), 1 + i % 999)


def create_request(run: str, i: int) -> transfer_pb2.CreateTransferRequest:
    return transfer_pb2.CreateTransferRequest(
        request_id=f"{run}-{i}",
        kind=transfer_pb2.TRANSFER_KIND_EMPLOYEE_PENSION,
        source_region=SOURCES[i % len(SOURCES)],
        target_region="110000",
        person=common_pb2.Person(id_number=person(i), name="测试"),
    )


def settle_request(run: str, i: int, today: date) -> settlement_pb2.SettleRequest:
    """The i-th distinct inpatient bill of H44030000001 (Shenzhen) for a person insured in Beijing."""
    stamp = datetime.combine(today, datetime.min.time(), SHANGHAI) + timedelta(seconds=i // 9999)
    msgid = f"H44030000001{stamp:%Y%m%d%H%M%S}{1 + i % 9999:04d}"
    day = common_pb2.Date(year=today.year, month=today.month, day=today.day)
    items = [
        settlement_pb2.BillItem(
            code="A001", name="床位费", catalogue_class=settlement_pb2.CATALOGUE_CLASS_A, amount_fen=1_200_000
        ),
        settlement_pb2.BillItem(
            code="B001",
            name="乙类药品",
            catalogue_class=settlement_pb2.CATALOGUE_CLASS_B,
            amount_fen=600_000,
            self_pay_percent=10,
        ),
        settlement_pb2.BillItem(
            code="C001", name="丙类项目", catalogue_class=settlement_pb2.CATALOGUE_CLASS_C, amount_fen=200_000
        ),
    ]
    return settlement_pb2.SettleRequest(
        bill=settlement_pb2.Bill(
            msgid=msgid,
            hospital_code="H44030000001",
            hospital_level=3,
            treatment_region="440300",
            insured_region="110000",
            visit_id=f"{run}{i}",
            person=common_pb2.Person(id_number=person(i), name="测试"),
            credential_type=settlement_pb2.CREDENTIAL_TYPE_E_VOUCHER,
            insurance_type="310",
            medical_type="21",
            admission_date=day,
            discharge_date=day,
            items=items,
            total_fen=2_000_000,
        )
    )


@dataclass
class Result:
    count: int = 0
    errors: int = 0
    error_sample: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    reply_bytes: int = 0
    issued: int = 0

    def summary(self, elapsed_s: float) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(len(ordered) * p))], 2) if ordered else 0.0

        return {
            "count": self.count,
            "errors": self.errors,
            "error_sample": self.error_sample,
            "elapsed_s": round(elapsed_s, 3),
            "rate_per_s": round(self.count / elapsed_s, 1) if elapsed_s else 0.0,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": pct(1.0),
            "ids": self.ids,
            "reply_bytes": self.reply_bytes,
            "issued": self.issued,
        }


Call = Callable[[int], Awaitable[str]]


def scenario(name: str, channels: list[grpc.aio.Channel], run: str, ids: list[str], result: Result) -> Call:
    """The call for request number i, spread round-robin over the channels; it returns an id worth keeping."""
    today = datetime.now(SHANGHAI).date()
    if name == "echo":
        payload = create_request(run, 0).SerializeToString()
        echoes: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
            ch.unary_unary(METHOD, request_serializer=None, response_deserializer=None) for ch in channels
        ]

        async def echo(i: int) -> str:
            await echoes[i % len(echoes)](payload, timeout=10)
            return ""

        return echo
    if name == "create":
        creators = [transfer_pb2_grpc.TransferServiceStub(ch) for ch in channels]

        async def create(i: int) -> str:
            reply = await creators[i % len(creators)].CreateTransfer(create_request(run, i), timeout=10)
            result.reply_bytes = result.reply_bytes or reply.ByteSize()
            return reply.transfer.transfer_id

        return create
    if name == "get":
        readers = [transfer_pb2_grpc.TransferServiceStub(ch) for ch in channels]

        async def get(i: int) -> str:
            request = transfer_pb2.GetTransferRequest(transfer_id=ids[i % len(ids)])
            await readers[i % len(readers)].GetTransfer(request, timeout=10)
            return ""

        return get
    if name == "settle":
        settlers = [settlement_pb2_grpc.SettlementServiceStub(ch) for ch in channels]

        async def settle(i: int) -> str:
            reply = await settlers[i % len(settlers)].Settle(settle_request(run, i, today), timeout=10)
            return reply.settlement.settlement_id

        return settle
    raise ValueError(f"unknown scenario {name}")


async def closed_loop(
    call: Call, result: Result, first: int, concurrency: int, seconds: float, keep_ids: bool
) -> tuple[Result, float]:
    counter = iter(range(first, 10**9))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            i = next(counter)
            result.issued += 1
            started = time.perf_counter()
            try:
                found = await call(i)
            except grpc.aio.AioRpcError as error:
                result.errors += 1
                result.error_sample = result.error_sample or f"{error.code().name}: {error.details()}"
                continue
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.count += 1
            if keep_ids and found:
                result.ids.append(found)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result, time.perf_counter() - started


async def open_loop(
    call: Call, result: Result, first: int, rate: float, seconds: float, keep_ids: bool
) -> tuple[Result, float]:
    in_flight: set[asyncio.Task[None]] = set()

    async def one(i: int, scheduled: float) -> None:
        try:
            found = await call(i)
        except grpc.aio.AioRpcError as error:
            result.errors += 1
            result.error_sample = result.error_sample or f"{error.code().name}: {error.details()}"
            return
        result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
        result.count += 1
        if keep_ids and found:
            result.ids.append(found)

    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= MAX_IN_FLIGHT:
            result.errors += total - i
            result.error_sample = result.error_sample or f"more than {MAX_IN_FLIGHT} calls in flight: overloaded"
            break
        result.issued += 1
        task = asyncio.create_task(one(first + i, scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight)
    return result, time.perf_counter() - start


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tls = TlsFolder(args.tls_dir)
    caller = {"create": CREATOR, "get": CREATOR, "settle": HOSPITAL, "echo": CREATOR}[args.scenario]
    credentials = tls.channel_credentials(caller)
    options = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per channel
    channels = [grpc.aio.secure_channel(args.target, credentials, options=options) for _ in range(CHANNELS)]
    for channel in channels:
        await asyncio.wait_for(channel.channel_ready(), 10)
    ids = json.loads(args.ids.read_text()) if args.ids else []
    result = Result()
    call = scenario(args.scenario, channels, args.run, ids, result)
    if args.rate:
        result, elapsed = await open_loop(call, result, args.first, args.rate, args.seconds, args.keep_ids)
    else:
        result, elapsed = await closed_loop(call, result, args.first, args.concurrency, args.seconds, args.keep_ids)
    for channel in channels:
        await channel.close()
    return result.summary(elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True)
    parser.add_argument("--tls-dir", type=Path, required=True)
    parser.add_argument("--scenario", choices=["echo", "create", "get", "settle"], required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: calls a second (0: closed loop)")
    parser.add_argument("--run", default="bench", help="prefix of request ids and visit ids (distinct per run)")
    parser.add_argument("--first", type=int, default=0, help="number of the first request (msgids, persons)")
    parser.add_argument("--ids", type=Path, help="get: a JSON list of transfer ids to read")
    parser.add_argument("--keep-ids", action="store_true", help="report the ids created")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.write_text(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
