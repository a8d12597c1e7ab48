"""The national interface's envelope: the request as hospital systems send it, the answer as the platform gives
it, and the one mapping of sigw's errors to ``infcode`` / ``err_msg`` (Chinese, with the reason in brackets).

Request: ``infno``, ``msgid``, ``mdtrtarea_admvs``, ``insuplc_admdvs``, ``recer_sys_code``, ``dev_no``,
``dev_safe_info``, ``cainfo``, ``signtype``, ``infver``, ``opter_type``, ``opter``, ``opter_name``, ``inf_time``,
``fixmedins_code``, ``fixmedins_name``, ``sign_no``, ``input``. Answer: ``infcode`` (0 success, -1 failure, a JSON
number), ``inf_refmsgid`` (region 6 + yyyyMMddHHmmss + sequence 10), ``refmsg_time`` and ``respond_time``
(yyyyMMddHHmmssSSS), ``err_msg``, ``warn_msg``, ``cainfo``, ``signtype``, ``output``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import simplejson

from gateway.api.national.values import REGION, TRANSACTION_NUMBER, Reader
from gateway.domain import idnumber
from gateway.domain.errors import InvalidArgument, SigwError

__all__ = [
    "FAILURE",
    "SUCCESS",
    "Envelope",
    "answer",
    "dumps",
    "error_text",
    "parse",
    "yuan",
]

SUCCESS = 0
FAILURE = -1
_INFVER = re.compile(r"[Vv]?[0-9]+(\.[0-9]+){0,2}")
_HOSPITAL = re.compile(r"[A-Z0-9]{12}")

# What each refusal reason means to a hospital's operator.
REASONS_ZH: dict[str, str] = {
    "INVALID_INPUT": "入参有误",
    "INVALID_DETAILS": "费用明细有误",
    "TOTAL_MISMATCH": "医疗费总额与明细不符",
    "NOT_SIGNED_IN": "未签到或签到已失效，请先签到（9001）",
    "NOT_THIS_HOSPITAL": "报文的定点医药机构不是证书所属机构",
    "NOT_PLACE_OF_TREATMENT": "就医地医保区划不是本机构所在地",
    "HOSPITAL_NOT_REGISTERED": "定点医药机构未在本平台登记",
    "NOT_NON_LOCAL": "参保人参保地即就医地，请按本地结算",
    "UNKNOWN_REGION": "参保地医保区划未知",
    "INSURED_REGION_REQUIRED": "请传入参保地医保区划（insuplc_admdvs）：该人员在本地无唯一有效的异地就医备案",
    "INSURED_REGION_MISMATCH": "参保地医保区划与人员信息不符",
    "PERSON_NOT_FOUND": "未查询到人员信息",
    "PERSON_MISMATCH": "人员编号与就诊信息不符",
    "NOT_INSURED": "该人员无此险种的有效参保",
    "VISIT_NOT_FOUND": "就诊信息不存在",
    "VISIT_CANCELLED": "就诊已撤销",
    "VISIT_SETTLED": "就诊存在未撤销的结算，请先撤销结算",
    "VISIT_MISMATCH": "就诊ID与结算不符",
    "VISIT_BUSY": "就诊信息正被其他交易修改，请重试",
    "VISIT_OF_ANOTHER_HOSPITAL": "该就诊属于其他机构",
    "DETAIL_SERIAL_USED": "费用明细流水号已用于其他明细",
    "DETAIL_SETTLED": "费用明细已结算，请先撤销结算",
    "TOO_MANY_DETAILS": "费用明细条数超过上限",
    "NO_DETAILS": "没有待结算的费用明细",
    "NO_CATALOGUE": "就医地目录未加载",
    "NOT_FILED": "未办理异地就医备案，参保地不予直接结算",
    "MONTH_CLOSED": "该结算月份已清算关账",
    "ALREADY_CANCELLED": "结算已撤销，不能重复撤销或冲正",
    "SETTLEMENT_NOT_FOUND": "结算信息不存在",
    "ORIGINAL_MESSAGE_NOT_FOUND": "原交易不存在",
    "NOT_REVERSIBLE": "该交易不支持冲正",
    "MSGID_REUSED": "报文ID已被其他内容的报文使用",
    "REQUEST_ID_REUSED": "报文ID已被其他内容的报文使用",
    "NOT_THIS_MONTH": "确认明细不属于本机构该清分月份",
    "AMOUNT_MISMATCH": "确认的金额与平台清分明细不符",
    "INVALID_FILE": "文件有误",
    "FILE_NOT_FOUND": "文件不存在或已过期，请重新上传（9101）",
    "AGENCY_UNAVAILABLE": "参保地经办系统暂不可用，请稍后重试",
    "AGENCY_ANSWER_INCONSISTENT": "参保地返回结果不一致，未结算，请稍后重试",
    "DEADLINE_TOO_SHORT": "剩余时间不足，请重试",
    "STORE_UNAVAILABLE": "平台存储暂不可用，请稍后重试",
    "RATE_LIMITED": "交易过于频繁，请稍后重试",
    "UNKNOWN_TRANSACTION": "不支持的交易编号",
    "BODY_TOO_LARGE": "报文过大",
    "NOT_JSON": "报文不是合法的JSON",
    "NO_IDENTITY": "未识别调用方身份（双向TLS证书）",
    "UNKNOWN_PARTICIPANT": "证书所属机构未登记",
    "INTERNAL": "平台内部错误，请联系运维",
}


def error_text(error: SigwError) -> str:
    """The Chinese ``err_msg`` of a refusal: what it means, the fields at fault, and the reason code."""
    meaning = REASONS_ZH.get(error.reason)
    if isinstance(error, InvalidArgument) and error.violations:
        fields = "；".join(f"{v.field}：{v.description}" for v in error.violations[:20])
        text = f"{meaning or '入参有误'}：{fields}"
    elif meaning:
        # Which message cancelled it is worth telling (the settlement's own message names it).
        text = f"{meaning}（{error.message}）" if error.reason == "ALREADY_CANCELLED" else meaning
    else:
        text = f"交易失败：{error.message}"
    return idnumber.scrub(f"{text}（{error.reason}）")


def loads(body: bytes) -> Any:
    """JSON with every number a ``Decimal`` or an ``int``, never a float."""
    return simplejson.loads(body, use_decimal=True)


def dumps(doc: Mapping[str, Any]) -> str:
    """JSON with ``Decimal`` amounts written as numbers, Chinese as it is."""
    return str(simplejson.dumps(doc, use_decimal=True, ensure_ascii=False, separators=(",", ":")))


def yuan(fen: int) -> Decimal:
    """Integer fen as a yuan amount with two decimals (an exact JSON number)."""
    return Decimal(fen).scaleb(-2).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Envelope:
    infno: str
    msgid: str
    treatment_region: str  # mdtrtarea_admvs
    insured_region: str  # insuplc_admdvs
    hospital_code: str  # fixmedins_code
    hospital_name: str  # fixmedins_name
    sign_no: str
    operator: str  # opter
    operator_name: str  # opter_name
    operator_type: str  # opter_type
    version: str  # infver
    input: Mapping[str, Any]


def parse(doc: object) -> Envelope:
    """The envelope of a request (untidy senders accepted), ``InvalidArgument`` naming every bad field."""
    if not isinstance(doc, Mapping):
        raise InvalidArgument(reason="NOT_JSON", message="the body is not a JSON object")
    r = Reader(doc)
    infno = r.text("infno", required=True, limit=5, pattern=TRANSACTION_NUMBER)
    msgid = r.msgid("msgid")
    treatment = r.text("mdtrtarea_admvs", required=True, limit=6, pattern=REGION)
    insured = r.text("insuplc_admdvs", limit=6, pattern=REGION)
    hospital = r.text("fixmedins_code", required=True, limit=12, pattern=_HOSPITAL)
    name = r.text("fixmedins_name", limit=200)
    sign_no = r.text("sign_no", limit=30)
    operator = r.text("opter", limit=30)
    operator_name = r.text("opter_name", limit=50)
    operator_type = r.choice("opter_type", {"1": "经办人", "2": "自助终端", "3": "移动终端"}, default="1")
    version = r.text("infver", limit=10, pattern=_INFVER)
    for optional in ("recer_sys_code", "dev_no", "signtype", "inf_time"):
        r.text(optional, limit=100)
    r.text("dev_safe_info", limit=2000)
    r.text("cainfo", limit=1024)
    data = r.object("input")
    r.raise_if_any()
    return Envelope(
        infno, msgid, treatment, insured, hospital, name, sign_no, operator, operator_name, operator_type,
        version, data,
    )  # fmt: skip


def answer(
    *, code: int, region: str, sequence: int, received: datetime, responded: datetime, err_msg: str,
    output: Mapping[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    """The answer envelope; ``inf_refmsgid`` is the receiving region (the place of treatment, or 000000 when
    the request named none), the time received and a 10-digit sequence."""
    return {
        "infcode": code,
        "inf_refmsgid": f"{region or '000000'}{received:%Y%m%d%H%M%S}{sequence % 10**10:010d}",
        "refmsg_time": f"{received:%Y%m%d%H%M%S}{received.microsecond // 1000:03d}",
        "respond_time": f"{responded:%Y%m%d%H%M%S}{responded.microsecond // 1000:03d}",
        "err_msg": err_msg or None,
        "warn_msg": None,
        "cainfo": None,
        "signtype": None,
        "output": output,
    }
