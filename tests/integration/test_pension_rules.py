"""Arts. 12-14 through real servers: the account with interest, the temporary account (国办发〔2009〕66号 Art. 5),
the paying region and its collections (66号 Art. 6), medical continuity (医保办发〔2021〕43号), unemployment months."""

from __future__ import annotations

from datetime import date

import grpc
import pytest

from adapters.simulated_agency import contribution_record
from gateway._gen.sigw.v1 import agency_pb2, common_pb2, transfer_pb2
from gateway.domain.idnumber import make_id_number
from gateway.domain.participants import AgencyType
from tests.conftest import Demo, as_
from tests.helpers import OPERATOR, eventually, person_id, wait_for_state
from tests.integration.test_transfer_rules import expect_error, keys_in

S = transfer_pb2
SH_HRSS = as_("agency:310000:hrss")
WOMAN_55 = make_id_number("110105", date(1970, 5, 10), 2)  # aged 55 in March 2026


def create(person: str, *, hukou: str = "", **extra: object) -> S.CreateTransferRequest:
    return S.CreateTransferRequest(
        request_id=f"c-{person[-6:]}-{hukou}",
        kind=S.TRANSFER_KIND_EMPLOYEE_PENSION,
        person=common_pb2.Person(id_number=person, name="王五"),
        source_region="110000",
        target_region="310000",
        circumstances=S.Circumstances(hukou_region=hukou, **extra),  # type: ignore[arg-type]
    )


async def test_a_pension_moves_its_balance_with_interest(demo: Demo) -> None:
    """66号 Art. 4: the whole balance (本息) moves; the table states each year's credit and interest."""
    t = (await demo.transfers.CreateTransfer(create(person_id(), hukou="310000"), metadata=SH_HRSS)).transfer
    done = await wait_for_state(demo.transfers, t.transfer_id, S.TRANSFER_STATE_COMPLETED)
    years, balance = contribution_record(person_id())
    interest = sum(y.interest_fen or 0 for y in years)
    assert interest > 0
    assert done.info.individual_account_fen == balance
    assert sum(c.interest_fen for c in done.info.contributions) == interest
    assert done.relationship_region == "310000"


async def test_a_woman_of_55_moving_outside_her_hukou_province_keeps_the_relationship(demo: Demo) -> None:
    """66号 Art. 5: the new region opens a temporary account; nothing moves; the old region is told."""
    t = (await demo.transfers.CreateTransfer(create(WOMAN_55, hukou="110000"), metadata=SH_HRSS)).transfer
    assert t.temporary_account and t.steps[0].name == S.STEP_NAME_TEMPORARY_ACCOUNT
    done = await wait_for_state(demo.transfers, t.transfer_id, S.TRANSFER_STATE_TEMPORARY_ACCOUNT)
    assert done.relationship_region == "110000" and not done.HasField("info")
    assert "the relationship stays at 110000" in done.timeline[-1].note
    beijing = demo.agency("110000")
    await eventually(
        lambda: any(
            m.transfer_notice.type == agency_pb2.NOTICE_TYPE_TEMPORARY_ACCOUNT_OPENED
            and m.transfer_notice.transfer.transfer_id == t.transfer_id
            for m in beijing.received
        )
    )
    # the applicant's query says where the relationship stays
    status = await demo.transfers.QueryTransferStatus(
        S.QueryTransferStatusRequest(transfer_id=t.transfer_id, id_number=WOMAN_55), metadata=as_("portal:gov")
    )
    assert status.transfer.state == S.TRANSFER_STATE_TEMPORARY_ACCOUNT
    assert status.transfer.relationship_region == "110000"
    # the same person moving to her hukou province moves the relationship as usual
    home = S.CreateTransferRequest(
        request_id="home",
        kind=S.TRANSFER_KIND_EMPLOYEE_PENSION,
        person=common_pb2.Person(id_number=WOMAN_55, name="王五"),
        source_region="310000",
        target_region="110000",
        circumstances=S.Circumstances(hukou_region="110000"),
    )
    back = (await demo.transfers.CreateTransfer(home, metadata=as_("agency:110000:hrss"))).transfer
    assert not back.temporary_account and back.steps[0].name == S.STEP_NAME_CONTACT_LETTER


