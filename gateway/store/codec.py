"""Domain records to and from the JSON and stream fields kept in Redis."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from gateway.app.ports import OutboundMessage, QueuedMessage
from gateway.domain import idnumber
from gateway.domain.errors import FieldViolation
from gateway.domain.idempotency import IdempotencyRecord, Refusal
from gateway.domain.participants import AgencyKey, AgencyType
from gateway.domain.settlement.records import (
    Bill,
    CredentialType,
    Figures,
    FilingRecord,
    FilingState,
    FilingType,
    SettlementRecord,
    SettlementState,
)
from gateway.domain.settlement.split import BillItem, CatalogueClass, InsuranceType, MedicalType
from gateway.domain.transfer.model import (
    Circumstances,
    CollectionSource,
    Event,
    Kind,
    MedicalContinuity,
    MilitaryService,
    PensionDirection,
    State,
    Step,
    StepName,
    Transfer,
    TransferInfo,
)
from gateway.domain.transfer.pension import ContributionYear
from gateway.security.crypto import FieldCipher

__all__ = [
    "event_fields",
    "event_from_fields",
    "filing_from_json",
    "filing_to_json",
    "message_fields",
    "open_body",
    "parse_agency",
    "queued_from_fields",
    "record_from_json",
    "record_to_json",
    "seal_body",
    "settlement_from_json",
    "settlement_to_json",
    "transfer_from_json",
    "transfer_to_json",
]


def _agency(key: AgencyKey) -> str:
    return f"{key.region}:{key.agency_type.slug}"


def parse_agency(text: str) -> AgencyKey:
    region, slug = text.split(":")
    return AgencyKey(region, AgencyType.from_slug(slug))


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _step_to(step: Step) -> dict[str, Any]:
    return {
        "name": step.name.name,
        "holder": _agency(step.holder),
        "started_at": step.started_at.isoformat(),
        "working_days": step.working_days,
        "due": step.due.isoformat(),
        "provisional": step.provisional,
        "completed_at": step.completed_at.isoformat() if step.completed_at else None,
        "reminded_at": step.reminded_at.isoformat() if step.reminded_at else None,
    }


def _step_from(d: dict[str, Any]) -> Step:
    started = _time(d["started_at"])
    assert started is not None
    return Step(
        name=StepName[d["name"]],
        holder=parse_agency(d["holder"]),
        started_at=started,
        working_days=d["working_days"],
        due=date.fromisoformat(d["due"]),
        provisional=d["provisional"],
        completed_at=_time(d["completed_at"]),
        reminded_at=_time(d.get("reminded_at")),
    )


def _info_to(info: TransferInfo) -> dict[str, Any]:
    return {
        "table_number": info.table_number,
        "individual_account_fen": info.individual_account_fen,
        "pooled_fund_fen": info.pooled_fund_fen,
        "funds_fen": info.funds_fen,
        "remaining_benefit_fen": info.remaining_benefit_fen,
        "medical_subsidy_fen": info.medical_subsidy_fen,
        "training_subsidy_fen": info.training_subsidy_fen,
        "contribution_months": info.contribution_months,
        "remaining_benefit_months": info.remaining_benefit_months,
        "contributions": [
            [c.year, c.first_month, c.last_month, c.monthly_base_fen, c.account_credit_fen, c.interest_fen]
            for c in info.contributions
        ],
    }


def _info_from(d: dict[str, Any]) -> TransferInfo:
    years = tuple(ContributionYear(*row) for row in d.pop("contributions"))
    return TransferInfo(contributions=years, **d)


def _continuity_to(c: MedicalContinuity) -> dict[str, Any]:
    return {
        "continuous": c.continuous,
        "waiting_months": c.waiting_months,
        "months_to_pay": c.months_to_pay,
        "note": c.note,
    }


def _military_to(m: MilitaryService) -> dict[str, Any]:
    return {
        "service_start": m.service_start.isoformat(),
        "service_end": m.service_end.isoformat(),
        "subsidy_fen": m.subsidy_fen,
        "account_fen": m.account_fen,
        "vouchers": list(m.vouchers),
        "spouse": m.spouse,
    }


def _military_from(d: dict[str, Any]) -> MilitaryService:
    return MilitaryService(
        service_start=date.fromisoformat(d["service_start"]),
        service_end=date.fromisoformat(d["service_end"]),
        subsidy_fen=d["subsidy_fen"],
        account_fen=d["account_fen"],
        vouchers=tuple(d["vouchers"]),
        spouse=d["spouse"],
    )


def transfer_to_json(t: Transfer, cipher: FieldCipher) -> str:
    c = t.circumstances
    return json.dumps(
        {
            "transfer_id": t.transfer_id,
            "kind": t.kind.name,
            "id_number": cipher.encrypt(t.id_number, context=f"transfer:{t.transfer_id}:id_number"),
            "name": cipher.encrypt(t.name, context=f"transfer:{t.transfer_id}:name"),
            "source_region": t.source_region,
            "target_region": t.target_region,
            "circumstances": {
                "drawing_benefits": c.drawing_benefits,
                "hukou_moved": c.hukou_moved,
                "residence_changed": c.residence_changed,
                "retired": c.retired,
                "continuous_enrolment_months": c.continuous_enrolment_months,
                "direction": c.direction.name,
                "hukou_region": c.hukou_region,
                "gap_months": c.gap_months,
                "collection_source": c.collection_source.name,
            },
            "state": t.state.name,
            "steps": [_step_to(s) for s in t.steps],
            "created_at": t.created_at.isoformat(),
            "updated_at": t.updated_at.isoformat(),
            "info": _info_to(t.info) if t.info else None,
            "close_reason": t.close_reason,
            "version": t.version,
            "originator": t.originator,
            "military": _military_to(t.military) if t.military else None,
            "temporary_account": t.temporary_account,
            "continuity": _continuity_to(t.continuity) if t.continuity else None,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def transfer_from_json(text: str | bytes, cipher: FieldCipher) -> Transfer:
    d = json.loads(text)
    c = d["circumstances"]
    c["direction"] = PensionDirection[c["direction"]]
    c["collection_source"] = CollectionSource[c.get("collection_source", "UNSPECIFIED")]
    created, updated = _time(d["created_at"]), _time(d["updated_at"])
    assert created is not None and updated is not None
    return Transfer(
        transfer_id=d["transfer_id"],
        kind=Kind[d["kind"]],
        id_number=cipher.decrypt(d["id_number"], context=f"transfer:{d['transfer_id']}:id_number"),
        name=cipher.decrypt(d["name"], context=f"transfer:{d['transfer_id']}:name"),
        source_region=d["source_region"],
        target_region=d["target_region"],
        circumstances=Circumstances(**c),
        state=State[d["state"]],
        steps=tuple(_step_from(s) for s in d["steps"]),
        created_at=created,
        updated_at=updated,
        info=_info_from(d["info"]) if d["info"] else None,
        close_reason=d["close_reason"],
        version=d["version"],
        originator=d.get("originator", ""),
        military=_military_from(d["military"]) if d.get("military") else None,
        temporary_account=d.get("temporary_account", False),
        continuity=MedicalContinuity(**d["continuity"]) if d.get("continuity") else None,
    )


def event_fields(event: Event) -> list[str]:
    """A timeline event as stream field/value items."""
    return [
        "time",
        event.time.isoformat(),
        "actor",
        event.actor,
        "from",
        event.from_state.name if event.from_state else "",
        "to",
        event.to_state.name,
        "note",
        idnumber.scrub(event.note),
    ]


def event_from_fields(fields: dict[bytes, bytes]) -> Event:
    get = {k.decode(): v.decode() for k, v in fields.items()}
    time = _time(get["time"])
    assert time is not None
    return Event(
        time=time,
        actor=get["actor"],
        from_state=State[get["from"]] if get["from"] else None,
        to_state=State[get["to"]],
        note=get["note"],
    )


# ------------------------------------------------------------------------------------------ idempotency records


def record_to_json(record: IdempotencyRecord) -> str:
    refusal = record.refusal
    return json.dumps(
        {
            "fp": record.fingerprint,
            "id": record.object_id,
            "action": record.action,
            "refusal": None
            if refusal is None
            else {
                "reason": refusal.reason,
                "message": refusal.message,
                "violations": [[v.field, v.description] for v in refusal.violations],
                "metadata": refusal.metadata,
            },
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def record_from_json(text: str | bytes) -> IdempotencyRecord:
    d = json.loads(text)
    r = d.get("refusal")
    refusal = (
        None
        if r is None
        else Refusal(r["reason"], r["message"], tuple(FieldViolation(f, t) for f, t in r["violations"]), r["metadata"])
    )
    return IdempotencyRecord(d["fp"], d["id"], d.get("action", ""), refusal)


# ------------------------------------------------------------------------------------------ outbound messages


def seal_body(cipher: FieldCipher, message_id: str, body: bytes) -> str:
    return cipher.encrypt(base64.b64encode(body).decode(), context=f"message:{message_id}")


def open_body(cipher: FieldCipher, message_id: str, sealed: bytes) -> bytes:
    return base64.b64decode(cipher.decrypt(sealed.decode(), context=f"message:{message_id}"))


def message_fields(message: OutboundMessage, cipher: FieldCipher) -> list[str | bytes]:
    """Stream fields of an outbound message; the body (which carries the person's ID number and name) sealed."""
    return [
        "message_id",
        message.message_id,
        "recipient",
        _agency(message.recipient),
        "lane",
        message.lane,
        "notice",
        message.notice,
        "transfer_id",
        message.transfer_id,
        "body",
        seal_body(cipher, message.message_id, message.body),
        "enqueued_ms",
        str(message.enqueued_ms),
    ]


def queued_from_fields(entry_id: bytes, raw: dict[bytes, bytes]) -> QueuedMessage:
    """A lane entry or dead letter as an operator sees it (never the body)."""
    f = {k.decode(): v.decode(errors="replace") for k, v in raw.items() if k != b"body"}
    return QueuedMessage(
        entry_id=entry_id.decode(),
        message_id=f.get("message_id", ""),
        recipient=parse_agency(f["recipient"]),
        lane=f.get("lane", "ordinary"),
        notice=f.get("notice", ""),
        transfer_id=f.get("transfer_id", ""),
        enqueued_ms=int(f.get("enqueued_ms", "0") or 0),
        reason=f.get("reason", ""),
        attempts=tuple(line for line in f.get("attempts", "").split("\n") if line),
        dead_ms=int(f["dead_ms"]) if f.get("dead_ms") else None,
    )


# ------------------------------------------------------------------------------------------ settlements, filings

_BILL_PERSONAL = ("id_number", "name")


def _bill_to(bill: Bill) -> dict[str, Any]:
    return {
        "msgid": bill.msgid,
        "hospital_code": bill.hospital_code,
        "hospital_level": bill.hospital_level,
        "treatment_region": bill.treatment_region,
        "insured_region": bill.insured_region,
        "visit_id": bill.visit_id,
        "id_number": bill.id_number,
        "name": bill.name,
        "credential_type": int(bill.credential_type),
        "insurance_type": bill.insurance_type.value,
        "medical_type": bill.medical_type.value,
        "admission": bill.admission.isoformat(),
        "discharge": bill.discharge.isoformat(),
        "emergency": bill.emergency,
        "items": [[i.code, i.name, int(i.catalogue_class), i.amount_fen, i.self_pay_percent] for i in bill.items],
        "total_fen": bill.total_fen,
        "message_time": bill.message_time.isoformat(),
    }


def _bill_from(d: dict[str, Any]) -> Bill:
    return Bill(
        msgid=d["msgid"],
        hospital_code=d["hospital_code"],
        hospital_level=d["hospital_level"],
        treatment_region=d["treatment_region"],
        insured_region=d["insured_region"],
        visit_id=d["visit_id"],
        id_number=d["id_number"],
        name=d["name"],
        credential_type=CredentialType(d["credential_type"]),
        insurance_type=InsuranceType(d["insurance_type"]),
        medical_type=MedicalType(d["medical_type"]),
        admission=date.fromisoformat(d["admission"]),
        discharge=date.fromisoformat(d["discharge"]),
        emergency=d["emergency"],
        items=tuple(BillItem(c, n, CatalogueClass(k), a, p) for c, n, k, a, p in d["items"]),
        total_fen=d["total_fen"],
        message_time=datetime.fromisoformat(d["message_time"]),
    )


def settlement_to_json(r: SettlementRecord, cipher: FieldCipher) -> str:
    """The settlement with the person (ID number, name) and the whole bill sealed."""
    bill = json.dumps(_bill_to(r.bill), ensure_ascii=False, separators=(",", ":"))
    return json.dumps(
        {
            "settlement_id": r.settlement_id,
            "version": r.version,
            "state": r.state.value,
            "hospital_code": r.hospital_code,
            "treatment_region": r.treatment_region,
            "insured_region": r.insured_region,
            "bill": cipher.encrypt(bill, context=f"settlement:{r.settlement_id}:bill"),
            "figures": asdict(r.figures),
            "settled_at": r.settled_at.isoformat(),
            "cancelled_at": r.cancelled_at.isoformat() if r.cancelled_at else None,
            "cancel_msgid": r.cancel_msgid,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def settlement_from_json(text: str | bytes, cipher: FieldCipher) -> SettlementRecord:
    d = json.loads(text)
    bill = json.loads(cipher.decrypt(d["bill"], context=f"settlement:{d['settlement_id']}:bill"))
    return SettlementRecord(
        settlement_id=d["settlement_id"],
        bill=_bill_from(bill),
        figures=Figures(**d["figures"]),
        settled_at=datetime.fromisoformat(d["settled_at"]),
        state=SettlementState(d["state"]),
        cancelled_at=_time(d["cancelled_at"]),
        cancel_msgid=d["cancel_msgid"],
        version=d["version"],
    )


def filing_to_json(f: FilingRecord, cipher: FieldCipher) -> str:
    return json.dumps(
        {
            "filing_id": f.filing_id,
            "filing_type": int(f.filing_type),
            "id_number": cipher.encrypt(f.id_number, context=f"filing:{f.filing_id}:id_number"),
            "insured_region": f.insured_region,
            "treatment_region": f.treatment_region,
            "valid_from": f.valid_from.isoformat(),
            "valid_until": f.valid_until.isoformat() if f.valid_until else None,
            "created_at": f.created_at.isoformat(),
            "state": f.state.value,
            "cancel_reason": f.cancel_reason,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def filing_from_json(text: str | bytes, cipher: FieldCipher) -> FilingRecord:
    d = json.loads(text)
    created = _time(d["created_at"])
    assert created is not None
    return FilingRecord(
        filing_id=d["filing_id"],
        filing_type=FilingType(d["filing_type"]),
        id_number=cipher.decrypt(d["id_number"], context=f"filing:{d['filing_id']}:id_number"),
        insured_region=d["insured_region"],
        treatment_region=d["treatment_region"],
        valid_from=date.fromisoformat(d["valid_from"]),
        valid_until=date.fromisoformat(d["valid_until"]) if d["valid_until"] else None,
        created_at=created,
        state=FilingState(d["state"]),
        cancel_reason=d["cancel_reason"],
    )
