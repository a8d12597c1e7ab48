"""The insured region's policy applied to a non-local medical bill (异地就医直接结算).

Principle (医保发〔2022〕22号): catalogue of the place of treatment, policy of the insured region, management by
the place of treatment (就医地目录、参保地政策、就医地管理). The hospital classes each item against its local
catalogue; this module applies the insured region's deductible (起付线), ratio (报销比例, by scheme and hospital
level) and annual cap (封顶线) and returns the split. See docs/design.md §3.

The maths of :func:`split_bill`, in order:

1. class C (丙类) amounts are out of scope (全自费) and paid by the person;
2. class B (乙类): ``self_pay_percent`` of each item is paid by the person first (先行自付), **rounded half up
   per item**; the rest is in scope. Class A (甲类) is fully in scope;
3. the part of the year's deductible not yet met comes off the in-scope amount first;
4. the ratio is ``ratio_by_level[hospital_level]``, lowered by the policy's points for the filing category
   (医保发〔2022〕22号: a referral, another temporary trip, emergency care, unfiled care, each its own figure; never
   below 0); unfiled care may instead be refused (``FailedPrecondition`` ``NOT_FILED``);
5. fund pay = (in scope − deductible) × ratio / 100, **rounded half up once per bill**, then capped so that
   the year's fund pay stays within the annual cap; the excess (``over_cap_fen``) goes to the person;
6. the person's share = total − fund pay. For employees (310), when the policy says so, the individual account
   (个人账户) pays it first, up to its balance; the rest is cash.

Invariant: fund + account + cash == total, to the fen. Money is integer fen throughout; rounding is exact
(integer arithmetic, :class:`fractions.Fraction`), never float.

**Year to date**: a :class:`YearToDate` is the deductible met and fund paid so far in a calendar year, per
person and insured region. Since every :class:`SchemeRule` column (insurance type × inpatient/outpatient) has
its own deductible and cap, the caller keeps one per column and passes the one matching the bill.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from gateway.domain.errors import FailedPrecondition, FieldViolation, invalid
from gateway.domain.money import MAX_AMOUNT_FEN, is_int, round_half_up

__all__ = [
    "MAX_ITEMS",
    "MAX_TEXT_LENGTH",
    "BillItem",
    "CatalogueClass",
    "FilingStatus",
    "InsuranceType",
    "MedicalType",
    "RegionPolicy",
    "SchemeRule",
    "Split",
    "YearToDate",
    "apply_to_year",
    "bill_errors",
    "revert_from_year",
    "split_bill",
]

#: Most items one bill may carry.
MAX_ITEMS = 1000
#: Longest item code or name, in characters.
MAX_TEXT_LENGTH = 64

_ITEMS = "items"


class CatalogueClass(enum.IntEnum):
    """Class of an item in the place of treatment's catalogue (收费项目等级, ``chrgitm_lv``)."""

    A = 1  # 甲类: fully in scope
    B = 2  # 乙类: a self-paid share first (先行自付), the rest in scope
    C = 3  # 丙类: out of scope (全自费)


class InsuranceType(enum.StrEnum):
    """National insurance type codes (险种类型, ``insutype``)."""

    EMPLOYEE = "310"  # 职工基本医疗保险
    RESIDENT = "390"  # 城乡居民基本医疗保险


class MedicalType(enum.StrEnum):
    """National medical type codes (医疗类别, ``med_type``)."""

    OUTPATIENT = "11"  # 普通门诊
    CHRONIC_OUTPATIENT = "14"  # 门诊慢特病
    INPATIENT = "21"  # 普通住院
    NONLOCAL_INPATIENT = "25"  # 异地住院

    @property
    def inpatient(self) -> bool:
        """Whether the inpatient column of the policy applies."""
        return self in (MedicalType.INPATIENT, MedicalType.NONLOCAL_INPATIENT)


class FilingStatus(enum.IntEnum):
    """The filing (备案) a settlement is made under; numbered as ``sigw.v1.FilingStatus``."""

    FILED_LONG_TERM = 1
    FILED_TEMPORARY = 2  # 其他临时外出就医: another temporary trip
    EMERGENCY = 3  # 急诊抢救: counts as filed
    UNFILED = 4
    FILED_REFERRAL = 5  # 转诊转院: a referral


def _check_percent(name: str, value: object) -> None:
    if not is_int(value) or not 0 <= value <= 100:
        raise ValueError(f"{name} must be an integer from 0 to 100")


def _check_fen(name: str, value: object) -> None:
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (fen)")


