"""A stay (就诊) as the national interface keeps it: opened by 2201/2401, fee details uploaded by batch and
serial number and classed by the place of treatment's catalogue, then settled, in one or several settlements
(a mid-stay settlement settles what was uploaded so far).

Which details a settlement covers is kept in the stay as a *claim*: the settling message's msgid, its
settlement id and the detail serials. A claim is written before the insured region is asked and its outcome is
read from the settlement records themselves: a settled settlement holds its details, a cancelled or refused one
frees them. So a cancellation over sigw.v1, a reversal or a process that died between the two writes can never
leave a detail settled twice or never. Pure: the store keeps the stay, :mod:`gateway.app.visits` decides.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from gateway.domain.errors import FailedPrecondition
from gateway.domain.settlement.catalogue import CatalogueEntry
from gateway.domain.settlement.records import CredentialType
from gateway.domain.settlement.split import BillItem, InsuranceType, MedicalType

__all__ = [
    "CLAIM_STALE_S",
    "MAX_DETAILS",
    "ClaimOutcome",
    "FeeDetail",
    "Insurance",
    "InsuredPerson",
    "SettleClaim",
    "Visit",
    "VisitState",
]

MAX_DETAILS = 2000
"""Most fee details one stay may hold (uploads beyond are refused)."""

CLAIM_STALE_S = 120.0
"""A claim whose settlement never appeared is dropped after this long (its call ended without settling)."""


class VisitState(enum.StrEnum):
    OPEN = "OPEN"
    CANCELLED = "CANCELLED"


class ClaimOutcome(enum.Enum):
    """What became of a claim's settlement."""

    SETTLED = "settled"
    CANCELLED = "cancelled"  # cancelled or reversed: its details are free again
    PENDING = "pending"  # no settlement yet: the call may still be running
    ABANDONED = "abandoned"  # no settlement, and too old to be in flight: drop it


@dataclass(frozen=True)
class FeeDetail:
    """One uploaded fee detail (费用明细), classed by the place of treatment's catalogue."""

    serial: str  # feedetl_sn: unique within the stay
    batch: str  # chrg_bchno
    entry: CatalogueEntry
    count: str  # cnt, as a normalised decimal text
    price: str  # pric, as a normalised decimal text
    amount_fen: int  # det_item_fee_sumamt
    occurred: str  # fee_ocur_time, as sent
    msgid: str  # the upload message's (scoped) msgid

    def item(self) -> BillItem:
        return self.entry.item(self.amount_fen)

    def same_as(self, other: FeeDetail) -> bool:
        """The same detail sent again (a retried upload), whatever message carried it."""
        return replace(self, msgid="") == replace(other, msgid="")


@dataclass(frozen=True)
class SettleClaim:
    msgid: str  # the settling message's scoped msgid
    settlement_id: str
    serials: tuple[str, ...]
    claimed_ms: int


