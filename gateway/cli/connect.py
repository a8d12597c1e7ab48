"""How the CLI reaches the gateway: mutual TLS with the caller's certificate, or (development) a
plain channel that names the caller in metadata; and small argument helpers."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import grpc

from gateway._gen.sigw.v1 import (
    common_pb2,
    operator_pb2_grpc,
    settlement_pb2_grpc,
    transfer_pb2_grpc,
)
from gateway.api.identity import METADATA_KEY
from gateway.domain.ids import new_message_id
from gateway.security.tls import TlsFolder

__all__ = [
    "NameCaller",
    "channel",
    "day",
    "operator_stub",
    "request_id_of",
    "settlement_stub",
    "shared_options",
    "transfer_stub",
]


def channel(args: argparse.Namespace, participant: str) -> grpc.Channel:
    """Mutual TLS with the participant's certificate when the PKI folder has one; else plain text (a gateway
    serving ``--insecure --dev-identity``, which reads the caller from the metadata)."""
    tls = TlsFolder(args.tls_dir)
    if not tls.exists():
        print(
            f"note: no PKI in {args.tls_dir}: plain text, calling as {participant} (only a gateway serving "
            "--insecure --dev-identity accepts that; `sigw pki init` or --tls-dir for mutual TLS)",
            file=sys.stderr,
        )
        return grpc.intercept_channel(grpc.insecure_channel(args.target), NameCaller(participant))
    if not participant or not tls.has(participant):
        raise SystemExit(
            f"no certificate for {participant or 'the caller'} in {args.tls_dir}: issue one with "
            f"`sigw pki issue {participant or 'PARTICIPANT'}`, or name another with --as"
        )
    return grpc.secure_channel(args.target, tls.channel_credentials(participant))


class NameCaller(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Names the caller in the x-sigw-participant metadata (read only by a development gateway)."""

    def __init__(self, participant: str) -> None:
        self.metadata = ((METADATA_KEY, participant),)

    def _named(self, details: Any) -> Any:
        return details._replace(metadata=(*(details.metadata or ()), *self.metadata))

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._named(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._named(details), request)


def transfer_stub(args: argparse.Namespace, participant: str) -> transfer_pb2_grpc.TransferServiceStub:
    return transfer_pb2_grpc.TransferServiceStub(channel(args, participant))


def settlement_stub(args: argparse.Namespace, participant: str) -> settlement_pb2_grpc.SettlementServiceStub:
    return settlement_pb2_grpc.SettlementServiceStub(channel(args, participant))


def operator_stub(args: argparse.Namespace, participant: str) -> operator_pb2_grpc.OperatorServiceStub:
    return operator_pb2_grpc.OperatorServiceStub(channel(args, participant))


def request_id_of(args: argparse.Namespace) -> str:
    return args.request_id or new_message_id()


def day(text: str) -> common_pb2.Date:
    d = date.fromisoformat(text)
    return common_pb2.Date(year=d.year, month=d.month, day=d.day)


def shared_options() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The options every call takes (target, caller, deadline, PKI folder) and those of mutating calls."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--target", default=os.environ.get("SIGW_TARGET", "127.0.0.1:50051"), help="gateway address (env SIGW_TARGET)"
    )
    common.add_argument(
        "--as",
        dest="as_",
        default=os.environ.get("SIGW_AS"),
        help="caller participant, e.g. agency:310000:hrss or operator:alice (env SIGW_AS)",
    )
    common.add_argument("--timeout", type=float, default=10.0, help="call deadline in seconds")
    common.add_argument(
        "--tls-dir",
        type=Path,
        default=Path(os.environ.get("SIGW_TLS_DIR", "var/pki")),
        help="PKI folder with the caller's certificate (env SIGW_TLS_DIR; default var/pki)",
    )
    mutating = argparse.ArgumentParser(add_help=False)
    mutating.add_argument("--request-id", help="idempotency key (default: a new one)")
    return common, mutating
