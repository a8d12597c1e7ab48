"""Runs a portal: the status page (HTTP) and ``NotifyService`` (gRPC, mutual TLS, the gateway only)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from aiohttp import web

from adapters.gateway_only import GatewayOnly
from adapters.portal.notices import NoticeBook
from adapters.portal.service import NotifyServicer
from adapters.portal.web import ClientFailures, GatewayLookup, build_app
from gateway._gen.sigw.v1 import portal_pb2_grpc
from gateway.security.tls import TlsFolder

__all__ = ["PortalServer", "PortalSettings"]

log = logging.getLogger("sigw.portal")


@dataclass(frozen=True)
class PortalSettings:
    gateway: str = "127.0.0.1:50051"
    """The gateway's gRPC address."""
    listen: str = "127.0.0.1:8000"
    """The status page (plain HTTP: put TLS in front of it outside loopback)."""
    notify_listen: str = "127.0.0.1:50070"
    """``NotifyService``: what the registry's ``[[portals]]`` entry names as ``notify``."""
    participant: str = "portal:gov"
    tls: TlsFolder | None = None
    """None: plain text on loopback against a ``--insecure --dev-identity`` gateway."""
    data_dir: Path = Path("var/portal")
    failures: ClientFailures = field(default_factory=ClientFailures)


class PortalServer:
    def __init__(self, settings: PortalSettings) -> None:
        self.settings = settings
        self.book = NoticeBook(settings.data_dir / "notices.sqlite3")
        tls = settings.tls
        credentials = tls.channel_credentials(settings.participant) if tls else None
        self.lookup = GatewayLookup(settings.gateway, settings.participant, credentials)
        self.grpc = grpc.aio.server(interceptors=[GatewayOnly()] if tls else [])
        portal_pb2_grpc.add_NotifyServiceServicer_to_server(NotifyServicer(self.book), self.grpc)
        self.app = build_app(self.lookup, self.book, settings.failures)
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)  # no access log
        self.site: web.TCPSite | None = None
        self.http_port = self.notify_port = 0

    async def start(self) -> None:
        s = self.settings
        if s.tls:
            self.notify_port = self.grpc.add_secure_port(s.notify_listen, s.tls.server_credentials(s.participant))
        else:
            self.notify_port = self.grpc.add_insecure_port(s.notify_listen)
        await self.grpc.start()
        await self.runner.setup()
        host, port = s.listen.rsplit(":", 1)
        self.site = web.TCPSite(self.runner, host.strip("[]"), int(port))
        await self.site.start()
        self.http_port = int(self.runner.addresses[0][1])
        if not s.tls:
            log.warning("!!! PLAIN TEXT: NotifyService takes notices from any caller. Loopback development only. !!!")
        log.info(
            "portal %s: status page on http://%s:%d/, notices on %s, gateway %s",
            s.participant,
            host,
            self.http_port,
            f"{s.notify_listen.rsplit(':', 1)[0]}:{self.notify_port}",
            s.gateway,
        )

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.grpc.stop(grace=1.0)
        await self.lookup.close()
        self.book.close()
