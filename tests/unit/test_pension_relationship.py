"""Where the pension relationship stays and which region pays (国办发〔2009〕66号 Arts. 5-6, 人社部规〔2016〕5号)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from gateway.domain.idnumber import age_on, is_male, make_id_number
from gateway.domain.participants import AgencyKey, AgencyType, Participant
from gateway.domain.transfer.machine import Policy, open_temporary_account, open_transfer, send_contact_letter
from gateway.domain.transfer.model import (
    Addressee,
    Application,
    Circumstances,
    CollectionSource,
    Kind,
    NoticeType,
    State,
    StepName,
)
from gateway.domain.transfer.relationship import (
    ContributionPeriod,
    PayingRule,
    Sender,
    determine_paying_region,
    temporary_account_reason,
)

SHANGHAI_TZ = ZoneInfo("Asia/Shanghai")
BEIJING, TIANJIN, SHANGHAI, SHENZHEN, GUANGZHOU, CHENGDU = "110000", "120000", "310000", "440300", "440100", "510100"
POLICY = Policy(
    calendar=WorkingDayCalendar(), known_regions=frozenset({BEIJING, TIANJIN, SHANGHAI, SHENZHEN, GUANGZHOU, CHENGDU})
)
MAN = make_id_number("110105", date(1976, 3, 2), 123)  # 50 on 2026-03-02
WOMAN = make_id_number("110105", date(1986, 3, 2), 124)  # 40 on 2026-03-02


# --- age and sex from the ID number ---------------------------------------------------------------------------


def test_sex_digit_and_full_years() -> None:
    """GB 11643: digit 17 odd for men; digits 7-14 the birth date."""
    assert is_male(MAN) and not is_male(WOMAN)
    assert age_on(MAN, date(2026, 3, 1)) == 49
    assert age_on(MAN, date(2026, 3, 2)) == 50  # the birthday completes the year
    leap = make_id_number("110105", date(1976, 2, 29), 123)
    assert age_on(leap, date(2026, 2, 28)) == 49
    assert age_on(leap, date(2026, 3, 1)) == 50


# --- the temporary account: 66号 Art. 5 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("person", "day", "applies"),
    [
        (MAN, date(2026, 3, 1), False),  # the day before the 50th birthday
        (MAN, date(2026, 3, 2), True),  # the 50th birthday
        (WOMAN, date(2026, 3, 1), False),  # the day before the 40th birthday
        (WOMAN, date(2026, 3, 2), True),  # the 40th birthday
        (make_id_number("110105", date(1986, 3, 2), 123), date(2026, 3, 2), False),  # a man of 40
    ],
)
def test_age_boundaries(person: str, day: date, applies: bool) -> None:
    """Men aged 50 or more, women aged 40 or more, across provinces, to a province not their hukou's."""
    reason = temporary_account_reason(person, day, BEIJING, SHANGHAI, BEIJING)
    assert (reason is not None) is applies
    if reason:
        assert "relationship stays at 110000" in reason and "66号 Art. 5" in reason


def test_a_move_inside_one_province_never_opens_one() -> None:
    # Guangzhou -> Shenzhen: both 44
    assert temporary_account_reason(MAN, date(2026, 3, 2), GUANGZHOU, SHENZHEN, BEIJING) is None


def test_a_move_to_the_hukou_province_never_opens_one() -> None:
    # to Shenzhen with a hukou in Guangzhou: the same province (44)
    assert temporary_account_reason(MAN, date(2026, 3, 2), BEIJING, SHENZHEN, GUANGZHOU) is None
    assert temporary_account_reason(MAN, date(2026, 3, 2), BEIJING, SHANGHAI, SHANGHAI) is None
    # the ID number's own area (1101..) is not the hukou: only the declared hukou region counts
    assert temporary_account_reason(MAN, date(2026, 3, 2), TIANJIN, BEIJING, SHANGHAI) is not None


