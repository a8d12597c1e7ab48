"""Continuity of medical insurance across a transfer (医保办发〔2021〕43号).

* Employee or resident medical moving between regions: a gap of ``max_gap_months`` (3) or less between the end
  of enrolment at the old region and the start at the new one keeps the enrolment continuous: the missed months
  may be paid, and benefits continue. A longer gap lets the new region apply a waiting period (待遇等待期) of up
  to six months: each region sets its own (``waiting_months``, default 6).
* Between employee and resident medical insurance, continuity needs the continuous enrolment the region sets
  (``enrolment_months``, default 24) and a gap of three months or less.

The figures are the new (target) region's; regions not named keep the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.domain.transfer.model import Circumstances, Kind, MedicalContinuity

__all__ = ["MedicalContinuityRules", "continuity_of"]

CONTINUITY_KINDS = frozenset({Kind.EMPLOYEE_MEDICAL, Kind.RESIDENT_MEDICAL, Kind.EMPLOYEE_RESIDENT_MEDICAL})


@dataclass(frozen=True)
class MedicalContinuityRules:
    max_gap_months: int = 3
    default_waiting_months: int = 6
    waiting_months: Mapping[str, int] = field(default_factory=dict)
    """By target region: the waiting period after a longer gap (at most 6 by 43号)."""
    default_enrolment_months: int = 24
    enrolment_months: Mapping[str, int] = field(default_factory=dict)
    """By target region: the continuous enrolment employee <-> resident continuity needs."""

    def waiting_for(self, region: str) -> int:
        return self.waiting_months.get(region, self.default_waiting_months)

    def enrolment_for(self, region: str) -> int:
        return self.enrolment_months.get(region, self.default_enrolment_months)


def continuity_of(
    kind: Kind, target_region: str, circumstances: Circumstances, rules: MedicalContinuityRules
) -> MedicalContinuity | None:
    """The continuity outcome of a medical transfer, or None for kinds it does not concern."""
    if kind not in CONTINUITY_KINDS:
        return None
    gap = circumstances.gap_months
    short_gap = gap <= rules.max_gap_months
    if kind is Kind.EMPLOYEE_RESIDENT_MEDICAL:
        needed = rules.enrolment_for(target_region)
        enrolled = circumstances.continuous_enrolment_months
        continuous = short_gap and enrolled >= needed
        why = f"continuous enrolment {enrolled} months (needs {needed}), gap {gap} months"
    else:
        continuous = short_gap
        why = f"gap {gap} months"
    if continuous:
        pay = f"; the {gap} missed months may be paid" if gap else ""
        return MedicalContinuity(True, 0, gap, f"continuity kept: {why}{pay} (医保办发〔2021〕43号)")
    waiting = rules.waiting_for(target_region)
    limit = f"over {rules.max_gap_months}" if not short_gap else "within the gap limit, but too short an enrolment"
    return MedicalContinuity(
        False,
        waiting,
        0,
        f"continuity not kept: {why} ({limit}); {target_region} applies a waiting period of {waiting} months "
        "(医保办发〔2021〕43号)",
    )
