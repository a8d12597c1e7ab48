"""Slow and flaky links: a proxy between the gateway and each agency (and one between the agencies' answers and
the gateway) adds latency, drops connections at random points and resets some. A few hundred transfers still
all complete, with every contact letter, information table and completion delivered; no agency applies any
message twice, and nothing goes to the dead letters."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import grpc
import pytest

from adapters.simulated_agency import SimulatedAgencies
from gateway._gen.sigw.v1 import transfer_pb2, transfer_pb2_grpc
from gateway.config import Settings
from gateway.dispatch.dispatcher import DispatchSettings
from gateway.dispatch.retry import RetryPolicy
from gateway.domain.participants import AgencyKey, AgencyType
from gateway.domain.regions import Region, Registry
from gateway.server import start_gateway
from tests.conftest import FakeClock, as_
from tests.faults.proxy import Faults, TcpProxy
from tests.faults.support import REGIONS, applied_twice, dead_letters, pension, report, until
from tests.helpers import OPERATOR

N = 300
S = transfer_pb2
# Most connections misbehave: 70% are dropped at a random point of their first 32 KiB, and of the rest 80% are reset
# after 8 KiB, until each link has misbehaved 20 times.
AGENCY_LINK = Faults(
    latency_s=0.002,
    drop_probability=0.7,
    drop_within_bytes=32 * 1024,
    reset_probability=0.8,
    reset_after_bytes=8 * 1024,
    max_faults=20,
)
ANSWER_LINK = Faults(latency_s=0.005, drop_probability=0.8, drop_within_bytes=8 * 1024, max_faults=20)
DONE = (S.TRANSFER_STATE_COMPLETED, S.TRANSFER_STATE_REJECTED, S.TRANSFER_STATE_CANCELLED)


def medical(n: int, prefix: str) -> tuple[S.CreateTransferRequest, str]:
    """Like ``pension`` but employee medical, which travels between the healthcare-security agencies."""
    request, _ = pension(n, prefix)
    request.kind = S.TRANSFER_KIND_EMPLOYEE_MEDICAL
    return request, f"agency:{request.target_region}:healthcare"


@pytest.mark.faults
async def test_transfers_complete_over_slow_flaky_links(redis_url: str, clock: FakeClock) -> None:
    sims = SimulatedAgencies("127.0.0.1:1", act_delay_s=0.0)
    await sims.start((AgencyKey(code, t), "127.0.0.1:0") for code in REGIONS for t in AgencyType)
    proxies = {
        key: await TcpProxy.to(endpoint, replace(AGENCY_LINK), seed=i).start()
        for i, (key, endpoint) in enumerate(sims.endpoints.items())
    }
    registry = Registry(
        {code: Region(code, code, {t: proxies[AgencyKey(code, t)].endpoint for t in AgencyType}) for code in REGIONS}
    )
    settings = Settings(
        grpc_listen="127.0.0.1:0",
        national_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        redis_url=redis_url,
        insecure=True,
        dev_identity=True,
        shards=4,
    )
    dispatch = DispatchSettings(
        shards=4,
        block_ms=100,
        claim_idle_ms=2000,
        retry=RetryPolicy(
            max_attempts=4, max_delay_s=3, initial_backoff_s=0.02, max_backoff_s=0.2, attempt_timeout_s=2
        ),
    )
    gateway = await start_gateway(settings, registry, clock=clock, dispatch=dispatch)
    answers = await TcpProxy.to(gateway.target, ANSWER_LINK, seed=99).start()
    sims.connect(answers.endpoint)  # the agencies' contact letters, tables and completions cross a flaky link too
    channel = grpc.aio.insecure_channel(gateway.target)
    stub = transfer_pb2_grpc.TransferServiceStub(channel)
    agencies = list(sims.agencies.values())
    started = time.monotonic()
    try:
        ids = []
        for start in range(0, N, 25):
            batch = [medical(i, "fl") if i % 3 == 2 else pension(i, "fl") for i in range(start, start + 25)]
            replies = await asyncio.gather(
                *(stub.CreateTransfer(r, metadata=as_(caller), timeout=5) for r, caller in batch)
            )
            ids += [reply.transfer.transfer_id for reply in replies]
        states: dict[str, int] = {}

        async def all_done() -> bool:
            open_ids = [tid for tid in ids if states.get(tid) not in DONE]
            for chunk in range(0, len(open_ids), 50):
                replies = await asyncio.gather(
                    *(
                        stub.GetTransfer(S.GetTransferRequest(transfer_id=tid), metadata=OPERATOR, timeout=5)
                        for tid in open_ids[chunk : chunk + 50]
                    )
                )
                states.update((r.transfer.transfer_id, r.transfer.state) for r in replies)
            return all(states.get(tid) in DONE for tid in ids)

        took = await until(all_done, "every transfer finished", interval_s=0.25)
        # Per transfer: the request, the letter, the table, and the completion, which the source agency gets after
        # the transfer completed.
        await until(lambda: sum(a.stats.applied for a in agencies) >= 4 * N, "every notice delivered")
        completed = sum(1 for tid in ids if states[tid] == S.TRANSFER_STATE_COMPLETED)
        links = [*proxies.values(), answers]
        twice = applied_twice(agencies)
        report(
            "flaky_links",
            transfers=N,
            completed=completed,
            messages_applied=sum(a.stats.applied for a in agencies),
            redelivered=sum(a.stats.duplicates for a in agencies),
            duplicates_applied=twice,
            drops=sum(p.stats.drops for p in links),
            resets=sum(p.stats.resets for p in links),
            connections=sum(p.stats.connections for p in links),
            dead_letters=dead_letters(redis_url),
            complete_s=took,
            total_s=time.monotonic() - started,
        )
        assert completed == N
        assert sum(a.stats.applied for a in agencies) == 4 * N and twice == 0
        assert dead_letters(redis_url) == 0
        assert sum(p.stats.injected for p in links) > 0, "the links did misbehave"
    finally:
        await channel.close()
        await gateway.stop(grace_s=0.5)
        await sims.stop()
        for proxy in [*proxies.values(), answers]:
            await proxy.stop()
