"""Domain records to and from the JSON and stream fields kept in Redis."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from gateway.domain import idnumber
from gateway.domain.transfer.model import (
    AgencyKey,
    AgencyType,
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
