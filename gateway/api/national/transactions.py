"""Each national transaction (``infno``): read its ``input`` as the interface names it, call one use case of
``gateway.app.visits``, and write its ``output`` as the platform does. Amounts are yuan with two decimals on the
wire and integer fen inside.

======  ==========================================  =====================================================
infno   transaction                                 input → output
======  ==========================================  =====================================================
9001    签到 sign-in                                 ``signIn`` → ``signinoutb`` (``sign_no``)
9002    签退 sign-out                                ``signOut`` → ``signoutoutb``
1101    人员信息获取 person information              ``data`` → ``baseinfo``, ``insuinfo[]``, ``idetinfo[]``
2201    门诊挂号 open an outpatient visit            ``data`` → ``data`` (``mdtrt_id``)
2202    门诊挂号撤销 cancel it                       ``data`` → none
2401    入院办理 admission                           ``mdtrtinfo`` (+ ``diseinfo[]``) → ``result`` (``mdtrt_id``)
2404    入院撤销 cancel the admission                ``data`` → none
2204    门诊费用明细上传 outpatient fee details      ``feedetail[]`` → ``result[]`` (each classed)
2205    门诊费用明细撤销 cancel by batch             ``data`` (``chrg_bchno``, ``0000``: all unsettled) → none
2301    住院费用明细上传 inpatient fee details       ``feedetail[]`` → ``result[]``
2302    住院费用明细撤销 cancel by serial            ``data`` (object or list; ``feedetl_sn`` ``0000``: all)
2206    门诊预结算 / 2303 住院预结算                 ``data`` → ``setlinfo``, ``setldetail[]`` (no ``setl_id``)
2207    门诊结算 / 2304 住院结算                     ``data`` → ``setlinfo``, ``setldetail[]``
2208    门诊结算撤销 / 2305 住院结算撤销             ``data`` → ``setlinfo`` (negative amounts)
2601    冲正 reversal (of 2207, 2304, 2201, 2401)    ``data`` (``omsgid``, ``oinfno``) → none
3201    对总账 reconciliation of totals              ``data`` → ``stmtinfo`` (``stmt_rslt`` 0 平, 1 不平)
3202    对明细账 detail reconciliation by file       ``data`` (``file_qury_no`` of a 9101) → ``fileinfo``, ``stmtinfo``
9101    文件上传 file upload                         ``fsUploadIn`` (``in``: base64 or bytes) → ``file_qury_no``
9102    文件下载 file download                       ``fsDownloadIn`` (``file_qury_no``) → the file's bytes
3260    异地清分明细 the month's clearing details    ``data`` (``trt_year``, ``trt_month``, ``startrow``) → ``data[]``
3261    异地清分确认 their confirmation              ``data`` + ``detail[]`` (``cnfm_flag`` 1 / 0) → none
======  ==========================================  =====================================================

A suffixed number some provinces use (``2207A``) is served as its four digits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from gateway.api.national import files
from gateway.api.national.envelope import Envelope, dumps, yuan
from gateway.api.national.values import IDENTIFIER, REGION, TRANSACTION_NUMBER, Reader
from gateway.api.settlements import AGENCY_TIMEOUT_S
from gateway.app.idempotency import RequestKey
from gateway.app.visits import (
    Confirmation,
    DetailInput,
    SettleInput,
    VisitInput,
    VisitService,
    clearing_type,
)
from gateway.domain import idnumber, ids
from gateway.domain.calendar import SHANGHAI
from gateway.domain.errors import FieldViolation, NotFound, invalid
from gateway.domain.money import round_half_up
from gateway.domain.participants import Participant
from gateway.domain.regions import Hospital
from gateway.domain.settlement import reconciliation
from gateway.domain.settlement.catalogue import classed_amounts
from gateway.domain.settlement.reconciliation import StatementLine
from gateway.domain.settlement.records import Bill, CredentialType, Figures, SettlementRecord
from gateway.domain.settlement.split import CatalogueClass, InsuranceType, MedicalType
from gateway.domain.settlement.visit import MAX_DETAILS, FeeDetail, InsuredPerson, Visit

__all__ = ["TRANSACTIONS", "Call", "Download", "transaction_of"]

MAX_ROWS = 100  # 3260 / 3261: rows a call
CREDENTIALS = {"01": "医保电子凭证", "02": "居民身份证", "03": "社会保障卡"}
INSURANCE_TYPES = {
    t.value: n
    for t, n in ((InsuranceType.EMPLOYEE, "职工基本医疗保险"), (InsuranceType.RESIDENT, "城乡居民基本医疗保险"))
}
OUTPATIENT_TYPES = {"11": "普通门诊", "14": "门诊慢特病"}
INPATIENT_TYPES = {"21": "普通住院", "25": "异地住院"}
MEDICAL_TYPES = {**OUTPATIENT_TYPES, **INPATIENT_TYPES}
ALL = "0000"


@dataclass(frozen=True)
class Call:
    """One message: who sent it (checked), its envelope, and when it arrived."""

    actor: Participant
    hospital: Hospital
    envelope: Envelope
    received: datetime
    service: VisitService

    @property
    def msgid(self) -> str:
        return ids.scoped_msgid(self.hospital.code, self.envelope.msgid)

    def key(self) -> RequestKey:
        """The msgid (scoped to the hospital) and the fingerprint of the message's transaction and input."""
        payload = f"{self.envelope.infno[:4]}|".encode() + dumps(_sorted(self.envelope.input)).encode()
        return RequestKey(self.msgid, hashlib.sha256(payload).hexdigest()[:32], "msgid")

    def node(self, name: str) -> Reader:
        """``input.<name>`` (an object), read with its problems named ``<name>.<field>``."""
        raw = self.envelope.input.get(name)
        if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], Mapping):
            raw = raw[0]
        if not isinstance(raw, Mapping):
            raise invalid([FieldViolation(f"input.{name}", "必填（对象）")], reason="INVALID_INPUT")
        return Reader(raw, f"{name}.")


