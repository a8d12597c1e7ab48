"""``sigw agency-check``: the conformance kit for a region's agency system (``adapters.conformance``).

Plays the gateway against the agency at ADDRESS: delivers every notice type the gateway sends (by ``Deliver`` and
``DeliverBatch``), duplicates, notices out of order and malformed requests, and, by the agency's type, the
settlement calls or the contribution periods; prints a line per case (or JSON) and exits 0 only when every case
passed (1 otherwise, 2 when it could not start).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.cli.render import pad
from gateway.config import load_registry
from gateway.domain import idnumber
from gateway.domain.participants import AgencyKey, AgencyType

if TYPE_CHECKING:
    from adapters.conformance import Result, Target

__all__ = ["add_commands", "cmd_agency_check"]


class _CannotStart(Exception):
    """A usage or setup problem: exit 2 with the message, no case run."""


def _agency(args: argparse.Namespace) -> AgencyKey:
    """The ``--agency`` named, else the one agency the regions file lists at ADDRESS."""
    from adapters.conformance import parse_agency

    if args.agency:
        try:
            return parse_agency(args.agency)
        except ValueError as bad:
            raise _CannotStart(f"--agency: {bad}") from bad
    try:
        registry = load_registry(args.regions_file)
    except FileNotFoundError:
        registry = None
    found = [a for a in registry.agencies() if registry.endpoint(a) == args.address] if registry else []
    if len(found) != 1:
        raise _CannotStart(
            f"{args.regions_file} lists {'no agency' if not found else 'several agencies'} at {args.address}: "
            "name it with --agency agency:REGION:hrss|healthcare"
        )
    return found[0]


def _target(args: argparse.Namespace, agency: AgencyKey) -> Target:
    from adapters.conformance import Target

    credentials = None
    if not args.insecure:
        from gateway.security.tls import TlsFolder

        tls = TlsFolder(args.tls_dir)
        if not tls.exists():
            raise _CannotStart(
                f"no gateway certificate in {args.tls_dir}: the kit calls the agency as the gateway does, with "
                "the gateway's certificate (`sigw pki init`, or --tls-dir); --insecure for an agency on plain text"
            )
        credentials = tls.channel_credentials()
    if args.person and not idnumber.is_valid(args.person):
        raise _CannotStart("--person: not a valid ID number")
    return Target(
        address=args.address,
        agency=agency,
        credentials=credentials,
        timeout_s=args.timeout,
        id_number=args.person or "",
        name=args.name,
    )


def _print_table(agency: AgencyKey, address: str, results: list[Result]) -> None:
    width = max(len(r.case.name) for r in results) + 2
    print(f"agency:{agency} at {address}")
    for r in results:
        print(f"{'PASS' if r.passed else 'FAIL'}  {pad(r.case.name, width)}{r.detail}")
    failed = sum(not r.passed for r in results)
    print(f"all {len(results)} cases passed" if not failed else f"{failed} of {len(results)} cases failed")


def _list(agency_type: AgencyType | None, as_json: bool) -> int:
    from adapters.conformance import CASES, cases_for

    cases = cases_for(agency_type) if agency_type else list(CASES)
    if as_json:
        rows = [
            {"name": c.name, "agencies": sorted(t.slug for t in c.agencies), "sends": c.sends, "expects": c.expects}
            for c in cases
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for c in cases:
        print(f"{c.name}  [{', '.join(sorted(t.slug for t in c.agencies))}]")
        print(f"    sends:   {c.sends}")
        print(f"    expects: {c.expects}")
    return 0


def cmd_agency_check(args: argparse.Namespace) -> int:
    from adapters.conformance import cases_for, check

    try:
        if args.list:
            return _list(_agency(args).agency_type if args.agency else None, args.json)
        if not args.address:
            raise _CannotStart("ADDRESS is required: host:port of the agency's RegionAgencyService")
        agency = _agency(args)
        target = _target(args, agency)
        try:
            cases = cases_for(agency.agency_type, args.case or ())
        except KeyError as unknown:
            raise _CannotStart(
                f"--case: no such case for a {agency.agency_type.slug} agency: {unknown.args[0]}"
            ) from None
    except _CannotStart as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    results = asyncio.run(check(target, cases))
    if args.json:
        report = {
            "agency": f"agency:{agency}",
            "address": args.address,
            "passed": all(r.passed for r in results),
            "cases": [r.to_json() for r in results],
        }
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_table(agency, args.address, results)
    return 0 if all(r.passed for r in results) else 1


def add_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
    """sigw agency-check."""
    p = sub.add_parser(
        "agency-check",
        help="check a region's agency system (RegionAgencyService) against what the gateway relies on",
        description="Plays the gateway against the agency at ADDRESS: every notice type by Deliver and "
        "DeliverBatch, duplicates, notices out of order, malformed requests and the settlement or contribution "
        "period calls. Exits 0 only when every case passes. The kit has no gateway: an agency that answers a "
        "notice by calling the gateway back is checked on its Deliver answers only.",
    )
    p.add_argument("address", nargs="?", metavar="ADDRESS", help="host:port of the agency's RegionAgencyService")
    p.add_argument(
        "--agency",
        help="agency:REGION:hrss|healthcare (default: the agency the regions file lists at ADDRESS)",
    )
    p.add_argument(
        "--regions-file",
        type=Path,
        default=Path(os.environ.get("SIGW_REGIONS_FILE") or "config/regions.toml"),
        help="region registry",
    )
    security = p.add_mutually_exclusive_group()
    security.add_argument(
        "--tls-dir",
        type=Path,
        default=Path(os.environ.get("SIGW_TLS_DIR", "var/pki")),
        help="PKI folder with the gateway's certificate, which the kit presents (env SIGW_TLS_DIR; default var/pki)",
    )
    security.add_argument("--insecure", action="store_true", help="plain text (an agency in development)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--timeout", type=float, default=5.0, help="each call's deadline in seconds (default 5)")
    p.add_argument(
        "--person",
        help="ID number of a test person insured at the agency (settlement, person information, contribution "
        "periods; default: a made-up one)",
    )
    p.add_argument("--name", default="测试参保人", help="that person's name")
    p.add_argument("--case", action="append", metavar="NAME", help="run only this case (repeatable)")
    p.add_argument("--list", action="store_true", help="list the cases (for --agency's type) and exit")
    p.set_defaults(func=cmd_agency_check)
