"""HTTP with aiohttp, on the process's asyncio loop: ``/metrics`` (Prometheus text) and ``/healthz`` (200 while
serving, 503 otherwise), and the site that serves an application (also the national interface)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["HttpSite", "StoreGauges", "health_app", "serve_http", "start_site"]


class StoreGauges(Collector):
    """Gauges read from Redis by the health monitor (so a scrape never waits on Redis):
    ``sigw_transfers{kind,state}`` and ``sigw_lane_depth{lane}``."""

    def __init__(self) -> None:
        self.transfers: dict[tuple[str, str], int] = {}
        self.lane_depths: dict[str, int] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("sigw_transfers", "Transfers by kind and state.", labels=["kind", "state"])
        for (kind, state), count in sorted(self.transfers.items()):
            family.add_metric([kind, state], count)
        yield family
        lanes = GaugeMetricFamily("sigw_lane_depth", "Messages waiting or in flight, by lane.", labels=["lane"])
        for lane, depth in sorted(self.lane_depths.items()):
            lanes.add_metric([lane], depth)
        yield lanes


@dataclass
class HttpSite:
    """A running aiohttp site; ``port`` is the bound one."""

    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


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
    app: web.Application, listen: str, *, ssl_context: ssl.SSLContext | None = None, reuse_port: bool = False
) -> HttpSite:
    """Serve ``app`` on ``listen`` (``host:port``, port 0 for a free one); ``OSError`` naming the address when it
    cannot listen."""
    host, port = listen.rsplit(":", 1)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]"), int(port), ssl_context=ssl_context, reuse_port=reuse_port or None)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise OSError(error.errno, f"cannot listen on {listen} for HTTP: {error.strerror}") from error
    return HttpSite(runner, int(runner.addresses[0][1]))


async def serve_http(listen: str, registry: CollectorRegistry, serving: Callable[[], bool]) -> HttpSite:
    """``/metrics`` and ``/healthz`` on ``listen``."""
    return await start_site(health_app(registry, serving), listen)