@dataclass(frozen=True)
class Download:
    """An answer that is a file's bytes (9102), not an envelope."""

    name: str
    content: bytes


Handler = Callable[[Call], Awaitable[Mapping[str, Any] | Download | None]]


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _time(moment: datetime) -> str:
    return f"{moment.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}"


def _percent(percent: int) -> Decimal:
    return (Decimal(percent) / 100).quantize(Decimal("0.0001"))


# ---------------------------------------------------------------------------------------------- sign-in


async def sign_in(call: Call) -> Mapping[str, Any]:
    r = call.node("signIn")
    operator = r.text("opter_no", required=True, limit=20)
    r.text("mac", limit=20)
    r.text("ip", limit=40)
    r.raise_if_any()
    sign_no, at = await call.service.sign_in(call.hospital, operator)
    return {"signinoutb": {"sign_time": _time(at), "sign_no": sign_no}}


async def sign_out(call: Call) -> Mapping[str, Any]:
    r = call.node("signOut")
    sign_no = r.text("sign_no", limit=40) or call.envelope.sign_no
    r.text("opter_no", limit=20)
    r.raise_if_any()
    at = await call.service.sign_out(call.hospital, sign_no)
    return {"signoutoutb": {"sign_time": _time(at)}}


# ---------------------------------------------------------------------------------------------- the person


def _id_number(r: Reader, credential: str) -> str:
    """The person's ID number: ``certno``, or ``mdtrt_cert_no`` when the credential is the ID card."""
    certno = r.text("certno", limit=50)
    number = r.text("mdtrt_cert_no", required=True, limit=200)
    id_number = certno or (number if credential == "02" else "")
    if not id_number:
        r.add("certno", "医保电子凭证或社会保障卡就诊时必填（人员证件号码）")
        return ""
    error = idnumber.validation_error(id_number)
    if error:
        r.add("certno" if certno else "mdtrt_cert_no", "不是有效的公民身份号码")
        return ""
    return id_number


