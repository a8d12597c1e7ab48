"""Open watches and everyone else: a bystander's GetTransfer latency with no watch open, then with 2,000
WatchTransfer streams open (20 participants, 100 each: the per-participant cap) on a transfer that stays open
(no agency answers), against `sigw serve --single` in its own process on loopback. The streams open 100 at a
time, as watchers come: 2,000 opened in one burst lose about a tenth to grpc, which cancels them before they
reach the gateway.

    make bench-watches          # or: .venv/bin/python -m bench.bench_watches --streams 2000 --calls 400

Bounded: a fixed number of streams and calls, then it stops. Ends with lines ``bench NAME VALUE UNIT``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench.bench_priority import percentile
from bench.run import free_port
from gateway._gen.sigw.v1 import common_pb2, transfer_pb2, transfer_pb2_grpc

LOG = Path(tempfile.gettempdir()) / "sigw-bench-watches.log"
PER_PARTICIPANT = 100
OPEN_BATCH = 100
CHANNELS = 40
"""Connections the streams spread over (50 each with 2,000 streams)."""


def as_(participant: str) -> tuple[tuple[str, str]]:
    return (("x-sigw-participant", participant),)


async def bystander_p99_ms(stub: transfer_pb2_grpc.TransferServiceAsyncStub, transfer_id: str, calls: int) -> float:
    """One call after another (a bystander's pace), each timed."""
    request = transfer_pb2.GetTransferRequest(transfer_id=transfer_id)
    took = []
    for _ in range(calls):
        started = time.perf_counter()
        await stub.GetTransfer(request, metadata=as_("operator:bystander"), timeout=10)
        took.append((time.perf_counter() - started) * 1000)
    return percentile(took, 0.99)


def start_gateway(port: int, http: int) -> subprocess.Popen[bytes]:
    data = Path(tempfile.mkdtemp(prefix="sigw-bench-watches-"))
    env = {
        **os.environ,
        "SIGW_CALENDAR_FILE": "",
        "SIGW_NATIONAL_LISTEN": "",
        "SIGW_RATE_PER_S": "100000",
        "SIGW_KEY_FILE": str(data / "sigw.keys"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--single", "--insecure", "--dev-identity",
         "--grpc-listen", f"127.0.0.1:{port}", "--http-listen", f"127.0.0.1:{http}", "--data-dir", str(data)],
        stdout=LOG.open("wb"), stderr=subprocess.STDOUT, env=env,  # the gateway's log, should a run go wrong
    )  # fmt: skip


async def run(port: int, streams: int, calls: int) -> None:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(CHANNELS)]
    try:
        stub = transfer_pb2_grpc.TransferServiceStub(channels[0])
        request = transfer_pb2.CreateTransferRequest(
            request_id="watched", kind=transfer_pb2.TRANSFER_KIND_EMPLOYEE_PENSION, source_region="110000",
            target_region="310000", person=common_pb2.Person(id_number="110105199006151234", name="张三"),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                created = await stub.CreateTransfer(request, metadata=as_("agency:310000:hrss"), timeout=5)
                break
            except grpc.aio.AioRpcError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        transfer_id = created.transfer.transfer_id
        await bystander_p99_ms(stub, transfer_id, 50)  # warm up
        idle = await bystander_p99_ms(stub, transfer_id, calls)
        watch = transfer_pb2.WatchTransferRequest(transfer_id=transfer_id)
        opened: list[Any] = []
        firsts: list[Any] = []
        for batch in range(0, streams, OPEN_BATCH):  # opened as watchers come, a batch at a time
            batch_calls = [
                transfer_pb2_grpc.TransferServiceStub(channels[i % len(channels)]).WatchTransfer(
                    watch, metadata=as_(f"operator:watcher{i // PER_PARTICIPANT}")
                )
                for i in range(batch, min(batch + OPEN_BATCH, streams))
            ]
            opened += batch_calls
            firsts += await asyncio.gather(*(call.read() for call in batch_calls), return_exceptions=True)
        held = sum(isinstance(f, transfer_pb2.WatchTransferResponse) for f in firsts)
        failures = sorted({f.code().name if isinstance(f, grpc.aio.AioRpcError) else type(f).__name__
                           for f in firsts if not isinstance(f, transfer_pb2.WatchTransferResponse)})  # fmt: skip
        loaded = await bystander_p99_ms(stub, transfer_id, calls)
        refused = transfer_pb2_grpc.TransferServiceStub(channels[0]).WatchTransfer(
            watch, metadata=as_("operator:watcher0")
        )
        try:
            await refused.read()
            over_cap = "accepted"
        except grpc.aio.AioRpcError as error:
            over_cap = error.code().name
        for call in opened:
            call.cancel()
        print(f"{held} of {streams} streams open (failures: {', '.join(failures) or 'none'}); one more from a "
              f"participant at its cap: {over_cap}")  # fmt: skip
        print(f"bench bystander_p99_idle_ms {idle:.2f} ms")
        print(f"bench bystander_p99_with_watches_ms {loaded:.2f} ms")
        print(f"bench bystander_p99_ratio {loaded / idle:.2f} x")
    finally:
        for channel in channels:
            await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=400, help="bystander calls per measurement")
    args = parser.parse_args()
    port, http = free_port(), free_port()
    server = start_gateway(port, http)
    try:
        asyncio.run(run(port, args.streams, args.calls))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
