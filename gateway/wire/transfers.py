"""Transfers on the wire: ``sigw.v1`` transfer messages to domain records (validated, every field at once) and
back, and the notices agencies receive."""

from __future__ import annotations

import re
from datetime import date

from gateway._gen.sigw.v1 import agency_pb2, common_pb2, portal_pb2, transfer_pb2
from gateway.domain import idnumber, mobile
from gateway.domain.participants import AgencyKey, is_participant_code
from gateway.domain.transfer.explain import AgencyContact, ApplicantView, Directory, notice_text
from gateway.domain.transfer.kinds import line_of
from gateway.domain.transfer.model import (
    Addressee,
    Application,
    Circumstances,
    CollectionSource,
    Contact,
    Event,
    Kind,
    Line,
    MedicalContinuity,
    MilitaryService,
    Notice,
    PensionDirection,
    State,
    Step,
    Transfer,
    TransferInfo,
)
from gateway.domain.transfer.pension import ContributionYear
from gateway.domain.transfer.relationship import ContributionPeriod, PayingRegion
from gateway.wire.common import agency_to, date_to, timestamp
from gateway.wire.validation import MAX_NAME, MAX_NOTE, Violations

__all__ = [
    "MAX_TIMELINE_SHOWN",
    "NoticeEncoding",
    "applicant_status_to",
    "application_from",
    "circumstances_to",
    "continuity_to",
    "contribution_from",
    "contribution_to",
    "deliver_request",
    "event_to",
    "info_from",
    "info_to",
    "kind_filter",
    "military_from",
    "military_to",
    "paying_region_to",
    "period_from",
    "period_to",
    "relationship_region",
    "state_filter",
    "step_to",
    "transfer_to",
]

_KIND = transfer_pb2.TransferKind.ValueType
_LINE = common_pb2.InsuranceLine.ValueType
_STATE = transfer_pb2.TransferState.ValueType
_REGION = re.compile(r"[0-9]{6}")
_TABLE_NUMBER = re.compile(r"[\w\-/.]{0,64}")


def application_from(req: transfer_pb2.CreateTransferRequest) -> Application:
    v = Violations()
    v.request_id(req.request_id)
    if req.kind not in Kind._value2member_map_:
        v.add("kind", "required: one of the TransferKind values")
    error = idnumber.validation_error(req.person.id_number)
    if error:
        v.add("person.id_number", error)
    v.text("person.name", req.person.name, limit=MAX_NAME, required=True)
    v.region("source_region", req.source_region)
    v.region("target_region", req.target_region)
    c = req.circumstances
    if not 0 <= c.continuous_enrolment_months <= 1200:
        v.add("circumstances.continuous_enrolment_months", "must be 0-1200")
    if not 0 <= c.gap_months <= 1200:
        v.add("circumstances.gap_months", "must be 0-1200")
    if c.direction not in PensionDirection._value2member_map_:
        v.add("circumstances.direction", "unknown direction")
    if c.collection_source not in CollectionSource._value2member_map_:
        v.add("circumstances.collection_source", "unknown collection source")
    if c.hukou_region:
        v.region("circumstances.hukou_region", c.hukou_region)
    v.text("note", req.note, limit=MAX_NOTE)
    military = military_from(req, v)
    contact = contact_from(req.contact, v)
    v.raise_if_any()
    return Application(
        military=military,
        contact=contact,
        kind=Kind(req.kind),
        id_number=req.person.id_number,
        name=req.person.name,
        source_region=req.source_region,
        target_region=req.target_region,
        circumstances=Circumstances(
            drawing_benefits=c.drawing_benefits,
            hukou_moved=c.hukou_moved,
            residence_changed=c.residence_changed,
            retired=c.retired,
            continuous_enrolment_months=c.continuous_enrolment_months,
            direction=PensionDirection(c.direction),
            hukou_region=c.hukou_region,
            gap_months=c.gap_months,
            collection_source=CollectionSource(c.collection_source),
        ),
        note=req.note,
    )


