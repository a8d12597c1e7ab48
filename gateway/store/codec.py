"""Domain records to and from the JSON and stream fields kept in Redis."""

from __future__ import annotations

import base64
import enum
import json
import zlib
from dataclasses import asdict, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from gateway.app.ports import OutboundMessage, QueuedMessage, StoredTransfer, timeline_id
from gateway.domain import idnumber
from gateway.domain.calendar import CHINA_STANDARD_TIME
from gateway.domain.errors import FieldViolation
from gateway.domain.idempotency import IdempotencyRecord, Refusal
from gateway.domain.participants import AgencyKey, AgencyType, Destination, PortalKey
from gateway.domain.settlement.catalogue import CatalogueEntry
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
from gateway.domain.settlement.visit import (
    FeeDetail,
    Insurance,
    InsuredPerson,
    SettleClaim,
    Visit,
    VisitState,
)
from gateway.domain.transfer.model import (
    Circumstances,
    CollectionSource,
    Contact,
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
    "filing_entry",
    "filing_from_entry",
    "filing_from_json",
    "filing_to_json",
    "message_fields",
    "open_body",
    "parse_agency",
    "parse_destination",
    "person_from_text",
    "person_to_text",
    "queued_from_fields",
    "record_from_json",
    "record_to_json",
    "seal_body",
    "settlement_amounts",
    "settlement_from_bytes",
    "settlement_state",
    "settlement_to_bytes",
    "stored_from_bytes",
    "stored_to_bytes",
    "visit_from_bytes",
    "visit_to_bytes",
]


def _agency(key: AgencyKey) -> str:
    return f"{key.region}:{key.agency_type.slug}"


def parse_agency(text: str) -> AgencyKey:
    region, slug = text.split(":")
    return AgencyKey(region, AgencyType.from_slug(slug))


def parse_destination(text: str) -> Destination:
    """A recipient as written in stream fields and lane keys: ``110000:hrss``, or ``portal:gov``."""
    kind, _, code = text.partition(":")
    return PortalKey(code) if kind == "portal" else parse_agency(text)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _us(t: datetime) -> int:
    """An instant as integer microseconds since the epoch (exact; the record keeps no time zone)."""
    return (t - _EPOCH) // _MICROSECOND


_EPOCH_CST = _EPOCH.astimezone(CHINA_STANDARD_TIME)


def _at(us: int) -> datetime:
    """The instant in China Standard Time (UTC+8, the same instants as Asia/Shanghai since 1991; one addition)."""
    return _EPOCH_CST + us * _MICROSECOND


