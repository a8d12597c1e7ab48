"""Configuration: the gateway's settings, and the files it reads (the region registry, the calendar)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.api.connections import ConnectionLimits
from gateway.domain.calendar import WorkingDayCalendar, parse_calendar_file
from gateway.domain.regions import Registry
from gateway.domain.settlement.catalogue import Catalogue

__all__ = ["Settings", "load_calendar", "load_catalogues", "load_registry"]


def load_registry(path: Path) -> Registry:
    """The region registry file (``config/regions.toml``); see ``gateway.domain.regions``."""
    return Registry.parse(path.read_text(encoding="utf-8"))


def load_calendar(path: Path | None) -> WorkingDayCalendar:
    """chinesecalendar plus the operator's file of added years, when there is one."""
    if path is None or not path.exists():
        return WorkingDayCalendar()
    return WorkingDayCalendar(parse_calendar_file(path.read_text(encoding="utf-8")))


def load_catalogues(folder: Path, regions: frozenset[str]) -> dict[str, Catalogue]:
    """Each ``<region>.csv`` of ``folder`` whose region the registry knows (none when the folder is missing)."""
    if not folder.is_dir():
        return {}
    return {
        path.stem: Catalogue.parse(path.stem, path.read_text(encoding="utf-8"))
        for path in sorted(folder.glob("*.csv"))
        if path.stem in regions
    }


