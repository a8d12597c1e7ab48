"""The hospital's flow of the national interface as use cases: sign-in, the person (1101), a stay and its fee
details, (pre-)settlement of what was uploaded, cancellation, reversal, reconciliation and the month's clearing
details. Settling, cancelling and reconciling go through the same use cases as ``sigw.v1``; this module adds the
state the national flow keeps between messages (see ``gateway.domain.settlement.visit``).

Every message's idempotency key is its msgid scoped to the hospital (``ids.scoped_msgid``).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from gateway.app.clearing import ClearingService
from gateway.app.filings import FilingService
from gateway.app.idempotency import RequestKey
from gateway.app.ports import (
    AgencyCallFailed,
    AgencyGateway,
    Clock,
    NationalFile,
    SettlementRepository,
    VisitRepository,
    agency_error,
)
from gateway.app.settlements import SettlementService
from gateway.domain import access, ids
from gateway.domain.calendar import SHANGHAI
from gateway.domain.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    NotFound,
    PermissionDenied,
    SigwError,
    Unauthenticated,
    invalid,
)
from gateway.domain.participants import Participant
from gateway.domain.regions import Hospital
from gateway.domain.settlement import filing as filing_rules
from gateway.domain.settlement import reconciliation
from gateway.domain.settlement.catalogue import Catalogue
from gateway.domain.settlement.records import Bill, CredentialType, Figures, SettlementRecord, SettlementState
from gateway.domain.settlement.split import InsuranceType, MedicalType
from gateway.domain.settlement.visit import (
    CLAIM_STALE_S,
    ClaimOutcome,
    FeeDetail,
    InsuredPerson,
    SettleClaim,
    Visit,
)

__all__ = [
    "FILE_KEPT",
    "ClearingRow",
    "Confirmation",
    "DetailInput",
    "DetailReconciliation",
    "NationalReconciliation",
    "SettleInput",
    "VisitInput",
    "VisitService",
]

_SAVE_ATTEMPTS = 5
FILE_KEPT = timedelta(days=3)
"""How long an uploaded file waits for its 3202, and a result file for its download (9102)."""
_OUTPATIENT_CLEARING = "11"
_INPATIENT_CLEARING = "21"


@dataclass(frozen=True)
class VisitInput:
    """2201 / 2401: a stay to open."""

    person_number: str  # psn_no
    insured_region: str  # insuplc_admdvs ("" : the person's)
    credential_type: CredentialType
    insurance_type: InsuranceType
    medical_type: MedicalType
    begin: datetime  # begntime
    emergency: bool


@dataclass(frozen=True)
class DetailInput:
    """One fee detail of 2204 / 2301, as sent."""

    serial: str  # feedetl_sn
    batch: str  # chrg_bchno
    code: str  # med_list_codg
    count: str
    price: str
    amount_fen: int  # det_item_fee_sumamt
    expected_fen: int  # cnt × pric, rounded to the fen
    occurred: str


@dataclass(frozen=True)
class SettleInput:
    """2206 / 2207 / 2303 / 2304."""

    visit_id: str  # mdtrt_id
    person_number: str  # psn_no
    batch: str | None  # chrg_bchno (outpatient)
    total_fen: int  # medfee_sumamt
    discharge: date | None  # dscg_time / endtime
    insurance_type: str  # insutype: must be the stay's
    medical_type: str  # med_type: the stay's, when given ("")
    account_declined: bool = False  # acct_used_flag 0


@dataclass(frozen=True)
class NationalReconciliation:
    matched: bool
    gateway_totals: reconciliation.ReconTotals
    description: str


@dataclass(frozen=True)
class DetailReconciliation:
    """3202: the settlements the hospital's statement file and the platform disagree on, with the msgid of each
    settlement the platform holds (as the hospital sent it)."""

    differences: list[reconciliation.Difference[reconciliation.StatementLine]]
    msgids: dict[str, str]
    compared: int  # the platform's settlements in the period and scope


@dataclass(frozen=True)
class Confirmation:
    """3261: one settlement of the month the hospital confirms (or disputes), with the amounts it confirms."""

    settlement_id: str  # setl_sn
    confirmed: bool  # cnfm_flag 1
    total_fen: int | None  # medfee_sumamt, when sent
    paid_by_insurance_fen: int | None  # optins_pay_sumamt (fund + account), when sent

    def agrees_with(self, figures: Figures) -> bool:
        return (self.total_fen is None or self.total_fen == figures.total_fen) and (
            self.paid_by_insurance_fen is None
            or self.paid_by_insurance_fen == figures.fund_pay_fen + figures.account_pay_fen
        )


@dataclass(frozen=True)
class ClearingRow:
    settlement: SettlementRecord
    confirmed: str  # the hospital's cnfm_flag, "" when not confirmed yet


def clearing_type(medical_type: MedicalType) -> str:
    """清算类别 (clr_type) of a settlement: 11 outpatient, 21 inpatient."""
    return _INPATIENT_CLEARING if medical_type.inpatient else _OUTPATIENT_CLEARING


def _issued_number(now: datetime, kind: str, token: str) -> str:
    """A sign_no or file_qury_no (30 characters): the time, a letter, 15 random characters. The letter keeps the
    digits from ever running on into something shaped like an ID number."""
    return f"{now.astimezone(SHANGHAI):%Y%m%d%H%M%S}{kind}{token[:15]}"


def _in_scope(record: SettlementRecord, insured_region: str, insurance_type: str, clearing_kind: str) -> bool:
    """Whether a settlement is in a reconciliation's scope (each of the three when given, "" for any)."""
    return (
        (not insurance_type or record.bill.insurance_type.value == insurance_type)
        and (not clearing_kind or clearing_type(record.bill.medical_type) == clearing_kind)
        and (not insured_region or record.insured_region == insured_region)
    )


