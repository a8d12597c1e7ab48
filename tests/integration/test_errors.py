"""An error as a caller receives it (AIP-193): the reason from the catalogue, the English message, the Chinese one
for a person, and every bad field at once."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway._gen.sigw.v1 import errors_pb2, transfer_pb2
from gateway.domain.reasons import CATALOGUE
from tests.conftest import Demo, as_
from tests.integration.test_transfer_flow import create_request

S = transfer_pb2


async def test_a_refusal_carries_its_catalogued_reason_and_a_chinese_message(demo: Demo) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await demo.transfers.CreateTransfer(
            create_request(kind=S.TRANSFER_KIND_WORK_INJURY), metadata=as_("agency:310000:hrss")
        )
    status = rpc_status.from_call(caught.value)
    assert status is not None
    info, localized = error_details_pb2.ErrorInfo(), error_details_pb2.LocalizedMessage()
    assert any(d.Unpack(info) for d in status.details if d.Is(info.DESCRIPTOR))
    assert any(d.Unpack(localized) for d in status.details if d.Is(localized.DESCRIPTOR))
    assert (info.domain, info.reason) == ("sigw", "NOT_TRANSFERABLE")
    assert errors_pb2.ErrorReason.Value(info.reason)  # a value of the contract's enum
    assert localized.locale == "zh-CN" and localized.message == CATALOGUE["NOT_TRANSFERABLE"].zh
    assert "Art. 15" in status.message  # the English one stays


async def test_bad_input_names_every_bad_field_in_one_answer(demo: Demo) -> None:
    request = create_request(source="11", target="31", id_number="123")
    request.request_id = "not a valid id!"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await demo.transfers.CreateTransfer(request, metadata=as_("agency:310000:hrss"))
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert {"request_id", "source_region", "target_region", "person.id_number"} <= {
        v.field for v in bad.field_violations
    }
