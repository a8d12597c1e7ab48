"""A transfer in the applicant's words (Art. 16, Art. 30): where it stands, who must act by when, what the person
may need to do and how to reach the agencies, in plain Chinese. The status page, the status reply
(``QueryTransferStatus``) and the result notices all say it this way, from this one place.

Pure: region names and agency telephone numbers come from a ``Directory`` (the region registry).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from gateway.domain import access, idnumber
from gateway.domain.calendar import SHANGHAI
from gateway.domain.participants import AgencyKey, AgencyType, Participant
from gateway.domain.transfer.kinds import MEDICAL_KINDS, PENSION_KINDS, counts_from_acceptance
from gateway.domain.transfer.machine import REMINDER_NOTE, RESENT_NOTE
from gateway.domain.transfer.model import (
    MILITARY_AREA,
    Addressee,
    Event,
    Kind,
    NoticeType,
    State,
    Step,
    StepName,
    Transfer,
)

__all__ = [
    "KIND_TEXT",
    "STATE_TEXT",
    "AgencyContact",
    "ApplicantView",
    "Directory",
    "HistoryEntry",
    "OverdueStep",
    "chinese_date",
    "explain",
    "notice_text",
]

KIND_TEXT = {
    Kind.EMPLOYEE_PENSION: "企业职工基本养老保险关系转移",
    Kind.INSTITUTION_ENTERPRISE_PENSION: "机关事业单位与企业职工基本养老保险关系互转",
    Kind.RESIDENT_PENSION: "城乡居民基本养老保险关系转移",
    Kind.EMPLOYEE_MEDICAL: "职工基本医疗保险关系转移",
    Kind.RESIDENT_MEDICAL: "城乡居民基本医疗保险关系转移",
    Kind.EMPLOYEE_RESIDENT_MEDICAL: "职工医保与居民医保关系转移",
    Kind.UNEMPLOYMENT: "失业保险关系转移",
    Kind.WORK_INJURY: "工伤保险（不转移，在新参保地重新参保）",
    Kind.MATERNITY: "生育保险（不转移，在新参保地重新参保）",
    Kind.MILITARY_PENSION: "军人退役基本养老保险关系转移",
    Kind.MILITARY_MEDICAL: "军人退役医疗保险关系转移",
    Kind.INSTITUTION_PENSION: "机关事业单位基本养老保险关系转移",
    Kind.PENSION_COLLECTION: "养老保险关系转回或临时缴费账户归集",
}

STATE_TEXT = {
    State.SUBMITTED: "已受理，等待转入地发出联系函",
    State.CONTACT_SENT: "联系函已发出，等待转出地转出",
    State.FUNDS_SENT: "已转出，等待转入地办理转入",
    State.COMPLETED: "转移已完成",
    State.REJECTED: "不予转移",
    State.CANCELLED: "申请已撤销",
    State.TEMPORARY_ACCOUNT: "已建立临时缴费账户，关系保留在转出地",
}

_STEP_TEXT = {
    StepName.CONTACT_LETTER: "发出联系函",
    StepName.TRANSFER_OUT: "转出参保信息和资金",
    StepName.TRANSFER_IN: "核对资金并办理转入",
    StepName.TEMPORARY_ACCOUNT: "建立临时缴费账户",
}

_AGENCY_TEXT = {AgencyType.HRSS: "社会保险经办机构", AgencyType.HEALTHCARE_SECURITY: "医疗保障经办机构"}

_WORKING_DAYS = "工作日不含周六、周日和法定节假日，调休上班的周末算工作日"


class Directory(Protocol):
    """Region names and how to reach each region's agencies."""

    def region_name(self, code: str) -> str: ...

    def agency_phone(self, agency: AgencyKey) -> str: ...


@dataclass(frozen=True)
class AgencyContact:
    agency: AgencyKey
    name: str
    """e.g. 上海市社会保险经办机构."""
    phone: str


@dataclass(frozen=True)
class OverdueStep:
    step: StepName
    text: str
    agency: AgencyContact
    due: date
    done: bool
    """Finished, late, by its agency; False while still open or when the transfer ended without it."""
    status_text: str


@dataclass(frozen=True)
class HistoryEntry:
    time: datetime
    text: str


@dataclass(frozen=True)
class ApplicantView:
    """Everything a person's status page shows, in Chinese."""

    kind_text: str
    source_name: str
    target_name: str
    state_text: str
    summary: str
    ended: bool
    acting: AgencyContact | None
    """The agency that must act now; None once the transfer has ended."""
    step_text: str
    due: date | None
    working_days: int
    deadline_text: str
    overdue: bool
    overdue_steps: tuple[OverdueStep, ...]
    actions: tuple[str, ...]
    """What the person may need to do."""
    agencies: tuple[AgencyContact, ...]
    """How to reach the agencies of this transfer."""
    history: tuple[HistoryEntry, ...]


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _contact(agency: AgencyKey, directory: Directory) -> AgencyContact:
    if agency.region == MILITARY_AREA:
        return AgencyContact(agency, "军队后勤财务部门", directory.agency_phone(agency))
    name = f"{directory.region_name(agency.region)}{_AGENCY_TEXT[agency.agency_type]}"
    return AgencyContact(agency, name, directory.agency_phone(agency))


