"""Who may do what to a transfer: the one authorisation matrix.

=================  ==========================================================================
action             allowed callers
=================  ==========================================================================
CREATE             the target region's agency for the kind's line (转入地受理)
CONTACT_LETTER     the target agency
TRANSFER_INFO      the source agency
COMPLETE           the target agency
REJECT             either party agency, while the transfer is open
CANCEL             the target agency
READ               either party agency, or an operator
LIST (a region)    that region's agencies (their own line only), or an operator
=================  ==========================================================================

A caller that may not even read a transfer is told NOT_FOUND, exactly as for an id that does not exist, so
transfer ids cannot be probed. A caller that may read it but not take this action (a party that does not hold
the step, an operator) is told PERMISSION_DENIED.
"""

from __future__ import annotations

import enum

from gateway.domain.model import AgencyKey, AgencyType, Kind, Transfer
from gateway.domain.participants import Participant, Role
from gateway.domain.rules import agency_type_of
from gateway.errors import NotFound, PermissionDenied


class Action(enum.Enum):
    CREATE = "create"
    CONTACT_LETTER = "send the contact letter"
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
        if actor.role is Role.OPERATOR or actor.agency in parties:
            return
        raise not_found(transfer.transfer_id)
    if actor.role is not Role.OPERATOR and actor.agency not in parties:
        raise not_found(transfer.transfer_id)
    allowed = {
        Action.CONTACT_LETTER: {target_agency(transfer)},
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