def contact_from(msg: transfer_pb2.ApplicantContact, v: Violations) -> Contact:
    for name, number in (("contact.mobile", msg.mobile), ("contact.employer_mobile", msg.employer_mobile)):
        if number and not mobile.is_mobile(number):
            v.add(name, "must be a mainland mobile number: 11 digits starting with 1")
    v.text("contact.employer_name", msg.employer_name, limit=MAX_NAME)
    if msg.employer_mobile and not msg.employer_name:
        v.add("contact.employer_name", "required with contact.employer_mobile")
    if msg.employer_name and not msg.employer_mobile:
        v.add("contact.employer_mobile", "required with contact.employer_name: the employer is told there")
    if msg.portal and not is_participant_code(msg.portal):
        v.add("contact.portal", "must be a portal's participant code")
    return Contact(msg.mobile, msg.employer_name, msg.employer_mobile, msg.portal)


def military_from(req: transfer_pb2.CreateTransferRequest, v: Violations) -> MilitaryService | None:
    if not req.HasField("military"):
        return None
    m = req.military
    start = v.date("military.service_start", m.service_start)
    end = v.date("military.service_end", m.service_end)
    if start and end and end < start:
        v.add("military.service_end", "before the service start")
    v.amount("military.subsidy_fen", m.subsidy_fen)
    v.amount("military.account_fen", m.account_fen)
    if not 1 <= len(m.voucher_numbers) <= 10:
        v.add("military.voucher_numbers", "1-10 voucher numbers")
    for i, number in enumerate(m.voucher_numbers):
        if not _TABLE_NUMBER.fullmatch(number) or not number:
            v.add(f"military.voucher_numbers[{i}]", "1-64 letters, digits or - / . _")
        else:
            v.identifier(f"military.voucher_numbers[{i}]", number)
    if start is None or end is None:
        return None
    return MilitaryService(
        service_start=start,
        service_end=end,
        subsidy_fen=m.subsidy_fen,
        account_fen=m.account_fen,
        vouchers=tuple(m.voucher_numbers),
        spouse=m.spouse,
    )


def military_to(m: MilitaryService) -> transfer_pb2.MilitaryService:
    return transfer_pb2.MilitaryService(
        service_start=date_to(m.service_start),
        service_end=date_to(m.service_end),
        subsidy_fen=m.subsidy_fen,
        account_fen=m.account_fen,
        voucher_numbers=list(m.vouchers),
        spouse=m.spouse,
    )


def info_from(msg: transfer_pb2.TransferInfo, v: Violations) -> TransferInfo:
    if not _TABLE_NUMBER.fullmatch(msg.table_number):
        v.add("info.table_number", "at most 64 letters, digits or - / . _")
    v.identifier("info.table_number", msg.table_number)
    for name in (
        "individual_account_fen",
        "pooled_fund_fen",
        "funds_fen",
        "remaining_benefit_fen",
        "medical_subsidy_fen",
        "training_subsidy_fen",
    ):
        v.amount(f"info.{name}", getattr(msg, name))
    for name in ("contribution_months", "remaining_benefit_months"):
        if not 0 <= getattr(msg, name) <= 1200:
            v.add(f"info.{name}", "must be 0-1200")
    if len(msg.contributions) > 100:
        v.add("info.contributions", "at most 100 years")
    return TransferInfo(
        table_number=msg.table_number,
        individual_account_fen=msg.individual_account_fen,
        pooled_fund_fen=msg.pooled_fund_fen,
        funds_fen=msg.funds_fen,
        remaining_benefit_fen=msg.remaining_benefit_fen,
        medical_subsidy_fen=msg.medical_subsidy_fen,
        training_subsidy_fen=msg.training_subsidy_fen,
        contribution_months=msg.contribution_months,
        remaining_benefit_months=msg.remaining_benefit_months,
        contributions=tuple(contribution_from(c) for c in msg.contributions[:100]),
    )


def contribution_from(c: transfer_pb2.ContributionYear) -> ContributionYear:
    return ContributionYear(
        c.year,
        c.first_month,
        c.last_month,
        c.monthly_base_fen,
        c.account_credit_fen if c.HasField("account_credit_fen") else None,
        c.interest_fen if c.HasField("interest_fen") else None,
    )


