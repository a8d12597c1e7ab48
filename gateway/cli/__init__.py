"""The ``sigw`` command: run the gateway, and drive transfers from a terminal.

Calls name their caller with ``--as`` (development identity mode): ``transfer create`` defaults to the
target region's agency for the kind's line, everything else to ``operator:cli``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway._gen.sigw.v1 import (
    common_pb2,
    operator_pb2,
    operator_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
    transfer_pb2,
    transfer_pb2_grpc,
)
from gateway.api.identity import METADATA_KEY
from gateway.config import Settings, load_registry
from gateway.domain import idnumber
from gateway.domain.calendar import SHANGHAI
from gateway.domain.participants import AgencyType
from gateway.domain.settlement import clearing
from gateway.domain.transfer.kinds import MILITARY_KINDS, agency_type_of
from gateway.domain.transfer.model import Kind, State
from gateway.security.tls import TlsFolder

KINDS = {k.name.lower().replace("_", "-"): k for k in Kind}
STATES = {s.name.lower().replace("_", "-"): int(s) for s in State}
DIRECTIONS = {"institution-to-enterprise": 1, "enterprise-to-institution": 2}
COLLECTION_SOURCES = {"relationship": 1, "temporary-account": 2}


class ScrubbingFilter(logging.Filter):
    """No ID number leaves through the logs unmasked."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = idnumber.scrub(record.getMessage())
        record.args = ()
        return True


def setup_logging() -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ScrubbingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


# ---------------------------------------------------------------------------------------------- serve


async def _serve(settings: Settings) -> None:
    from gateway.server import clock_from, start_gateway

    registry = load_registry(settings.regions_file)
    gateway = await start_gateway(settings, registry, clock=clock_from(settings.clock_start))
    logging.getLogger("sigw").info(
        "sigw serving gRPC on %s and HTTP on %s (%d regions%s)",
        settings.grpc_listen,
        settings.http_listen,
        len(registry.regions),
        ", simulated agencies" if settings.demo else "",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.getLogger("sigw").info("shutting down: NOT_SERVING, finishing in-flight calls")
    await gateway.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    overrides: dict[str, Any] = {
        "grpc_listen": args.grpc_listen,
        "http_listen": args.http_listen,
        "redis_url": args.redis_url,
        "data_dir": args.data_dir,
        "regions_file": args.regions_file,
        "calendar_file": args.calendar_file,
        "appendfsync": args.appendfsync,
    }
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    if args.dev_identity:
        settings = replace(settings, dev_identity=True)
    if args.insecure:
        settings = replace(settings, insecure=True)
    if args.tls_dir:
        settings = replace(settings, tls_dir=args.tls_dir)
    if args.demo:
        settings = replace(settings, demo=True)
    setup_logging()
    asyncio.run(_serve(settings))
    return 0


def pad(text: str, width: int) -> str:
    """Left-justify by display width: CJK characters take two columns."""
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - shown, 1)


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
    agencies = [f"agency:{a.region}:{a.agency_type.slug}" for a in registry.agencies()]
    issued = pki.init_pki(
        args.tls_dir, [*agencies, *DEMO_PARTICIPANTS, *(args.participant or [])], valid_days=args.valid_days
    )
    print(f"development PKI in {args.tls_dir}: CA, gateway and {len(issued)} participants")
    return 0


def cmd_pki_issue(args: argparse.Namespace) -> int:
    """Issue (or rotate) one participant's certificate with the existing CA."""
    from gateway.security import pki

    folder: Path = args.tls_dir
    cert, key = pki.issue(
        (folder / "ca.pem").read_bytes(),
        (folder / "ca.key").read_bytes(),
        args.participant,
        valid_days=args.valid_days,
        server=args.participant.startswith("agency:"),
    )
    stem = pki.file_stem(args.participant)
    (folder / f"{stem}.key").write_bytes(key)
    (folder / f"{stem}.key").chmod(0o600)
    (folder / f"{stem}.pem").write_bytes(cert)
    print(f"issued {folder / stem}.pem for {args.participant}, valid {args.valid_days} days")
    return 0


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


