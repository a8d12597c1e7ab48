"""The transfer state machine: each function takes a transfer and a request and returns a ``Decision``.

``SUBMITTED -> CONTACT_SENT -> FUNDS_SENT -> COMPLETED``, or ``REJECTED`` / ``CANCELLED`` from any open
state (cancel only before the funds were sent). Every transition completes the open step, starts the next
one with its working-day deadline, appends one timeline event and names the notices to deliver.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from gateway.domain import access, idnumber
from gateway.domain.access import Action
from gateway.domain.calendar import SHANGHAI, WorkingDayCalendar
from gateway.domain.errors import FailedPrecondition, FieldViolation, invalid
from gateway.domain.participants import AgencyKey, Participant
from gateway.domain.transfer.kinds import EMPLOYEE_FUND_KINDS, MEDICAL_KINDS, DeadlineRules, check_eligibility
from gateway.domain.transfer.medical import MedicalContinuityRules, continuity_of
from gateway.domain.transfer.model import (
    MILITARY_AREA,
    Addressee,
    Application,
    Circumstances,
    CollectionSource,
    Decision,
    Event,
    Kind,
    Notice,
    NoticeType,
    PensionDirection,
    State,
    Step,
    StepName,
    Transfer,
    TransferInfo,
)
from gateway.domain.transfer.pension import PensionFundRules, account_errors, compute_funds, record_errors
from gateway.domain.transfer.relationship import (
    TemporaryAccountRules,
    province,
    temporary_account_age,
    temporary_account_reason,
)
from gateway.domain.transfer.unemployment import UnemploymentRules

__all__ = [
    "MAX_RECORDED_REFUSALS",
    "REMINDER_NOTE",
    "RESENT_NOTE",
    "Policy",
    "cancel",
    "complete",
    "funds_violations",
    "open_temporary_account",
    "open_transfer",
    "recorded_refusals",
    "refuse_transfer_info",
    "reject",
    "remind_overdue",
    "renotify",
    "send_contact_letter",
    "send_transfer_info",
    "tell_applicant",
]


@dataclass(frozen=True)
class Policy:
    """Everything a transition needs besides the request: calendar, deadlines, amounts, known regions."""

    calendar: WorkingDayCalendar
    known_regions: frozenset[str]
    deadlines: DeadlineRules = field(default_factory=DeadlineRules)
    pension: PensionFundRules = field(default_factory=PensionFundRules)
    temporary_accounts: TemporaryAccountRules = field(default_factory=TemporaryAccountRules)
    medical: MedicalContinuityRules = field(default_factory=MedicalContinuityRules)
    unemployment: UnemploymentRules = field(default_factory=UnemploymentRules)


REMINDER_NOTE = "reminder sent to"
"""In the timeline note of an overdue step's reminder (which stays in its state); the applicant's view reads it."""
RESENT_NOTE = "its notice sent again to"
"""In the timeline note of a notice sent again after no answer."""


def _joined(*notes: str) -> str:
    """A timeline note from its parts, the empty ones left out."""
    return "; ".join(n for n in notes if n)


def _start_step(
    kind: Kind, name: StepName, holder: AgencyKey, now: datetime, policy: Policy, counted_from: datetime | None = None
) -> Step:
    """A new step; its deadline counts from ``counted_from`` (default: now) where the rules say so."""
    days = policy.deadlines.working_days(kind, name)
    start = counted_from if counted_from and policy.deadlines.counts_from_acceptance(kind, name) else now
    deadline = policy.calendar.add_working_days(start.astimezone(SHANGHAI).date(), days)
    return Step(
        name=name, holder=holder, started_at=now, working_days=days, due=deadline.due, provisional=deadline.provisional
    )


def _temporary_account(app: Application, now: datetime, policy: Policy) -> str | None:
    """Why 66号 Art. 5 applies to this application, or None; the hukou region is required when it decides."""
    if app.kind is not Kind.EMPLOYEE_PENSION or province(app.source_region) == province(app.target_region):
        return None
    applied_on = now.astimezone(SHANGHAI).date()
    who = temporary_account_age(app.id_number, applied_on, policy.temporary_accounts)
    if who is None:
        return None
    hukou = app.circumstances.hukou_region
    if not hukou:
        raise invalid(
            [
                FieldViolation(
                    "circumstances.hukou_region",
                    f"required: {who} moves across provinces, so the hukou province decides whether the "
                    "relationship moves or a temporary account opens (66号 Art. 5)",
                )
            ]
        )
    return temporary_account_reason(
        app.id_number, applied_on, app.source_region, app.target_region, hukou, policy.temporary_accounts
    )


def open_transfer(app: Application, transfer_id: str, actor: Participant, now: datetime, policy: Policy) -> Decision:
    """Register an application at the target region (step 1 of every kind). A military transfer (Art. 17)
    arrives with its funds, so it starts in FUNDS_SENT with only the civilian agency's step left."""
    access.may_create(actor, app.kind, app.target_region)
    eligibility_note = check_eligibility(app, policy.known_regions)
    temporary = _temporary_account(app, now, policy)
    continuity = continuity_of(app.kind, app.target_region, app.circumstances, policy.medical)
    draft = Transfer(
        transfer_id=transfer_id,
        kind=app.kind,
        id_number=app.id_number,
        name=app.name,
        source_region=app.source_region,
        target_region=app.target_region,
        circumstances=app.circumstances,
        state=State.SUBMITTED,
        steps=(),
        created_at=now,
        updated_at=now,
        version=1,
        originator=str(actor),
        military=app.military,
        temporary_account=temporary is not None,
        continuity=continuity,
        contact=app.contact,
    )
    if temporary is not None:
        step = _start_step(app.kind, StepName.TEMPORARY_ACCOUNT, access.target_agency(draft), now, policy)
        notice = Notice(NoticeType.TRANSFER_REQUESTED, step.holder, step, f"open a temporary account: {temporary}")
        accepted = f"application accepted; {temporary}"
    elif app.military is not None:
        m = app.military
        info = TransferInfo(
            table_number=" ".join(m.vouchers),
            pooled_fund_fen=m.subsidy_fen,
            individual_account_fen=m.account_fen,
            funds_fen=m.subsidy_fen + m.account_fen,
        )
        step = _start_step(app.kind, StepName.TRANSFER_IN, access.target_agency(draft), now, policy)
        draft = replace(draft, state=State.FUNDS_SENT, info=info)
        notice = Notice(NoticeType.TRANSFER_INFO, step.holder, step, f"vouchers {' '.join(m.vouchers)}")
        accepted = f"military agency sent subsidy {m.subsidy_fen} fen and account {m.account_fen} fen"
    else:
        step = _start_step(app.kind, StepName.CONTACT_LETTER, access.target_agency(draft), now, policy)
        notice = Notice(NoticeType.TRANSFER_REQUESTED, step.holder, step)
        accepted = "application accepted"
    transfer = replace(draft, steps=(step,))
    note = idnumber.mask_text(
        _joined(accepted, eligibility_note, continuity.note if continuity else "", app.note), app.name
    )
    return Decision(
        transfer=transfer,
        event=Event(time=now, actor=str(actor), from_state=None, to_state=transfer.state, note=note),
        notices=(notice,),
        previous_version=0,
    )


