"""A region's agency down for longer than the retry window: the other regions' deliveries go on, the dead region's
messages wait (never dead-lettered) behind its circuit breaker, which costs a probe now and then rather than a
storm of calls, and they flow once it returns; none lost, none doubled.

The circuit breakers run on a manual clock: an open period ends when the test moves it, so what happens in each
period is exact, however fast or loaded the machine is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from adapters.simulated_agency import SimulatedAgency
from gateway._gen.sigw.v1 import agency_pb2
from gateway.dispatch.circuit import CircuitState
from gateway.dispatch.retry import RetryPolicy
from gateway.dispatch.worker import AgencyWorker
from gateway.domain.participants import AgencyKey, AgencyType
from tests.conftest import Demo, FakeClock, as_, start_demo
from tests.faults.support import (
    applied_twice,
    dead_letters,
    http_status,
    metric,
    pension,
    report,
    requested,
    until,
)

DEAD = "440300"
ALIVE = ("110000", "310000", "510100")
# Short, so the dead region outlasts it many times over: 2 attempts within 0.3 s.
RETRY = RetryPolicy(max_attempts=2, max_delay_s=0.3, initial_backoff_s=0.02, max_backoff_s=0.1, attempt_timeout_s=1)
CONCURRENCY = 4  # deliveries in flight per agency (DispatchSettings default)
TRANSPORT_TRIES = 3  # gRPC's own retry of UNAVAILABLE inside one attempt (adapters.agency_client)
BREAKER_OPEN_S = 1.0  # DispatchSettings.breaker_open_s


class Scene:
    """The in-process demo gateway, the transfers created through it, and the calls each agency got while down."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.dead = demo.agency(DEAD)
        self.everyone = list(demo.sims.agencies.values())
        self.created: dict[str, str] = {}  # transfer id -> target region
        self.calls_while_down = 0

    async def create(self, n: int, prefix: str, regions: tuple[str, ...]) -> set[str]:
        ids = set()
        for i in range(n):
            request, caller = pension(i, prefix, regions)
            reply = await self.demo.transfers.CreateTransfer(request, metadata=as_(caller), timeout=5)
            self.created[reply.transfer.transfer_id] = request.target_region
            ids.add(reply.transfer.transfer_id)
        return ids

    def waiting_for(self, regions: tuple[str, ...]) -> int:
        got = set(requested(self.everyone))
        return sum(1 for tid, region in self.created.items() if region in regions and tid not in got)


