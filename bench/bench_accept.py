"""Accept-and-enqueue throughput: CreateTransfer over gRPC on loopback, with the embedded Redis fsyncing
every write (appendfsync always). Bounded: N requests, then it stops.

    make bench-accept            # or: .venv/bin/python -m bench.bench_accept --requests 3000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import grpc

from adapters.simulated_agency import SimulatedAgencies
from gateway._gen.sigw.v1 import common_pb2, transfer_pb2, transfer_pb2_grpc
from gateway.config import Settings
from gateway.domain.idnumber import make_id_number
from gateway.domain.participants import AgencyKey, AgencyType
from gateway.domain.regions import Region, Registry
from gateway.server import start_gateway

REGIONS = ("110000", "310000", "440300", "510100")


async def run(requests: int, concurrency: int, appendfsync: str) -> None:
    data = Path(tempfile.mkdtemp(prefix="sigw-bench-"))
    sims = SimulatedAgencies("127.0.0.1:1")
    await sims.start((AgencyKey(r, t), "127.0.0.1:0") for r in REGIONS for t in AgencyType)
    for agency in sims.agencies.values():
        agency.act = False
    registry = Registry({r: Region(r, r, {t: sims.endpoints[AgencyKey(r, t)] for t in AgencyType}) for r in REGIONS})
    settings = Settings(
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        data_dir=data,
        calendar_file=None,
        insecure=True,
        dev_identity=True,
        appendfsync=appendfsync,
    )
    gateway = await start_gateway(settings, registry)
    sims.connect(gateway.target)
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async with grpc.aio.insecure_channel(gateway.target) as channel:
        stub = transfer_pb2_grpc.TransferServiceStub(channel)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                source, target = REGIONS[i % 4], REGIONS[(i + 1) % 4]
                request = transfer_pb2.CreateTransferRequest(
                    request_id=f"bench-{i}",
                    kind=transfer_pb2.TRANSFER_KIND_EMPLOYEE_PENSION,
                    person=common_pb2.Person(
                        id_number=make_id_number("110105", date(1980, 1, 1), i % 1000), name="测试"
                    ),
                    source_region=source,
                    target_region=target,
                )
                started = time.perf_counter()
                await stub.CreateTransfer(request, metadata=(("x-sigw-participant", f"agency:{target}:hrss"),))
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    await gateway.stop(grace_s=0.5)
    await sims.stop()
    latencies.sort()
    print(f"{requests} creates, concurrency {concurrency}, appendfsync {appendfsync}, {elapsed:.2f} s")
    print(f"bench accept_rate {requests / elapsed:.0f} req/s")
    print(f"bench accept_p50_ms {statistics.median(latencies) * 1000:.2f} ms")
    print(f"bench accept_p99_ms {latencies[int(len(latencies) * 0.99) - 1] * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--appendfsync", default="always", choices=["always", "everysec", "no"])
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.concurrency, args.appendfsync))


if __name__ == "__main__":
    main()
