"""``sigw portal``: the applicants' status page and the portal's ``NotifyService`` (``adapters.portal``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from gateway.cli.serve import setup_logging, until_signalled
from gateway.config import load_registry

__all__ = ["add_commands", "cmd_portal"]


async def _portal(args: argparse.Namespace) -> None:
    from adapters.portal.server import PortalServer, PortalSettings
    from gateway.security.tls import TlsFolder

    tls = None if args.insecure else TlsFolder(args.tls_dir)
    if tls is not None and not (tls.exists() and tls.has(args.participant)):
        raise SystemExit(
            f"no certificate for {args.participant} in {args.tls_dir}: run `sigw pki init` (or "
            f"`sigw pki issue {args.participant}`), or --insecure against a development gateway"
        )
    notify_listen = args.notify_listen
    if notify_listen is None:
        code = args.participant.partition(":")[2]
        portal = load_registry(args.regions_file).portals.get(code)
        notify_listen = portal.notify if portal else "127.0.0.1:0"
    settings = PortalSettings(
        gateway=args.gateway,
        listen=args.listen,
        notify_listen=notify_listen,
        participant=args.participant,
        tls=tls,
        data_dir=args.data_dir,
    )
    server = PortalServer(settings)
    await server.start()
    await until_signalled(server.stop)


def cmd_portal(args: argparse.Namespace) -> int:
    setup_logging("portal")
    try:
        asyncio.run(_portal(args))
    except OSError as error:
        logging.getLogger("sigw").error("cannot start the portal: %s", error)
        return 2
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
    portal = sub.add_parser("portal", help="run the applicants' status page and the portal's NotifyService")
    portal.add_argument(
        "--gateway", default=os.environ.get("SIGW_TARGET", "127.0.0.1:50051"), help="the gateway's gRPC address"
    )
    portal.add_argument(
        "--listen",
        default=os.environ.get("SIGW_PORTAL_LISTEN", "127.0.0.1:8000"),
        help="the status page's address (default 127.0.0.1:8000, env SIGW_PORTAL_LISTEN)",
    )
    portal.add_argument(
        "--notify-listen", help="NotifyService's address (default: this portal's notify in the regions file)"
    )
    portal.add_argument("--as", dest="participant", default="portal:gov", help="the portal's participant")
    portal.add_argument(
        "--regions-file",
        type=Path,
        default=Path(os.environ.get("SIGW_REGIONS_FILE") or "config/regions.toml"),
        help="region registry",
    )
    portal.add_argument("--tls-dir", type=Path, default=Path("var/pki"), help="PKI folder of `sigw pki init`")
    portal.add_argument("--data-dir", type=Path, default=Path("var/portal"), help="where received notices are kept")
    portal.add_argument("--insecure", action="store_true", help="DEVELOPMENT ONLY: plain text on loopback")
    portal.set_defaults(func=cmd_portal)