class VisitService:
    def __init__(
        self,
        visits: VisitRepository,
        settlements: SettlementService,
        settlement_store: SettlementRepository,
        clearing: ClearingService,
        filings: FilingService,
        agencies: AgencyGateway,
        hospitals: Mapping[str, Hospital],
        catalogues: Mapping[str, Catalogue],
        clock: Clock,
        new_token: Callable[[], str] = lambda: secrets.token_hex(8),
        on_confirmed: Callable[[int, int], None] = lambda _confirmed, _disputed: None,
    ) -> None:
        """``on_confirmed(confirmed, disputed)`` is told the rows of each clearing confirmation (3261) recorded
        (metrics)."""
        self.visits = visits
        self.settlements = settlements
        self.settlement_store = settlement_store
        self.clearing = clearing
        self.filings = filings
        self.agencies = agencies
        self.hospitals = hospitals
        self.catalogues = catalogues
        self.clock = clock
        self.new_token = new_token
        self.on_confirmed = on_confirmed

    # ------------------------------------------------------------------------------------------ who calls

    def hospital(self, actor: Participant, code: str, treatment_region: str) -> Hospital:
        """The registered hospital the caller is; refused when the envelope names another or another place."""
        access.require_hospital(actor, code, treatment_region or None)
        found = self.hospitals.get(code)
        if found is None or found.region != actor.region:
            raise PermissionDenied(
                reason="HOSPITAL_NOT_REGISTERED",
                message=f"hospital {code} is not registered with sigw for region {actor.region}",
            )
        return found

    async def sign_in(self, hospital: Hospital, operator: str) -> tuple[str, datetime]:
        now = self.clock()
        sign_no = _issued_number(now, "S", self.new_token())
        await self.visits.sign_in(sign_no, hospital.code, operator, now)
        return sign_no, now

    async def require_signed_in(self, hospital: Hospital, sign_no: str) -> None:
        if not sign_no or await self.visits.signed_in(sign_no) != hospital.code:
            raise Unauthenticated(
                reason="NOT_SIGNED_IN", message="sign_no is not a live sign-in of this hospital: sign in (9001)"
            )

    async def sign_out(self, hospital: Hospital, sign_no: str) -> datetime:
        await self.require_signed_in(hospital, sign_no)
        await self.visits.sign_out(sign_no)
        return self.clock()

    # ------------------------------------------------------------------------------------------ the person

    async def person(
        self,
        hospital: Hospital,
        *,
        id_number: str,
        name: str,
        credential: CredentialType,
        insured_region: str,
        timeout_s: float,
    ) -> InsuredPerson:
        """Ask the insured region who this is (1101). With no insured region given, the person's filings for
        the hospital's place name it."""
        region = insured_region or await self._filed_region(id_number, hospital.region)
        self.settlements.require_non_local(hospital.region, region, "insuplc_admdvs")
        try:
            person = await self.agencies.person_info(region, id_number, name, credential, hospital.region, timeout_s)
        except AgencyCallFailed as failed:
            if failed.code == "NOT_FOUND":
                raise NotFound(
                    reason="PERSON_NOT_FOUND", message=f"region {region} has nobody insured under this credential"
                ) from failed
            raise agency_error(failed, region, "the person's information", "insuplc_admdvs") from failed
        await self.visits.remember_person(person)
        return person

    async def _filed_region(self, id_number: str, place: str) -> str:
        today = self.clock().astimezone(SHANGHAI).date()
        filings = await self.filings.store.person_filings(id_number)
        regions = sorted({f.insured_region for f in filings if filing_rules.covers(f, place, today)})
        if len(regions) != 1:
            raise invalid(
                [FieldViolation("insuplc_admdvs", "required: the person has no single filing for this place")],
                reason="INSURED_REGION_REQUIRED",
            )
        return regions[0]

    async def _person(self, person_number: str) -> InsuredPerson:
        person = await self.visits.person(person_number)
        if person is None:
            raise NotFound(
                reason="PERSON_NOT_FOUND",
                message=f"psn_no {person_number} is not known here: ask for the person's information (1101) first",
            )
        return person

    # ------------------------------------------------------------------------------------------ stays

    async def open_visit(self, hospital: Hospital, key: RequestKey, spec: VisitInput) -> Visit:
        """Open a stay (2201 / 2401); a retry of the same msgid returns the same stay."""
        person = await self._person(spec.person_number)
        if spec.insured_region and spec.insured_region != person.insured_region:
            raise invalid(
                [FieldViolation("insuplc_admdvs", f"the person is insured in {person.insured_region}")],
                reason="INSURED_REGION_MISMATCH",
            )
        insurance = person.insurance(spec.insurance_type.value)
        if insurance is None or not insurance.active:
            raise FailedPrecondition(
                reason="NOT_INSURED",
                message=f"the person holds no active insurance {spec.insurance_type.value} in {person.insured_region}",
            )
        visit = Visit(
            visit_id=self.visits.visit_id_for(key.key),
            msgid=key.key,
            fingerprint=key.fingerprint,
            hospital_code=hospital.code,
            hospital_level=hospital.level,
            treatment_region=hospital.region,
            insured_region=person.insured_region,
            person_number=person.person_number,
            id_number=person.id_number,
            name=person.name,
            credential_type=spec.credential_type,
            insurance_type=spec.insurance_type,
            medical_type=spec.medical_type,
            begin=spec.begin,
            opened_at=self.clock(),
            emergency=spec.emergency,
        )
        earlier = await self.visits.create(visit)
        if earlier is None:
            return visit
        if earlier.fingerprint != key.fingerprint:
            raise AlreadyExists(reason="MSGID_REUSED", message=f"msgid {key.key} was used before for another message")
        return await self._resolved(earlier)

    async def visit(self, hospital: Hospital, visit_id: str, person_number: str) -> Visit:
        """The hospital's own stay, with its claims' outcomes; another hospital's or a missing one: NOT_FOUND."""
        found = await self.visits.load(visit_id) if ids.VISIT_ID.fullmatch(visit_id) else None
        if found is None or found.hospital_code != hospital.code:
            raise NotFound(reason="VISIT_NOT_FOUND", message=f"no stay {visit_id} of this hospital")
        if person_number and person_number != found.person_number:
            raise invalid([FieldViolation("psn_no", "is not the person of this stay")], reason="PERSON_MISMATCH")
        return await self._resolved(found)

    async def _resolved(self, visit: Visit) -> Visit:
        states = await self.settlement_store.states([c.settlement_id for c in visit.claims])
        now_ms = int(self.clock().timestamp() * 1000)
        outcomes = {}
        for claim in visit.claims:
            state = states.get(claim.settlement_id)
            if state is SettlementState.SETTLED:
                outcomes[claim.msgid] = ClaimOutcome.SETTLED
            elif state is SettlementState.CANCELLED:
                outcomes[claim.msgid] = ClaimOutcome.CANCELLED
            elif now_ms - claim.claimed_ms > CLAIM_STALE_S * 1000:
                outcomes[claim.msgid] = ClaimOutcome.ABANDONED
            else:
                outcomes[claim.msgid] = ClaimOutcome.PENDING
        return replace(visit, outcomes=outcomes)

    async def _change(
        self, hospital: Hospital, visit_id: str, person_number: str, change: Callable[[Visit], Visit]
    ) -> Visit:
        """Apply ``change`` to the freshly read stay and write it, again if another message changed it first."""
        for _ in range(_SAVE_ATTEMPTS):
            visit = await self.visit(hospital, visit_id, person_number)
            updated = change(visit)
            if updated is visit or await self.visits.save(updated):
                return updated
        raise Aborted(reason="VISIT_BUSY", message=f"stay {visit_id} keeps changing; retry")

    async def cancel_visit(self, hospital: Hospital, visit_id: str, person_number: str) -> Visit:
        """Cancel a stay (2202 / 2404): refused while one of its settlements stands."""
        return await self._change(hospital, visit_id, person_number, lambda v: v.cancelled())

    async def upload(
        self, hospital: Hospital, visit_id: str, person_number: str, msgid: str, rows: list[DetailInput]
    ) -> list[FeeDetail]:
        """Upload fee details (2204 / 2301), each classed by the place of treatment's catalogue."""
        catalogue = self.catalogues.get(hospital.region)
        if catalogue is None:
            raise FailedPrecondition(
                reason="NO_CATALOGUE", message=f"no catalogue is loaded for the place of treatment {hospital.region}"
            )
        problems: list[FieldViolation] = []
        details: list[FeeDetail] = []
        for i, row in enumerate(rows):
            entry = catalogue.get(row.code)
            if entry is None:
                problems.append(FieldViolation(f"feedetail[{i}].med_list_codg", f"{row.code} 不在就医地目录中"))
                continue
            if row.amount_fen != row.expected_fen:
                problems.append(FieldViolation(f"feedetail[{i}].det_item_fee_sumamt", "不等于数量×单价"))
                continue
            details.append(
                FeeDetail(row.serial, row.batch, entry, row.count, row.price, row.amount_fen, row.occurred, msgid)
            )
        serials = [row.serial for row in rows]
        if len(set(serials)) != len(serials):
            problems.append(FieldViolation("feedetail", "feedetl_sn 在本次上传中重复"))
        if problems:
            raise invalid(problems, reason="INVALID_DETAILS")
        await self._change(hospital, visit_id, person_number, lambda v: v.with_details(details))
        return details

    async def cancel_details(
        self, hospital: Hospital, visit_id: str, person_number: str, batch: str | None, serials: set[str] | None
    ) -> int:
        """Cancel unsettled details (2205 by batch, 2302 by serial; neither: all unsettled ones)."""
        removed = 0

        def change(visit: Visit) -> Visit:
            nonlocal removed
            updated, removed = visit.without_details(batch, serials)
            return updated

        await self._change(hospital, visit_id, person_number, change)
        return removed

    # ------------------------------------------------------------------------------------------ settling

    def _bill(self, visit: Visit, msgid: str, details: list[FeeDetail], spec: SettleInput) -> Bill:
        now = self.clock().astimezone(SHANGHAI)
        end = spec.discharge or now.date()
        if end < visit.begin.date() or end > now.date():
            raise invalid(
                [FieldViolation("dscg_time", "before the stay began or in the future")], reason="INVALID_INPUT"
            )
        return Bill(
            msgid=msgid,
            hospital_code=visit.hospital_code,
            hospital_level=visit.hospital_level,
            treatment_region=visit.treatment_region,
            insured_region=visit.insured_region,
            visit_id=visit.visit_id,
            id_number=visit.id_number,
            name=visit.name,
            credential_type=visit.credential_type,
            insurance_type=visit.insurance_type,
            medical_type=visit.medical_type,
            admission=visit.begin.date(),
            discharge=end,
            emergency=visit.emergency,
            items=tuple(d.item() for d in details),
            total_fen=sum(d.amount_fen for d in details),
            received_at=now,
            account_declined=spec.account_declined,
        )

    async def _stay_to_settle(self, hospital: Hospital, spec: SettleInput) -> Visit:
        """The stay a (pre-)settlement names, refused when the message's insurance or medical type is not the
        stay's."""
        visit = await self.visit(hospital, spec.visit_id, spec.person_number)
        problems = []
        if spec.insurance_type != visit.insurance_type.value:
            problems.append(FieldViolation("insutype", f"与就诊登记的险种 {visit.insurance_type.value} 不符"))
        if spec.medical_type and spec.medical_type != visit.medical_type.value:
            problems.append(FieldViolation("med_type", f"与就诊登记的医疗类别 {visit.medical_type.value} 不符"))
        if problems:
            raise invalid(problems, reason="INVALID_INPUT")
        return visit

    @staticmethod
    def _to_settle(visit: Visit, spec: SettleInput) -> list[FeeDetail]:
        visit.require_open()
        details = visit.unsettled(None if visit.inpatient else spec.batch)
        if not details:
            raise FailedPrecondition(reason="NO_DETAILS", message="no unsettled fee details to settle")
        total = sum(d.amount_fen for d in details)
        if total != spec.total_fen:
            raise invalid(
                [FieldViolation("medfee_sumamt", f"不等于已上传未结算明细合计 {total / 100:.2f} 元")],
                reason="TOTAL_MISMATCH",
            )
        return details

    async def pre_settle(
        self, actor: Participant, hospital: Hospital, spec: SettleInput, msgid: str, timeout_s: float
    ) -> tuple[Visit, Figures]:
        visit = await self._stay_to_settle(hospital, spec)
        bill = self._bill(visit, msgid, self._to_settle(visit, spec), spec)
        return visit, await self.settlements.pre_settle(actor, bill, timeout_s)

    async def settle(
        self, actor: Participant, hospital: Hospital, spec: SettleInput, key: RequestKey, timeout_s: float
    ) -> tuple[Visit, SettlementRecord]:
        """Settle what the stay holds unsettled (of the batch, outpatient): claim the details in the stay, then
        settle through the settlement use case; a refusal releases the claim."""
        visit = await self._stay_to_settle(hospital, spec)
        claim = visit.claim_of(key.key)
        if claim is None:
            details = self._to_settle(visit, spec)
            settlement_id = ids.settlement_id(self.settlement_store.msg_shard(key.key), key.key)
            claim = SettleClaim(
                key.key, settlement_id, tuple(d.serial for d in details), int(self.clock().timestamp() * 1000)
            )
            made = claim
            visit = await self._change(hospital, spec.visit_id, spec.person_number, lambda v: v.with_claim(made))
        claimed = set(claim.serials)
        details = [d for d in visit.details if d.serial in claimed]
        bill = self._bill(visit, key.key, details, spec)
        try:
            record = await self.settlements.settle(actor, bill, key, timeout_s)
        except SigwError:
            await self._release(hospital, visit.visit_id, key.key)
            raise
        return visit, record

    async def _release(self, hospital: Hospital, visit_id: str, msgid: str) -> None:
        """Drop a refused settlement's claim (unless its settlement exists after all)."""

        def change(visit: Visit) -> Visit:
            claim = visit.claim_of(msgid)
            if claim is None or visit.outcome(claim) is ClaimOutcome.SETTLED:
                return visit
            return visit.without_claim(msgid)

        with contextlib.suppress(SigwError):  # an unreleased claim comes to nothing by itself (CLAIM_STALE_S)
            await self._change(hospital, visit_id, "", change)

    async def cancel_settlement(
        self, actor: Participant, hospital: Hospital, key: RequestKey, settlement_id: str, visit_id: str,
        person_number: str, timeout_s: float,
    ) -> SettlementRecord:  # fmt: skip
        """Cancel a settlement of the hospital's stay (2208 / 2305); its details are free again. The stay and
        the settlement are checked to belong together before anything is cancelled."""
        await self.visit(hospital, visit_id, person_number)
        settlement = await self.settlements.get(actor, settlement_id)
        if settlement.bill.visit_id != visit_id:
            raise invalid([FieldViolation("mdtrt_id", "is not the stay of this settlement")], reason="VISIT_MISMATCH")
        return await self.settlements.cancel(actor, key, settlement_id, timeout_s)

    async def reverse(
        self, actor: Participant, hospital: Hospital, key: RequestKey, original_msgid: str, original_infno: str,
        timeout_s: float,
    ) -> None:  # fmt: skip
        """Reverse (2601) a settlement (2207 / 2304) or the opening of a stay (2201 / 2401) by its msgid."""
        kind = original_infno[:4]
        if kind in ("2207", "2304"):
            await self.settlements.reverse(actor, key, original_msgid, timeout_s)
        elif kind in ("2201", "2401"):
            visit = await self.visits.load(self.visits.visit_id_for(original_msgid))
            if visit is None or visit.hospital_code != hospital.code:
                raise NotFound(
                    reason="ORIGINAL_MESSAGE_NOT_FOUND", message=f"no stay was opened under msgid {original_msgid}"
                )
            await self.cancel_visit(hospital, visit.visit_id, "")
        else:
            raise FailedPrecondition(
                reason="NOT_REVERSIBLE", message=f"transaction {original_infno} cannot be reversed here"
            )

    # ------------------------------------------------------------------------------------------ reconciliation

    async def reconcile(
        self,
        actor: Participant,
        hospital: Hospital,
        start: date,
        end: date,
        *,
        insurance_type: str,
        clearing_kind: str,
        insured_region: str,
        totals: reconciliation.ReconTotals,
    ) -> NationalReconciliation:
        """3201: the hospital's count, total, fund pay and account pay for the period, by insurance type,
        clearing type (11 / 21) and insured region (setl_optins)."""

        def counted(r: SettlementRecord) -> bool:
            return _in_scope(r, insured_region, insurance_type, clearing_kind)

        result = await self.clearing.reconcile(actor, hospital.code, start, end, totals, None, where=counted)
        ours = result.gateway_totals
        differing = [
            name
            for name, a, b in (
                ("笔数", ours.count, totals.count),
                ("医疗费总额", ours.total_fen, totals.total_fen),
                ("基金支付总额", ours.fund_fen, totals.fund_fen),
                ("个人账户支付", ours.account_fen, totals.account_fen),
            )
            if a != b
        ]
        description = (
            "对账平"
            if not differing
            else f"对账不平：{'、'.join(differing)}不一致（平台 {ours.count} 笔，医疗费 {ours.total_fen / 100:.2f} 元，"
            f"基金 {ours.fund_fen / 100:.2f} 元，个人账户 {ours.account_fen / 100:.2f} 元）"
        )
        return NationalReconciliation(not differing, ours, description)

    async def reconcile_details(
        self,
        actor: Participant,
        hospital: Hospital,
        start: date,
        end: date,
        *,
        insured_region: str,
        insurance_type: str,
        clearing_kind: str,
        lines: list[reconciliation.StatementLine],
    ) -> DetailReconciliation:
        """3202: the hospital's statement lines for the period against the platform's settlements of the same
        scope (insured region, insurance and clearing type when given), standing and cancelled ones (a cancelled
        one is ``refd_setl_flag`` 1)."""
        access.require_hospital(actor, hospital.code)
        first = datetime.combine(start, time.min, SHANGHAI)
        after = datetime.combine(end + timedelta(days=1), time.min, SHANGHAI)
        records = [
            r
            for r in await self.settlement_store.hospital_records(hospital.code, first, after)
            if _in_scope(r, insured_region, insurance_type, clearing_kind)
        ]
        ours = [
            reconciliation.StatementLine(
                r.settlement_id, r.bill.visit_id, r.figures.total_fen, r.figures.fund_pay_fen,
                r.figures.account_pay_fen, r.state is SettlementState.CANCELLED,
            )
            for r in records
        ]  # fmt: skip
        msgids = {r.settlement_id: ids.unscoped_msgid(hospital.code, r.msgid) for r in records}
        return DetailReconciliation(reconciliation.differences(ours, lines), msgids, len(ours))

    async def keep_file(self, hospital: Hospital, name: str, content: bytes) -> NationalFile:
        """9101 (and 3202's result): keep a file of the hospital's for ``FILE_KEPT`` under a new number."""
        now = self.clock()
        kept = NationalFile(_issued_number(now, "F", self.new_token()), hospital.code, name, content, now + FILE_KEPT)
        await self.visits.put_file(kept, FILE_KEPT)
        return kept

    async def file(self, hospital: Hospital, file_number: str) -> NationalFile:
        """A file of the hospital's by its number; another hospital's is as unknown as none."""
        found = await self.visits.file(file_number)
        if found is None or found.hospital_code != hospital.code:
            raise NotFound(reason="FILE_NOT_FOUND", message="no such file of this hospital (or it has expired)")
        return found

    async def clearing_rows(
        self, actor: Participant, hospital: Hospital, year: int, month: int, start_row: int, limit: int
    ) -> list[ClearingRow]:
        """3260: the hospital's settlements of a settlement month (standing ones), in settlement order, from row
        ``start_row`` (1-based)."""
        access.require_hospital(actor, hospital.code)
        first = datetime.combine(date(year, month, 1), time.min, SHANGHAI)
        after = datetime.combine((first + timedelta(days=32)).date().replace(day=1), time.min, SHANGHAI)
        records = await self.settlement_store.hospital_records(hospital.code, first, after)
        standing = sorted(
            (r for r in records if r.state is SettlementState.SETTLED),
            key=lambda r: (r.settled_at, r.settlement_id),
        )
        page = standing[start_row - 1 : start_row - 1 + limit]
        flags = await self.visits.confirmations(hospital.code, [r.settlement_id for r in page])
        return [ClearingRow(r, flags.get(r.settlement_id, "")) for r in page]

    async def confirm(
        self, actor: Participant, hospital: Hospital, year: int, month: int, confirmations: list[Confirmation]
    ) -> None:
        """3261: the hospital's confirmation (1) or dispute (0) of each settlement of the month it lists (the
        standing ones 3260 lists). A settlement not of this hospital and month, cancelled, or confirmed with amounts
        that are not the platform's, is refused (nothing recorded)."""
        access.require_hospital(actor, hospital.code)
        wanted = f"{year:04d}-{month:02d}"
        found = await self.settlement_store.get_many(
            [c.settlement_id for c in confirmations if ids.SETTLEMENT_ID.fullmatch(c.settlement_id)]
        )
        problems: list[FieldViolation] = []
        for i, c in enumerate(confirmations):
            record = found.get(c.settlement_id)
            if (
                record is None
                or record.hospital_code != hospital.code
                or record.clearing_month != wanted
                or record.state is not SettlementState.SETTLED
            ):
                problems.append(
                    FieldViolation(f"detail[{i}].setl_sn", f"{c.settlement_id} 不是本机构该月的有效（未撤销）结算")
                )
            elif c.confirmed and not c.agrees_with(record.figures):
                problems.append(FieldViolation(f"detail[{i}]", "确认的金额与平台不符：请核对，或以不确认（0）提交"))
        if problems:
            reason = "NOT_THIS_MONTH" if any(p.field.endswith("setl_sn") for p in problems) else "AMOUNT_MISMATCH"
            raise invalid(problems[:20], reason=reason)
        flags = {c.settlement_id: "1" if c.confirmed else "0" for c in confirmations}
        await self.visits.confirm(hospital.code, flags)
        confirmed = sum(1 for flag in flags.values() if flag == "1")
        self.on_confirmed(confirmed, len(flags) - confirmed)
