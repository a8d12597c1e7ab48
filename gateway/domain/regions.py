"""The region registry: each coordination region (统筹地区), its agencies' endpoints and its own figures.

A TOML text listing each region::

    [[regions]]
    code = "110000"            # GB/T 2260 division code of the coordination region
    name = "北京市"
    hrss = "127.0.0.1:50061"   # the HRSS agency (pension, unemployment, work injury)
    healthcare = "127.0.0.1:50062"  # the healthcare-security agency (medical, maternity)
    medical_waiting_months = 6      # optional: the waiting period after a medical gap over 3 months (43号)
    continuity_enrolment_months = 24  # optional: enrolment employee <-> resident continuity needs here

Pure: the caller reads the file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

from gateway.domain.errors import FieldViolation, invalid
from gateway.domain.participants import AgencyKey, AgencyType
from gateway.domain.transfer.medical import MedicalContinuityRules

__all__ = ["Region", "Registry"]

_REGION = re.compile(r"[0-9]{6}")
_ENDPOINT = re.compile(r"[\w.\-\[\]:]+:[0-9]{1,5}")


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
class Registry:
    """Regions by code, and each agency's gRPC endpoint."""

    regions: dict[str, Region]

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
        if problems:
            raise invalid(problems, reason="BAD_REGISTRY")
        return cls(regions)
