"""The rule table: eligibility per kind (docs/design.md §2), routing by line, and step deadlines."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.errors import FailedPrecondition, InvalidArgument
from gateway.domain.participants import AgencyType, Participant
from gateway.domain.transfer.kinds import (
    MEDICAL_KINDS,
    MILITARY_KINDS,
    PENSION_KINDS,
    DeadlineRules,
    agency_type_of,
    check_eligibility,
    line_of,
)
from gateway.domain.transfer.machine import Policy, open_transfer
from gateway.domain.transfer.model import (
    Application,
    Circumstances,
    CollectionSource,
    Kind,
    Line,
    PensionDirection,
    StepName,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)  # Monday 2026-03-02 09:00
BEIJING, SHANGHAI_REGION, SHENZHEN = "110000", "310000", "440300"
KNOWN = frozenset({BEIJING, SHANGHAI_REGION, SHENZHEN, "510100"})
CAL = WorkingDayCalendar()
ALL_KINDS = tuple(k for k in Kind if k not in MILITARY_KINDS)
# Civilian kinds; the military ones (Art. 17) have tests of their own.
TRANSFERABLE = tuple(k for k in Kind if k not in (Kind.WORK_INJURY, Kind.MATERNITY, *MILITARY_KINDS))

# Circumstances under which each transferable kind is allowed, used where a test is about something else.
ELIGIBLE = {
    Kind.EMPLOYEE_PENSION: Circumstances(),
    Kind.INSTITUTION_ENTERPRISE_PENSION: Circumstances(direction=PensionDirection.INSTITUTION_TO_ENTERPRISE),
    Kind.RESIDENT_PENSION: Circumstances(hukou_moved=True),
    Kind.EMPLOYEE_MEDICAL: Circumstances(),
    Kind.RESIDENT_MEDICAL: Circumstances(hukou_moved=True),
    Kind.EMPLOYEE_RESIDENT_MEDICAL: Circumstances(continuous_enrolment_months=36),
    Kind.UNEMPLOYMENT: Circumstances(),
    Kind.INSTITUTION_PENSION: Circumstances(),
    Kind.PENSION_COLLECTION: Circumstances(collection_source=CollectionSource.RELATIONSHIP),
}


def app(kind: Kind, source: str = BEIJING, target: str = SHANGHAI_REGION, **circumstances: object) -> Application:
    circ = Circumstances(**circumstances) if circumstances else ELIGIBLE.get(kind, Circumstances())  # type: ignore[arg-type]
    return Application(
        kind=kind,
        id_number="11010519850615123X",
        name="张三",
        source_region=source,
        target_region=target,
        circumstances=circ,
    )


def refused(application: Application) -> FailedPrecondition:
    with pytest.raises(FailedPrecondition) as caught:
        check_eligibility(application, KNOWN)
    return caught.value


# --- routing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "line", "agency"),
    [
        (Kind.EMPLOYEE_PENSION, Line.PENSION, AgencyType.HRSS),
        (Kind.INSTITUTION_ENTERPRISE_PENSION, Line.PENSION, AgencyType.HRSS),
        (Kind.RESIDENT_PENSION, Line.PENSION, AgencyType.HRSS),
        (Kind.UNEMPLOYMENT, Line.UNEMPLOYMENT, AgencyType.HRSS),
        (Kind.WORK_INJURY, Line.WORK_INJURY, AgencyType.HRSS),
        (Kind.EMPLOYEE_MEDICAL, Line.MEDICAL, AgencyType.HEALTHCARE_SECURITY),
        (Kind.RESIDENT_MEDICAL, Line.MEDICAL, AgencyType.HEALTHCARE_SECURITY),
        (Kind.EMPLOYEE_RESIDENT_MEDICAL, Line.MEDICAL, AgencyType.HEALTHCARE_SECURITY),
        (Kind.MATERNITY, Line.MATERNITY, AgencyType.HEALTHCARE_SECURITY),
    ],
)
def test_routing_by_line(kind: Kind, line: Line, agency: AgencyType) -> None:
    assert line_of(kind) is line
    assert agency_type_of(kind) is agency


def test_kind_groups() -> None:
    assert {line_of(k) for k in PENSION_KINDS} == {Line.PENSION}
    assert {line_of(k) for k in MEDICAL_KINDS} == {Line.MEDICAL}
    assert len(PENSION_KINDS) == 5 and len(MEDICAL_KINDS) == 3


def test_agency_slugs_round_trip() -> None:
    assert AgencyType.HRSS.slug == "hrss"
    assert AgencyType.HEALTHCARE_SECURITY.slug == "healthcare"
    for member in AgencyType:
        assert AgencyType.from_slug(member.slug) is member
    with pytest.raises(ValueError):
        AgencyType.from_slug("medical")


# --- eligibility: the plain cases ------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.EMPLOYEE_PENSION, Kind.EMPLOYEE_MEDICAL, Kind.UNEMPLOYMENT])
def test_moves_with_the_person_without_a_note(kind: Kind) -> None:
    assert check_eligibility(app(kind), KNOWN) == ""


@pytest.mark.parametrize(("kind", "line"), [(Kind.WORK_INJURY, "work-injury"), (Kind.MATERNITY, "maternity")])
def test_work_injury_and_maternity_never_transfer(kind: Kind, line: str) -> None:
    error = refused(app(kind, target=SHENZHEN))
    assert error.reason == "NOT_TRANSFERABLE"
    assert f"enrol the person in {line} insurance at the new region {SHENZHEN}" in error.message
    assert "Art. 15" in error.message
    assert error.metadata == {"article": "15", "enrol_region": SHENZHEN}


@pytest.mark.parametrize("kind", [Kind.WORK_INJURY, Kind.MATERNITY])
def test_not_transferable_wins_over_same_region(kind: Kind) -> None:
    assert refused(app(kind, source=BEIJING, target=BEIJING)).reason == "NOT_TRANSFERABLE"


@pytest.mark.parametrize("kind", [k for k in TRANSFERABLE if k is not Kind.INSTITUTION_ENTERPRISE_PENSION])
def test_same_region_refused(kind: Kind) -> None:
    error = refused(app(kind, source=SHANGHAI_REGION, target=SHANGHAI_REGION))
    assert error.reason == "SAME_REGION"
    assert "Art. 12 ¶2" in error.message


@pytest.mark.parametrize(
    "direction", [PensionDirection.INSTITUTION_TO_ENTERPRISE, PensionDirection.ENTERPRISE_TO_INSTITUTION]
)
@pytest.mark.parametrize("target", [BEIJING, SHANGHAI_REGION])
def test_institution_enterprise_moves_inside_and_across_regions(direction: PensionDirection, target: str) -> None:
    assert (
        check_eligibility(
            app(Kind.INSTITUTION_ENTERPRISE_PENSION, source=BEIJING, target=target, direction=direction), KNOWN
        )
        == ""
    )


@pytest.mark.parametrize("target", [BEIJING, SHANGHAI_REGION])
def test_institution_enterprise_needs_a_direction(target: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_eligibility(
            app(
                Kind.INSTITUTION_ENTERPRISE_PENSION,
                source=BEIJING,
                target=target,
                direction=PensionDirection.UNSPECIFIED,
            ),
            KNOWN,
        )
    assert [v.field for v in caught.value.violations] == ["circumstances.direction"]
    assert caught.value.reason == "INVALID_ARGUMENT"


# --- eligibility: resident pension, medical --------------------------------------------------------


def test_resident_pension_moves_with_hukou_before_benefits() -> None:
    assert check_eligibility(app(Kind.RESIDENT_PENSION, hukou_moved=True), KNOWN) == ""


@pytest.mark.parametrize("hukou_moved", [True, False])
def test_resident_pension_never_moves_once_paid(hukou_moved: bool) -> None:
    error = refused(app(Kind.RESIDENT_PENSION, drawing_benefits=True, hukou_moved=hukou_moved))
    assert error.reason == "BENEFITS_STARTED"
    assert error.metadata["article"] == "12"


@pytest.mark.parametrize("residence_changed", [True, False])
def test_resident_pension_needs_a_hukou_move(residence_changed: bool) -> None:
    error = refused(app(Kind.RESIDENT_PENSION, residence_changed=residence_changed))
    assert error.reason == "HUKOU_NOT_MOVED"


def test_employee_medical_excludes_retirees() -> None:
    error = refused(app(Kind.EMPLOYEE_MEDICAL, retired=True))
    assert error.reason == "RETIREE_EXCLUDED"
    assert error.metadata["article"] == "13"


@pytest.mark.parametrize("kind", [Kind.EMPLOYEE_PENSION, Kind.UNEMPLOYMENT])
def test_retirement_only_matters_for_employee_medical(kind: Kind) -> None:
    assert check_eligibility(app(kind, retired=True), KNOWN) == ""


@pytest.mark.parametrize(("hukou_moved", "residence_changed"), [(True, False), (False, True), (True, True)])
def test_resident_medical_moves_on_hukou_or_residence(hukou_moved: bool, residence_changed: bool) -> None:
    application = app(Kind.RESIDENT_MEDICAL, hukou_moved=hukou_moved, residence_changed=residence_changed)
    assert check_eligibility(application, KNOWN) == ""


def test_resident_medical_needs_a_ground() -> None:
    error = refused(app(Kind.RESIDENT_MEDICAL, retired=True, drawing_benefits=True))
    assert error.reason == "NO_GROUND_FOR_TRANSFER"
    assert "Art. 13 ¶2" in error.message


def test_continuity_outcome_reaches_the_timeline() -> None:
    """医保办发〔2021〕43号: employee <-> resident continuity needs the region's enrolment (default 24 months)."""
    actor = Participant.parse("agency:310000:healthcare")
    decision = open_transfer(
        app(Kind.EMPLOYEE_RESIDENT_MEDICAL, continuous_enrolment_months=23),
        "T1",
        actor,
        MONDAY,
        Policy(calendar=CAL, known_regions=KNOWN),
    )
    assert decision.transfer.continuity is not None and not decision.transfer.continuity.continuous
    assert decision.event.note == (
        "application accepted; continuity not kept: continuous enrolment 23 months (needs 24), gap 0 months "
        "(within the gap limit, but too short an enrolment); 310000 applies a waiting period of 6 months "
        "(医保办发〔2021〕43号)"
    )


