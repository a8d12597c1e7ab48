"""The region registry: each coordination region (统筹地区), its agencies' endpoints and its own figures.

A TOML text listing each region::

    [[regions]]
    code = "110000"            # GB/T 2260 division code of the coordination region
    name = "北京市"
    hrss = "127.0.0.1:50061"   # the HRSS agency (pension, unemployment, work injury)
    healthcare = "127.0.0.1:50062"  # the healthcare-security agency (medical, maternity)
    medical_waiting_months = 6      # optional: the waiting period after a medical gap over 3 months (43号)
    continuity_enrolment_months = 24  # optional: enrolment employee <-> resident continuity needs here
    hrss_phone = "12333"            # optional: how applicants reach the agencies (default: the national
    healthcare_phone = "12393"      #   hotlines 12333 and 12393)

and the designated hospitals (定点医疗机构) that settle non-local care, each with its region and level::

    [[hospitals]]
    code = "H44030000001"      # fixmedins_code, 12 characters
    region = "440300"          # its place of treatment (a region above)
    name = "深圳市第一人民医院（演示）"
    level = 3                  # hosp_lv: 1, 2 or 3

and the portals that tell applicants the result of their transfers (Art. 16), each serving ``NotifyService``::

    [[portals]]
    code = "gov"               # the portal's participant code (portal:gov)
    name = "社会保险服务平台（演示）"
    notify = "127.0.0.1:50070" # where it takes result notices; the first portal listed is the default

Pure: the caller reads the file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field

from gateway.domain.errors import FieldViolation, invalid
from gateway.domain.participants import AgencyKey, AgencyType, Destination, PortalKey, is_participant_code
from gateway.domain.transfer.medical import MedicalContinuityRules

__all__ = ["NATIONAL_HOTLINES", "Hospital", "Portal", "Region", "Registry"]

_REGION = re.compile(r"[0-9]{6}")
_ENDPOINT = re.compile(r"[\w.\-\[\]:]+:[0-9]{1,5}")
_HOSPITAL = re.compile(r"[A-Z0-9]{12}")
_PHONE = re.compile(r"[0-9+\-() ]{3,32}")

NATIONAL_HOTLINES = {AgencyType.HRSS: "12333", AgencyType.HEALTHCARE_SECURITY: "12393"}
"""人社服务热线 12333 and 医保服务热线 12393: the default telephone numbers applicants are given."""


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    endpoints: dict[AgencyType, str]
    medical_waiting_months: int | None = None
    """The waiting period this region applies after a medical gap of more than 3 months (default 6)."""
    continuity_enrolment_months: int | None = None
    """The continuous enrolment employee <-> resident medical continuity needs here (default 24)."""
    phones: dict[AgencyType, str] = field(default_factory=dict)
    """How applicants reach the agencies, where not the national hotline."""


@dataclass(frozen=True)
class Portal:
    code: str
    name: str
    notify: str
    """Its ``NotifyService`` endpoint."""

    @property
    def key(self) -> PortalKey:
        return PortalKey(self.code)


@dataclass(frozen=True)
class Hospital:
    code: str  # fixmedins_code
    region: str  # mdtrtarea_admvs
    name: str  # fixmedins_name
    level: int  # hosp_lv


@dataclass(frozen=True)
class Registry:
    """Regions by code, each agency's gRPC endpoint, and the hospitals by code."""

    regions: dict[str, Region]
    hospitals: dict[str, Hospital] = field(default_factory=dict)
    portals: dict[str, Portal] = field(default_factory=dict)
    """In file order: the first takes the notices of applications that name no portal."""

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(self.regions)

    def endpoint(self, destination: Destination) -> str | None:
        if isinstance(destination, PortalKey):
            portal = self.portals.get(destination.code)
            return portal.notify if portal else None
        region = self.regions.get(destination.region)
        return region.endpoints.get(destination.agency_type) if region else None

    def agencies(self) -> list[AgencyKey]:
        return [AgencyKey(r.code, t) for r in self.regions.values() for t in r.endpoints]

    def destinations(self) -> list[Destination]:
        """Everyone the dispatcher delivers to: the agencies, then the portals."""
        return [*self.agencies(), *(p.key for p in self.portals.values())]

    def notice_portal(self, code: str = "") -> PortalKey | None:
        """The portal that tells an applicant: the one the application names, else the first listed."""
        if code:
            return PortalKey(code) if code in self.portals else None
        return next((p.key for p in self.portals.values()), None)

    def region_name(self, code: str) -> str:
        region = self.regions.get(code)
        return region.name if region else code

    def agency_phone(self, agency: AgencyKey) -> str:
        region = self.regions.get(agency.region)
        if region is None:
            return ""
        return region.phones.get(agency.agency_type, NATIONAL_HOTLINES[agency.agency_type])

    def medical_rules(self) -> MedicalContinuityRules:
        """The regions' own continuity figures over the 43号 defaults."""
        return MedicalContinuityRules(
            waiting_months={
                r.code: r.medical_waiting_months for r in self.regions.values() if r.medical_waiting_months is not None
            },
            enrolment_months={
                r.code: r.continuity_enrolment_months
                for r in self.regions.values()
                if r.continuity_enrolment_months is not None
            },
        )

    @classmethod
    def parse(cls, text: str) -> Registry:
        data = tomllib.loads(text)
        regions: dict[str, Region] = {}
        problems: list[FieldViolation] = []
        for i, entry in enumerate(data.get("regions", [])):
            code = str(entry.get("code", ""))
            if not _REGION.fullmatch(code) or code in regions:
                problems.append(FieldViolation(f"regions[{i}].code", "must be a new 6-digit region code"))
                continue
            endpoints = {}
            for agency_type in AgencyType:
                endpoint = entry.get(agency_type.slug)
                if endpoint is None:
                    continue
                if not _ENDPOINT.fullmatch(str(endpoint)):
                    problems.append(FieldViolation(f"regions[{i}].{agency_type.slug}", "must be host:port"))
                endpoints[agency_type] = str(endpoint)
            months: dict[str, int | None] = {}
            for key, most in (("medical_waiting_months", 6), ("continuity_enrolment_months", 1200)):
                value = entry.get(key)
                if value is not None and (
                    not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= most
                ):
                    problems.append(
                        FieldViolation(f"regions[{i}].{key}", f"must be a whole number of months, 0-{most}")
                    )
                    value = None
                months[key] = value
            phones = {}
            for agency_type in AgencyType:
                phone = entry.get(f"{agency_type.slug}_phone")
                if phone is None:
                    continue
                if not _PHONE.fullmatch(str(phone)):
                    problems.append(
                        FieldViolation(f"regions[{i}].{agency_type.slug}_phone", "must be a telephone number")
                    )
                phones[agency_type] = str(phone)
            regions[code] = Region(code, str(entry.get("name", code)), endpoints, phones=phones, **months)
        hospitals: dict[str, Hospital] = {}
        for i, entry in enumerate(data.get("hospitals", [])):
            code, region, level = str(entry.get("code", "")), str(entry.get("region", "")), entry.get("level")
            if not _HOSPITAL.fullmatch(code) or code in hospitals:
                problems.append(FieldViolation(f"hospitals[{i}].code", "must be a new 12-character code"))
            elif region not in regions:
                problems.append(FieldViolation(f"hospitals[{i}].region", "must be a region listed above"))
            elif level not in (1, 2, 3) or isinstance(level, bool):
                problems.append(FieldViolation(f"hospitals[{i}].level", "must be 1, 2 or 3"))
            else:
                hospitals[code] = Hospital(code, region, str(entry.get("name", code)), int(level))
        portals: dict[str, Portal] = {}
        for i, entry in enumerate(data.get("portals", [])):
            code, notify = str(entry.get("code", "")), str(entry.get("notify", ""))
            if not is_participant_code(code) or code in portals:
                problems.append(FieldViolation(f"portals[{i}].code", "must be a new portal code"))
            elif not _ENDPOINT.fullmatch(notify):
                problems.append(FieldViolation(f"portals[{i}].notify", "must be host:port"))
            else:
                portals[code] = Portal(code, str(entry.get("name", code)), notify)
        if problems:
            raise invalid(problems, reason="BAD_REGISTRY")
        return cls(regions, hospitals, portals)
