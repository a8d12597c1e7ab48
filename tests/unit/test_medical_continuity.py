"""Medical continuity across a transfer (医保办发〔2021〕43号): gaps of three months or less keep it; longer gaps
allow a waiting period of up to six months; employee <-> resident also needs the region's enrolment months."""

from __future__ import annotations

import pytest

from gateway.domain.transfer.medical import MedicalContinuityRules, continuity_of
from gateway.domain.transfer.model import Circumstances, Kind

RULES = MedicalContinuityRules()


@pytest.mark.parametrize("kind", [Kind.EMPLOYEE_MEDICAL, Kind.RESIDENT_MEDICAL])
@pytest.mark.parametrize(
    ("gap", "continuous", "waiting", "to_pay"), [(0, True, 0, 0), (3, True, 0, 3), (4, False, 6, 0)]
)
def test_the_gap_decides(kind: Kind, gap: int, continuous: bool, waiting: int, to_pay: int) -> None:
    outcome = continuity_of(kind, "310000", Circumstances(gap_months=gap), RULES)
    assert outcome is not None
    assert (outcome.continuous, outcome.waiting_months, outcome.months_to_pay) == (continuous, waiting, to_pay)
    assert "医保办发〔2021〕43号" in outcome.note


def test_the_waiting_period_is_the_new_regions() -> None:
    rules = MedicalContinuityRules(waiting_months={"310000": 3})
    assert continuity_of(Kind.EMPLOYEE_MEDICAL, "310000", Circumstances(gap_months=5), rules).waiting_months == 3  # type: ignore[union-attr]
    assert continuity_of(Kind.EMPLOYEE_MEDICAL, "110000", Circumstances(gap_months=5), rules).waiting_months == 6  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("enrolled", "gap", "continuous"), [(24, 0, True), (23, 0, False), (24, 3, True), (36, 4, False)]
)
def test_employee_resident_needs_enrolment_and_a_short_gap(enrolled: int, gap: int, continuous: bool) -> None:
    circumstances = Circumstances(continuous_enrolment_months=enrolled, gap_months=gap)
    outcome = continuity_of(Kind.EMPLOYEE_RESIDENT_MEDICAL, "310000", circumstances, RULES)
    assert outcome is not None and outcome.continuous is continuous
    assert outcome.waiting_months == (0 if continuous else 6)


def test_the_enrolment_months_are_the_new_regions() -> None:
    rules = MedicalContinuityRules(enrolment_months={"310000": 12})
    circumstances = Circumstances(continuous_enrolment_months=12)
    assert continuity_of(Kind.EMPLOYEE_RESIDENT_MEDICAL, "310000", circumstances, rules).continuous  # type: ignore[union-attr]
    assert not continuity_of(Kind.EMPLOYEE_RESIDENT_MEDICAL, "110000", circumstances, rules).continuous  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", [Kind.EMPLOYEE_PENSION, Kind.UNEMPLOYMENT, Kind.MILITARY_MEDICAL])
def test_other_kinds_have_no_continuity_outcome(kind: Kind) -> None:
    assert continuity_of(kind, "310000", Circumstances(gap_months=9), RULES) is None
