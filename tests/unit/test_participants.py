"""Participants: the written form, parsed and printed back, and the texts that name nobody."""

from __future__ import annotations

import pytest

from gateway.domain.errors import Unauthenticated
from gateway.domain.participants import AgencyKey, AgencyType, Participant, Role

WELL_FORMED = [
    ("agency:110000:hrss", Participant(Role.AGENCY, region="110000", agency_type=AgencyType.HRSS)),
    ("agency:110000:healthcare", Participant(Role.AGENCY, region="110000", agency_type=AgencyType.HEALTHCARE_SECURITY)),
    ("military:JUN001", Participant(Role.MILITARY, code="JUN001")),
    ("hospital:440300:H44030000001", Participant(Role.HOSPITAL, region="440300", code="H44030000001")),
    ("portal:gov", Participant(Role.PORTAL, code="gov")),
    ("operator:alice", Participant(Role.OPERATOR, code="alice")),
    ("operator:a.b-c_9", Participant(Role.OPERATOR, code="a.b-c_9")),
    ("military:" + "X" * 32, Participant(Role.MILITARY, code="X" * 32)),
]


@pytest.mark.parametrize(("text", "participant"), WELL_FORMED, ids=[t for t, _ in WELL_FORMED])
def test_parse_and_print_round_trip(text: str, participant: Participant) -> None:
    assert Participant.parse(text) == participant
    assert str(participant) == text
    assert Participant.parse(str(participant)) == participant


def test_every_role_has_a_written_form() -> None:
    assert {Participant.parse(text).role for text, _ in WELL_FORMED} == set(Role)


@pytest.mark.parametrize("agency_type", list(AgencyType))
def test_agency_key_round_trip(agency_type: AgencyType) -> None:
    key = AgencyKey("510100", agency_type)
    participant = Participant.agency_of(key)
    assert participant.agency == key
    assert str(participant) == str(key).replace("510100", "agency:510100", 1)
    assert Participant.parse(str(participant)) == participant


@pytest.mark.parametrize("text", ["military:JUN001", "hospital:440300:H44030000001", "portal:gov", "operator:alice"])
def test_only_agencies_are_agencies(text: str) -> None:
    assert Participant.parse(text).agency is None


MALFORMED = [
    "",
    " ",
    ":",
    "agency",
    "agency:",
    "agency:110000",
    "agency::hrss",
    "agency:11000:hrss",  # five digits
    "agency:1100000:hrss",  # seven digits
    "agency:11000a:hrss",
    "agency:110000:HRSS",  # slugs are lower case
    "agency:110000:medical",
    "agency:110000:hrss:extra",
    "Agency:110000:hrss",
    "AGENCY:110000:hrss",
    "agency 110000 hrss",
    "hospital:440300",
    "hospital:440300:",
    "hospital:44030:H44030000001",
    "hospital:440300:H 1",
    "hospital:440300:H/1",
    "hospital:440300:" + "H" * 33,
    "hospital:H44030000001",
    "military",
    "military:",
    "military:JUN 001",
    "military:JUN001:x",
    "military:" + "X" * 33,
    "portal:",
    "portal:g:v",
    "operator:",
    "operator:al/ice",
    "operator:ali@ce",
    "operator:爱丽丝",
    "applicant:110105198506151234",
    "root:alice",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_texts_are_unauthenticated(text: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        Participant.parse(text)
    assert caught.value.reason == "UNKNOWN_PARTICIPANT"
    assert caught.value.message == "the caller names no valid participant"  # never echoes the text


@pytest.mark.parametrize(
    "text",
    [
        "agency:١١٠٠٠٠:hrss",  # Arabic-Indic digits
        "agency:１１００００:hrss",  # full-width digits
        "agency:110000\n:hrss",  # a trailing newline inside the region part
        "hospital:440300\n:H44030000001",
    ],
)
def test_region_must_be_six_ascii_digits(text: str) -> None:
    with pytest.raises(Unauthenticated):
        Participant.parse(text)
