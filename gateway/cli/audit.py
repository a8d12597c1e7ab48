"""``sigw audit verify``: walk the hash-chained audit trail."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "cmd_audit_verify"]


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Walk every audit chain in Redis; exit 0 when intact, 4 (and say where) when not."""
    import redis.asyncio as aioredis

    from gateway.store.audit import AuditTrail

    url = args.redis_url or f"unix://{(args.data_dir / 'redis.sock').resolve()}"

    async def verify() -> int:
        client = aioredis.Redis.from_url(url)
        try:
            reports, findings = await AuditTrail(client).verify()
        finally:
            await client.aclose()
        for report in reports:
            print(f"{report.chain}: {report.entries} entries, head {report.head}")
        for finding in findings:
            print(f"BROKEN {finding}")
        print("audit trail intact" if not findings else f"{len(findings)} broken chains")
        return 0 if not findings else 4

    return asyncio.run(verify())


def add_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
    """sigw audit verify."""
    audit = sub.add_parser("audit", help="the hash-chained audit trail").add_subparsers(dest="action", required=True)
    p = audit.add_parser("verify", help="detect altered, removed or re-ordered entries, and say where")
    p.add_argument("--redis-url", default=os.environ.get("SIGW_REDIS_URL"), help="default: the embedded Redis")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("SIGW_DATA_DIR", "var/data")))
    p.set_defaults(func=cmd_audit_verify)
