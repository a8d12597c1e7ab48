"""The ``sigw`` command: run the gateway, and drive it from a terminal. One module per command group (``serve``,
``portal``, ``pki``, ``audit``, ``regions``, ``transfers``, ``settlements``, ``operator``, ``agency_check``), a
shared renderer (``render``) and the connection to the gateway (``connect``).

Each call names its caller with ``--as`` and presents that participant's certificate from ``--tls-dir``; see each
command's default caller in its help.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import grpc

from gateway.cli import agency_check, audit, operator, pki, portal, regions, serve, settlements, transfers
from gateway.cli.connect import shared_options
from gateway.cli.render import describe_rpc_error

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigw", description="Cross-region social-insurance gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    common, mutating = shared_options()
    for group in (serve, portal, pki, audit, regions, transfers, settlements, operator, agency_check):
        group.add_commands(sub, common, mutating)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except grpc.RpcError as error:
        print(describe_rpc_error(error), file=sys.stderr)
        return 1
    except FileNotFoundError as error:  # a configuration file: run from the project, or name it
        print(
            f"error: {error.strerror}: {error.filename} (run from the project folder, or name the file)",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:  # the reader went away (`sigw transfer list | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
