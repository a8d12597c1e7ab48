"""Where a person's employee pension relationship stays, and which region pays the pension.

**Temporary contribution account** (临时基本养老保险缴费账户, 国办发〔2009〕66号 Art. 5): a man aged 50 or more, or a
woman aged 40 or more, who moves across provinces to a province that is not their hukou province, keeps the
pension relationship at the old region; the new region opens a temporary account that records every contribution
made there. Age and sex come from the ID number (birth date, sequence digit) on the application date; the
hukou region (户籍所在地) is declared in the application. When the person moves on across provinces or reaches
pension age, the temporary account's contributions with interest are collected (归集) to the relationship's region
or to the region that pays.

**Where the pension is paid** (待遇领取地, 66号 Art. 6, restated in 人社部规〔2016〕5号):

1. the hukou region, if the relationship is there;
2. otherwise the region where the relationship is, if the person has 10 or more contribution years there;
3. otherwise the last earlier region with 10 or more contribution years, to which the relationship moves back;
4. otherwise the hukou region, to which the relationship and the funds of every region are collected.

Contribution years per region count the months the relationship was there; months in a temporary account do
not make a region the place of insurance (参保地), so they do not count towards its ten years (our reading,
documented). Ten years is ``PayingRegionRules.min_years``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from gateway.domain import idnumber
from gateway.domain.errors import FailedPrecondition
from gateway.domain.transfer.model import CollectionSource

__all__ = [
    "ContributionPeriod",
    "PayingRegion",
    "PayingRegionRules",
    "PayingRule",
    "Sender",
    "TemporaryAccountRules",
    "determine_paying_region",
    "province",
    "temporary_account_age",
    "temporary_account_reason",
]


def province(region: str) -> str:
    """The province part (first two digits) of a GB/T 2260 code."""
    return region[:2]


@dataclass(frozen=True)
class TemporaryAccountRules:
    """66号 Art. 5 ages."""

    men_from_age: int = 50
    women_from_age: int = 40


def temporary_account_age(id_number: str, applied_on: date, rules: TemporaryAccountRules | None = None) -> str | None:
    """ "a man aged 52 (from 50)" when the person is old enough for 66号 Art. 5 on ``applied_on``, else None."""
    rules = rules or TemporaryAccountRules()
    male = idnumber.is_male(id_number)
    age = idnumber.age_on(id_number, applied_on)
    threshold = rules.men_from_age if male else rules.women_from_age
    if age < threshold:
        return None
    return f"{'a man' if male else 'a woman'} aged {age} (from {threshold})"


def temporary_account_reason(
    id_number: str,
    applied_on: date,
    source_region: str,
    target_region: str,
    hukou_region: str,
    rules: TemporaryAccountRules | None = None,
) -> str | None:
    """Why the new region opens a temporary account instead of taking the relationship, or None when it takes
    it. Needs a valid ID number and a 6-digit hukou region."""
    if province(source_region) == province(target_region) or province(target_region) == province(hukou_region):
        return None
    who = temporary_account_age(id_number, applied_on, rules)
    if who is None:
        return None
    return (
        f"{who} moving across provinces to a province that is not the hukou province ({hukou_region}): the "
        f"relationship stays at {source_region}; {target_region} opens a temporary contribution account "
        "(66号 Art. 5)"
    )


@dataclass(frozen=True)
class ContributionPeriod:
    """What one region's agency reports of a person's contributions there."""

    region: str
    first_month: date
    """The first month paid (day 1)."""
    last_month: date
    months: int
    """Months paid in the period (a period may have gaps, so this can be less than its span)."""
    holds_relationship: bool = False
    """The pension relationship (基本养老保险关系) is at this region now."""
    temporary_account: bool = False
    """The months were recorded in a temporary account (66号 Art. 5), whose funds are still there."""


class PayingRule(enum.IntEnum):
    """Which of 66号 Art. 6's four cases decided; numbered as ``sigw.v1.PayingRule``."""

    HUKOU_HOLDS_RELATIONSHIP = 1
    TEN_YEARS_WHERE_RELATIONSHIP = 2
    LAST_REGION_WITH_TEN_YEARS = 3
    HUKOU_COLLECTS_ALL = 4


@dataclass(frozen=True)
class Sender:
    """A region that must send funds to the paying region, and what it sends."""

    region: str
    source: CollectionSource


@dataclass(frozen=True)
class PayingRegion:
    region: str
    rule: PayingRule
    reason: str
    senders: tuple[Sender, ...]
    """One per region that must send, oldest period first."""


@dataclass(frozen=True)
class PayingRegionRules:
    min_years: int = 10


def _relationship_months(periods: Sequence[ContributionPeriod], region: str) -> int:
    return sum(p.months for p in periods if p.region == region and not p.temporary_account)


def determine_paying_region(
    hukou_region: str, periods: Sequence[ContributionPeriod], rules: PayingRegionRules | None = None
) -> PayingRegion:
    """66号 Art. 6 applied to the reported periods. Raises ``FailedPrecondition`` when no region, or more than one,
    says it holds the relationship."""
    holders = sorted({p.region for p in periods if p.holds_relationship})
    if len(holders) != 1:
        raise FailedPrecondition(
            reason="RELATIONSHIP_NOT_FOUND" if not holders else "RELATIONSHIP_AMBIGUOUS",
            message="no region reports holding the pension relationship"
            if not holders
            else f"several regions report holding the pension relationship: {', '.join(holders)}",
        )
    current = holders[0]
    rules = rules or PayingRegionRules()
    needed = rules.min_years * 12
    here = _relationship_months(periods, current)
    if current == hukou_region:
        paying, rule = current, PayingRule.HUKOU_HOLDS_RELATIONSHIP
        reason = f"the relationship is in the hukou region {current}: it pays (66号 Art. 6 (1))"
    elif here >= needed:
        paying, rule = current, PayingRule.TEN_YEARS_WHERE_RELATIONSHIP
        reason = (
            f"the relationship is at {current} with {here} contribution months ({rules.min_years} years need "
            f"{needed}): {current} pays (66号 Art. 6 (2))"
        )
    else:
        latest_first = sorted(
            {p.region for p in periods if p.region != current},
            key=lambda r: max(p.last_month for p in periods if p.region == r),
            reverse=True,
        )
        earlier = next((r for r in latest_first if _relationship_months(periods, r) >= needed), None)
        if earlier is not None:
            paying, rule = earlier, PayingRule.LAST_REGION_WITH_TEN_YEARS
            reason = (
                f"{current} has {here} contribution months, under {rules.min_years} years; the last earlier region "
                f"with {rules.min_years} years is {earlier} ({_relationship_months(periods, earlier)} months): the "
                f"relationship moves back there and {earlier} pays (66号 Art. 6 (3))"
            )
        else:
            paying, rule = hukou_region, PayingRule.HUKOU_COLLECTS_ALL
            reason = (
                f"no region has {rules.min_years} contribution years: the relationship and the funds of every "
                f"region are collected to the hukou region {hukou_region}, which pays (66号 Art. 6 (4))"
            )
    senders: list[Sender] = []
    for period in sorted(periods, key=lambda p: p.first_month):
        if period.region == paying or any(s.region == period.region for s in senders):
            continue
        if period.holds_relationship:
            senders.append(Sender(period.region, CollectionSource.RELATIONSHIP))
        elif period.temporary_account:
            senders.append(Sender(period.region, CollectionSource.TEMPORARY_ACCOUNT))
    return PayingRegion(paying, rule, reason, tuple(senders))