def test_a_collection_needs_its_source() -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_eligibility(app(Kind.PENSION_COLLECTION, hukou_moved=False), KNOWN)
    assert [v.field for v in caught.value.violations] == ["circumstances.collection_source"]


def test_unemployment_while_drawing_benefits_moves_the_benefits() -> None:
    note = check_eligibility(app(Kind.UNEMPLOYMENT, drawing_benefits=True), KNOWN)
    assert "remaining benefit, medical subsidy and training subsidies move too" in note
    assert "Art. 14" in note


# --- eligibility: regions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "fields"),
    [
        ("999999", SHANGHAI_REGION, ["source_region"]),
        (BEIJING, "999999", ["target_region"]),
        ("999998", "999999", ["source_region", "target_region"]),
    ],
)
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_unknown_regions(kind: Kind, source: str, target: str, fields: list[str]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_eligibility(app(kind, source=source, target=target), KNOWN)
    error = caught.value
    assert error.reason == "UNKNOWN_REGION"
    assert [v.field for v in error.violations] == fields
    for v in error.violations:
        assert v.description.startswith("unknown region 99999")
    assert all(f in error.message for f in fields)


@pytest.mark.parametrize("kind", TRANSFERABLE)
def test_every_transferable_kind_passes_when_eligible(kind: Kind) -> None:
    check_eligibility(app(kind), KNOWN)  # does not raise


# --- deadlines -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "days"),
    [
        (Kind.EMPLOYEE_PENSION, (15, 15, 15)),
        (Kind.INSTITUTION_ENTERPRISE_PENSION, (15, 15, 15)),
        (Kind.RESIDENT_PENSION, (15, 15, 15)),
        (Kind.UNEMPLOYMENT, (15, 15, 15)),
        (Kind.INSTITUTION_PENSION, (15, 15, 15)),
        (Kind.PENSION_COLLECTION, (15, 15, 15)),
        # 医保办发〔2021〕43号: out within 10 working days of the acceptance, no separate forwarding allowance, in 5.
        (Kind.EMPLOYEE_MEDICAL, (0, 10, 5)),
        (Kind.RESIDENT_MEDICAL, (0, 10, 5)),
        (Kind.EMPLOYEE_RESIDENT_MEDICAL, (0, 10, 5)),
    ],
)
def test_default_step_days(kind: Kind, days: tuple[int, int, int]) -> None:
    rules = DeadlineRules()
    steps = (StepName.CONTACT_LETTER, StepName.TRANSFER_OUT, StepName.TRANSFER_IN)
    assert tuple(rules.working_days(kind, step) for step in steps) == days


