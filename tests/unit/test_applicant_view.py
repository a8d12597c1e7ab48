"""What the applicant is told (Arts. 16, 30): result notices to the person and the employer, the plain-language
view of a transfer, and how both reach a portal."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway._gen.sigw.v1 import agency_pb2, portal_pb2
from gateway.domain import mobile
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.errors import InvalidArgument
from gateway.domain.participants import AgencyKey, AgencyType, Participant, PortalKey
from gateway.domain.regions import Registry
from gateway.domain.transfer.explain import chinese_date, explain, notice_text
from gateway.domain.transfer.machine import (
    Policy,
    cancel,
    complete,
    open_temporary_account,
    open_transfer,
    reject,
    remind_overdue,
    send_contact_letter,
    send_transfer_info,
)
from gateway.domain.transfer.model import (
    Addressee,
    Application,
    Circumstances,
    Contact,
    Decision,
    Kind,
    NoticeType,
    State,
    TransferInfo,
)
from gateway.wire.transfers import NoticeEncoding

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday
BEIJING, SH = "110000", "310000"
POLICY = Policy(calendar=WorkingDayCalendar(), known_regions=frozenset({BEIJING, SH}))
ID = "11010519491231002X"
REGISTRY = Registry.parse(
    """
[[regions]]
code = "110000"
name = "北京市"
hrss = "127.0.0.1:1"
hrss_phone = "010-12333"

[[regions]]
code = "310000"
name = "上海市"
hrss = "127.0.0.1:2"

[[portals]]
code = "gov"
name = "服务平台"
notify = "127.0.0.1:3"

