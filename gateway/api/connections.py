"""Limits on connections, so idle or half-open sockets cannot starve a process of file descriptors.

gRPC (grpc core options): a connection must finish its TLS handshake and HTTP/2 preface within
``handshake_timeout_s`` (grpc's default is 120 s); one with no call for ``idle_timeout_s`` is closed; a process
takes at most ``total`` connections (grpc closes the ones beyond before any handshake). grpc core has no limit
per source address: put that in front (Envoy, or ``iptables -m connlimit``), see the README.

HTTP (the national interface, /metrics, /healthz: aiohttp on our own listening socket): the same handshake
timeout for TLS, a connection must send its first bytes within it, and at most ``per_source`` connections per
source address (more are closed at once). Both sides log when a limit bites (at most once a minute per kind).

At start-up the process's soft file-descriptor limit is raised to its hard one, and ``total`` is kept well below
it, so the limit grpc enforces is the one that bites first. grpc does not say when its cap bites, so the health
monitor counts the process's open descriptors and logs when they reach 90 % of the cap.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

__all__ = ["ConnectionLimits", "DescriptorWatch", "GuardedProtocol", "SourceCounter", "raise_fd_limit"]

log = logging.getLogger("sigw.connections")

_FD_RESERVE = 256
"""Descriptors kept free beyond the connection cap: Redis pools, agency channels, files, the loop."""
_LOG_EVERY_S = 60.0


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard one; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


@dataclass
class DescriptorWatch:
    """Counts the process's open descriptors (Linux) each health round; logs (at most once a minute) when they
    are near the connection cap."""

    limits: ConnectionLimits
    _logged: float = float("-inf")

    def check(self) -> int:
        try:
            count = len(os.listdir("/proc/self/fd"))
        except OSError:
            return 0
        now = time.monotonic()
        if count >= 0.9 * self.limits.total and now - self._logged >= _LOG_EVERY_S:
            self._logged = now
            log.warning(
                "connection limit total: %d descriptors open, the cap is %d connections; new ones wait or are "
                "refused (idle and half-open ones are closed after %.0f s)",
                count, self.limits.total, self.limits.handshake_timeout_s,
            )  # fmt: skip
        return count


@dataclass(frozen=True)
class ConnectionLimits:
    handshake_timeout_s: float = 5.0
    idle_timeout_s: float = 300.0
    total: int = 4000
    per_source: int = 200

    def bounded_by(self, fd_limit: int) -> ConnectionLimits:
        """These limits with ``total`` below what ``fd_limit`` leaves after the reserve."""
        room = max(16, fd_limit - _FD_RESERVE)
        if self.total <= room:
            return self
        log.warning("connection cap lowered from %d to %d: the open-file limit is %d", self.total, room, fd_limit)
        return ConnectionLimits(self.handshake_timeout_s, self.idle_timeout_s, room, min(self.per_source, room))

    def grpc_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.server_handshake_timeout_ms", int(self.handshake_timeout_s * 1000)),
            ("grpc.max_connection_idle_ms", int(self.idle_timeout_s * 1000)),
            ("grpc.max_allowed_incoming_connections", self.total),
        ]


@dataclass
class SourceCounter:
    """Open connections by source address, and rate-limited log lines when a limit bites."""

    limits: ConnectionLimits
    open: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    _logged: dict[str, float] = field(default_factory=dict)

    def admit(self, source: str) -> bool:
        if self.open[source] >= self.limits.per_source:
            self.refused[source] += 1
            self.bit("per_source", f"{source} holds {self.open[source]} connections (at most {self.limits.per_source})")
            return False
        self.open[source] += 1
        return True

    def release(self, source: str) -> None:
        self.open[source] -= 1
        if self.open[source] <= 0:
            del self.open[source]

    def bit(self, kind: str, detail: str) -> None:
        now = time.monotonic()
        if now - self._logged.get(kind, float("-inf")) >= _LOG_EVERY_S:
            self._logged[kind] = now
            log.warning("connection limit %s: %s; refused or closed (logged at most once a minute)", kind, detail)


class GuardedProtocol(asyncio.Protocol):
    """Wraps an aiohttp request handler: refuses a source over its cap, and closes a connection that sends
    nothing within the handshake timeout."""

    def __init__(self, inner: Any, counter: SourceCounter) -> None:
        self.inner = inner
        self.counter = counter
        self.source = ""
        self._silent: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if not self.counter.admit(source):
            cast(asyncio.Transport, transport).abort()
            return
        self.source = source
        self._silent = asyncio.get_running_loop().call_later(
            self.counter.limits.handshake_timeout_s, self._close_silent, transport
        )
        self.inner.connection_made(transport)

    def _close_silent(self, transport: asyncio.BaseTransport) -> None:
        self.counter.bit("first_bytes", f"a connection from {self.source} sent nothing in time")
        cast(asyncio.Transport, transport).abort()

    def data_received(self, data: bytes) -> None:
        if self._silent is not None:
            self._silent.cancel()
            self._silent = None
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self.inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.source:
            return  # refused: the handler never saw it
        if self._silent is not None:
            self._silent.cancel()
        self.counter.release(self.source)
        self.inner.connection_lost(exc)