def _base_info(person: InsuredPerson, today: datetime) -> dict[str, Any]:
    age = idnumber.age_on(person.id_number, today.date())
    return {
        "psn_no": person.person_number,
        "psn_cert_type": "01",
        "certno": person.id_number,
        "psn_name": person.name,
        "gend": person.gender,
        "naty": None,
        "brdy": f"{person.birthday:%Y-%m-%d}" if person.birthday else None,
        "age": Decimal(age).quantize(Decimal("0.1")),
    }


async def person_info(call: Call) -> Mapping[str, Any]:
    r = call.node("data")
    credential = r.choice("mdtrt_cert_type", CREDENTIALS)
    id_number = _id_number(r, credential)
    if credential == "03":
        r.text("card_sn", limit=50)
    r.text("psn_cert_type", limit=6)
    name = r.text("psn_name", limit=50)
    r.text("begntime", limit=19)
    r.raise_if_any()
    person = await call.service.person(
        call.hospital,
        id_number=id_number,
        name=name,
        credential=CredentialType(int(credential)),
        insured_region=call.envelope.insured_region,
        timeout_s=AGENCY_TIMEOUT_S,
    )
    return {
        "baseinfo": _base_info(person, call.received),
        "insuinfo": [
            {
                "balc": yuan(i.balance_fen),
                "insutype": i.insurance_type,
                "psn_type": i.person_type,
                "psn_insu_stas": "1" if i.active else "0",
                "psn_insu_date": f"{i.since:%Y-%m-%d}" if i.since else None,
                "paus_insu_date": None,
                "cvlserv_flag": "0",
                "insuplc_admdvs": i.insured_region,
                "emp_name": None,
            }
            for i in person.insurances
        ],
        "idetinfo": [],
    }


# ---------------------------------------------------------------------------------------------- stays


def _visit_input(call: Call, r: Reader, medical_types: Mapping[str, str], default_type: str) -> VisitInput:
    person_number = r.text("psn_no", required=True, limit=30, pattern=IDENTIFIER)
    insurance = r.choice("insutype", INSURANCE_TYPES)
    begin = r.moment("begntime")
    credential = r.choice("mdtrt_cert_type", CREDENTIALS)
    r.text("mdtrt_cert_no", required=True, limit=200)
    medical = r.choice("med_type", medical_types, default=default_type)
    emergency = r.text("er_flag", limit=3) == "1"
    for name in ("ipt_otp_no", "ipt_no", "atddr_no", "dr_name", "dept_code", "dept_name", "caty", "chfpdr_name"):
        r.text(name, limit=100)
    if begin and begin > call.received:
        r.add("begntime", "不能晚于当前时间")
    r.raise_if_any()
    assert begin is not None
    return VisitInput(
        person_number=person_number,
        insured_region=call.envelope.insured_region,
        credential_type=CredentialType(int(credential)),
        insurance_type=InsuranceType(insurance),
        medical_type=MedicalType(medical),
        begin=begin,
        emergency=emergency,
    )


async def open_outpatient(call: Call) -> Mapping[str, Any]:
    r = call.node("data")
    spec = _visit_input(call, r, MEDICAL_TYPES, "11")
    visit = await call.service.open_visit(call.hospital, call.key(), spec)
    return {"data": {"mdtrt_id": visit.visit_id, "psn_no": visit.person_number, "ipt_otp_no": r.text("ipt_otp_no")}}


async def admit(call: Call) -> Mapping[str, Any]:
    r = call.node("mdtrtinfo")
    spec = _visit_input(call, r, INPATIENT_TYPES, "21")
    visit = await call.service.open_visit(call.hospital, call.key(), spec)
    return {"result": {"mdtrt_id": visit.visit_id}}


def _stay_ref(r: Reader) -> tuple[str, str]:
    visit_id = r.text("mdtrt_id", required=True, limit=30, pattern=IDENTIFIER)
    person_number = r.text("psn_no", required=True, limit=30, pattern=IDENTIFIER)
    return visit_id, person_number


async def cancel_visit(call: Call) -> None:
    r = call.node("data")
    visit_id, person_number = _stay_ref(r)
    r.text("ipt_otp_no", limit=30)
    r.raise_if_any()
    await call.service.cancel_visit(call.hospital, visit_id, person_number)


