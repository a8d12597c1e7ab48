"""How the CLI prints answers: transfers, filings, settlements, statements, queues and errors."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway._gen.sigw.v1 import (
    common_pb2,
    operator_pb2,
    settlement_pb2,
    transfer_pb2,
)
from gateway.domain.calendar import SHANGHAI
from gateway.domain.settlement import clearing

__all__ = [
    "date_text",
    "describe_rpc_error",
    "enum_name",
    "pad",
    "print_filing",
    "print_queued",
    "print_settlement",
    "print_split",
    "print_statement",
    "print_transfer",
    "time_text",
    "yuan",
]


def pad(text: str, width: int) -> str:
    """Left-justify by display width: CJK characters take two columns."""
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - shown, 1)


def enum_name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower().replace("_", "-")


def date_text(d: common_pb2.Date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def time_text(ts: Any) -> str:
    """A timestamp (a UTC instant on the wire) in Asia/Shanghai, the time the agencies work in, with its offset:
    ``2026-03-02 09:00:00+08:00``."""
    if not ts.seconds:
        return "-"
    moment: datetime = ts.ToDatetime(tzinfo=UTC)
    return moment.astimezone(SHANGHAI).isoformat(sep=" ", timespec="seconds")


def yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def print_transfer(t: transfer_pb2.Transfer) -> None:
    kind = enum_name(transfer_pb2.TransferKind, t.kind, "TRANSFER_KIND_")
    state = enum_name(transfer_pb2.TransferState, t.state, "TRANSFER_STATE_")
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
    if t.HasField("contact"):
        c = t.contact
        employer = f"; employer {c.employer_name} {c.employer_mobile_masked}".rstrip() if c.employer_name else ""
        print(f"told      {c.mobile_masked or '-'}{employer} (portal {c.portal or 'default'})")
    if t.relationship_region:
        stays = "stays at" if t.temporary_account else "is at"
        temporary = f"; temporary account at {t.target_region} (66号 Art. 5)" if t.temporary_account else ""
        print(f"pension   relationship {stays} {t.relationship_region}{temporary}")
    if t.HasField("continuity"):
        print(f"medical   {t.continuity.note}")
    if t.HasField("info"):
        info = t.info
        interest = sum(c.interest_fen for c in info.contributions)
        with_interest = f" incl. interest {yuan(interest)}" if interest else ""
        print(
            f"funds     {yuan(info.funds_fen)} yuan (account {yuan(info.individual_account_fen)}{with_interest}, "
            f"pooled {yuan(info.pooled_fund_fen)}), table {info.table_number or '-'}"
        )
    if t.steps:
        print("steps")
        for i, s in enumerate(t.steps):
            name = enum_name(transfer_pb2.StepName, s.name, "STEP_NAME_")
            flags = (" provisional" if s.provisional else "") + (" OVERDUE" if s.overdue else "")
            ended = t.state in (transfer_pb2.TRANSFER_STATE_REJECTED, transfer_pb2.TRANSFER_STATE_CANCELLED)
            verb = "closed" if ended and i == len(t.steps) - 1 else "done"
            done = f"{verb} {time_text(s.complete_time)}" if s.HasField("complete_time") else "open"
            days = f"{s.working_days:>2} working day{'s' if s.working_days != 1 else ' '}"
            print(f"  {name:<17} {s.holder.region_code}  {days}, due {date_text(s.due_date)}  {done}{flags}")
    if t.timeline:
        print("timeline")
        for e in t.timeline:
            to = enum_name(transfer_pb2.TransferState, e.to_state, "TRANSFER_STATE_")
            print(f"  {time_text(e.time)}  {e.actor:<26} -> {to:<13} {e.note}")


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


def print_filing(f: settlement_pb2.Filing) -> None:
    kind = enum_name(settlement_pb2.FilingType, f.type, "FILING_TYPE_")
    until = date_text(f.valid_until) if f.HasField("valid_until") else "until cancelled"
    state = enum_name(settlement_pb2.FilingState, f.state, "FILING_STATE_")
    print(
        f"{f.filing_id}  {kind:<26} {f.id_number_masked}  {f.insured_region} -> {f.treatment_region}  "
        f"{date_text(f.valid_from)} .. {until}  {state}"
    )


def print_split(s: settlement_pb2.SettlementSplit) -> None:
    print(
        f"total      {yuan(s.total_fen):>12}  = fund {yuan(s.fund_pay_fen)} + account {yuan(s.account_pay_fen)}"
        f" + cash {yuan(s.cash_pay_fen)}"
    )
    print(
        f"breakdown  class C {yuan(s.class_c_fen)}, class B self-paid {yuan(s.class_b_self_fen)}, in scope "
        f"{yuan(s.in_scope_fen)}, deductible {yuan(s.deductible_fen)}, over cap {yuan(s.over_cap_fen)}, "
        f"ratio {s.ratio_percent}%"
    )
    print(f"policy     {s.note}")


def print_settlement(s: settlement_pb2.Settlement) -> None:
    state = enum_name(settlement_pb2.SettlementState, s.state, "SETTLEMENT_STATE_")
    print(f"settlement {s.settlement_id}  {state}  msgid {s.msgid}  month {s.clearing_month}")
    print(
        f"hospital   {s.hospital_code} ({s.treatment_region})  insured region {s.insured_region}  "
        f"person {s.id_number_masked}  visit {s.visit_id}"
    )
    print_split(s.split)
    if s.cancel_msgid:
        print(f"cancelled  by {s.cancel_msgid} at {time_text(s.cancel_time)}")


def print_statement(statement: settlement_pb2.ClearingStatement, as_csv: bool) -> None:
    pairs = {
        (p.insured_region, p.treating_region): clearing.PairTotals(
            p.insured_region, p.treating_region, p.count, p.total_fen, p.fund_pay_fen, p.account_pay_fen, p.cash_pay_fen
        )
        for p in statement.pairs
    }
    if as_csv:
        print(clearing.statement(statement.month, pairs).csv(), end="")
        return
    recount = {
        settlement_pb2.RECOUNT_OUTCOME_MATCHES: "  recount matches",
        settlement_pb2.RECOUNT_OUTCOME_DIFFERS: "  recount DIFFERS",
    }.get(statement.recount, "")
    print(f"clearing {statement.month}  {'closed' if statement.closed else 'OPEN (running totals)'}{recount}")
    print(f"  {'insured':<8}{'treating':<9}{'count':>6}{'total':>16}{'fund':>16}{'account':>14}{'owed':>16}")
    for p in statement.pairs:
        print(
            f"  {p.insured_region:<8}{p.treating_region:<9}{p.count:>6}{yuan(p.total_fen):>16}"
            f"{yuan(p.fund_pay_fen):>16}{yuan(p.account_pay_fen):>14}{yuan(p.owed_fen):>16}"
        )
    print("  net positions (+ receivable, - payable)")
    for r in statement.positions:
        print(f"  {r.region:<8}{yuan(r.net_fen):>16}")


def print_queued(m: operator_pb2.QueuedMessage) -> None:
    agency = (
        f"portal:{m.recipient_portal}"
        if m.recipient_portal
        else f"{m.recipient.region_code}:{'hrss' if m.recipient.agency_type == 1 else 'healthcare'}"
    )
    queued = time_text(m.enqueue_time)
    print(f"{m.entry_id:<22} {m.lane:<9} {agency:<18} {m.notice:<20} {m.transfer_id:<22} queued {queued}")
    if m.reason:
        print(f"  dead {time_text(m.dead_time)}: {m.reason}")
        for attempt in m.attempts:
            print(f"    attempt {attempt}")
