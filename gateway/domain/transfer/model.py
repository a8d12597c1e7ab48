"""Plain data for transfers: the enums (numbered as in ``sigw.v1``) and frozen records."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime

from gateway.domain.calendar import SHANGHAI
from gateway.domain.participants import AgencyKey
from gateway.domain.transfer.pension import ContributionYear

__all__ = [
    "LANES",
    "MILITARY_AREA",
    "Addressee",
    "Application",
    "Circumstances",
    "CollectionSource",
    "Contact",
    "Decision",
    "Event",
    "Kind",
    "Line",
    "MedicalContinuity",
    "MilitaryService",
    "Notice",
    "NoticeType",
    "PensionDirection",
    "State",
    "Step",
    "StepName",
    "Transfer",
    "TransferInfo",
]


class Line(enum.IntEnum):
    """Insurance line (险种)."""

    PENSION = 1
    MEDICAL = 2
    UNEMPLOYMENT = 3
    WORK_INJURY = 4
    MATERNITY = 5


class Kind(enum.IntEnum):
    """Transfer kind (docs/design.md §2)."""

    EMPLOYEE_PENSION = 1
    INSTITUTION_ENTERPRISE_PENSION = 2
    RESIDENT_PENSION = 3
    EMPLOYEE_MEDICAL = 4
    RESIDENT_MEDICAL = 5
    EMPLOYEE_RESIDENT_MEDICAL = 6
    UNEMPLOYMENT = 7
    WORK_INJURY = 8
    MATERNITY = 9
    MILITARY_PENSION = 10
    MILITARY_MEDICAL = 11
    INSTITUTION_PENSION = 12
    """Between institutions (机关事业单位之间) across regions (人社部规〔2017〕1号)."""
    PENSION_COLLECTION = 13
    """To the region that pays the pension (待遇领取地): a temporary account collected (归集) or the relationship
    moved back (转回), 国办发〔2009〕66号 Arts. 5-6."""


class State(enum.IntEnum):
    SUBMITTED = 1
    CONTACT_SENT = 2
    FUNDS_SENT = 3
    COMPLETED = 4
    REJECTED = 5
    CANCELLED = 6
    TEMPORARY_ACCOUNT = 7
    """Ended without moving: the relationship stays at the source region and the target region keeps a
    temporary contribution account (临时基本养老保险缴费账户, 66号 Art. 5)."""

    @property
    def ended(self) -> bool:
        return self in (State.COMPLETED, State.REJECTED, State.CANCELLED, State.TEMPORARY_ACCOUNT)


class StepName(enum.IntEnum):
    CONTACT_LETTER = 1
    TRANSFER_OUT = 2
    TRANSFER_IN = 3
    TEMPORARY_ACCOUNT = 4
    """The target agency opens the temporary contribution account (66号 Art. 5)."""


class PensionDirection(enum.IntEnum):
    UNSPECIFIED = 0
    INSTITUTION_TO_ENTERPRISE = 1
    ENTERPRISE_TO_INSTITUTION = 2


class NoticeType(enum.IntEnum):
    TRANSFER_REQUESTED = 1
    CONTACT_LETTER = 2
    TRANSFER_INFO = 3
    TRANSFER_COMPLETED = 4
    TRANSFER_CLOSED = 5
    STEP_OVERDUE = 6
    TEMPORARY_ACCOUNT_OPENED = 7


class Addressee(enum.IntEnum):
    """Whom a result notice (Art. 16) is for; a portal delivers it to them."""

    PERSON = 1
    EMPLOYER = 2


class CollectionSource(enum.IntEnum):
    """What a pension collection (``Kind.PENSION_COLLECTION``) takes from its source region."""

    UNSPECIFIED = 0
    RELATIONSHIP = 1
    """The relationship and its funds move back (转回): the employee-pension amounts (66号 Art. 4)."""
    TEMPORARY_ACCOUNT = 2
    """A temporary account's contributions with interest are collected (归集, 66号 Art. 5)."""


@dataclass(frozen=True)
class Circumstances:
    """Eligibility facts declared by the accepting agency."""

    drawing_benefits: bool = False
    hukou_moved: bool = False
    residence_changed: bool = False
    retired: bool = False
    continuous_enrolment_months: int = 0
    direction: PensionDirection = PensionDirection.UNSPECIFIED
    hukou_region: str = ""
    """户籍所在地 (6 digits), declared by the applicant; decides the temporary account (66号 Art. 5)."""
    gap_months: int = 0
    """Medical: months between the end of enrolment at the old region and the start at the new one."""
    collection_source: CollectionSource = CollectionSource.UNSPECIFIED
    """Required for a pension collection."""