def cmd_regions(args: argparse.Namespace) -> int:
    registry = load_registry(args.regions_file)
    print(f"{pad('region', 8)}{pad('name', 22)}{pad('HRSS agency', 24)}healthcare-security agency")
    for region in registry.regions.values():
        hrss = region.endpoints.get(AgencyType.HRSS, "-")
        care = region.endpoints.get(AgencyType.HEALTHCARE_SECURITY, "-")
        print(f"{pad(region.code, 8)}{pad(region.name, 22)}{pad(hrss, 24)}{care}")
    return 0


# ------------------------------------------------------------------------------------------- transfer


def channel(args: argparse.Namespace, participant: str) -> grpc.Channel:
    """Mutual TLS with the participant's certificate when the PKI folder has one; else plain text (a gateway
    serving ``--insecure --dev-identity``, which reads the caller from the metadata)."""
    tls = TlsFolder(args.tls_dir)
    if not tls.exists():
        return grpc.intercept_channel(grpc.insecure_channel(args.target), _NameCaller(participant))
    if not participant or not tls.has(participant):
        raise SystemExit(
            f"no certificate for {participant or 'the caller'} in {args.tls_dir}: issue one with "
            f"`sigw pki issue {participant or 'PARTICIPANT'}`, or name another with --as"
        )
    return grpc.secure_channel(args.target, tls.channel_credentials(participant))


def _stub(args: argparse.Namespace, participant: str) -> transfer_pb2_grpc.TransferServiceStub:
    return transfer_pb2_grpc.TransferServiceStub(channel(args, participant))


