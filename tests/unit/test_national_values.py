"""The national interface's values and the place of treatment's catalogue, against the rules' own words:
yuan to fen exactly (two decimal places at most, never a float), and class B's self-paid share rounded half up
per line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.api.national.envelope import dumps, loads, yuan
from gateway.api.national.values import Reader
from gateway.domain.errors import InvalidArgument
from gateway.domain.settlement.catalogue import Catalogue, classed_amounts
from gateway.domain.settlement.split import BillItem, CatalogueClass

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("sent", "fen"),
    [("388.23", 38823), (Decimal("388.23"), 38823), (388, 38800), ("0.1", 10), ("388.230", 38823), (" 5 ", 500)],
)
def test_yuan_in_any_spelling_becomes_exact_fen(sent: object, fen: int) -> None:
    r = Reader({"amount": sent})
    assert r.fen("amount") == fen and not r.problems


@pytest.mark.parametrize(
    ("sent", "problem"),
    [("388.235", "金额最多两位小数"), ("-1", "金额不能为负"), ("abc", "应为金额"), (True, "应为金额"), ("", "必填")],
)
def test_bad_amounts_are_named(sent: object, problem: str) -> None:
    r = Reader({"amount": sent})
    assert r.fen("amount") is None
    assert [(v.field, problem in v.description) for v in r.problems] == [("amount", True)]
    with pytest.raises(InvalidArgument):
        r.raise_if_any()


def test_json_numbers_are_decimals_both_ways() -> None:
    doc = loads(b'{"a": 0.1, "b": 0.2, "n": 3}')
    assert doc["a"] + doc["b"] == Decimal("0.3") and isinstance(doc["n"], int)
    assert dumps({"x": yuan(12345), "y": yuan(-5)}) == '{"x":123.45,"y":-0.05}'


def test_the_demo_catalogues_parse_and_class_b_rounds_half_up_per_line() -> None:
    shenzhen = Catalogue.parse("440300", (ROOT / "config" / "catalogues" / "440300.csv").read_text())
    ct = shenzhen.get("002201000010000")
    assert ct is not None and ct.catalogue_class is CatalogueClass.B and ct.self_pay_percent == 10
    # 10 % of 0.05 yuan is 0.005 yuan: half a fen, rounded up to 1 fen; the rest is in scope.
    amounts = classed_amounts(ct.item(5))
    assert (amounts.pre_self_pay_fen, amounts.in_scope_fen, amounts.full_own_pay_fen) == (1, 4, 0)
    c = classed_amounts(BillItem("X", "丙类药", CatalogueClass.C, 3100, 0))
    assert (c.full_own_pay_fen, c.in_scope_fen) == (3100, 0)


def test_a_bad_catalogue_names_each_bad_row() -> None:
    text = "med_list_codg,name,chrgitm_lv,selfpay_prop,med_chrgitm_type\nA1,甲,01,0.10,09\nA1,乙,04,0,9\n"
    with pytest.raises(InvalidArgument) as refused:
        Catalogue.parse("440300", text)
    fields = [v.field for v in refused.value.violations]
    assert fields.count("line 2") == 1 and fields.count("line 3") >= 3


def test_quantities_and_prices_keep_their_value_without_exponents() -> None:
    r = Reader({"cnt": "2.5000", "pric": Decimal("300.00"), "bad": "1.0000001"})
    assert (str(r.decimal("cnt", places=4)), str(r.decimal("pric", places=6))) == ("2.5", "300")
    assert r.decimal("bad", places=6) is None and r.problems[0].description == "最多6位小数"
