"""``sigw filing|settlement|clearing ...``: non-local settlement (Art. 23)."""

from __future__ import annotations

import argparse
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from gateway._gen.sigw.v1 import (
    common_pb2,
    settlement_pb2,
)
from gateway.cli.connect import day, request_id_of, settlement_stub
from gateway.cli.render import enum_name, print_filing, print_settlement, print_split, print_statement, yuan
from gateway.domain.calendar import SHANGHAI

__all__ = [
    "FILING_TYPES",
    "add_commands",
    "cmd_clearing_close",
    "cmd_clearing_recount",
    "cmd_clearing_statement",
    "cmd_filing_cancel",
    "cmd_filing_create",
    "cmd_filing_list",
    "cmd_presettle",
    "cmd_reconcile",
    "cmd_settle",
    "cmd_settlement_cancel",
    "cmd_settlement_reverse",
    "cmd_settlement_show",
    "new_msgid",
]

FILING_TYPES = {
    n.removeprefix("FILING_TYPE_").lower().replace("_", "-"): v for n, v in settlement_pb2.FilingType.items() if v
}


def new_msgid(hospital: str) -> str:
    """A national-style msgid: institution code + yyyyMMddHHmmss (Asia/Shanghai) + 4-digit sequence."""
    return f"{hospital}{datetime.now(SHANGHAI):%Y%m%d%H%M%S}{secrets.randbelow(10_000):04d}"


def cmd_filing_create(args: argparse.Namespace) -> int:
    request = settlement_pb2.CreateFilingRequest(
        request_id=request_id_of(args),
        type=settlement_pb2.FilingType.ValueType(FILING_TYPES[args.type]),
        person=common_pb2.Person(id_number=args.id_number, name=args.name),
        insured_region=args.insured,
        treatment_region=args.treatment,
        valid_from=day(args.valid_from or f"{datetime.now(SHANGHAI):%Y-%m-%d}"),
    )
    if args.valid_until:
        request.valid_until.CopyFrom(day(args.valid_until))
    caller = args.as_ or f"agency:{args.insured}:healthcare"
    print_filing(settlement_stub(args, caller).CreateFiling(request, timeout=args.timeout).filing)
    return 0


def cmd_filing_cancel(args: argparse.Namespace) -> int:
    caller = args.as_ or f"agency:{args.insured}:healthcare"
    reply = settlement_stub(args, caller).CancelFiling(
        settlement_pb2.CancelFilingRequest(
            request_id=request_id_of(args), filing_id=args.filing_id, reason=args.reason
        ),
        timeout=args.timeout,
    )
    print_filing(reply.filing)
    return 0


def cmd_filing_list(args: argparse.Namespace) -> int:
    reply = settlement_stub(args, args.as_ or f"agency:{args.insured}:healthcare").ListFilings(
        settlement_pb2.ListFilingsRequest(insured_region=args.insured, id_number=args.id_number or ""),
        timeout=args.timeout,
    )
    for f in reply.filings:
        print_filing(f)
    return 0


def _bill(args: argparse.Namespace) -> settlement_pb2.Bill:
    bill = json_format.Parse(Path(args.bill).read_text(encoding="utf-8"), settlement_pb2.Bill())
    if args.msgid:
        bill.msgid = args.msgid
    elif not bill.msgid:
        bill.msgid = new_msgid(bill.hospital_code)
    return bill


def _hospital(args: argparse.Namespace, bill: settlement_pb2.Bill) -> str:
    return str(args.as_ or f"hospital:{bill.treatment_region}:{bill.hospital_code}")


def cmd_presettle(args: argparse.Namespace) -> int:
    bill = _bill(args)
    reply = settlement_stub(args, _hospital(args, bill)).PreSettle(
        settlement_pb2.PreSettleRequest(bill=bill), timeout=args.timeout
    )
    print("pre-settlement (nothing recorded)")
    print_split(reply.split)
    return 0


def cmd_settle(args: argparse.Namespace) -> int:
    bill = _bill(args)
    reply = settlement_stub(args, _hospital(args, bill)).Settle(
        settlement_pb2.SettleRequest(bill=bill), timeout=args.timeout
    )
    print_settlement(reply.settlement)
    return 0