class _NameCaller(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Names the caller in the x-sigw-participant metadata (read only by a development gateway)."""

    def __init__(self, participant: str) -> None:
        self.metadata = ((METADATA_KEY, participant),)

    def _named(self, details: Any) -> Any:
        return details._replace(metadata=(*(details.metadata or ()), *self.metadata))

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._named(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._named(details), request)


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower().replace("_", "-")


def _date(d: common_pb2.Date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _time(ts: Any) -> str:
    """A timestamp in Asia/Shanghai, the time the agencies work in."""
    if not ts.seconds:
        return "-"
    return f"{ts.ToDatetime(tzinfo=UTC).astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}"


def print_transfer(t: transfer_pb2.Transfer) -> None:
    kind = _enum_name(transfer_pb2.TransferKind, t.kind, "TRANSFER_KIND_")
    state = _enum_name(transfer_pb2.TransferState, t.state, "TRANSFER_STATE_")
    holder = (
        f"{t.holder.region_code}:{'hrss' if t.holder.agency_type == 1 else 'healthcare'}"
        if t.HasField("holder")
        else "-"
    )
    print(f"transfer  {t.transfer_id}   {kind}   {t.source_region} -> {t.target_region}")
    print(f"person    {t.person.id_number_masked} {t.person.name_masked}")
    print(f"state     {state}{'   OVERDUE' if t.overdue else ''}   holder: {holder}")
    if t.close_reason:
        print(f"reason    {t.close_reason}")
    if t.relationship_region:
        stays = "stays at" if t.temporary_account else "is at"
        temporary = f"; temporary account at {t.target_region} (66号 Art. 5)" if t.temporary_account else ""
        print(f"pension   relationship {stays} {t.relationship_region}{temporary}")
    if t.HasField("continuity"):
        print(f"medical   {t.continuity.note}")
    if t.HasField("info"):
        info = t.info
        interest = sum(c.interest_fen for c in info.contributions)
        with_interest = f" incl. interest {_yuan(interest)}" if interest else ""
        print(
            f"funds     {_yuan(info.funds_fen)} yuan (account {_yuan(info.individual_account_fen)}{with_interest}, "
            f"pooled {_yuan(info.pooled_fund_fen)}), table {info.table_number or '-'}"
        )
    if t.steps:
        print("steps")
        for i, s in enumerate(t.steps):
            name = _enum_name(transfer_pb2.StepName, s.name, "STEP_NAME_")
            flags = (" provisional" if s.provisional else "") + (" OVERDUE" if s.overdue else "")
            ended = t.state in (transfer_pb2.TRANSFER_STATE_REJECTED, transfer_pb2.TRANSFER_STATE_CANCELLED)
            verb = "closed" if ended and i == len(t.steps) - 1 else "done"
            done = f"{verb} {_time(s.complete_time)}" if s.HasField("complete_time") else "open"
            days = f"{s.working_days:>2} working day{'s' if s.working_days != 1 else ' '}"
            print(f"  {name:<17} {s.holder.region_code}  {days}, due {_date(s.due_date)}  {done}{flags}")
    if t.timeline:
        print("timeline")
        for e in t.timeline:
            to = _enum_name(transfer_pb2.TransferState, e.to_state, "TRANSFER_STATE_")
            print(f"  {_time(e.time)}  {e.actor:<26} -> {to:<13} {e.note}")


def _request_id(args: argparse.Namespace) -> str:
    return args.request_id or uuid.uuid4().hex


def cmd_create(args: argparse.Namespace) -> int:
    kind = KINDS[args.kind]
    military = kind in MILITARY_KINDS
    caller = args.as_ or ("military:DEMO" if military else f"agency:{args.to_region}:{agency_type_of(kind).slug}")
    request = transfer_pb2.CreateTransferRequest(
        request_id=_request_id(args),
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
    if military:
        if not (args.service_start and args.service_end and args.voucher):
            raise SystemExit("a military transfer needs --service-start, --service-end and --voucher")
        request.military.CopyFrom(
            transfer_pb2.MilitaryService(
                service_start=_day(args.service_start),
                service_end=_day(args.service_end),
                subsidy_fen=args.subsidy_fen,
                account_fen=args.account_fen,
                voucher_numbers=args.voucher,
                spouse=args.spouse,
            )
        )
    reply = _stub(args, caller).CreateTransfer(request, timeout=args.timeout)
    print_transfer(reply.transfer)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    reply = _stub(args, args.as_ or "operator:cli").GetTransfer(
        transfer_pb2.GetTransferRequest(transfer_id=args.transfer_id),
        timeout=args.timeout,
    )
    print_transfer(reply.transfer)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    reply = _stub(args, args.as_ or "portal:cli").QueryTransferStatus(
        transfer_pb2.QueryTransferStatusRequest(transfer_id=args.transfer_id, id_number=args.id_number),
        timeout=args.timeout,
    )
    print_transfer(reply.transfer)
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
    reply = _stub(args, args.as_ or "operator:cli").ListTransfers(request, timeout=args.timeout)
    print(f"{'transfer':<24}{'kind':<34}{'from':<8}{'to':<8}{'state':<19}overdue")
    for t in reply.transfers:
        print(
            f"{t.transfer_id:<24}{_enum_name(transfer_pb2.TransferKind, t.kind, 'TRANSFER_KIND_'):<34}"
            f"{t.source_region:<8}{t.target_region:<8}"
            f"{_enum_name(transfer_pb2.TransferState, t.state, 'TRANSFER_STATE_'):<19}{'yes' if t.overdue else ''}"
        )
    if reply.next_page_token:
        print(f"next page: --page-token {reply.next_page_token}")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    stream = _stub(args, args.as_ or "operator:cli").WatchTransfer(
        transfer_pb2.WatchTransferRequest(transfer_id=args.transfer_id),
        timeout=args.watch_timeout,
    )
    for item in stream:
        e = item.event
        to = _enum_name(transfer_pb2.TransferState, e.to_state, "TRANSFER_STATE_")
        print(f"{_time(e.time)}  {e.actor:<26} -> {to:<13} {e.note}", flush=True)
    return 0


def _act(args: argparse.Namespace, method: str, request: Any) -> int:
    if not args.as_:
        raise SystemExit("name the acting agency with --as, e.g. --as agency:310000:hrss")
    reply = getattr(_stub(args, args.as_ or ""), method)(request, timeout=args.timeout)
    print_transfer(reply.transfer)
    return 0


def cmd_contact(args: argparse.Namespace) -> int:
    return _act(
        args,
        "SendContactLetter",
        transfer_pb2.SendContactLetterRequest(
            request_id=_request_id(args), transfer_id=args.transfer_id, letter_number=args.letter_number or ""
        ),
    )


def cmd_info(args: argparse.Namespace) -> int:
    info = json_format.Parse(Path(args.info_file).read_text(encoding="utf-8"), transfer_pb2.TransferInfo())
    return _act(
        args,
        "SendTransferInfo",
        transfer_pb2.SendTransferInfoRequest(request_id=_request_id(args), transfer_id=args.transfer_id, info=info),
    )


def cmd_temporary_account(args: argparse.Namespace) -> int:
    return _act(
        args,
        "OpenTemporaryAccount",
        transfer_pb2.OpenTemporaryAccountRequest(
            request_id=_request_id(args), transfer_id=args.transfer_id, account_number=args.account_number or ""
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
        request_id=_request_id(args) if args.start_collection else (args.request_id or ""),
        person=common_pb2.Person(id_number=args.id_number, name=args.name or ""),
        hukou_region=args.hukou_region,
        region_codes=args.region or [],
        start_collection=args.start_collection,
    )
    reply = _stub(args, args.as_ or "operator:cli").DeterminePayingRegion(request, timeout=args.timeout)
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
        what = _enum_name(transfer_pb2.CollectionSource, sender.source, "COLLECTION_SOURCE_")
        print(f"must send      {sender.region_code} -> {reply.paying_region}  ({what})")
    for c in reply.collections:
        print(f"collection     {c.transfer_id}  {c.source_region} -> {c.target_region}")
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    return _act(
        args,
        "CompleteTransfer",
        transfer_pb2.CompleteTransferRequest(request_id=_request_id(args), transfer_id=args.transfer_id),
    )


def cmd_reject(args: argparse.Namespace) -> int:
    return _act(
        args,
        "RejectTransfer",
        transfer_pb2.RejectTransferRequest(
            request_id=_request_id(args), transfer_id=args.transfer_id, reason=args.reason
        ),
    )


def cmd_cancel(args: argparse.Namespace) -> int:
    return _act(
        args,
        "CancelTransfer",
        transfer_pb2.CancelTransferRequest(
            request_id=_request_id(args), transfer_id=args.transfer_id, reason=args.reason
        ),
    )


def describe_rpc_error(error: grpc.RpcError) -> str:
    """A readable account of a gRPC error with its ErrorInfo and field violations."""
    lines = [f"error: {error.code().name}: {error.details()}"]
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            meta = json.dumps(dict(info.metadata), ensure_ascii=False) if info.metadata else ""
            lines.append(f"  reason: {info.reason} {meta}".rstrip())
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            lines += [f"  {v.field}: {v.description}" for v in bad.field_violations]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- settlement

FILING_TYPES = {
    n.removeprefix("FILING_TYPE_").lower().replace("_", "-"): v for n, v in settlement_pb2.FilingType.items() if v
}


def _settlements(args: argparse.Namespace, participant: str) -> settlement_pb2_grpc.SettlementServiceStub:
    return settlement_pb2_grpc.SettlementServiceStub(channel(args, participant))


def _day(text: str) -> common_pb2.Date:
    d = date.fromisoformat(text)
    return common_pb2.Date(year=d.year, month=d.month, day=d.day)


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def new_msgid(hospital: str) -> str:
    """A national-style msgid: institution code + yyyyMMddHHmmss (Asia/Shanghai) + 4-digit sequence."""
    return f"{hospital}{datetime.now(SHANGHAI):%Y%m%d%H%M%S}{secrets.randbelow(10_000):04d}"


def print_filing(f: settlement_pb2.Filing) -> None:
    kind = _enum_name(settlement_pb2.FilingType, f.type, "FILING_TYPE_")
    until = _date(f.valid_until) if f.HasField("valid_until") else "until cancelled"
    state = _enum_name(settlement_pb2.FilingState, f.state, "FILING_STATE_")
    print(
        f"{f.filing_id}  {kind:<26} {f.id_number_masked}  {f.insured_region} -> {f.treatment_region}  "
        f"{_date(f.valid_from)} .. {until}  {state}"
    )


def print_split(s: settlement_pb2.SettlementSplit) -> None:
    print(
        f"total      {_yuan(s.total_fen):>12}  = fund {_yuan(s.fund_pay_fen)} + account {_yuan(s.account_pay_fen)}"
        f" + cash {_yuan(s.cash_pay_fen)}"
    )
    print(
        f"breakdown  class C {_yuan(s.class_c_fen)}, class B self-paid {_yuan(s.class_b_self_fen)}, in scope "
        f"{_yuan(s.in_scope_fen)}, deductible {_yuan(s.deductible_fen)}, over cap {_yuan(s.over_cap_fen)}, "
        f"ratio {s.ratio_percent}%"
    )
    print(f"policy     {s.note}")


def print_settlement(s: settlement_pb2.Settlement) -> None:
    state = _enum_name(settlement_pb2.SettlementState, s.state, "SETTLEMENT_STATE_")
    print(f"settlement {s.settlement_id}  {state}  msgid {s.msgid}  month {s.clearing_month}")
    print(
        f"hospital   {s.hospital_code} ({s.treatment_region})  insured region {s.insured_region}  "
        f"person {s.id_number_masked}  visit {s.visit_id}"
    )
    print_split(s.split)
    if s.cancel_msgid:
        print(f"cancelled  by {s.cancel_msgid} at {_time(s.cancel_time)}")


def cmd_filing_create(args: argparse.Namespace) -> int:
    request = settlement_pb2.CreateFilingRequest(
        request_id=_request_id(args),
        type=settlement_pb2.FilingType.ValueType(FILING_TYPES[args.type]),
        person=common_pb2.Person(id_number=args.id_number, name=args.name),
        insured_region=args.insured,
        treatment_region=args.treatment,
        valid_from=_day(args.valid_from or f"{datetime.now(SHANGHAI):%Y-%m-%d}"),
    )
    if args.valid_until:
        request.valid_until.CopyFrom(_day(args.valid_until))
    caller = args.as_ or f"agency:{args.insured}:healthcare"
    print_filing(_settlements(args, caller).CreateFiling(request, timeout=args.timeout).filing)
    return 0


def cmd_filing_cancel(args: argparse.Namespace) -> int:
    caller = args.as_ or f"agency:{args.insured}:healthcare"
    reply = _settlements(args, caller).CancelFiling(
        settlement_pb2.CancelFilingRequest(request_id=_request_id(args), filing_id=args.filing_id, reason=args.reason),
        timeout=args.timeout,
    )
    print_filing(reply.filing)
    return 0


def cmd_filing_list(args: argparse.Namespace) -> int:
    reply = _settlements(args, args.as_ or f"agency:{args.insured}:healthcare").ListFilings(
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
    reply = _settlements(args, _hospital(args, bill)).PreSettle(
        settlement_pb2.PreSettleRequest(bill=bill), timeout=args.timeout
    )
    print("pre-settlement (nothing recorded)")
    print_split(reply.split)
    return 0


def cmd_settle(args: argparse.Namespace) -> int:
    bill = _bill(args)
    reply = _settlements(args, _hospital(args, bill)).Settle(
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
    reply = _settlements(args, caller).CancelSettlement(
        settlement_pb2.CancelSettlementRequest(
            msgid=args.msgid or new_msgid(code), settlement_id=args.settlement_id, reason=args.reason or ""
        ),
        timeout=args.timeout,
    )
    print_settlement(reply.settlement)
    return 0


def cmd_settlement_reverse(args: argparse.Namespace) -> int:
    caller, code = _hospital_of(args)
    reply = _settlements(args, caller).ReverseMessage(
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
    reply = _settlements(args, args.as_ or "operator:cli").GetSettlement(
        settlement_pb2.GetSettlementRequest(settlement_id=args.settlement_id),
        timeout=args.timeout,
    )
    print_settlement(reply.settlement)
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    caller, code = _hospital_of(args)
    request = json_format.Parse(Path(args.request).read_text(encoding="utf-8"), settlement_pb2.ReconcileRequest())
    request.hospital_code = request.hospital_code or code
    reply = _settlements(args, caller).Reconcile(request, timeout=args.timeout)
    g = reply.gateway_totals
    print(
        f"{'matched' if reply.matched else 'NOT matched'}: gateway has {g.count} settlements, total "
        f"{_yuan(g.total_fen)}, fund {_yuan(g.fund_pay_fen)}, account {_yuan(g.account_pay_fen)}, "
        f"cash {_yuan(g.cash_pay_fen)}"
    )
    for d in reply.differences:
        kind = _enum_name(settlement_pb2.DifferenceKind, d.kind, "DIFFERENCE_KIND_")
        print(f"  {d.settlement_id}  {kind}")
    return 0 if reply.matched else 3


def _print_statement(statement: settlement_pb2.ClearingStatement, as_csv: bool) -> None:
    pairs = {
        (p.insured_region, p.treating_region): clearing.PairTotals(
            p.insured_region, p.treating_region, p.count, p.total_fen, p.fund_pay_fen, p.account_pay_fen, p.cash_pay_fen
        )
        for p in statement.pairs
    }
    if as_csv:
        print(clearing.statement(statement.month, pairs).csv(), end="")
        return
    print(
        f"clearing {statement.month}  {'closed' if statement.closed else 'OPEN (running totals)'}  "
        f"recount {'matches' if statement.recount_matches else 'DIFFERS'}"
    )
    print(f"  {'insured':<8}{'treating':<9}{'count':>6}{'total':>16}{'fund':>16}{'account':>14}{'owed':>16}")
    for p in statement.pairs:
        print(
            f"  {p.insured_region:<8}{p.treating_region:<9}{p.count:>6}{_yuan(p.total_fen):>16}"
            f"{_yuan(p.fund_pay_fen):>16}{_yuan(p.account_pay_fen):>14}{_yuan(p.owed_fen):>16}"
        )
    print("  net positions (+ receivable, - payable)")
    for r in statement.positions:
        print(f"  {r.region:<8}{_yuan(r.net_fen):>16}")


def cmd_clearing_close(args: argparse.Namespace) -> int:
    reply = _settlements(args, args.as_ or "operator:cli").CloseMonth(
        settlement_pb2.CloseMonthRequest(request_id=_request_id(args), month=args.month),
        timeout=args.timeout,
    )
    _print_statement(reply.statement, args.csv)
    return 0


def cmd_clearing_statement(args: argparse.Namespace) -> int:
    reply = _settlements(args, args.as_ or "operator:cli").GetClearingStatement(
        settlement_pb2.GetClearingStatementRequest(month=args.month),
        timeout=args.timeout,
    )
    _print_statement(reply.statement, args.csv)
    return 0


def _operator(args: argparse.Namespace, participant: str) -> operator_pb2_grpc.OperatorServiceStub:
    return operator_pb2_grpc.OperatorServiceStub(channel(args, participant))


def _print_queued(m: operator_pb2.QueuedMessage) -> None:
    agency = f"{m.recipient.region_code}:{'hrss' if m.recipient.agency_type == 1 else 'healthcare'}"
    print(
        f"{m.entry_id:<22} {m.lane:<9} {agency:<18} {m.notice:<20} {m.transfer_id:<22} queued {_time(m.enqueue_time)}"
    )
    if m.reason:
        print(f"  dead {_time(m.dead_time)}: {m.reason}")
        for attempt in m.attempts:
            print(f"    attempt {attempt}")


def cmd_queue_list(args: argparse.Namespace) -> int:
    request = operator_pb2.ListQueuedRequest(lane=args.lane or "", limit=args.limit)
    if args.agency:
        region, slug = args.agency.split(":")
        request.agency.CopyFrom(
            common_pb2.AgencyRef(
                region_code=region, agency_type=common_pb2.AgencyType.ValueType(int(AgencyType.from_slug(slug)))
            )
        )
    reply = _operator(args, args.as_ or "operator:cli").ListQueued(request, timeout=args.timeout)
    print("depth: " + ", ".join(f"{lane} {depth}" for lane, depth in sorted(reply.depth_by_lane.items())))
    for m in reply.messages:
        _print_queued(m)
    return 0


def cmd_dlq_list(args: argparse.Namespace) -> int:
    reply = _operator(args, args.as_ or "operator:cli").ListDeadLetters(
        operator_pb2.ListDeadLettersRequest(limit=args.limit),
        timeout=args.timeout,
    )
    for m in reply.messages:
        _print_queued(m)
    print(f"{len(reply.messages)} dead letters")
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    if bool(args.entry_ids) == args.all:
        raise SystemExit("name entry ids, or --all")
    reply = _operator(args, args.as_ or "operator:cli").RedriveDeadLetters(
        operator_pb2.RedriveDeadLettersRequest(request_id=_request_id(args), entry_ids=args.entry_ids, all=args.all),
        timeout=args.timeout,
    )
    print(f"re-drove {reply.redriven} dead letters (on the record as {args.as_ or 'operator:cli'})")
    return 0


def add_operator_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
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


def add_settlement_commands(sub: Any, common: argparse.ArgumentParser, mutating: argparse.ArgumentParser) -> None:
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


# ------------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigw", description="Cross-region social-insurance gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--grpc-listen", help="gRPC address (default 127.0.0.1:50051, env SIGW_GRPC_LISTEN)")
    serve.add_argument("--http-listen", help="/metrics and /healthz address (default 127.0.0.1:8080)")
    serve.add_argument("--redis-url", help="use this Redis (env SIGW_REDIS_URL); default: embedded Redis")
    serve.add_argument("--data-dir", type=Path, help="embedded Redis data folder (default var/data)")
    serve.add_argument("--regions-file", type=Path, help="region registry (default config/regions.toml)")
    serve.add_argument("--calendar-file", type=Path, help="operator holiday file (default config/calendar.toml)")
    serve.add_argument("--appendfsync", choices=["always", "everysec", "no"], help="embedded Redis fsync policy")
    serve.add_argument(
        "--dev-identity", action="store_true", help="DEVELOPMENT ONLY: take the caller from x-sigw-participant metadata"
    )
    serve.add_argument("--demo", action="store_true", help="also run simulated agencies for the registry")
    serve.add_argument("--tls-dir", type=Path, help="PKI folder of `sigw pki init` (default var/pki)")
    serve.add_argument("--insecure", action="store_true", help="DEVELOPMENT ONLY: plain text on loopback, no mTLS")
    serve.set_defaults(func=cmd_serve)

    pki_cmd = sub.add_parser("pki", help="development PKI for mutual TLS").add_subparsers(dest="action", required=True)
    p = pki_cmd.add_parser("init", help="CA, gateway and participant certificates (keeps an existing CA)")
    p.add_argument("--tls-dir", type=Path, default=Path(os.environ.get("SIGW_TLS_DIR", "var/pki")))
    p.add_argument("--regions-file", type=Path, default=Path("config/regions.toml"))
    p.add_argument("--participant", action="append", help="also issue for this participant (repeatable)")
    p.add_argument("--valid-days", type=int, default=365)
    p.set_defaults(func=cmd_pki_init)
    p = pki_cmd.add_parser("issue", help="issue or rotate one participant's certificate")
    p.add_argument("participant", help="e.g. hospital:440300:H44030000009")
    p.add_argument("--tls-dir", type=Path, default=Path(os.environ.get("SIGW_TLS_DIR", "var/pki")))
    p.add_argument("--valid-days", type=int, default=365)
    p.set_defaults(func=cmd_pki_issue)

    audit = sub.add_parser("audit", help="the hash-chained audit trail").add_subparsers(dest="action", required=True)
    p = audit.add_parser("verify", help="detect altered, removed or re-ordered entries, and say where")
    p.add_argument("--redis-url", default=os.environ.get("SIGW_REDIS_URL"), help="default: the embedded Redis")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("SIGW_DATA_DIR", "var/data")))
    p.set_defaults(func=cmd_audit_verify)

    regions = sub.add_parser("regions", help="list the configured regions and their agencies")
    regions.add_argument("--regions-file", type=Path, default=Path("config/regions.toml"))
    regions.set_defaults(func=cmd_regions)

    transfer = sub.add_parser("transfer", help="create, read and act on transfers")
    tsub = transfer.add_subparsers(dest="action", required=True)
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
    add_settlement_commands(sub, common, mutating)
    add_operator_commands(sub, common, mutating)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except grpc.RpcError as error:
        print(describe_rpc_error(error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
