"""Settlement and clearing metrics, read off a real gateway's /metrics: every outcome is counted once by region
pair (a replayed answer is not counted again), whether the hospital settled over sigw.v1 or the national
interface, and the fund's money moved is counted in fen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import redis
import simplejson
from prometheus_client.parser import text_string_to_metric_families

from gateway._gen.sigw.v1 import settlement_pb2 as P
from gateway.domain.participants import AgencyType
from gateway.store import keys
from tests.conftest import Demo, FakeClock, as_, start_demo
from tests.helpers import OPERATOR, person_id
from tests.integration.test_national import EXAM, PATH, detail, settle_data
from tests.integration.test_settlement import HOSPITAL, ME, bill, msgid, stub
from tests.integration.test_transfer_rules import expect_error

ROOT = Path(__file__).resolve().parents[2]
CHENGDU = as_("hospital:510100:H51010000001")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def demo(redis_url: str, clock: FakeClock) -> AsyncIterator[Demo]:
    """The demo gateway, its national interface able to read the Shenzhen catalogue wherever pytest runs."""
    d = await start_demo(redis_url, clock, overrides={"catalogue_dir": ROOT / "config" / "catalogues"})
    yield d
    await d.channel.close()
    await d.gateway.stop(grace_s=0.5)
    await d.sims.stop()


async def scrape(demo: Demo) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{demo.gateway.http_port}/metrics") as reply,
    ):
        assert reply.status == 200
        return await reply.text()


PREFIXES = ("sigw_settlement", "sigw_clearing")


def samples(text: str, prefixes: tuple[str, ...] = PREFIXES) -> Samples:
    """The exposition's settlement and clearing samples (not the ``_created`` ones), by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(prefixes) and not s.name.endswith("_created")
    }


