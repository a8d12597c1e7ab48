"""Configuration: the gateway's settings, and the files it reads (the region registry, the calendar)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gateway.domain.calendar import WorkingDayCalendar, parse_calendar_file
from gateway.domain.regions import Registry

__all__ = ["Settings", "load_calendar", "load_registry"]


def load_registry(path: Path) -> Registry:
    """The region registry file (``config/regions.toml``); see ``gateway.domain.regions``."""
    return Registry.parse(path.read_text(encoding="utf-8"))


def load_calendar(path: Path | None) -> WorkingDayCalendar:
    """chinesecalendar plus the operator's file of added years, when there is one."""
    if path is None or not path.exists():
        return WorkingDayCalendar()
    return WorkingDayCalendar(parse_calendar_file(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Settings:
    """How one gateway process runs. Each field has a flag of ``sigw serve`` and an environment variable."""

    grpc_listen: str = "127.0.0.1:50051"
    """Where the gRPC API listens (``SIGW_GRPC_LISTEN``)."""
    http_listen: str = "127.0.0.1:8080"
    """Where ``/metrics`` and ``/healthz`` listen (``SIGW_HTTP_LISTEN``)."""
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
    """Number of Redis shards (hash-tag groups) for transfers and outboxes. Fixed for a deployment."""
    appendfsync: str = "always"
    """The embedded Redis's fsync policy: always (default, no loss), everysec (up to ~1 s), no."""
    dispatch_workers: int = 4
    """Deliveries in flight per outbox shard."""
    demo: bool = False
    """Also start the simulated agencies of the regions file in this process."""
    instance: str = ""
    """This process's name as a stream consumer (``SIGW_INSTANCE``); default ``<host>:<gRPC port>``, stable
    across restarts so a restarted gateway resumes its own pending deliveries at once."""
    claim_idle_ms: int = 30_000
    """A delivery another gateway process took and left idle this long is taken over (``SIGW_CLAIM_IDLE_MS``)."""
    sweep_interval_s: float = 60.0
    """How often the overdue sweeper runs (``SIGW_SWEEP_INTERVAL_S``)."""
    rate_per_s: float = 200.0
    """Calls a second each participant may make (``SIGW_RATE_PER_S``); bursts up to twice that."""
    clock_start: datetime | None = None
    """For tests and demos only: the clock starts at this instant and runs on (``SIGW_CLOCK_START``, ISO 8601)."""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        defaults = cls()
        return cls(
            grpc_listen=e.get("SIGW_GRPC_LISTEN", defaults.grpc_listen),
            http_listen=e.get("SIGW_HTTP_LISTEN", defaults.http_listen),
            redis_url=e.get("SIGW_REDIS_URL") or None,
            data_dir=Path(e.get("SIGW_DATA_DIR", str(defaults.data_dir))),
            regions_file=Path(e.get("SIGW_REGIONS_FILE", str(defaults.regions_file))),
            calendar_file=Path(e["SIGW_CALENDAR_FILE"]) if e.get("SIGW_CALENDAR_FILE") else defaults.calendar_file,
            dev_identity=e.get("SIGW_DEV_IDENTITY", "") in ("1", "true", "yes"),
            insecure=e.get("SIGW_INSECURE", "") in ("1", "true", "yes"),
            tls_dir=Path(e.get("SIGW_TLS_DIR", str(defaults.tls_dir))),
            key_file=Path(e.get("SIGW_KEY_FILE", str(defaults.key_file))),
            appendfsync=e.get("SIGW_APPENDFSYNC", defaults.appendfsync),
            instance=e.get("SIGW_INSTANCE", ""),
            claim_idle_ms=int(e.get("SIGW_CLAIM_IDLE_MS", defaults.claim_idle_ms)),
            sweep_interval_s=float(e.get("SIGW_SWEEP_INTERVAL_S", defaults.sweep_interval_s)),
            rate_per_s=float(e.get("SIGW_RATE_PER_S", defaults.rate_per_s)),
            clock_start=datetime.fromisoformat(e["SIGW_CLOCK_START"]) if e.get("SIGW_CLOCK_START") else None,
        )
