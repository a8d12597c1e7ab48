"""Hospitals over the national JSON interface: real HTTPS with mutual TLS, a plain HTTP client (aiohttp's), the
simulated agencies and a real Redis. An inpatient stay and an outpatient visit end to end, every answer's
envelope checked, the amounts against what sigw.v1 answers for the same settlement, and the untidy and bad
messages real senders send."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import simplejson

from adapters.simulated_agency import SimulatedAgencies
from gateway._gen.sigw.v1 import agency_pb2, agency_pb2_grpc, settlement_pb2, settlement_pb2_grpc
from gateway.config import Settings
from gateway.domain.participants import AgencyKey, AgencyType
from gateway.domain.regions import Hospital
from gateway.security import pki
from gateway.security.tls import TlsFolder
from gateway.server import Gateway, start_gateway
from tests.conftest import DEMO_REGIONS, FakeClock, demo_registry, start_demo_agencies
from tests.helpers import person_id

ROOT = Path(__file__).resolve().parents[2]
PATH = "/fsi/api/rsfComIfsService/callService"
HOSPITAL = "H44030000001"
OTHER = "H44030000002"
ME = f"hospital:440300:{HOSPITAL}"
HOSPITALS = {
    HOSPITAL: Hospital(HOSPITAL, "440300", "深圳市第一人民医院", 3),
    OTHER: Hospital(OTHER, "440300", "深圳市第二人民医院", 2),
}
# The Shenzhen catalogue's lines these tests use (config/catalogues/440300.csv): class A, B with 10 %, C.
BED, CT, OWN_DRUG, EXAM = "001102000010000", "002201000010000", "XN06AXH005A001010101021", "001101000010000"


@dataclass
class National:
    gateway: Gateway
    tls: TlsFolder
    sims: SimulatedAgencies
    clock: FakeClock
    session: aiohttp.ClientSession
    sequence: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.gateway.national_port}{PATH}"

    def msgid(self) -> str:
        self.sequence += 1
        return f"{HOSPITAL}{self.clock():%Y%m%d%H%M%S}{self.sequence:04d}"

    async def post(self, body: bytes, hospital: str = ME) -> dict[str, Any]:
        context = self.tls.client_ssl_context(hospital)
        async with self.session.post(self.url, data=body, ssl=context) as reply:
            assert reply.status == 200  # every answer is an envelope, also a refusal
            assert reply.headers["Content-Type"].startswith("application/json")
            doc: dict[str, Any] = simplejson.loads(await reply.read(), use_decimal=True)
            return doc

    async def call(
        self, infno: str, input: dict[str, Any], *, msgid: str | None = None, sign_no: str | None = None,
        hospital: str = ME, **envelope: Any,
    ) -> dict[str, Any]:  # fmt: skip
        message = {
            "infno": infno,
            "msgid": msgid if msgid is not None else self.msgid(),
            "mdtrtarea_admvs": "440300",
            "insuplc_admdvs": "310000",
            "recer_sys_code": "YBXT",
            "dev_no": "",
            "dev_safe_info": None,
            "cainfo": "",
            "signtype": "SM3",
            "infver": "V1.0",
            "opter_type": "1",
            "opter": "0001",
            "opter_name": "收费员甲",
            "inf_time": f"{self.clock():%Y-%m-%d %H:%M:%S}",
            "fixmedins_code": HOSPITAL,
            "fixmedins_name": "深圳市第一人民医院",
            "sign_no": sign_no if sign_no is not None else getattr(self, "sign_no", ""),
            "input": input,
            **envelope,
        }
        doc = await self.post(simplejson.dumps(message, use_decimal=True).encode(), hospital)
        assert set(doc) >= {"infcode", "inf_refmsgid", "refmsg_time", "respond_time", "err_msg", "output"}
        assert doc["inf_refmsgid"][:6] == message["mdtrtarea_admvs"] and len(doc["inf_refmsgid"]) == 30
        assert len(doc["refmsg_time"]) == 17 and len(doc["respond_time"]) == 17
        return doc

    async def ok(self, infno: str, input: dict[str, Any], **kw: Any) -> Any:
        doc = await self.call(infno, input, **kw)
        assert doc["infcode"] == 0, doc["err_msg"]
        assert doc["err_msg"] is None
        return doc["output"]

    async def refused(self, infno: str, input: dict[str, Any], reason: str, **kw: Any) -> str:
        doc = await self.call(infno, input, **kw)
        assert doc["infcode"] == -1 and doc["output"] is None
        assert f"（{reason}）" in doc["err_msg"], doc["err_msg"]
        assert person_id() not in doc["err_msg"]
        return str(doc["err_msg"])

    def settlements(self) -> settlement_pb2_grpc.SettlementServiceAsyncStub:
        channel = grpc.aio.secure_channel(self.gateway.target, self.tls.channel_credentials(ME))
        return settlement_pb2_grpc.SettlementServiceStub(channel)


@pytest.fixture
async def national(tmp_path: Path, redis_url: str, clock: FakeClock) -> AsyncIterator[National]:
    agencies = [f"agency:{code}:{t.slug}" for code in DEMO_REGIONS for t in AgencyType]
    pki.init_pki(
        tmp_path / "pki",
        [*agencies, ME, f"hospital:440300:{OTHER}", "hospital:310000:H31000000001", f"hospital:310000:{HOSPITAL}"],
    )
    tls = TlsFolder(tmp_path / "pki")
    sims = await start_demo_agencies(tls=tls)
    registry = demo_registry(sims, HOSPITALS)
    settings = Settings(
        grpc_listen="127.0.0.1:0",
        http_listen="",
        national_listen="127.0.0.1:0",
        catalogue_dir=ROOT / "config" / "catalogues",
        redis_url=redis_url,
        calendar_file=None,
        tls_dir=tmp_path / "pki",
        key_file=tmp_path / "sigw.keys",
        shards=2,
    )
    gateway = await start_gateway(settings, registry, clock=clock, monotonic=lambda: clock().timestamp())
    sims.connect(gateway.target)
    async with aiohttp.ClientSession() as session:
        n = National(gateway, tls, sims, clock, session)
        sign_in = await n.ok("9001", {"signIn": {"opter_no": "0001", "mac": "00-16-3E-00-00-01", "ip": "10.0.0.8"}})
        n.sign_no = sign_in["signinoutb"]["sign_no"]  # type: ignore[attr-defined]
        yield n
    await gateway.stop(grace_s=0.2)
    await sims.stop()


def yuan(text: str) -> Decimal:
    return Decimal(text)


async def person(n: National) -> dict[str, Any]:
    out = await n.ok("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person_id(), "psn_name": "张三"}})
    return dict(out)


def detail(
    sn: str, visit: str, psn: str, code: str, cnt: Any, pric: Any, amount: Any, batch: str = "1"
) -> dict[str, Any]:
    return {
        "feedetl_sn": sn, "mdtrt_id": visit, "psn_no": psn, "chrg_bchno": batch, "med_list_codg": code,
        "medins_list_codg": f"HIS-{code[:6]}", "cnt": cnt, "pric": pric, "det_item_fee_sumamt": amount,
        "fee_ocur_time": "2026-03-02 08:30:00", "bilg_dept_codg": "A03", "bilg_dept_name": "内科",
        "bilg_dr_codg": "D001", "bilg_dr_name": "李医生", "hosp_appr_flag": "0", "unlisted_extra": "kept quiet",
    }  # fmt: skip


def settle_data(visit: str, psn: str, total: Any, **more: Any) -> dict[str, Any]:
    return {
        "data": {
            "psn_no": psn, "mdtrt_cert_type": "02", "mdtrt_cert_no": person_id(), "medfee_sumamt": total,
            "psn_setlway": "01", "mdtrt_id": visit, "insutype": "310", "acct_used_flag": "1", "invono": "",
            **more,
        }
    }  # fmt: skip


async def test_sign_in_person_information_and_sign_out(national: National) -> None:
    n = national
    info = await person(n)
    base, insurance = info["baseinfo"], info["insuinfo"]
    assert base["certno"] == person_id() and base["psn_name"] == "张三" and base["psn_no"].startswith("310000")
    assert (
        base["gend"] in ("1", "2") and base["brdy"] == f"{person_id()[6:10]}-{person_id()[10:12]}-{person_id()[12:14]}"
    )
    assert [(i["insutype"], i["insuplc_admdvs"], i["psn_insu_stas"]) for i in insurance] == [("310", "310000", "1")]
    assert isinstance(insurance[0]["balc"], Decimal) and insurance[0]["balc"] >= 0
    out = await n.ok("9002", {"signOut": {"sign_no": n.sign_no, "opter_no": "0001"}})  # type: ignore[attr-defined]
    assert len(out["signoutoutb"]["sign_time"]) == 19
    await n.refused("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person_id()}}, "NOT_SIGNED_IN")


async def test_a_whole_inpatient_stay(national: National) -> None:
    n = national
    psn = (await person(n))["baseinfo"]["psn_no"]
    admitted = await n.ok(
        "2401",
        {
            "mdtrtinfo": {"psn_no": psn, "insutype": "310", "begntime": "2026-03-01 08:00:00", "mdtrt_cert_type": "02",
                          "mdtrt_cert_no": person_id(), "med_type": "21", "ipt_no": "ZY0001", "atddr_no": "D001",
                          "chfpdr_name": "李医生", "adm_diag_dscr": "急性阑尾炎", "adm_dept_codg": "A03",
                          "adm_dept_name": "普外科", "adm_bed": "12"},
            "diseinfo": [{"psn_no": psn, "diag_type": "1", "maindiag_flag": "1", "diag_code": "K35.900"}],
        },
    )  # fmt: skip
    visit = admitted["result"]["mdtrt_id"]
    # Three lines: a bed (class A), a CT (class B, 10 % self-paid first in Shenzhen), a drug outside the
    # catalogue's scope (class C); amounts as numbers and as strings, as senders do.
    uploaded = await n.ok(
        "2301",
        {"feedetail": [detail("1", visit, psn, BED, 3, "80.00", "240.00"),
                       detail("2", visit, psn, CT, "1", Decimal("300"), Decimal("300.00")),
                       detail("3", visit, psn, OWN_DRUG, "2.0000", "15.5", "31.00")]},
    )  # fmt: skip
    rows = {r["feedetl_sn"]: r for r in uploaded["result"]}
    assert (rows["1"]["chrgitm_lv"], rows["1"]["inscp_scp_amt"], rows["1"]["preselfpay_amt"]) == (
        "01",
        yuan("240.00"),
        yuan("0.00"),
    )
    assert (rows["2"]["chrgitm_lv"], rows["2"]["selfpay_prop"]) == ("02", yuan("0.1000"))
    assert (rows["2"]["preselfpay_amt"], rows["2"]["inscp_scp_amt"]) == (yuan("30.00"), yuan("270.00"))
    assert (rows["3"]["chrgitm_lv"], rows["3"]["fulamt_ownpay_amt"], rows["3"]["inscp_scp_amt"]) == (
        "03",
        yuan("31.00"),
        yuan("0.00"),
    )
    assert rows["1"]["med_chrgitm_type"] == "01" and rows["3"]["med_chrgitm_type"] == "09"
    # A total that is not the uploaded details' is refused, and writes nothing.
    await n.refused("2304", settle_data(visit, psn, "570.99", mid_setl_flag="0"), "TOTAL_MISMATCH")

    pre = (await n.ok("2303", settle_data(visit, psn, "571.00", mid_setl_flag="0")))["setlinfo"]
    assert "setl_id" not in pre
    assert pre["medfee_sumamt"] == yuan("571.00")
    assert (pre["fulamt_ownpay_amt"], pre["preselfpay_amt"], pre["inscp_scp_amt"]) == (
        yuan("31.00"),
        yuan("30.00"),
        yuan("510.00"),
    )
    assert pre["fund_pay_sumamt"] + pre["acct_pay"] + pre["psn_cash_pay"] == yuan("571.00")

    msgid = n.msgid()
    settled = await n.ok("2304", settle_data(visit, psn, 571, dscg_time="2026-03-02"), msgid=msgid)
    again = await n.ok("2304", settle_data(visit, psn, 571, dscg_time="2026-03-02"), msgid=msgid)
    info = settled["setlinfo"]
    assert again["setlinfo"]["setl_id"] == info["setl_id"]  # the same msgid: the same settlement
    for name in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay", "hifp_pay", "act_pay_dedc"):
        assert info[name] == pre[name], name  # nothing was settled in between, so the pre-settlement holds
    assert (info["clr_optins"], info["clr_type"], info["medins_setl_id"]) == ("310000", "21", msgid)
    # The same settlement over sigw.v1, to the fen.
    v1 = (
        await n.settlements().GetSettlement(settlement_pb2.GetSettlementRequest(settlement_id=info["setl_id"]))
    ).settlement
    assert v1.split.total_fen == 57100 and v1.visit_id == visit and v1.clearing_month == "2026-03"
    split = [Decimal(f) / 100 for f in (v1.split.fund_pay_fen, v1.split.account_pay_fen, v1.split.cash_pay_fen)]
    assert split == [info["fund_pay_sumamt"], info["acct_pay"], info["psn_cash_pay"]]
    # Settled details stay: they cannot be cancelled, nor the stay.
    await n.refused("2302", {"data": {"feedetl_sn": "1", "mdtrt_id": visit, "psn_no": psn}}, "DETAIL_SETTLED")
    await n.refused("2404", {"data": {"mdtrt_id": visit, "psn_no": psn}}, "VISIT_SETTLED")

    cancel = (await n.ok("2305", {"data": {"setl_id": info["setl_id"], "mdtrt_id": visit, "psn_no": psn}}))["setlinfo"]
    assert cancel["medfee_sumamt"] == yuan("-571.00") and cancel["fund_pay_sumamt"] == -info["fund_pay_sumamt"]
    await n.refused(
        "2305", {"data": {"setl_id": info["setl_id"], "mdtrt_id": visit, "psn_no": psn}}, "ALREADY_CANCELLED"
    )
    # Freed by the cancel: settled again under a new msgid, then that message reversed (2601).
    second = n.msgid()
    resettled = (await n.ok("2304", settle_data(visit, psn, "571.00"), msgid=second))["setlinfo"]
    assert resettled["setl_id"] != info["setl_id"] and resettled["medfee_sumamt"] == yuan("571.00")
    assert await n.ok("2601", {"data": {"psn_no": psn, "omsgid": second, "oinfno": "2304"}}) is None
    reversed_ = (
        await n.settlements().GetSettlement(settlement_pb2.GetSettlementRequest(settlement_id=resettled["setl_id"]))
    ).settlement
    assert reversed_.state == settlement_pb2.SETTLEMENT_STATE_CANCELLED
    # Every settlement cancelled: the details can go and the stay can be cancelled.
    assert await n.ok("2302", {"data": [{"feedetl_sn": "3", "mdtrt_id": visit, "psn_no": psn}]}) is None
    await n.refused("2304", settle_data(visit, psn, "571.00"), "TOTAL_MISMATCH")  # 540.00 is left
    assert await n.ok("2404", {"data": {"mdtrt_id": visit, "psn_no": psn}}) is None
    await n.refused("2301", {"feedetail": [detail("9", visit, psn, BED, 1, 80, 80)]}, "VISIT_CANCELLED")


async def test_an_outpatient_visit_reconciliation_and_clearing_details(national: National) -> None:
    n = national
    psn = (await person(n))["baseinfo"]["psn_no"]
    opened = await n.ok(
        "2201",
        {"data": {"psn_no": psn, "insutype": "310", "begntime": "2026-03-02 08:10:00", "mdtrt_cert_type": "02",
                  "mdtrt_cert_no": person_id(), "ipt_otp_no": "MZ0001", "atddr_no": "D002", "dr_name": "王医生",
                  "dept_code": "A01", "dept_name": "内科", "caty": "A03"}},
    )  # fmt: skip
    visit = opened["data"]["mdtrt_id"]
    assert opened["data"]["psn_no"] == psn and opened["data"]["ipt_otp_no"] == "MZ0001"
    await n.ok("2204", {"feedetail": [detail("1", visit, psn, EXAM, 1, "25.00", "25.00", batch="B1"),
                                      detail("2", visit, psn, CT, 1, "363.23", "363.23", batch="B1"),
                                      detail("3", visit, psn, BED, 1, "80", "80", batch="B2")]})  # fmt: skip
    assert await n.ok("2205", {"data": {"mdtrt_id": visit, "chrg_bchno": "B2", "psn_no": psn}}) is None
    pre = (await n.ok("2206", settle_data(visit, psn, "388.23", med_type="11", chrg_bchno="B1")))["setlinfo"]
    # acct_used_flag 0: the person declines the individual account, so its share is paid in cash.
    declined = settle_data(visit, psn, "388.23", med_type="11", chrg_bchno="B1", acct_used_flag="0")
    cash_only = (await n.ok("2206", declined))["setlinfo"]
    assert pre["acct_pay"] > 0 and cash_only["acct_pay"] == 0
    assert cash_only["psn_cash_pay"] == pre["psn_cash_pay"] + pre["acct_pay"]
    msgid = n.msgid()
    info = (await n.ok("2207", settle_data(visit, psn, "388.23", med_type="11", chrg_bchno="B1"), msgid=msgid))[
        "setlinfo"
    ]
    assert info["medfee_sumamt"] == yuan("388.23") and info["fund_pay_sumamt"] == pre["fund_pay_sumamt"]
    assert info["fund_pay_sumamt"] + info["acct_pay"] + info["psn_cash_pay"] == yuan("388.23")
    repeat = await n.ok("2207", settle_data(visit, psn, "388.23", med_type="11", chrg_bchno="B1"), msgid=msgid)
    assert repeat["setlinfo"] == info
    # The same msgid with another payload is refused.
    await n.refused(
        "2207", settle_data(visit, psn, "388.24", med_type="11", chrg_bchno="B1"), "MSGID_REUSED", msgid=msgid
    )

    period = {"insutype": "310", "clr_type": "11", "setl_optins": "310000", "stmt_begndate": "2026-03-01",
              "stmt_enddate": "2026-03-31", "refd_setl_flag": "0"}  # fmt: skip
    totals = {"medfee_sumamt": "388.23", "fund_pay_sumamt": info["fund_pay_sumamt"], "acct_pay": info["acct_pay"],
              "fixmedins_setl_cnt": "1"}  # fmt: skip
    matched = (await n.ok("3201", {"data": {**period, **totals}}))["stmtinfo"]
    assert (matched["stmt_rslt"], matched["setl_optins"]) == ("0", "310000")
    unmatched = (await n.ok("3201", {"data": {**period, **totals, "fixmedins_setl_cnt": 2}}))["stmtinfo"]
    assert unmatched["stmt_rslt"] == "1" and "笔数" in unmatched["stmt_rslt_dscr"]
    inpatient = (await n.ok("3201", {"data": {**period, **totals, "clr_type": "21"}}))["stmtinfo"]
    assert inpatient["stmt_rslt"] == "1"  # no inpatient settlement in the period

    rows = (await n.ok("3260", {"data": {"trt_year": "2026", "trt_month": "03", "startrow": "1"}}))["data"]
    assert [(r["seqno"], r["setl_sn"], r["medfee_sumamt"], r["mdtrt_id"]) for r in rows] == [
        (1, info["setl_id"], yuan("388.23"), visit)
    ]
    assert rows[0]["certno"] != person_id() and rows[0]["certno"][:4] == person_id()[:4]
    assert rows[0]["optins_pay_sumamt"] == info["fund_pay_sumamt"] + info["acct_pay"] and rows[0]["cnfm_flag"] is None
    confirm = {"data": {"trt_year": 2026, "trt_month": 3, "totalrow": 1},
               "detail": [{"setl_sn": info["setl_id"], "medfee_sumamt": "388.23", "cnfm_flag": "1"}]}  # fmt: skip
    assert await n.ok("3261", confirm) is None
    rows = (await n.ok("3260", {"data": {"trt_year": "2026", "trt_month": "3", "startrow": 1}}))["data"]
    assert rows[0]["cnfm_flag"] == "1"
    assert (await n.ok("3260", {"data": {"trt_year": "2026", "trt_month": "03", "startrow": "2"}}))["data"] == []
    bad = {
        "data": {"trt_year": 2026, "trt_month": 3},
        "detail": [{"setl_sn": "S01-0000000000000000", "cnfm_flag": "1"}],
    }
    await n.refused("3261", bad, "NOT_THIS_MONTH")
    # Confirming amounts that are not the platform's is refused and changes nothing; disputing them is the way.
    wrong = {"setl_sn": info["setl_id"], "medfee_sumamt": "388.23", "optins_pay_sumamt": "1.00", "cnfm_flag": "0"}
    err = await n.refused("3261", {"data": confirm["data"], "detail": [{**wrong, "cnfm_flag": "1"}]}, "AMOUNT_MISMATCH")
    assert "detail[0]" in err
    assert (await n.ok("3260", {"data": {"trt_year": 2026, "trt_month": 3}}))["data"][0]["cnfm_flag"] == "1"
    assert await n.ok("3261", {"data": confirm["data"], "detail": [wrong]}) is None
    assert (await n.ok("3260", {"data": {"trt_year": 2026, "trt_month": 3}}))["data"][0]["cnfm_flag"] == "0"


async def test_a_refused_settlement_writes_nothing(national: National) -> None:
    n = national
    psn = (await person(n))["baseinfo"]["psn_no"]
    data = {"psn_no": psn, "insutype": "310", "begntime": "2026-03-02 08:00:00", "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person_id()}  # fmt: skip
    visit = (await n.ok("2201", {"data": data}))["data"]["mdtrt_id"]
    await n.ok("2204", {"feedetail": [detail("1", visit, psn, EXAM, 1, 25, 25)]})
    shanghai = n.sims.agencies[AgencyKey("310000", AgencyType.HEALTHCARE_SECURITY)]
    shanghai.available = False
    await n.refused("2207", settle_data(visit, psn, "25.00", med_type="11", chrg_bchno="1"), "AGENCY_UNAVAILABLE")
    shanghai.available = True
    # The claim of the refused call was released: the same details settle under a new msgid.
    info = (await n.ok("2207", settle_data(visit, psn, "25.00", med_type="11", chrg_bchno="1")))["setlinfo"]
    assert info["medfee_sumamt"] == yuan("25.00")
    await n.refused("2207", settle_data(visit, psn, "25.00", med_type="11", chrg_bchno="1"), "NO_DETAILS")


async def test_untidy_and_bad_messages(national: National) -> None:
    n = national
    # Untidy but servable: other infver shapes, nulls and empty strings, extra fields, a msgid of another shape.
    for version in ("V1.0", "1.0", "1"):
        doc = await n.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person_id(), "certno": None,
                                              "card_sn": "", "begntime": None, "unknown": 1}},
                           infver=version, msgid=f"20261201{n.sequence:04d}0001", dev_no=None, extra="x")  # fmt: skip
        n.sequence += 1
        assert doc["infcode"] == 0, doc["err_msg"]
    psn = (await person(n))["baseinfo"]["psn_no"]
    visit = (
        await n.ok(
            "2201",
            {
                "data": {
                    "psn_no": psn,
                    "insutype": "310",
                    "begntime": "2026-03-02",
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": person_id(),
                }
            },
        )
    )["data"]["mdtrt_id"]
    # Amounts: more than two decimals, negative, not a number; each named in Chinese.
    text = await n.refused(
        "2204", {"feedetail": [detail("1", visit, psn, EXAM, 1, "25.00", "25.001")]}, "INVALID_INPUT"
    )
    assert "feedetail[0].det_item_fee_sumamt：金额最多两位小数" in text
    text = await n.refused("2204", {"feedetail": [detail("1", visit, psn, EXAM, 1, 25, "-25")]}, "INVALID_INPUT")
    assert "金额不能为负" in text
    text = await n.refused("2204", {"feedetail": [detail("1", visit, psn, EXAM, 1, 25, "二十五")]}, "INVALID_INPUT")
    assert "应为金额" in text
    text = await n.refused("2204", {"feedetail": [detail("1", visit, psn, "NOPE-CODE", 1, 25, 25)]}, "INVALID_DETAILS")
    assert "NOPE-CODE 不在就医地目录中" in text
    await n.refused("2204", {"feedetail": [detail("1", visit, psn, EXAM, 2, 25, 25)]}, "INVALID_DETAILS")
    # Nothing of the refused uploads was kept.
    await n.refused("2207", settle_data(visit, psn, "25.00", med_type="11", chrg_bchno="1"), "NO_DETAILS")
    # The envelope: an unknown transaction, another hospital's code, a place that is not the hospital's, no
    # sign-in, a missing msgid; and a body that is not JSON or not an object.
    await n.refused("9999", {}, "UNKNOWN_TRANSACTION")
    await n.refused("1101", {"data": {}}, "NOT_THIS_HOSPITAL", fixmedins_code=OTHER)
    await n.refused("1101", {"data": {}}, "NOT_PLACE_OF_TREATMENT", mdtrtarea_admvs="310000")
    await n.refused(
        "1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person_id()}}, "NOT_SIGNED_IN", sign_no=""
    )
    text = await n.refused("1101", {"data": {}}, "INVALID_INPUT", msgid="")
    assert "msgid：必填" in text
    for body in (b"{not json", b"[1, 2]", "中文".encode()):
        doc = await n.post(body)
        assert doc["infcode"] == -1 and doc["output"] is None and "NOT_JSON" in doc["err_msg"], doc
    # A certificate of a hospital the registry does not list under its region is nobody; a registered one cannot
    # speak for another hospital.
    await n.refused("1101", {"data": {}}, "HOSPITAL_NOT_REGISTERED", hospital="hospital:310000:H31000000001")
    await n.refused("1101", {"data": {}}, "NOT_THIS_HOSPITAL", hospital=f"hospital:440300:{OTHER}")
    # An ID number that fails its check digit is refused without reaching the agency.
    bad_id = person_id()[:-1] + ("0" if person_id()[-1] != "0" else "1")
    text = await n.refused("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": bad_id}}, "INVALID_INPUT")
    assert bad_id not in text


async def test_another_hospital_cannot_touch_the_stay(national: National) -> None:
    n = national
    psn = (await person(n))["baseinfo"]["psn_no"]
    data = {"psn_no": psn, "insutype": "310", "begntime": "2026-03-02 08:00:00", "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person_id()}  # fmt: skip
    visit = (await n.ok("2201", {"data": data}))["data"]["mdtrt_id"]
    other = f"hospital:440300:{OTHER}"
    sign = await n.call("9001", {"signIn": {"opter_no": "9", "ip": "10.0.0.9"}}, hospital=other, fixmedins_code=OTHER,
                        msgid=f"{OTHER}202603020900000001")  # fmt: skip
    other_sign = sign["output"]["signinoutb"]["sign_no"]
    doc = await n.call("2204", {"feedetail": [detail("1", visit, psn, EXAM, 1, 25, 25)]}, hospital=other,
                       fixmedins_code=OTHER, sign_no=other_sign, msgid=f"{OTHER}202603020900000002")  # fmt: skip
    assert doc["infcode"] == -1 and "VISIT_NOT_FOUND" in doc["err_msg"]


async def test_a_hospitals_code_under_another_region_is_nobody(national: National) -> None:
    """Issue 13 point 3: a CA-issued certificate naming Shenzhen's hospital under Shanghai reads, reconciles and
    cancels nothing of the Shenzhen hospital's, over the national interface or gRPC."""
    n = national
    psn = (await person(n))["baseinfo"]["psn_no"]
    data = {"psn_no": psn, "insutype": "310", "begntime": "2026-03-02 08:00:00", "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person_id()}  # fmt: skip
    visit = (await n.ok("2201", {"data": data}))["data"]["mdtrt_id"]
    await n.ok("2204", {"feedetail": [detail("1", visit, psn, EXAM, 1, 25, 25)]})
    info = (await n.ok("2207", settle_data(visit, psn, "25", med_type="11", chrg_bchno="1")))["setlinfo"]
    impostor = f"hospital:310000:{HOSPITAL}"
    for infno, input_ in (
        ("3260", {"data": {"trt_year": 2026, "trt_month": 3}}),
        ("2208", {"data": {"setl_id": info["setl_id"], "mdtrt_id": visit, "psn_no": psn}}),
    ):
        await n.refused(infno, input_, "HOSPITAL_NOT_REGISTERED", hospital=impostor, mdtrtarea_admvs="310000")
    channel = grpc.aio.secure_channel(n.gateway.target, n.tls.channel_credentials(impostor))
    try:
        stub = settlement_pb2_grpc.SettlementServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetSettlement(settlement_pb2.GetSettlementRequest(settlement_id=info["setl_id"]))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await channel.close()
    mine = await n.settlements().GetSettlement(settlement_pb2.GetSettlementRequest(settlement_id=info["setl_id"]))
    assert mine.settlement.state == settlement_pb2.SETTLEMENT_STATE_SETTLED


async def test_a_cancel_naming_another_stay_is_refused_before_anything_is_cancelled(national: National) -> None:
    n = national
    psn = (await person(n))["baseinfo"]["psn_no"]
    data = {"psn_no": psn, "insutype": "310", "begntime": "2026-03-02 08:00:00", "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person_id()}  # fmt: skip
    first = (await n.ok("2201", {"data": data}))["data"]["mdtrt_id"]
    second = (await n.ok("2201", {"data": data}))["data"]["mdtrt_id"]
    await n.ok("2204", {"feedetail": [detail("1", first, psn, EXAM, 1, 25, 25)]})
    info = (await n.ok("2207", settle_data(first, psn, "25.00", med_type="11", chrg_bchno="1")))["setlinfo"]
    wrong = {"data": {"setl_id": info["setl_id"], "mdtrt_id": second, "psn_no": psn}}
    await n.refused("2208", wrong, "VISIT_MISMATCH")
    request = settlement_pb2.GetSettlementRequest(settlement_id=info["setl_id"])
    standing = (await n.settlements().GetSettlement(request)).settlement
    assert standing.state == settlement_pb2.SETTLEMENT_STATE_SETTLED
    # A message whose insurance type is not the stay's is refused as well.
    text = await n.refused("2206", settle_data(second, psn, "25.00", med_type="11", chrg_bchno="1", insutype="390"),
                           "INVALID_INPUT")  # fmt: skip
    assert "insutype：与就诊登记的险种 310 不符" in text


def statement_file(*lines: tuple[str, ...], zipped: bool = True) -> bytes:
    """A 3202 statement file: a header line and one tab-separated line per settlement, zipped as senders do."""
    text = "setl_id\tmdtrt_id\tpsn_no\tmedfee_sumamt\tfund_pay_sumamt\tacct_pay\trefd_setl_flag\n"
    text += "".join("\t".join(line) + "\n" for line in lines)
    if not zipped:
        return text.encode("gb18030")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("stmt.txt", text.encode("utf-8"))
    return buffer.getvalue()


async def upload(n: National, content: bytes, *, as_bytes: bool = False) -> str:
    sent: Any = list(content) if as_bytes else base64.b64encode(content).decode()
    out = await n.ok("9101", {"fsUploadIn": {"in": sent, "filename": "stmt.zip", "fixmedins_code": HOSPITAL}})
    assert out["filename"] == "stmt.zip" and len(out["file_qury_no"]) == 30 and out["dld_endtime"] > "2026-03-02"
    return str(out["file_qury_no"])


async def download(n: National, number: str, hospital: str = ME) -> bytes:
    message = {"infno": "9102", "msgid": n.msgid(), "mdtrtarea_admvs": "440300", "fixmedins_code": HOSPITAL,
               "sign_no": n.sign_no, "input": {"fsDownloadIn": {"file_qury_no": number, "filename": "r.zip"}}}  # type: ignore[attr-defined]  # fmt: skip
    async with n.session.post(n.url, data=simplejson.dumps(message), ssl=n.tls.client_ssl_context(hospital)) as reply:
        body = await reply.read()
        assert reply.headers["Content-Type"] == "application/octet-stream", body.decode(errors="replace")
        assert reply.status == 200 and "result.zip" in reply.headers["Content-Disposition"]
        return body


def result_lines(content: bytes) -> list[list[str]]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.namelist() == ["result.txt"]
        text = archive.read("result.txt").decode("utf-8")
    return [line.split("\t") for line in text.splitlines()]


async def test_detail_reconciliation_by_file(national: National) -> None:
    """9101 uploads the hospital's statement file, 3202 compares it line by line (a cancelled settlement is a
    line with refd_setl_flag 1), 9102 downloads the result: one line per settlement the two sides disagree on."""
    n = national
    psn = (await person(n))["baseinfo"]["psn_no"]
    data = {"psn_no": psn, "insutype": "310", "begntime": "2026-03-02 08:00:00", "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person_id()}  # fmt: skip
    visit = (await n.ok("2201", {"data": data}))["data"]["mdtrt_id"]
    await n.ok("2204", {"feedetail": [detail("1", visit, psn, EXAM, 1, 25, 25, batch="B1"),
                                      detail("2", visit, psn, CT, 1, "100.10", "100.10", batch="B2")]})  # fmt: skip
    first_msgid = n.msgid()
    settled = await n.ok("2207", settle_data(visit, psn, "25", med_type="11", chrg_bchno="B1"), msgid=first_msgid)
    first = settled["setlinfo"]
    second = (await n.ok("2207", settle_data(visit, psn, "100.10", med_type="11", chrg_bchno="B2")))["setlinfo"]
    await n.ok("2208", {"data": {"setl_id": second["setl_id"], "mdtrt_id": visit, "psn_no": psn}})

    def line(info: dict[str, Any], refunded: str = "0", total: str | None = None) -> tuple[str, ...]:
        return (info["setl_id"], visit, psn, total or str(info["medfee_sumamt"]), str(info["fund_pay_sumamt"]),
                str(info["acct_pay"]), refunded)  # fmt: skip

    def request(number: str, total: Decimal, fund: Decimal, count: int) -> dict[str, Any]:
        return {"data": {"setl_optins": "310000", "file_qury_no": number, "stmt_begndate": "2026-03-01",
                         "stmt_enddate": "2026-03-31", "medfee_sumamt": str(total), "fund_pay_sumamt": fund,
                         "fixmedins_setl_cnt": str(count), "clr_type": "11"}}  # fmt: skip

    # Both lines as the platform holds them: matched, and the result file is empty.
    number = await upload(n, statement_file(line(first), line(second, refunded="1")))
    out = await n.ok("3202", request(number, first["medfee_sumamt"], first["fund_pay_sumamt"], 1))
    assert out["stmtinfo"]["stmt_rslt"] == "0" and "2 笔" in out["stmtinfo"]["stmt_rslt_dscr"]
    assert out["fileinfo"]["filename"] == f"{number}_result.zip"
    assert result_lines(await download(n, out["fileinfo"]["file_qury_no"])) == []

    # The first line with another total, the cancelled one missing, one the platform never settled; plain GB18030
    # text sent as an array of bytes.
    unknown = ("S01-0123456789abcdef", visit, psn, "10.00", "8.00", "0.00", "0")
    number = await upload(n, statement_file(line(first, total="26.00"), unknown, zipped=False), as_bytes=True)
    out = await n.ok("3202", request(number, Decimal("36.00"), first["fund_pay_sumamt"] + 8, 2))
    assert out["stmtinfo"]["stmt_rslt"] == "1" and "3 笔不一致" in out["stmtinfo"]["stmt_rslt_dscr"]
    rows = {row[2]: row for row in result_lines(await download(n, out["fileinfo"]["file_qury_no"]))}
    assert set(rows) == {first["setl_id"], second["setl_id"], unknown[0]}
    # psn_no, mdtrt_id, setl_id, msgid, stmt_rslt, refd_setl_flag, memo, medfee_sumamt, fund_pay_sumamt, acct_pay
    assert rows[first["setl_id"]][:8] == [
        psn,
        visit,
        first["setl_id"],
        first_msgid,
        "1",
        "0",
        "医疗费总额不一致",
        "25.00",
    ]
    assert rows[second["setl_id"]][3:8] == [second["medins_setl_id"], "1", "1", "医药机构对账文件无此结算", "100.10"]
    assert rows[unknown[0]][3:7] == ["", "1", "0", "平台无此结算"]

    # A cancelled settlement is not in the month's clearing details (3260), so it cannot be confirmed (3261).
    month = {"trt_year": 2026, "trt_month": 3}
    listed = (await n.ok("3260", {"data": month}))["data"]
    assert [row["setl_sn"] for row in listed] == [first["setl_id"]]
    await n.refused(
        "3261", {"data": month, "detail": [{"setl_sn": second["setl_id"], "cnfm_flag": "1"}]}, "NOT_THIS_MONTH"
    )
    # The request's totals must be the file's; another hospital's file is as unknown as none.
    err = await n.refused("3202", request(number, Decimal("35.00"), first["fund_pay_sumamt"] + 8, 2), "INVALID_INPUT")
    assert "data.medfee_sumamt" in err and "36.00" in err
    await n.refused("3202", request("20260302000000ffffffffffffffff", Decimal(0), Decimal(0), 0), "FILE_NOT_FOUND")
    other = f"hospital:440300:{OTHER}"
    other_sign = await n.ok("9001", {"signIn": {"opter_no": "9"}}, hospital=other, fixmedins_code=OTHER)
    await n.refused(
        "9102", {"fsDownloadIn": {"file_qury_no": number}}, "FILE_NOT_FOUND", hospital=other, fixmedins_code=OTHER,
        sign_no=other_sign["signinoutb"]["sign_no"],
    )  # fmt: skip


async def test_bad_statement_files_are_refused_with_the_line_named(national: National) -> None:
    n = national
    bad = statement_file(("S01-0123456789abcdef", "M01-0123456789abcdef", "P1", "1.001", "0", "0", "0"),
                         ("S01-0123456789abcdef", "M01-0123456789abcdef", "P2", "1", "0", "0", "2"),
                         ("S01-x",))  # fmt: skip
    number = await upload(n, bad)
    data = {"setl_optins": "310000", "file_qury_no": number, "stmt_begndate": "2026-03-01",
            "stmt_enddate": "2026-03-31", "medfee_sumamt": 0, "fund_pay_sumamt": 0,
            "fixmedins_setl_cnt": 0}  # fmt: skip
    err = await n.refused("3202", {"data": data}, "INVALID_FILE")
    for named in ("第1行.medfee_sumamt", "第2行.refd_setl_flag", "第2行.setl_id", "第3行.列数"):
        assert named in err, named
    # A file holding an ID number is not kept at all (files are kept in the clear until used).
    with_id = statement_file(("S01-0123456789abcdef", "M01-0123456789abcdef", person_id(), "1", "0", "0", "0"))
    sent = {"fsUploadIn": {"in": base64.b64encode(with_id).decode(), "filename": "a.zip"}}
    assert "身份证号" in await n.refused("9101", sent, "INVALID_FILE")
    err = await n.refused("9101", {"fsUploadIn": {"in": "not base64!", "filename": "a.zip"}}, "INVALID_FILE")
    assert "fsUploadIn.in" in err
    await n.refused("9101", {"fsUploadIn": {"in": "", "filename": "../a.zip"}}, "INVALID_INPUT")


async def test_the_reference_agency_answers_the_gateway_only(national: National) -> None:
    """Issue 13 point 4: a hospital's certificate (same CA) gets PERMISSION_DENIED from an agency; the gateway's
    own calls (every settlement above) go through."""
    n = national
    key = AgencyKey("310000", AgencyType.HEALTHCARE_SECURITY)
    channel = grpc.aio.secure_channel(n.sims.endpoints[key], n.tls.channel_credentials(ME))
    try:
        stub = agency_pb2_grpc.RegionAgencyServiceStub(channel)
        for call in (
            stub.RefundSettlement(agency_pb2.RefundSettlementRequest()),
            stub.Deliver(agency_pb2.DeliverRequest(message_id="x")),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await channel.close()
    assert n.sims.agencies[key].calls == []  # nothing reached the agency's logic
    assert (await person(n))["baseinfo"]["psn_no"]  # the gateway's call (GetPersonInfo) is answered