def contribution_to(c: ContributionYear) -> transfer_pb2.ContributionYear:
    return transfer_pb2.ContributionYear(
        year=c.year,
        first_month=c.first_month,
        last_month=c.last_month,
        monthly_base_fen=c.monthly_base_fen,
        account_credit_fen=c.account_credit_fen,
        interest_fen=c.interest_fen,
    )


def info_to(info: TransferInfo) -> transfer_pb2.TransferInfo:
    return transfer_pb2.TransferInfo(
        table_number=info.table_number,
        individual_account_fen=info.individual_account_fen,
        pooled_fund_fen=info.pooled_fund_fen,
        funds_fen=info.funds_fen,
        remaining_benefit_fen=info.remaining_benefit_fen,
        medical_subsidy_fen=info.medical_subsidy_fen,
        training_subsidy_fen=info.training_subsidy_fen,
        contribution_months=info.contribution_months,
        remaining_benefit_months=info.remaining_benefit_months,
        contributions=[contribution_to(c) for c in info.contributions],
    )


def step_to(step: Step, today: date) -> transfer_pb2.Step:
    msg = transfer_pb2.Step(
        name=transfer_pb2.StepName.ValueType(step.name),
        holder=agency_to(step.holder),
        start_time=timestamp(step.started_at),
        due_date=date_to(step.due),
        working_days=step.working_days,
        provisional=step.provisional,
        overdue=step.overdue(today),
    )
    if step.completed_at:
        msg.complete_time.CopyFrom(timestamp(step.completed_at))
    if step.reminded_at:
        msg.remind_time.CopyFrom(timestamp(step.reminded_at))
    return msg


def event_to(event_id: str, event: Event) -> transfer_pb2.TransferEvent:
    return transfer_pb2.TransferEvent(
        event_id=event_id,
        time=timestamp(event.time),
        actor=event.actor,
        from_state=_STATE(event.from_state or 0),
        to_state=_STATE(event.to_state),
        note=idnumber.scrub(event.note),
    )


def circumstances_to(c: Circumstances) -> transfer_pb2.Circumstances:
    return transfer_pb2.Circumstances(
        drawing_benefits=c.drawing_benefits,
        hukou_moved=c.hukou_moved,
        residence_changed=c.residence_changed,
        retired=c.retired,
        continuous_enrolment_months=c.continuous_enrolment_months,
        direction=transfer_pb2.PensionDirection.ValueType(c.direction),
        hukou_region=c.hukou_region,
        gap_months=c.gap_months,
        collection_source=transfer_pb2.CollectionSource.ValueType(c.collection_source),
    )


def continuity_to(c: MedicalContinuity) -> transfer_pb2.MedicalContinuity:
    return transfer_pb2.MedicalContinuity(
        continuous=c.continuous, waiting_months=c.waiting_months, months_to_pay=c.months_to_pay, note=c.note
    )


def relationship_region(t: Transfer) -> str:
    """Where the pension relationship is, or stays, as the transfer stands; empty for other lines."""
    if line_of(t.kind) is not Line.PENSION:
        return ""
    if t.temporary_account:
        return t.source_region
    return t.target_region if t.state is State.COMPLETED else t.source_region


MAX_TIMELINE_SHOWN = 500
"""Events a transfer view carries (the newest); ``timeline_omitted`` counts the rest."""