# ---------------------------------------------------------------------------------------------- fee details


def _details(call: Call, batch_required: bool) -> tuple[str, str, list[DetailInput]]:
    top = Reader(call.envelope.input)
    rows = top.rows("feedetail", limit=MAX_DETAILS)
    top.raise_if_any()
    visit_ids, people, details = set(), set(), []
    problems = top.problems
    for i, row in enumerate(rows):
        r = Reader(row, f"feedetail[{i}].", problems)
        serial = r.text("feedetl_sn", required=True, limit=30, pattern=IDENTIFIER)
        visit_id, person_number = _stay_ref(r)
        batch = r.text("chrg_bchno", required=batch_required, limit=30, pattern=IDENTIFIER) or "0"
        code = r.text("med_list_codg", required=True, limit=50)
        count = r.decimal("cnt", places=4)
        price = r.decimal("pric", places=6)
        amount = r.fen("det_item_fee_sumamt")
        occurred = r.moment("fee_ocur_time")
        if occurred and occurred > call.received:
            r.add("fee_ocur_time", "不能晚于当前时间")
        visit_ids.add(visit_id)
        people.add(person_number)
        if count is None or price is None or amount is None or not serial or not code:
            continue
        expected = round_half_up(Fraction(count * price * 100))
        details.append(
            DetailInput(
                serial, batch, code, str(count), str(price), amount, expected, _time(occurred) if occurred else ""
            )
        )
    if len(visit_ids) > 1 or len(people) > 1:
        problems.append(FieldViolation("feedetail", "一次上传的明细须属于同一就诊（mdtrt_id、psn_no）"))
    if problems:
        raise invalid(problems, reason="INVALID_INPUT")
    return visit_ids.pop(), people.pop(), details


def _classed(d: FeeDetail) -> dict[str, Any]:
    amounts = classed_amounts(d.item())
    return {
        "feedetl_sn": d.serial,
        "det_item_fee_sumamt": yuan(d.amount_fen),
        "cnt": Decimal(d.count),
        "pric": Decimal(d.price),
        "pric_uplmt_amt": None,
        "selfpay_prop": _percent(100 if d.entry.catalogue_class is CatalogueClass.C else d.entry.self_pay_percent),
        "fulamt_ownpay_amt": yuan(amounts.full_own_pay_fen),
        "overlmt_amt": yuan(0),
        "preselfpay_amt": yuan(amounts.pre_self_pay_fen),
        "inscp_scp_amt": yuan(amounts.in_scope_fen),
        "chrgitm_lv": d.entry.level_code,
        "med_chrgitm_type": d.entry.category,
        "bas_medn_flag": None,
        "lmt_used_flag": "0",
        "memo": None,
    }


async def upload_outpatient(call: Call) -> Mapping[str, Any]:
    visit_id, person_number, rows = _details(call, batch_required=True)
    details = await call.service.upload(call.hospital, visit_id, person_number, call.msgid, rows)
    return {"result": [_classed(d) for d in details]}


async def upload_inpatient(call: Call) -> Mapping[str, Any]:
    visit_id, person_number, rows = _details(call, batch_required=False)
    details = await call.service.upload(call.hospital, visit_id, person_number, call.msgid, rows)
    return {"result": [_classed(d) for d in details]}


async def cancel_batch(call: Call) -> None:
    r = call.node("data")
    visit_id, person_number = _stay_ref(r)
    batch = r.text("chrg_bchno", required=True, limit=30, pattern=IDENTIFIER)
    r.raise_if_any()
    await call.service.cancel_details(call.hospital, visit_id, person_number, None if batch == ALL else batch, None)


async def cancel_serials(call: Call) -> None:
    top = Reader(call.envelope.input)
    rows = top.rows("data", limit=MAX_DETAILS)
    top.raise_if_any()
    refs, serials = set(), set()
    for i, row in enumerate(rows):
        r = Reader(row, f"data[{i}].", top.problems)
        refs.add(_stay_ref(r))
        serials.add(r.text("feedetl_sn", required=True, limit=30, pattern=IDENTIFIER))
    if len(refs) > 1:
        top.add("data", "须属于同一就诊（mdtrt_id、psn_no）")
    top.raise_if_any()
    visit_id, person_number = refs.pop()
    chosen = None if ALL in serials else serials
    await call.service.cancel_details(call.hospital, visit_id, person_number, None, chosen)