def remind_overdue(transfer: Transfer, now: datetime) -> Decision:
    """The sweeper's reminder to the holder of an overdue step: once per step, recorded on the timeline."""
    step = transfer.open_step
    if step is None or step.reminded_at is not None or not step.overdue(now.astimezone(SHANGHAI).date()):
        raise FailedPrecondition(reason="NOT_OVERDUE", message=f"transfer {transfer.transfer_id} owes no reminder")
    reminded = replace(step, reminded_at=now)
    note = f"{step.name.name.lower()} overdue since {step.due}: {REMINDER_NOTE} {step.holder}"
    return Decision(
        transfer=replace(
            transfer, steps=(*transfer.steps[:-1], reminded), updated_at=now, version=transfer.version + 1
        ),
        event=Event(time=now, actor="sigw:sweeper", from_state=transfer.state, to_state=transfer.state, note=note),
        notices=(
            Notice(NoticeType.STEP_OVERDUE, step.holder, reminded, note),
            *tell_applicant(transfer, NoticeType.STEP_OVERDUE, reminded),
        ),
        previous_version=transfer.version,
    )


# The notice that put each step in its holder's hands (sent once more by :func:`renotify`).
_OPENING_NOTICE = {
    StepName.CONTACT_LETTER: NoticeType.TRANSFER_REQUESTED,
    StepName.TEMPORARY_ACCOUNT: NoticeType.TRANSFER_REQUESTED,
    StepName.TRANSFER_OUT: NoticeType.CONTACT_LETTER,
    StepName.TRANSFER_IN: NoticeType.TRANSFER_INFO,
}


