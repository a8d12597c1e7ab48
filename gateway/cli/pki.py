"""``sigw pki init|issue|revoke``: the development PKI for mutual TLS, and revocation."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from gateway.config import load_registry
from gateway.domain.participants import participant_of

__all__ = ["DEMO_PARTICIPANTS", "add_commands", "cmd_pki_init", "cmd_pki_issue", "cmd_pki_revoke"]

DEMO_PARTICIPANTS = (
    "operator:cli",
    "portal:cli",
    "portal:gov",
    "military:DEMO",
    "military:JUN001",
    "hospital:440300:H44030000001",
    "hospital:510100:H51010000001",
    "hospital:110000:H11010000001",
    "hospital:310000:H31010000001",
)


def cmd_pki_init(args: argparse.Namespace) -> int:
    from gateway.security import pki

    registry = load_registry(args.regions_file)
    serving = [participant_of(d) for d in registry.destinations()]  # the agencies and the portals of the registry
    issued = pki.init_pki(
        args.tls_dir, [*serving, *DEMO_PARTICIPANTS, *(args.participant or [])], valid_days=args.valid_days
    )
    print(f"development PKI in {args.tls_dir}: CA, gateway and {len(issued)} participants")
    return 0


def cmd_pki_issue(args: argparse.Namespace) -> int:
    """Issue (or rotate) one participant's certificate with the existing CA; the certificate it replaces is
    revoked."""
    from gateway.security import pki, revocation

    folder: Path = args.tls_dir
    replaced = folder / f"{pki.file_stem(args.participant)}.pem"
    if replaced.exists():
        for serial in revocation.revoke(folder, [replaced.read_bytes()]):
            print(f"revoked the certificate it replaces (serial {serial:x})")
    cert, key = pki.issue(
        (folder / "ca.pem").read_bytes(),
        (folder / "ca.key").read_bytes(),
        args.participant,
        valid_days=args.valid_days,
        server=pki.serves(args.participant),
    )
    stem = pki.file_stem(args.participant)
    (folder / f"{stem}.key").write_bytes(key)
    (folder / f"{stem}.key").chmod(0o600)
    (folder / f"{stem}.pem").write_bytes(cert)
    print(f"issued {folder / stem}.pem for {args.participant}, valid {args.valid_days} days")
    return 0


def cmd_pki_revoke(args: argparse.Namespace) -> int:
    """Revoke one participant's current certificate: the gateway refuses it from its next call on."""
    from gateway.security import pki, revocation

    folder: Path = args.tls_dir
    cert = folder / f"{pki.file_stem(args.participant)}.pem"
    if not cert.exists():
        print(f"error: no certificate for {args.participant} in {folder}")
        return 2
    fresh = revocation.revoke(folder, [cert.read_bytes()])
    state = f"revoked (serial {fresh[0]:x})" if fresh else "was already revoked"
    print(f"{args.participant}: {state}; {folder / revocation.CRL_FILE} updated")
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
    """sigw pki init|issue|revoke."""
    pki_cmd = sub.add_parser("pki", help="development PKI for mutual TLS").add_subparsers(dest="action", required=True)
    p = pki_cmd.add_parser("init", help="CA, gateway and participant certificates (keeps an existing CA)")
    p.add_argument("--tls-dir", type=Path, default=Path(os.environ.get("SIGW_TLS_DIR", "var/pki")))
    p.add_argument(
        "--regions-file", type=Path, default=Path(os.environ.get("SIGW_REGIONS_FILE") or "config/regions.toml")
    )
    p.add_argument("--participant", action="append", help="also issue for this participant (repeatable)")
    p.add_argument("--valid-days", type=int, default=365)
    p.set_defaults(func=cmd_pki_init)
    p = pki_cmd.add_parser("issue", help="issue or rotate one participant's certificate")
    p.add_argument("participant", help="e.g. hospital:440300:H44030000009")
    p.add_argument("--tls-dir", type=Path, default=Path(os.environ.get("SIGW_TLS_DIR", "var/pki")))
    p.add_argument("--valid-days", type=int, default=365)
    p.set_defaults(func=cmd_pki_issue)
    p = pki_cmd.add_parser("revoke", help="revoke one participant's current certificate (crl.pem)")
    p.add_argument("participant", help="e.g. hospital:440300:H44030000009")
    p.add_argument("--tls-dir", type=Path, default=Path(os.environ.get("SIGW_TLS_DIR", "var/pki")))
    p.set_defaults(func=cmd_pki_revoke)
