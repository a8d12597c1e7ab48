"""Wiring: Redis (configured or embedded), the gRPC server with health and reflection, the HTTP endpoints,
the dispatcher, and in demo mode the simulated agencies."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from adapters.agency_client import AgencyClients
from adapters.simulated_agency import SimulatedAgencies
from gateway._gen.sigw.v1 import (
    operator_pb2,
    operator_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
    transfer_pb2,
    transfer_pb2_grpc,
)
from gateway.api.connections import ConnectionLimits, DescriptorWatch, raise_fd_limit
from gateway.api.guard import CallGuard, GrpcMetrics
from gateway.api.http import CertificateGauges, HttpSite, StoreGauges, serve_http, start_site
from gateway.api.identity import IdentityResolver
from gateway.api.limits import RateLimiter, StreamLimit
from gateway.api.national.server import NationalEndpoint
from gateway.api.operator import OperatorServicer
from gateway.api.pages import PageTokens
from gateway.api.settlements import SettlementMetrics, SettlementServicer
from gateway.api.transfers import TransferServicer
from gateway.app.clearing import ClearingService
from gateway.app.deliveries import DeliveryService
from gateway.app.filings import FilingService
from gateway.app.ports import Clock, NoTracing
from gateway.app.settlements import SettlementService
from gateway.app.sweeper import OverdueSweeper
from gateway.app.transfers import TransferService
from gateway.app.visits import VisitService
from gateway.config import Settings, load_calendar, load_catalogues
from gateway.dispatch.dispatcher import Dispatcher, DispatchMetrics, DispatchSettings
from gateway.domain.calendar import SHANGHAI
from gateway.domain.errors import Unavailable
from gateway.domain.regions import Registry
from gateway.domain.transfer.machine import Policy
from gateway.security.crypto import FieldCipher, generate_key_file
from gateway.security.revocation import CertificateCheck
from gateway.security.tls import TlsFolder
from gateway.store.audit import AuditTrail
from gateway.store.client import check_format, redis_client
from gateway.store.deliveries import DeliveryQueueStore
from gateway.store.embedded import EmbeddedRedis
from gateway.store.limits import FailureCounterStore
from gateway.store.settlements import FilingStore, SettlementStore
from gateway.store.transfers import TransferStore
from gateway.store.visits import VisitStore
from gateway.wire.reflection import enable_reflection
from gateway.wire.tracing import OpenTelemetryTracing, otlp_provider
from gateway.wire.transfers import NoticeEncoding

__all__ = [
    "API_CONNECTIONS",
    "HEALTH_INTERVAL_S",
    "SERVICES",
    "Gateway",
    "check_transport",
    "clock_from",
    "is_loopback",
    "load_cipher",
    "start_gateway",
    "system_clock",
]

log = logging.getLogger("sigw")

SERVICES = (
    transfer_pb2.DESCRIPTOR.services_by_name["TransferService"].full_name,
    settlement_pb2.DESCRIPTOR.services_by_name["SettlementService"].full_name,
    operator_pb2.DESCRIPTOR.services_by_name["OperatorService"].full_name,
)
HEALTH_INTERVAL_S = 1.0


API_CONNECTIONS = 128


def system_clock() -> datetime:
    return datetime.now(SHANGHAI)


def clock_from(start: datetime | None) -> Clock:
    """The system clock, or one that starts at ``start`` and runs on at the real pace (tests, demos)."""
    if start is None:
        return system_clock
    offset = start - system_clock()
    return lambda: system_clock() + offset


class Role(enum.StrEnum):
    """What a gateway process does. ``sigw serve`` runs several processes, each with one role (see
    ``gateway.supervisor``); tests and ``--single`` run both in one."""

    API = "api"
    """The gRPC servicers (several processes share the port with SO_REUSEPORT)."""
    DELIVERY = "delivery"
    """The dispatcher (outbox router, agency lanes) and the overdue sweeper."""


ALL_ROLES = frozenset(Role)


@dataclass
class Gateway:
    """A running gateway process; ``stop()`` shuts it down in order."""

    roles: frozenset[Role]
    grpc_port: int
    http_port: int
    redis: aioredis.Redis
    store: TransferStore
    transfers: TransferService
    queue: DeliveryQueueStore
    metrics: CollectorRegistry
    gauges: StoreGauges
    dispatcher: Dispatcher | None
    sweeper: OverdueSweeper | None
    simulated: SimulatedAgencies | None
    _server: grpc.aio.Server | None
    _http: HttpSite | None
    _health: HealthServicer
    _embedded: EmbeddedRedis | None
    _agencies: AgencyClients
    _dispatch_client: aioredis.Redis | None
    _national: HttpSite | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _exporting: TracerProvider | None = None
    """The OTLP exporter's provider this gateway made (flushed and closed when it stops)."""
    descriptors: DescriptorWatch = field(default_factory=lambda: DescriptorWatch(ConnectionLimits()))
    national_port: int = 0
    serving: bool = False
    stopping: bool = False

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    async def _set_serving(self, serving: bool) -> None:
        self.serving = serving
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *SERVICES):
            await self._health.set(name, status)

    async def check_store(self) -> None:
        """SERVING while Redis answers, NOT_SERVING while it does not; refresh the counts for /metrics."""
        try:
            await self.redis.ping()
            if self._http is not None:
                await self.gauges.refresh(self.store, self.queue, self.transfers.today())
            ok = True
        except (RedisError, OSError, Unavailable) as exc:
            ok = False
            if self.serving:
                log.error("store unreachable (%s): NOT_SERVING", type(exc).__name__)
        if ok != self.serving and not self.stopping:
            await self._set_serving(ok)
            if ok:
                log.info("store reachable: SERVING")

    async def _monitor(self) -> None:
        while not self.stopping:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            await self.check_store()
            self.descriptors.check()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop taking calls (NOT_SERVING first), let in-flight calls finish, then stop delivering."""
        self.stopping = True
        await self._set_serving(False)
        await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace=grace_s)
        if self._national is not None:
            await self._national.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.sweeper is not None:
            self.sweeper.stopping.set()
        # Let the dispatcher finish its deliveries in flight (they acknowledge as they end), then stop the rest.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.simulated:
            await self.simulated.stop()
        await self._agencies.close()
        if self._http is not None:
            await self._http.stop()
        await self.redis.aclose()
        if self._dispatch_client is not None:
            await self._dispatch_client.aclose()
        if self._embedded:
            self._embedded.stop()
        if self._exporting is not None:
            self._exporting.shutdown()


def load_cipher(key_file: Path) -> FieldCipher:
    """The field cipher for personal data at rest; a missing key file is created with a fresh key."""
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(generate_key_file())
        log.warning("created a new data key file %s: keep it safe, and back it up with the data", key_file)
    return FieldCipher.from_key_file(key_file.read_text())


def is_loopback(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(settings: Settings) -> TlsFolder | None:
    """The PKI to serve with, or None for plain text, which only ``--insecure`` on loopback allows."""
    if settings.insecure:
        for listen in (settings.grpc_listen, settings.national_listen):
            if listen and not is_loopback(listen):
                raise ValueError(f"--insecure serves plain text on loopback only, not on {listen}")
        log.warning("!!! PLAIN TEXT (--insecure): no mutual TLS. Loopback development and tests only. !!!")
        return None
    if settings.dev_identity:
        raise ValueError("--dev-identity needs --insecure: with mutual TLS the certificate names the caller")
    tls = TlsFolder(settings.tls_dir)
    if not tls.exists():
        raise FileNotFoundError(f"no PKI in {settings.tls_dir}: run `sigw pki init` (or serve --insecure)")
    return tls


async def start_gateway(
    settings: Settings,
    registry: Registry,
    *,
    clock: Clock = system_clock,
    dispatch: DispatchSettings | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    roles: frozenset[Role] = ALL_ROLES,
    tracer_provider: TracerProvider | None = None,
) -> Gateway:
    """Start a gateway process with ``roles``: ``clock`` is the domain's time (deadlines, records), ``monotonic``
    the rate limiter's seconds (tests inject both). With no ``settings.http_listen`` it serves no HTTP (a worker
    of ``sigw serve``, whose supervisor serves it). Traces go to ``tracer_provider`` (a test's), else over OTLP
    to ``settings.otlp_endpoint``, else nowhere."""
    tls = check_transport(settings)
    cipher = load_cipher(settings.key_file)
    limits = settings.connection_limits().bounded_by(raise_fd_limit())
    embedded = None
    redis_url = settings.redis_url
    if redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir, appendfsync=settings.appendfsync)
        embedded.start()
        redis_url = embedded.url
        log.info("embedded Redis at %s (appendonly, appendfsync %s)", settings.data_dir, settings.appendfsync)
    client = redis_client(redis_url, API_CONNECTIONS)
    try:
        await check_format(client)
    except (RedisError, OSError):
        log.warning("store unreachable at start: its format is checked when it answers")  # NOT_SERVING meanwhile
    exporting = None
    if tracer_provider is None and settings.otlp_endpoint:
        tracer_provider = exporting = otlp_provider(settings.otlp_endpoint)
    tracing = OpenTelemetryTracing(tracer_provider) if tracer_provider is not None else None
    agencies = AgencyClients(
        registry, tls.channel_credentials() if tls else None, tracing.client_interceptors() if tracing else ()
    )
    policy = Policy(
        calendar=load_calendar(settings.calendar_file), known_regions=registry.codes, medical=registry.medical_rules()
    )
    store = TransferStore(client, settings.shards, cipher, timedelta(seconds=settings.quiet_after_s))
    transfers = TransferService(
        store,
        policy,
        clock,
        NoticeEncoding(registry),
        agencies=agencies,
        failures=FailureCounterStore(client),
        notice_portal=registry.notice_portal,
        tracing=tracing or NoTracing(),
    )
    queue = DeliveryQueueStore(client, registry.destinations())
    metrics = CollectorRegistry()
    gauges = StoreGauges()
    metrics.register(gauges)
    metrics.register(CertificateGauges(tls))
    health = HealthServicer()

    server = national = None
    grpc_port = 0
    if Role.API in roles:
        server, grpc_port, endpoint = _api_server(
            settings, registry, tls, client, cipher, agencies, transfers, queue, clock, metrics, monotonic, health,
            limits, tracing.server_interceptors() if tracing else [],
        )  # fmt: skip
        await server.start()
        if settings.national_listen:
            national = await start_site(
                endpoint.app(),
                settings.national_listen,
                ssl_context=tls.server_ssl_context() if tls else None,
                reuse_port=True,
                limits=limits,
            )

    dispatcher = sweeper = dispatch_client = None
    if Role.DELIVERY in roles:
        # The dispatcher's blocking reads get their own pool, so they never take a connection an RPC needs.
        dispatch_client = redis_client(redis_url, settings.shards + 2 * len(registry.destinations()) * 2 + 16)
        dispatcher = Dispatcher(
            dispatch_client,
            registry,
            agencies,
            dispatch
            or DispatchSettings(
                shards=settings.shards,
                concurrency=settings.dispatch_workers,
                claim_idle_ms=settings.claim_idle_ms,
                consumer=settings.instance or f"{socket.gethostname()}:{settings.grpc_listen.rsplit(':', 1)[-1]}",
            ),
            DispatchMetrics(metrics),
            cipher,
            tracing or NoTracing(),
        )
        reminders = Counter(
            "sigw_overdue_reminders_total", "Overdue steps flagged and reminded, by lane.", ["lane"], registry=metrics
        )
        sweeper = OverdueSweeper(
            transfers, interval_s=settings.sweep_interval_s, on_reminded=lambda lane: reminders.labels(lane).inc()
        )

    simulated = None
    if settings.demo:
        simulated = SimulatedAgencies(f"127.0.0.1:{grpc_port}", tls=tls)
        await simulated.start((key, registry.endpoint(key) or "127.0.0.1:0") for key in registry.agencies())

    gateway = Gateway(
        roles=roles,
        grpc_port=grpc_port,
        http_port=0,
        redis=client,
        store=store,
        transfers=transfers,
        queue=queue,
        metrics=metrics,
        gauges=gauges,
        dispatcher=dispatcher,
        sweeper=sweeper,
        simulated=simulated,
        _server=server,
        _http=None,
        _national=national,
        national_port=national.port if national else 0,
        _health=health,
        _embedded=embedded,
        _agencies=agencies,
        _dispatch_client=dispatch_client,
        descriptors=DescriptorWatch(limits),
        _exporting=exporting,
    )
    if settings.http_listen:
        gateway._http = await serve_http(settings.http_listen, metrics, lambda: gateway.serving, limits)
        gateway.http_port = gateway._http.port
    await gateway._set_serving(False)
    await gateway.check_store()
    gateway._tasks.append(asyncio.create_task(gateway._monitor()))
    if dispatcher is not None and sweeper is not None:
        gateway._tasks.append(asyncio.create_task(dispatcher.run()))
        gateway._tasks.append(asyncio.create_task(sweeper.run()))
    return gateway


def _api_server(
    settings: Settings,
    registry: Registry,
    tls: TlsFolder | None,
    client: aioredis.Redis,
    cipher: FieldCipher,
    agencies: AgencyClients,
    transfers: TransferService,
    queue: DeliveryQueueStore,
    clock: Clock,
    metrics: CollectorRegistry,
    monotonic: Callable[[], float],
    health: HealthServicer,
    limits: ConnectionLimits,
    interceptors: list[Any],
) -> tuple[grpc.aio.Server, int, NationalEndpoint]:
    """The gRPC server with every servicer, health and reflection, bound (not started); its port; and the
    national interface's endpoint over the same use cases."""
    filing_store = FilingStore(client, settings.shards, cipher)
    filings = FilingService(filing_store, registry.codes, clock)
    settlement_store = SettlementStore(client, settings.shards, cipher, filing_store)
    audit = AuditTrail(client, cipher)
    # Settlements and clearing are counted in their use cases, which sigw.v1 and the national interface share.
    settlement_metrics = SettlementMetrics(metrics)
    settlements = SettlementService(
        settlement_store, filings, agencies, clock, on_outcome=settlement_metrics.settlement
    )
    clearing_service = ClearingService(
        settlement_store, audit, clock,
        on_closed=settlement_metrics.month_closed, on_recounted=settlement_metrics.recounted,
    )  # fmt: skip
    if settings.dev_identity:
        log.warning(
            "!!! DEVELOPMENT IDENTITY MODE: callers name themselves in x-sigw-participant metadata. "
            "Never use this outside development. !!!"
        )
    identity = IdentityResolver(
        settings.dev_identity,
        tls=tls is not None,
        known_regions=registry.codes,
        hospitals=registry.hospitals,
        certificates=CertificateCheck(tls.folder, monotonic) if tls is not None else None,
    )
    # One budget per participant, whether it calls over gRPC or the national interface.
    limiter = RateLimiter(settings.rate_per_s, 2 * settings.rate_per_s, clock=monotonic)
    guard = CallGuard(GrpcMetrics(metrics), limiter, identity.rate_key, log_calls=settings.log_calls)
    # Several API processes share the port (SO_REUSEPORT, gRPC's default on Linux, said here explicitly).
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 1),
            *limits.grpc_options(),
        ],
    )
    watches = StreamLimit(settings.max_watches)
    guard.add_guarded(
        server,
        transfer_pb2_grpc.add_TransferServiceServicer_to_server,
        TransferServicer(transfers, identity, watches, PageTokens(cipher), registry),
    )
    guard.add_guarded(
        server,
        settlement_pb2_grpc.add_SettlementServiceServicer_to_server,
        SettlementServicer(settlements, filings, clearing_service, identity),
    )
    guard.add_guarded(
        server,
        operator_pb2_grpc.add_OperatorServiceServicer_to_server,
        OperatorServicer(DeliveryService(queue, audit, clock), identity),
    )
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    enable_reflection((*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name), server)
    port = (
        server.add_secure_port(settings.grpc_listen, tls.server_credentials())
        if tls
        else server.add_insecure_port(settings.grpc_listen)
    )
    if port == 0:
        raise OSError(f"cannot listen on {settings.grpc_listen}")
    visits = VisitService(
        VisitStore(client, settings.shards, cipher),
        settlements,
        settlement_store,
        clearing_service,
        filings,
        agencies,
        registry.hospitals,
        load_catalogues(settings.catalogue_dir, registry.codes),
        clock,
        on_confirmed=settlement_metrics.confirmed,
    )
    endpoint = NationalEndpoint(visits, identity, limiter, metrics, clock, settings.national_path)
    return server, port, endpoint
