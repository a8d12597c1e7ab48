"""The rule table: which line each kind belongs to, who may transfer, and each step's deadline.

Sources: Social Insurance Handling Regulations Arts. 12-15; 国办发〔2009〕66号 and 人社部规〔2016〕5号 (pension:
15 working days per step); 医保办发〔2021〕43号 (medical: the old region transfers out within 10 working days of
the application's acceptance, the new one takes it in within 5). Figures the rules leave open ("within the
prescribed time") are defaults in ``DeadlineRules`` that the operator may change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.domain.errors import FailedPrecondition, FieldViolation, invalid
from gateway.domain.participants import AgencyType
from gateway.domain.transfer.model import (
    MILITARY_AREA,
    Application,
    CollectionSource,
    Kind,
    Line,
    PensionDirection,
    StepName,
)

__all__ = [
    "AGENCY_OF_LINE",
    "EMPLOYEE_FUND_KINDS",
    "LINE_OF_KIND",
    "MEDICAL_KINDS",
    "MILITARY_KINDS",
    "PENSION_KINDS",
    "DeadlineRules",
    "StepDays",
    "agency_type_of",
    "check_eligibility",
    "counts_from_acceptance",
    "line_of",
]

LINE_OF_KIND: Mapping[Kind, Line] = {
    Kind.EMPLOYEE_PENSION: Line.PENSION,
    Kind.INSTITUTION_ENTERPRISE_PENSION: Line.PENSION,
    Kind.RESIDENT_PENSION: Line.PENSION,
    Kind.EMPLOYEE_MEDICAL: Line.MEDICAL,
    Kind.RESIDENT_MEDICAL: Line.MEDICAL,
    Kind.EMPLOYEE_RESIDENT_MEDICAL: Line.MEDICAL,
    Kind.UNEMPLOYMENT: Line.UNEMPLOYMENT,
    Kind.WORK_INJURY: Line.WORK_INJURY,
    Kind.MATERNITY: Line.MATERNITY,
    Kind.MILITARY_PENSION: Line.PENSION,
    Kind.MILITARY_MEDICAL: Line.MEDICAL,
    Kind.INSTITUTION_PENSION: Line.PENSION,
    Kind.PENSION_COLLECTION: Line.PENSION,
}

# Pension, unemployment and work injury: HRSS agency; medical and maternity: healthcare-security agency.
AGENCY_OF_LINE: Mapping[Line, AgencyType] = {
    Line.PENSION: AgencyType.HRSS,
    Line.UNEMPLOYMENT: AgencyType.HRSS,
    Line.WORK_INJURY: AgencyType.HRSS,
    Line.MEDICAL: AgencyType.HEALTHCARE_SECURITY,
    Line.MATERNITY: AgencyType.HEALTHCARE_SECURITY,
}

PENSION_KINDS = frozenset(
    {
        Kind.EMPLOYEE_PENSION,
        Kind.INSTITUTION_ENTERPRISE_PENSION,
        Kind.RESIDENT_PENSION,
        Kind.INSTITUTION_PENSION,
        Kind.PENSION_COLLECTION,
    }
)
# Kinds that move the employee-pension funds: the whole account balance and the pooled fund (66号 Art. 4).
EMPLOYEE_FUND_KINDS = frozenset(
    {Kind.EMPLOYEE_PENSION, Kind.INSTITUTION_ENTERPRISE_PENSION, Kind.INSTITUTION_PENSION, Kind.PENSION_COLLECTION}
)
MEDICAL_KINDS = frozenset({Kind.EMPLOYEE_MEDICAL, Kind.RESIDENT_MEDICAL, Kind.EMPLOYEE_RESIDENT_MEDICAL})
MILITARY_KINDS = frozenset({Kind.MILITARY_PENSION, Kind.MILITARY_MEDICAL})

StepDays = tuple[int, int, int]  # contact letter (or the temporary account), transfer out, transfer in

_DEFAULT_DAYS: Mapping[Kind, StepDays] = {
    Kind.EMPLOYEE_PENSION: (15, 15, 15),
    Kind.INSTITUTION_ENTERPRISE_PENSION: (15, 15, 15),
    Kind.RESIDENT_PENSION: (15, 15, 15),  # "prescribed time": unverified default
    Kind.INSTITUTION_PENSION: (15, 15, 15),
    Kind.PENSION_COLLECTION: (15, 15, 15),
    # 43号: out within 10 working days of the acceptance (the forwarding is inside them; see
    # DeadlineRules.medical_forwarding_days), in within 5.
    Kind.EMPLOYEE_MEDICAL: (0, 10, 5),
    Kind.RESIDENT_MEDICAL: (0, 10, 5),
    Kind.EMPLOYEE_RESIDENT_MEDICAL: (0, 10, 5),
    Kind.UNEMPLOYMENT: (15, 15, 15),  # "prescribed time": unverified default
    # Military transfers (Art. 17) arrive with their funds: only the civilian agency's step is left, with half
    # the ordinary time (rounded up): priority service.
    Kind.MILITARY_PENSION: (0, 0, 8),
    Kind.MILITARY_MEDICAL: (0, 0, 3),
}


@dataclass(frozen=True)
class DeadlineRules:
    """Working days allowed per step, by kind. Override any kind from configuration."""

    days: Mapping[Kind, StepDays] = field(default_factory=dict)
    """Overrides by kind; a kind not named keeps its default."""
    medical_forwarding_days: int = 0
    """Medical: working days allowed to forward the application to the old region (43号 sets none, so 0); the
    old region's 10 days count from the acceptance, after this allowance."""

    def working_days(self, kind: Kind, step: StepName) -> int:
        """The working days of ``step``; for a medical transfer-out, counted from the acceptance (see
        :meth:`counts_from_acceptance`)."""
        index = StepName.CONTACT_LETTER if step is StepName.TEMPORARY_ACCOUNT else step
        days = self.days.get(kind, _DEFAULT_DAYS[kind])[index - 1]
        if kind in MEDICAL_KINDS and step in (StepName.CONTACT_LETTER, StepName.TRANSFER_OUT):
            days += self.medical_forwarding_days
        return days

    def counts_from_acceptance(self, kind: Kind, step: StepName) -> bool:
        return counts_from_acceptance(kind, step)