# ---------------------------------------------------------------------------------------------- settling


def _settle_input(call: Call, inpatient: bool) -> SettleInput:
    r = call.node("data")
    visit_id, person_number = _stay_ref(r)
    r.choice("mdtrt_cert_type", CREDENTIALS)
    r.text("mdtrt_cert_no", required=True, limit=200)
    medical = r.choice("med_type", INPATIENT_TYPES if inpatient else OUTPATIENT_TYPES, required=not inpatient)
    total = r.fen("medfee_sumamt")
    r.text("psn_setlway", limit=6)
    batch = r.text("chrg_bchno", required=not inpatient, limit=30, pattern=IDENTIFIER)
    insurance = r.choice("insutype", INSURANCE_TYPES)
    account = r.choice("acct_used_flag", {"0": "不使用个人账户", "1": "使用个人账户"}, default="1")
    r.choice("mid_setl_flag", {"0": "否", "1": "中途结算"}, default="0")
    discharge = r.date("dscg_time", required=False) or r.date("endtime", required=False)
    for name in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"):
        r.fen(name, required=False)
    r.text("invono", limit=20)
    r.raise_if_any()
    assert total is not None
    batch_chosen = None if inpatient or batch == ALL else batch
    return SettleInput(
        visit_id, person_number, batch_chosen, total, discharge, insurance, medical, account_declined=account == "0"
    )


