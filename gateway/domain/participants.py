"""Who is calling: every RPC knows its caller as one ``Participant``.

A participant is written as a short text, used in certificates, timelines and (in development mode)
request metadata:

================================  =============================================
``agency:110000:hrss``            Beijing's HRSS agency (人社经办机构)
``agency:110000:healthcare``      Beijing's healthcare-security agency (医保经办机构)
``military:JUN001``               a military agency (军队后勤财务部门)
``hospital:440300:H44030000001``  a designated hospital and its region
``portal:gov``                    a portal that relays applicants' queries
``operator:alice``                an operator of the gateway
================================  =============================================
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

from gateway.domain.errors import Unauthenticated

__all__ = [
    "AgencyKey",
    "AgencyType",
    "Destination",
    "Participant",
    "PortalKey",
    "Role",
    "is_participant_code",
    "participant_of",
]

_REGION = re.compile(r"[0-9]{6}")
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,32}")


def is_participant_code(code: str) -> bool:
    """Whether ``code`` can name a portal, military agency or operator (``portal:<code>``)."""
    return _CODE.fullmatch(code) is not None


class AgencyType(enum.IntEnum):
    """The two agencies of a region; ``slug`` is how participants name them."""

    HRSS = 1
    HEALTHCARE_SECURITY = 2

    @property
    def slug(self) -> str:
        return "hrss" if self is AgencyType.HRSS else "healthcare"

    @classmethod
    def from_slug(cls, slug: str) -> AgencyType:
        for member in cls:
            if member.slug == slug:
                return member
        raise ValueError(f"unknown agency type {slug!r}")


@dataclass(frozen=True)
class AgencyKey:
    """One agency: region code plus agency type."""

    region: str
    agency_type: AgencyType

    def __str__(self) -> str:
        return f"{self.region}:{self.agency_type.slug}"


@dataclass(frozen=True)
class PortalKey:
    """A portal that takes applicants' result notices (``NotifyService``), by its participant code."""

    code: str

    def __str__(self) -> str:
        return f"portal:{self.code}"


Destination = AgencyKey | PortalKey
"""Whom the dispatcher delivers to: an agency (``RegionAgencyService``) or a portal (``NotifyService``)."""


def participant_of(destination: Destination) -> str:
    """The destination as a participant (its certificate's name): ``agency:310000:hrss``, ``portal:gov``."""
    return f"agency:{destination}" if isinstance(destination, AgencyKey) else str(destination)


class Role(enum.StrEnum):
    AGENCY = "agency"
    MILITARY = "military"
    HOSPITAL = "hospital"
    PORTAL = "portal"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Participant:
    role: Role
    region: str = ""
    agency_type: AgencyType | None = None
    code: str = ""

    def __str__(self) -> str:
        if self.role is Role.AGENCY and self.agency_type is not None:
            return f"agency:{self.region}:{self.agency_type.slug}"
        if self.role is Role.HOSPITAL:
            return f"hospital:{self.region}:{self.code}"
        return f"{self.role.value}:{self.code}"

    @property
    def agency(self) -> AgencyKey | None:
        """The agency this participant is, if it is one."""
        if self.role is Role.AGENCY and self.agency_type is not None:
            return AgencyKey(self.region, self.agency_type)
        return None

    @classmethod
    def agency_of(cls, key: AgencyKey) -> Participant:
        return cls(Role.AGENCY, region=key.region, agency_type=key.agency_type)

    @classmethod
    def parse(cls, text: str) -> Participant:
        """Parse the written form; ``Unauthenticated`` when it names no valid participant."""
        found = _parse(text)
        if found is None:
            raise Unauthenticated(reason="UNKNOWN_PARTICIPANT", message="the caller names no valid participant")
        return found


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Participant | None:
    """The participant a written form names, or None; remembered (every call of a caller names it again)."""
    parts = text.strip().split(":")
    try:
        role = Role(parts[0])
        if role is Role.AGENCY and len(parts) == 3 and _REGION.fullmatch(parts[1]):
            return Participant(role, region=parts[1], agency_type=AgencyType.from_slug(parts[2]))
        if role is Role.HOSPITAL and len(parts) == 3 and _REGION.fullmatch(parts[1]) and _CODE.fullmatch(parts[2]):
            return Participant(role, region=parts[1], code=parts[2])
        if role in (Role.MILITARY, Role.PORTAL, Role.OPERATOR) and len(parts) == 2 and _CODE.fullmatch(parts[1]):
            return Participant(role, code=parts[1])
    except ValueError:
        pass
    return None