def counts_from_acceptance(kind: Kind, step: StepName) -> bool:
    """Whether the step's deadline counts from the application's acceptance rather than the step's start: a
    medical transfer-out (43号: the old region transfers within 10 working days of the acceptance)."""
    return kind in MEDICAL_KINDS and step is StepName.TRANSFER_OUT


def line_of(kind: Kind) -> Line:
    return LINE_OF_KIND[kind]


def agency_type_of(kind: Kind) -> AgencyType:
    return AGENCY_OF_LINE[LINE_OF_KIND[kind]]


def check_eligibility(app: Application, known_regions: frozenset[str]) -> str:
    """Raise when the rules forbid this transfer; return a note for the timeline otherwise."""
    military = app.kind in MILITARY_KINDS
    if military and app.source_region != MILITARY_AREA:
        raise invalid([FieldViolation("source_region", f"a military transfer leaves area {MILITARY_AREA}")])
    if not military and app.source_region == MILITARY_AREA:
        raise invalid([FieldViolation("kind", f"transfers from area {MILITARY_AREA} are military kinds")])
    if military and app.military is None:
        raise invalid([FieldViolation("military", "required for a military transfer (Art. 17)")])
    unknown = [
        FieldViolation(name, f"unknown region {code}")
        for name, code in (("source_region", app.source_region), ("target_region", app.target_region))
        if code not in known_regions and not (name == "source_region" and military)
    ]
    if unknown:
        raise invalid(unknown, reason="UNKNOWN_REGION")
    if military:
        assert app.military is not None
        who = "accompanying spouse" if app.military.spouse else "discharged service member"
        return f"military transfer (Art. 17) for a {who}: {app.military.service_months} months of service count"
    if app.kind in (Kind.WORK_INJURY, Kind.MATERNITY):
        line = "work-injury" if app.kind is Kind.WORK_INJURY else "maternity"
        raise FailedPrecondition(
            reason="NOT_TRANSFERABLE",
            message=f"{line} insurance is not transferred between regions (Art. 15): enrol the person in "
            f"{line} insurance at the new region {app.target_region}",
            metadata={"article": "15", "enrol_region": app.target_region},
        )
    circ = app.circumstances
    if app.kind is Kind.PENSION_COLLECTION and circ.collection_source is CollectionSource.UNSPECIFIED:
        raise invalid([FieldViolation("circumstances.collection_source", "required for a pension collection")])
    if app.source_region == app.target_region and app.kind is not Kind.INSTITUTION_ENTERPRISE_PENSION:
        raise FailedPrecondition(
            reason="SAME_REGION",
            message="source and target region are the same; only institution <-> enterprise pension "
            "transfers happen inside one region (Art. 12 ¶2)",
        )
    if app.kind is Kind.INSTITUTION_ENTERPRISE_PENSION and circ.direction is PensionDirection.UNSPECIFIED:
        raise invalid(
            [FieldViolation("circumstances.direction", "required for an institution <-> enterprise pension transfer")]
        )
    if app.kind is Kind.RESIDENT_PENSION:
        if circ.drawing_benefits:
            raise FailedPrecondition(
                reason="BENEFITS_STARTED",
                message="a resident pension that is already being paid never moves (Art. 12 ¶3)",
                metadata={"article": "12"},
            )
        if not circ.hukou_moved:
            raise FailedPrecondition(
                reason="HUKOU_NOT_MOVED",
                message="a resident pension moves only with a hukou move (Art. 12 ¶3)",
                metadata={"article": "12"},
            )
    if app.kind is Kind.EMPLOYEE_MEDICAL and circ.retired:
        raise FailedPrecondition(
            reason="RETIREE_EXCLUDED",
            message="a retiree's employee medical insurance is not transferred (Art. 13 ¶1)",
            metadata={"article": "13"},
        )
    if app.kind is Kind.RESIDENT_MEDICAL and not (circ.hukou_moved or circ.residence_changed):
        raise FailedPrecondition(
            reason="NO_GROUND_FOR_TRANSFER",
            message="resident medical insurance moves on a hukou move or a change of habitual residence (Art. 13 ¶2)",
            metadata={"article": "13"},
        )
    if app.kind is Kind.UNEMPLOYMENT and circ.drawing_benefits:
        return "drawing benefits: remaining benefit, medical subsidy and training subsidies move too (Art. 14)"
    return ""
