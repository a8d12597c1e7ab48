"""A big clearing month for ``make bench``: load settlements of last month into a Redis of its own, as the
gateway stores them (``SettlementStore.import_settled``, pipelined), then time the gateway closing and
recounting that month over gRPC.

    python -m bench.month load --redis-url unix:///tmp/x/redis.sock --key-file sigw.keys --first 0 --count 500000
    python -m bench.month time --target 127.0.0.1:50051 --tls-dir var/pki
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from bench.load import person
from gateway._gen.sigw.v1 import settlement_pb2, settlement_pb2_grpc
from gateway.domain import ids
from gateway.domain.calendar import SHANGHAI
from gateway.domain.settlement.records import Bill, CredentialType, Figures, SettlementRecord
from gateway.domain.settlement.split import BillItem, CatalogueClass, InsuranceType, MedicalType
from gateway.security.crypto import FieldCipher
from gateway.security.tls import TlsFolder
from gateway.store import keys
from gateway.store.client import redis_client
from gateway.store.settlements import FilingStore, SettlementStore

HOSPITALS = (("440300", "H44030000001"), ("510100", "H51010000001"), ("310000", "H31010000001"))
INSURED = ("110000", "310000", "440300", "510100")
BATCH = 2000
ITEMS = (
    BillItem("A001", "床位费", CatalogueClass.A, 1_200_000, 0),
    BillItem("B001", "乙类药品", CatalogueClass.B, 600_000, 10),
    BillItem("C001", "丙类项目", CatalogueClass.C, 200_000, 0),
)
FIGURES = Figures(2_000_000, 1_207_500, 300_000, 492_500, 200_000, 60_000, 1_740_000, 130_000, 0, 75, 4, "bench")


def last_month(today: date) -> datetime:
    """Midnight of the first day of the month before ``today``'s (Asia/Shanghai)."""
    first = today.replace(day=1) - timedelta(days=1)
    return datetime(first.year, first.month, 1, tzinfo=SHANGHAI)


def settlement(i: int, month_start: datetime, shards: int) -> SettlementRecord:
    """The i-th settlement of the month: a distinct msgid and stay, a pair of regions going round."""
    region, hospital = HOSPITALS[i % len(HOSPITALS)]
    insured = next(r for r in INSURED[i % len(INSURED) :] + INSURED if r != region)
    when = month_start + timedelta(seconds=i // 9999)
    msgid = f"{hospital}{when:%Y%m%d%H%M%S}{1 + i % 9999:04d}"
    shard = keys.shard_for(msgid, shards)
    day = when.date()
    bill = Bill(
        msgid=msgid,
        hospital_code=hospital,
        hospital_level=3,
        treatment_region=region,
        insured_region=insured,
        visit_id=f"M{i}",
        id_number=person(i),
        name="测试",
        credential_type=CredentialType.E_VOUCHER,
        insurance_type=InsuranceType.EMPLOYEE,
        medical_type=MedicalType.INPATIENT,
        admission=day,
        discharge=day,
        emergency=False,
        items=ITEMS,
        total_fen=2_000_000,
        received_at=when,
    )
    return SettlementRecord(ids.settlement_id(shard, msgid), bill, FIGURES, when)


async def load(redis_url: str, cipher: FieldCipher, first: int, count: int, shards: int) -> float:
    """Write settlements ``first`` .. ``first + count - 1``; the seconds it took."""
    client = redis_client(redis_url, 4)
    store = SettlementStore(client, shards, cipher, FilingStore(client, shards, cipher))
    month_start = last_month(datetime.now(SHANGHAI).date())
    started = time.perf_counter()
    for start in range(first, first + count, BATCH):
        end = min(start + BATCH, first + count)
        await store.import_settled([(settlement(i, month_start, shards), f"bench-{i}") for i in range(start, end)])
    await client.aclose()
    return time.perf_counter() - started


async def close_and_recount(target: str, tls_dir: Path) -> dict[str, Any]:
    """CloseMonth, then RecountMonth, of last month, as the operator: each one's seconds and what it said."""
    month = f"{last_month(datetime.now(SHANGHAI).date()):%Y-%m}"
    credentials = TlsFolder(tls_dir).channel_credentials("operator:cli")
    async with grpc.aio.secure_channel(target, credentials) as channel:
        stub = settlement_pb2_grpc.SettlementServiceStub(channel)
        started = time.perf_counter()
        closed = await stub.CloseMonth(
            settlement_pb2.CloseMonthRequest(request_id=f"bench-close-{month}", month=month), timeout=60
        )
        close_s = time.perf_counter() - started
        started = time.perf_counter()
        recount = await stub.RecountMonth(settlement_pb2.RecountMonthRequest(month=month), timeout=600)
        recount_s = time.perf_counter() - started
    return {
        "month": month,
        "close_s": close_s,
        "recount_s": recount_s,
        "closed": closed.statement.closed,
        "pairs": len(closed.statement.pairs),
        "counted": recount.settlements_counted,
        "matches": recount.statement.recount == settlement_pb2.RECOUNT_OUTCOME_MATCHES,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    loading = sub.add_parser("load")
    loading.add_argument("--redis-url", required=True)
    loading.add_argument("--key-file", type=Path, required=True)
    loading.add_argument("--first", type=int, default=0)
    loading.add_argument("--count", type=int, default=1_000_000)
    loading.add_argument("--shards", type=int, default=8)
    timing = sub.add_parser("time")
    timing.add_argument("--target", required=True)
    timing.add_argument("--tls-dir", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "load":
        cipher = FieldCipher.from_key_file(args.key_file.read_text())
        took = asyncio.run(load(args.redis_url, cipher, args.first, args.count, args.shards))
        print(json.dumps({"loaded": args.count, "seconds": took}))
    else:
        print(json.dumps(asyncio.run(close_and_recount(args.target, args.tls_dir))))


if __name__ == "__main__":
    main()
