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
from gateway.domain.reasons import CATALOGUE

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


def error_text(error: SigwError) -> str:
    """The Chinese ``err_msg`` of a refusal: what it means, the fields at fault, and the reason code."""
    known = CATALOGUE.get(error.reason)  # what the reason means to a hospital's operator
    meaning = known.zh if known else None
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