def settlements(insured: str, treatment: str, outcome: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = {"insured_region": insured, "treatment_region": treatment, "outcome": outcome}
    return "sigw_settlements_total", tuple(sorted(labels.items()))


def fund(insured: str, treatment: str, outcome: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return "sigw_settlement_fund_fen_total", settlements(insured, treatment, outcome)[1]


class NationalClient:
    """The hospital over the national interface in development identity mode (plain HTTP, the caller named in a
    header)."""

    def __init__(self, demo: Demo, session: aiohttp.ClientSession) -> None:
        self.url = f"http://127.0.0.1:{demo.gateway.national_port}{PATH}"
        self.session = session
        self.clock = demo.clock
        self.sequence = 0
        self.sign_no = ""

    async def ok(self, infno: str, input: dict[str, Any]) -> Any:
        doc = await self.call(infno, input)
        assert doc["infcode"] == 0, doc["err_msg"]
        return doc["output"]

    async def refused(self, infno: str, input: dict[str, Any], reason: str) -> None:
        doc = await self.call(infno, input)
        assert doc["infcode"] == -1 and f"（{reason}）" in doc["err_msg"], doc["err_msg"]

    async def call(self, infno: str, input: dict[str, Any]) -> Any:
        self.sequence += 1
        message = {
            "infno": infno, "msgid": f"{HOSPITAL}{self.clock():%Y%m%d%H%M%S}{self.sequence:04d}",
            "mdtrtarea_admvs": "440300", "insuplc_admdvs": "310000", "recer_sys_code": "YBXT", "infver": "V1.0",
            "opter_type": "1", "opter": "0001", "opter_name": "收费员甲",
            "inf_time": f"{self.clock():%Y-%m-%d %H:%M:%S}", "fixmedins_code": HOSPITAL,
            "fixmedins_name": "深圳市第一人民医院", "sign_no": self.sign_no, "input": input,
        }  # fmt: skip
        headers = {"x-sigw-participant": f"hospital:440300:{HOSPITAL}"}
        body = simplejson.dumps(message).encode()
        async with self.session.post(self.url, data=body, headers=headers) as reply:
            return simplejson.loads(await reply.read(), use_decimal=True)


async def test_settlements_and_clearing_are_counted_once_by_region_pair(demo: Demo, redis_url: str) -> None:
    text = await scrape(demo)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["sigw_settlements"] == families["sigw_clearing_recounts"] == "counter"
    recounts = "sigw_clearing_recounts_total"
    confirmations = "sigw_clearing_confirmations_total"
    zero = {("sigw_clearing_months_closed_total", ()): 0, (recounts, (("outcome", "matches"),)): 0,
            (recounts, (("outcome", "differs"),)): 0, (confirmations, (("outcome", "confirmed"),)): 0,
            (confirmations, (("outcome", "disputed"),)): 0}  # fmt: skip
    assert samples(text) == zero  # and no settlement's series before the first settlement

    # sigw.v1: settled (a retry replays: not counted again), then cancelled (its retry replays too).
    request = P.SettleRequest(bill=bill(visit="M1"))
    first = (await stub(demo).Settle(request, metadata=ME)).settlement
    assert (await stub(demo).Settle(request, metadata=ME)).settlement.settlement_id == first.settlement_id
    await stub(demo).PreSettle(P.PreSettleRequest(bill=bill(visit="M9")), metadata=ME)  # commits nothing
    cancel = P.CancelSettlementRequest(msgid=msgid(), settlement_id=first.settlement_id)
    await stub(demo).CancelSettlement(cancel, metadata=ME)
    await stub(demo).CancelSettlement(cancel, metadata=ME)
    # Settled and reversed (by the msgid that settled it).
    second = (await stub(demo).Settle(P.SettleRequest(bill=bill(visit="M2")), metadata=ME)).settlement
    reverse = P.ReverseMessageRequest(msgid=msgid(), original_msgid=second.msgid, original_transaction="2304")
    await stub(demo).ReverseMessage(reverse, metadata=ME)
    # One that stands.
    third = (await stub(demo).Settle(P.SettleRequest(bill=bill(visit="M3")), metadata=ME)).settlement
    # Shenzhen refuses its insured person's unfiled care in Chengdu.
    refused = bill(
        insured="440300", treatment_region="510100", hospital_code="H51010000001", msgid=msgid("H51010000001")
    )
    await expect_error(
        stub(demo).Settle(P.SettleRequest(bill=refused), metadata=CHENGDU), grpc.StatusCode.FAILED_PRECONDITION
    )
    # Beijing's agency does not answer.
    beijing = demo.agency("110000", AgencyType.HEALTHCARE_SECURITY)
    beijing.available = False
    await expect_error(
        stub(demo).Settle(P.SettleRequest(bill=bill(visit="M4")), metadata=ME, timeout=3),
        grpc.StatusCode.UNAVAILABLE,
    )
    beijing.available = True

    # The national interface goes through the same use case: a Shanghai-insured outpatient visit settled and
    # cancelled (2207, 2208).
    async with aiohttp.ClientSession() as session:
        n = NationalClient(demo, session)
        signed_in = await n.ok("9001", {"signIn": {"opter_no": "0001", "mac": "00-16-3E-00-00-01", "ip": "10.0.0.8"}})
        n.sign_no = signed_in["signinoutb"]["sign_no"]
        who = {"mdtrt_cert_type": "02", "mdtrt_cert_no": person_id(), "psn_name": "张三"}
        psn = (await n.ok("1101", {"data": who}))["baseinfo"]["psn_no"]
        opened = {"psn_no": psn, "insutype": "310", "begntime": "2026-03-02 08:00:00", "mdtrt_cert_type": "02",
                  "mdtrt_cert_no": person_id()}  # fmt: skip
        visit = (await n.ok("2201", {"data": opened}))["data"]["mdtrt_id"]
        await n.ok("2204", {"feedetail": [detail("1", visit, psn, EXAM, 100, 80, 8000)]})  # past the deductible
        info = (await n.ok("2207", settle_data(visit, psn, "8000.00", med_type="11", chrg_bchno="1")))["setlinfo"]
        await n.ok("2208", {"data": {"setl_id": info["setl_id"], "mdtrt_id": visit, "psn_no": psn}})
        # The hospital disputes the one standing settlement of March (3261), then confirms it; a refused
        # confirmation (a cancelled settlement) records nothing and is not counted.
        month = {"trt_year": 2026, "trt_month": 3}
        await n.ok("3261", {"data": month, "detail": [{"setl_sn": third.settlement_id, "cnfm_flag": "0"}]})
        await n.ok("3261", {"data": month, "detail": [{"setl_sn": third.settlement_id, "cnfm_flag": "1"}]})
        cancelled = [
            {"setl_sn": third.settlement_id, "cnfm_flag": "1"},
            {"setl_sn": first.settlement_id, "cnfm_flag": "1"},
        ]
        await n.refused("3261", {"data": month, "detail": cancelled}, "NOT_THIS_MONTH")
    national_fund = int(Decimal(info["fund_pay_sumamt"]) * 100)
    assert national_fund > 0

    # Clearing: a recount that matches, one that does not (the running totals altered behind the gateway's
    # back), and the month closed.
    await stub(demo).RecountMonth(P.RecountMonthRequest(month="2026-03"), metadata=OPERATOR)
    client = redis.Redis.from_url(redis_url)
    try:
        client.hincrby(keys.clearing(int(third.settlement_id[1:3]), "2026-03"), "110000|440300|fund", 100)
    finally:
        client.close()
    await stub(demo).RecountMonth(P.RecountMonthRequest(month="2026-03"), metadata=OPERATOR)
    await stub(demo).CloseMonth(P.CloseMonthRequest(request_id="m", month="2026-03"), metadata=OPERATOR)

    text = await scrape(demo)
    found = samples(text)
    assert found == {
        settlements("110000", "440300", "settled"): 3,
        settlements("110000", "440300", "cancelled"): 1,
        settlements("110000", "440300", "reversed"): 1,
        settlements("110000", "440300", "unavailable"): 1,
        settlements("440300", "510100", "refused"): 1,
        settlements("310000", "440300", "settled"): 1,
        settlements("310000", "440300", "cancelled"): 1,
        fund("110000", "440300", "settled"): first.split.fund_pay_fen
        + second.split.fund_pay_fen
        + third.split.fund_pay_fen,
        fund("110000", "440300", "cancelled"): first.split.fund_pay_fen,
        fund("110000", "440300", "reversed"): second.split.fund_pay_fen,
        fund("310000", "440300", "settled"): national_fund,
        fund("310000", "440300", "cancelled"): national_fund,
        (recounts, (("outcome", "matches"),)): 1,
        (recounts, (("outcome", "differs"),)): 1,
        ("sigw_clearing_months_closed_total", ()): 1,
        (confirmations, (("outcome", "confirmed"),)): 1,
        (confirmations, (("outcome", "disputed"),)): 1,
    }
    # The fund's net for the pair (settled less cancelled and reversed) is the settlement left standing.
    net = sum(
        found[fund("110000", "440300", o)] * (1 if o == "settled" else -1) for o in ("settled", "cancelled", "reversed")
    )
    assert net == third.split.fund_pay_fen
    assert person_id() not in text and HOSPITAL not in text and first.settlement_id not in text