def _deadline_text(t: Transfer, step: Step) -> str:
    if counts_from_acceptance(t.kind, step.name):
        accepted = chinese_date(t.created_at.astimezone(SHANGHAI).date())
        counted = f"自{accepted}受理申请起，应在{step.working_days}个工作日内办结"
    else:
        started = chinese_date(step.started_at.astimezone(SHANGHAI).date())
        counted = f"{started}开始办理，应在{step.working_days}个工作日内办结"
    text = f"{counted}，最迟{chinese_date(step.due)}（{_WORKING_DAYS}）。"
    if step.provisional:
        text += "该年度的节假日安排尚未公布，期限暂按周末计算，公布后可能推后。"
    return text


def _actions(t: Transfer, today: date) -> tuple[str, ...]:
    target = "转入地经办机构"
    found: list[str] = []
    if t.state is State.COMPLETED:
        found.append("转移已完成，您无需再办理。今后请在转入地缴费，并在转入地享受待遇。")
        if t.continuity and not t.continuity.continuous and t.continuity.months_to_pay:
            found.append(
                f"您的参保中断超过3个月。如需保持连续参保，可向{target}补缴{t.continuity.months_to_pay}个月的费用。"
            )
        if t.continuity and t.continuity.waiting_months:
            found.append(f"转入地设有{t.continuity.waiting_months}个月的待遇等待期，等待期内的医疗费用请咨询{target}。")
    elif t.state is State.REJECTED:
        found.append("请向作出决定的经办机构了解不予转移的原因，按要求补充材料后可重新申请。")
        found.append("对决定不服的，可以依法申请行政复议或者提起行政诉讼。")
    elif t.state is State.CANCELLED:
        found.append(f"申请已撤销。如仍需转移，请重新向{target}申请。")
    elif t.state is State.TEMPORARY_ACCOUNT:
        found.append(
            "您的养老保险关系保留在转出地；转入地为您建立了临时缴费账户，今后在转入地的缴费记入该账户，"
            "办理待遇领取时统一归集。您无需再办理。"
        )
    else:
        found.append("目前您无需办理任何手续，经办机构之间会直接办理，结果会通知您。")
        step = t.open_step
        if step is not None and step.overdue(today):
            told = "系统已提醒经办机构" if step.reminded_at else "系统会提醒经办机构"
            found.append(f"办理已超过规定期限，{told}。如有疑问，可拨打下方电话咨询正在办理的经办机构。")
    return tuple(found)


def _history_text(event: Event, transfer: Transfer) -> str:
    before, after = event.from_state, event.to_state
    if before is None:
        if transfer.military is not None:
            return "军队后勤财务部门转出了退役军人的保险关系和资金，转入地经办机构已受理"
        return "转入地经办机构受理了申请"
    if before is after:
        note = event.note
        if REMINDER_NOTE in note:
            return "办理超过规定期限，系统提醒了经办机构"
        if RESENT_NOTE in note:
            return "经办机构一直未答复，系统再次通知了经办机构"
        return "经办机构退回了不符合要求的转移信息，正在重新办理"
    return {
        State.CONTACT_SENT: "转入地经办机构向转出地发出了联系函",
        State.FUNDS_SENT: "转出地经办机构转出了参保信息和资金",
        State.COMPLETED: "转入地经办机构办理了转入，转移完成",
        State.REJECTED: "经办机构决定不予转移",
        State.CANCELLED: "申请已撤销",
        State.TEMPORARY_ACCOUNT: "转入地经办机构建立了临时缴费账户",
        State.SUBMITTED: "申请已受理",
    }[after]


def _state_text(t: Transfer) -> str:
    step = t.open_step
    if t.state is State.SUBMITTED and step is not None and step.name is StepName.TEMPORARY_ACCOUNT:
        return "已受理，等待转入地建立临时缴费账户"
    return STATE_TEXT[t.state]


def _completed_text(kind: Kind, target: str) -> str:
    """What a completed transfer means for the person, by kind."""
    if kind is Kind.PENSION_COLLECTION:
        return f"养老保险关系和资金已归集到{target}，转移已完成。"
    if kind in PENSION_KINDS:
        return f"养老保险关系和资金已转入{target}，缴费年限累计计算，转移已完成。"
    if kind in MEDICAL_KINDS:
        return f"医疗保险关系已转入{target}，缴费年限累计计算，今后在{target}享受医保待遇。"
    if kind is Kind.UNEMPLOYMENT:
        return f"失业保险关系已转入{target}，缴费时间累计计算，转移已完成。"
    return f"{KIND_TEXT[kind]}已转入{target}，转移已完成。"


def _closing_agency(t: Transfer, directory: Directory) -> AgencyContact | None:
    """The agency that rejected or cancelled ``t``; None when no agency did (a portal, for the person)."""
    if not t.closed_by:
        return None
    agency = Participant.parse(t.closed_by).agency
    return _contact(agency, directory) if agency is not None else None


