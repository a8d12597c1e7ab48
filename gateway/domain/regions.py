"""The region registry: each coordination region (统筹地区), its agencies' endpoints and its own figures.

A TOML text listing each region::

    [[regions]]
    code = "110000"            # GB/T 2260 division code of the coordination region
    name = "北京市"
    hrss = "127.0.0.1:50061"   # the HRSS agency (pension, unemployment, work injury)
    healthcare = "127.0.0.1:50062"  # the healthcare-security agency (medical, maternity)
    medical_waiting_months = 6      # optional: the waiting period after a medical gap over 3 months (43号)
    continuity_enrolment_months = 24  # optional: enrolment employee <-> resident continuity needs here

and the designated hospitals (定点医疗机构) that settle non-local care, each with its region and level::

    [[hospitals]]
    code = "H44030000001"      # fixmedins_code, 12 characters
    region = "440300"          # its place of treatment (a region above)
    name = "深圳市第一人民医院（演示）"
    level = 3                  # hosp_lv: 1, 2 or 3

Pure: the caller reads the file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field

from gateway.domain.errors import FieldViolation, invalid
from gateway.domain.participants import AgencyKey, AgencyType
from gateway.domain.transfer.medical import MedicalContinuityRules

__all__ = ["Hospital", "Region", "Registry"]

_REGION = re.compile(r"[0-9]{6}")
_ENDPOINT = re.compile(r"[\w.\-\[\]:]+:[0-9]{1,5}")
_HOSPITAL = re.compile(r"[A-Z0-9]{12}")


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    endpoints: dict[AgencyType, str]
    medical_waiting_months: int | None = None
    """The waiting period this region applies after a medical gap of more than 3 months (default 6)."""
    continuity_enrolment_months: int | None = None
    """The continuous enrolment employee <-> resident medical continuity needs here (default 24)."""


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

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(self.regions)

    def endpoint(self, agency: AgencyKey) -> str | None:
        region = self.regions.get(agency.region)
        return region.endpoints.get(agency.agency_type) if region else None

    def agencies(self) -> list[AgencyKey]:
        return [AgencyKey(r.code, t) for r in self.regions.values() for t in r.endpoints]

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
            regions[code] = Region(code, str(entry.get("name", code)), endpoints, **months)
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
        if problems:
            raise invalid(problems, reason="BAD_REGISTRY")
        return cls(regions, hospitals)
