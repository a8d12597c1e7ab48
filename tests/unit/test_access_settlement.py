"""The settlement rows of the authorisation matrix (gateway/domain/access.py), row by row."""

from __future__ import annotations

import pytest

from gateway.domain import access
from gateway.domain.errors import NotFound, PermissionDenied
from gateway.domain.participants import Participant


def p(text: str) -> Participant:
    return Participant.parse(text)


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [
        ("agency:110000:healthcare", True),
        ("agency:110000:hrss", False),  # the other agency of the region
        ("agency:310000:healthcare", False),  # another region's
        ("hospital:110000:H11010000001", False),
        ("operator:alice", False),
        ("portal:gov", False),
    ],
)
def test_filings_belong_to_the_insured_regions_healthcare_agency(caller: str, allowed: bool) -> None:
    if allowed:
        access.require_insured_agency(p(caller), "110000")
    else:
        with pytest.raises(PermissionDenied):
            access.require_insured_agency(p(caller), "110000")


@pytest.mark.parametrize(
    ("caller", "region", "reason"),
    [
        ("hospital:440300:H44030000001", "440300", None),
        ("hospital:440300:H44030000002", "440300", "NOT_THIS_HOSPITAL"),
        ("hospital:510100:H44030000001", "440300", "NOT_PLACE_OF_TREATMENT"),
        ("agency:440300:healthcare", "440300", "NOT_THIS_HOSPITAL"),
        ("operator:alice", "440300", "NOT_THIS_HOSPITAL"),
    ],
)
def test_a_hospital_settles_only_as_itself_in_its_own_region(caller: str, region: str, reason: str | None) -> None:
    if reason is None:
        access.require_hospital(p(caller), "H44030000001", region)
        return
    with pytest.raises(PermissionDenied) as caught:
        access.require_hospital(p(caller), "H44030000001", region)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("caller", "outcome"),
    [
        ("hospital:440300:H44030000001", "ok"),  # the hospital that settled
        ("agency:110000:healthcare", "ok"),  # the insured region's agency
        ("operator:alice", "ok"),
        ("hospital:440300:H44030000002", "not found"),
        ("agency:110000:hrss", "not found"),
        ("agency:440300:healthcare", "not found"),  # the treating region's agency is no party to the person
        ("portal:gov", "not found"),
    ],
)
def test_who_reads_a_settlement_and_strangers_learn_nothing(caller: str, outcome: str) -> None:
    if outcome == "ok":
        access.may_read_settlement(p(caller), "H44030000001", "110000", "S01-0123456789abcdef")
    else:
        with pytest.raises(NotFound) as caught:
            access.may_read_settlement(p(caller), "H44030000001", "110000", "S01-0123456789abcdef")
        assert caught.value.reason == "SETTLEMENT_NOT_FOUND"


@pytest.mark.parametrize(
    ("caller", "close", "statement"),
    [
        ("operator:alice", True, True),
        ("agency:110000:healthcare", False, True),
        ("agency:110000:hrss", False, False),
        ("hospital:440300:H44030000001", False, False),
        ("military:JUN001", False, False),
    ],
)
def test_clearing_is_for_operators_and_statements_also_for_healthcare_agencies(
    caller: str, close: bool, statement: bool
) -> None:
    for check, allowed in ((access.require_operator, close), (access.may_read_statement, statement)):
        if allowed:
            check(p(caller))
        else:
            with pytest.raises(PermissionDenied):
                check(p(caller))
