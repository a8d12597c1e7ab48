"""Settlement messages to validated domain input and stored records back to messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from google.protobuf import json_format

from gateway._gen.sigw.v1 import common_pb2, settlement_pb2
from gateway.domain import idnumber
from gateway.domain.settlement.split import (
    BillItem,
    CatalogueClass,
    FilingStatus,
    InsuranceType,
    MedicalType,
    bill_errors,
)
from gateway.domain.transfer.model import SHANGHAI
from gateway.store.settlements import Figures, FilingRecord, SettlementRecord
from gateway.wire.transfers import Violations, timestamp

# msgid: institution code (12) + yyyyMMddHHmmss + 4-digit sequence (the national interface's 报文ID).
_MSGID = re.compile(r"([A-Z][0-9A-Z]{11})([0-9]{14})([0-9]{4})")
_HOSPITAL = re.compile(r"[A-Z][0-9A-Z]{11}")
_VISIT = re.compile(r"[A-Za-z0-9_\-]{1,40}")
SETTLEMENT_ID = re.compile(r"S[0-9]{2}-[0-9a-f]{16}")
FILING_ID = re.compile(r"F[0-9]{2}-[0-9]{8}-[0-9A-F]{8}")
MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
TRANSACTION = re.compile(r"[0-9A-Za-z]{1,10}")
LONG_TERM = {
    settlement_pb2.FILING_TYPE_RETIREE_SETTLED_ELSEWHERE,
    settlement_pb2.FILING_TYPE_LONG_TERM_RESIDENT,
    settlement_pb2.FILING_TYPE_POSTED_WORKER,
}


def msgid_time(msgid: str) -> datetime | None:
    """The time a msgid names (Asia/Shanghai), or None when it is not a msgid."""
    match = _MSGID.fullmatch(msgid)
    if not match:
        return None
    try:
        when = datetime.strptime(match.group(2), "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        return None
    return when if 2000 <= when.year <= 2100 else None


def check_msgid(v: Violations, field: str, msgid: str, hospital: str | None = None) -> datetime | None:
    when = msgid_time(msgid)
    if when is None:
        v.add(field, "must be institution code (12) + yyyyMMddHHmmss + 4-digit sequence")
    elif hospital is not None and not msgid.startswith(hospital):
        v.add(field, "must start with the hospital's institution code")
    return when


def date_to(d: date) -> common_pb2.Date:
    return common_pb2.Date(year=d.year, month=d.month, day=d.day)


@dataclass(frozen=True)
class ParsedBill:
    """A validated bill: the message (forwarded to the insured region's agency) and what sigw reads of it."""

    message: settlement_pb2.Bill
    items: tuple[BillItem, ...]
    message_time: datetime
    admission: date
    discharge: date
    insurance: InsuranceType
    medical: MedicalType


def bill_from(bill: settlement_pb2.Bill, today: date) -> ParsedBill:
    v = Violations()
    when = check_msgid(v, "bill.msgid", bill.msgid, bill.hospital_code)
    if not _HOSPITAL.fullmatch(bill.hospital_code):
        v.add("bill.hospital_code", "must be a 12-character institution code like H44030000001")
    if bill.hospital_level not in (1, 2, 3):
        v.add("bill.hospital_level", "must be 1, 2 or 3")
    v.region("bill.treatment_region", bill.treatment_region)
    v.region("bill.insured_region", bill.insured_region)
    if not _VISIT.fullmatch(bill.visit_id):
        v.add("bill.visit_id", "required: 1-40 letters, digits, _ or -")
    error = idnumber.validation_error(bill.person.id_number)
    if error:
        v.add("bill.person.id_number", error)
    v.text("bill.person.name", bill.person.name, limit=64, required=True)
    if bill.credential_type not in (1, 2, 3):
        v.add("bill.credential_type", "required: e-voucher (01), ID card (02) or social security card (03)")
    if bill.insurance_type not in {t.value for t in InsuranceType}:
        v.add("bill.insurance_type", "must be 310 (employee) or 390 (resident)")
    if bill.medical_type not in {t.value for t in MedicalType}:
        v.add("bill.medical_type", "must be 11, 14, 21 or 25")
    admission = v.date("bill.admission_date", bill.admission_date)
    discharge = v.date("bill.discharge_date", bill.discharge_date)
    if admission and discharge and discharge < admission:
        v.add("bill.discharge_date", "before the admission date")
    if discharge and discharge > today:
        v.add("bill.discharge_date", "in the future")
    if when and when.date() > today:
        v.add("bill.msgid", "names a time in the future")
    items = []
    for i, item in enumerate(bill.items):
        if item.catalogue_class not in (1, 2, 3):
            v.add(f"bill.items[{i}].catalogue_class", "must be A, B or C")
            continue
        items.append(
            BillItem(item.code, item.name, CatalogueClass(item.catalogue_class), item.amount_fen, item.self_pay_percent)
        )
    if not bill.items:
        v.add("bill.items", "required: the itemised bill")
    elif len(items) == len(bill.items):
        for path, description in bill_errors(items, bill.total_fen):
            v.add(f"bill.{path}", description)
    v.raise_if_any()
    assert when and admission and discharge
    return ParsedBill(
        bill,
        tuple(items),
        when,
        admission,
        discharge,
        InsuranceType(bill.insurance_type),
        MedicalType(bill.medical_type),
    )


def split_to(f: Figures) -> settlement_pb2.SettlementSplit:
    return settlement_pb2.SettlementSplit(
        total_fen=f.total_fen,
        fund_pay_fen=f.fund_pay_fen,
        account_pay_fen=f.account_pay_fen,
        cash_pay_fen=f.cash_pay_fen,
        class_c_fen=f.class_c_fen,
        class_b_self_fen=f.class_b_self_fen,
        in_scope_fen=f.in_scope_fen,
        deductible_fen=f.deductible_fen,
        over_cap_fen=f.over_cap_fen,
        ratio_percent=f.ratio_percent,
        filing_status=settlement_pb2.FilingStatus.ValueType(f.filing_status),
        note=idnumber.scrub(f.note),
    )


def figures_from(split: settlement_pb2.SettlementSplit) -> Figures:
    return Figures(
        total_fen=split.total_fen,
        fund_pay_fen=split.fund_pay_fen,
        account_pay_fen=split.account_pay_fen,
        cash_pay_fen=split.cash_pay_fen,
        class_c_fen=split.class_c_fen,
        class_b_self_fen=split.class_b_self_fen,
        in_scope_fen=split.in_scope_fen,
        deductible_fen=split.deductible_fen,
        over_cap_fen=split.over_cap_fen,
        ratio_percent=split.ratio_percent,
        filing_status=int(split.filing_status),
        note=split.note,
    )


def settlement_to(r: SettlementRecord) -> settlement_pb2.Settlement:
    msg = settlement_pb2.Settlement(
        settlement_id=r.settlement_id,
        msgid=r.msgid,
        hospital_code=r.hospital_code,
        treatment_region=r.treatment_region,
        insured_region=r.insured_region,
        visit_id=r.visit_id,
        id_number_masked=idnumber.mask(r.id_number),
        insurance_type=r.insurance_type,
        medical_type=r.medical_type,
        split=split_to(r.figures),
        settle_time=timestamp(r.settled_at),
        clearing_month=r.clearing_month,
        state=settlement_pb2.SETTLEMENT_STATE_SETTLED
        if r.state == "SETTLED"
        else settlement_pb2.SETTLEMENT_STATE_CANCELLED,
        cancel_msgid=r.cancel_msgid,
    )
    if r.cancelled_at:
        msg.cancel_time.CopyFrom(timestamp(r.cancelled_at))
    return msg


def bill_json(bill: settlement_pb2.Bill) -> str:
    return json_format.MessageToJson(bill, indent=None)


def bill_parse(text: str) -> settlement_pb2.Bill:
    return json_format.Parse(text, settlement_pb2.Bill())


def filing_to(f: FilingRecord) -> settlement_pb2.Filing:
    msg = settlement_pb2.Filing(
        filing_id=f.filing_id,
        type=settlement_pb2.FilingType.ValueType(f.filing_type),
        id_number_masked=idnumber.mask(f.id_number),
        insured_region=f.insured_region,
        treatment_region=f.treatment_region,
        valid_from=date_to(f.valid_from),
        create_time=timestamp(f.created_at),
        state=settlement_pb2.FILING_STATE_ACTIVE if f.state == "ACTIVE" else settlement_pb2.FILING_STATE_CANCELLED,
        cancel_reason=f.cancel_reason,
    )
    if f.valid_until:
        msg.valid_until.CopyFrom(date_to(f.valid_until))
    return msg


def filing_covers(f: FilingRecord, treatment_region: str, day: date) -> bool:
    """An active filing covers a place of treatment (its city, or all cities of its province) on a day."""
    place = f.treatment_region == treatment_region or (
        f.treatment_region.endswith("0000") and f.treatment_region[:2] == treatment_region[:2]
    )
    in_time = f.valid_from <= day and (f.valid_until is None or day <= f.valid_until)
    return f.state == "ACTIVE" and place and in_time


def filing_status(filings: list[FilingRecord], treatment_region: str, day: date, emergency: bool) -> FilingStatus:
    """Emergency counts as filed; else the best filing covering the place and day; else unfiled."""
    if emergency:
        return FilingStatus.EMERGENCY
    covering = [f for f in filings if filing_covers(f, treatment_region, day)]
    if any(f.filing_type == settlement_pb2.FILING_TYPE_EMERGENCY for f in covering):
        return FilingStatus.EMERGENCY
    if any(f.filing_type in LONG_TERM for f in covering):
        return FilingStatus.FILED_LONG_TERM
    if any(f.filing_type == settlement_pb2.FILING_TYPE_REFERRAL for f in covering):
        return FilingStatus.FILED_REFERRAL
    if covering:
        return FilingStatus.FILED_TEMPORARY
    return FilingStatus.UNFILED