@dataclass(frozen=True)
class BillItem:
    """One line of the itemised bill (费用明细), classed by the place of treatment.

    ``self_pay_percent`` (自付比例, 0..100) is only meaningful for class B; :func:`bill_errors` rejects it on
    other classes.
    """

    code: str  # 医疗目录编码 (med_list_codg)
    name: str
    catalogue_class: CatalogueClass
    amount_fen: int  # 明细项目费用总额 (det_item_fee_sumamt)
    self_pay_percent: int = 0


@dataclass(frozen=True)
class SchemeRule:
    """One column of a region's policy: one insurance type, inpatient or outpatient.

    Raises ``ValueError`` on nonsensical figures (negative money, a percent outside 0..100).
    """

    deductible_fen: int
    """起付线: counted once per calendar year across stays."""
    ratio_by_level: Mapping[int, int]
    """Reimbursement percent by hospital level (1 一级, 2 二级, 3 三级); a level not here is refused."""
    annual_cap_fen: int
    """封顶线: the most the fund pays for this column in a calendar year (0: the fund pays nothing)."""

    def __post_init__(self) -> None:
        _check_fen("deductible_fen", self.deductible_fen)
        _check_fen("annual_cap_fen", self.annual_cap_fen)
        for level, percent in self.ratio_by_level.items():
            if not is_int(level):
                raise ValueError("hospital levels must be integers")
            _check_percent(f"ratio_by_level[{level}]", percent)


@dataclass(frozen=True)
class RegionPolicy:
    """An insured region's (参保地) policy for non-local care. Figures marked *unverified* in docs/design.md §3 (the
    lower ratio for temporary or unfiled care) are configurable here. Raises ``ValueError`` on point drops
    outside 0..100."""

    region: str
    employee_inpatient: SchemeRule
    employee_outpatient: SchemeRule
    resident_inpatient: SchemeRule
    resident_outpatient: SchemeRule
    referral_drop_points: int = 0
    """A referral (转诊转院): the ratio is lowered by this many points (医保发〔2022〕22号: commonly no more than
    10)."""
    temporary_drop_points: int = 0
    """Another temporary trip (其他临时外出就医): the ratio is lowered by this many points (22号: commonly no more
    than 20)."""
    emergency_drop_points: int = 0
    """Emergency care (急诊抢救, filed or not: it counts as filed): lowered by this many points (22号 allows the
    referral's reduction; none by default)."""
    unfiled_drop_points: int = 10
    """Unfiled care: the ratio is lowered by this many points (commonly no more than 10)..."""
    refuse_unfiled: bool = False
    """... or, when set, unfiled care is refused outright (``FailedPrecondition`` ``NOT_FILED``)."""
    account_pays_personal_share: bool = True
    """Employees (310): the individual account pays the personal share first, up to its balance."""

    def __post_init__(self) -> None:
        for name in ("referral_drop_points", "temporary_drop_points", "emergency_drop_points", "unfiled_drop_points"):
            _check_percent(name, getattr(self, name))

    def rule(self, insurance: InsuranceType, medical: MedicalType) -> SchemeRule:
        """The column for this insurance type and medical type (inpatient: 21, 25; outpatient: 11, 14)."""
        if insurance is InsuranceType.EMPLOYEE:
            return self.employee_inpatient if medical.inpatient else self.employee_outpatient
        return self.resident_inpatient if medical.inpatient else self.resident_outpatient


@dataclass(frozen=True)
class YearToDate:
    """Deductible met and fund paid so far this calendar year, for one person, insured region and scheme
    column (see the module docstring). Raises ``ValueError`` on negative figures."""

    deductible_met_fen: int = 0
    fund_paid_fen: int = 0

    def __post_init__(self) -> None:
        _check_fen("deductible_met_fen", self.deductible_met_fen)
        _check_fen("fund_paid_fen", self.fund_paid_fen)


@dataclass(frozen=True)
class Split:
    """How a bill splits; field comments name the national fields. ``fund + account + cash == total``."""

    total_fen: int  # 医疗费总额 (medfee_sumamt)
    class_c_fen: int  # 全自费金额 (fulamt_ownpay_amt)
    class_b_self_fen: int  # 先行自付金额 (preselfpay_amt)
    in_scope_fen: int  # 符合政策范围金额 (inscp_scp_amt): total − class C − class B self-paid
    deductible_fen: int  # 本次起付线 (act_pay_dedc): the deductible applied by this bill
    over_cap_fen: int  # fund pay not made because the annual cap was reached; paid by the person
    ratio_percent: int  # the ratio applied, after any lowering for the filing
    fund_pay_fen: int  # 基金支付总额 (fund_pay_sumamt)
    account_pay_fen: int  # 个人账户支出 (acct_pay)
    cash_pay_fen: int  # 个人现金支出 (psn_cash_pay)
    filing: FilingStatus
    note: str  # which ratio applied and why


