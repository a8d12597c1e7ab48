"""Unemployment insurance moving with the person (Art. 14; 失业保险条例 Art. 17).

The information table carries the contribution months, which accumulate at the new region. While the person
draws benefits, the remaining benefit moves with the months of benefit left; those cannot exceed the longest
benefit period the contribution time gives (失业保险条例 Art. 17: 1 to 5 years, at most 12 months; 5 to 10 years,
at most 18; 10 years or more, at most 24).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UnemploymentRules"]


@dataclass(frozen=True)
class UnemploymentRules:
    benefit_months_by_years: tuple[tuple[int, int], ...] = ((1, 12), (5, 18), (10, 24))
    """(from contribution years, the longest benefit period in months), ascending."""

    def longest_benefit_months(self, contribution_months: int) -> int:
        """The most months of benefit ``contribution_months`` of contributions give (0 under a year)."""
        longest = 0
        for from_years, months in self.benefit_months_by_years:
            if contribution_months >= from_years * 12:
                longest = months
        return longest
