"""The records of non-local settlement as sigw keeps them: the bill, its split, the settlement, the filing."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import date, datetime

from gateway.domain.calendar import SHANGHAI
from gateway.domain.errors import FailedPrecondition
from gateway.domain.settlement.split import BillItem, InsuranceType, MedicalType

__all__ = [
    "Bill",
    "CredentialType",
    "Figures",
    "FilingRecord",
    "FilingState",
    "FilingType",
    "SettlementRecord",
    "SettlementState",
    "cancelled",
    "month_closed",
]


class CredentialType(enum.IntEnum):
    """就诊凭证类型 (mdtrt_cert_type, Art. 7); numbered as ``sigw.v1.CredentialType``."""

    E_VOUCHER = 1  # 医保电子凭证 (01)
    ID_CARD = 2  # 居民身份证 (02)
    SOCIAL_SECURITY_CARD = 3  # 社会保障卡 (03)


@dataclass(frozen=True)
class Bill:
    """A validated bill to settle, as the hospital sent it (field comments name the national fields)."""

    msgid: str  # 报文ID: the idempotency key
    hospital_code: str  # fixmedins_code
    hospital_level: int  # hosp_lv: 1, 2 or 3
    treatment_region: str  # mdtrtarea_admvs
    insured_region: str  # insuplc_admdvs
    visit_id: str  # mdtrt_id
    id_number: str  # certno
    name: str  # psn_name
    credential_type: CredentialType  # mdtrt_cert_type
    insurance_type: InsuranceType  # insutype
    medical_type: MedicalType  # med_type
    admission: date  # begntime
    discharge: date  # endtime
    emergency: bool
    items: tuple[BillItem, ...]
    total_fen: int  # medfee_sumamt
    received_at: datetime
    """When sigw received the bill: its settlement month for clearing (Asia/Shanghai). Not the time a msgid
    names, which the hospital writes itself."""
    account_declined: bool = False
    """acct_used_flag 0: the person declines the individual account for this bill."""

    @property
    def clearing_month(self) -> str:
        return f"{self.received_at.astimezone(SHANGHAI):%Y-%m}"


@dataclass(frozen=True)
class Figures:
    """How a bill split (all fen), and under which filing (a ``FilingStatus`` number)."""

    total_fen: int
    fund_pay_fen: int
    account_pay_fen: int
    cash_pay_fen: int
    class_c_fen: int = 0
    class_b_self_fen: int = 0
    in_scope_fen: int = 0
    deductible_fen: int = 0
    over_cap_fen: int = 0
    ratio_percent: int = 0
    filing_status: int = 0
    note: str = ""

    def adds_up_to(self, total_fen: int) -> bool:
        """fund + account + cash == total, none negative, and the total is the bill's."""
        parts = (self.fund_pay_fen, self.account_pay_fen, self.cash_pay_fen)
        return self.total_fen == total_fen and sum(parts) == total_fen and min(parts) >= 0


class SettlementState(enum.StrEnum):
    SETTLED = "SETTLED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class SettlementRecord:
    settlement_id: str
    bill: Bill
    figures: Figures
    settled_at: datetime
    state: SettlementState = SettlementState.SETTLED
    cancelled_at: datetime | None = None
    cancel_msgid: str = ""
    version: int = 1

    @property
    def msgid(self) -> str:
        return self.bill.msgid

    @property
    def hospital_code(self) -> str:
        return self.bill.hospital_code

    @property
    def treatment_region(self) -> str:
        return self.bill.treatment_region

    @property
    def insured_region(self) -> str:
        return self.bill.insured_region

    @property
    def clearing_month(self) -> str:
        """The month whose clearing the settlement counts in: the one sigw received its bill in."""
        return self.bill.clearing_month


def cancelled(record: SettlementRecord, msgid: str, now: datetime) -> SettlementRecord:
    return replace(
        record,
        state=SettlementState.CANCELLED,
        cancelled_at=now,
        cancel_msgid=msgid,
        version=record.version + 1,
    )


def month_closed(month: str) -> FailedPrecondition:
    return FailedPrecondition(
        reason="MONTH_CLOSED",
        message=f"settlement month {month} is closed for clearing; messages for it are refused",
        metadata={"month": month},
    )


class FilingType(enum.IntEnum):
    """备案类型; numbered as ``sigw.v1.FilingType``. The first three are long-term (valid until cancelled)."""

    RETIREE_SETTLED_ELSEWHERE = 1  # 异地安置退休人员
    LONG_TERM_RESIDENT = 2  # 异地长期居住人员
    POSTED_WORKER = 3  # 常驻异地工作人员
    REFERRAL = 4  # 转诊转院
    EMERGENCY = 5  # 急诊抢救
    OTHER_TEMPORARY = 6  # 其他临时外出就医

    @property
    def long_term(self) -> bool:
        return self in (FilingType.RETIREE_SETTLED_ELSEWHERE, FilingType.LONG_TERM_RESIDENT, FilingType.POSTED_WORKER)


class FilingState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class FilingRecord:
    filing_id: str
    filing_type: FilingType
    id_number: str
    insured_region: str
    treatment_region: str
    valid_from: date
    valid_until: date | None
    created_at: datetime
    state: FilingState = FilingState.ACTIVE
    cancel_reason: str = ""
