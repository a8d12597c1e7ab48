"""Who may do what to a transfer: the one authorisation matrix.

=================  ==========================================================================
action             allowed callers
=================  ==========================================================================
CREATE             the target region's agency for the kind's line (转入地受理); a military agency for the
                   military kinds (Art. 17)
CONTACT_LETTER     the target agency
OPEN_TEMPORARY_    the target agency (66号 Art. 5: a temporary account instead of the contact letter)
ACCOUNT
TRANSFER_INFO      the source agency
COMPLETE           the target agency
REJECT             either party agency, while the transfer is open
CANCEL             the target agency
READ               either party agency, the participant that opened it, or an operator
LIST (a region)    that region's agencies (their own line only), or an operator
PAYING REGION      any region's HRSS agency, or an operator (66号 Art. 6: which region pays the pension);
                   starting the collections it implies: the paying region's HRSS agency only
STATUS QUERY       a portal (or an operator), relaying an applicant's transfer id and ID number (Art. 16)
=================  ==========================================================================

A caller that may not even read a transfer is told NOT_FOUND, exactly as for an id that does not exist, so
transfer ids cannot be probed. A caller that may read it but not take this action (a party that does not hold
the step, an operator) is told PERMISSION_DENIED.
"""

from __future__ import annotations

import enum

from gateway.domain.errors import NotFound, PermissionDenied
from gateway.domain.participants import AgencyKey, AgencyType, Participant, Role
from gateway.domain.settlement.records import FilingRecord
from gateway.domain.transfer.kinds import MILITARY_KINDS, agency_type_of
from gateway.domain.transfer.model import Kind, Transfer

__all__ = [
    "Action",
    "check",
    "filing_not_found",
    "may_create",
    "may_determine_paying_region",
    "may_handle_filing",
    "may_list",
    "may_query_status",
    "may_read_settlement",
    "may_read_statement",
    "not_found",
    "require_hospital",
    "require_insured_agency",
    "require_operator",
    "settlement_not_found",
    "source_agency",
    "target_agency",
]


class Action(enum.Enum):
    CREATE = "create"
    CONTACT_LETTER = "send the contact letter"
    OPEN_TEMPORARY_ACCOUNT = "open a temporary account"
    TRANSFER_INFO = "send the information table"
    COMPLETE = "complete"
    REJECT = "reject"
    CANCEL = "cancel"
    READ = "read"


def not_found(transfer_id: str) -> NotFound:
    return NotFound(
        reason="TRANSFER_NOT_FOUND", message=f"transfer {transfer_id} not found", metadata={"transfer_id": transfer_id}
    )


def source_agency(transfer: Transfer) -> AgencyKey:
    return AgencyKey(transfer.source_region, agency_type_of(transfer.kind))


def target_agency(transfer: Transfer) -> AgencyKey:
    return AgencyKey(transfer.target_region, agency_type_of(transfer.kind))


def may_create(actor: Participant, kind: Kind, target_region: str) -> None:
    if kind in MILITARY_KINDS:
        if actor.role is not Role.MILITARY:
            raise PermissionDenied(
                reason="NOT_MILITARY_AGENCY", message="military transfers are started by a military agency (Art. 17)"
            )
        return
    if actor.agency != AgencyKey(target_region, agency_type_of(kind)):
        raise PermissionDenied(
            reason="NOT_TARGET_AGENCY",
            message=f"only the {agency_type_of(kind).slug} agency of the target region {target_region} "
            "accepts this application",
        )


def check(actor: Participant, action: Action, transfer: Transfer) -> None:
    """Raise unless ``actor`` may take ``action`` on ``transfer``."""
    parties = {source_agency(transfer), target_agency(transfer)}
    if action is Action.READ:
        if actor.role is Role.OPERATOR or actor.agency in parties or str(actor) == transfer.originator:
            return
        raise not_found(transfer.transfer_id)
    if actor.role is not Role.OPERATOR and actor.agency not in parties:
        raise not_found(transfer.transfer_id)
    allowed = {
        Action.CONTACT_LETTER: {target_agency(transfer)},
        Action.OPEN_TEMPORARY_ACCOUNT: {target_agency(transfer)},
        Action.TRANSFER_INFO: {source_agency(transfer)},
        Action.COMPLETE: {target_agency(transfer)},
        Action.CANCEL: {target_agency(transfer)},
        Action.REJECT: parties,
    }[action]
    if actor.agency not in allowed:
        raise PermissionDenied(
            reason="NOT_STEP_HOLDER",
            message=f"{actor} may not {action.value} on transfer {transfer.transfer_id}",
            metadata={"transfer_id": transfer.transfer_id},
        )


