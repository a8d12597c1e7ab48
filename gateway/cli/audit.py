"""``sigw audit verify|anchor``: walk the hash-chained audit trail; anchor its heads outside Redis."""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "cmd_audit_anchor", "cmd_audit_verify"]

BROKEN = 4


def _url(args: argparse.Namespace) -> str:
    return str(args.redis_url or f"unix://{(args.data_dir / 'redis.sock').resolve()}")


def _cipher(args: argparse.Namespace) -> Any:
    from gateway.security.crypto import FieldCipher

    if not args.key_file.exists():
        return None
    return FieldCipher.from_key_file(args.key_file.read_text())


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Walk every audit chain and every record it names, check the MACs with the key file and the newest anchor;
    exit 0 when intact, 4 (and say where) when not."""
    import redis.asyncio as aioredis

    from gateway.store.audit import AuditTrail, read_anchor

    cipher = _cipher(args)
    anchor = None
    lines = args.anchors.read_text().splitlines() if args.anchors.exists() else []
    if lines and cipher is None:
        print(f"error: {args.anchors} needs the key file to check it ({args.key_file} is missing)")
        return 2
    if lines:
        try:
            anchor = read_anchor(lines[-1], cipher)
        except ValueError as bad:
            print(f"BROKEN {args.anchors}: {bad}")
            return BROKEN

    async def verify() -> int:
        client = aioredis.Redis.from_url(_url(args))
        try:
            reports, findings = await AuditTrail(client, cipher).verify(anchor)
        finally:
            await client.aclose()
        for report in reports:
            print(f"{report.chain}: {report.entries} entries, head {report.head}")
        if cipher is None:
            print(f"MACs not checked: no key file at {args.key_file} (--key-file)")
        print(f"anchor of {anchor.time} checked" if anchor else f"no anchor in {args.anchors}: run `sigw audit anchor`")
        for finding in findings:
            print(f"BROKEN {finding}")
        print("audit trail intact" if not findings else f"{len(findings)} problems")
        return 0 if not findings else BROKEN

    return asyncio.run(verify())


def cmd_audit_anchor(args: argparse.Namespace) -> int:
    """Verify the trail, then append each chain's head, signed with the audit key, to the anchors file (keep it,
    or a copy, where whoever can write Redis cannot)."""
    import redis.asyncio as aioredis

    from gateway.store.audit import AuditTrail, make_anchor

    cipher = _cipher(args)
    if cipher is None:
        print(f"error: anchoring signs with the key file, and {args.key_file} is missing")
        return 2

    async def anchor() -> int:
        client = aioredis.Redis.from_url(_url(args))
        try:
            reports, findings = await AuditTrail(client, cipher).verify()
        finally:
            await client.aclose()
        if findings:
            for finding in findings:
                print(f"BROKEN {finding}")
            print("not anchored: the trail is broken")
            return BROKEN
        made = make_anchor(reports, datetime.now(UTC), cipher)
        args.anchors.parent.mkdir(parents=True, exist_ok=True)
        with args.anchors.open("a") as out:
            out.write(made.to_line() + "\n")
        for chain, (seq, head) in sorted(made.heads.items()):
            print(f"{chain}: seq {seq}, head {head}")
        print(f"anchored {len(made.heads)} chains in {args.anchors}")
        return 0

    return asyncio.run(anchor())


def add_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
    """sigw audit verify|anchor."""
    audit = sub.add_parser("audit", help="the hash-chained audit trail").add_subparsers(dest="action", required=True)
    for name, func, text in (
        ("verify", cmd_audit_verify, "detect altered, removed, re-ordered or forged entries and edited records"),
        ("anchor", cmd_audit_anchor, "sign each chain's head into the anchors file (outside Redis)"),
    ):
        p = audit.add_parser(name, help=text)
        p.add_argument("--redis-url", default=os.environ.get("SIGW_REDIS_URL"), help="default: the embedded Redis")
        p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("SIGW_DATA_DIR", "var/data")))
        p.add_argument("--key-file", type=Path, default=Path(os.environ.get("SIGW_KEY_FILE", "var/keys/sigw.keys")))
        p.add_argument("--anchors", type=Path, default=Path("var/audit/anchors.jsonl"), help="the anchors file")
        p.set_defaults(func=func)
