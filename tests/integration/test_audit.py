"""The audit trail: every state change and operator action is on a hash-chained stream, and `sigw audit
verify` finds an altered, removed or re-ordered entry and says where."""

from __future__ import annotations

import json
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


def audit_cli(
    action: str, redis_url: str, key_file: Path | None, anchors: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``sigw audit verify|anchor`` against ``redis_url``, with the gateway's key file and an anchors file."""
    extra = ["--key-file", str(key_file)] if key_file else ["--key-file", "/nonexistent"]
    extra += ["--anchors", str(anchors) if anchors else "/nonexistent/anchors.jsonl"]
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", action, "--redis-url", redis_url, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def verify(
    redis_url: str, key_file: Path | None = None, anchors: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return audit_cli("verify", redis_url, key_file, anchors)


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
    intact = verify(redis_url, demo.key_file)
    assert intact.returncode == 0 and "audit trail intact" in intact.stdout, intact.stdout + intact.stderr

    # Altered: the last entry's actor changed.
    rewrite(client, transfer_chain, -1, actor=b"agency:310000:healthcare")
    broken = verify(redis_url, demo.key_file)
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


async def _a_completed_transfer_and_a_settlement(demo: Demo) -> str:
    t = (await demo.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))).transfer
    from tests.helpers import wait_for_state

    await wait_for_state(demo.transfers, t.transfer_id, 4)
    await settlement_pb2_grpc.SettlementServiceStub(demo.channel).Settle(
        settlement_pb2.SettleRequest(bill=bill()), metadata=ME
    )
    await operator_pb2_grpc.OperatorServiceStub(demo.channel).RedriveDeadLetters(
        operator_pb2.RedriveDeadLettersRequest(request_id="r-2", all=True), metadata=OPERATOR
    )
    return t.transfer_id


def _problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 4, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith("BROKEN ")]


async def test_tampering_behind_the_trails_back_is_found(demo: Demo, redis_url: str, tmp_path: Path) -> None:
    """Issue 13 point 7: an edited or deleted record, a forged append, a cut tail with its count lowered, a
    deleted chain and an edited anchor are each found; each tampering is undone before the next."""
    transfer_id = await _a_completed_transfer_and_a_settlement(demo)
    client = redis.Redis.from_url(redis_url)
    anchors = tmp_path / "anchors.jsonl"
    anchored = audit_cli("anchor", redis_url, demo.key_file, anchors)
    assert anchored.returncode == 0 and "anchored" in anchored.stdout, anchored.stdout + anchored.stderr
    assert verify(redis_url, demo.key_file, anchors).returncode == 0
    chain = chain_of(client, transfer_id.encode())
    record = next(f[b"key"] for _, f in stream_rows(client, chain) if f[b"object"] == transfer_id.encode())
    saved = cast(bytes, client.get(record))

    # The record edited (its state, its timeline: any byte) or deleted, its entries untouched.
    client.set(record, saved[:-1] + bytes([saved[-1] ^ 1]))
    assert any("record edited" in p for p in _problems(verify(redis_url, demo.key_file, anchors)))
    client.delete(record)
    assert any("record deleted" in p for p in _problems(verify(redis_url, demo.key_file, anchors)))
    client.set(record, saved)

    # A forged append with a correct chain hash (SHA-1 is public) but no MAC: only the key tells it.
    rows = stream_rows(client, chain)
    last = {k.decode(): v.decode() for k, v in rows[-1][1].items()}
    seq = str(int(last["seq"]) + 1)
    body = [("time", last["time"]), ("actor", "operator:x"), ("action", "transfer COMPLETED->REJECTED"),
            ("object", transfer_id)]  # fmt: skip
    forged_id = client.xadd(chain, {"seq": seq, **dict(body), "hash": entry_hash(seq, last["hash"], body)})
    client.incr(f"{chain}:seq")
    assert verify(redis_url).returncode == 0  # without the key the forgery passes: the chain is consistent
    assert any("not written by a gateway" in p for p in _problems(verify(redis_url, demo.key_file, anchors)))
    client.xdel(chain, forged_id)
    client.decr(f"{chain}:seq")

    # The newest entry cut off and the count lowered: consistent, but not what was anchored.
    newest_id, newest = stream_rows(client, chain)[-1]
    client.xdel(chain, newest_id)
    client.decr(f"{chain}:seq")
    problems = _problems(verify(redis_url, demo.key_file, anchors))
    assert any("cut back since the anchor" in p for p in problems), problems
    client.xadd(chain, cast(dict[FieldT, EncodableT], newest))
    client.incr(f"{chain}:seq")

    # A whole chain deleted.
    other = "sigw:{ops}:audit"
    kept = stream_rows(client, other)
    kept_seq = client.get(f"{other}:seq")
    client.delete(other, f"{other}:seq")
    assert any(f"BROKEN {other}" in p and "deleted since the anchor" in p
               for p in _problems(verify(redis_url, demo.key_file, anchors)))  # fmt: skip
    for _, fields in kept:
        client.xadd(other, cast(dict[FieldT, EncodableT], fields))
    client.set(f"{other}:seq", cast(bytes, kept_seq))

    assert verify(redis_url, demo.key_file, anchors).returncode == 0  # everything undone
    # An edited anchor does not verify.
    line = json.loads(anchors.read_text().splitlines()[-1])
    line["heads"][chain][0] -= 1  # to hide a cut tail, say
    anchors.write_text(json.dumps(line) + "\n")
    edited = verify(redis_url, demo.key_file, anchors)
    assert edited.returncode == 4 and "signature does not verify" in edited.stdout, edited.stdout
