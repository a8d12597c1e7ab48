"""Settlement on the wire: ``sigw.v1`` bills, filings and reconciliation requests to validated domain records (every
bad field at once), and settlements, splits, filings and statements back to messages. The agency side
(``ComputeSettlement``, ``RefundSettlement``) uses the same mapping."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import cast

from gateway._gen.sigw.v1 import agency_pb2, common_pb2, settlement_pb2
from gateway.domain import idnumber, ids
from gateway.domain.settlement import reconciliation
from gateway.domain.settlement.clearing import PairTotals, Statement
from gateway.domain.settlement.records import (
    Bill,
    CredentialType,
    Figures,
    FilingRecord,
    FilingState,
    SettlementRecord,
    SettlementState,
)
from gateway.domain.settlement.split import BillItem, CatalogueClass, InsuranceType, MedicalType, Split, bill_errors
from gateway.domain.settlement.visit import Insurance, InsuredPerson
from gateway.wire.common import date_from, date_to, timestamp
from gateway.wire.validation import MAX_NAME, Violations

__all__ = [
    "MONTH",
    "bill_from",
    "bill_to",
    "check_msgid",
    "figures_from",
    "figures_of",
    "filing_to",
    "pair_to",
    "person_from",
    "recon_line",
    "recon_line_to",
    "recon_totals_to",
    "settlement_to",
    "split_to",
    "statement_to",
]

_VISIT = re.compile(r"[A-Za-z0-9_\-]{1,40}")
MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def check_msgid(v: Violations, field: str, msgid: str, hospital: str | None = None) -> datetime | None:
    """The time a msgid names; a violation when it is no msgid (or not ``hospital``'s)."""
    when = ids.msgid_time(msgid)
    if when is None:
        v.add(field, "must be institution code (12) + yyyyMMddHHmmss + 4-digit sequence")
    elif hospital is not None and not msgid.startswith(hospital):
        v.add(field, "must start with the hospital's institution code")
    return when


def _class(value: int) -> CatalogueClass:
    """The item's class; a value outside A-C stays as sent, for ``bill_errors`` to report."""
    return CatalogueClass(value) if value in CatalogueClass._value2member_map_ else cast(CatalogueClass, value)


def bill_from(bill: settlement_pb2.Bill, received_at: datetime) -> Bill:
    """A validated bill received at ``received_at`` (its settlement month); ``InvalidArgument`` naming every bad
    field otherwise."""
    today = received_at.date()
    v = Violations()
    when = check_msgid(v, "bill.msgid", bill.msgid, bill.hospital_code)
    if not ids.HOSPITAL_CODE.fullmatch(bill.hospital_code):
        v.add("bill.hospital_code", "must be a 12-character institution code like H44030000001")
    if bill.hospital_level not in (1, 2, 3):
        v.add("bill.hospital_level", "must be 1, 2 or 3")
    v.region("bill.treatment_region", bill.treatment_region)
    v.region("bill.insured_region", bill.insured_region)
    if not _VISIT.fullmatch(bill.visit_id):
        v.add("bill.visit_id", "required: 1-40 letters, digits, _ or -")
    v.identifier("bill.visit_id", bill.visit_id)
    error = idnumber.validation_error(bill.person.id_number)
    if error:
        v.add("bill.person.id_number", error)
    v.text("bill.person.name", bill.person.name, limit=MAX_NAME, required=True)
    if bill.credential_type not in CredentialType._value2member_map_:
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
    # Every item is checked, a bad class among them included (bill_errors names it), so one answer lists
    # every bad field of the bill.
    items = [
        BillItem(item.code, item.name, _class(item.catalogue_class), item.amount_fen, item.self_pay_percent)
        for item in bill.items
    ]
    if not bill.items:
        v.add("bill.items", "required: the itemised bill")
    else:
        for path, description in bill_errors(items, bill.total_fen):
            v.add(f"bill.{path}", description)
    v.raise_if_any()
    assert when and admission and discharge
    return Bill(
        msgid=bill.msgid,
        hospital_code=bill.hospital_code,
        hospital_level=bill.hospital_level,
        treatment_region=bill.treatment_region,
        insured_region=bill.insured_region,
        visit_id=bill.visit_id,
        id_number=bill.person.id_number,
        name=bill.person.name,
        credential_type=CredentialType(bill.credential_type),
        insurance_type=InsuranceType(bill.insurance_type),
        medical_type=MedicalType(bill.medical_type),
        admission=admission,
        discharge=discharge,
        emergency=bill.emergency,
        items=tuple(items),
        total_fen=bill.total_fen,
        received_at=received_at,
        account_declined=bill.account_declined,
    )


_PERSON_NUMBER = re.compile(r"[A-Za-z0-9]{1,30}")


def person_from(reply: agency_pb2.GetPersonInfoResponse, id_number: str, region: str) -> InsuredPerson:
    """The insured region's 1101 answer; ``ValueError`` when it is not a usable one (the region's own lines
    only)."""
    if not _PERSON_NUMBER.fullmatch(reply.person_number):
        raise ValueError("person_number must be 1-30 letters or digits")
    insurances = []
    for line in reply.insurances:
        if line.insured_region and line.insured_region != region:
            continue
        if line.insurance_type not in {t.value for t in InsuranceType} or line.balance_fen < 0:
            raise ValueError(f"insurance {line.insurance_type!r}: an unknown type or a negative balance")
        insurances.append(
            Insurance(
                insurance_type=line.insurance_type,
                balance_fen=line.balance_fen,
                person_type=line.person_type[:6],
                insured_region=region,
                active=line.active,
                since=date_from(line.since) if line.HasField("since") else None,
            )
        )
    return InsuredPerson(
        person_number=reply.person_number,
        id_number=id_number,
        name=reply.name[:MAX_NAME],
        gender=reply.gender if reply.gender in ("1", "2") else "9",
        birthday=date_from(reply.birthday) if reply.HasField("birthday") else None,
        insured_region=region,
        insurances=tuple(insurances),
    )


def bill_to(bill: Bill) -> settlement_pb2.Bill:
    """The bill as the insured region's agency receives it, with the full ID number."""
    return settlement_pb2.Bill(
        msgid=bill.msgid,
        hospital_code=bill.hospital_code,
        hospital_level=bill.hospital_level,
        treatment_region=bill.treatment_region,
        insured_region=bill.insured_region,
        visit_id=bill.visit_id,
        person=common_pb2.Person(id_number=bill.id_number, name=bill.name),
        credential_type=settlement_pb2.CredentialType.ValueType(bill.credential_type),
        insurance_type=bill.insurance_type.value,
        medical_type=bill.medical_type.value,
        admission_date=date_to(bill.admission),
        discharge_date=date_to(bill.discharge),
        emergency=bill.emergency,
        account_declined=bill.account_declined,
        items=[
            settlement_pb2.BillItem(
                code=i.code,
                name=i.name,
                catalogue_class=settlement_pb2.CatalogueClass.ValueType(i.catalogue_class),
                amount_fen=i.amount_fen,
                self_pay_percent=i.self_pay_percent,
            )
            for i in bill.items
        ],
        total_fen=bill.total_fen,
    )


def agency_bill(bill: settlement_pb2.Bill) -> tuple[tuple[BillItem, ...], date]:
    """What an agency reads of a bill the gateway sent (validated there): its items and discharge date."""
    items = tuple(
        BillItem(i.code, i.name, CatalogueClass(i.catalogue_class), i.amount_fen, i.self_pay_percent)
        for i in bill.items
    )
    return items, date_from(bill.discharge_date)


_FIGURES = (
    "total_fen",
    "fund_pay_fen",
    "account_pay_fen",
    "cash_pay_fen",
    "class_c_fen",
    "class_b_self_fen",
    "in_scope_fen",
    "deductible_fen",
    "over_cap_fen",
    "ratio_percent",
    "note",
)
"""The figures a split, the agency's answer and the gateway's record share, by the same names."""


def figures_of(split: Split) -> Figures:
    """The agency's split as the figures the gateway keeps."""
    return Figures(**{name: getattr(split, name) for name in _FIGURES}, filing_status=int(split.filing))


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
    return Figures(**{name: getattr(split, name) for name in _FIGURES}, filing_status=int(split.filing_status))


def settlement_to(r: SettlementRecord) -> settlement_pb2.Settlement:
    bill = r.bill
    msg = settlement_pb2.Settlement(
        settlement_id=r.settlement_id,
        msgid=bill.msgid,
        hospital_code=bill.hospital_code,
        treatment_region=bill.treatment_region,
        insured_region=bill.insured_region,
        visit_id=bill.visit_id,
        id_number_masked=idnumber.mask(bill.id_number),
        insurance_type=bill.insurance_type.value,
        medical_type=bill.medical_type.value,
        split=split_to(r.figures),
        settle_time=timestamp(r.settled_at),
        clearing_month=r.clearing_month,
        state=settlement_pb2.SETTLEMENT_STATE_SETTLED
        if r.state is SettlementState.SETTLED
        else settlement_pb2.SETTLEMENT_STATE_CANCELLED,
        cancel_msgid=r.cancel_msgid,
    )
    if r.cancelled_at:
        msg.cancel_time.CopyFrom(timestamp(r.cancelled_at))
    return msg


def filing_to(f: FilingRecord) -> settlement_pb2.Filing:
    msg = settlement_pb2.Filing(
        filing_id=f.filing_id,
        type=settlement_pb2.FilingType.ValueType(f.filing_type),
        id_number_masked=idnumber.mask(f.id_number),
        insured_region=f.insured_region,
        treatment_region=f.treatment_region,
        valid_from=date_to(f.valid_from),
        create_time=timestamp(f.created_at),
        state=settlement_pb2.FILING_STATE_ACTIVE
        if f.state is FilingState.ACTIVE
        else settlement_pb2.FILING_STATE_CANCELLED,
        cancel_reason=f.cancel_reason,
    )
    if f.valid_until:
        msg.valid_until.CopyFrom(date_to(f.valid_until))
    return msg


def pair_to(p: PairTotals) -> settlement_pb2.ClearingPair:
    return settlement_pb2.ClearingPair(
        insured_region=p.insured_region,
        treating_region=p.treating_region,
        count=p.count,
        total_fen=p.total_fen,
        fund_pay_fen=p.fund_fen,
        account_pay_fen=p.account_fen,
        cash_pay_fen=p.cash_fen,
        owed_fen=p.owed_fen,
    )


def statement_to(
    s: Statement,
    *,
    closed: bool,
    recount: settlement_pb2.RecountOutcome.ValueType = settlement_pb2.RECOUNT_OUTCOME_UNSPECIFIED,
) -> settlement_pb2.ClearingStatement:
    return settlement_pb2.ClearingStatement(
        month=s.month,
        closed=closed,
        recount=recount,
        pairs=[pair_to(p) for p in s.pairs],
        positions=[settlement_pb2.RegionPosition(region=r, net_fen=n) for r, n in sorted(s.net_fen.items())],
    )


def recon_line(msg: settlement_pb2.ReconLine) -> reconciliation.ReconLine:
    return reconciliation.ReconLine(
        msg.settlement_id, msg.total_fen, msg.fund_pay_fen, msg.account_pay_fen, msg.cash_pay_fen
    )


def recon_line_to(line: reconciliation.ReconLine | None) -> settlement_pb2.ReconLine | None:
    if line is None:
        return None
    return settlement_pb2.ReconLine(
        settlement_id=line.settlement_id,
        total_fen=line.total_fen,
        fund_pay_fen=line.fund_fen,
        account_pay_fen=line.account_fen,
        cash_pay_fen=line.cash_fen,
    )


def recon_totals_to(t: reconciliation.ReconTotals) -> settlement_pb2.ReconTotals:
    return settlement_pb2.ReconTotals(
        count=t.count,
        total_fen=t.total_fen,
        fund_pay_fen=t.fund_fen,
        account_pay_fen=t.account_fen,
        cash_pay_fen=t.cash_fen,
    )