def _setlinfo(
    stay: Visit | Bill, person_number: str, figures: Figures, call: Call, *, sign: int = 1,
    record: SettlementRecord | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``setlinfo`` of a (pre-)settlement of ``stay`` (a stay, or a settled bill), its amounts times ``sign``."""

    def money(fen: int) -> Decimal:
        return yuan(sign * fen)

    info: dict[str, Any] = {
        "mdtrt_id": stay.visit_id,
        "psn_no": person_number,
        "psn_name": stay.name,
        "psn_cert_type": "01",
        "certno": stay.id_number,
        "insutype": stay.insurance_type.value,
        "med_type": stay.medical_type.value,
        "medfee_sumamt": money(figures.total_fen),
        "fulamt_ownpay_amt": money(figures.class_c_fen),
        "overlmt_selfpay": money(0),
        "preselfpay_amt": money(figures.class_b_self_fen),
        "inscp_scp_amt": money(figures.in_scope_fen),
        "act_pay_dedc": money(figures.deductible_fen),
        "hifp_pay": money(figures.fund_pay_fen),
        "pool_prop_selfpay": _percent(figures.ratio_percent),
        "fund_pay_sumamt": money(figures.fund_pay_fen),
        "psn_part_amt": money(figures.account_pay_fen + figures.cash_pay_fen),
        "acct_pay": money(figures.account_pay_fen),
        "psn_cash_pay": money(figures.cash_pay_fen),
        "hosp_part_amt": money(0),
        "balc": None,
        "clr_optins": stay.insured_region,
        "clr_type": clearing_type(stay.medical_type),
        "clr_way": None,
        "medins_setl_id": call.envelope.msgid,
        "setl_time": None,
    }
    if record is not None:
        info["setl_id"] = record.settlement_id
        info["setl_time"] = _time(record.cancelled_at if sign < 0 and record.cancelled_at else record.settled_at)
    return info


def _setldetail(insurance: InsuranceType, figures: Figures, sign: int = 1) -> list[dict[str, Any]]:
    if not figures.fund_pay_fen:
        return []
    pooled = "310100" if insurance is InsuranceType.EMPLOYEE else "390100"
    names = {"310100": "职工基本医疗保险统筹基金", "390100": "城乡居民基本医疗保险基金"}
    return [
        {
            "fund_pay_type": pooled,
            "inscp_scp_amt": yuan(sign * figures.in_scope_fen),
            "crt_payb_lmt_amt": None,
            "fund_payamt": yuan(sign * figures.fund_pay_fen),
            "fund_pay_type_name": names[pooled],
            "setl_proc_info": figures.note or None,
        }
    ]


def _pre_settler(inpatient: bool) -> Handler:
    async def pre_settle(call: Call) -> Mapping[str, Any]:
        spec = _settle_input(call, inpatient)
        visit, figures = await call.service.pre_settle(call.actor, call.hospital, spec, call.msgid, AGENCY_TIMEOUT_S)
        return {
            "setlinfo": _setlinfo(visit, visit.person_number, figures, call),
            "setldetail": _setldetail(visit.insurance_type, figures),
        }

    return pre_settle


def _settler(inpatient: bool) -> Handler:
    async def settle(call: Call) -> Mapping[str, Any]:
        spec = _settle_input(call, inpatient)
        visit, record = await call.service.settle(call.actor, call.hospital, spec, call.key(), AGENCY_TIMEOUT_S)
        return {
            "setlinfo": _setlinfo(visit, visit.person_number, record.figures, call, record=record),
            "setldetail": _setldetail(visit.insurance_type, record.figures),
        }

    return settle


async def cancel_settlement(call: Call) -> Mapping[str, Any]:
    r = call.node("data")
    settlement_id = r.text("setl_id", required=True, limit=30)
    visit_id, person_number = _stay_ref(r)
    if settlement_id and not ids.SETTLEMENT_ID.fullmatch(settlement_id):
        r.add("setl_id", "不是本平台的结算ID")
    r.raise_if_any()
    record = await call.service.cancel_settlement(
        call.actor, call.hospital, call.key(), settlement_id, visit_id, person_number, AGENCY_TIMEOUT_S
    )
    info = _setlinfo(record.bill, person_number, record.figures, call, sign=-1, record=record)
    return {"setlinfo": info, "setldetail": _setldetail(record.bill.insurance_type, record.figures, sign=-1)}


async def reverse(call: Call) -> None:
    r = call.node("data")
    r.text("psn_no", limit=30)
    original = r.msgid("omsgid")
    infno = r.text("oinfno", required=True, limit=5, pattern=TRANSACTION_NUMBER)
    r.raise_if_any()
    await call.service.reverse(
        call.actor, call.hospital, call.key(), ids.scoped_msgid(call.hospital.code, original), infno, AGENCY_TIMEOUT_S
    )


# ---------------------------------------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class _Scope:
    """What 3201 and 3202 reconcile: the period, the insured region (setl_optins; "" the hospital's own place)
    and, when given, the insurance and clearing types."""

    office: str
    insured_region: str
    start: date
    end: date
    insurance_type: str
    clearing_kind: str


def _scope(call: Call, r: Reader) -> _Scope:
    insurance = r.choice("insutype", INSURANCE_TYPES, required=False)
    clearing = r.choice("clr_type", {"11": "门诊", "21": "住院"}, required=False)
    office = r.text("setl_optins", required=True, limit=6, pattern=REGION)
    start, end = r.date("stmt_begndate"), r.date("stmt_enddate")
    if start and end and reconciliation.period_errors(start, end):
        r.add("stmt_enddate", f"对账期间无效（须不早于开始日期，且不超过 {reconciliation.MAX_PERIOD_DAYS} 天）")
    insured = "" if office == call.hospital.region else office
    return _Scope(office, insured, start or date.min, end or date.min, insurance, clearing)


def _count(r: Reader, name: str) -> int:
    count_text = r.text(name, required=True, limit=10)
    if count_text and not count_text.isdigit():
        r.add(name, "应为不小于0的整数")
    return int(count_text) if count_text.isdigit() else 0


async def reconcile_totals(call: Call) -> Mapping[str, Any]:
    r = call.node("data")
    scope = _scope(call, r)
    total, fund, account = r.fen("medfee_sumamt"), r.fen("fund_pay_sumamt"), r.fen("acct_pay")
    count = _count(r, "fixmedins_setl_cnt")
    r.text("refd_setl_flag", limit=3)
    r.raise_if_any()
    assert total is not None and fund is not None and account is not None
    totals = reconciliation.ReconTotals(count, total, fund, account, 0)
    result = await call.service.reconcile(
        call.actor, call.hospital, scope.start, scope.end, insurance_type=scope.insurance_type,
        clearing_kind=scope.clearing_kind, insured_region=scope.insured_region, totals=totals,
    )  # fmt: skip
    return {
        "stmtinfo": {
            "setl_optins": scope.office,
            "stmt_rslt": "0" if result.matched else "1",
            "stmt_rslt_dscr": result.description,
        }
    }


def _check_file_totals(r: Reader, lines: list[StatementLine]) -> None:
    """The request's count and sums must be those of the file's standing lines (refd_setl_flag 0)."""
    standing = [line for line in lines if not line.refunded]
    count = _count(r, "fixmedins_setl_cnt")
    sums = {
        "medfee_sumamt": sum(line.total_fen for line in standing),
        "fund_pay_sumamt": sum(line.fund_fen for line in standing),
        "cash_payamt": sum(line.total_fen - line.fund_fen - line.account_fen for line in standing),
    }
    for name, in_file in sums.items():
        given = r.fen(name, required=name != "cash_payamt")
        if given is not None and given != in_file:
            r.add(name, f"与对账文件未退费明细的合计（{yuan(in_file)} 元）不符")
    if r.has("fixmedins_setl_cnt") and count != len(standing):
        r.add("fixmedins_setl_cnt", f"与对账文件未退费明细的笔数（{len(standing)}）不符")


async def reconcile_details(call: Call) -> Mapping[str, Any]:
    r = call.node("data")
    scope = _scope(call, r)
    number = r.text("file_qury_no", required=True, limit=40, pattern=IDENTIFIER)
    r.raise_if_any()
    uploaded = await call.service.file(call.hospital, number)
    statement = files.statement_of(uploaded.content)
    _check_file_totals(r, statement.lines)
    r.raise_if_any()
    result = await call.service.reconcile_details(
        call.actor, call.hospital, scope.start, scope.end, insured_region=scope.insured_region,
        insurance_type=scope.insurance_type, clearing_kind=scope.clearing_kind, lines=statement.lines,
    )  # fmt: skip
    made = await call.service.keep_file(
        call.hospital, f"{number}_result.zip",
        files.result_file(result.differences, statement.person_numbers, result.msgids),
    )  # fmt: skip
    differing, listed = len(result.differences), len(statement.lines)
    return {
        "fileinfo": {"file_qury_no": made.file_number, "filename": made.name, "dld_endtime": _time(made.expires)},
        "stmtinfo": {
            "setl_optins": scope.office,
            "stmt_rslt": "0" if not differing else "1",
            "stmt_rslt_dscr": (
                f"对账平（{result.compared} 笔）" if not differing
                else f"对账不平：{differing} 笔不一致（平台 {result.compared} 笔，医药机构 {listed} 笔），"
                "明细见结果文件（9102 下载）"
            ),
        },
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------- files

_FILE_NAME = re.compile(r"[^/\\\x00-\x1f]{1,200}")


def _file_owner(call: Call, r: Reader) -> None:
    code = r.text("fixmedins_code", limit=12)
    if code and code != call.hospital.code:
        r.add("fixmedins_code", "应为报文的定点医药机构编号")


async def upload_file(call: Call) -> Mapping[str, Any]:
    r = call.node("fsUploadIn")
    name = r.text("filename", required=True, limit=200, pattern=_FILE_NAME)
    if idnumber.contains(name):
        r.add("filename", "不得包含身份证号")
    _file_owner(call, r)
    r.raise_if_any()
    content = files.content_of(r.data.get("in"))
    if not content:
        r.add("in", "文件内容为空")
        r.raise_if_any()
    files.check_no_id_numbers(content)
    kept = await call.service.keep_file(call.hospital, name, content)
    return {"file_qury_no": kept.file_number, "filename": kept.name, "dld_endtime": _time(kept.expires)}


async def download_file(call: Call) -> Download:
    r = call.node("fsDownloadIn")
    number = r.text("file_qury_no", required=True, limit=40, pattern=IDENTIFIER)
    r.text("filename", limit=200)
    _file_owner(call, r)
    r.raise_if_any()
    found = await call.service.file(call.hospital, number)
    return Download(found.name, found.content)


def _month(r: Reader) -> tuple[int, int]:
    year = r.int_value("trt_year", default=0, low=2000, high=2100)
    month = r.int_value("trt_month", default=0, low=1, high=12)
    if not r.has("trt_year"):
        r.add("trt_year", "必填")
    if not r.has("trt_month"):
        r.add("trt_month", "必填")
    return year, month


async def clearing_details(call: Call) -> Mapping[str, Any]:
    r = call.node("data")
    year, month = _month(r)
    start_row = r.int_value("startrow", default=1, low=1, high=10**9)
    r.raise_if_any()
    rows = await call.service.clearing_rows(call.actor, call.hospital, year, month, start_row, MAX_ROWS)
    return {
        "data": [
            {
                "seqno": start_row + i,
                "mdtrtarea": row.settlement.treatment_region,
                "medins_no": row.settlement.hospital_code,
                "certno": idnumber.mask(row.settlement.bill.id_number),
                "mdtrt_id": row.settlement.bill.visit_id,
                "mdtrt_setl_time": _time(row.settlement.settled_at),
                "setl_sn": row.settlement.settlement_id,
                "fulamt_advpay_flag": "0",
                "medfee_sumamt": yuan(row.settlement.figures.total_fen),
                "optins_pay_sumamt": yuan(row.settlement.figures.fund_pay_fen + row.settlement.figures.account_pay_fen),
                "insuplc_admdvs": row.settlement.insured_region,
                "cnfm_flag": row.confirmed or None,
            }
            for i, row in enumerate(rows)
        ]
    }


async def confirm_clearing(call: Call) -> None:
    r = call.node("data")
    year, month = _month(r)
    r.text("totalrow", limit=10)
    top = Reader(call.envelope.input, "", r.problems)
    rows = top.rows("detail", limit=MAX_ROWS)
    confirmations: dict[str, Confirmation] = {}
    for i, row in enumerate(rows):
        d = Reader(row, f"detail[{i}].", r.problems)
        sid = d.text("setl_sn", required=True, limit=30)
        flag = d.choice("cnfm_flag", {"1": "确认", "0": "不确认"})
        total, paid = d.fen("medfee_sumamt", required=False), d.fen("optins_pay_sumamt", required=False)
        if sid in confirmations:
            d.add("setl_sn", "重复")
        if sid and flag:
            confirmations[sid] = Confirmation(sid, flag == "1", total, paid)
    r.raise_if_any()
    await call.service.confirm(call.actor, call.hospital, year, month, list(confirmations.values()))


TRANSACTIONS: dict[str, Handler] = {
    "9001": sign_in,
    "9002": sign_out,
    "9101": upload_file,
    "9102": download_file,
    "1101": person_info,
    "2201": open_outpatient,
    "2202": cancel_visit,
    "2401": admit,
    "2404": cancel_visit,
    "2204": upload_outpatient,
    "2205": cancel_batch,
    "2301": upload_inpatient,
    "2302": cancel_serials,
    "2206": _pre_settler(inpatient=False),
    "2207": _settler(inpatient=False),
    "2208": cancel_settlement,
    "2303": _pre_settler(inpatient=True),
    "2304": _settler(inpatient=True),
    "2305": cancel_settlement,
    "2601": reverse,
    "3201": reconcile_totals,
    "3202": reconcile_details,
    "3260": clearing_details,
    "3261": confirm_clearing,
}


def transaction_of(infno: str) -> Handler:
    handler = TRANSACTIONS.get(infno[:4])
    if handler is None:
        raise NotFound(reason="UNKNOWN_TRANSACTION", message=f"transaction {infno} is not served")
    return handler