def renotify(transfer: Transfer, now: datetime, quiet_for: str) -> Decision:
    """The notice of the open step once more, to its holder, when the step has had no answer for ``quiet_for``
    (an answer lost in flight, say while the gateway stopped): the agency dedups by message id, so the new one
    reaches it, and its answer, keyed by its own request id, is applied once."""
    step = transfer.open_step
    if step is None:
        raise FailedPrecondition(reason="NO_OPEN_STEP", message=f"transfer {transfer.transfer_id} waits on nobody")
    note = f"no answer to {step.name.name.lower()} for {quiet_for}: {RESENT_NOTE} {step.holder}"
    return Decision(
        transfer=replace(transfer, updated_at=now, version=transfer.version + 1),
        event=Event(time=now, actor="sigw:sweeper", from_state=transfer.state, to_state=transfer.state, note=note),
        notices=(Notice(_OPENING_NOTICE[step.name], step.holder, step, note),),
        previous_version=transfer.version,
    )


def _require_state(transfer: Transfer, allowed_from: set[State]) -> None:
    if transfer.state not in allowed_from:
        raise FailedPrecondition(
            reason="WRONG_STATE",
            message=f"transfer {transfer.transfer_id} is {transfer.state.name}; this needs "
            f"{' or '.join(sorted(s.name for s in allowed_from))}",
            metadata={"transfer_id": transfer.transfer_id, "state": transfer.state.name},
        )


def _advance(
    transfer: Transfer,
    actor: Participant,
    now: datetime,
    *,
    allowed_from: set[State],
    to: State,
    next_step: Step | None,
    notices: tuple[Notice, ...],
    note: str,
    tell: NoticeType | None = None,
    **changes: object,
) -> Decision:
    """The transition, with ``notices`` to agencies and, with ``tell``, the result notice to the applicant."""
    _require_state(transfer, allowed_from)
    note = idnumber.mask_text(note, transfer.name)
    if isinstance(changes.get("close_reason"), str):
        changes["close_reason"] = idnumber.mask_text(str(changes["close_reason"]), transfer.name)
    steps = tuple(s if s.completed_at else replace(s, completed_at=now) for s in transfer.steps)
    if next_step is not None:
        steps = (*steps, next_step)
    updated = replace(transfer, state=to, steps=steps, updated_at=now, version=transfer.version + 1, **changes)  # type: ignore[arg-type]
    if tell is not None:
        notices = (*notices, *tell_applicant(updated, tell))
    return Decision(
        transfer=updated,
        event=Event(time=now, actor=str(actor), from_state=transfer.state, to_state=to, note=note),
        notices=notices,
        previous_version=transfer.version,
    )


def send_contact_letter(
    transfer: Transfer, actor: Participant, now: datetime, policy: Policy, *, letter_number: str = "", note: str = ""
) -> Decision:
    access.check(actor, Action.CONTACT_LETTER, transfer)
    _require_state(transfer, {State.SUBMITTED})
    if transfer.temporary_account:
        raise FailedPrecondition(
            reason="TEMPORARY_ACCOUNT_CASE",
            message=f"transfer {transfer.transfer_id} keeps the relationship at {transfer.source_region}: open the "
            "temporary account instead of sending a contact letter (66号 Art. 5)",
            metadata={"transfer_id": transfer.transfer_id},
        )
    step = _start_step(
        transfer.kind, StepName.TRANSFER_OUT, access.source_agency(transfer), now, policy, transfer.created_at
    )
    text = _joined(f"contact letter {letter_number}".strip(), note)
    return _advance(
        transfer,
        actor,
        now,
        allowed_from={State.SUBMITTED},
        to=State.CONTACT_SENT,
        next_step=step,
        notices=(Notice(NoticeType.CONTACT_LETTER, step.holder, step, text),),
        note=text,
    )