def transfer_to(t: Transfer, today: date, timeline: list[tuple[str, Event]] | None = None) -> transfer_pb2.Transfer:
    """The public view of a transfer: the person masked, deadlines with overdue flags as of ``today``."""
    msg = transfer_pb2.Transfer(
        transfer_id=t.transfer_id,
        kind=_KIND(t.kind),
        line=_LINE(line_of(t.kind)),
        person=transfer_pb2.PersonView(
            id_number_masked=idnumber.mask(t.id_number), name_masked=idnumber.mask_name(t.name)
        ),
        source_region=t.source_region,
        target_region=t.target_region,
        state=_STATE(t.state),
        steps=[step_to(s, today) for s in t.steps],
        overdue=t.overdue(today),
        circumstances=circumstances_to(t.circumstances),
        close_reason=t.close_reason,
        create_time=timestamp(t.created_at),
        update_time=timestamp(t.updated_at),
        timeline=[event_to(eid, e) for eid, e in (timeline or [])[-MAX_TIMELINE_SHOWN:]],
        timeline_omitted=max(0, len(timeline or []) - MAX_TIMELINE_SHOWN),
    )
    open_step = t.open_step
    if open_step:
        msg.holder.CopyFrom(agency_to(open_step.holder))
    if t.military:
        msg.military.CopyFrom(military_to(t.military))
        msg.priority = True
    if t.info:
        msg.info.CopyFrom(info_to(t.info))
    if t.continuity:
        msg.continuity.CopyFrom(continuity_to(t.continuity))
    msg.temporary_account = t.temporary_account
    msg.relationship_region = relationship_region(t)
    c = t.contact
    if c != Contact():
        msg.contact.CopyFrom(
            transfer_pb2.ContactView(
                mobile_masked=mobile.mask(c.mobile),
                employer_name=c.employer_name,
                employer_mobile_masked=mobile.mask(c.employer_mobile),
                portal=c.portal,
            )
        )
    return msg


def _agency_contact_to(a: AgencyContact) -> transfer_pb2.AgencyContact:
    return transfer_pb2.AgencyContact(agency=agency_to(a.agency), name=a.name, phone=a.phone)


def applicant_status_to(view: ApplicantView) -> transfer_pb2.ApplicantStatus:
    """The applicant's view on the wire (``QueryTransferStatusResponse.status``)."""
    msg = transfer_pb2.ApplicantStatus(
        kind_text=view.kind_text,
        source_region_name=view.source_name,
        target_region_name=view.target_name,
        state_text=view.state_text,
        summary=view.summary,
        ended=view.ended,
        step_text=view.step_text,
        working_days=view.working_days,
        deadline_text=view.deadline_text,
        overdue=view.overdue,
        overdue_steps=[
            transfer_pb2.OverdueStep(
                step=transfer_pb2.StepName.ValueType(s.step),
                text=s.text,
                agency=_agency_contact_to(s.agency),
                due_date=date_to(s.due),
                done=s.done,
                status_text=s.status_text,
            )
            for s in view.overdue_steps
        ],
        actions=list(view.actions),
        agencies=[_agency_contact_to(a) for a in view.agencies],
        history=[
            transfer_pb2.StatusHistoryEntry(time=timestamp(h.time), text=h.text)
            for h in view.history[-MAX_TIMELINE_SHOWN:]
        ],
    )
    if view.acting is not None:
        msg.acting_agency.CopyFrom(_agency_contact_to(view.acting))
    if view.due is not None:
        msg.due_date.CopyFrom(date_to(view.due))
    return msg


def deliver_request(message_id: str, t: Transfer, notice: Notice, today: date) -> agency_pb2.DeliverRequest:
    """The message an agency receives: the transfer with the full ID number, which it needs."""
    details = agency_pb2.TransferDetails(
        transfer_id=t.transfer_id,
        kind=_KIND(t.kind),
        line=_LINE(line_of(t.kind)),
        person=common_pb2.Person(id_number=t.id_number, name=t.name),
        source_region=t.source_region,
        target_region=t.target_region,
        circumstances=circumstances_to(t.circumstances),
        state=_STATE(t.state),
        close_reason=t.close_reason,
        temporary_account=t.temporary_account,
    )
    if t.info:
        details.info.CopyFrom(info_to(t.info))
    if t.continuity:
        details.continuity.CopyFrom(continuity_to(t.continuity))
    body = agency_pb2.TransferNotice(
        type=agency_pb2.NoticeType.ValueType(notice.type), transfer=details, note=notice.note
    )
    if notice.step:
        body.step.CopyFrom(step_to(notice.step, today))
    assert isinstance(notice.recipient, AgencyKey)
    return agency_pb2.DeliverRequest(message_id=message_id, recipient=agency_to(notice.recipient), transfer_notice=body)


