"""``sigw regions``: the region registry."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from gateway.cli.render import pad
from gateway.config import load_registry
from gateway.domain.participants import AgencyType

__all__ = ["add_commands", "cmd_regions"]


def cmd_regions(args: argparse.Namespace) -> int:
    registry = load_registry(args.regions_file)
    print(f"{pad('region', 8)}{pad('name', 22)}{pad('HRSS agency', 24)}healthcare-security agency")
    for region in registry.regions.values():
        hrss = region.endpoints.get(AgencyType.HRSS, "-")
        care = region.endpoints.get(AgencyType.HEALTHCARE_SECURITY, "-")
        print(f"{pad(region.code, 8)}{pad(region.name, 22)}{pad(hrss, 24)}{care}")
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
    """sigw regions."""
    regions = sub.add_parser("regions", help="list the configured regions and their agencies")
    regions.add_argument(
        "--regions-file", type=Path, default=Path(os.environ.get("SIGW_REGIONS_FILE") or "config/regions.toml")
    )
    regions.set_defaults(func=cmd_regions)