[[portals]]
code = "app"
notify = "127.0.0.1:4"
"""
)
TARGET = Participant.agency_of(AgencyKey(SH, AgencyType.HRSS))
SOURCE = Participant.agency_of(AgencyKey(BEIJING, AgencyType.HRSS))
WITH_EMPLOYER = Contact("13812345678", "上海某某科技有限公司", "13987654321")


NO_CONTACT = Contact()


def funds_sent(contact: Contact = NO_CONTACT) -> list[Decision]:
    """An unemployment transfer Beijing -> Shanghai: opened, contact letter sent, funds sent."""
    app = Application(Kind.UNEMPLOYMENT, ID, "王小明", BEIJING, SH, contact=contact)
    d1 = open_transfer(app, "T-1", TARGET, T0, POLICY)
    d2 = send_contact_letter(d1.transfer, TARGET, T0 + timedelta(days=1), POLICY)
    info = TransferInfo(table_number="XB-1", contribution_months=24)
    d3 = send_transfer_info(d2.transfer, SOURCE, T0 + timedelta(days=2), POLICY, info=info)
    return [d1, d2, d3]


def test_the_person_and_the_named_employer_are_told_each_result_and_nobody_of_the_steps_between() -> None:
    d1, d2, d3 = funds_sent(WITH_EMPLOYER)
    assert all(not isinstance(n.recipient, Addressee) for d in (d1, d2, d3) for n in d.notices)
    done = complete(d3.transfer, TARGET, T0 + timedelta(days=3))
    told = [(n.type, n.recipient) for n in done.notices if isinstance(n.recipient, Addressee)]
    assert told == [
        (NoticeType.TRANSFER_COMPLETED, Addressee.PERSON),
        (NoticeType.TRANSFER_COMPLETED, Addressee.EMPLOYER),
    ]
    rejected = reject(d3.transfer, TARGET, T0 + timedelta(days=3), reason="资金不符")
    assert [n.recipient for n in rejected.notices if isinstance(n.recipient, Addressee)] == [
        Addressee.PERSON,
        Addressee.EMPLOYER,
    ]
    cancelled = cancel(d1.transfer, TARGET, T0, reason="本人撤回")
    assert [n.type for n in cancelled.notices if n.recipient is Addressee.PERSON] == [NoticeType.TRANSFER_CLOSED]


def test_an_overdue_step_is_told_to_its_holder_and_to_the_person_once() -> None:
    d1 = funds_sent(Contact("13812345678"))[0]
    step = d1.transfer.open_step
    assert step is not None
    late = datetime.combine(step.due + timedelta(days=1), datetime.min.time(), SHANGHAI).replace(hour=10)
    reminded = remind_overdue(d1.transfer, late)
    assert [(n.type, n.recipient) for n in reminded.notices] == [
        (NoticeType.STEP_OVERDUE, step.holder),
        (NoticeType.STEP_OVERDUE, Addressee.PERSON),
    ]
    assert reminded.notices[1].step is not None and reminded.notices[1].step.due == step.due


def test_the_view_says_who_acts_by_when_in_chinese_working_days_explained() -> None:
    d1 = funds_sent()[0]
    step = d1.transfer.open_step
    assert step is not None
    timeline = [("1", d1.event)]
    view = explain(d1.transfer, timeline, T0.date(), REGISTRY)
    assert view.kind_text == "失业保险关系转移"
    assert (view.source_name, view.target_name) == ("北京市", "上海市")
    assert view.acting is not None and view.acting.name == "上海市社会保险经办机构"
    assert view.acting.phone == "12333"  # no number of its own: the national hotline
    assert view.due == step.due and view.working_days == step.working_days
    assert f"{step.working_days}个工作日" in view.deadline_text
    assert chinese_date(step.due) in view.deadline_text and "法定节假日" in view.deadline_text
    assert "2026年3月2日" in view.deadline_text  # the day it started
    assert not view.overdue and not view.ended
    assert [a.name for a in view.agencies] == ["北京市社会保险经办机构", "上海市社会保险经办机构"]
    assert [a.phone for a in view.agencies] == ["010-12333", "12333"]  # Beijing's own number
    assert [h.text for h in view.history] == ["转入地经办机构受理了申请"]


def test_an_overdue_view_names_the_late_step_and_what_to_do() -> None:
    d1 = funds_sent()[0]
    step = d1.transfer.open_step
    assert step is not None
    view = explain(d1.transfer, [("1", d1.event)], step.due + timedelta(days=1), REGISTRY)
    assert view.overdue
    assert [(s.text, s.agency.name, s.due, s.done) for s in view.overdue_steps] == [
        ("发出联系函", "上海市社会保险经办机构", step.due, False)
    ]
    assert any("超过规定期限" in a for a in view.actions)


@pytest.mark.parametrize(
    ("outcome", "expected_words"),
    [("complete", "转移已完成"), ("reject", "不予转移"), ("cancel", "已撤销")],
)
def test_an_ended_view_gives_the_outcome_and_no_acting_agency(outcome: str, expected_words: str) -> None:
    d1, d2, d3 = funds_sent()
    at = T0 + timedelta(days=3)
    if outcome == "complete":
        end = complete(d3.transfer, TARGET, at)
    elif outcome == "reject":
        end = reject(d3.transfer, TARGET, at, reason="资金不符")
    else:
        end = cancel(d2.transfer, TARGET, at, reason="本人撤回")
    view = explain(end.transfer, [("1", d1.event), ("2", end.event)], at.date(), REGISTRY)
    assert view.ended and view.acting is None and view.due is None
    assert expected_words in view.state_text
    if outcome != "complete":
        assert end.transfer.close_reason in view.summary  # the written reason (Art. 16)
        assert any("重新" in a for a in view.actions)


def test_a_notice_reaches_the_portal_with_the_full_mobile_and_the_person_masked() -> None:
    d3 = funds_sent(WITH_EMPLOYER)[2]
    done = complete(d3.transfer, TARGET, T0 + timedelta(days=3))
    encode = NoticeEncoding(REGISTRY)
    person, employer = (n for n in done.notices if isinstance(n.recipient, Addressee))
    to_person = portal_pb2.NotifyRequest.FromString(encode("m-1", done.transfer, person, T0.date()))
    assert to_person.message_id == "m-1"
    assert to_person.notice.addressee == portal_pb2.ADDRESSEE_PERSON
    assert to_person.notice.mobile == "13812345678"
    assert to_person.notice.person.id_number_masked == "1101**********002X"
    assert ID not in to_person.SerializeToString().decode(errors="replace")
    assert "已转入上海市" in to_person.notice.text
    to_employer = portal_pb2.NotifyRequest.FromString(encode("m-2", done.transfer, employer, T0.date()))
    assert to_employer.notice.mobile == "13987654321" and to_employer.notice.employer_name == "上海某某科技有限公司"
    assert to_employer.notice.text.startswith("贵单位职工王**的失业保险关系转移")  # of its employee
    agency_notice = next(n for n in done.notices if isinstance(n.recipient, AgencyKey))
    deliver = agency_pb2.DeliverRequest.FromString(encode("m-3", done.transfer, agency_notice, T0.date()))
    assert deliver.transfer_notice.transfer.person.id_number == ID  # agencies get the full number, as before


def test_a_rejection_notice_carries_the_reason() -> None:
    d3 = funds_sent()[2]
    rejected = reject(d3.transfer, TARGET, T0 + timedelta(days=3), reason="缴费记录不完整")
    text = notice_text(rejected.transfer, NoticeType.TRANSFER_CLOSED, None, REGISTRY)
    assert "不予转移" in text and "缴费记录不完整" in text and "T-1" in text


def test_the_registry_names_the_notice_portal() -> None:
    assert REGISTRY.notice_portal() == PortalKey("gov")  # the first listed
    assert REGISTRY.notice_portal("app") == PortalKey("app")
    assert REGISTRY.notice_portal("nope") is None
    assert REGISTRY.endpoint(PortalKey("app")) == "127.0.0.1:4"
    assert PortalKey("gov") in REGISTRY.destinations()
    with pytest.raises(InvalidArgument) as caught:
        Registry.parse('[[portals]]\ncode = "gov"\nnotify = "nowhere"\n')
    assert [v.field for v in caught.value.violations] == ["portals[0].notify"]


def test_mobile_numbers_are_masked_to_their_first_three_and_last_four_digits() -> None:
    assert mobile.mask("13812345678") == "138****5678"
    assert mobile.mask("12345") == "*****"
    assert mobile.is_mobile("19912345678") and not mobile.is_mobile("12012345678")


def test_dates_are_written_the_chinese_way() -> None:
    assert chinese_date(date(2026, 10, 8)) == "2026年10月8日"


def test_every_state_has_words() -> None:
    from gateway.domain.transfer.explain import KIND_TEXT, STATE_TEXT

    assert set(STATE_TEXT) == set(State) and set(KIND_TEXT) == set(Kind)


def test_the_employer_is_told_only_at_a_mobile_number_of_its_own() -> None:
    for contact in (NO_CONTACT, Contact("13812345678"), Contact(employer_name="上海某某科技有限公司")):
        d3 = funds_sent(contact)[2]
        done = complete(d3.transfer, TARGET, T0 + timedelta(days=3))
        assert [n.recipient for n in done.notices if isinstance(n.recipient, Addressee)] == [Addressee.PERSON]


def test_a_medical_transfer_outs_deadline_counts_from_the_acceptance_and_says_so() -> None:
    # 43号: the old region transfers within 10 working days of accepting the application, not of the letter.
    app = Application(Kind.EMPLOYEE_MEDICAL, ID, "王小明", BEIJING, SH)
    target = Participant.agency_of(AgencyKey(SH, AgencyType.HEALTHCARE_SECURITY))
    d1 = open_transfer(app, "T-1", target, T0, POLICY)
    d2 = send_contact_letter(d1.transfer, target, T0 + timedelta(days=3), POLICY)  # Thursday 5 March
    step = d2.transfer.open_step
    assert step is not None and step.working_days == 10
    assert step.due == date(2026, 3, 16)  # 10 working days after Monday 2 March (no holiday in March 2026)
    view = explain(d2.transfer, [("1", d1.event), ("2", d2.event)], T0.date(), REGISTRY)
    assert view.deadline_text.startswith("自2026年3月2日受理申请起，应在10个工作日内办结，最迟2026年3月16日")
    assert "3月5日" not in view.deadline_text


def test_a_temporary_account_case_waits_for_the_account_not_a_contact_letter() -> None:
    app = Application(
        Kind.EMPLOYEE_PENSION, "110105197005100022", "李梅", BEIJING, SH, Circumstances(hukou_region=BEIJING)
    )
    d1 = open_transfer(app, "T-1", TARGET, T0, POLICY)
    view = explain(d1.transfer, [("1", d1.event)], T0.date(), REGISTRY)
    assert view.state_text == "已受理，等待转入地建立临时缴费账户" and "联系函" not in view.state_text
    done = open_temporary_account(d1.transfer, TARGET, T0 + timedelta(days=1), account_number="LS-1")
    assert explain(done.transfer, [], T0.date(), REGISTRY).state_text == "已建立临时缴费账户，关系保留在转出地"


def test_a_rejection_names_the_deciding_agency_its_phone_and_masks_numbers_in_the_reason() -> None:
    d3 = funds_sent()[2]
    reason = "资金与缴费记录不符，请致电13812345678核对"
    rejected = reject(d3.transfer, SOURCE, T0 + timedelta(days=3), reason=reason)
    view = explain(rejected.transfer, [], T0.date(), REGISTRY)
    assert view.summary.startswith("北京市社会保险经办机构决定不予转移。")
    assert "咨询电话：010-12333" in view.summary  # Beijing's own number, from the registry
    assert "138****5678" in view.summary and "13812345678" not in view.summary
    text = notice_text(rejected.transfer, NoticeType.TRANSFER_CLOSED, None, REGISTRY)
    assert "北京市社会保险经办机构决定不予转移" in text and "13812345678" not in text


def test_a_step_cut_short_by_a_rejection_reads_as_ended_not_as_finished_late() -> None:
    d1 = funds_sent()[0]
    step = d1.transfer.open_step
    assert step is not None
    late = datetime.combine(step.due + timedelta(days=2), datetime.min.time(), SHANGHAI)
    rejected = reject(d1.transfer, TARGET, late, reason="材料不全")
    (overdue,) = explain(rejected.transfer, [], late.date(), REGISTRY).overdue_steps
    assert not overdue.done and overdue.status_text == "未办结，申请已终止"
    d2 = send_contact_letter(d1.transfer, TARGET, late, POLICY)  # finished, late
    (finished,) = explain(d2.transfer, [], late.date(), REGISTRY).overdue_steps
    assert finished.done and finished.status_text == "已逾期办结"


def test_the_view_says_the_agency_was_reminded_only_once_it_was() -> None:
    d1 = funds_sent()[0]
    step = d1.transfer.open_step
    assert step is not None
    late = datetime.combine(step.due + timedelta(days=1), datetime.min.time(), SHANGHAI).replace(hour=10)
    before = explain(d1.transfer, [], late.date(), REGISTRY)
    assert any("系统会提醒经办机构" in a for a in before.actions)
    reminded = remind_overdue(d1.transfer, late).transfer
    after = explain(reminded, [], late.date(), REGISTRY)
    assert any("系统已提醒经办机构" in a for a in after.actions)
    assert not any("系统已提醒" in a for a in before.actions)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        (Kind.UNEMPLOYMENT, "失业保险关系已转入上海市"),
        (Kind.EMPLOYEE_MEDICAL, "医疗保险关系已转入上海市"),
    ],
)
def test_a_completion_says_what_moved_for_the_kind(kind: Kind, words: str) -> None:
    d3 = funds_sent()[2]
    from dataclasses import replace

    agency_type = AgencyType.HEALTHCARE_SECURITY if kind is Kind.EMPLOYEE_MEDICAL else AgencyType.HRSS
    actor = Participant.agency_of(AgencyKey(SH, agency_type))
    done = complete(replace(d3.transfer, kind=kind), actor, T0 + timedelta(days=3))
    assert words in explain(done.transfer, [], T0.date(), REGISTRY).summary
    assert words in notice_text(done.transfer, NoticeType.TRANSFER_COMPLETED, None, REGISTRY)