def _day(d: date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def _date(n: int) -> date:
    return date(n // 10000, n // 100 % 100, n % 100)


def _changed_fields(value: Any) -> dict[str, Any]:
    """The fields of a dataclass that differ from their defaults (enums by name): what a record must keep."""
    out: dict[str, Any] = {}
    for f in fields(value):
        v = getattr(value, f.name)
        if v != f.default:
            out[f.name] = v.name if isinstance(v, enum.Enum) else v
    return out


def _step_row(step: Step) -> list[Any]:
    return [
        step.name.name,
        _agency(step.holder),
        _us(step.started_at),
        step.working_days,
        _day(step.due),
        int(step.provisional),
        _us(step.completed_at) if step.completed_at else 0,
        _us(step.reminded_at) if step.reminded_at else 0,
    ]


def _contact_of(plain: str) -> Contact:
    stored = orjson.loads(plain)
    return Contact(**stored) if isinstance(stored, dict) else Contact(*stored)  # a list: written before names


def _step_of(row: list[Any]) -> Step:
    name, holder, started, working_days, due, provisional, completed, reminded = row
    return Step(
        name=StepName[name],
        holder=parse_agency(holder),
        started_at=_at(started),
        working_days=working_days,
        due=_date(due),
        provisional=bool(provisional),
        completed_at=_at(completed) if completed else None,
        reminded_at=_at(reminded) if reminded else None,
    )


def _info_doc(info: TransferInfo) -> dict[str, Any]:
    doc = _changed_fields(info)
    doc["contributions"] = [
        [c.year, c.first_month, c.last_month, c.monthly_base_fen, c.account_credit_fen, c.interest_fen]
        for c in info.contributions
    ]
    return doc


def _info_of(doc: dict[str, Any]) -> TransferInfo:
    years = tuple(ContributionYear(*row) for row in doc.pop("contributions", []))
    return TransferInfo(contributions=years, **doc)


def _military_doc(m: MilitaryService) -> list[Any]:
    return [_day(m.service_start), _day(m.service_end), m.subsidy_fen, m.account_fen, list(m.vouchers), m.spouse]


def _military_of(row: list[Any]) -> MilitaryService:
    start, end, subsidy, account, vouchers, spouse = row
    return MilitaryService(_date(start), _date(end), subsidy, account, tuple(vouchers), spouse)


def _refusal_doc(r: Refusal) -> list[Any]:
    return [r.reason, r.message, [[v.field, v.description] for v in r.violations], r.metadata]


def _refusal_of(row: list[Any]) -> Refusal:
    reason, message, violations, metadata = row
    return Refusal(reason, message, tuple(FieldViolation(f, d) for f, d in violations), metadata)


def stored_to_bytes(stored: StoredTransfer, cipher: FieldCipher) -> bytes:
    """A transfer with its timeline and its requests' records, as kept under its key: compact JSON (times in
    microseconds, defaults left out, the person sealed), zlib-compressed."""
    t = stored.transfer
    doc: dict[str, Any] = {
        "id": t.transfer_id,
        "k": t.kind.name,
        "p": cipher.encrypt(t.id_number, context=f"transfer:{t.transfer_id}:id_number"),
        "n": cipher.encrypt(t.name, context=f"transfer:{t.transfer_id}:name"),
        "src": t.source_region,
        "dst": t.target_region,
        "s": t.state.name,
        "v": t.version,
        "ca": _us(t.created_at),
        "ua": _us(t.updated_at),
        "st": [_step_row(s) for s in t.steps],
        "o": t.originator,
        "ev": [
            [_us(e.time), e.actor, e.from_state.name if e.from_state else "", e.to_state.name, idnumber.scrub(e.note)]
            for _, e in stored.timeline
        ],
        "rq": {
            digest: [r.fingerprint, _refusal_doc(r.refusal)] if r.refusal else [r.fingerprint]
            for digest, r in stored.requests.items()
        },
    }
    circumstances = _changed_fields(t.circumstances)
    if circumstances:
        doc["c"] = circumstances
    if t.info:
        doc["i"] = _info_doc(t.info)
    if t.close_reason:
        doc["cr"] = t.close_reason
    if t.closed_by:
        doc["cb"] = t.closed_by
    if t.military:
        doc["m"] = _military_doc(t.military)
    if t.temporary_account:
        doc["ta"] = 1
    if t.continuity:
        c = t.continuity
        doc["co"] = [int(c.continuous), c.waiting_months, c.months_to_pay, c.note]
    if t.contact != Contact():
        contact = orjson.dumps(asdict(t.contact)).decode()
        doc["ct"] = cipher.encrypt(contact, context=f"transfer:{t.transfer_id}:contact")
    return zlib.compress(orjson.dumps(doc), 1)


def stored_from_bytes(blob: bytes, cipher: FieldCipher) -> StoredTransfer:
    d = orjson.loads(zlib.decompress(blob))
    tid = d["id"]
    c = d.get("c", {})
    if "direction" in c:
        c["direction"] = PensionDirection[c["direction"]]
    if "collection_source" in c:
        c["collection_source"] = CollectionSource[c["collection_source"]]
    continuity = d.get("co")
    transfer = Transfer(
        transfer_id=tid,
        kind=Kind[d["k"]],
        id_number=cipher.decrypt(d["p"], context=f"transfer:{tid}:id_number"),
        name=cipher.decrypt(d["n"], context=f"transfer:{tid}:name"),
        source_region=d["src"],
        target_region=d["dst"],
        circumstances=Circumstances(**c),
        state=State[d["s"]],
        steps=tuple(_step_of(row) for row in d["st"]),
        created_at=_at(d["ca"]),
        updated_at=_at(d["ua"]),
        info=_info_of(d["i"]) if "i" in d else None,
        close_reason=d.get("cr", ""),
        closed_by=d.get("cb", ""),
        version=d["v"],
        originator=d["o"],
        military=_military_of(d["m"]) if "m" in d else None,
        temporary_account=bool(d.get("ta")),
        continuity=MedicalContinuity(bool(continuity[0]), *continuity[1:]) if continuity else None,
        contact=_contact_of(cipher.decrypt(d["ct"], context=f"transfer:{tid}:contact")) if "ct" in d else Contact(),
    )
    timeline = []
    for n, (us, actor, before, after, note) in enumerate(d["ev"], start=1):
        event = Event(_at(us), actor, State[before] if before else None, State[after], note)
        timeline.append((timeline_id(event.time, n), event))
    requests = {
        digest: IdempotencyRecord(row[0], tid, refusal=_refusal_of(row[1]) if len(row) > 1 else None)
        for digest, row in d["rq"].items()
    }
    return StoredTransfer(transfer, tuple(timeline), requests)


# ------------------------------------------------------------------------------------------ idempotency records


def record_to_json(record: IdempotencyRecord) -> bytes:
    """An idempotency record kept under its own key: ``[fingerprint, object id, action, refusal]``, the trailing
    empty ones left out."""
    row: list[Any] = [record.fingerprint, record.object_id]
    if record.action or record.refusal:
        row.append(record.action)
    if record.refusal:
        row.append(_refusal_doc(record.refusal))
    return orjson.dumps(row)


def record_from_json(text: str | bytes) -> IdempotencyRecord:
    row = orjson.loads(text)
    refusal = _refusal_of(row[3]) if len(row) > 3 else None
    return IdempotencyRecord(row[0], row[1], row[2] if len(row) > 2 else "", refusal)


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
        str(message.recipient),  # 110000:hrss for an agency, portal:gov for a portal
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
        *(("traceparent", message.traceparent) if message.traceparent else ()),
    ]


def queued_from_fields(entry_id: bytes, raw: dict[bytes, bytes]) -> QueuedMessage:
    """A lane entry or dead letter as an operator sees it (never the body)."""
    f = {k.decode(): v.decode(errors="replace") for k, v in raw.items() if k != b"body"}
    return QueuedMessage(
        entry_id=entry_id.decode(),
        message_id=f.get("message_id", ""),
        recipient=parse_destination(f["recipient"]),
        lane=f.get("lane", "ordinary"),
        notice=f.get("notice", ""),
        transfer_id=f.get("transfer_id", ""),
        enqueued_ms=int(f.get("enqueued_ms", "0") or 0),
        reason=f.get("reason", ""),
        attempts=tuple(line for line in f.get("attempts", "").split("\n") if line),
        dead_ms=int(f["dead_ms"]) if f.get("dead_ms") else None,
    )


# ------------------------------------------------------------------------------------------ settlements, filings


def _bill_row(bill: Bill) -> list[Any]:
    return [
        bill.msgid,
        bill.hospital_level,
        bill.visit_id,
        bill.id_number,
        bill.name,
        int(bill.credential_type),
        bill.insurance_type.value,
        bill.medical_type.value,
        _day(bill.admission),
        _day(bill.discharge),
        int(bill.emergency),
        [[i.code, i.name, int(i.catalogue_class), i.amount_fen, i.self_pay_percent] for i in bill.items],
        bill.total_fen,
        _us(bill.received_at),
        int(bill.account_declined),
    ]


def _bill_of(row: list[Any], hospital: str, treatment: str, insured: str) -> Bill:
    msgid, level, visit, id_number, name, credential, insurance, medical, admission, discharge, emergency = row[:11]
    items, total, message_us = row[11:14]
    declined = bool(row[14]) if len(row) > 14 else False  # records written before the field hold no flag
    return Bill(
        msgid=msgid,
        hospital_code=hospital,
        hospital_level=level,
        treatment_region=treatment,
        insured_region=insured,
        visit_id=visit,
        id_number=id_number,
        name=name,
        credential_type=CredentialType(credential),
        insurance_type=InsuranceType(insurance),
        medical_type=MedicalType(medical),
        admission=_date(admission),
        discharge=_date(discharge),
        emergency=bool(emergency),
        items=tuple(BillItem(c, n, CatalogueClass(k), a, p) for c, n, k, a, p in items),
        total_fen=total,
        received_at=_at(message_us),
        account_declined=declined,
    )


_FIGURES = tuple(f.name for f in fields(Figures))


def settlement_to_bytes(r: SettlementRecord, fingerprint: str, cipher: FieldCipher) -> bytes:
    """A settlement as kept under its key: ``<version>|<its settle message's fingerprint>|`` and compact JSON,
    the whole bill (with the person) sealed, the amounts in the clear for clearing and recounts."""
    bill = orjson.dumps(_bill_row(r.bill)).decode()
    doc = [
        r.settlement_id,
        r.state.value,
        r.hospital_code,
        r.treatment_region,
        r.insured_region,
        cipher.encrypt(bill, context=f"settlement:{r.settlement_id}:bill"),
        [getattr(r.figures, name) for name in _FIGURES],
        _us(r.settled_at),
        _us(r.cancelled_at) if r.cancelled_at else 0,
        r.cancel_msgid,
    ]
    return f"{r.version}|{fingerprint}|".encode() + orjson.dumps(doc)


def settlement_from_bytes(raw: bytes, cipher: FieldCipher) -> tuple[SettlementRecord, str]:
    """The settlement and its settle message's fingerprint."""
    version, fingerprint, body = raw.split(b"|", 2)
    sid, state, hospital, treatment, insured, sealed, figures, settled, cancelled_us, cancel_msgid = orjson.loads(body)
    bill = orjson.loads(cipher.decrypt(sealed, context=f"settlement:{sid}:bill"))
    record = SettlementRecord(
        settlement_id=sid,
        bill=_bill_of(bill, hospital, treatment, insured),
        figures=Figures(*figures),
        settled_at=_at(settled),
        state=SettlementState(state),
        cancelled_at=_at(cancelled_us) if cancelled_us else None,
        cancel_msgid=cancel_msgid,
        version=int(version),
    )
    return record, fingerprint.decode()


_TOTAL, _FUND, _ACCOUNT, _CASH = (
    _FIGURES.index(n) for n in ("total_fen", "fund_pay_fen", "account_pay_fen", "cash_pay_fen")
)


def settlement_amounts(raw: bytes) -> tuple[str, str, str, int, int, int, int]:
    """What a recount needs of a stored settlement, without opening the bill: its state, insured and treating
    regions, total, fund, account and cash pay."""
    _, _, body = raw.split(b"|", 2)
    doc = orjson.loads(body)
    f = doc[6]
    return doc[1], doc[4], doc[3], f[_TOTAL], f[_FUND], f[_ACCOUNT], f[_CASH]


def filing_entry(f: FilingRecord) -> bytes:
    """A filing as the person's index keeps it (no ID number: the index is found by the person's keyed hash)."""
    return orjson.dumps(
        [
            int(f.filing_type),
            f.insured_region,
            f.treatment_region,
            _day(f.valid_from),
            _day(f.valid_until) if f.valid_until else 0,
            _us(f.created_at),
            f.state.value,
            f.cancel_reason,
        ]
    )


def filing_from_entry(filing_id: str, id_number: str, raw: bytes) -> FilingRecord:
    filing_type, insured, treatment, valid_from, valid_until, created, state, reason = orjson.loads(raw)
    return FilingRecord(
        filing_id=filing_id,
        filing_type=FilingType(filing_type),
        id_number=id_number,
        insured_region=insured,
        treatment_region=treatment,
        valid_from=_date(valid_from),
        valid_until=_date(valid_until) if valid_until else None,
        created_at=_at(created),
        state=FilingState(state),
        cancel_reason=reason,
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


# ------------------------------------------------------------------------------------------ the national interface


def _entry_row(e: CatalogueEntry) -> list[Any]:
    return [e.code, e.name, int(e.catalogue_class), e.self_pay_percent, e.category]


def _entry_of(row: list[Any]) -> CatalogueEntry:
    code, name, klass, percent, category = row
    return CatalogueEntry(code, name, CatalogueClass(klass), percent, category)


def visit_to_bytes(v: Visit, cipher: FieldCipher) -> bytes:
    """A stay as kept under its key: ``<version>|`` and its compact JSON, sealed whole (it names the person)."""
    doc = [
        v.visit_id, v.msgid, v.fingerprint, v.hospital_code, v.hospital_level, v.treatment_region, v.insured_region,
        v.person_number, v.id_number, v.name, int(v.credential_type), v.insurance_type.value, v.medical_type.value,
        _us(v.begin), _us(v.opened_at), int(v.emergency), v.state.value,
        [[d.serial, d.batch, _entry_row(d.entry), d.count, d.price, d.amount_fen, d.occurred, d.msgid]
         for d in v.details],
        [[c.msgid, c.settlement_id, list(c.serials), c.claimed_ms] for c in v.claims],
    ]  # fmt: skip
    sealed = cipher.encrypt(orjson.dumps(doc).decode(), context=f"stay:{v.visit_id}")
    return f"{v.version}|".encode() + sealed.encode()


def visit_from_bytes(raw: bytes, cipher: FieldCipher, visit_id: str) -> Visit:
    version, sealed = raw.split(b"|", 1)
    doc = orjson.loads(cipher.decrypt(sealed.decode(), context=f"stay:{visit_id}"))
    (vid, msgid, fingerprint, hospital, level, treatment, insured, psn_no, id_number, name, credential, insurance,
     medical, begin, opened, emergency, state, details, claims) = doc  # fmt: skip
    return Visit(
        visit_id=vid,
        msgid=msgid,
        fingerprint=fingerprint,
        hospital_code=hospital,
        hospital_level=level,
        treatment_region=treatment,
        insured_region=insured,
        person_number=psn_no,
        id_number=id_number,
        name=name,
        credential_type=CredentialType(credential),
        insurance_type=InsuranceType(insurance),
        medical_type=MedicalType(medical),
        begin=_at(begin),
        opened_at=_at(opened),
        emergency=bool(emergency),
        state=VisitState(state),
        details=tuple(
            FeeDetail(sn, batch, _entry_of(entry), count, price, amount, occurred, dmsg)
            for sn, batch, entry, count, price, amount, occurred, dmsg in details
        ),
        claims=tuple(SettleClaim(m, sid, tuple(serials), at) for m, sid, serials, at in claims),
        version=int(version),
    )


def person_to_text(p: InsuredPerson, cipher: FieldCipher) -> str:
    doc = [
        p.person_number, p.id_number, p.name, p.gender, _day(p.birthday) if p.birthday else 0, p.insured_region,
        [[i.insurance_type, i.balance_fen, i.person_type, i.insured_region, int(i.active),
          _day(i.since) if i.since else 0] for i in p.insurances],
    ]  # fmt: skip
    return cipher.encrypt(orjson.dumps(doc).decode(), context=f"psn:{p.person_number}")


def person_from_text(raw: bytes, cipher: FieldCipher, psn_no: str) -> InsuredPerson:
    number, id_number, name, gender, birthday, region, lines = orjson.loads(
        cipher.decrypt(raw.decode(), context=f"psn:{psn_no}")
    )
    return InsuredPerson(
        person_number=number,
        id_number=id_number,
        name=name,
        gender=gender,
        birthday=_date(birthday) if birthday else None,
        insured_region=region,
        insurances=tuple(
            Insurance(t, balance, kind, where, bool(active), _date(since) if since else None)
            for t, balance, kind, where, active, since in lines
        ),
    )


def settlement_state(raw: bytes) -> SettlementState:
    """A stored settlement's state, without opening the bill."""
    _, _, body = raw.split(b"|", 2)
    return SettlementState(orjson.loads(body)[1])
