"""``sigw queue|dlq ...``: what waits for delivery, and the dead letters."""

from __future__ import annotations

import argparse
from typing import Any

from gateway._gen.sigw.v1 import (
    common_pb2,
    operator_pb2,
)
from gateway.cli.connect import operator_stub, request_id_of
from gateway.cli.render import print_queued
from gateway.domain.participants import AgencyType

__all__ = ["add_commands", "cmd_dlq_list", "cmd_dlq_redrive", "cmd_queue_list"]


def cmd_queue_list(args: argparse.Namespace) -> int:
    request = operator_pb2.ListQueuedRequest(lane=args.lane or "", limit=args.limit)
    if args.agency:
        region, slug = args.agency.split(":")
        request.agency.CopyFrom(
            common_pb2.AgencyRef(
                region_code=region, agency_type=common_pb2.AgencyType.ValueType(int(AgencyType.from_slug(slug)))
            )
        )
    reply = operator_stub(args, args.as_ or "operator:cli").ListQueued(request, timeout=args.timeout)
    print("depth: " + ", ".join(f"{lane} {depth}" for lane, depth in sorted(reply.depth_by_lane.items())))
    for m in reply.messages:
        print_queued(m)
    return 0


def cmd_dlq_list(args: argparse.Namespace) -> int:
    reply = operator_stub(args, args.as_ or "operator:cli").ListDeadLetters(
        operator_pb2.ListDeadLettersRequest(limit=args.limit),
        timeout=args.timeout,
    )
    for m in reply.messages:
        print_queued(m)
    print(f"{len(reply.messages)} dead letters")
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    if bool(args.entry_ids) == args.all:
        raise SystemExit("name entry ids, or --all")
    reply = operator_stub(args, args.as_ or "operator:cli").RedriveDeadLetters(
        operator_pb2.RedriveDeadLettersRequest(request_id=request_id_of(args), entry_ids=args.entry_ids, all=args.all),
        timeout=args.timeout,
    )
    print(f"re-drove {reply.redriven} dead letters (on the record as {args.as_ or 'operator:cli'})")
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
    queue = sub.add_parser("queue", help="what waits for delivery, per lane").add_subparsers(
        dest="action", required=True
    )
    p = queue.add_parser("list", parents=[common], help="queued messages, oldest first")
    p.add_argument("--agency", help="REGION:hrss or REGION:healthcare")
    p.add_argument("--lane", choices=["priority", "ordinary"])
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_queue_list)
    dlq = sub.add_parser("dlq", help="dead letters: list, show, re-drive").add_subparsers(dest="action", required=True)
    p = dlq.add_parser("list", parents=[common], help="dead letters with reasons and attempts")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_dlq_list)
    p = dlq.add_parser("show", parents=[common], help="the same as list, for a closer look")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_dlq_list)
    p = dlq.add_parser("redrive", parents=[common, mutating], help="put dead letters back on their lanes")
    p.add_argument("entry_ids", nargs="*")
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=cmd_dlq_redrive)
