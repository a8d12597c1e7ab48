"""The priority lane under load: queue 20,000 ordinary transfers for agencies that answer slowly, then submit
military transfers (Art. 17) to the same agencies, and measure each lane's queue wait (commit to delivery).

    make bench-priority          # or: .venv/bin/python -m bench.bench_priority --ordinary 20000 --military 100

Bounded: a fixed number of messages on loopback, then it stops. Ends with lines ``bench NAME VALUE UNIT``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from adapters.simulated_agency import SimulatedAgencies
from gateway._gen.sigw.v1 import agency_pb2
from gateway.app.idempotency import RequestKey
from gateway.config import Settings
from gateway.domain.idnumber import make_id_number
from gateway.domain.participants import AgencyKey, AgencyType, Participant
from gateway.domain.regions import Region, Registry
from gateway.domain.transfer.model import Application, Circumstances, Kind, MilitaryService
from gateway.server import start_gateway

REGIONS = ("110000", "310000", "440300", "510100")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def run(ordinary: int, military: int, delay_s: float, appendfsync: str) -> None:
    sims = SimulatedAgencies("127.0.0.1:1")
    await sims.start((AgencyKey(r, t), "127.0.0.1:0") for r in REGIONS for t in AgencyType)
    received: dict[str, float] = {}
    for agency in sims.agencies.values():
        agency.act = False
        agency.answer_delay_s = delay_s
    registry = Registry({r: Region(r, r, {t: sims.endpoints[AgencyKey(r, t)] for t in AgencyType}) for r in REGIONS})
    settings = Settings(
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        data_dir=Path(tempfile.mkdtemp(prefix="sigw-bench-")),
        calendar_file=None,
        appendfsync=appendfsync,
        insecure=True,
    )
    gateway = await start_gateway(settings, registry)
    service = gateway.transfers
    committed: dict[str, tuple[str, float]] = {}

    for agency in sims.agencies.values():

        def note(request: agency_pb2.DeliverRequest) -> None:
            received.setdefault(request.transfer_notice.transfer.transfer_id, time.perf_counter())

        agency.on_deliver = note

    async def create(i: int, kind: Kind) -> None:
        target = REGIONS[i % 4]
        app = Application(
            kind=kind,
            id_number=make_id_number("110105", date(1980, 1, 1), i % 1000),
            name="测试",
            source_region="910000" if kind is Kind.MILITARY_PENSION else REGIONS[(i + 1) % 4],
            target_region=target,
            circumstances=Circumstances(hukou_region=target),
        )
        if kind is Kind.MILITARY_PENSION:
            app = Application(
                **{
                    **app.__dict__,
                    "military": MilitaryService(date(2010, 1, 1), date(2026, 1, 1), 100_000, 50_000, (f"V{i}",)),
                }
            )
            actor = Participant.parse("military:BENCH")
        else:
            actor = Participant.parse(f"agency:{target}:hrss")
        transfer = (await service.create(actor, RequestKey(f"bench-{kind.name}-{i}", "fp"), app)).transfer
        committed[transfer.transfer_id] = ("priority" if transfer.priority else "ordinary", time.perf_counter())

    started = time.perf_counter()
    for batch in range(0, ordinary, 200):
        await asyncio.gather(*(create(i, Kind.EMPLOYEE_PENSION) for i in range(batch, min(batch + 200, ordinary))))
    queued_s = time.perf_counter() - started
    for i in range(military):
        await create(ordinary + i, Kind.MILITARY_PENSION)
        await asyncio.sleep(0.02)
    deadline = time.monotonic() + 600
    while len(received) < len(committed) and time.monotonic() < deadline:  # noqa: ASYNC110 (a bounded poll)
        await asyncio.sleep(0.1)
    drained_s = time.perf_counter() - started
    await gateway.stop(grace_s=0.5)
    await sims.stop()

    waits: dict[str, list[float]] = {"priority": [], "ordinary": []}
    for transfer_id, (lane, at) in committed.items():
        if transfer_id in received:
            waits[lane].append((received[transfer_id] - at) * 1000)
    lost = len(committed) - len(received)
    print(
        f"{ordinary} ordinary queued in {queued_s:.1f} s, then {military} military; all delivered in "
        f"{drained_s:.1f} s; agencies answer in {delay_s * 1000:.0f} ms; appendfsync {appendfsync}"
    )
    for lane in ("priority", "ordinary"):
        print(f"bench {lane}_p50_wait_ms {statistics.median(waits[lane]):.1f} ms")
        print(f"bench {lane}_p99_wait_ms {percentile(waits[lane], 0.99):.1f} ms")
    ratio = percentile(waits["priority"], 0.99) / percentile(waits["ordinary"], 0.99) * 100
    print(f"bench priority_to_ordinary_p99_ratio {ratio:.3f} %")
    print(f"bench undelivered {lost} messages")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ordinary", type=int, default=20_000)
    parser.add_argument("--military", type=int, default=100)
    parser.add_argument("--delay-ms", type=float, default=5.0, help="how long each agency takes to answer")
    parser.add_argument("--appendfsync", default="always", choices=["always", "everysec", "no"])
    args = parser.parse_args()
    asyncio.run(run(args.ordinary, args.military, args.delay_ms / 1000, args.appendfsync))


if __name__ == "__main__":
    main()
