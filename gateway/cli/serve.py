"""``sigw serve``: run the gateway."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.config import Settings, load_registry
from gateway.domain import idnumber

__all__ = ["ScrubbingFilter", "add_commands", "cmd_serve", "setup_logging"]


class ScrubbingFilter(logging.Filter):
    """No ID number leaves through the logs unmasked."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = idnumber.scrub(record.getMessage())
        record.args = ()
        return True


def setup_logging() -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ScrubbingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


async def _serve(settings: Settings) -> None:
    from gateway.server import clock_from, start_gateway

    registry = load_registry(settings.regions_file)
    gateway = await start_gateway(settings, registry, clock=clock_from(settings.clock_start))
    logging.getLogger("sigw").info(
        "sigw serving gRPC on %s and HTTP on %s (%d regions%s)",
        settings.grpc_listen,
        settings.http_listen,
        len(registry.regions),
        ", simulated agencies" if settings.demo else "",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.getLogger("sigw").info("shutting down: NOT_SERVING, finishing in-flight calls")
    await gateway.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    overrides: dict[str, Any] = {
        "grpc_listen": args.grpc_listen,
        "http_listen": args.http_listen,
        "redis_url": args.redis_url,
        "data_dir": args.data_dir,
        "regions_file": args.regions_file,
        "calendar_file": args.calendar_file,
        "appendfsync": args.appendfsync,
    }
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    if args.dev_identity:
        settings = replace(settings, dev_identity=True)
    if args.insecure:
        settings = replace(settings, insecure=True)
    if args.tls_dir:
        settings = replace(settings, tls_dir=args.tls_dir)
    if args.demo:
        settings = replace(settings, demo=True)
    setup_logging()
    asyncio.run(_serve(settings))
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
    """sigw serve."""
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--grpc-listen", help="gRPC address (default 127.0.0.1:50051, env SIGW_GRPC_LISTEN)")
    serve.add_argument("--http-listen", help="/metrics and /healthz address (default 127.0.0.1:8080)")
    serve.add_argument("--redis-url", help="use this Redis (env SIGW_REDIS_URL); default: embedded Redis")
    serve.add_argument("--data-dir", type=Path, help="embedded Redis data folder (default var/data)")
    serve.add_argument("--regions-file", type=Path, help="region registry (default config/regions.toml)")
    serve.add_argument("--calendar-file", type=Path, help="operator holiday file (default config/calendar.toml)")
    serve.add_argument("--appendfsync", choices=["always", "everysec", "no"], help="embedded Redis fsync policy")
    serve.add_argument(
        "--dev-identity", action="store_true", help="DEVELOPMENT ONLY: take the caller from x-sigw-participant metadata"
    )
    serve.add_argument("--demo", action="store_true", help="also run simulated agencies for the registry")
    serve.add_argument("--tls-dir", type=Path, help="PKI folder of `sigw pki init` (default var/pki)")
    serve.add_argument("--insecure", action="store_true", help="DEVELOPMENT ONLY: plain text on loopback, no mTLS")
    serve.set_defaults(func=cmd_serve)
