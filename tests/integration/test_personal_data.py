"""Personal data at rest (Art. 49): after transfers, settlements, filings and dead letters, no ID number or
name is found in any Redis key or value in plain text."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest
import redis

from gateway._gen.sigw.v1 import common_pb2, settlement_pb2, settlement_pb2_grpc, transfer_pb2
from gateway.domain import idnumber
from tests.conftest import Demo, FakeClock, as_, start_demo
from tests.helpers import all_delivered, error_details, eventually, person_id, stream_rows, wait_for_state
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
    mobiles = ["13812345678", "13987654321"]
    first.contact.CopyFrom(
        transfer_pb2.ApplicantContact(mobile=mobiles[0], employer_name="某公司", employer_mobile=mobiles[1])
    )
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
    with redis.Redis.from_url(redis_url) as client:
        await eventually(lambda: bool(client.xlen("sigw:dlq")))
    await all_delivered(redis_url)  # every message written and delivered before the store is read

    stored = all_bytes(redis_url)
    assert len(stored) > 100
    for secret in [*ids, *NAMES, *mobiles]:
        for form in {secret.encode(), secret.encode("utf-16-le")}:
            leaks = [value[:80] for value in stored if form in value]
            assert not leaks, f"{idnumber.mask(secret) if secret in ids else '<secret>'} stored in plain text: {leaks}"
    # The gateway still reads it all back.
    shown = (
        await demo.transfers.GetTransfer(
            transfer_pb2.GetTransferRequest(transfer_id=t.transfer_id), metadata=as_("operator:x")
        )
    ).transfer
    assert shown.person.id_number_masked == idnumber.mask(ids[0])
    assert shown.contact.mobile_masked == "138****5678" and shown.contact.employer_mobile_masked == "139****4321"
    assert idnumber.mask(ids[0]) in shown.timeline[0].note


def full_width(text: str) -> str:
    return text.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})


async def test_id_numbers_in_identifiers_are_refused_and_in_free_text_masked(redis_url: str, clock: FakeClock) -> None:
    """Issue 13 point 8: an identifier (request id, visit id, voucher number, national msgid) holding an ID
    number is refused; free text (notes, reasons) is masked before it is stored, full-width digits too, and so is
    the person's own name."""
    secret = person_id(sequence=201)
    d = await start_demo(redis_url, clock, act=False)
    try:

        async def refused_field(call: Any) -> list[str]:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            return [f for f, _ in error_details(caught.value)[2]]

        assert "request_id" in await refused_field(
            d.transfers.CreateTransfer(create_request(request_id=f"r-{secret}"), metadata=as_("agency:310000:hrss"))
        )
        military = create_request(kind=transfer_pb2.TRANSFER_KIND_MILITARY_PENSION, source="910000",
                                  request_id="m-1")  # fmt: skip
        military.military.CopyFrom(
            transfer_pb2.MilitaryService(
                service_start=common_pb2.Date(year=2010, month=9, day=1),
                service_end=common_pb2.Date(year=2026, month=2, day=28),
                subsidy_fen=100, account_fen=100, voucher_numbers=[f"JT{secret}"],
            )
        )  # fmt: skip
        assert "military.voucher_numbers[0]" in await refused_field(
            d.transfers.CreateTransfer(military, metadata=as_("military:JUN001"))
        )
        settlements = settlement_pb2_grpc.SettlementServiceStub(d.channel)
        assert "bill.visit_id" in await refused_field(
            settlements.Settle(settlement_pb2.SettleRequest(bill=bill(visit=f"V{secret}")), metadata=ME)
        )

        # Free text: masked as stored, the person's name too.
        request = create_request(request_id="note-1", id_number=person_id(sequence=202))
        request.note = f"张三 said his number is {full_width(secret)}"
        t = (await d.transfers.CreateTransfer(request, metadata=as_("agency:310000:hrss"))).transfer
        rejected = (
            await d.transfers.RejectTransfer(
                transfer_pb2.RejectTransferRequest(
                    request_id="rej-1", transfer_id=t.transfer_id, reason=f"张三 ({secret}) has no record here"
                ),
                metadata=as_("agency:310000:hrss"),
            )
        ).transfer
        assert rejected.close_reason == f"张* ({idnumber.mask(secret)}) has no record here"
        notes = " ".join(e.note for e in rejected.timeline)
        assert "张三" not in notes and "张*" in notes and idnumber.mask(secret) in notes
        stored = all_bytes(redis_url)
        for form in {secret, full_width(secret)}:
            for encoded in {form.encode(), form.encode("utf-16-le")}:
                assert not [v[:80] for v in stored if encoded in v], "an ID number is stored in the clear"
    finally:
        await d.channel.close()
        await d.gateway.stop(grace_s=0.2)
        await d.sims.stop()
