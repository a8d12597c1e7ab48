"""Reading the national interface's values as real senders write them, into exact domain values.

Hospital systems differ: amounts in yuan as JSON numbers (``388.23``) or strings (``"388.23"``), empty strings or
``null`` for unused fields, dates with or without a time. The body is parsed with every JSON number as a
``Decimal`` (never a float), and an amount becomes integer fen only when it is exact to the fen. Each problem is
collected with the national field name and a Chinese description, and raised together as ``InvalidArgument``
(reason ``INVALID_INPUT``), which the envelope reports as ``err_msg``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.domain import idnumber, ids
from gateway.domain.calendar import SHANGHAI
from gateway.domain.errors import FieldViolation, invalid
from gateway.domain.money import MAX_AMOUNT_FEN

__all__ = ["IDENTIFIER", "REGION", "TRANSACTION_NUMBER", "Reader", "as_text"]

IDENTIFIER = re.compile(r"[A-Za-z0-9_\-]{1,30}")
MSGID = re.compile(r"[A-Za-z0-9_-]{1,30}")  # IDENTIFIER's characters; another object, so not checked as one
"""The same characters as IDENTIFIER; a msgid of the national shape is not checked for ID numbers."""
"""An identifier the interface lets a sender choose (msgid, psn_no, mdtrt_id, feedetl_sn, chrg_bchno)."""
REGION = re.compile(r"[0-9]{6}")
"""A 医保区划 (admdvs), six digits."""
TRANSACTION_NUMBER = re.compile(r"[0-9]{4}[A-Z]?")
"""An ``infno``: four digits, with the letter some provinces add (2207A)."""

_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def as_text(value: object) -> str:
    """A field's value as text: ``None`` is empty, numbers are written out, text is stripped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return ""


class Reader:
    """Reads the fields of one JSON object (``data``, an envelope, a detail), collecting problems under
    ``prefix``."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "", problems: list[FieldViolation] | None = None):
        self.data = data
        self.prefix = prefix
        self.problems: list[FieldViolation] = [] if problems is None else problems

    def add(self, name: str, description: str) -> None:
        self.problems.append(FieldViolation(f"{self.prefix}{name}", description))

    def raise_if_any(self) -> None:
        if self.problems:
            raise invalid(self.problems, reason="INVALID_INPUT")

    def has(self, name: str) -> bool:
        return bool(as_text(self.data.get(name)))

    def text(
        self, name: str, *, required: bool = False, limit: int = 100, pattern: re.Pattern[str] | None = None
    ) -> str:
        raw = self.data.get(name)
        if raw is not None and not isinstance(raw, (str, int, Decimal, bool)):
            self.add(name, "应为字符串")
            return ""
        value = as_text(raw)
        if not value:
            if required:
                self.add(name, "必填")
            return ""
        if len(value) > limit:
            self.add(name, f"超过{limit}个字符")
            return ""
        if _CONTROL.search(value):
            self.add(name, "含控制字符")
            return ""
        if pattern is not None and not pattern.fullmatch(value):
            self.add(name, "格式不正确")
            return ""
        if pattern is IDENTIFIER and idnumber.contains(value):  # identifiers are kept in the clear
            self.add(name, "不得包含身份证号")
            return ""
        return value

    def msgid(self, name: str, *, required: bool = True) -> str:
        """A msgid: the national shape (institution code 12 + yyyyMMddHHmmss + 4-digit sequence, whose 18 digits
        are a time, not a person) as it is; another shape is an identifier like any other."""
        value = self.text(name, required=required, limit=30, pattern=MSGID)
        if value and ids.msgid_time(value) is None and idnumber.contains(value):
            self.add(name, "不得包含身份证号")
            return ""
        return value

    def choice(self, name: str, allowed: Mapping[str, str], *, required: bool = True, default: str = "") -> str:
        """A code from ``allowed`` (code → meaning); the meanings are listed in the problem."""
        value = self.text(name, required=required and not default)
        if not value:
            return default
        if value not in allowed:
            listed = "、".join(f"{code}（{meaning}）" for code, meaning in allowed.items())
            self.add(name, f"应为 {listed}")
            return ""
        return value

    def fen(self, name: str, *, required: bool = True) -> int | None:
        """A yuan amount as integer fen: exact to the fen (more than two decimal places refused), not
        negative, within the bound every amount has."""
        raw = self.data.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                self.add(name, "必填（金额，单位元）")
            return None
        if isinstance(raw, bool) or not isinstance(raw, (int, Decimal, str)):
            self.add(name, "应为金额（元，两位小数）")
            return None
        try:
            value = Decimal(str(raw).strip())
        except InvalidOperation:
            self.add(name, "应为金额（元，两位小数）")
            return None
        fen = value * 100
        if not value.is_finite() or fen != fen.to_integral_value():
            self.add(name, "金额最多两位小数")
            return None
        if value < 0:
            self.add(name, "金额不能为负")
            return None
        if fen > MAX_AMOUNT_FEN:
            self.add(name, "金额超出上限")
            return None
        return int(fen)

    def decimal(self, name: str, *, places: int, required: bool = True) -> Decimal | None:
        """A quantity or unit price (``cnt`` 16,4; ``pric`` 16,6), not negative."""
        raw = self.data.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                self.add(name, "必填")
            return None
        try:
            value = Decimal(str(raw).strip()) if isinstance(raw, (int, Decimal, str)) else None
        except InvalidOperation:
            value = None
        if value is None or isinstance(raw, bool) or not value.is_finite() or value < 0 or value >= 10**10:
            self.add(name, "应为不小于0的数")
            return None
        if value != value.quantize(Decimal(1).scaleb(-places)):
            self.add(name, f"最多{places}位小数")
            return None
        return Decimal(f"{value.normalize():f}")  # 300.00 -> 300, never 3E+2

    def date(self, name: str, *, required: bool = True) -> date | None:
        moment = self.moment(name, required=required)
        return moment.date() if moment else None

    def moment(self, name: str, *, required: bool = True) -> datetime | None:
        """A date or date-time (``yyyy-MM-dd``, ``yyyy-MM-dd HH:mm:ss``, ``yyyyMMdd``, …) in Asia/Shanghai."""
        value = self.text(name, required=required, limit=19)
        if not value:
            return None
        for form in _DATE_FORMATS:
            try:
                return datetime.strptime(value, form).replace(tzinfo=SHANGHAI)
            except ValueError:
                continue
        self.add(name, "应为日期 yyyy-MM-dd 或时间 yyyy-MM-dd HH:mm:ss")
        return None

    def int_value(self, name: str, *, default: int, low: int, high: int) -> int:
        value = self.text(name, limit=12)
        if not value:
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            self.add(name, f"应为 {low} 到 {high} 的整数")
            return default
        return int(value)

    def rows(self, name: str, *, required: bool = True, limit: int) -> list[Mapping[str, Any]]:
        """A list of objects (a single object is taken as a list of one, as some senders do)."""
        raw = self.data.get(name)
        if raw is None or raw == "":
            if required:
                self.add(name, "必填")
            return []
        if isinstance(raw, Mapping):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(row, Mapping) for row in raw):
            self.add(name, "应为对象数组")
            return []
        if required and not raw:
            self.add(name, "不能为空")
        if len(raw) > limit:
            self.add(name, f"最多{limit}条")
            return []
        return raw

    def object(self, name: str) -> Mapping[str, Any]:
        raw = self.data.get(name)
        if raw is None or raw == "":
            return {}
        if not isinstance(raw, Mapping):
            self.add(name, "应为对象")
            return {}
        return raw
