"""The HTTP side: ``/metrics`` (Prometheus text) and ``/healthz`` (200 while serving, 503 otherwise)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["StoreGauges", "serve_http"]


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


def serve_http(listen: str, registry: CollectorRegistry, serving: Callable[[], bool]) -> ThreadingHTTPServer:
    """Start the HTTP server in a daemon thread; ``server.server_address`` tells the bound port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = serving()
                self._reply(200 if ok else 503, b"SERVING\n" if ok else b"NOT_SERVING\n", "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    host, port = listen.rsplit(":", 1)
    try:
        server = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
    except OSError as error:
        raise OSError(error.errno, f"cannot listen on {listen} for HTTP: {error.strerror}") from error
    threading.Thread(target=server.serve_forever, name="sigw-http", daemon=True).start()
    return server