def application(person: str = MAN, hukou: str = BEIJING, target: str = SHANGHAI) -> Application:
    return Application(
        kind=Kind.EMPLOYEE_PENSION,
        id_number=person,
        name="李四",
        source_region=BEIJING,
        target_region=target,
        circumstances=Circumstances(hukou_region=hukou),
    )


NOW = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI_TZ)
SH_HRSS = Participant.agency_of(AgencyKey(SHANGHAI, AgencyType.HRSS))
BJ_HRSS = Participant.agency_of(AgencyKey(BEIJING, AgencyType.HRSS))


def test_the_transfer_ends_in_a_temporary_account() -> None:
    opened = open_transfer(application(), "T-1", SH_HRSS, NOW, POLICY)
    transfer = opened.transfer
    assert transfer.temporary_account and transfer.state is State.SUBMITTED
    assert [s.name for s in transfer.steps] == [StepName.TEMPORARY_ACCOUNT]
    assert transfer.steps[0].holder == AgencyKey(SHANGHAI, AgencyType.HRSS)
    assert "temporary contribution account" in opened.event.note
    assert opened.notices[0].type is NoticeType.TRANSFER_REQUESTED
    # the new agency opens the account instead of a contact letter
    with pytest.raises(FailedPrecondition) as caught:
        send_contact_letter(transfer, SH_HRSS, NOW, POLICY)
    assert caught.value.reason == "TEMPORARY_ACCOUNT_CASE"
    with pytest.raises(PermissionDenied):
        open_temporary_account(transfer, BJ_HRSS, NOW)
    done = open_temporary_account(transfer, SH_HRSS, NOW, account_number="LS-310000-1")
    assert done.transfer.state is State.TEMPORARY_ACCOUNT and done.transfer.state.ended
    assert done.event.note == (
        "temporary account LS-310000-1 opened at 310000; the relationship stays at 110000 (66号 Art. 5)"
    )
    # the old region, where the relationship stays, is told; nothing moves
    assert [(n.type, n.recipient) for n in done.notices] == [
        (NoticeType.TEMPORARY_ACCOUNT_OPENED, AgencyKey(BEIJING, AgencyType.HRSS)),
        (NoticeType.TEMPORARY_ACCOUNT_OPENED, Addressee.PERSON),  # and so is the person (Art. 16)
    ]
    assert done.transfer.info is None


def test_an_ordinary_transfer_has_no_temporary_account_to_open() -> None:
    young = make_id_number("110105", date(1990, 1, 1), 123)
    transfer = open_transfer(application(person=young), "T-1", SH_HRSS, NOW, POLICY).transfer
    assert not transfer.temporary_account and transfer.steps[0].name is StepName.CONTACT_LETTER
    with pytest.raises(FailedPrecondition) as caught:
        open_temporary_account(transfer, SH_HRSS, NOW)
    assert caught.value.reason == "NOT_TEMPORARY_ACCOUNT_CASE"


def test_the_hukou_region_is_required_when_it_decides() -> None:
    with pytest.raises(InvalidArgument) as caught:
        open_transfer(application(hukou=""), "T-1", SH_HRSS, NOW, POLICY)
    assert [v.field for v in caught.value.violations] == ["circumstances.hukou_region"]
    # not needed when the age or the provinces already decide
    young = make_id_number("110105", date(1990, 1, 1), 123)
    assert not open_transfer(
        application(person=young, hukou=""), "T-1", SH_HRSS, NOW, POLICY
    ).transfer.temporary_account
    inside = replace(application(hukou=""), source_region=GUANGZHOU, target_region=SHENZHEN)
    shenzhen = Participant.agency_of(AgencyKey(SHENZHEN, AgencyType.HRSS))
    assert not open_transfer(inside, "T-1", shenzhen, NOW, POLICY).transfer.temporary_account


# --- the paying region: 66号 Art. 6 ----------------------------------------------------------------------------


def period(region: str, first: int, last: int, *, holds: bool = False, temporary: bool = False) -> ContributionPeriod:
    return ContributionPeriod(region, date(first, 1, 1), date(last, 12, 1), (last - first + 1) * 12, holds, temporary)


