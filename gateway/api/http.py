"""HTTP with aiohttp, on the process's asyncio loop: ``/metrics`` (Prometheus text) and ``/healthz`` (200 while
serving, 503 otherwise), and the site that serves an application (also the national interface). The listening
socket is ours (``loop.create_server``) so that every connection passes the limits of
``gateway.api.connections`` before aiohttp sees it."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.api.connections import ConnectionLimits, GuardedProtocol, SourceCounter
from gateway.app.ports import DeliveryQueue, QueueFigures, TransferRepository
from gateway.security.tls import TlsFolder

__all__ = ["CertificateGauges", "HttpSite", "StoreGauges", "health_app", "serve_http", "start_site"]


class StoreGauges(Collector):
    """Gauges read from Redis by the health monitor (so a scrape never waits on Redis): transfers by kind and
    state, each lane's depth and delivery lag, dead letters, overdue steps not yet reminded, Redis memory, and
    whether the store answered at all."""

    def __init__(self) -> None:
        self.up = False
        self.transfers: dict[tuple[str, str], int] = {}
        self.overdue_unreminded = 0
        self.queue = QueueFigures({}, {}, 0, 0, 0)

    async def refresh(self, transfers: TransferRepository, queue: DeliveryQueue, today: date) -> None:
        """Read every figure; ``up`` False (and the figures kept) when the store does not answer. Raises what
        the store raised, for the caller's health decision."""
        try:
            self.transfers = await transfers.counts()
            self.overdue_unreminded = await transfers.overdue_unreminded(today)
            self.queue = await queue.figures(int(time.time() * 1000))
        except BaseException:
            self.up = False
            raise
        self.up = True

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("sigw_store_up", "1 while Redis answers the health monitor.", value=int(self.up))
        family = GaugeMetricFamily("sigw_transfers", "Transfers by kind and state.", labels=["kind", "state"])
        for (kind, state), count in sorted(self.transfers.items()):
            family.add_metric([kind, state], count)
        yield family
        q = self.queue
        lanes = GaugeMetricFamily("sigw_lane_depth", "Messages waiting or in flight, by lane.", labels=["lane"])
        for lane, depth in sorted(q.lane_depths.items()):
            lanes.add_metric([lane], depth)
        yield lanes
        lag = GaugeMetricFamily(
            "sigw_lane_oldest_seconds", "How long the oldest waiting message of each lane has waited.", labels=["lane"]
        )
        for lane, seconds in sorted(q.oldest_s.items()):
            lag.add_metric([lane], seconds)
        yield lag
        yield GaugeMetricFamily(
            "sigw_dead_letters", "Messages in the dead letters, waiting for an operator.", value=q.dead_letters
        )
        yield GaugeMetricFamily(
            "sigw_overdue_unreminded",
            "Open steps past their deadline whose holder was not reminded yet (the sweeper reminds each once).",
            value=self.overdue_unreminded,
        )
        yield GaugeMetricFamily("sigw_redis_memory_used_bytes", "Memory Redis uses.", value=q.memory_used_bytes)
        yield GaugeMetricFamily(
            "sigw_redis_memory_max_bytes", "Redis's maxmemory (0: no limit).", value=q.memory_max_bytes
        )


@dataclass
class HttpSite:
    """A running aiohttp site; ``port`` is the bound one."""

    runner: web.AppRunner
    server: asyncio.Server
    port: int
    counter: SourceCounter

    async def stop(self) -> None:
        self.server.close()
        await self.runner.cleanup()


class CertificateGauges(Collector):
    """``sigw_certificate_expiry_timestamp_seconds{certificate}``: when the CA's and the gateway's certificates
    expire, read from the PKI folder at each scrape (a renewed certificate shows at once)."""

    def __init__(self, tls: TlsFolder | None) -> None:
        self.tls = tls

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "sigw_certificate_expiry_timestamp_seconds",
            "When a certificate of the gateway's stops being valid (Unix time).",
            labels=["certificate"],
        )
        for name, expiry in sorted((self.tls.expiries() if self.tls else {}).items()):
            family.add_metric([name], expiry)
        yield family


def health_app(registry: CollectorRegistry, serving: Callable[[], bool]) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def healthz(_: web.Request) -> web.Response:
        ok = serving()
        return web.Response(status=200 if ok else 503, text="SERVING\n" if ok else "NOT_SERVING\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def start_site(
    app: web.Application,
    listen: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
    limits: ConnectionLimits | None = None,
) -> HttpSite:
    """Serve ``app`` on ``listen`` (``host:port``, port 0 for a free one) within ``limits``; ``OSError`` naming the
    address when it cannot listen."""
    limits = limits or ConnectionLimits()
    host, port = listen.rsplit(":", 1)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    handler = runner.server
    assert handler is not None
    counter = SourceCounter(limits)
    try:
        server = await asyncio.get_running_loop().create_server(
            lambda: GuardedProtocol(handler(), counter), host.strip("[]"), int(port), ssl=ssl_context,
            ssl_handshake_timeout=limits.handshake_timeout_s if ssl_context else None,
            reuse_port=reuse_port or None, backlog=128,
        )  # fmt: skip
    except OSError as error:
        await runner.cleanup()
        raise OSError(error.errno, f"cannot listen on {listen} for HTTP: {error.strerror}") from error
    return HttpSite(runner, server, int(server.sockets[0].getsockname()[1]), counter)


async def serve_http(
    listen: str, registry: CollectorRegistry, serving: Callable[[], bool], limits: ConnectionLimits | None = None
) -> HttpSite:
    """``/metrics`` and ``/healthz`` on ``listen``."""
    return await start_site(health_app(registry, serving), listen, limits=limits)
