"""`sigw agency-check`, the conformance kit for the regions' agency systems (``adapters.conformance``): run against
the real simulated agency (which passes every case) and a broken one, each on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.conformance import Result, Target, cases_for, check
from adapters.simulated_agency import SimulatedAgencies
from gateway.cli import main as sigw_main
from gateway.domain.participants import AgencyKey, AgencyType
from gateway.security import pki
from gateway.security.tls import TlsFolder
from tests.broken_agency import BrokenAgency, serve

HRSS, HEALTHCARE = AgencyType.HRSS, AgencyType.HEALTHCARE_SECURITY
TYPES = pytest.mark.parametrize("agency_type", list(AgencyType), ids=lambda t: t.slug)

# The deliveries a conforming agency refuses (INVALID_ARGUMENT or FAILED_PRECONDITION), which BrokenAgency
# answers with INTERNAL instead.
_MALFORMED_DELIVERIES = {
    "batch-partial-refusal",
    "malformed-no-message-id",
    "malformed-no-recipient",
    "malformed-no-body",
    "malformed-unspecified-notice-type",
    "malformed-unknown-notice-type",
    "malformed-no-transfer-id",
    "wrong-recipient-region",
    "wrong-recipient-agency-type",
    "wrong-region-transfer",
}

# BrokenAgency's two defects: it forgets the message ids it took, and answers INTERNAL to malformed deliveries.
BROKEN_DEFECTS = {
    "dedup-deliver",
    "dedup-batch-after-deliver",
    "dedup-within-batch",
    "out-of-order-info-before-request",  # its last step is a repeat, which must be answered duplicate=true
    *_MALFORMED_DELIVERIES,
}


def sigw_cli(*args: str) -> int:
    return sigw_main(list(args))


async def run_cli(*args: str) -> int:
    """The CLI in-process, in a thread of its own (it runs its own event loop; the agencies serve on this one)."""
    return await asyncio.to_thread(sigw_cli, "agency-check", *args)


def failed(results: list[Result]) -> dict[str, str]:
    return {r.case.name: r.detail for r in results if not r.passed}


@pytest.fixture
async def sims() -> AsyncIterator[SimulatedAgencies]:
    """The simulated agencies of 310000, passive (act=False: they call no gateway back)."""
    agencies = SimulatedAgencies("127.0.0.1:1", act=False)
    await agencies.start((AgencyKey("310000", t), "127.0.0.1:0") for t in AgencyType)
    yield agencies
    await agencies.stop()


@TYPES
async def test_the_simulated_agency_passes_every_case(sims: SimulatedAgencies, agency_type: AgencyType) -> None:
    key = AgencyKey("310000", agency_type)
    results = await check(Target(sims.endpoints[key], key))
    assert [r.case.name for r in results] == [c.name for c in cases_for(agency_type)]
    assert not failed(results), failed(results)
    agency = sims.agencies[key]
    assert agency.stats.duplicates > 0 and agency.stats.batches > 0
    ids = [m.message_id for m in agency.received]
    assert len(ids) == len(set(ids))  # each message id applied once


@TYPES
async def test_against_the_simulated_agency_the_command_exits_0(
    sims: SimulatedAgencies, agency_type: AgencyType, capsys: pytest.CaptureFixture[str]
) -> None:
    key = AgencyKey("310000", agency_type)
    code = await run_cli(sims.endpoints[key], "--agency", f"agency:{key}", "--insecure", "--json")
    report = json.loads(capsys.readouterr().out)
    assert code == 0, [c for c in report["cases"] if not c["passed"]]
    assert report["passed"] is True and report["agency"] == f"agency:{key}"
    assert [c["name"] for c in report["cases"]] == [c.name for c in cases_for(agency_type)]
    assert all(c["passed"] and c["sends"] and c["expects"] for c in report["cases"])


@TYPES
async def test_a_broken_agency_fails_exactly_its_defects_and_the_command_exits_1(
    agency_type: AgencyType, capsys: pytest.CaptureFixture[str]
) -> None:
    key = AgencyKey("440300", agency_type)
    agency = BrokenAgency(key)
    server, address = await serve(agency)
    try:
        results = await check(Target(address, key))
        code = await run_cli(address, "--agency", f"agency:{key}", "--insecure")
    finally:
        await server.stop(None)
    found = failed(results)
    assert set(found) == BROKEN_DEFECTS, found
    assert "expected duplicate=true" in found["dedup-deliver"]
    assert "INTERNAL" in found["malformed-no-transfer-id"] and "unhandled" in found["malformed-no-transfer-id"]
    ids = [m.message_id for m in agency.received]
    assert len(ids) > len(set(ids))  # what the kit caught: repeats applied again
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  dedup-deliver" in out and "PASS  deliver-transfer-requested" in out
    assert f"{len(BROKEN_DEFECTS)} of {len(results)} cases failed" in out


async def test_over_mutual_tls_the_kit_presents_the_gateways_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The simulated agency with TLS answers only the gateway's certificate (GatewayOnly): the kit's calls get
    through with the PKI folder's gateway certificate, and the gateway's check of the agency's name passes."""
    participant = "agency:310000:hrss"
    pki.init_pki(tmp_path / "pki", [participant])
    agencies = SimulatedAgencies("127.0.0.1:1", tls=TlsFolder(tmp_path / "pki"), act=False)
    key = AgencyKey("310000", HRSS)
    await agencies.start([(key, "127.0.0.1:0")])
    picked = [
        "deliver-transfer-info",
        "dedup-within-batch",
        "out-of-order-closed-before-letter",
        "contribution-periods",
    ]
    try:
        args = [agencies.endpoints[key], "--agency", participant, "--tls-dir", str(tmp_path / "pki"), "--json"]
        code = await run_cli(*args, *(a for name in picked for a in ("--case", name)))
    finally:
        await agencies.stop()
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert [c["name"] for c in report["cases"]] == picked
    assert agencies.agencies[key].stats.applied > 0


async def test_the_agency_is_the_one_the_regions_file_lists_at_the_address(
    sims: SimulatedAgencies, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = AgencyKey("310000", HEALTHCARE)
    address = sims.endpoints[key]
    regions = tmp_path / "regions.toml"
    regions.write_text(f'[[regions]]\ncode = "310000"\nname = "上海市"\nhealthcare = "{address}"\n', encoding="utf-8")
    code = await run_cli(address, "--regions-file", str(regions), "--insecure", "--case", "compute-commit-dedup")
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"agency:310000:healthcare at {address}") and "PASS  compute-commit-dedup" in out
    unknown = await run_cli("127.0.0.1:9", "--regions-file", str(regions), "--insecure")
    assert unknown == 2
    assert "name it with --agency" in capsys.readouterr().err


def test_the_cases_are_listed_without_an_agency(capsys: pytest.CaptureFixture[str]) -> None:
    assert sigw_cli("agency-check", "--list", "--agency", "agency:110000:healthcare", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in listed] == [c.name for c in cases_for(HEALTHCARE)]
    assert sigw_cli("agency-check", "127.0.0.1:9", "--agency", "agency:110000:hrss", "--insecure", "--case", "x") == 2