def _scheme_name(insurance: InsuranceType, medical: MedicalType) -> str:
    who = "employee" if insurance is InsuranceType.EMPLOYEE else "resident"
    return f"{who} {'inpatient' if medical.inpatient else 'outpatient'}"


def _ratio(full: int, filing: FilingStatus, policy: RegionPolicy) -> tuple[int, str]:
    """The ratio for this filing and the note explaining it; raises ``NOT_FILED`` when unfiled care is refused."""
    if filing is FilingStatus.FILED_LONG_TERM:
        return full, f"filed long-term: full ratio {full}%"
    if filing is FilingStatus.EMERGENCY:
        label, drop = "emergency (counts as filed)", policy.emergency_drop_points
    elif filing is FilingStatus.FILED_REFERRAL:
        label, drop = "referral filing", policy.referral_drop_points
    elif filing is FilingStatus.FILED_TEMPORARY:
        label, drop = "temporary trip filing", policy.temporary_drop_points
    else:
        if policy.refuse_unfiled:
            raise FailedPrecondition(
                reason="NOT_FILED",
                message=f"region {policy.region} does not settle unfiled non-local care: file (备案) first",
                metadata={"insured_region": policy.region},
            )
        label, drop = "unfiled", policy.unfiled_drop_points
    if drop == 0:
        return full, f"{label}: full ratio {full}% (no reduction configured)"
    lowered = full - drop
    if lowered < 0:
        return 0, f"{label}: ratio {full}% lowered by {drop} points, floored at 0%"
    return lowered, f"{label}: ratio {full}% lowered by {drop} points to {lowered}%"


def split_bill(
    items: Sequence[BillItem],
    *,
    insurance: InsuranceType,
    medical: MedicalType,
    hospital_level: int,
    filing: FilingStatus,
    year_to_date: YearToDate,
    account_balance_fen: int,
    policy: RegionPolicy,
) -> Split:
    """Apply ``policy`` to the bill ``items`` (the steps in the module docstring).

    ``year_to_date`` is the person's year so far for the column ``policy.rule(insurance, medical)``; record the
    result with :func:`apply_to_year`. Raises ``InvalidArgument`` when :func:`bill_errors` finds anything wrong
    with the items (paths ``items[i]....``), the account balance is negative, or the policy has no ratio for
    ``hospital_level`` (reason ``UNKNOWN_HOSPITAL_LEVEL``); ``FailedPrecondition`` ``NOT_FILED`` when the care is
    unfiled and the policy refuses unfiled care.
    """
    violations = [
        FieldViolation(path, text) for path, text in bill_errors(items, sum(i.amount_fen for i in items if _ok(i)))
    ]
    if not is_int(account_balance_fen) or account_balance_fen < 0:
        violations.append(FieldViolation("account_balance_fen", "must be a non-negative integer (fen)"))
    if violations:
        raise invalid(violations)
    rule = policy.rule(insurance, medical)
    if not is_int(hospital_level) or hospital_level not in rule.ratio_by_level:
        known = ", ".join(str(level) for level in sorted(rule.ratio_by_level))
        raise invalid(
            [FieldViolation("hospital_level", f"region {policy.region} sets no ratio for it (known levels: {known})")],
            reason="UNKNOWN_HOSPITAL_LEVEL",
        )
    full = rule.ratio_by_level[hospital_level]
    ratio, note = _ratio(full, filing, policy)
    note += f" ({_scheme_name(insurance, medical)}, level {hospital_level} hospital)"

    total = class_c = class_b_self = 0
    for item in items:
        total += item.amount_fen
        if item.catalogue_class == CatalogueClass.C:
            class_c += item.amount_fen
        elif item.catalogue_class == CatalogueClass.B:
            class_b_self += round_half_up(Fraction(item.amount_fen * item.self_pay_percent, 100))
    in_scope = total - class_c - class_b_self

    deductible = min(in_scope, max(0, rule.deductible_fen - year_to_date.deductible_met_fen))
    uncapped = round_half_up(Fraction((in_scope - deductible) * ratio, 100))
    headroom = max(0, rule.annual_cap_fen - year_to_date.fund_paid_fen)
    fund = min(uncapped, headroom)
    over_cap = uncapped - fund
    if over_cap:
        note += f"; annual cap {rule.annual_cap_fen} fen reached: {over_cap} fen over the cap paid by the person"

    personal = total - fund
    account = 0
    if insurance is InsuranceType.EMPLOYEE and policy.account_pays_personal_share:
        account = min(personal, account_balance_fen)
    cash = personal - account
    assert fund + account + cash == total, "split does not add up to the total"
    assert min(class_c, class_b_self, in_scope, deductible, fund, account, cash, over_cap) >= 0
    return Split(
        total_fen=total,
        class_c_fen=class_c,
        class_b_self_fen=class_b_self,
        in_scope_fen=in_scope,
        deductible_fen=deductible,
        over_cap_fen=over_cap,
        ratio_percent=ratio,
        fund_pay_fen=fund,
        account_pay_fen=account,
        cash_pay_fen=cash,
        filing=filing,
        note=note,
    )


