"""``sigw serve``: run the gateway (the supervisor and its processes, or ``--single`` one process), and
``sigw agencies``: run the simulated agencies of the regions file."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.cli.logs import setup_logging
from gateway.config import Settings, load_registry
from gateway.domain.regions import Registry

if TYPE_CHECKING:
    from adapters.portal.server import PortalServer

__all__ = ["add_commands", "cmd_agencies", "cmd_serve", "setup_logging", "until_signalled"]


async def until_signalled(stopped: Callable[[], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await stopped()


async def _serve(settings: Settings, role: str | None) -> None:
    from gateway.server import ALL_ROLES, Role, clock_from, start_gateway

    registry = load_registry(settings.regions_file)
    roles = frozenset({Role(role)}) if role else ALL_ROLES
    gateway = await start_gateway(settings, registry, clock=clock_from(settings.clock_start), roles=roles)
    log = logging.getLogger("sigw")
    if role == Role.API:
        log.info("API process serving gRPC on %s", settings.grpc_listen)
    elif role == Role.DELIVERY and gateway.dispatcher is not None:
        log.info("delivery process routing and delivering (consumer %s)", gateway.dispatcher.consumer)
    else:
        log.info(
            "sigw serving gRPC on %s and HTTP on %s in one process (%d regions%s)",
            settings.grpc_listen,
            settings.http_listen,
            len(registry.regions),
            ", simulated agencies" if settings.demo else "",
        )

    portal = await _demo_portal(settings, registry, gateway.grpc_port) if settings.demo and not role else None

    async def stopped() -> None:
        log.info("shutting down: NOT_SERVING, finishing in-flight calls")
        await gateway.stop()
        if portal is not None:
            await portal.stop()
        log.info("stopped")

    await until_signalled(stopped)


async def _demo_portal(settings: Settings, registry: Registry, grpc_port: int) -> PortalServer | None:
    """``--single --demo``: the registry's first portal in this process too (the supervisor runs it as a child)."""
    from adapters.portal.server import PortalServer, PortalSettings
    from gateway.server import check_transport

    first = next(iter(registry.portals.values()), None)
    if first is None or not settings.portal_listen:
        return None
    portal = PortalServer(
        PortalSettings(
            gateway=f"127.0.0.1:{grpc_port}",
            listen=settings.portal_listen,
            notify_listen=first.notify,
            participant=str(first.key),
            tls=check_transport(settings),
            data_dir=settings.data_dir.parent / "portal",
        )
    )
    await portal.start()
    return portal


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    overrides: dict[str, Any] = {
        "grpc_listen": args.grpc_listen,
        "http_listen": args.http_listen,
        "redis_url": args.redis_url,
        "data_dir": args.data_dir,
        "regions_file": args.regions_file,
        "calendar_file": args.calendar_file,
        "appendfsync": args.appendfsync,
        "tls_dir": args.tls_dir,
        "workers": args.workers,
    }
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    switches: dict[str, Any] = {flag: True for flag in ("dev_identity", "insecure", "demo") if getattr(args, flag)}
    return replace(settings, **switches)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    setup_logging(args.role or "")
    if args.role or args.single:
        asyncio.run(_serve(settings, args.role))
        return 0
    from gateway.supervisor import Supervisor

    async def supervise() -> int:
        return await Supervisor(settings).run()

    try:
        return asyncio.run(supervise())
    except (OSError, ValueError) as error:  # a port in use, a missing PKI, a bad setting
        logging.getLogger("sigw").error("cannot start: %s", error)
        return 2


async def _agencies(settings: Settings, gateway_target: str, act_delay_s: float, act: bool) -> None:
    from adapters.simulated_agency import SimulatedAgencies
    from gateway.server import check_transport

    registry = load_registry(settings.regions_file)
    simulated = SimulatedAgencies(gateway_target, act_delay_s, tls=check_transport(settings), act=act)
    await simulated.start((key, registry.endpoint(key) or "127.0.0.1:0") for key in registry.agencies())
    logging.getLogger("sigw").info(
        "simulated agencies of %d regions answering %s", len(registry.regions), gateway_target
    )
    await until_signalled(simulated.stop)


def cmd_agencies(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.regions_file:
        settings = replace(settings, regions_file=args.regions_file)
    if args.tls_dir:
        settings = replace(settings, tls_dir=args.tls_dir)
    if args.insecure:
        settings = replace(settings, insecure=True)
    setup_logging("agencies")
    asyncio.run(_agencies(settings, args.gateway, args.act_delay, not args.passive))
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
    """sigw serve, sigw agencies."""
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
    serve.add_argument(
        "--workers", type=int, help="API processes sharing the gRPC port (default: one per core, env SIGW_WORKERS)"
    )
    serve.add_argument("--single", action="store_true", help="everything in one process (no supervisor)")
    serve.add_argument(
        "--role",
        choices=["api", "delivery"],
        help="run one role of the supervisor's tree (the supervisor starts these; not for direct use)",
    )
    serve.set_defaults(func=cmd_serve)

    agencies = sub.add_parser("agencies", help="run the simulated agencies of the regions file (demo)")
    agencies.add_argument("--gateway", required=True, help="the gateway's gRPC address the agencies answer")
    agencies.add_argument("--regions-file", type=Path, help="region registry (default config/regions.toml)")
    agencies.add_argument("--tls-dir", type=Path, help="PKI folder of `sigw pki init` (default var/pki)")
    agencies.add_argument("--insecure", action="store_true", help="plain text (the gateway serves --insecure)")
    agencies.add_argument(
        "--act-delay",
        type=float,
        default=float(os.environ.get("SIGW_DEMO_ACT_DELAY", "0.2")),
        help="seconds before an agency answers a notice (default 0.2, env SIGW_DEMO_ACT_DELAY)",
    )
    agencies.add_argument("--passive", action="store_true", help="take deliveries, never answer them (benchmarks)")
    agencies.set_defaults(func=cmd_agencies)
