"""The transfer state machine: steps, holders, deadlines, versions, timeline events, notices, funds checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from gateway.domain.participants import AgencyKey, AgencyType, Participant
from gateway.domain.transfer.machine import (
    Policy,
    cancel,
    complete,
    funds_violations,
    open_temporary_account,
    open_transfer,
    refuse_transfer_info,
    reject,
    send_contact_letter,
    send_transfer_info,
)
from gateway.domain.transfer.model import (
    Addressee,
    Application,
    Circumstances,
    CollectionSource,
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
from gateway.domain.transfer.pension import ContributionYear, compute_funds

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)  # Monday
T1 = datetime(2026, 3, 4, 10, 0, tzinfo=SHANGHAI)  # Wednesday
T2 = datetime(2026, 3, 9, 11, 0, tzinfo=SHANGHAI)  # Monday
T3 = datetime(2026, 3, 12, 15, 0, tzinfo=SHANGHAI)  # Thursday

SOURCE, TARGET = "110000", "310000"
POLICY = Policy(calendar=WorkingDayCalendar(), known_regions=frozenset({SOURCE, TARGET, "440300", "510100"}))
CY = ContributionYear

# 2005: 500_000 x 12 x 12% = 720_000; 2006: 600_000 x 12 x 12% = 864_000; 2015 (6 months): 576_000.
# Each year's credit (under its cap: 2005 11% = 660_000; 2006 8% = 576_000; 2015 8% for 6 months = 384_000) and
# interest: credits 1_400_000 + interest 100_000 = a balance of 1_500_000.
RECORD = (
    CY(2005, 1, 12, 500_000, 600_000, 10_000),
    CY(2006, 1, 12, 600_000, 500_000, 30_000),
    CY(2015, 1, 6, 800_000, 300_000, 60_000),
)
RECORD_POOLED = 2_160_000
RECORD_CAP = 660_000 + 576_000 + 384_000


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
    funds = compute_funds(years, balance, since_institution_reform=institution)
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


# A woman born 1970-05-10 (aged 55), hukou Beijing, moving Beijing -> Shanghai: 66号 Art. 5 applies.
WOMAN_55 = "110105197005100022"
TEMPORARY = Circumstances(hukou_region=SOURCE)


def temporary_case() -> Transfer:
    return open_transfer(
        replace(application(circumstances=TEMPORARY), id_number=WOMAN_55), "T-1", agency(TARGET), T0, POLICY
    ).transfer


def in_state(state: State) -> Transfer:
    """An employee pension transfer (Beijing -> Shanghai) brought to ``state`` the ordinary way."""
    if state is State.TEMPORARY_ACCOUNT:
        return open_temporary_account(temporary_case(), agency(TARGET), T1).transfer
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
    assert [(n.type, n.recipient) for n in d4.notices] == [
        (NoticeType.TRANSFER_COMPLETED, key(SOURCE)),
        (NoticeType.TRANSFER_COMPLETED, Addressee.PERSON),  # the person is told the result (Art. 16)
    ]
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
    # 医保办发〔2021〕43号: out within 10 working days of the acceptance (no separate forwarding allowance), in 5
    assert [s.working_days for s in steps] == [0, 10, 5]
    assert [s.holder.agency_type for s in steps] == [AgencyType.HEALTHCARE_SECURITY] * 3
    # forwarded on acceptance (Mon 03-02); out by Mon 03-02 + 10 = Mon 03-16, although the letter went on Tue
    # 03-03; in by Tue 03-17 + 5 = Tue 03-24
    assert [s.due for s in steps] == [date(2026, 3, 2), date(2026, 3, 16), date(2026, 3, 24)]
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
        (NoticeType.TRANSFER_CLOSED, key(other), "no contribution record"),
        (NoticeType.TRANSFER_CLOSED, Addressee.PERSON, ""),
    ]
    assert len(d.transfer.steps) == len(transfer.steps)  # no new step
    assert d.transfer.steps[-1].completed_at == T3  # the open step is closed
    assert d.transfer.open_step is None


def test_reject_inside_one_region_notifies_nobody() -> None:
    circ = Circumstances(direction=PensionDirection.INSTITUTION_TO_ENTERPRISE)
    transfer = opened(Kind.INSTITUTION_ENTERPRISE_PENSION, circ, source=TARGET)
    d = reject(transfer, agency(TARGET), T1, reason="duplicate")
    assert d.transfer.state is State.REJECTED
    assert [n.recipient for n in d.notices] == [Addressee.PERSON]  # no agency; the person is told


def test_cancel_before_the_letter_tells_nobody() -> None:
    d = cancel(opened(), agency(TARGET), T1, reason="applicant withdrew")
    assert d.transfer.state is State.CANCELLED
    assert d.transfer.close_reason == "applicant withdrew"
    assert d.event.note == "cancelled: applicant withdrew"
    assert (d.event.from_state, d.event.to_state) == (State.SUBMITTED, State.CANCELLED)
    assert [(n.type, n.recipient) for n in d.notices] == [(NoticeType.TRANSFER_CLOSED, Addressee.PERSON)]
    assert d.transfer.steps[0].completed_at == T1


def test_cancel_after_the_letter_tells_the_source() -> None:
    d = cancel(contacted(), agency(TARGET), T2, reason="applicant withdrew")
    assert d.transfer.state is State.CANCELLED
    assert [(n.type, n.recipient, n.note) for n in d.notices] == [
        (NoticeType.TRANSFER_CLOSED, key(SOURCE), "applicant withdrew"),
        (NoticeType.TRANSFER_CLOSED, Addressee.PERSON, ""),
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
    return [v.field for v in funds_violations(kind, circumstances, info, POLICY)]


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
        violations = funds_violations(Kind.EMPLOYEE_PENSION, Circumstances(), bad, POLICY)
        assert [v.field for v in violations] == ["info.pooled_fund_fen"]
        # the error names the expected and received amounts and the rounding convention
        assert violations[0].description == (
            f"expected {RECORD_POOLED} fen (12% of the record's wage bases from 1998-01, rounded to the nearest fen "
            f"once a year (convention 'nearest')), received {RECORD_POOLED + delta}"
        )


def test_funds_must_equal_the_parts() -> None:
    good = pension_info()
    bad = replace(good, funds_fen=good.funds_fen - 1)
    violations = funds_violations(Kind.EMPLOYEE_PENSION, Circumstances(), bad, POLICY)
    assert [v.field for v in violations] == ["info.funds_fen"]
    assert f"the table adds up to {good.funds_fen} fen" in violations[0].description


def test_a_credit_above_its_cap_and_a_balance_that_does_not_add_up() -> None:
    """66号 Art. 4: the caps bound each year's credit (2006: 8% of 7,200,000 = 576,000); the balance must be the
    credits plus the interest."""
    at_caps = (CY(2006, 1, 12, 600_000, 576_000, 0),)
    assert fields(Kind.EMPLOYEE_PENSION, pension_info(at_caps, balance=576_000)) == []
    over = (CY(2006, 1, 12, 600_000, 576_001, 0),)
    violations = funds_violations(Kind.EMPLOYEE_PENSION, Circumstances(), pension_info(over, 576_001), POLICY)
    assert [v.field for v in violations] == ["info.contributions[0].account_credit_fen"]
    assert "at most 8%" in violations[0].description and "576000 fen" in violations[0].description
    off = pension_info(balance=1_500_001)
    assert fields(Kind.EMPLOYEE_PENSION, off) == ["info.individual_account_fen"]


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
    remaining_benefit_fen=300_000,
    medical_subsidy_fen=20_000,
    training_subsidy_fen=5_000,
    funds_fen=325_000,
    contribution_months=60,
    remaining_benefit_months=6,
)
MONTHS_ONLY = TransferInfo(contribution_months=60)


def test_unemployment_amounts_move_while_drawing_benefits() -> None:
    assert fields(Kind.UNEMPLOYMENT, BENEFITS, drawing_benefits=True) == []
    assert fields(Kind.UNEMPLOYMENT, replace(BENEFITS, funds_fen=300_000), drawing_benefits=True) == ["info.funds_fen"]


def test_unemployment_amounts_only_when_drawing_benefits() -> None:
    assert fields(Kind.UNEMPLOYMENT, MONTHS_ONLY, drawing_benefits=False) == []
    all_four = [
        "info.remaining_benefit_fen",
        "info.medical_subsidy_fen",
        "info.training_subsidy_fen",
        "info.remaining_benefit_months",
    ]
    assert fields(Kind.UNEMPLOYMENT, BENEFITS, drawing_benefits=False) == all_four
    training_only = replace(MONTHS_ONLY, training_subsidy_fen=5_000, funds_fen=5_000)
    assert fields(Kind.UNEMPLOYMENT, training_only, drawing_benefits=False) == ["info.training_subsidy_fen"]
    account = replace(MONTHS_ONLY, individual_account_fen=100, funds_fen=0)
    assert fields(Kind.UNEMPLOYMENT, account, drawing_benefits=True) == ["info.individual_account_fen"]


def test_unemployment_contribution_months_accumulate_and_bound_the_benefit() -> None:
    """Art. 14: the table carries the contribution months; the months of benefit left cannot exceed what they give
    (失业保险条例 Art. 17: 1-5 years at most 12 months, 5-10 years 18, 10 years or more 24)."""
    assert fields(Kind.UNEMPLOYMENT, TransferInfo(), drawing_benefits=False) == ["info.contribution_months"]
    for months, longest in ((12, 12), (59, 12), (60, 18), (119, 18), (120, 24)):
        ok = replace(BENEFITS, contribution_months=months, remaining_benefit_months=longest)
        assert fields(Kind.UNEMPLOYMENT, ok, drawing_benefits=True) == []
        too_long = replace(ok, remaining_benefit_months=longest + 1)
        assert fields(Kind.UNEMPLOYMENT, too_long, drawing_benefits=True) == ["info.remaining_benefit_months"]
    # under a year of contributions gives no benefit at all
    assert fields(Kind.UNEMPLOYMENT, replace(BENEFITS, contribution_months=11), drawing_benefits=True) == [
        "info.remaining_benefit_months"
    ]
    # a remaining benefit needs its months
    assert fields(Kind.UNEMPLOYMENT, replace(BENEFITS, remaining_benefit_months=0), drawing_benefits=True) == [
        "info.remaining_benefit_months"
    ]


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
        "info.remaining_benefit_months",
    ]


# Institution -> enterprise counts the pooled fund from 2014-10 only. The account: 500_000 credited, no interest.
IE_RECORD = (
    CY(2013, 1, 12, 1_000_000, 200_000, 0),
    CY(2014, 1, 12, 1_000_000, 150_000, 0),
    CY(2015, 1, 12, 1_000_000, 150_000, 0),
)
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


def test_institution_to_institution_counts_the_pooled_part_from_2014_10() -> None:
    """人社部规〔2017〕1号: between institutions across regions, the pooled part is 12% of the bases from 2014-10-01."""
    info = pension_info(IE_RECORD, balance=500_000, institution=True)
    assert fields(Kind.INSTITUTION_PENSION, info) == []
    assert fields(Kind.INSTITUTION_PENSION, pension_info(IE_RECORD, balance=500_000)) == ["info.pooled_fund_fen"]
    with pytest.raises(FailedPrecondition) as caught:
        open_transfer(application(Kind.INSTITUTION_PENSION, source=TARGET), "T-1", agency(TARGET), T0, POLICY)
    assert caught.value.reason == "SAME_REGION"  # only across regions


def collection_fields(source: CollectionSource, info: TransferInfo) -> list[str]:
    circumstances = Circumstances(collection_source=source)
    return [v.field for v in funds_violations(Kind.PENSION_COLLECTION, circumstances, info, POLICY)]


def test_a_collection_moves_the_relationship_like_a_transfer_or_a_temporary_account_in_full() -> None:
    """66号 Arts. 4-5: moving the relationship back moves the employee-pension amounts (12% pooled); a temporary
    account moves every contribution with interest, never less than that."""
    exact = pension_info()
    assert collection_fields(CollectionSource.RELATIONSHIP, exact) == []
    more = replace(exact, pooled_fund_fen=exact.pooled_fund_fen + 500_000, funds_fen=exact.funds_fen + 500_000)
    assert collection_fields(CollectionSource.RELATIONSHIP, more) == ["info.pooled_fund_fen"]
    assert collection_fields(CollectionSource.TEMPORARY_ACCOUNT, more) == []
    less = replace(exact, pooled_fund_fen=exact.pooled_fund_fen - 1, funds_fen=exact.funds_fen - 1)
    assert collection_fields(CollectionSource.TEMPORARY_ACCOUNT, less) == ["info.pooled_fund_fen"]