def apply_to_year(ytd: YearToDate, split: Split) -> YearToDate:
    """The year so far after ``split`` was settled: its deductible met and its fund pay added."""
    return YearToDate(
        deductible_met_fen=ytd.deductible_met_fen + split.deductible_fen,
        fund_paid_fen=ytd.fund_paid_fen + split.fund_pay_fen,
    )


def revert_from_year(ytd: YearToDate, split: Split) -> YearToDate:
    """The year so far after ``split`` was cancelled: exactly undoes :func:`apply_to_year`.

    Raises ``ValueError`` if that would go negative (the split was never applied to ``ytd``).
    """
    return YearToDate(
        deductible_met_fen=ytd.deductible_met_fen - split.deductible_fen,
        fund_paid_fen=ytd.fund_paid_fen - split.fund_pay_fen,
    )


def _ok(item: BillItem) -> bool:
    """Whether the item's amount is usable for summing (an integer within bounds)."""
    return is_int(item.amount_fen) and 0 <= item.amount_fen <= MAX_AMOUNT_FEN


def _text_error(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must not be empty"
    if len(value) > MAX_TEXT_LENGTH:
        return f"must be at most {MAX_TEXT_LENGTH} characters"
    return None


def bill_errors(items: Sequence[BillItem], total_fen: int) -> list[tuple[str, str]]:
    """Everything wrong with a bill, as ``(field path, description)`` pairs; empty when valid.

    Paths look like ``items[3].amount_fen``. Checks: at least one and at most 1000 items (``items``; over the
    limit nothing else is checked); per item: code and name not empty (or blank) and at most 64 characters;
    catalogue class A, B or C; amount an integer from 0 to 10**10 fen; ``self_pay_percent`` an integer from 0
    to 100, and 0 unless class B. ``total_fen`` an integer from 0 to 10**10 that equals the items' sum (only
    checked when every amount is valid). Descriptions never contain personal data.
    """
    if len(items) > MAX_ITEMS:
        return [(_ITEMS, f"at most {MAX_ITEMS} items, got {len(items)}")]
    errors: list[tuple[str, str]] = []
    if not items:
        errors.append((_ITEMS, "a bill needs at least one item"))
    amounts_ok = True
    for i, item in enumerate(items):
        path = f"{_ITEMS}[{i}]"
        for name in ("code", "name"):
            problem = _text_error(getattr(item, name))
            if problem:
                errors.append((f"{path}.{name}", problem))
        klass = item.catalogue_class
        class_ok = is_int(klass) and klass in (CatalogueClass.A, CatalogueClass.B, CatalogueClass.C)
        if not class_ok:
            errors.append((f"{path}.catalogue_class", "must be A (1), B (2) or C (3)"))
        if not is_int(item.amount_fen):
            errors.append((f"{path}.amount_fen", "must be an integer (fen)"))
        elif item.amount_fen < 0:
            errors.append((f"{path}.amount_fen", "must not be negative"))
        elif item.amount_fen > MAX_AMOUNT_FEN:
            errors.append((f"{path}.amount_fen", f"must not exceed {MAX_AMOUNT_FEN} fen"))
        amounts_ok = amounts_ok and _ok(item)
        percent = item.self_pay_percent
        if not is_int(percent) or not 0 <= percent <= 100:
            errors.append((f"{path}.self_pay_percent", "must be an integer from 0 to 100"))
        elif percent and class_ok and klass != CatalogueClass.B:
            errors.append((f"{path}.self_pay_percent", "only class B items have a self-paid share"))
    if not is_int(total_fen) or not 0 <= total_fen <= MAX_AMOUNT_FEN:
        errors.append(("total_fen", f"must be an integer from 0 to {MAX_AMOUNT_FEN} fen"))
    elif amounts_ok:
        items_sum = sum(item.amount_fen for item in items)
        if items_sum != total_fen:
            errors.append(("total_fen", f"items add up to {items_sum} fen, not {total_fen}"))
    return errors
