"""The transfer state machine: steps, holders, deadlines, versions, timeline events, notices, funds checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.model import (
    AgencyKey,
    AgencyType,
    Application,
    Circumstances,
    Decision,
    Kind,
    NoticeType,
    PensionDirection,
    State,
    Step,
    StepName,
    Transfer,
    TransferInfo,
)
from gateway.domain.participants import Participant
from gateway.domain.pension import DEFAULT_RULES, ContributionYear, compute_funds
from gateway.domain.transfers import (
    Policy,
    cancel,
    complete,
    funds_violations,
    open_transfer,
    refuse_transfer_info,
    reject,
    send_contact_letter,
    send_transfer_info,
)
from gateway.errors import FailedPrecondition, InvalidArgument, PermissionDenied

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)  # Monday
T1 = datetime(2026, 3, 4, 10, 0, tzinfo=SHANGHAI)  # Wednesday
T2 = datetime(2026, 3, 9, 11, 0, tzinfo=SHANGHAI)  # Monday
T3 = datetime(2026, 3, 12, 15, 0, tzinfo=SHANGHAI)  # Thursday

SOURCE, TARGET = "110000", "310000"
POLICY = Policy(calendar=WorkingDayCalendar(), known_regions=frozenset({SOURCE, TARGET, "440300", "510100"}))
CY = ContributionYear

# 2005: 500_000 x 12 x 12% = 720_000; 2006: 600_000 x 12 x 12% = 864_000; 2015 (6 months): 576_000.
RECORD = (CY(2005, 1, 12, 500_000), CY(2006, 1, 12, 600_000), CY(2015, 1, 6, 800_000))
RECORD_POOLED = 2_160_000
# Account caps: 2005 11% = 660_000; 2006 8% = 576_000; 2015 8% for 6 months = 384_000.
RECORD_CAP = 1_620_000


def agency(region: str, agency_type: AgencyType = AgencyType.HRSS) -> Participant:
    return Participant.agency_of(AgencyKey(region, agency_type))


def key(region: str, kind: Kind = Kind.EMPLOYEE_PENSION) -> AgencyKey:
    medical = kind in (Kind.EMPLOYEE_MEDICAL, Kind.RESIDENT_MEDICAL, Kind.EMPLOYEE_RESIDENT_MEDICAL)
    return AgencyKey(region, AgencyType.HEALTHCARE_SECURITY if medical else AgencyType.HRSS)


def application(
    kind: Kind = Kind.EMPLOYEE_PENSION,
    circumstances: Circumstances | None = None,
    source: str = SOURCE,
    target: str = TARGET,
) -> Application:
    return Application(
        kind=kind,
        id_number="11010519850615123X",
        name="张三",
        source_region=source,
        target_region=target,
        circumstances=circumstances or Circumstances(),
    )


def pension_info(
    years: tuple[ContributionYear, ...] = RECORD, balance: int = 1_500_000, *, institution: bool = False
) -> TransferInfo:
    funds = compute_funds(years, balance, institution_to_enterprise=institution)
    return TransferInfo(
        table_number="XB-2026-001",
        individual_account_fen=funds.individual_account_fen,
        pooled_fund_fen=funds.pooled_fund_fen,
        contributions=years,
        funds_fen=funds.total_fen,
    )


def opened(
    kind: Kind = Kind.EMPLOYEE_PENSION, circumstances: Circumstances | None = None, source: str = SOURCE
) -> Transfer:
    return open_transfer(
        application(kind, circumstances, source=source), "T-1", agency_for(TARGET, kind), T0, POLICY
    ).transfer


def agency_for(region: str, kind: Kind) -> Participant:
    return Participant.agency_of(key(region, kind))


def contacted(kind: Kind = Kind.EMPLOYEE_PENSION, circumstances: Circumstances | None = None) -> Transfer:
    return send_contact_letter(opened(kind, circumstances), agency_for(TARGET, kind), T1, POLICY).transfer


def funds_sent(kind: Kind = Kind.EMPLOYEE_PENSION) -> Transfer:
    info = pension_info() if kind is Kind.EMPLOYEE_PENSION else TransferInfo()
    return send_transfer_info(contacted(kind), agency_for(SOURCE, kind), T2, POLICY, info=info).transfer


def in_state(state: State) -> Transfer:
    """An employee pension transfer (Beijing -> Shanghai) brought to ``state`` the ordinary way."""
    if state is State.SUBMITTED:
        return opened()
    if state is State.CONTACT_SENT:
        return contacted()
    if state is State.FUNDS_SENT:
        return funds_sent()
    if state is State.COMPLETED:
        return complete(funds_sent(), agency(TARGET), T3).transfer
    if state is State.REJECTED:
        return reject(opened(), agency(TARGET), T1, reason="no record").transfer
    return cancel(opened(), agency(TARGET), T1, reason="applicant withdrew").transfer


# --- the happy path --------------------------------------------------------------------------------


def test_happy_path_employee_pension() -> None:
    source, target = agency(SOURCE), agency(TARGET)
    info = pension_info()

    d1 = open_transfer(application(), "T-1", target, T0, POLICY)
    d2 = send_contact_letter(d1.transfer, target, T1, POLICY, letter_number="LXH-7")
    d3 = send_transfer_info(d2.transfer, source, T2, POLICY, info=info)
    d4 = complete(d3.transfer, target, T3)

    # states, versions and the optimistic-concurrency previous version
    assert [d.transfer.state for d in (d1, d2, d3, d4)] == [
        State.SUBMITTED,
        State.CONTACT_SENT,
        State.FUNDS_SENT,
        State.COMPLETED,
    ]
    assert [d.transfer.version for d in (d1, d2, d3, d4)] == [1, 2, 3, 4]
    assert [d.previous_version for d in (d1, d2, d3, d4)] == [0, 1, 2, 3]
    assert [d.transfer.updated_at for d in (d1, d2, d3, d4)] == [T0, T1, T2, T3]
    assert {d.transfer.created_at for d in (d1, d2, d3, d4)} == {T0}

    # timeline events
    assert [(d.event.from_state, d.event.to_state) for d in (d1, d2, d3, d4)] == [
        (None, State.SUBMITTED),
        (State.SUBMITTED, State.CONTACT_SENT),
        (State.CONTACT_SENT, State.FUNDS_SENT),
        (State.FUNDS_SENT, State.COMPLETED),
    ]
    assert [d.event.actor for d in (d1, d2, d3, d4)] == [
        "agency:310000:hrss",
        "agency:310000:hrss",
        "agency:110000:hrss",
        "agency:310000:hrss",
    ]
    assert [d.event.time for d in (d1, d2, d3, d4)] == [T0, T1, T2, T3]
    assert d1.event.note == "application accepted"
    assert d2.event.note == "contact letter LXH-7"
    assert d3.event.note == f"information table XB-2026-001 and funds {info.funds_fen} fen sent"
    assert d4.event.note == "record and account rebuilt; person notified (Art. 16)"

    # steps: holders target, source, target; each completed by the next transition
    steps = d4.transfer.steps
    assert [s.name for s in steps] == [StepName.CONTACT_LETTER, StepName.TRANSFER_OUT, StepName.TRANSFER_IN]
    assert [s.holder for s in steps] == [key(TARGET), key(SOURCE), key(TARGET)]
    assert [s.started_at for s in steps] == [T0, T1, T2]
    assert [s.completed_at for s in steps] == [T1, T2, T3]
    assert [s.working_days for s in steps] == [15, 15, 15]
    # Mon 03-02 + 15 = Mon 03-23; Wed 03-04 + 15 = Wed 03-25; Mon 03-09 + 15 = Mon 03-30
    assert [s.due for s in steps] == [date(2026, 3, 23), date(2026, 3, 25), date(2026, 3, 30)]
    assert not any(s.provisional for s in steps)
    # each decision's open step is the newest one, not yet completed
    assert d1.transfer.open_step == replace(steps[0], completed_at=None)
    assert d2.transfer.open_step == replace(steps[1], completed_at=None)
    assert d3.transfer.open_step == replace(steps[2], completed_at=None)
    assert d4.transfer.open_step is None

    # notices: who must act next is told, with the step it must act on
    assert [(n.type, n.recipient) for n in d1.notices] == [(NoticeType.TRANSFER_REQUESTED, key(TARGET))]
    assert [(n.type, n.recipient) for n in d2.notices] == [(NoticeType.CONTACT_LETTER, key(SOURCE))]
    assert [(n.type, n.recipient) for n in d3.notices] == [(NoticeType.TRANSFER_INFO, key(TARGET))]
    assert [(n.type, n.recipient) for n in d4.notices] == [(NoticeType.TRANSFER_COMPLETED, key(SOURCE))]
    assert d1.notices[0].step == d1.transfer.steps[0]
    assert d2.notices[0].step == d2.transfer.steps[1]
    assert d3.notices[0].step == d3.transfer.steps[2]
    assert d4.notices[0].step is None
    assert d2.notices[0].note == "contact letter LXH-7"
    assert d4.notices[0].note == "transfer completed: end the membership"

    # the table is kept from FUNDS_SENT on
    assert d2.transfer.info is None
    assert d3.transfer.info == info == d4.transfer.info


def test_happy_path_medical_steps_and_routing() -> None:
    kind = Kind.EMPLOYEE_MEDICAL
    target, source = agency(TARGET, AgencyType.HEALTHCARE_SECURITY), agency(SOURCE, AgencyType.HEALTHCARE_SECURITY)
    info = TransferInfo(table_number="YB-1", individual_account_fen=123_456, funds_fen=123_456)
    d1 = open_transfer(application(kind), "T-1", target, T0, POLICY)
    d2 = send_contact_letter(d1.transfer, target, datetime(2026, 3, 3, 9, 0, tzinfo=SHANGHAI), POLICY)
    d3 = send_transfer_info(d2.transfer, source, datetime(2026, 3, 17, 9, 0, tzinfo=SHANGHAI), POLICY, info=info)
    steps = d3.transfer.steps
    assert [s.working_days for s in steps] == [1, 10, 5]
    assert [s.holder.agency_type for s in steps] == [AgencyType.HEALTHCARE_SECURITY] * 3
    # Mon 03-02 + 1 = Tue 03-03; Tue 03-03 + 10 = Tue 03-17; Tue 03-17 + 5 = Tue 03-24
    assert [s.due for s in steps] == [date(2026, 3, 3), date(2026, 3, 17), date(2026, 3, 24)]
    assert d3.event.note == "information table YB-1 and account balance 123456 fen sent"


def test_due_date_counts_from_the_shanghai_date() -> None:
    # Sunday 17:00 UTC is already Monday 01:00 in Shanghai: count from Monday, not Sunday.
    now = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
    step = open_transfer(application(), "T-1", agency(TARGET), now, POLICY).transfer.steps[0]
    assert step.due == date(2026, 3, 23)


def test_notes_are_joined() -> None:
    d = open_transfer(replace(application(), note="walk-in"), "T-1", agency(TARGET), T0, POLICY)
    assert d.event.note == "application accepted; walk-in"
    d2 = send_contact_letter(d.transfer, agency(TARGET), T1, POLICY, note="urgent")
    assert d2.event.note == d2.notices[0].note == "contact letter; urgent"
    d3 = complete(funds_sent(), agency(TARGET), T3, note="notified by SMS")
    assert d3.event.note == "record and account rebuilt; person notified (Art. 16); notified by SMS"


def test_inputs_are_not_mutated() -> None:
    before = opened()
    send_contact_letter(before, agency(TARGET), T1, POLICY)
    assert before.state is State.SUBMITTED and before.version == 1 and len(before.steps) == 1
    assert before.steps[0].completed_at is None


def test_only_the_target_agency_opens() -> None:
    with pytest.raises(PermissionDenied) as caught:
        open_transfer(application(), "T-1", agency(SOURCE), T0, POLICY)
    assert caught.value.reason == "NOT_TARGET_AGENCY"


def test_ineligible_application_is_not_opened() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        open_transfer(application(Kind.WORK_INJURY), "T-1", agency(TARGET), T0, POLICY)
    assert caught.value.reason == "NOT_TRANSFERABLE"


# --- wrong states ----------------------------------------------------------------------------------

ACTIONS = {
    "contact letter": lambda t: send_contact_letter(t, agency(TARGET), T3, POLICY),
    "transfer info": lambda t: send_transfer_info(t, agency(SOURCE), T3, POLICY, info=pension_info()),
    "complete": lambda t: complete(t, agency(TARGET), T3),
    "reject": lambda t: reject(t, agency(TARGET), T3, reason="x"),
    "cancel": lambda t: cancel(t, agency(TARGET), T3, reason="x"),
}
ALLOWED_FROM = {
    "contact letter": {State.SUBMITTED},
    "transfer info": {State.CONTACT_SENT},
    "complete": {State.FUNDS_SENT},
    "reject": {State.SUBMITTED, State.CONTACT_SENT, State.FUNDS_SENT},
    "cancel": {State.SUBMITTED, State.CONTACT_SENT},
}
WRONG = [(action, state) for action in ACTIONS for state in State if state not in ALLOWED_FROM[action]]


@pytest.mark.parametrize(("action", "state"), WRONG, ids=[f"{a}-{s.name}" for a, s in WRONG])
def test_wrong_state(action: str, state: State) -> None:
    transfer = in_state(state)
    with pytest.raises(FailedPrecondition) as caught:
        ACTIONS[action](transfer)
    error = caught.value
    assert error.reason == "WRONG_STATE"
    assert error.metadata == {"transfer_id": "T-1", "state": state.name}
    assert state.name in error.message
    assert all(s.name in error.message for s in ALLOWED_FROM[action])


ALLOWED = [(action, state) for action in ACTIONS for state in sorted(ALLOWED_FROM[action])]


@pytest.mark.parametrize(("action", "state"), ALLOWED, ids=[f"{a}-{s.name}" for a, s in ALLOWED])
def test_allowed_states(action: str, state: State) -> None:
    decision: Decision = ACTIONS[action](in_state(state))
    assert decision.event.from_state is state
    assert decision.previous_version == in_state(state).version


# --- reject and cancel -----------------------------------------------------------------------------

OPEN_STATES = [State.SUBMITTED, State.CONTACT_SENT, State.FUNDS_SENT]


@pytest.mark.parametrize("state", OPEN_STATES)
@pytest.mark.parametrize(("actor", "other"), [(TARGET, SOURCE), (SOURCE, TARGET)])
def test_reject_from_each_open_state(state: State, actor: str, other: str) -> None:
    transfer = in_state(state)
    d = reject(transfer, agency(actor), T3, reason="no contribution record")
    assert d.transfer.state is State.REJECTED
    assert d.transfer.close_reason == "no contribution record"
    assert d.transfer.version == transfer.version + 1 and d.previous_version == transfer.version
    assert (d.event.from_state, d.event.to_state) == (state, State.REJECTED)
    assert d.event.note == "rejected: no contribution record"
    assert d.event.actor == f"agency:{actor}:hrss"
    assert [(n.type, n.recipient, n.note) for n in d.notices] == [
        (NoticeType.TRANSFER_CLOSED, key(other), "no contribution record")
    ]
    assert len(d.transfer.steps) == len(transfer.steps)  # no new step
    assert d.transfer.steps[-1].completed_at == T3  # the open step is closed
    assert d.transfer.open_step is None


def test_reject_inside_one_region_notifies_nobody() -> None:
    circ = Circumstances(direction=PensionDirection.INSTITUTION_TO_ENTERPRISE)
    transfer = opened(Kind.INSTITUTION_ENTERPRISE_PENSION, circ, source=TARGET)
    d = reject(transfer, agency(TARGET), T1, reason="duplicate")
    assert d.transfer.state is State.REJECTED
    assert d.notices == ()


def test_cancel_before_the_letter_tells_nobody() -> None:
    d = cancel(opened(), agency(TARGET), T1, reason="applicant withdrew")
    assert d.transfer.state is State.CANCELLED
    assert d.transfer.close_reason == "applicant withdrew"
    assert d.event.note == "cancelled: applicant withdrew"
    assert (d.event.from_state, d.event.to_state) == (State.SUBMITTED, State.CANCELLED)
    assert d.notices == ()
    assert d.transfer.steps[0].completed_at == T1


def test_cancel_after_the_letter_tells_the_source() -> None:
    d = cancel(contacted(), agency(TARGET), T2, reason="applicant withdrew")
    assert d.transfer.state is State.CANCELLED
    assert [(n.type, n.recipient, n.note) for n in d.notices] == [
        (NoticeType.TRANSFER_CLOSED, key(SOURCE), "applicant withdrew")
    ]
    assert [s.completed_at for s in d.transfer.steps] == [T1, T2]


@pytest.mark.parametrize("state", [State.SUBMITTED, State.CONTACT_SENT])
def test_source_may_not_cancel(state: State) -> None:
    with pytest.raises(PermissionDenied) as caught:
        cancel(in_state(state), agency(SOURCE), T3, reason="x")
    assert caught.value.reason == "NOT_STEP_HOLDER"


# --- step deadlines --------------------------------------------------------------------------------


def test_step_overdue() -> None:
    step = opened().steps[0]
    assert step.due == date(2026, 3, 23)
    assert not step.overdue(date(2026, 3, 2))
    assert not step.overdue(date(2026, 3, 23))  # the due day itself is in time
    assert step.overdue(date(2026, 3, 24))


def test_completed_step_is_judged_by_its_completion() -> None:
    step = opened().steps[0]
    in_time = replace(step, completed_at=datetime(2026, 3, 23, 23, 30, tzinfo=SHANGHAI))
    assert not in_time.overdue(date(2026, 12, 31))
    late = replace(step, completed_at=datetime(2026, 3, 24, 0, 30, tzinfo=SHANGHAI))
    assert late.overdue(date(2026, 3, 2))
    # 16:30 UTC on the due day is 00:30 the next day in Shanghai: late
    late_utc = replace(step, completed_at=datetime(2026, 3, 23, 16, 30, tzinfo=UTC))
    assert late_utc.overdue(date(2026, 3, 23))


def test_transfer_overdue_follows_the_open_step() -> None:
    transfer = opened()
    assert not transfer.overdue(date(2026, 3, 23))
    assert transfer.overdue(date(2026, 3, 24))
    late_letter = send_contact_letter(transfer, agency(TARGET), datetime(2026, 3, 25, 9, tzinfo=SHANGHAI), POLICY)
    assert late_letter.transfer.steps[0].overdue(date(2026, 3, 25))  # completed late stays late
    assert not late_letter.transfer.overdue(date(2026, 3, 25))  # but the new open step is in time
    done = complete(funds_sent(), agency(TARGET), T3).transfer
    assert not done.overdue(date(2027, 6, 1))  # an ended transfer is never overdue


def test_step_started_late_in_the_year_is_provisional() -> None:
    now = datetime(2026, 12, 20, 9, 0, tzinfo=SHANGHAI)
    step: Step = open_transfer(application(), "T-1", agency(TARGET), now, POLICY).transfer.steps[0]
    assert step.provisional
    assert step.due == date(2027, 1, 8)  # weekends only in 2027 (see test_rules)


# --- the funds check -------------------------------------------------------------------------------


def fields(
    kind: Kind,
    info: TransferInfo,
    drawing_benefits: bool = False,
    direction: PensionDirection = PensionDirection.INSTITUTION_TO_ENTERPRISE,
) -> list[str]:
    circumstances = Circumstances(drawing_benefits=drawing_benefits, direction=direction)
    return [v.field for v in funds_violations(kind, circumstances, info, DEFAULT_RULES)]


def test_pension_info_from_compute_funds_passes() -> None:
    info = pension_info()
    assert info.pooled_fund_fen == RECORD_POOLED  # the worked figure, by hand
    assert info.individual_account_fen == 1_500_000
    assert info.funds_fen == 3_660_000
    assert fields(Kind.EMPLOYEE_PENSION, info) == []


def test_pooled_fund_off_by_one_fen() -> None:
    good = pension_info()
    for delta in (1, -1):
        bad = replace(good, pooled_fund_fen=good.pooled_fund_fen + delta, funds_fen=good.funds_fen + delta)
        violations = funds_violations(Kind.EMPLOYEE_PENSION, Circumstances(), bad, DEFAULT_RULES)
        assert [v.field for v in violations] == ["info.pooled_fund_fen"]
        assert str(RECORD_POOLED) in violations[0].description


def test_funds_must_equal_the_parts() -> None:
    good = pension_info()
    bad = replace(good, funds_fen=good.funds_fen - 1)
    violations = funds_violations(Kind.EMPLOYEE_PENSION, Circumstances(), bad, DEFAULT_RULES)
    assert [v.field for v in violations] == ["info.funds_fen"]
    assert f"the table adds up to {good.funds_fen} fen" in violations[0].description


def test_account_above_the_cap() -> None:
    assert fields(Kind.EMPLOYEE_PENSION, pension_info(balance=RECORD_CAP)) == []
    over = TransferInfo(
        individual_account_fen=RECORD_CAP + 1,
        pooled_fund_fen=RECORD_POOLED,
        contributions=RECORD,
        funds_fen=RECORD_CAP + 1 + RECORD_POOLED,
    )
    violations = funds_violations(Kind.EMPLOYEE_PENSION, Circumstances(), over, DEFAULT_RULES)
    assert [v.field for v in violations] == ["info.individual_account_fen"]
    assert "by 1 fen" in violations[0].description


def test_send_transfer_info_refuses_a_mismatch() -> None:
    transfer = contacted()
    good = pension_info()
    bad = replace(good, pooled_fund_fen=good.pooled_fund_fen + 1)  # and so funds_fen no longer adds up either
    with pytest.raises(FailedPrecondition) as caught:
        send_transfer_info(transfer, agency(SOURCE), T2, POLICY, info=bad)
    error = caught.value
    assert error.reason == "FUNDS_MISMATCH"
    assert [v.field for v in error.violations] == ["info.pooled_fund_fen", "info.funds_fen"]
    assert "info.pooled_fund_fen" in error.message and "info.funds_fen" in error.message
    assert error.metadata == {"transfer_id": "T-1"}


def test_send_transfer_info_refuses_a_bad_record() -> None:
    info = replace(pension_info(), contributions=(CY(2005, 3, 2, 500_000),))
    with pytest.raises(InvalidArgument) as caught:
        send_transfer_info(contacted(), agency(SOURCE), T2, POLICY, info=info)
    assert caught.value.reason == "BAD_CONTRIBUTION_RECORD"
    assert [v.field for v in caught.value.violations] == ["info.contributions[0].last_month"]


def test_refused_info_is_recorded_without_a_state_change() -> None:
    transfer = contacted()
    error = FailedPrecondition(reason="FUNDS_MISMATCH", message="info.funds_fen: wrong")
    d = refuse_transfer_info(transfer, agency(SOURCE), T2, error)
    assert d.transfer.state is State.CONTACT_SENT
    assert d.transfer.steps == transfer.steps and d.transfer.open_step == transfer.open_step
    assert d.transfer.version == transfer.version + 1 and d.previous_version == transfer.version
    assert d.transfer.updated_at == T2 and d.transfer.info is None
    assert (d.event.from_state, d.event.to_state) == (State.CONTACT_SENT, State.CONTACT_SENT)
    assert d.event.note == "information table refused: info.funds_fen: wrong"
    assert d.event.actor == "agency:110000:hrss"
    assert d.notices == ()


@pytest.mark.parametrize(
    "kind", [Kind.EMPLOYEE_MEDICAL, Kind.RESIDENT_MEDICAL, Kind.EMPLOYEE_RESIDENT_MEDICAL, Kind.RESIDENT_PENSION]
)
def test_account_only_kinds(kind: Kind) -> None:
    assert fields(kind, TransferInfo(individual_account_fen=88_800, funds_fen=88_800)) == []
    assert fields(kind, TransferInfo()) == []
    assert fields(kind, TransferInfo(individual_account_fen=88_800, pooled_fund_fen=1, funds_fen=88_801)) == [
        "info.pooled_fund_fen",
        "info.funds_fen",
    ]
    assert fields(kind, TransferInfo(individual_account_fen=88_800, pooled_fund_fen=1, funds_fen=88_800)) == [
        "info.pooled_fund_fen"
    ]
    assert fields(kind, TransferInfo(individual_account_fen=88_800, funds_fen=88_799)) == ["info.funds_fen"]


def test_medical_info_through_the_machine() -> None:
    kind = Kind.EMPLOYEE_MEDICAL
    transfer = contacted(kind)
    with pytest.raises(FailedPrecondition) as caught:
        send_transfer_info(
            transfer,
            agency(SOURCE, AgencyType.HEALTHCARE_SECURITY),
            T2,
            POLICY,
            info=TransferInfo(individual_account_fen=100, pooled_fund_fen=50, funds_fen=150),
        )
    assert caught.value.reason == "FUNDS_MISMATCH"
    assert [v.field for v in caught.value.violations] == ["info.pooled_fund_fen", "info.funds_fen"]


BENEFITS = TransferInfo(
    remaining_benefit_fen=300_000, medical_subsidy_fen=20_000, training_subsidy_fen=5_000, funds_fen=325_000
)


def test_unemployment_amounts_move_while_drawing_benefits() -> None:
    assert fields(Kind.UNEMPLOYMENT, BENEFITS, drawing_benefits=True) == []
    assert fields(Kind.UNEMPLOYMENT, replace(BENEFITS, funds_fen=300_000), drawing_benefits=True) == ["info.funds_fen"]


def test_unemployment_amounts_only_when_drawing_benefits() -> None:
    assert fields(Kind.UNEMPLOYMENT, TransferInfo(), drawing_benefits=False) == []
    all_three = ["info.remaining_benefit_fen", "info.medical_subsidy_fen", "info.training_subsidy_fen"]
    assert fields(Kind.UNEMPLOYMENT, BENEFITS, drawing_benefits=False) == all_three
    training_only = TransferInfo(training_subsidy_fen=5_000, funds_fen=5_000)
    assert fields(Kind.UNEMPLOYMENT, training_only, drawing_benefits=False) == ["info.training_subsidy_fen"]
    account = TransferInfo(individual_account_fen=100, funds_fen=0)
    assert fields(Kind.UNEMPLOYMENT, account, drawing_benefits=True) == ["info.individual_account_fen"]


def test_unemployment_through_the_machine_uses_the_transfer_circumstances() -> None:
    drawing = contacted(Kind.UNEMPLOYMENT, Circumstances(drawing_benefits=True))
    d = send_transfer_info(drawing, agency(SOURCE), T2, POLICY, info=BENEFITS)
    assert d.transfer.state is State.FUNDS_SENT
    assert d.event.note == "information table and funds 325000 fen sent"  # no table number given
    with pytest.raises(FailedPrecondition) as caught:
        send_transfer_info(contacted(Kind.UNEMPLOYMENT), agency(SOURCE), T2, POLICY, info=BENEFITS)
    assert [v.field for v in caught.value.violations] == [
        "info.remaining_benefit_fen",
        "info.medical_subsidy_fen",
        "info.training_subsidy_fen",
    ]


# Institution -> enterprise counts the pooled fund from 2014-10 only.
IE_RECORD = (CY(2013, 1, 12, 1_000_000), CY(2014, 1, 12, 1_000_000), CY(2015, 1, 12, 1_000_000))
IE_POOLED = 3 * 120_000 + 12 * 120_000  # Oct-Dec 2014 and all of 2015, 1_000_000 x 12% = 120_000 a month
EMPLOYEE_POOLED = 36 * 120_000  # 2013-2015, all months since 1998 count


def test_institution_to_enterprise_counts_from_2014_10() -> None:
    info = pension_info(IE_RECORD, balance=500_000, institution=True)
    assert info.pooled_fund_fen == IE_POOLED == 1_800_000
    assert fields(Kind.INSTITUTION_ENTERPRISE_PENSION, info) == []
    # the same table is wrong for an employee pension transfer, which counts from 1998
    assert fields(Kind.EMPLOYEE_PENSION, info) == ["info.pooled_fund_fen"]
    employee = pension_info(IE_RECORD, balance=500_000)
    assert employee.pooled_fund_fen == EMPLOYEE_POOLED
    assert fields(Kind.INSTITUTION_ENTERPRISE_PENSION, employee) == ["info.pooled_fund_fen"]
    # enterprise -> institution counts the enterprise years from 1998, as an employee pension does
    to_institution = PensionDirection.ENTERPRISE_TO_INSTITUTION
    assert fields(Kind.INSTITUTION_ENTERPRISE_PENSION, employee, direction=to_institution) == []
    assert fields(Kind.INSTITUTION_ENTERPRISE_PENSION, info, direction=to_institution) == ["info.pooled_fund_fen"]


def test_institution_to_enterprise_through_the_machine() -> None:
    circ = Circumstances(direction=PensionDirection.INSTITUTION_TO_ENTERPRISE)
    transfer = contacted(Kind.INSTITUTION_ENTERPRISE_PENSION, circ)
    d = send_transfer_info(
        transfer, agency(SOURCE), T2, POLICY, info=pension_info(IE_RECORD, balance=500_000, institution=True)
    )
    assert d.transfer.state is State.FUNDS_SENT


def test_enterprise_to_institution_counts_enterprise_years_from_1998() -> None:
    # 人社部规〔2017〕1号: moving from an enterprise into an institution, the enterprise years' pooled fund
    # moves as in 66号 (12% of each year's base from 1998); only the institution side starts in 2014-10.
    circ = Circumstances(direction=PensionDirection.ENTERPRISE_TO_INSTITUTION)
    transfer = contacted(Kind.INSTITUTION_ENTERPRISE_PENSION, circ)
    d = send_transfer_info(transfer, agency(SOURCE), T2, POLICY, info=pension_info(IE_RECORD, balance=500_000))
    assert d.transfer.state is State.FUNDS_SENT