@dataclass(frozen=True)
class Settings:
    """How one gateway process runs. Each field has a flag of ``sigw serve`` and an environment variable."""

    grpc_listen: str = "127.0.0.1:50051"
    """Where the gRPC API listens (``SIGW_GRPC_LISTEN``)."""
    http_listen: str = "127.0.0.1:8080"
    """Where ``/metrics`` and ``/healthz`` listen (``SIGW_HTTP_LISTEN``)."""
    national_listen: str = "127.0.0.1:8443"
    """Where hospitals' national JSON interface listens, HTTPS with the same mutual TLS as the gRPC port
    (``SIGW_NATIONAL_LISTEN``; empty: not served). Shared by the API processes like the gRPC port."""
    portal_listen: str = "127.0.0.1:8000"
    """Where ``--demo`` serves the applicants' status page (``sigw portal``, ``SIGW_PORTAL_LISTEN``; empty: no
    portal)."""
    national_path: str = "/fsi/api/rsfComIfsService/callService"
    """The HTTP path of the national interface (``SIGW_NATIONAL_PATH``), as the national platform names it."""
    catalogue_dir: Path = Path("config/catalogues")
    """The places of treatment's catalogues (``SIGW_CATALOGUE_DIR``): ``<region code>.csv`` each, read at start
    (see ``gateway.domain.settlement.catalogue``)."""
    redis_url: str | None = None
    """A Redis to use (``SIGW_REDIS_URL``); None starts the embedded one in ``data_dir``."""
    data_dir: Path = Path("var/data")
    """Folder of the embedded Redis's append-only file (``SIGW_DATA_DIR``)."""
    regions_file: Path = Path("config/regions.toml")
    """The region registry (``SIGW_REGIONS_FILE``)."""
    calendar_file: Path | None = Path("config/calendar.toml")
    """The operator's added holiday years (``SIGW_CALENDAR_FILE``)."""
    tls_dir: Path = Path("var/pki")
    """The PKI folder of ``sigw pki init`` (``SIGW_TLS_DIR``): CA, the gateway's and participants' certificates."""
    key_file: Path = Path("var/keys/sigw.keys")
    """Keys for personal data at rest (``SIGW_KEY_FILE``): ``active=<id>``, ``lookup=<base64>``, ``<id>=<base64>``.
    Created with a fresh key when missing (development); see the README on rotation."""
    insecure: bool = False
    """Serve plain text, on loopback only (``SIGW_INSECURE=1``). Development and tests only."""
    dev_identity: bool = False
    """Take the caller from ``x-sigw-participant`` metadata. Development only (``SIGW_DEV_IDENTITY=1``)."""
    shards: int = 8
    """Number of Redis shards (hash-tag groups) for transfers and outboxes (``SIGW_SHARDS``). Fixed for a
    deployment."""
    appendfsync: str = "always"
    """The embedded Redis's fsync policy (``SIGW_APPENDFSYNC``): always (default, no loss), everysec (up to
    ~1 s), no."""
    dispatch_workers: int = 4
    """Deliveries in flight per outbox shard (``SIGW_DISPATCH_WORKERS``)."""
    demo: bool = False
    """Also run the simulated agencies of the regions file (``SIGW_DEMO=1``): a process of their own under
    ``sigw serve``, in the gateway's process with ``--single``."""
    workers: int = 0
    """API processes of ``sigw serve`` sharing the gRPC port (``SIGW_WORKERS``); 0 means one per core."""
    instance: str = ""
    """This process's name as a stream consumer (``SIGW_INSTANCE``); default ``<host>:<gRPC port>``, stable
    across restarts so a restarted gateway resumes its own pending deliveries at once."""
    claim_idle_ms: int = 30_000
    """A delivery another gateway process took and left idle this long is taken over (``SIGW_CLAIM_IDLE_MS``)."""
    sweep_interval_s: float = 60.0
    """How often the overdue sweeper runs (``SIGW_SWEEP_INTERVAL_S``)."""
    quiet_after_s: float = 600.0
    """An open step with no answer this long gets its notice once more, once (``SIGW_QUIET_AFTER_S``): so an
    answer lost in flight (while the gateway stopped, say) does not wait for the overdue reminder."""
    rate_per_s: float = 200.0
    """Calls a second each participant may make (``SIGW_RATE_PER_S``); bursts up to twice that."""
    max_watches: int = 100
    """Open WatchTransfer streams each participant may hold in one API process (``SIGW_MAX_WATCHES``)."""
    handshake_timeout_s: float = 5.0
    """A connection must finish its TLS handshake (and send its first bytes) within this
    (``SIGW_HANDSHAKE_TIMEOUT_S``)."""
    idle_timeout_s: float = 300.0
    """A gRPC connection with no call this long is closed (``SIGW_IDLE_TIMEOUT_S``)."""
    max_connections: int = 4000
    """Connections one API process takes (``SIGW_MAX_CONNECTIONS``; kept below the open-file limit)."""
    max_connections_per_source: int = 200
    """HTTP connections (national interface, /metrics) one source address may hold
    (``SIGW_MAX_CONNECTIONS_PER_SOURCE``; raise it behind a proxy, where every client is the proxy)."""

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            self.handshake_timeout_s, self.idle_timeout_s, self.max_connections, self.max_connections_per_source
        )

    otlp_endpoint: str = ""
    """Send traces over OTLP/gRPC to this collector (``SIGW_OTLP_ENDPOINT``, e.g. ``127.0.0.1:4317``); empty: no
    tracing at all (no interceptor, no cost)."""
    log_calls: bool = False
    """Log every gRPC call (``SIGW_LOG_CALLS=1``): request id, participant, method, code, duration. Calls that do
    not end OK are always logged."""
    clock_start: datetime | None = None
    """For tests and demos only: the clock starts at this instant and runs on (``SIGW_CLOCK_START``, ISO 8601)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings from ``SIGW_*`` environment variables (unset ones keep their defaults)."""
        e = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = e.get(_env_name(f.name))
            if raw is None:
                continue
            values[f.name] = _parse(f.name, cls.__dataclass_fields__[f.name].default, raw)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """Every setting as a ``SIGW_*`` variable: how ``sigw serve`` hands them to its worker processes."""
        return {_env_name(f.name): _format(getattr(self, f.name)) for f in fields(self)}


def _env_name(field_name: str) -> str:
    return "SIGW_" + field_name.upper()


_OPTIONAL_PATHS = {"calendar_file"}
_OPTIONAL_STRINGS = {"redis_url"}


def _parse(name: str, default: object, raw: str) -> object:
    if name in _OPTIONAL_PATHS:
        return Path(raw) if raw else None
    if name in _OPTIONAL_STRINGS:
        return raw or None
    if name == "clock_start":
        return datetime.fromisoformat(raw) if raw else None
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, Path):
        return Path(raw)
    return raw


def _format(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