def open_temporary_account(
    transfer: Transfer, actor: Participant, now: datetime, *, account_number: str = "", note: str = ""
) -> Decision:
    """The target agency opened the temporary contribution account (66号 Art. 5): the transfer ends, the
    relationship stays at the source region, which is told so."""
    access.check(actor, Action.OPEN_TEMPORARY_ACCOUNT, transfer)
    _require_state(transfer, {State.SUBMITTED})
    if not transfer.temporary_account:
        raise FailedPrecondition(
            reason="NOT_TEMPORARY_ACCOUNT_CASE",
            message=f"transfer {transfer.transfer_id} moves the relationship: send the contact letter",
            metadata={"transfer_id": transfer.transfer_id},
        )
    opened = f"temporary account {account_number}".replace("  ", " ").strip()
    text = _joined(
        f"{opened} opened at {transfer.target_region}; the relationship stays at {transfer.source_region} "
        "(66号 Art. 5)",
        note,
    )
    return _advance(
        transfer,
        actor,
        now,
        allowed_from={State.SUBMITTED},
        to=State.TEMPORARY_ACCOUNT,
        next_step=None,
        notices=_notices_to(access.source_agency(transfer), NoticeType.TEMPORARY_ACCOUNT_OPENED, text),
        note=text,
        tell=NoticeType.TEMPORARY_ACCOUNT_OPENED,
    )


def _pension_violations(
    kind: Kind, circumstances: Circumstances, info: TransferInfo, rules: PensionFundRules
) -> list[FieldViolation]:
    """The employee-pension funds (66号 Art. 4): the account's whole balance, checked against the table's credits
    and interest, and the pooled fund recomputed from the bases."""
    found = [
        FieldViolation(f"info.{path}", text)
        for path, text in account_errors(info.contributions, info.individual_account_fen, rules)
    ]
    if not info.contributions:
        found.append(FieldViolation("info.contributions", "a pension transfer needs the contribution record"))
    # 人社部规〔2017〕1号: out of the institution scheme the pooled fund counts from the 2014-10 reform; enterprise
    # years (also enterprise -> institution) count from 1998 as in 国办发〔2009〕66号.
    since_reform = kind is Kind.INSTITUTION_PENSION or (
        kind is Kind.INSTITUTION_ENTERPRISE_PENSION
        and circumstances.direction is PensionDirection.INSTITUTION_TO_ENTERPRISE
    )
    expected = compute_funds(
        info.contributions, info.individual_account_fen, since_institution_reform=since_reform, rules=rules
    ).pooled_fund_fen
    how = (
        f"{rules.pooled_rate_percent}% of the record's wage bases from "
        f"{(rules.institution_pooled_from if since_reform else rules.pooled_from):%Y-%m}, {rules.rounding.described} "
        f"(convention {rules.rounding.value!r})"
    )
    temporary = (
        kind is Kind.PENSION_COLLECTION and circumstances.collection_source is CollectionSource.TEMPORARY_ACCOUNT
    )
    if temporary and info.pooled_fund_fen < expected:
        # 66号 Art. 5: a temporary account moves every contribution made there with its interest, which is never less
        # than the pooled 12%; the employer's rate and interest are the source region's books.
        found.append(
            FieldViolation(
                "info.pooled_fund_fen",
                f"expected at least {expected} fen ({how}) from a temporary account, received {info.pooled_fund_fen}",
            )
        )
    elif not temporary and info.pooled_fund_fen != expected:
        found.append(
            FieldViolation("info.pooled_fund_fen", f"expected {expected} fen ({how}), received {info.pooled_fund_fen}")
        )
    return found


def _unemployment_violations(
    circumstances: Circumstances, info: TransferInfo, rules: UnemploymentRules
) -> list[FieldViolation]:
    """Art. 14: contribution months accumulate at the new region; the benefit left moves with its months, which the
    contribution time bounds (失业保险条例 Art. 17)."""
    found: list[FieldViolation] = []
    if info.contribution_months <= 0:
        found.append(
            FieldViolation(
                "info.contribution_months", "required: the contribution months that accumulate at the new region"
            )
        )
    if not circumstances.drawing_benefits:
        return found
    longest = rules.longest_benefit_months(info.contribution_months)
    if info.remaining_benefit_fen and info.remaining_benefit_months <= 0:
        found.append(FieldViolation("info.remaining_benefit_months", "required with a remaining benefit"))
    elif info.remaining_benefit_months > longest:
        found.append(
            FieldViolation(
                "info.remaining_benefit_months",
                f"{info.remaining_benefit_months} months of benefit left, but {info.contribution_months} contribution "
                f"months give at most {longest} (失业保险条例 Art. 17)",
            )
        )
    return found


