"""Filing (备案) for direct non-local settlement (医保发〔2022〕22号).

Long-term filings (a retiree settled elsewhere, a long-term resident, a posted worker) are valid until
cancelled; temporary ones (a referral, emergency care, another temporary trip) name their end. A filing covers
its city, or every city of its province (a code ending ``0000``), on the days it is valid; it applies to a stay
when it covers the discharge day, so a filing made before discharge settlement applies. Emergency care counts
as filed, with or without one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from gateway.domain.errors import FieldViolation, invalid
from gateway.domain.settlement.records import FilingRecord, FilingState, FilingType
from gateway.domain.settlement.split import FilingStatus

__all__ = ["covers", "filing_errors", "filing_status", "require_known_places"]


def filing_errors(
    filing_type: FilingType,
    insured_region: str,
    treatment_region: str,
    valid_from: date | None,
    valid_until: date | None,
    *,
    until_given: bool,
) -> list[FieldViolation]:
    """What is wrong with a filing request's validity and places; empty when nothing is. ``until_given``: the
    request names an end date (``valid_until`` is None when it is no real date)."""
    found = []
    if not filing_type.long_term and not until_given:
        found.append(FieldViolation("valid_until", "required"))
    if filing_type.long_term and valid_until:
        found.append(FieldViolation("valid_until", "long-term filings are valid until cancelled: leave it empty"))
    if valid_from and valid_until and valid_until < valid_from:
        found.append(FieldViolation("valid_until", "before valid_from"))
    if insured_region and insured_region == treatment_region:
        found.append(FieldViolation("treatment_region", "must differ from the insured region"))
    return found


def require_known_places(insured_region: str, treatment_region: str, known_regions: frozenset[str]) -> None:
    """Both places must be regions of the registry, or a province one of them belongs to; ``UNKNOWN_REGION``."""
    unknown = [
        FieldViolation(name, f"unknown region {code}")
        for name, code in (("insured_region", insured_region), ("treatment_region", treatment_region))
        if code not in known_regions and not any(c[:2] == code[:2] for c in known_regions)
    ]
    if unknown:
        raise invalid(unknown, reason="UNKNOWN_REGION")


def covers(filing: FilingRecord, treatment_region: str, day: date) -> bool:
    """An active filing covers a place of treatment (its city, or all cities of its province) on a day."""
    place = filing.treatment_region == treatment_region or (
        filing.treatment_region.endswith("0000") and filing.treatment_region[:2] == treatment_region[:2]
    )
    in_time = filing.valid_from <= day and (filing.valid_until is None or day <= filing.valid_until)
    return filing.state is FilingState.ACTIVE and place and in_time


def filing_status(filings: Iterable[FilingRecord], treatment_region: str, day: date, emergency: bool) -> FilingStatus:
    """Emergency counts as filed; else the best filing covering the place and day; else unfiled."""
    if emergency:
        return FilingStatus.EMERGENCY
    covering = {f.filing_type for f in filings if covers(f, treatment_region, day)}
    if FilingType.EMERGENCY in covering:
        return FilingStatus.EMERGENCY
    if any(t.long_term for t in covering):
        return FilingStatus.FILED_LONG_TERM
    if FilingType.REFERRAL in covering:
        return FilingStatus.FILED_REFERRAL
    if covering:
        return FilingStatus.FILED_TEMPORARY
    return FilingStatus.UNFILED