def may_list(actor: Participant, region: str) -> AgencyType | None:
    """Check a region listing; return the agency type to restrict results to (None: all lines)."""
    if actor.role is Role.OPERATOR:
        return None
    if actor.role is Role.AGENCY and actor.region == region and actor.agency_type is not None:
        return actor.agency_type
    raise PermissionDenied(
        reason="NOT_REGION_AGENCY", message=f"only region {region}'s agencies or an operator may list its transfers"
    )


def may_query_status(actor: Participant) -> None:
    """Applicants' status queries come through a portal participant (or an operator)."""
    if actor.role not in (Role.PORTAL, Role.OPERATOR):
        raise PermissionDenied(
            reason="NOT_A_PORTAL", message="applicants' status queries come through a portal participant"
        )


def may_determine_paying_region(actor: Participant, paying_region: str | None = None) -> None:
    """Any HRSS agency (or an operator) may ask which region pays; with ``paying_region`` (starting the
    collections), only that region's HRSS agency may."""
    if paying_region is not None:
        if actor.agency != AgencyKey(paying_region, AgencyType.HRSS):
            raise PermissionDenied(
                reason="NOT_PAYING_REGION_AGENCY",
                message=f"only the paying region {paying_region}'s HRSS agency starts the collections to it",
            )
        return
    if actor.role is Role.OPERATOR or (actor.agency is not None and actor.agency.agency_type is AgencyType.HRSS):
        return
    raise PermissionDenied(
        reason="NOT_HRSS_AGENCY", message="the paying region is determined for HRSS agencies and operators"
    )


# ------------------------------------------------------------------------------------- settlement (Art. 23)
#
# ====================  ========================================================================
# action                allowed callers
# ====================  ========================================================================
# file, cancel, list    the insured region's healthcare-security agency (only its own persons)
# (pre-)settle          a hospital, as itself and as the place of treatment it belongs to
# cancel, reverse       the hospital that made the settlement
# read a settlement     that hospital, the insured region's healthcare-security agency, an operator
# reconcile             a hospital, for itself
# close a month, read   an operator (a statement: also any healthcare-security agency)
# ====================  ========================================================================


def require_insured_agency(actor: Participant, region: str) -> None:
    if actor.agency != AgencyKey(region, AgencyType.HEALTHCARE_SECURITY):
        raise PermissionDenied(
            reason="NOT_INSURED_REGION_AGENCY",
            message=f"only region {region}'s healthcare-security agency handles its filings",
        )


def require_hospital(actor: Participant, hospital_code: str, treatment_region: str | None = None) -> None:
    if actor.role is not Role.HOSPITAL or actor.code != hospital_code:
        raise PermissionDenied(reason="NOT_THIS_HOSPITAL", message=f"the caller is not hospital {hospital_code}")
    if treatment_region is not None and actor.region != treatment_region:
        raise PermissionDenied(
            reason="NOT_PLACE_OF_TREATMENT",
            message=f"hospital {hospital_code} belongs to region {actor.region}, not {treatment_region}",
        )


def filing_not_found(filing_id: str) -> NotFound:
    return NotFound(reason="FILING_NOT_FOUND", message=f"filing {filing_id} not found")


def may_handle_filing(actor: Participant, filing_id: str, filing: FilingRecord | None) -> None:
    """Only the insured region's healthcare-security agency sees (and cancels) a filing; others: NOT_FOUND."""
    if filing is None or actor.agency != AgencyKey(filing.insured_region, AgencyType.HEALTHCARE_SECURITY):
        raise filing_not_found(filing_id)


def settlement_not_found(settlement_id: str) -> NotFound:
    return NotFound(reason="SETTLEMENT_NOT_FOUND", message=f"settlement {settlement_id} not found")


def require_operator(actor: Participant) -> None:
    if actor.role is not Role.OPERATOR:
        raise PermissionDenied(reason="NOT_OPERATOR", message="this needs the operator role")


def may_read_statement(actor: Participant) -> None:
    """Clearing statements: operators and every region's healthcare-security agency (they settle on them)."""
    if actor.role is Role.OPERATOR or (actor.agency and actor.agency.agency_type is AgencyType.HEALTHCARE_SECURITY):
        return
    raise PermissionDenied(reason="NOT_OPERATOR", message="clearing statements are for operators and agencies")


def may_read_settlement(actor: Participant, hospital_code: str, insured_region: str, settlement_id: str) -> None:
    """The settling hospital, the insured region's healthcare agency or an operator; others: NOT_FOUND."""
    if actor.role is Role.OPERATOR or (actor.role is Role.HOSPITAL and actor.code == hospital_code):
        return
    if actor.agency == AgencyKey(insured_region, AgencyType.HEALTHCARE_SECURITY):
        return
    raise settlement_not_found(settlement_id)