def _hospital_of(args: argparse.Namespace) -> tuple[str, str]:
    caller = args.as_ or ""
    parts = caller.split(":")
    if len(parts) != 3 or parts[0] != "hospital":
        raise SystemExit("name the hospital with --as hospital:REGION:CODE")
    return caller, parts[2]


def cmd_settlement_cancel(args: argparse.Namespace) -> int:
    caller, code = _hospital_of(args)
    reply = settlement_stub(args, caller).CancelSettlement(
        settlement_pb2.CancelSettlementRequest(
            msgid=args.msgid or new_msgid(code), settlement_id=args.settlement_id, reason=args.reason or ""
        ),
        timeout=args.timeout,
    )
    print_settlement(reply.settlement)
    return 0


def cmd_settlement_reverse(args: argparse.Namespace) -> int:
    caller, code = _hospital_of(args)
    reply = settlement_stub(args, caller).ReverseMessage(
        settlement_pb2.ReverseMessageRequest(
            msgid=args.msgid or new_msgid(code),
            original_msgid=args.original_msgid,
            original_transaction=args.transaction or "",
        ),
        timeout=args.timeout,
    )
    print_settlement(reply.settlement)
    return 0


def cmd_settlement_show(args: argparse.Namespace) -> int:
    reply = settlement_stub(args, args.as_ or "operator:cli").GetSettlement(
        settlement_pb2.GetSettlementRequest(settlement_id=args.settlement_id),
        timeout=args.timeout,
    )
    print_settlement(reply.settlement)
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    caller, code = _hospital_of(args)
    request = json_format.Parse(Path(args.request).read_text(encoding="utf-8"), settlement_pb2.ReconcileRequest())
    request.hospital_code = request.hospital_code or code
    if args.month:  # the period: that whole month (a settlement counts in the month sigw received it)
        first = datetime.strptime(args.month, "%Y-%m").date()
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        request.start_date.CopyFrom(common_pb2.Date(year=first.year, month=first.month, day=first.day))
        request.end_date.CopyFrom(common_pb2.Date(year=last.year, month=last.month, day=last.day))
    reply = settlement_stub(args, caller).Reconcile(request, timeout=args.timeout)
    g = reply.gateway_totals
    print(
        f"{'matched' if reply.matched else 'NOT matched'}: gateway has {g.count} settlements, total "
        f"{yuan(g.total_fen)}, fund {yuan(g.fund_pay_fen)}, account {yuan(g.account_pay_fen)}, "
        f"cash {yuan(g.cash_pay_fen)}"
    )
    for d in reply.differences:
        kind = enum_name(settlement_pb2.DifferenceKind, d.kind, "DIFFERENCE_KIND_")
        print(f"  {d.settlement_id}  {kind}")
    return 0 if reply.matched else 3


def cmd_clearing_close(args: argparse.Namespace) -> int:
    reply = settlement_stub(args, args.as_ or "operator:cli").CloseMonth(
        settlement_pb2.CloseMonthRequest(request_id=request_id_of(args), month=args.month),
        timeout=args.timeout,
    )
    print_statement(reply.statement, args.csv)
    return 0


def cmd_clearing_statement(args: argparse.Namespace) -> int:
    reply = settlement_stub(args, args.as_ or "operator:cli").GetClearingStatement(
        settlement_pb2.GetClearingStatementRequest(month=args.month),
        timeout=args.timeout,
    )
    print_statement(reply.statement, args.csv)
    return 0


def cmd_clearing_recount(args: argparse.Namespace) -> int:
    reply = settlement_stub(args, args.as_ or "operator:cli").RecountMonth(
        settlement_pb2.RecountMonthRequest(month=args.month), timeout=args.timeout
    )
    print_statement(reply.statement, args.csv)
    print(f"  {reply.settlements_counted} settlements recounted")
    for p in reply.recounted_pairs:
        print(f"  recount of {p.insured_region} -> {p.treating_region}: {p.count} settlements, owed {yuan(p.owed_fen)}")
    return 0 if reply.statement.recount == settlement_pb2.RECOUNT_OUTCOME_MATCHES else 3


