"""The authorisation matrix of ``gateway.domain.access``, row by row.

A caller that is no party to a transfer gets NOT_FOUND, exactly as for a missing id (no probing); a party that
may not take the action gets PERMISSION_DENIED.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.domain import access
from gateway.domain.access import Action
from gateway.domain.errors import NotFound, PermissionDenied
from gateway.domain.participants import AgencyKey, AgencyType, Participant
from gateway.domain.transfer.model import Circumstances, Kind, PensionDirection, State, Transfer

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
SOURCE, TARGET, ELSEWHERE = "110000", "310000", "440300"
HRSS, HEALTH = AgencyType.HRSS, AgencyType.HEALTHCARE_SECURITY


def transfer(
    kind: Kind = Kind.EMPLOYEE_PENSION, source: str = SOURCE, target: str = TARGET, state: State = State.SUBMITTED
) -> Transfer:
    return Transfer(
        transfer_id="T-42",
        kind=kind,
        id_number="11010519850615123X",
        name="张三",
        source_region=source,
        target_region=target,
        circumstances=Circumstances(),
        state=state,
        steps=(),
        created_at=NOW,
        updated_at=NOW,
    )


def p(text: str) -> Participant:
    return Participant.parse(text)


def allowed(actor: Participant, action: Action, t: Transfer) -> bool:
    access.check(actor, action, t)  # raises otherwise
    return True


# Callers of a Beijing -> Shanghai employee pension (HRSS line) transfer.
TARGET_AGENCY = "agency:310000:hrss"
SOURCE_AGENCY = "agency:110000:hrss"
NON_PARTIES = [
    "agency:440300:hrss",  # a third region, same line
    "agency:310000:healthcare",  # the target region's other agency
    "agency:110000:healthcare",  # the source region's other agency
    "hospital:310000:H31000000001",
    "military:JUN001",
    "portal:gov",
]
ACTING = [Action.CONTACT_LETTER, Action.TRANSFER_INFO, Action.COMPLETE, Action.REJECT, Action.CANCEL]

# The matrix: for each action, which of the two parties may take it.
MATRIX = {
    Action.CONTACT_LETTER: {TARGET_AGENCY},
    Action.TRANSFER_INFO: {SOURCE_AGENCY},
    Action.COMPLETE: {TARGET_AGENCY},
    Action.REJECT: {TARGET_AGENCY, SOURCE_AGENCY},
    Action.CANCEL: {TARGET_AGENCY},
    Action.READ: {TARGET_AGENCY, SOURCE_AGENCY},
}
PARTY_CASES = [(action, who) for action in MATRIX for who in (TARGET_AGENCY, SOURCE_AGENCY)]


@pytest.mark.parametrize(("action", "who"), PARTY_CASES, ids=[f"{a.name}-{w}" for a, w in PARTY_CASES])
def test_parties(action: Action, who: str) -> None:
    t = transfer()
    if who in MATRIX[action]:
        assert allowed(p(who), action, t)
        return
    with pytest.raises(PermissionDenied) as caught:
        access.check(p(who), action, t)
    error = caught.value
    assert error.reason == "NOT_STEP_HOLDER"
    assert error.metadata == {"transfer_id": "T-42"}
    assert who in error.message and action.value in error.message


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.name)
@pytest.mark.parametrize("who", NON_PARTIES)
def test_non_parties_are_told_not_found(action: Action, who: str) -> None:
    with pytest.raises(NotFound) as caught:
        access.check(p(who), action, transfer())
    missing = access.not_found("T-42")  # what a caller gets for an id that does not exist
    error = caught.value
    assert (error.reason, error.message, error.metadata) == (missing.reason, missing.message, missing.metadata)
    assert error.reason == "TRANSFER_NOT_FOUND"


def test_operator_reads_any_transfer() -> None:
    for kind in (Kind.EMPLOYEE_PENSION, Kind.EMPLOYEE_MEDICAL):
        assert allowed(p("operator:alice"), Action.READ, transfer(kind))


@pytest.mark.parametrize("action", ACTING, ids=lambda a: a.name)
def test_operator_may_not_act(action: Action) -> None:
    # The operator may read the transfer, so it learns nothing new from PERMISSION_DENIED.
    with pytest.raises(PermissionDenied):
        access.check(p("operator:alice"), action, transfer())


def test_medical_parties_are_the_healthcare_agencies() -> None:
    t = transfer(Kind.EMPLOYEE_MEDICAL)
    assert access.source_agency(t) == AgencyKey(SOURCE, HEALTH)
    assert access.target_agency(t) == AgencyKey(TARGET, HEALTH)
    assert allowed(p("agency:310000:healthcare"), Action.CONTACT_LETTER, t)
    assert allowed(p("agency:110000:healthcare"), Action.TRANSFER_INFO, t)
    for hrss in ("agency:310000:hrss", "agency:110000:hrss"):
        with pytest.raises(NotFound):
            access.check(p(hrss), Action.READ, t)
    with pytest.raises(PermissionDenied):
        access.check(p("agency:110000:healthcare"), Action.COMPLETE, t)


def test_unemployment_parties_are_the_hrss_agencies() -> None:
    t = transfer(Kind.UNEMPLOYMENT)
    assert (access.source_agency(t), access.target_agency(t)) == (AgencyKey(SOURCE, HRSS), AgencyKey(TARGET, HRSS))


def test_one_region_transfer_has_one_party_that_may_do_everything() -> None:
    t = transfer(Kind.INSTITUTION_ENTERPRISE_PENSION, source=TARGET, target=TARGET)
    t = replace(t, circumstances=Circumstances(direction=PensionDirection.INSTITUTION_TO_ENTERPRISE))
    for action in Action:
        if action is not Action.CREATE:
            assert allowed(p(TARGET_AGENCY), action, t)
    with pytest.raises(NotFound):
        access.check(p(SOURCE_AGENCY), Action.READ, t)


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.name)
def test_matrix_does_not_depend_on_state(state: State) -> None:
    # Whether the state allows the action is the state machine's question (WRONG_STATE), asked after access.
    t = transfer(state=state)
    assert allowed(p(SOURCE_AGENCY), Action.REJECT, t)
    with pytest.raises(PermissionDenied):
        access.check(p(SOURCE_AGENCY), Action.CANCEL, t)
    with pytest.raises(NotFound):
        access.check(p("agency:440300:hrss"), Action.READ, t)


# --- CREATE ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "who"),
    [
        (Kind.EMPLOYEE_PENSION, "agency:310000:hrss"),
        (Kind.RESIDENT_PENSION, "agency:310000:hrss"),
        (Kind.UNEMPLOYMENT, "agency:310000:hrss"),
        (Kind.WORK_INJURY, "agency:310000:hrss"),
        (Kind.EMPLOYEE_MEDICAL, "agency:310000:healthcare"),
        (Kind.EMPLOYEE_RESIDENT_MEDICAL, "agency:310000:healthcare"),
        (Kind.MATERNITY, "agency:310000:healthcare"),
    ],
)
def test_target_agency_of_the_line_creates(kind: Kind, who: str) -> None:
    access.may_create(p(who), kind, TARGET)  # does not raise


@pytest.mark.parametrize(
    ("kind", "who"),
    [
        (Kind.EMPLOYEE_PENSION, "agency:110000:hrss"),  # the source agency
        (Kind.EMPLOYEE_PENSION, "agency:310000:healthcare"),  # the target region, wrong line
        (Kind.EMPLOYEE_MEDICAL, "agency:310000:hrss"),
        (Kind.EMPLOYEE_PENSION, "operator:alice"),
        (Kind.EMPLOYEE_PENSION, "military:JUN001"),
        (Kind.EMPLOYEE_MEDICAL, "hospital:310000:H31000000001"),
        (Kind.EMPLOYEE_PENSION, "portal:gov"),
    ],
)
def test_others_may_not_create(kind: Kind, who: str) -> None:
    with pytest.raises(PermissionDenied) as caught:
        access.may_create(p(who), kind, TARGET)
    assert caught.value.reason == "NOT_TARGET_AGENCY"
    assert TARGET in caught.value.message


# --- LIST ------------------------------------------------------------------------------------------


def test_operator_lists_every_line() -> None:
    assert access.may_list(p("operator:alice"), TARGET) is None


@pytest.mark.parametrize(("who", "line"), [("agency:310000:hrss", HRSS), ("agency:310000:healthcare", HEALTH)])
def test_region_agency_lists_its_own_line(who: str, line: AgencyType) -> None:
    assert access.may_list(p(who), TARGET) is line


@pytest.mark.parametrize(
    "who",
    ["agency:110000:hrss", "agency:440300:healthcare", "hospital:310000:H31000000001", "military:JUN001", "portal:gov"],
)
def test_others_may_not_list(who: str) -> None:
    with pytest.raises(PermissionDenied) as caught:
        access.may_list(p(who), TARGET)
    assert caught.value.reason == "NOT_REGION_AGENCY"
    assert TARGET in caught.value.message