def funds_violations(
    kind: Kind, circumstances: Circumstances, info: TransferInfo, policy: Policy
) -> list[FieldViolation]:
    """Where the funds disagree with the information table, by the kind's rule; empty when they agree."""
    found: list[FieldViolation] = []

    def must_be_zero(fields: tuple[str, ...], why: str) -> None:
        found.extend(FieldViolation(f"info.{name}", why) for name in fields if getattr(info, name))

    benefits = ("remaining_benefit_fen", "medical_subsidy_fen", "training_subsidy_fen", "remaining_benefit_months")
    only_unemployment = "only unemployment transfers move benefit amounts"
    if kind in EMPLOYEE_FUND_KINDS:
        found += _pension_violations(kind, circumstances, info, policy.pension)
        must_be_zero((*benefits, "contribution_months"), only_unemployment)
        parts = info.individual_account_fen + info.pooled_fund_fen
    elif kind is Kind.UNEMPLOYMENT:
        parts = info.remaining_benefit_fen + info.medical_subsidy_fen + info.training_subsidy_fen
        if not circumstances.drawing_benefits:
            must_be_zero(benefits, "benefit amounts move only for a person drawing benefits (Art. 14)")
        must_be_zero(("individual_account_fen", "pooled_fund_fen"), "an unemployment transfer moves no account")
        found += _unemployment_violations(circumstances, info, policy.unemployment)
    else:  # resident pension and the medical kinds move the individual account only
        parts = info.individual_account_fen
        must_be_zero(("pooled_fund_fen",), "no pooled fund moves with this kind of transfer")
        must_be_zero((*benefits, "contribution_months"), only_unemployment)
    if info.funds_fen != parts:
        found.append(
            FieldViolation("info.funds_fen", f"{info.funds_fen} fen transferred, but the table adds up to {parts} fen")
        )
    return found


def send_transfer_info(
    transfer: Transfer, actor: Participant, now: datetime, policy: Policy, *, info: TransferInfo, note: str = ""
) -> Decision:
    """The source agency's table and funds. Raises ``FailedPrecondition(FUNDS_MISMATCH)`` on a mismatch;
    ``refuse_transfer_info`` records that refusal on the timeline."""
    access.check(actor, Action.TRANSFER_INFO, transfer)
    _require_state(transfer, {State.CONTACT_SENT})
    bad = [FieldViolation(f"info.{path}", text) for path, text in record_errors(info.contributions)]
    if bad:
        raise invalid(bad, reason="BAD_CONTRIBUTION_RECORD")
    mismatch = funds_violations(transfer.kind, transfer.circumstances, info, policy)
    if mismatch:
        raise FailedPrecondition(
            reason="FUNDS_MISMATCH",
            message="the funds do not match the information table: "
            + "; ".join(f"{v.field}: {v.description}" for v in mismatch),
            violations=mismatch,
            metadata={"transfer_id": transfer.transfer_id},
        )
    step = _start_step(transfer.kind, StepName.TRANSFER_IN, access.target_agency(transfer), now, policy)
    what = "account balance" if transfer.kind in MEDICAL_KINDS else "funds"
    text = _joined(
        f"information table {info.table_number} and {what} {info.funds_fen} fen sent".replace("  ", " "), note
    )
    return _advance(
        transfer,
        actor,
        now,
        allowed_from={State.CONTACT_SENT},
        to=State.FUNDS_SENT,
        next_step=step,
        notices=(Notice(NoticeType.TRANSFER_INFO, step.holder, step, text),),
        note=text,
        info=info,
    )


MAX_RECORDED_REFUSALS = 20
"""Refused information tables a transfer's timeline records; later ones are answered but not recorded, so a
sender repeating a bad table cannot grow the transfer without bound."""
_REFUSED = "information table refused: "


