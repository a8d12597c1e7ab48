"""Non-local care policies of the demo regions' simulated healthcare-security agencies.

Illustrative figures in the range real cities use (deductible, ratio by hospital level, annual cap); they are
demo data, not any city's official policy. Each names its reduction of the ratio for a referral, for another
temporary trip and for unfiled care (医保发〔2022〕22号); Shenzhen refuses unfiled care, the others settle it at a
lower ratio.
"""

from __future__ import annotations

from gateway.domain.settlement.split import RegionPolicy, SchemeRule

__all__ = ["DEMO_ACCOUNT_BALANCE_FEN", "DEMO_POLICIES", "YUAN", "policy_for"]

YUAN = 100


def _rule(deductible_yuan: int, ratios: tuple[int, int, int], cap_yuan: int) -> SchemeRule:
    return SchemeRule(
        deductible_fen=deductible_yuan * YUAN,
        ratio_by_level=dict(zip((1, 2, 3), ratios, strict=True)),
        annual_cap_fen=cap_yuan * YUAN,
    )


DEMO_POLICIES: dict[str, RegionPolicy] = {
    "110000": RegionPolicy(
        region="110000",
        employee_inpatient=_rule(1_300, (90, 87, 85), 500_000),
        employee_outpatient=_rule(1_800, (90, 80, 70), 20_000),
        resident_inpatient=_rule(1_300, (80, 78, 75), 250_000),
        resident_outpatient=_rule(100, (55, 55, 50), 4_000),
        referral_drop_points=0,
        temporary_drop_points=5,
        unfiled_drop_points=10,
    ),
    "310000": RegionPolicy(
        region="310000",
        employee_inpatient=_rule(1_500, (92, 90, 85), 590_000),
        employee_outpatient=_rule(1_500, (80, 75, 70), 10_000),
        resident_inpatient=_rule(1_500, (80, 75, 60), 240_000),
        resident_outpatient=_rule(500, (70, 60, 50), 5_000),
        referral_drop_points=0,
        temporary_drop_points=10,
        unfiled_drop_points=10,
    ),
    "440300": RegionPolicy(
        region="440300",
        employee_inpatient=_rule(1_000, (90, 90, 90), 600_000),
        employee_outpatient=_rule(0, (70, 70, 70), 10_000),
        resident_inpatient=_rule(1_000, (85, 85, 80), 300_000),
        resident_outpatient=_rule(0, (50, 50, 50), 2_000),
        referral_drop_points=5,
        temporary_drop_points=10,
        refuse_unfiled=True,
    ),
    "510100": RegionPolicy(
        region="510100",
        employee_inpatient=_rule(800, (90, 87, 85), 400_000),
        employee_outpatient=_rule(1_000, (80, 70, 60), 8_000),
        resident_inpatient=_rule(800, (80, 70, 60), 200_000),
        resident_outpatient=_rule(200, (60, 55, 50), 3_000),
        referral_drop_points=5,
        temporary_drop_points=15,
        unfiled_drop_points=20,
    ),
}

# The individual account (个人账户) balance a simulated employee starts the year with.
DEMO_ACCOUNT_BALANCE_FEN = 3_000 * YUAN


def policy_for(region: str) -> RegionPolicy:
    """The demo policy of a region; regions without one use Beijing's figures."""
    return DEMO_POLICIES.get(region) or RegionPolicy(**{**DEMO_POLICIES["110000"].__dict__, "region": region})