def notify_request(
    message_id: str, t: Transfer, notice: Notice, addressee: Addressee, today: date, directory: Directory
) -> portal_pb2.NotifyRequest:
    """The result notice a portal receives for the person or the employer: the full mobile number to send to, the
    person masked."""
    employer = addressee is Addressee.EMPLOYER
    body = portal_pb2.ResultNotice(
        type=agency_pb2.NoticeType.ValueType(notice.type),
        addressee=portal_pb2.Addressee.ValueType(addressee),
        mobile=t.contact.employer_mobile if employer else t.contact.mobile,
        employer_name=t.contact.employer_name if employer else "",
        transfer_id=t.transfer_id,
        kind=_KIND(t.kind),
        person=transfer_pb2.PersonView(
            id_number_masked=idnumber.mask(t.id_number), name_masked=idnumber.mask_name(t.name)
        ),
        source_region=t.source_region,
        target_region=t.target_region,
        state=_STATE(t.state),
        reason=t.close_reason,
        text=notice_text(t, notice.type, notice.step, directory, addressee),
        time=timestamp(t.updated_at),
    )
    if notice.step:
        body.step.CopyFrom(step_to(notice.step, today))
    return portal_pb2.NotifyRequest(message_id=message_id, notice=body)


class NoticeEncoding:
    """Encodes each notice for its recipient (implements ``gateway.app.ports.NoticeEncoder``): a
    ``DeliverRequest`` for an agency, a ``NotifyRequest`` for the applicant's portal (its words need the
    registry's region names and telephone numbers)."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def __call__(self, message_id: str, t: Transfer, notice: Notice, today: date, traceparent: str = "") -> bytes:
        """``traceparent``: the change's trace context, which an agency's message carries."""
        if isinstance(notice.recipient, Addressee):
            request = notify_request(message_id, t, notice, notice.recipient, today, self.directory)
            return request.SerializeToString()
        message = deliver_request(message_id, t, notice, today)
        message.traceparent = traceparent
        return message.SerializeToString()


def period_from(msg: transfer_pb2.ContributionPeriod) -> ContributionPeriod:
    """A period an agency reported; raises ``ValueError`` on a malformed one."""
    if not _REGION.fullmatch(msg.region_code) or msg.months < 0:
        raise ValueError("malformed contribution period")
    first = date(msg.first_month.year, msg.first_month.month, 1)
    last = date(msg.last_month.year, msg.last_month.month, 1)
    if last < first:
        raise ValueError("contribution period ends before it starts")
    return ContributionPeriod(
        region=msg.region_code,
        first_month=first,
        last_month=last,
        months=msg.months,
        holds_relationship=msg.holds_relationship,
        temporary_account=msg.temporary_account,
    )


def period_to(p: ContributionPeriod) -> transfer_pb2.ContributionPeriod:
    return transfer_pb2.ContributionPeriod(
        region_code=p.region,
        first_month=date_to(p.first_month),
        last_month=date_to(p.last_month),
        months=p.months,
        holds_relationship=p.holds_relationship,
        temporary_account=p.temporary_account,
    )


def paying_region_to(
    decision: PayingRegion, periods: list[ContributionPeriod], collections: list[transfer_pb2.Transfer]
) -> transfer_pb2.DeterminePayingRegionResponse:
    return transfer_pb2.DeterminePayingRegionResponse(
        paying_region=decision.region,
        rule=transfer_pb2.PayingRule.ValueType(decision.rule),
        reason=decision.reason,
        periods=[period_to(p) for p in sorted(periods, key=lambda p: p.first_month)],
        senders=[
            transfer_pb2.CollectionSender(
                region_code=s.region, source=transfer_pb2.CollectionSource.ValueType(s.source)
            )
            for s in decision.senders
        ],
        collections=collections,
    )


def state_filter(value: int, v: Violations) -> State | None:
    if value == 0:
        return None
    if value not in State._value2member_map_:
        v.add("state", "unknown state")
        return None
    return State(value)


def kind_filter(value: int, v: Violations) -> Kind | None:
    if value == 0:
        return None
    if value not in Kind._value2member_map_:
        v.add("kind", "unknown kind")
        return None
    return Kind(value)