@dataclass(frozen=True)
class Visit:
    visit_id: str  # mdtrt_id
    msgid: str  # the opening message's scoped msgid (its idempotency key)
    fingerprint: str  # of the opening message
    hospital_code: str  # fixmedins_code
    hospital_level: int
    treatment_region: str  # mdtrtarea_admvs
    insured_region: str  # insuplc_admdvs
    person_number: str  # psn_no
    id_number: str  # certno
    name: str  # psn_name
    credential_type: CredentialType  # mdtrt_cert_type
    insurance_type: InsuranceType  # insutype
    medical_type: MedicalType  # med_type
    begin: datetime  # begntime
    opened_at: datetime
    emergency: bool = False
    state: VisitState = VisitState.OPEN
    details: tuple[FeeDetail, ...] = ()
    claims: tuple[SettleClaim, ...] = ()
    version: int = 1
    outcomes: dict[str, ClaimOutcome] = field(default_factory=dict, compare=False)
    """Each claim's outcome by msgid, as read with the stay (not stored)."""

    @property
    def inpatient(self) -> bool:
        return self.medical_type.inpatient

    def outcome(self, claim: SettleClaim) -> ClaimOutcome:
        return self.outcomes.get(claim.msgid, ClaimOutcome.PENDING)

    def claim_of(self, msgid: str) -> SettleClaim | None:
        return next((c for c in self.claims if c.msgid == msgid), None)

    def holds(self, claim: SettleClaim) -> bool:
        """Whether ``claim`` still holds its details: its settlement stands, or its call may still be running."""
        return self.outcome(claim) in (ClaimOutcome.SETTLED, ClaimOutcome.PENDING)

    def held_serials(self) -> set[str]:
        """Details held by a settled or possibly running settlement."""
        return {serial for claim in self.claims if self.holds(claim) for serial in claim.serials}

    def require_open(self) -> None:
        if self.state is not VisitState.OPEN:
            raise FailedPrecondition(
                reason="VISIT_CANCELLED",
                message=f"visit {self.visit_id} was cancelled",
                metadata={"mdtrt_id": self.visit_id},
            )

    def unsettled(self, batch: str | None) -> list[FeeDetail]:
        """The details a settlement would cover now: not held, of ``batch`` when given."""
        held = self.held_serials()
        return [d for d in self.details if d.serial not in held and (batch is None or d.batch == batch)]

    def with_details(self, added: list[FeeDetail]) -> Visit:
        """The stay with ``added`` uploaded; a detail sent again unchanged is taken once. Raises
        ``FailedPrecondition`` for a serial already used for another detail or one already settled."""
        self.require_open()
        known = {d.serial: d for d in self.details}
        fresh: list[FeeDetail] = []
        for detail in added:
            before = known.get(detail.serial)
            if before is not None:
                if not before.same_as(detail):
                    raise FailedPrecondition(
                        reason="DETAIL_SERIAL_USED",
                        message=f"fee detail {detail.serial} was uploaded before with other content",
                        metadata={"feedetl_sn": detail.serial},
                    )
                continue
            known[detail.serial] = detail
            fresh.append(detail)
        if len(known) > MAX_DETAILS:
            raise FailedPrecondition(
                reason="TOO_MANY_DETAILS", message=f"a stay holds at most {MAX_DETAILS} fee details"
            )
        return replace(self, details=self.details + tuple(fresh), version=self.version + 1)

    def without_details(self, batch: str | None, serials: set[str] | None) -> tuple[Visit, int]:
        """The stay with a batch or the given serials cancelled (with neither: every unsettled detail), and how
        many were removed. Raises ``FailedPrecondition`` when one of those named is settled."""
        self.require_open()
        held = self.held_serials()

        def chosen(d: FeeDetail) -> bool:
            if batch is None and serials is None:
                return d.serial not in held
            return (batch is None or d.batch == batch) and (serials is None or d.serial in serials)

        removing = [d for d in self.details if chosen(d)]
        settled = [d.serial for d in removing if d.serial in held]
        if settled:
            raise FailedPrecondition(
                reason="DETAIL_SETTLED",
                message=f"fee details {', '.join(settled[:5])} are settled: cancel the settlement first",
                metadata={"feedetl_sn": settled[0]},
            )
        kept = tuple(d for d in self.details if not chosen(d))
        return replace(self, details=kept, version=self.version + 1), len(removing)

    def with_claim(self, claim: SettleClaim) -> Visit:
        """The stay with ``claim`` made and the claims whose settlement came to nothing dropped."""
        self.require_open()
        held = self.held_serials()
        if held.intersection(claim.serials):
            raise FailedPrecondition(
                reason="DETAIL_SETTLED", message="some of these fee details are settled or being settled"
            )
        kept = tuple(c for c in self.claims if self.outcome(c) is not ClaimOutcome.ABANDONED)
        return replace(self, claims=(*kept, claim), version=self.version + 1)

    def without_claim(self, msgid: str) -> Visit:
        return replace(self, claims=tuple(c for c in self.claims if c.msgid != msgid), version=self.version + 1)

    def cancelled(self) -> Visit:
        """The stay cancelled (2202/2404); refused while a settlement of it stands or may be running."""
        if self.state is VisitState.CANCELLED:
            return self
        standing = [c.settlement_id for c in self.claims if self.holds(c)]
        if standing:
            raise FailedPrecondition(
                reason="VISIT_SETTLED",
                message=f"visit {self.visit_id} has settlement {standing[0]}: cancel it first",
                metadata={"setl_id": standing[0]},
            )
        return replace(self, state=VisitState.CANCELLED, version=self.version + 1)


@dataclass(frozen=True)
class Insurance:
    """One insurance a person holds in the insured region (insuinfo)."""

    insurance_type: str  # insutype
    balance_fen: int  # balc
    person_type: str  # psn_type
    insured_region: str  # insuplc_admdvs
    active: bool  # psn_insu_stas
    since: date | None  # psn_insu_date


@dataclass(frozen=True)
class InsuredPerson:
    """Who a credential names, as the insured region's agency answered 1101."""

    person_number: str  # psn_no
    id_number: str  # certno
    name: str  # psn_name
    gender: str  # gend
    birthday: date | None  # brdy
    insured_region: str
    insurances: tuple[Insurance, ...]

    def insurance(self, insurance_type: str) -> Insurance | None:
        return next((i for i in self.insurances if i.insurance_type == insurance_type), None)