def _closed_text(t: Transfer, directory: Directory) -> str:
    """A rejection or cancellation in words: who decided, why, and whom to call."""
    closer = _closing_agency(t, directory)
    who = closer.name if closer else "经办机构"
    call = f"咨询电话：{closer.phone}。" if closer and closer.phone else ""
    reason = _free_text(t.close_reason, t)
    if t.state is State.REJECTED:
        return f"{who}决定不予转移。原因：{reason}。{call}"
    return f"这项转移申请已撤销。原因：{reason}。{call}"


def _free_text(text: str, t: Transfer) -> str:
    """An agency's words as a person reads them: ID numbers, mobile numbers and the person's name masked."""
    return idnumber.mask_text(text, t.name).rstrip("。.")


def _summary(
    t: Transfer, acting: AgencyContact | None, step: Step | None, source: str, target: str, directory: Directory
) -> str:
    if t.state is State.COMPLETED:
        return _completed_text(t.kind, target)
    if t.state in (State.REJECTED, State.CANCELLED):
        return _closed_text(t, directory)
    if t.state is State.TEMPORARY_ACCOUNT:
        return f"您的养老保险关系保留在{source}，{target}为您建立了临时缴费账户。"
    if acting is None or step is None:
        return STATE_TEXT[t.state]
    return f"正在由{acting.name}{_STEP_TEXT[step.name]}，最迟{chinese_date(step.due)}办结。"


def explain(t: Transfer, timeline: list[tuple[str, Event]], today: date, directory: Directory) -> ApplicantView:
    """The applicant's view of ``t`` as of ``today`` (Asia/Shanghai)."""
    source = "军队" if t.source_region == MILITARY_AREA else directory.region_name(t.source_region)
    target = directory.region_name(t.target_region)
    step = t.open_step
    acting = _contact(step.holder, directory) if step else None
    parties = [access.source_agency(t), access.target_agency(t)]
    overdue_steps = tuple(_overdue_step(t, s, directory) for s in t.steps if s.overdue(today))
    return ApplicantView(
        kind_text=KIND_TEXT[t.kind],
        source_name=source,
        target_name=target,
        state_text=_state_text(t),
        summary=_summary(t, acting, step, source, target, directory),
        ended=t.state.ended,
        acting=acting,
        step_text=_STEP_TEXT[step.name] if step else "",
        due=step.due if step else None,
        working_days=step.working_days if step else 0,
        deadline_text=_deadline_text(t, step) if step else "",
        overdue=t.overdue(today),
        overdue_steps=overdue_steps,
        actions=_actions(t, today),
        agencies=tuple(_contact(a, directory) for a in parties),
        history=tuple(HistoryEntry(e.time, _history_text(e, t)) for _, e in timeline),
    )


def _overdue_step(t: Transfer, step: Step, directory: Directory) -> OverdueStep:
    finished = step.completed_at is not None and not (step is t.steps[-1] and t.state.ended and not _completed(t))
    if step.completed_at is None:
        status = "仍未办结"
    elif finished:
        status = "已逾期办结"
    else:
        status = "未办结，申请已终止"
    return OverdueStep(step.name, _STEP_TEXT[step.name], _contact(step.holder, directory), step.due, finished, status)


def _completed(t: Transfer) -> bool:
    return t.state in (State.COMPLETED, State.TEMPORARY_ACCOUNT)


def notice_text(
    t: Transfer, kind: NoticeType, step: Step | None, directory: Directory, addressee: Addressee = Addressee.PERSON
) -> str:
    """The words of a result notice (Art. 16), as the person (or the employer) reads it in a text message."""
    whose = "您的" if addressee is Addressee.PERSON else f"贵单位职工{idnumber.mask_name(t.name)}的"
    what = whose + KIND_TEXT[t.kind]
    if kind is NoticeType.TRANSFER_COMPLETED:
        return f"{what}（编号{t.transfer_id}）已办结：{_completed_text(t.kind, directory.region_name(t.target_region))}"
    if kind is NoticeType.TEMPORARY_ACCOUNT_OPENED:
        return (
            f"{what}（编号{t.transfer_id}）已办结：关系保留在{directory.region_name(t.source_region)}，"
            f"{directory.region_name(t.target_region)}建立了临时缴费账户。"
        )
    if kind is NoticeType.TRANSFER_CLOSED:
        return f"{what}（编号{t.transfer_id}）：{_closed_text(t, directory)}"
    if kind is NoticeType.STEP_OVERDUE and step is not None:
        acting = _contact(step.holder, directory)
        return (
            f"{what}（编号{t.transfer_id}）中，{acting.name}{_STEP_TEXT[step.name]}已超过期限"
            f"（最迟应于{chinese_date(step.due)}办结），系统已提醒办理。咨询电话：{acting.phone}。"
        )
    return f"{what}（编号{t.transfer_id}）：{STATE_TEXT[t.state]}。"