def add_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
    filing = sub.add_parser("filing", help="non-local care filings (备案) of an insured region").add_subparsers(
        dest="action", required=True
    )
    create = filing.add_parser("create", parents=[common, mutating], help="file a person for non-local care")
    create.add_argument("--type", required=True, choices=sorted(FILING_TYPES))
    create.add_argument("--id-number", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--insured", required=True, help="insured region (参保地)")
    create.add_argument("--treatment", required=True, help="place of treatment (就医地): a city or province code")
    create.add_argument("--valid-from", help="YYYY-MM-DD (default today)")
    create.add_argument("--valid-until", help="YYYY-MM-DD; required for temporary filings")
    create.set_defaults(func=cmd_filing_create)
    cancel = filing.add_parser("cancel", parents=[common, mutating], help="cancel a filing")
    cancel.add_argument("filing_id")
    cancel.add_argument("--insured", required=True, help="the insured region whose agency cancels")
    cancel.add_argument("--reason", required=True)
    cancel.set_defaults(func=cmd_filing_cancel)
    listing = filing.add_parser("list", parents=[common], help="an insured region's filings")
    listing.add_argument("--insured", required=True)
    listing.add_argument("--id-number")
    listing.set_defaults(func=cmd_filing_list)

    settlement = sub.add_parser("settlement", help="settle non-local bills as a hospital (Art. 23)").add_subparsers(
        dest="action", required=True
    )
    for name, func, text in (
        ("pre", cmd_presettle, "compute the split, record nothing"),
        ("settle", cmd_settle, "settle a bill"),
    ):
        p = settlement.add_parser(name, parents=[common], help=text)
        p.add_argument("--bill", required=True, help="the Bill as protobuf JSON (see examples/)")
        p.add_argument("--msgid", help="default: the bill's, else a new one from the hospital code and the time")
        p.set_defaults(func=func)
    p = settlement.add_parser("cancel", parents=[common], help="cancel (refund) a settlement")
    p.add_argument("settlement_id")
    p.add_argument("--msgid")
    p.add_argument("--reason")
    p.set_defaults(func=cmd_settlement_cancel)
    p = settlement.add_parser("reverse", parents=[common], help="reverse a settlement message by its msgid")
    p.add_argument("--original-msgid", required=True)
    p.add_argument("--transaction", help="the original transaction code, e.g. 2304")
    p.add_argument("--msgid")
    p.set_defaults(func=cmd_settlement_reverse)
    p = settlement.add_parser("show", parents=[common], help="one settlement")
    p.add_argument("settlement_id")
    p.set_defaults(func=cmd_settlement_show)
    p = settlement.add_parser("reconcile", parents=[common], help="compare the hospital's totals (对账)")
    p.add_argument("--request", required=True, help="a ReconcileRequest as protobuf JSON")
    p.add_argument("--month", help="YYYY-MM: reconcile that whole month instead of the file's period")
    p.set_defaults(func=cmd_reconcile)

    clearing_cmd = sub.add_parser("clearing", help="monthly clearing between regions (清算)").add_subparsers(
        dest="action", required=True
    )
    p = clearing_cmd.add_parser("close", parents=[common, mutating], help="close a month and print its statement")
    p.add_argument("month", help="YYYY-MM")
    p.add_argument("--csv", action="store_true")
    p.set_defaults(func=cmd_clearing_close)
    p = clearing_cmd.add_parser("statement", parents=[common], help="a month's statement")
    p.add_argument("month", help="YYYY-MM")
    p.add_argument("--csv", action="store_true")
    p.set_defaults(func=cmd_clearing_statement)
    p = clearing_cmd.add_parser(
        "recount", parents=[common], help="add a month's settlements up again and compare with its statement"
    )
    p.add_argument("month", help="YYYY-MM")
    p.add_argument("--csv", action="store_true", help="the statement as CSV")
    p.set_defaults(func=cmd_clearing_recount)