class ManualClock:
    """Monotonic seconds that move only when the test says: the circuit breakers' open periods end on cue."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def scene(
    redis_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, breaker: ManualClock
) -> AsyncIterator[Scene]:
    deliver = SimulatedAgency.Deliver
    holder: list[Scene] = []

    async def counted(self: SimulatedAgency, request: agency_pb2.DeliverRequest, context: Any) -> Any:
        if not self.available and holder:
            holder[0].calls_while_down += 1
        return await deliver(self, request, context)

    # The servers bind the servicer's method when they start, so the class is patched before.
    monkeypatch.setattr(SimulatedAgency, "Deliver", counted)
    demo = await start_demo(redis_url, clock, act=False, retry=RETRY, breaker_clock=breaker)
    holder.append(Scene(demo))
    try:
        yield holder[0]
    finally:
        await demo.channel.close()
        await demo.gateway.stop(grace_s=0.5)
        await demo.sims.stop()


def dead_worker(s: Scene) -> AgencyWorker:
    assert s.demo.gateway.dispatcher is not None
    return s.demo.gateway.dispatcher.workers[AgencyKey(DEAD, AgencyType.HRSS)]


def settled_open(s: Scene) -> bool:
    """The dead region's circuit is open and no delivery to it is in flight: until its open period ends (on the
    manual clock), nothing more is sent."""
    worker = dead_worker(s)
    return worker.breaker.state is CircuitState.OPEN and not worker.in_flight


@pytest.mark.faults
async def test_a_dead_region_waits_behind_its_circuit_while_the_others_flow(
    redis_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    breaker = ManualClock()
    probes = 3
    async with scene(redis_url, clock, monkeypatch, breaker) as s:
        await s.create(12, "warm", (*ALIVE, DEAD))
        await until(lambda: s.waiting_for((*ALIVE, DEAD)) == 0, "warm-up delivered")
        warm = s.dead.stats.applied

        s.dead.available = False
        went_down = time.monotonic()
        to_dead = await s.create(20, "to-dead", (DEAD,))
        await until(lambda: settled_open(s), "the dead region's circuit opened")
        burst_calls = s.calls_while_down
        # While it is down, the others keep being delivered: transfers to them go through, batch after batch.
        others_during, lags = 0, []
        for batch in range(3):
            before = time.monotonic()
            await s.create(6, f"alive-{batch}", ALIVE)
            await until(lambda: s.waiting_for(ALIVE) == 0, "the other regions keep being delivered")
            lags.append(time.monotonic() - before)
            others_during += 6
        # Each open period that ends lets one probe through (one attempt), which fails and opens it again.
        probe_calls = []
        for _ in range(probes):
            before_probe = s.calls_while_down
            worker = dead_worker(s)
            breaker.advance(worker.breaker.wait_s())
            await until(
                lambda before=before_probe: s.calls_while_down > before and settled_open(s), "a probe went and failed"
            )
            probe_calls.append(s.calls_while_down - before_probe)
        assert not to_dead & set(requested(s.everyone)), "nothing reached the dead region"
        assert dead_letters(redis_url) == 0, "a dead region's messages wait; they are not dead-lettered"
        _, metrics = await asyncio.to_thread(http_status, s.demo.gateway.http_port, "/metrics")
        opened = metric(metrics, "sigw_circuit_opened_total")
        calls = s.calls_while_down
        down_for = time.monotonic() - went_down

        s.dead.available = True
        came_back = time.monotonic()
        breaker.advance(dead_worker(s).breaker.wait_s())
        await until(lambda: s.waiting_for((DEAD,)) == 0, "the dead region's messages flow once it returns")
        recover_s = time.monotonic() - came_back

        seen = requested(s.everyone)
        twice = applied_twice(s.everyone) + sum(len(ids) - 1 for ids in seen.values())
        lost = len(set(s.created) - set(seen))
        report(
            "dead_region",
            down_s=down_for,
            retry_window_s=RETRY.max_delay_s,
            others_delivered_while_down=others_during,
            others_max_lag_s=max(lags),
            dead_waiting=len(to_dead),
            calls_to_dead=calls,
            burst_calls=burst_calls,
            probe_calls=",".join(map(str, probe_calls)),
            circuit_opened=int(opened),
            dead_letters=dead_letters(redis_url),
            recover_s=recover_s,
            sent=len(s.created),
            delivered=len(seen),
            lost=lost,
            duplicates_applied=twice,
            redelivered=sum(a.stats.duplicates for a in s.everyone),
        )
        assert others_during >= 12
        assert opened >= 1
        # The deliveries in flight when it died (and the one started when the first failure freed its slot) use
        # their retries (attempts x gRPC's transport tries); then the circuit is open and only a probe (one
        # attempt) goes when an open period ends: no storm, however long it is down.
        burst = (CONCURRENCY + 1) * RETRY.max_attempts * TRANSPORT_TRIES
        assert burst_calls <= burst, f"{burst_calls} calls before the circuit opened"
        assert all(c <= TRANSPORT_TRIES for c in probe_calls), f"probes made {probe_calls} calls"
        assert calls <= burst + TRANSPORT_TRIES * probes, f"{calls} calls to a dead agency"
        assert lost == 0 and twice == 0
        assert to_dead <= set(seen) and s.dead.stats.applied == warm + len(to_dead)
        assert dead_letters(redis_url) == 0


@pytest.mark.faults
async def test_after_a_short_outage_the_first_probe_comes_within_the_documented_open_period(
    redis_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """circuit.py: "open: nothing is sent until open_s has passed (doubling on each failed probe)". The failures
    of deliveries already in flight when it opened do not double it: after an outage the region gets its first
    probe one open period (``open_s``) after the circuit opened, and its messages flow."""
    breaker = ManualClock()
    async with scene(redis_url, clock, monkeypatch, breaker) as s:
        s.dead.available = False
        to_dead = await s.create(20, "short", (DEAD,))
        await until(lambda: settled_open(s), "the circuit opened")
        waits = dead_worker(s).breaker.wait_s()
        s.dead.available = True
        came_back = time.monotonic()
        breaker.advance(BREAKER_OPEN_S)
        await until(lambda: s.waiting_for((DEAD,)) == 0, "the region's messages flow once it returns")
        recover_s = time.monotonic() - came_back
        report("short_outage", calls_to_dead=s.calls_while_down, open_period_s=waits, recover_s=recover_s)
        assert to_dead <= set(requested(s.everyone))
        assert waits == BREAKER_OPEN_S, f"the circuit stayed open {waits} s, not the documented {BREAKER_OPEN_S} s"
