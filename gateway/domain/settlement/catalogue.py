"""The place of treatment's catalogue (就医地目录): each catalogue code's class and self-paid share.

"Catalogue of the place of treatment, policy of the insured region" (医保发〔2022〕22号): a hospital uploads its
fee details by national catalogue code (``med_list_codg``); the place of treatment classes each one, class A
(甲类, fully in scope), class B (乙类, the person pays ``selfpay_prop`` of it first) or class C (丙类, out of
scope), and the insured region's policy then applies to the classed bill.

A catalogue is a CSV text per treating region, one row per code::

    med_list_codg,name,chrgitm_lv,selfpay_prop,med_chrgitm_type
    XJ01CAA040A001010104021,阿莫西林胶囊,01,0,09
    XL01XCA100B002010102021,注射用曲妥珠单抗,02,0.30,09

``chrgitm_lv`` is the national level code (01 甲类, 02 乙类, 03 丙类), ``selfpay_prop`` the class B share as a
decimal fraction with at most two places (0.10 is 10 %), ``med_chrgitm_type`` the national fee category
(01 bed … 09 Western medicine … 14 other). Pure: the caller reads the files.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from gateway.domain.errors import FieldViolation, invalid
from gateway.domain.money import round_half_up
from gateway.domain.settlement.split import MAX_TEXT_LENGTH, BillItem, CatalogueClass

__all__ = ["LEVEL_CODES", "Catalogue", "CatalogueEntry", "ClassedAmounts", "classed_amounts"]

LEVEL_CODES = {"01": CatalogueClass.A, "02": CatalogueClass.B, "03": CatalogueClass.C}
"""National ``chrgitm_lv`` codes."""

_CODE = re.compile(r"[A-Za-z0-9\-_.]{1,50}")
_CATEGORY = re.compile(r"[0-9]{2}")
_COLUMNS = ("med_list_codg", "name", "chrgitm_lv", "selfpay_prop", "med_chrgitm_type")


@dataclass(frozen=True)
class CatalogueEntry:
    code: str  # med_list_codg
    name: str  # 医疗目录名称
    catalogue_class: CatalogueClass  # chrgitm_lv
    self_pay_percent: int  # selfpay_prop × 100, class B only
    category: str  # med_chrgitm_type

    @property
    def level_code(self) -> str:
        return f"{int(self.catalogue_class):02d}"

    def item(self, amount_fen: int) -> BillItem:
        """A bill line of ``amount_fen`` classed by this entry."""
        return BillItem(self.code, self.name, self.catalogue_class, amount_fen, self.self_pay_percent)


@dataclass(frozen=True)
class ClassedAmounts:
    """How one classed line splits before any policy applies (all fen)."""

    full_own_pay_fen: int  # fulamt_ownpay_amt: class C
    pre_self_pay_fen: int  # preselfpay_amt: class B's self-paid share
    in_scope_fen: int  # inscp_scp_amt


def classed_amounts(item: BillItem) -> ClassedAmounts:
    """The line's amounts as the place of treatment classes them, rounded as ``split_bill`` rounds them (the
    class B share half up per line), so the lines add up to the split's totals."""
    if item.catalogue_class is CatalogueClass.C:
        return ClassedAmounts(item.amount_fen, 0, 0)
    share = 0
    if item.catalogue_class is CatalogueClass.B:
        share = round_half_up(Fraction(item.amount_fen * item.self_pay_percent, 100))
    return ClassedAmounts(0, share, item.amount_fen - share)


def _percent(text: str) -> int | None:
    """``0.10`` → 10; None unless a fraction from 0 to 1 with at most two decimal places."""
    try:
        value = Decimal(text.strip() or "0")
    except InvalidOperation:
        return None
    hundredths = value * 100
    if not value.is_finite() or hundredths != hundredths.to_integral_value() or not 0 <= value <= 1:
        return None
    return int(hundredths)


@dataclass(frozen=True)
class Catalogue:
    """One treating region's catalogue."""

    region: str
    entries: dict[str, CatalogueEntry]

    def get(self, code: str) -> CatalogueEntry | None:
        return self.entries.get(code)

    @classmethod
    def parse(cls, region: str, text: str) -> Catalogue:
        """Raises ``InvalidArgument`` naming every bad row."""
        reader = csv.DictReader(io.StringIO(text))
        problems: list[FieldViolation] = []
        if tuple(reader.fieldnames or ()) != _COLUMNS:
            raise invalid([FieldViolation("header", f"must be {','.join(_COLUMNS)}")], reason="INVALID_CATALOGUE")
        entries: dict[str, CatalogueEntry] = {}
        for line, row in enumerate(reader, start=2):
            code, name = (row["med_list_codg"] or "").strip(), (row["name"] or "").strip()
            level = LEVEL_CODES.get((row["chrgitm_lv"] or "").strip())
            percent = _percent(row["selfpay_prop"] or "")
            category = (row["med_chrgitm_type"] or "").strip()
            where = f"line {line}"
            if not _CODE.fullmatch(code):
                problems.append(FieldViolation(where, "med_list_codg: 1-50 letters, digits, - _ or ."))
            elif code in entries:
                problems.append(FieldViolation(where, f"med_list_codg {code} listed twice"))
            if not name or len(name) > MAX_TEXT_LENGTH:
                problems.append(FieldViolation(where, f"name: 1-{MAX_TEXT_LENGTH} characters"))
            if level is None:
                problems.append(FieldViolation(where, "chrgitm_lv: 01 (甲类), 02 (乙类) or 03 (丙类)"))
            if percent is None or (percent and level is not CatalogueClass.B):
                problems.append(FieldViolation(where, "selfpay_prop: 0 to 1 with two decimals, non-zero for 乙类 only"))
            if not _CATEGORY.fullmatch(category):
                problems.append(FieldViolation(where, "med_chrgitm_type: a two-digit fee category"))
            if level is not None and percent is not None and _CODE.fullmatch(code):
                entries[code] = CatalogueEntry(code, name, level, percent, category)
        if problems:
            raise invalid(problems, reason="INVALID_CATALOGUE")
        return cls(region, entries)
