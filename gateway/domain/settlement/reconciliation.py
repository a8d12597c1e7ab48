"""Reconciliation (对账) of a hospital's settlements with the gateway's (Art. 23).

A hospital's lines for a period are compared with the gateway's, first by :func:`totals` (count, medical fee
total, fund pay, account pay, cash) and then line by line (:func:`differences`): sigw.v1's ``ReconLine`` or the
national interface's statement file lines (:class:`StatementLine`, 3202). A period is at most ``MAX_PERIOD_DAYS``
long (:func:`period_errors`).

Pure: no I/O. Money is integer fen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Generic, Protocol, TypeVar

from gateway.domain.errors import FieldViolation, invalid

__all__ = [
    "AMOUNT_DIFFERS",
    "MAX_PERIOD_DAYS",
    "MISSING_AT_GATEWAY",
    "MISSING_AT_HOSPITAL",
    "Difference",
    "ReconLine",
    "ReconTotals",
    "StatementLine",
    "differences",
    "period_errors",
    "totals",
]

MAX_PERIOD_DAYS = 92
"""The longest period one reconciliation covers (a quarter)."""


def period_errors(start: date, end: date) -> list[FieldViolation]:
    """Why ``start``..``end`` (inclusive) is not a period to reconcile; empty when it is."""
    if end < start or (end - start).days > MAX_PERIOD_DAYS:
        return [FieldViolation("end_date", f"must be on or after start_date, at most {MAX_PERIOD_DAYS} days later")]
    return []


@dataclass(frozen=True)
class ReconLine:
    """One settlement in a reconciliation (对账明细)."""

    settlement_id: str  # 结算ID (setl_id)
    total_fen: int  # medfee_sumamt
    fund_fen: int  # fund_pay_sumamt
    account_fen: int  # acct_pay
    cash_fen: int  # psn_cash_pay


@dataclass(frozen=True)
class StatementLine:
    """One settlement in a detail reconciliation by file (对明细账, 3202): also its stay, and whether the
    hospital holds it cancelled (``refd_setl_flag`` 1)."""

    settlement_id: str  # setl_id
    visit_id: str  # mdtrt_id
    total_fen: int  # medfee_sumamt
    fund_fen: int  # fund_pay_sumamt
    account_fen: int  # acct_pay
    refunded: bool  # refd_setl_flag


class _Line(Protocol):
    @property
    def settlement_id(self) -> str: ...


Line = TypeVar("Line", bound=_Line)


@dataclass(frozen=True)
class ReconTotals:
    """Totals of a set of settlements (对账汇总)."""

    count: int
    total_fen: int
    fund_fen: int
    account_fen: int
    cash_fen: int


def totals(lines: Iterable[ReconLine]) -> ReconTotals:
    """Count and sums of ``lines``."""
    count = total = fund = account = cash = 0
    for line in lines:
        count += 1
        total += line.total_fen
        fund += line.fund_fen
        account += line.account_fen
        cash += line.cash_fen
    return ReconTotals(count=count, total_fen=total, fund_fen=fund, account_fen=account, cash_fen=cash)


@dataclass(frozen=True)
class Difference(Generic[Line]):
    """One settlement on which the gateway and the hospital disagree.

    ``kind``: ``MISSING_AT_GATEWAY`` (only ``hospital`` set), ``MISSING_AT_HOSPITAL`` (only ``gateway`` set) or
    ``AMOUNT_DIFFERS`` (both set, some amount or other field differs).
    """

    settlement_id: str
    kind: str
    gateway: Line | None
    hospital: Line | None


MISSING_AT_GATEWAY = "MISSING_AT_GATEWAY"
MISSING_AT_HOSPITAL = "MISSING_AT_HOSPITAL"
AMOUNT_DIFFERS = "AMOUNT_DIFFERS"


def _by_id(lines: Iterable[Line], *, hospital: bool) -> dict[str, Line]:
    result: dict[str, Line] = {}
    for i, line in enumerate(lines):
        if line.settlement_id in result:
            if hospital:
                raise invalid(
                    [FieldViolation(f"lines[{i}].settlement_id", "appears more than once")],
                    reason="DUPLICATE_SETTLEMENT_ID",
                )
            raise ValueError(f"the gateway lists settlement {line.settlement_id} twice")
        result[line.settlement_id] = line
    return result


def differences(gateway: Iterable[Line], hospital: Iterable[Line]) -> list[Difference[Line]]:
    """The settlements on which the two sides disagree, sorted by settlement id.

    A settlement id listed twice by the hospital raises ``InvalidArgument`` ``DUPLICATE_SETTLEMENT_ID`` (field
    ``lines[i].settlement_id``, as in ``ReconcileRequest``); twice by the gateway, ``ValueError`` (a store fault).
    """
    ours = _by_id(gateway, hospital=False)
    theirs = _by_id(hospital, hospital=True)
    found: list[Difference[Line]] = []
    for sid in sorted(ours.keys() | theirs.keys()):
        g, h = ours.get(sid), theirs.get(sid)
        if g is None:
            found.append(Difference(sid, MISSING_AT_GATEWAY, None, h))
        elif h is None:
            found.append(Difference(sid, MISSING_AT_HOSPITAL, g, None))
        elif g != h:
            found.append(Difference(sid, AMOUNT_DIFFERS, g, h))
    return found
