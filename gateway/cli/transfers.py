"""``sigw transfer ...`` and ``sigw pension paying-region``: create, read and act on transfers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from gateway._gen.sigw.v1 import (
    common_pb2,
    transfer_pb2,
)
from gateway.cli.connect import day, request_id_of, transfer_stub
from gateway.cli.render import enum_name, print_transfer, time_text
from gateway.domain.transfer.kinds import MILITARY_KINDS, agency_type_of
from gateway.domain.transfer.model import Kind, State

__all__ = [
    "COLLECTION_SOURCES",
    "DIRECTIONS",
    "KINDS",
    "PAYING_RULES",
    "STATES",
    "add_commands",
    "cmd_cancel",
    "cmd_complete",
    "cmd_contact",
    "cmd_create",
    "cmd_info",
    "cmd_list",
    "cmd_paying_region",
    "cmd_reject",
    "cmd_show",
    "cmd_status",
    "cmd_temporary_account",
    "cmd_watch",
]

KINDS = {k.name.lower().replace("_", "-"): k for k in Kind}


STATES = {s.name.lower().replace("_", "-"): int(s) for s in State}


DIRECTIONS = {"institution-to-enterprise": 1, "enterprise-to-institution": 2}


COLLECTION_SOURCES = {"relationship": 1, "temporary-account": 2}


def cmd_create(args: argparse.Namespace) -> int:
    kind = KINDS[args.kind]
    military = kind in MILITARY_KINDS
    caller = args.as_ or ("military:DEMO" if military else f"agency:{args.to_region}:{agency_type_of(kind).slug}")
    request = transfer_pb2.CreateTransferRequest(
        request_id=request_id_of(args),
        kind=transfer_pb2.TransferKind.ValueType(kind),
        person=common_pb2.Person(id_number=args.id_number, name=args.name),
        source_region=args.from_region,
        target_region=args.to_region,
        note=args.note or "",
        circumstances=transfer_pb2.Circumstances(
            drawing_benefits=args.drawing_benefits,
            hukou_moved=args.hukou_moved,
            residence_changed=args.residence_changed,
            retired=args.retired,
            continuous_enrolment_months=args.continuous_months,
            direction=transfer_pb2.PensionDirection.ValueType(DIRECTIONS.get(args.direction or "", 0)),
            hukou_region=args.hukou_region or "",
            gap_months=args.gap_months,
            collection_source=transfer_pb2.CollectionSource.ValueType(
                COLLECTION_SOURCES.get(args.collection_source or "", 0)
            ),
        ),
    )
    contact = transfer_pb2.ApplicantContact(
        mobile=args.mobile or "",
        employer_name=args.employer or "",
        employer_mobile=args.employer_mobile or "",
        portal=args.portal or "",
    )
    if contact.ByteSize():  # left unset otherwise, so a retried command carries the same request
        request.contact.CopyFrom(contact)
    if military:
        if not (args.service_start and args.service_end and args.voucher):
            raise SystemExit("a military transfer needs --service-start, --service-end and --voucher")
        request.military.CopyFrom(
            transfer_pb2.MilitaryService(
                service_start=day(args.service_start),
                service_end=day(args.service_end),
                subsidy_fen=args.subsidy_fen,
                account_fen=args.account_fen,
                voucher_numbers=args.voucher,
                spouse=args.spouse,
            )
        )
    reply = transfer_stub(args, caller).CreateTransfer(request, timeout=args.timeout)
    print_transfer(reply.transfer)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    reply = transfer_stub(args, args.as_ or "operator:cli").GetTransfer(
        transfer_pb2.GetTransferRequest(transfer_id=args.transfer_id),
        timeout=args.timeout,
    )
    print_transfer(reply.transfer)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    reply = transfer_stub(args, args.as_ or "portal:cli").QueryTransferStatus(
        transfer_pb2.QueryTransferStatusRequest(transfer_id=args.transfer_id, id_number=args.id_number),
        timeout=args.timeout,
    )
    print_transfer(reply.transfer)
    print(f"applicant {reply.status.state_text}: {reply.status.summary}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    request = transfer_pb2.ListTransfersRequest(
        region_code=args.region,
        page_size=args.page_size,
        page_token=args.page_token or "",
        state=transfer_pb2.TransferState.ValueType(STATES.get(args.state or "", 0)),
        kind=transfer_pb2.TransferKind.ValueType(KINDS[args.kind] if args.kind else 0),
        overdue_only=args.overdue,
    )
    reply = transfer_stub(args, args.as_ or "operator:cli").ListTransfers(request, timeout=args.timeout)
    print(f"{'transfer':<24}{'kind':<34}{'from':<8}{'to':<8}{'state':<19}overdue")
    for t in reply.transfers:
        print(
            f"{t.transfer_id:<24}{enum_name(transfer_pb2.TransferKind, t.kind, 'TRANSFER_KIND_'):<34}"
            f"{t.source_region:<8}{t.target_region:<8}"
            f"{enum_name(transfer_pb2.TransferState, t.state, 'TRANSFER_STATE_'):<19}{'yes' if t.overdue else ''}"
        )
    if reply.next_page_token:
        print(f"next page: --page-token {reply.next_page_token}")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    stream = transfer_stub(args, args.as_ or "operator:cli").WatchTransfer(
        transfer_pb2.WatchTransferRequest(transfer_id=args.transfer_id),
        timeout=args.watch_timeout,
    )
    for item in stream:
        e = item.event
        to = enum_name(transfer_pb2.TransferState, e.to_state, "TRANSFER_STATE_")
        print(f"{time_text(e.time)}  {e.actor:<26} -> {to:<13} {e.note}", flush=True)
    return 0


def _act(args: argparse.Namespace, method: str, request: Any) -> int:
    if not args.as_:
        raise SystemExit("name the acting agency with --as, e.g. --as agency:310000:hrss")
    reply = getattr(transfer_stub(args, args.as_ or ""), method)(request, timeout=args.timeout)
    print_transfer(reply.transfer)
    return 0


def cmd_contact(args: argparse.Namespace) -> int:
    return _act(
        args,
        "SendContactLetter",
        transfer_pb2.SendContactLetterRequest(
            request_id=request_id_of(args), transfer_id=args.transfer_id, letter_number=args.letter_number or ""
        ),
    )


def cmd_info(args: argparse.Namespace) -> int:
    info = json_format.Parse(Path(args.info_file).read_text(encoding="utf-8"), transfer_pb2.TransferInfo())
    return _act(
        args,
        "SendTransferInfo",
        transfer_pb2.SendTransferInfoRequest(request_id=request_id_of(args), transfer_id=args.transfer_id, info=info),
    )


def cmd_temporary_account(args: argparse.Namespace) -> int:
    return _act(
        args,
        "OpenTemporaryAccount",
        transfer_pb2.OpenTemporaryAccountRequest(
            request_id=request_id_of(args), transfer_id=args.transfer_id, account_number=args.account_number or ""
        ),
    )


PAYING_RULES = {
    transfer_pb2.PAYING_RULE_HUKOU_HOLDS_RELATIONSHIP: "(1) the hukou region holds the relationship",
    transfer_pb2.PAYING_RULE_TEN_YEARS_WHERE_RELATIONSHIP: "(2) 10 years where the relationship is",
    transfer_pb2.PAYING_RULE_LAST_REGION_WITH_TEN_YEARS: "(3) the last earlier region with 10 years",
    transfer_pb2.PAYING_RULE_HUKOU_COLLECTS_ALL: "(4) no region with 10 years: the hukou region",
}


def cmd_paying_region(args: argparse.Namespace) -> int:
    """Which region pays the pension (66号 Art. 6), optionally opening the collections to it."""
    request = transfer_pb2.DeterminePayingRegionRequest(
        request_id=request_id_of(args) if args.start_collection else (args.request_id or ""),
        person=common_pb2.Person(id_number=args.id_number, name=args.name or ""),
        hukou_region=args.hukou_region,
        region_codes=args.region or [],
        start_collection=args.start_collection,
    )
    reply = transfer_stub(args, args.as_ or "operator:cli").DeterminePayingRegion(request, timeout=args.timeout)
    print(f"paying region  {reply.paying_region}   rule {PAYING_RULES.get(reply.rule, '?')}")
    print(f"why            {reply.reason}")
    print("periods")
    for p in reply.periods:
        where = "relationship here" if p.holds_relationship else "temporary account" if p.temporary_account else ""
        print(
            f"  {p.region_code}  {p.first_month.year:04d}-{p.first_month.month:02d} .. "
            f"{p.last_month.year:04d}-{p.last_month.month:02d}  {p.months:>3} months  {where}".rstrip()
        )
    for sender in reply.senders:
        what = enum_name(transfer_pb2.CollectionSource, sender.source, "COLLECTION_SOURCE_")
        print(f"must send      {sender.region_code} -> {reply.paying_region}  ({what})")
    for c in reply.collections:
        print(f"collection     {c.transfer_id}  {c.source_region} -> {c.target_region}")
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    return _act(
        args,
        "CompleteTransfer",
        transfer_pb2.CompleteTransferRequest(request_id=request_id_of(args), transfer_id=args.transfer_id),
    )


def cmd_reject(args: argparse.Namespace) -> int:
    return _act(
        args,
        "RejectTransfer",
        transfer_pb2.RejectTransferRequest(
            request_id=request_id_of(args), transfer_id=args.transfer_id, reason=args.reason
        ),
    )


def cmd_cancel(args: argparse.Namespace) -> int:
    return _act(
        args,
        "CancelTransfer",
        transfer_pb2.CancelTransferRequest(
            request_id=request_id_of(args), transfer_id=args.transfer_id, reason=args.reason
        ),
    )


def add_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
    """sigw transfer ... and sigw pension paying-region."""
    transfer = sub.add_parser("transfer", help="create, read and act on transfers")
    tsub = transfer.add_subparsers(dest="action", required=True)
    create = tsub.add_parser("create", parents=[common, mutating], help="register an application")
    create.add_argument("--kind", required=True, choices=sorted(KINDS))
    create.add_argument("--id-number", required=True, help="the person's resident ID number")
    create.add_argument("--name", required=True)
    create.add_argument("--from", dest="from_region", required=True, help="source region (转出地)")
    create.add_argument("--to", dest="to_region", required=True, help="target region (转入地)")
    create.add_argument("--drawing-benefits", action="store_true")
    create.add_argument("--hukou-moved", action="store_true")
    create.add_argument("--residence-changed", action="store_true")
    create.add_argument("--retired", action="store_true")
    create.add_argument("--continuous-months", type=int, default=0)
    create.add_argument("--direction", choices=sorted(DIRECTIONS))
    create.add_argument(
        "--hukou-region", help="户籍所在地 (6 digits); required where it decides a temporary account (66号 Art. 5)"
    )
    create.add_argument("--gap-months", type=int, default=0, help="medical: months without enrolment between regions")
    create.add_argument("--collection-source", choices=sorted(COLLECTION_SOURCES), help="pension-collection only")
    create.add_argument("--note")
    told = create.add_argument_group("result notices (Art. 16): how the person and employer are told")
    told.add_argument("--mobile", help="the person's mobile number (11 digits)")
    told.add_argument("--employer", help="the employer's name")
    told.add_argument("--employer-mobile", help="the employer's contact mobile number")
    told.add_argument("--portal", help="the portal that tells them (default: the registry's first)")
    military = create.add_argument_group("military transfers (Art. 17): --from 910000, --as military:CODE")
    military.add_argument("--service-start", help="YYYY-MM-DD")
    military.add_argument("--service-end", help="YYYY-MM-DD")
    military.add_argument("--subsidy-fen", type=int, default=0)
    military.add_argument("--account-fen", type=int, default=0)
    military.add_argument("--voucher", action="append", help="a voucher number (repeat for several)")
    military.add_argument("--spouse", action="store_true", help="an accompanying jobless spouse's transfer")
    create.set_defaults(func=cmd_create)

    for name, func, helptext in (
        ("show", cmd_show, "a transfer with steps and timeline"),
        ("watch", cmd_watch, "follow a transfer's events until it ends"),
    ):
        p = tsub.add_parser(name, parents=[common], help=helptext)
        p.add_argument("transfer_id")
        p.set_defaults(func=func)
        if name == "watch":
            p.add_argument("--watch-timeout", type=float, default=None, help="stop after this many seconds")

    status = tsub.add_parser("status", parents=[common], help="the applicant's status query (Art. 16)")
    status.add_argument("transfer_id")
    status.add_argument("--id-number", required=True)
    status.set_defaults(func=cmd_status)

    listing = tsub.add_parser("list", parents=[common], help="a region's transfers, newest first")
    listing.add_argument("--region", required=True)
    listing.add_argument("--state", choices=sorted(STATES))
    listing.add_argument("--kind", choices=sorted(KINDS))
    listing.add_argument("--overdue", action="store_true")
    listing.add_argument("--page-size", type=int, default=20)
    listing.add_argument("--page-token")
    listing.set_defaults(func=cmd_list)

    for name, func, helptext in (
        ("contact", cmd_contact, "target agency: send the contact letter"),
        ("temporary-account", cmd_temporary_account, "target agency: open the temporary account (66号 Art. 5)"),
        ("info", cmd_info, "source agency: send the information table (JSON file)"),
        ("complete", cmd_complete, "target agency: complete the transfer"),
        ("reject", cmd_reject, "a party agency: reject with a reason"),
        ("cancel", cmd_cancel, "target agency: withdraw the application"),
    ):
        p = tsub.add_parser(name, parents=[common, mutating], help=helptext)
        p.add_argument("transfer_id")
        if name == "contact":
            p.add_argument("--letter-number")
        if name == "temporary-account":
            p.add_argument("--account-number")
        if name == "info":
            p.add_argument("--info-file", required=True, help="TransferInfo as protobuf JSON")
        if name in ("reject", "cancel"):
            p.add_argument("--reason", required=True)
        p.set_defaults(func=func)
    pension = sub.add_parser("pension", help="where a pension is paid (66号 Art. 6)").add_subparsers(
        dest="action", required=True
    )
    p = pension.add_parser("paying-region", parents=[common, mutating], help="which region pays, and why")
    p.add_argument("--id-number", required=True)
    p.add_argument("--name", help="required with --start-collection")
    p.add_argument("--hukou-region", required=True, help="户籍所在地 (6 digits)")
    p.add_argument("--region", action="append", help="ask only this region (repeatable); default every region")
    p.add_argument(
        "--start-collection", action="store_true", help="open the collections to the paying region (as its agency)"
    )
    p.set_defaults(func=cmd_paying_region)