async def test_the_hukou_region_is_required_when_it_decides(demo: Demo, redis_url: str) -> None:
    before = keys_in(redis_url)
    _, _, violations = await expect_error(
        demo.transfers.CreateTransfer(create(WOMAN_55), metadata=SH_HRSS), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert [f for f, _ in violations] == ["circumstances.hukou_region"]
    assert keys_in(redis_url) == before


def history_person(profile: int) -> str:
    """A person of demo history ``profile`` (the ID number's 16th digit modulo 3)."""
    return make_id_number("110105", date(1966, 4, 1), 100 + 10 * profile + 1)


@pytest.mark.parametrize(
    ("profile", "hukou", "paying", "rule", "senders"),
    [
        (0, "310000", "310000", S.PAYING_RULE_HUKOU_HOLDS_RELATIONSHIP, []),
        (0, "110000", "310000", S.PAYING_RULE_TEN_YEARS_WHERE_RELATIONSHIP, []),
        (
            1,
            "110000",
            "510100",
            S.PAYING_RULE_LAST_REGION_WITH_TEN_YEARS,
            [("440300", S.COLLECTION_SOURCE_RELATIONSHIP), ("310000", S.COLLECTION_SOURCE_TEMPORARY_ACCOUNT)],
        ),
        (
            2,
            "510100",
            "510100",
            S.PAYING_RULE_HUKOU_COLLECTS_ALL,
            [("440300", S.COLLECTION_SOURCE_RELATIONSHIP), ("310000", S.COLLECTION_SOURCE_TEMPORARY_ACCOUNT)],
        ),
    ],
)
async def test_the_paying_region_from_what_the_regions_report(
    demo: Demo, profile: int, hukou: str, paying: str, rule: int, senders: list[tuple[str, int]]
) -> None:
    """66号 Art. 6: each region's agency reports its own periods; the gateway applies the four cases."""
    person = history_person(profile)
    answer = await demo.transfers.DeterminePayingRegion(
        S.DeterminePayingRegionRequest(person=common_pb2.Person(id_number=person), hukou_region=hukou),
        metadata=as_("agency:110000:hrss"),
    )
    assert (answer.paying_region, answer.rule) == (paying, rule)
    assert [(s.region_code, s.source) for s in answer.senders] == senders
    assert len({p.region_code for p in answer.periods}) == len(answer.periods) >= 2
    assert "66号 Art. 6" in answer.reason and person not in str(answer)


async def test_the_paying_region_opens_the_collections_once(demo: Demo, redis_url: str) -> None:
    person = history_person(1)  # rule 3: Chengdu pays; Shenzhen sends the relationship, Shanghai its temporary account
    request = S.DeterminePayingRegionRequest(
        request_id="pay-1",
        person=common_pb2.Person(id_number=person, name="王五"),
        hukou_region="110000",
        start_collection=True,
    )
    # only the paying region's agency starts them; a refusal writes nothing
    before = keys_in(redis_url)
    reason, _, _ = await expect_error(
        demo.transfers.DeterminePayingRegion(request, metadata=as_("agency:440300:hrss")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert reason == "NOT_PAYING_REGION_AGENCY" and keys_in(redis_url) == before
    chengdu = as_("agency:510100:hrss")
    answer = await demo.transfers.DeterminePayingRegion(request, metadata=chengdu)
    collections = answer.collections
    assert [(c.kind, c.source_region, c.target_region) for c in collections] == [
        (S.TRANSFER_KIND_PENSION_COLLECTION, "440300", "510100"),
        (S.TRANSFER_KIND_PENSION_COLLECTION, "310000", "510100"),
    ]
    assert [c.circumstances.collection_source for c in collections] == [
        S.COLLECTION_SOURCE_RELATIONSHIP,
        S.COLLECTION_SOURCE_TEMPORARY_ACCOUNT,
    ]
    again = await demo.transfers.DeterminePayingRegion(request, metadata=chengdu)
    assert [c.transfer_id for c in again.collections] == [c.transfer_id for c in collections]
    # both complete through the simulated agencies: the relationship at 12%, the temporary account in full
    done = [await wait_for_state(demo.transfers, c.transfer_id, S.TRANSFER_STATE_COMPLETED) for c in collections]
    relationship, temporary = done
    assert relationship.relationship_region == "510100"
    bases_fund = sum(c.monthly_base_fen * (c.last_month - c.first_month + 1) for c in temporary.info.contributions)
    assert temporary.info.pooled_fund_fen == bases_fund * 16 // 100  # everything the temporary account took
    assert relationship.info.individual_account_fen > 0


async def test_medical_continuity_is_on_the_transfer_and_the_applicants_query(demo: Demo) -> None:
    """医保办发〔2021〕43号: a gap over three months: a waiting period (default six months)."""
    request = S.CreateTransferRequest(
        request_id="m-1",
        kind=S.TRANSFER_KIND_EMPLOYEE_MEDICAL,
        person=common_pb2.Person(id_number=person_id(), name="王五"),
        source_region="110000",
        target_region="310000",
        circumstances=S.Circumstances(gap_months=5),
    )
    t = (await demo.transfers.CreateTransfer(request, metadata=as_("agency:310000:healthcare"))).transfer
    assert (t.continuity.continuous, t.continuity.waiting_months, t.continuity.months_to_pay) == (False, 6, 0)
    assert "waiting period of 6 months" in t.timeline[0].note
    status = await demo.transfers.QueryTransferStatus(
        S.QueryTransferStatusRequest(transfer_id=t.transfer_id, id_number=person_id()), metadata=as_("portal:gov")
    )
    assert status.transfer.continuity == t.continuity
    # the source agency is told the outcome with the delivered transfer
    await wait_for_state(demo.transfers, t.transfer_id, S.TRANSFER_STATE_COMPLETED)
    source = demo.agency("110000", AgencyType.HEALTHCARE_SECURITY)
    letter = next(m for m in source.received if m.transfer_notice.type == agency_pb2.NOTICE_TYPE_CONTACT_LETTER)
    assert letter.transfer_notice.transfer.continuity.waiting_months == 6


async def test_unemployment_moves_its_months(demo: Demo) -> None:
    """Art. 14: the contribution months accumulate at the new region; the months of benefit left move too."""
    request = S.CreateTransferRequest(
        request_id="u-1",
        kind=S.TRANSFER_KIND_UNEMPLOYMENT,
        person=common_pb2.Person(id_number=person_id(), name="王五"),
        source_region="110000",
        target_region="310000",
        circumstances=S.Circumstances(drawing_benefits=True),
    )
    t = (await demo.transfers.CreateTransfer(request, metadata=SH_HRSS)).transfer
    done = await wait_for_state(demo.transfers, t.transfer_id, S.TRANSFER_STATE_COMPLETED)
    years, _ = contribution_record(person_id())
    assert done.info.contribution_months == sum(y.last_month - y.first_month + 1 for y in years)
    assert done.info.remaining_benefit_months == 6


async def test_paying_region_is_for_hrss_agencies_and_operators(demo: Demo) -> None:
    request = S.DeterminePayingRegionRequest(
        person=common_pb2.Person(id_number=history_person(0)), hukou_region="310000"
    )
    reason, _, _ = await expect_error(
        demo.transfers.DeterminePayingRegion(request, metadata=as_("hospital:440300:H44030000001")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert reason == "NOT_HRSS_AGENCY"
    assert (await demo.transfers.DeterminePayingRegion(request, metadata=OPERATOR)).paying_region == "310000"