@dataclass(frozen=True)
class TransferInfo:
    """The information table (信息表) and the funds the source agency sends; all money in fen."""

    table_number: str = ""
    individual_account_fen: int = 0
    pooled_fund_fen: int = 0
    contributions: tuple[ContributionYear, ...] = ()
    funds_fen: int = 0
    remaining_benefit_fen: int = 0
    medical_subsidy_fen: int = 0
    training_subsidy_fen: int = 0
    contribution_months: int = 0
    """Unemployment (Art. 14): contribution months, which accumulate at the new region."""
    remaining_benefit_months: int = 0
    """Unemployment, while drawing benefits: the months of benefit left."""


@dataclass(frozen=True)
class MedicalContinuity:
    """Whether a medical transfer keeps the enrolment continuous (医保办发〔2021〕43号), decided at acceptance."""

    continuous: bool
    waiting_months: int
    """A waiting period the new region applies before benefits (0 when continuous)."""
    months_to_pay: int
    """Missed months the person may pay to keep the enrolment continuous."""
    note: str


@dataclass(frozen=True)
class Step:
    """A step of a transfer: who must act and by when (a Chinese working-day deadline)."""

    name: StepName
    holder: AgencyKey
    started_at: datetime
    working_days: int
    due: date
    provisional: bool
    completed_at: datetime | None = None
    reminded_at: datetime | None = None

    def overdue(self, today: date) -> bool:
        """Finished after its due date, or still open after it (``today`` in Asia/Shanghai)."""
        acted = self.completed_at.astimezone(SHANGHAI).date() if self.completed_at else today
        return acted > self.due


LANES = ("priority", "ordinary")
"""The delivery lanes, priority first (Art. 17: military transfers get priority)."""

# Service periods carry this area code (军队) instead of a region's.
MILITARY_AREA = "910000"


@dataclass(frozen=True)
class MilitaryService:
    """What a military agency sends with a discharged member's transfer (Art. 17): the service period (it counts
    as contribution years), the subsidy and individual-account amounts, and the vouchers' numbers."""

    service_start: date
    service_end: date
    subsidy_fen: int
    account_fen: int
    vouchers: tuple[str, ...]
    spouse: bool = False
    """An accompanying spouse without a job (随军未就业配偶)."""

    @property
    def service_months(self) -> int:
        months = (self.service_end.year - self.service_start.year) * 12 + self.service_end.month
        return months - self.service_start.month + 1


@dataclass(frozen=True)
class Contact:
    """How the person, and the employer where the application names one, are told the result (Art. 16). Kept
    encrypted; shown masked."""

    mobile: str = ""
    employer_name: str = ""
    employer_mobile: str = ""
    portal: str = ""
    """The portal (participant code) that tells them; empty for the registry's first."""


@dataclass(frozen=True)
class Application:
    """A validated request to open a transfer."""

    kind: Kind
    id_number: str
    name: str
    source_region: str
    target_region: str
    circumstances: Circumstances = field(default_factory=Circumstances)
    note: str = ""
    military: MilitaryService | None = None
    contact: Contact = field(default_factory=Contact)


@dataclass(frozen=True)
class Transfer:
    """A relationship transfer as stored. The timeline lives beside it (see ``Event``)."""

    transfer_id: str
    kind: Kind
    id_number: str
    name: str
    source_region: str
    target_region: str
    circumstances: Circumstances
    state: State
    steps: tuple[Step, ...]
    created_at: datetime
    updated_at: datetime
    info: TransferInfo | None = None
    close_reason: str = ""
    closed_by: str = ""
    """The participant (written form) that rejected or cancelled it."""
    version: int = 1
    originator: str = ""
    """The participant that opened it."""
    military: MilitaryService | None = None
    temporary_account: bool = False
    """66号 Art. 5 applies: the target region opens a temporary account; the relationship stays at the source."""
    continuity: MedicalContinuity | None = None
    contact: Contact = field(default_factory=Contact)

    @property
    def priority(self) -> bool:
        """Military transfers travel the priority lane (Art. 17)."""
        return self.military is not None

    @property
    def lane(self) -> str:
        """The delivery lane its messages travel: ``priority`` (military, Art. 17) or ``ordinary``."""
        return "priority" if self.priority else "ordinary"

    @property
    def open_step(self) -> Step | None:
        if self.state.ended or not self.steps:
            return None
        last = self.steps[-1]
        return None if last.completed_at else last

    def overdue(self, today: date) -> bool:
        step = self.open_step
        return step is not None and step.overdue(today)


@dataclass(frozen=True)
class Event:
    """A timeline entry (Arts. 11, 38): who moved the transfer from which state to which, when."""

    time: datetime
    actor: str
    from_state: State | None
    to_state: State
    note: str = ""


@dataclass(frozen=True)
class Notice:
    """An outbound message the dispatcher must deliver to ``recipient``: an agency, or the applicant or employer
    (through a portal)."""

    type: NoticeType
    recipient: AgencyKey | Addressee
    step: Step | None = None
    note: str = ""


@dataclass(frozen=True)
class Decision:
    """What a transition decided: the new transfer, its timeline event and its outbound notices.

    The store commits all three atomically, or none.
    """

    transfer: Transfer
    event: Event
    notices: tuple[Notice, ...]
    previous_version: int
