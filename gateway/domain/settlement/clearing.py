"""Clearing (清算) between regions (Art. 23).

**Clearing**: the place of treatment pays its hospitals first; each month the insured regions (参保地) owe the
treating regions (就医地) what the insured fund paid: fund pay plus account pay (the cash the patient paid
is not owed). Per settlement month and per (insured region, treating region) pair, :class:`PairTotals` keeps
the count and sums as each settlement (+1) or cancellation (−1) commits (:func:`add`); :func:`recount` rebuilds
the same from the records. Closing a month yields a :class:`Statement`: the bilateral amounts and each
region's net position (receivable +, payable −), which sum to zero.

A pair whose count and sums all come back to zero (a settlement and its cancellation in the same month) is
dropped, by :func:`add` and by :func:`statement`, so running totals and a recount compare equal either way.
A cancellation counted in a later month than its settlement leaves that month with negative figures, which
is correct: it reduces what is owed.

Pure: no I/O. Money is integer fen.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.domain.errors import FieldViolation, invalid

__all__ = [
    "CSV_COLUMNS",
    "PairTotals",
    "SettledAmounts",
    "Statement",
    "add",
    "close_errors",
    "recount",
    "statement",
]

_MONTH_RE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")

#: Columns of :meth:`Statement.csv`.
CSV_COLUMNS = (
    "row",
    "month",
    "insured_region",
    "treating_region",
    "count",
    "total_fen",
    "fund_fen",
    "account_fen",
    "cash_fen",
    "owed_fen",
    "region",
    "net_fen",
)

Pair = tuple[str, str]  # (insured region, treating region)


@dataclass(frozen=True)
class PairTotals:
    """One (insured region, treating region) pair in one month: net count and sums of its settlements."""

    insured_region: str  # 参保地 (insuplc_admdvs)
    treating_region: str  # 就医地 (mdtrtarea_admvs)
    count: int
    total_fen: int
    fund_fen: int
    account_fen: int
    cash_fen: int

    @property
    def owed_fen(self) -> int:
        """What the insured region owes the treating region: fund pay plus account pay."""
        return self.fund_fen + self.account_fen

    @property
    def zero(self) -> bool:
        """Nothing left: no net settlements and every sum zero."""
        return not (self.count or self.total_fen or self.fund_fen or self.account_fen or self.cash_fen)


@dataclass(frozen=True)
class SettledAmounts:
    """One settlement (``sign`` +1) or its cancellation (``sign`` −1) as clearing sees it.

    Raises ``ValueError`` unless ``sign`` is ±1, the amounts are not negative, and fund + account + cash equals
    the total.
    """

    insured_region: str
    treating_region: str
    total_fen: int
    fund_fen: int
    account_fen: int
    cash_fen: int
    sign: int

    def __post_init__(self) -> None:
        if self.sign not in (1, -1):
            raise ValueError("sign must be +1 (settlement) or -1 (cancellation)")
        if min(self.total_fen, self.fund_fen, self.account_fen, self.cash_fen) < 0:
            raise ValueError("amounts must not be negative; the sign says which way they count")
        if self.fund_fen + self.account_fen + self.cash_fen != self.total_fen:
            raise ValueError("fund + account + cash must equal the total")


def add(pairs: Mapping[Pair, PairTotals], item: SettledAmounts) -> dict[Pair, PairTotals]:
    """A new mapping with ``item`` counted in: count ±1 and each sum ± its amount (``pairs`` is unchanged).

    The pair is dropped when it comes back to all zero.
    """
    key = (item.insured_region, item.treating_region)
    old = pairs.get(key) or PairTotals(key[0], key[1], 0, 0, 0, 0, 0)
    s = item.sign
    new = PairTotals(
        insured_region=key[0],
        treating_region=key[1],
        count=old.count + s,
        total_fen=old.total_fen + s * item.total_fen,
        fund_fen=old.fund_fen + s * item.fund_fen,
        account_fen=old.account_fen + s * item.account_fen,
        cash_fen=old.cash_fen + s * item.cash_fen,
    )
    result = dict(pairs)
    if new.zero:
        result.pop(key, None)
    else:
        result[key] = new
    return result


def recount(items: Iterable[SettledAmounts], so_far: Mapping[Pair, PairTotals] | None = None) -> dict[Pair, PairTotals]:
    """The pair totals rebuilt from the records, as successive :func:`add` calls would have kept them; from
    ``so_far`` on (a recount read in chunks)."""
    pairs: dict[Pair, PairTotals] = dict(so_far or {})
    for item in items:
        pairs = add(pairs, item)
    return pairs


@dataclass(frozen=True)
class Statement:
    """A month's clearing statement (清算单)."""

    month: str
    """``YYYY-MM``."""
    pairs: tuple[PairTotals, ...]
    """Sorted by (insured region, treating region); all-zero pairs left out."""
    net_fen: Mapping[str, int]
    """Per region, in code order: + receivable (it treated others' insured), − payable; sums to zero."""

    def csv(self) -> str:
        """The statement as CSV (``\\n`` line ends), columns :data:`CSV_COLUMNS`:

        * a header row;
        * one ``pair`` row per pair: ``month``, ``insured_region``, ``treating_region``, ``count``, ``total_fen``,
          ``fund_fen``, ``account_fen``, ``cash_fen``, ``owed_fen`` (fund + account); ``region`` and ``net_fen``
          empty;
        * one ``net`` row per region: ``month``, ``region``, ``net_fen``; the pair columns empty.

        Amounts are integer fen.
        """
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for p in self.pairs:
            writer.writerow(
                (
                    "pair",
                    self.month,
                    p.insured_region,
                    p.treating_region,
                    p.count,
                    p.total_fen,
                    p.fund_fen,
                    p.account_fen,
                    p.cash_fen,
                    p.owed_fen,
                    "",
                    "",
                )
            )
        for region, net in self.net_fen.items():
            writer.writerow(("net", self.month, "", "", "", "", "", "", "", "", region, net))
        return out.getvalue()


def statement(month: str, pairs: Mapping[Pair, PairTotals]) -> Statement:
    """The statement of ``month`` from its pair totals: each pair's owed amount is receivable for the treating
    region and payable for the insured region. Raises ``InvalidArgument`` (field ``month``) unless ``month`` is
    ``YYYY-MM``, and ``ValueError`` when a key does not match its pair's regions.
    """
    if not isinstance(month, str) or not _MONTH_RE.fullmatch(month):
        raise invalid([FieldViolation("month", "must be YYYY-MM")])
    kept: list[PairTotals] = []
    for key, p in pairs.items():
        if key != (p.insured_region, p.treating_region):
            raise ValueError(f"pair key {key} does not match its regions")
        if not p.zero:
            kept.append(p)
    kept.sort(key=lambda p: (p.insured_region, p.treating_region))
    net: dict[str, int] = {}
    for p in kept:
        net[p.treating_region] = net.get(p.treating_region, 0) + p.owed_fen
        net[p.insured_region] = net.get(p.insured_region, 0) - p.owed_fen
    assert sum(net.values()) == 0, "net positions do not sum to zero"
    return Statement(month=month, pairs=tuple(kept), net_fen=MappingProxyType(dict(sorted(net.items()))))


def close_errors(month: str, this_month: str) -> list[FieldViolation]:
    """Why ``month`` (``YYYY-MM``) cannot be closed in ``this_month`` (Asia/Shanghai); empty when it can."""
    if not _MONTH_RE.fullmatch(month):
        return [FieldViolation("month", "must be YYYY-MM")]
    if month > this_month:
        return [FieldViolation("month", "a month that has not begun cannot be closed")]
    return []