def test_deadlines_are_overridable() -> None:
    rules = DeadlineRules(days={**DeadlineRules().days, Kind.UNEMPLOYMENT: (20, 7, 3)})
    assert rules.working_days(Kind.UNEMPLOYMENT, StepName.CONTACT_LETTER) == 20
    assert rules.working_days(Kind.UNEMPLOYMENT, StepName.TRANSFER_OUT) == 7
    assert rules.working_days(Kind.UNEMPLOYMENT, StepName.TRANSFER_IN) == 3
    assert rules.working_days(Kind.EMPLOYEE_PENSION, StepName.TRANSFER_OUT) == 15
    assert DeadlineRules().working_days(Kind.UNEMPLOYMENT, StepName.CONTACT_LETTER) == 15  # default untouched


def test_overridden_deadline_drives_the_due_date() -> None:
    policy = Policy(
        calendar=CAL,
        known_regions=KNOWN,
        deadlines=DeadlineRules(days={**DeadlineRules().days, Kind.EMPLOYEE_PENSION: (5, 15, 15)}),
    )
    decision = open_transfer(app(Kind.EMPLOYEE_PENSION), "T1", Participant.parse("agency:310000:hrss"), MONDAY, policy)
    step = decision.transfer.steps[0]
    assert (step.working_days, step.due) == (5, date(2026, 3, 9))  # Tue..Fri is 4, Mon 03-09 is the 5th


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (date(2026, 3, 2), 15, date(2026, 3, 23)),  # Mon; 3 full weeks of 5, no holiday in March 2026
        (date(2026, 3, 2), 1, date(2026, 3, 3)),
        (date(2026, 3, 6), 1, date(2026, 3, 9)),  # Fri -> Mon
        (date(2026, 3, 3), 10, date(2026, 3, 17)),
        # National Day 2026: Oct 1-7 off, Sun Sep 20 and Sat Oct 10 swapped workdays.
        (date(2026, 9, 18), 1, date(2026, 9, 20)),  # Fri -> the swapped Sunday
        (date(2026, 9, 30), 1, date(2026, 10, 8)),  # Wed -> Thu after the holiday
        (date(2026, 9, 30), 3, date(2026, 10, 10)),  # Oct 8, Oct 9, Sat Oct 10
        # Oct 8, 9, 10 (3); 12-16 (8); 19-23 (13); 26 (14); Tue 27 (15)
        (date(2026, 9, 30), 15, date(2026, 10, 27)),
    ],
)
def test_due_dates_by_hand(start: date, days: int, due: date) -> None:
    deadline = CAL.add_working_days(start, days)
    assert deadline.due == due
    assert not deadline.provisional


def test_step_reaching_an_unknown_year_is_provisional() -> None:
    # chinesecalendar knows 2026 but not 2027 (pinned in test_calendar): weekends only from 2027-01-01.
    # Sun 12-20: 21-25 (5), 28-31 (9), Fri 2027-01-01 (10, a holiday nobody told us about), 4-8 (15).
    policy = Policy(calendar=CAL, known_regions=KNOWN)
    start = datetime(2026, 12, 20, 10, 0, tzinfo=SHANGHAI)
    pension = open_transfer(app(Kind.EMPLOYEE_PENSION), "T1", Participant.parse("agency:310000:hrss"), start, policy)
    assert pension.transfer.steps[0].due == date(2027, 1, 8)
    assert pension.transfer.steps[0].provisional
    # A medical forwarding step (no allowance, 43号) started the same day stays inside 2026 and is firm.
    medical = open_transfer(
        app(Kind.EMPLOYEE_MEDICAL), "T2", Participant.parse("agency:310000:healthcare"), start, policy
    )
    assert medical.transfer.steps[0].due == date(2026, 12, 20)
    assert not medical.transfer.steps[0].provisional
