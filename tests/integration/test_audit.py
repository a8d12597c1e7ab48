"""The audit trail: every state change and operator action is on a hash-chained stream, and `sigw audit
verify` finds an altered, removed or re-ordered entry and says where."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import cast

import redis
from redis.typing import EncodableT, FieldT

from gateway._gen.sigw.v1 import common_pb2, operator_pb2, operator_pb2_grpc, settlement_pb2, settlement_pb2_grpc
from gateway.store.audit import check_chain, entry_hash
from tests.conftest import Demo, as_
from tests.helpers import OPERATOR, stream_rows
from tests.integration.test_settlement import ME, bill
from tests.integration.test_transfer_flow import create_request

ROOT = Path(__file__).resolve().parents[2]


def verify(redis_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "verify", "--redis-url", redis_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def chain_of(client: redis.Redis, marker: bytes) -> str:
    """The audit chain holding an entry whose object is ``marker``."""
    for key in client.scan_iter("sigw:*:audit", _type="stream"):
        if any(f.get(b"object") == marker for _, f in stream_rows(client, key)):
            return cast(bytes, key).decode()
    raise AssertionError("no chain")


def rewrite(client: redis.Redis, chain: str, position: int, **changes: bytes) -> None:
    """Tamper: replace the entry at ``position`` with a changed copy appended at the end."""
    rows = stream_rows(client, chain)
    entry_id, fields = rows[position]
    client.xdel(chain, entry_id)
    client.xadd(chain, cast(dict[FieldT, EncodableT], {**fields, **changes}))


async def test_every_change_and_operator_action_is_chained_and_tampering_is_found(demo: Demo, redis_url: str) -> None:
    t = (await demo.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))).transfer
    from tests.helpers import wait_for_state

    await wait_for_state(demo.transfers, t.transfer_id, 4)
    settlements = settlement_pb2_grpc.SettlementServiceStub(demo.channel)
    await settlements.CreateFiling(
        settlement_pb2.CreateFilingRequest(
            request_id="f",
            type=settlement_pb2.FILING_TYPE_POSTED_WORKER,
            person=common_pb2.Person(id_number="11010519491231002X", name="张三"),
            insured_region="110000",
            treatment_region="440300",
            valid_from=common_pb2.Date(year=2026, month=1, day=1),
        ),
        metadata=as_("agency:110000:healthcare"),
    )
    await settlements.Settle(settlement_pb2.SettleRequest(bill=bill()), metadata=ME)
    await operator_pb2_grpc.OperatorServiceStub(demo.channel).RedriveDeadLetters(
        operator_pb2.RedriveDeadLettersRequest(request_id="r-1", all=True), metadata=OPERATOR
    )

    client = redis.Redis.from_url(redis_url)
    transfer_chain = chain_of(client, t.transfer_id.encode())
    actions = [f[b"action"] for _, f in stream_rows(client, transfer_chain) if f[b"object"] == t.transfer_id.encode()]
    assert actions == [
        b"transfer NEW->SUBMITTED",
        b"transfer SUBMITTED->CONTACT_SENT",
        b"transfer CONTACT_SENT->FUNDS_SENT",
        b"transfer FUNDS_SENT->COMPLETED",
    ]
    ops = stream_rows(client, "sigw:{ops}:audit")
    assert [(f[b"actor"], f[b"action"], f[b"request"]) for _, f in ops] == [
        (b"operator:test", b"redrive dead letters", b"r-1")
    ]
    intact = verify(redis_url)
    assert intact.returncode == 0 and "audit trail intact" in intact.stdout, intact.stdout + intact.stderr

    # Altered: the last entry's actor changed.
    rewrite(client, transfer_chain, -1, actor=b"agency:310000:healthcare")
    broken = verify(redis_url)
    assert broken.returncode == 4
    assert f"BROKEN {transfer_chain} entry" in broken.stdout and "altered" in broken.stdout


def test_the_checker_names_the_broken_entry() -> None:
    def chain(n: int) -> list[tuple[str, list[tuple[str, str]]]]:
        rows, prev = [], "genesis"
        for seq in range(1, n + 1):
            body = [("time", f"{1000 + seq}"), ("actor", "a"), ("action", "x"), ("object", f"o{seq}")]
            digest = entry_hash(str(seq), prev, body)
            rows.append((f"{seq}-0", [("seq", str(seq)), *body, ("hash", digest)]))
            prev = digest
        return rows

    good = chain(5)
    assert check_chain("c", good, 5) == []
    altered = [
        row if i != 2 else (row[0], [(k, "o9" if k == "object" else v) for k, v in row[1]])
        for i, row in enumerate(good)
    ]
    assert [(f.entry_id, f.problem.split(":")[0]) for f in check_chain("c", altered, 5)] == [("3-0", "altered")]
    removed = good[:2] + good[3:]
    assert check_chain("c", removed, 5)[0].entry_id == "4-0"
    assert "removed" in check_chain("c", removed, 5)[0].problem
    reordered = [good[0], good[2], good[1], *good[3:]]
    assert check_chain("c", reordered, 5)[0].entry_id == "3-0"
    # Replaced whole, with a hash that matches its own new content but not the chain before it.
    forged_body = [("time", "1003"), ("actor", "a"), ("action", "x"), ("object", "forged")]
    forged = (good[2][0], [("seq", "3"), *forged_body, ("hash", entry_hash("3", "genesis", forged_body))])
    replaced = [*good[:2], forged, *good[3:]]
    assert [(f.entry_id, f.problem.split(":")[0]) for f in check_chain("c", replaced, 5)] == [("3-0", "altered")]
    truncated = good[:4]
    assert check_chain("c", truncated, 5)[0].problem == "1 entries removed from the end"
