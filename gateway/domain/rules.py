"""The rule table: which line each kind belongs to, who may transfer, and each step's deadline.

Sources: Social Insurance Handling Regulations Arts. 12-15; 国办发〔2009〕66号 and 人社部规〔2016〕5号 (pension:
15 working days per step); 医保办发〔2021〕43号 (medical: 10 working days out, 5 in). Figures the rules leave
open ("within the prescribed time") are defaults in ``DeadlineRules`` that the operator may change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.domain.model import MILITARY_AREA, AgencyType, Application, Kind, Line, PensionDirection, StepName
from gateway.errors import FailedPrecondition, FieldViolation, invalid

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
}

# Pension, unemployment and work injury: HRSS agency; medical and maternity: healthcare-security agency.
AGENCY_OF_LINE: Mapping[Line, AgencyType] = {
    Line.PENSION: AgencyType.HRSS,
    Line.UNEMPLOYMENT: AgencyType.HRSS,
    Line.WORK_INJURY: AgencyType.HRSS,
    Line.MEDICAL: AgencyType.HEALTHCARE_SECURITY,
    Line.MATERNITY: AgencyType.HEALTHCARE_SECURITY,
}

PENSION_KINDS = frozenset({Kind.EMPLOYEE_PENSION, Kind.INSTITUTION_ENTERPRISE_PENSION, Kind.RESIDENT_PENSION})
MEDICAL_KINDS = frozenset({Kind.EMPLOYEE_MEDICAL, Kind.RESIDENT_MEDICAL, Kind.EMPLOYEE_RESIDENT_MEDICAL})
MILITARY_KINDS = frozenset({Kind.MILITARY_PENSION, Kind.MILITARY_MEDICAL})

# Continuity of employee <-> resident medical needs this much continuous enrolment (DESIGN.md §2, Art. 13 ¶3).
CONTINUITY_MONTHS = 24

StepDays = tuple[int, int, int]  # contact letter, transfer out, transfer in

_DEFAULT_DAYS: Mapping[Kind, StepDays] = {
    Kind.EMPLOYEE_PENSION: (15, 15, 15),
    Kind.INSTITUTION_ENTERPRISE_PENSION: (15, 15, 15),
    Kind.RESIDENT_PENSION: (15, 15, 15),  # "prescribed time": unverified default
    # The national platform forwards the request on acceptance; 43号 sets no separate limit for it, so sigw
    # allows one working day. Out 10, in 5 as 43号 sets them.
    Kind.EMPLOYEE_MEDICAL: (1, 10, 5),
    Kind.RESIDENT_MEDICAL: (1, 10, 5),
    Kind.EMPLOYEE_RESIDENT_MEDICAL: (1, 10, 5),
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

    def working_days(self, kind: Kind, step: StepName) -> int:
        return self.days.get(kind, _DEFAULT_DAYS[kind])[step - 1]


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
    if app.kind is Kind.EMPLOYEE_RESIDENT_MEDICAL:
        kept = circ.continuous_enrolment_months >= CONTINUITY_MONTHS
        return (
            f"continuous enrolment {circ.continuous_enrolment_months} months: continuity "
            f"{'kept' if kept else 'not kept (needs 24)'}"
        )
    if app.kind is Kind.UNEMPLOYMENT and circ.drawing_benefits:
        return "drawing benefits: remaining benefit, medical subsidy and training subsidies move too (Art. 14)"
    return ""