def recorded_refusals(timeline: Iterable[Event]) -> int:
    return sum(e.note.startswith(_REFUSED) for e in timeline)


def refuse_transfer_info(
    transfer: Transfer, actor: Participant, now: datetime, error: FailedPrecondition, recorded: int = 0
) -> Decision:
    """Record a refused information table on the timeline (``recorded`` are there already, fewer than
    ``MAX_RECORDED_REFUSALS``); the state and the open step stay as they were."""
    note = f"{_REFUSED}{error.message}"
    if recorded + 1 >= MAX_RECORDED_REFUSALS:
        note += f" (refusal {recorded + 1}: later ones are answered but no longer recorded)"
    return Decision(
        transfer=replace(transfer, updated_at=now, version=transfer.version + 1),
        event=Event(
            time=now,
            actor=str(actor),
            from_state=transfer.state,
            to_state=transfer.state,
            note=idnumber.mask_text(note, transfer.name),
        ),
        notices=(),
        previous_version=transfer.version,
    )


def complete(transfer: Transfer, actor: Participant, now: datetime, *, note: str = "") -> Decision:
    access.check(actor, Action.COMPLETE, transfer)
    text = _joined("record and account rebuilt; person notified (Art. 16)", note)
    return _advance(
        transfer,
        actor,
        now,
        allowed_from={State.FUNDS_SENT},
        to=State.COMPLETED,
        next_step=None,
        notices=_notices_to(
            access.source_agency(transfer), NoticeType.TRANSFER_COMPLETED, "transfer completed: end the membership"
        ),
        note=text,
        tell=NoticeType.TRANSFER_COMPLETED,
    )


def _notices_to(agency: AgencyKey, kind: NoticeType, note: str) -> tuple[Notice, ...]:
    """A notice for an agency; none for the military area, whose agencies follow their transfers through the
    gateway and run no RegionAgencyService."""
    return () if agency.region == MILITARY_AREA else (Notice(kind, agency, None, note),)


def tell_applicant(transfer: Transfer, kind: NoticeType, step: Step | None = None) -> tuple[Notice, ...]:
    """The result notice (Art. 16) for the person, and for the employer where the application names one."""
    # The person always (the portal reaches them by mobile, or by ID number in its app); the employer at the
    # mobile number the application gave for it.
    addressees = (Addressee.PERSON, Addressee.EMPLOYER) if transfer.contact.employer_mobile else (Addressee.PERSON,)
    return tuple(Notice(kind, addressee, step) for addressee in addressees)


def _other_party(transfer: Transfer, actor: Participant) -> AgencyKey:
    source = access.source_agency(transfer)
    return access.target_agency(transfer) if actor.agency == source else source


def reject(transfer: Transfer, actor: Participant, now: datetime, *, reason: str) -> Decision:
    access.check(actor, Action.REJECT, transfer)
    other = _other_party(transfer, actor)
    notices = () if other == actor.agency else _notices_to(other, NoticeType.TRANSFER_CLOSED, reason)
    return _advance(
        transfer,
        actor,
        now,
        allowed_from={State.SUBMITTED, State.CONTACT_SENT, State.FUNDS_SENT},
        to=State.REJECTED,
        next_step=None,
        notices=notices,
        note=f"rejected: {reason}",
        tell=NoticeType.TRANSFER_CLOSED,
        close_reason=reason,
        closed_by=str(actor),
    )


def cancel(transfer: Transfer, actor: Participant, now: datetime, *, reason: str) -> Decision:
    access.check(actor, Action.CANCEL, transfer)
    # The source agency only knows of the transfer once the contact letter went out (and needs no notice when
    # it is the cancelling agency itself, inside one region).
    source = access.source_agency(transfer)
    told = transfer.state is State.CONTACT_SENT and source != actor.agency
    notices = (Notice(NoticeType.TRANSFER_CLOSED, source, None, reason),) if told else ()
    return _advance(
        transfer,
        actor,
        now,
        allowed_from={State.SUBMITTED, State.CONTACT_SENT},
        to=State.CANCELLED,
        next_step=None,
        notices=notices,
        note=f"cancelled: {reason}",
        tell=NoticeType.TRANSFER_CLOSED,
        close_reason=reason,
        closed_by=str(actor),
    )
