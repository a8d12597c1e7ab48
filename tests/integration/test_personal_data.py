"""Personal data at rest (Art. 49): after transfers, settlements, filings and dead letters, no ID number or
name is found in any Redis key or value in plain text."""

from __future__ import annotations

from typing import cast

import grpc
import redis

from gateway._gen.sigw.v1 import common_pb2, settlement_pb2, settlement_pb2_grpc, transfer_pb2
from gateway.domain import idnumber
from tests.conftest import Demo, as_
from tests.helpers import eventually, person_id, stream_rows, wait_for_state
from tests.integration.test_settlement import ME, bill
from tests.integration.test_transfer_flow import create_request

NAMES = ("张三", "赵六", "欧阳娜娜")


def all_bytes(redis_url: str) -> list[bytes]:
    """Every key and every value, whatever its type. The client leaves decode_responses off: all of it is bytes."""
    client = redis.Redis.from_url(redis_url)
    out: list[bytes] = []
    try:
        for key in client.scan_iter("*"):
            out.append(key)
            kind = client.type(key)
            if kind == b"string":
                out.append(cast(bytes | None, client.get(key)) or b"")
            elif kind == b"hash":
                out += [item for pair in cast(dict[bytes, bytes], client.hgetall(key)).items() for item in pair]
            elif kind == b"set":
                out += list(cast(set[bytes], client.smembers(key)))
            elif kind == b"zset":
                out += [m for m, _ in cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))]
            elif kind == b"stream":
                out += [item for _, fields in stream_rows(client, key) for pair in fields.items() for item in pair]
    finally:
        client.close()
    return out


async def test_no_id_number_or_name_is_stored_in_plain_text(demo: Demo, redis_url: str) -> None:
    ids = [person_id(sequence=s) for s in (101, 102, 103)]
    # Transfers, one with an ID number typed into a free-text note.
    first = create_request(request_id="p-1", id_number=ids[0])
    first.note = f"applicant {ids[0]} called"
    t = (await demo.transfers.CreateTransfer(first, metadata=as_("agency:310000:hrss"))).transfer
    second = create_request(request_id="p-2", id_number=ids[1])
    second.person.name = NAMES[2]
    await demo.transfers.CreateTransfer(second, metadata=as_("agency:310000:hrss"))
    await wait_for_state(demo.transfers, t.transfer_id, transfer_pb2.TRANSFER_STATE_COMPLETED)
    # A filing and a settlement.
    settlements = settlement_pb2_grpc.SettlementServiceStub(demo.channel)
    await settlements.CreateFiling(
        settlement_pb2.CreateFilingRequest(
            request_id="f",
            type=settlement_pb2.FILING_TYPE_POSTED_WORKER,
            person=common_pb2.Person(id_number=ids[2], name=NAMES[1]),
            insured_region="110000",
            treatment_region="440300",
            valid_from=common_pb2.Date(year=2026, month=1, day=1),
        ),
        metadata=as_("agency:110000:healthcare"),
    )
    await settlements.Settle(settlement_pb2.SettleRequest(bill=bill(person=ids[2])), metadata=ME)
    # A dead letter.
    demo.agency("440300").refuse_with = grpc.StatusCode.INVALID_ARGUMENT
    await demo.transfers.CreateTransfer(
        create_request(request_id="p-3", target="440300", id_number=ids[0]), metadata=as_("agency:440300:hrss")
    )
    await eventually(lambda: bool(redis.Redis.from_url(redis_url).xlen("sigw:dlq")))

    stored = all_bytes(redis_url)
    assert len(stored) > 100
    for secret in [*ids, *NAMES]:
        for form in {secret.encode(), secret.encode("utf-16-le")}:
            leaks = [value[:80] for value in stored if form in value]
            assert not leaks, f"{idnumber.mask(secret) if secret in ids else '<name>'} stored in plain text: {leaks}"
    # The gateway still reads it all back.
    shown = (
        await demo.transfers.GetTransfer(
            transfer_pb2.GetTransferRequest(transfer_id=t.transfer_id), metadata=as_("operator:x")
        )
    ).transfer
    assert shown.person.id_number_masked == idnumber.mask(ids[0])
    assert idnumber.mask(ids[0]) in shown.timeline[0].note