def test_rule_1_the_hukou_region_holding_the_relationship_pays() -> None:
    periods = [period(SHANGHAI, 2000, 2005), period(BEIJING, 2006, 2010, holds=True)]
    answer = determine_paying_region(BEIJING, periods)
    assert (answer.region, answer.rule, answer.senders) == (BEIJING, PayingRule.HUKOU_HOLDS_RELATIONSHIP, ())
    assert "66号 Art. 6 (1)" in answer.reason


def test_rule_2_ten_years_where_the_relationship_is() -> None:
    # exactly 120 months at Shanghai, hukou Beijing
    periods = [period(BEIJING, 1998, 2005), period(SHANGHAI, 2006, 2015, holds=True)]
    answer = determine_paying_region(BEIJING, periods)
    assert (answer.region, answer.rule) == (SHANGHAI, PayingRule.TEN_YEARS_WHERE_RELATIONSHIP)
    # one month short: not rule 2
    short = [period(BEIJING, 1998, 2005), replace(period(SHANGHAI, 2006, 2015, holds=True), months=119)]
    assert determine_paying_region(BEIJING, short).rule is not PayingRule.TEN_YEARS_WHERE_RELATIONSHIP


def test_rule_3_the_last_earlier_region_with_ten_years() -> None:
    # Chengdu 12 years, Tianjin 11 years, Shenzhen 8 years (the relationship), Shanghai a temporary account
    periods = [
        period(CHENGDU, 1990, 2001),
        period(TIANJIN, 2002, 2012),
        period(SHENZHEN, 2013, 2020, holds=True),
        period(SHANGHAI, 2021, 2025, temporary=True),
    ]
    answer = determine_paying_region(BEIJING, periods)
    assert (answer.region, answer.rule) == (TIANJIN, PayingRule.LAST_REGION_WITH_TEN_YEARS)  # the later of the two
    assert answer.senders == (
        Sender(SHENZHEN, CollectionSource.RELATIONSHIP),
        Sender(SHANGHAI, CollectionSource.TEMPORARY_ACCOUNT),
    )


def test_temporary_account_years_do_not_make_a_place_of_insurance() -> None:
    # 12 years in a temporary account at Shanghai do not count as ten years there
    periods = [period(SHENZHEN, 2010, 2013, holds=True), period(SHANGHAI, 2014, 2025, temporary=True)]
    answer = determine_paying_region(CHENGDU, periods)
    assert (answer.region, answer.rule) == (CHENGDU, PayingRule.HUKOU_COLLECTS_ALL)


def test_rule_4_the_hukou_region_collects_everything() -> None:
    periods = [
        period(BEIJING, 2000, 2004),
        period(SHENZHEN, 2005, 2013, holds=True),
        period(SHANGHAI, 2014, 2020, temporary=True),
    ]
    answer = determine_paying_region(CHENGDU, periods)
    assert (answer.region, answer.rule) == (CHENGDU, PayingRule.HUKOU_COLLECTS_ALL)
    # Beijing's funds moved with the relationship long ago: only the holder and the temporary account send
    assert [s.region for s in answer.senders] == [SHENZHEN, SHANGHAI]


def test_rule_2_still_collects_temporary_accounts() -> None:
    periods = [period(SHANGHAI, 2000, 2015, holds=True), period(BEIJING, 2016, 2025, temporary=True)]
    answer = determine_paying_region(CHENGDU, periods)
    assert answer.region == SHANGHAI and answer.senders == (Sender(BEIJING, CollectionSource.TEMPORARY_ACCOUNT),)


@pytest.mark.parametrize(
    ("periods", "reason"),
    [
        ([period(BEIJING, 2000, 2010)], "RELATIONSHIP_NOT_FOUND"),
        ([period(BEIJING, 2000, 2010, holds=True), period(SHANGHAI, 2011, 2020, holds=True)], "RELATIONSHIP_AMBIGUOUS"),
    ],
)
def test_exactly_one_region_must_hold_the_relationship(periods: list[ContributionPeriod], reason: str) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        determine_paying_region(BEIJING, periods)
    assert caught.value.reason == reason
