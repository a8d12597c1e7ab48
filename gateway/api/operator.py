"""OperatorService: lanes, dead letters and re-drive, for the operator role only."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from gateway._gen.sigw.v1 import operator_pb2, operator_pb2_grpc
from gateway.api.identity import IdentityResolver
from gateway.app.deliveries import DeliveryService
from gateway.app.ports import QueuedMessage
from gateway.domain import access
from gateway.domain.participants import Participant, PortalKey
from gateway.domain.transfer.model import LANES
from gateway.wire.common import agency_from, agency_to
from gateway.wire.validation import Violations, valid_stream_id

__all__ = ["OperatorServicer"]

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
MAX_LIMIT = 1000


def _time(ms: int) -> Timestamp:
    ts = Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def message_to(m: QueuedMessage) -> operator_pb2.QueuedMessage:
    msg = operator_pb2.QueuedMessage(
        entry_id=m.entry_id,
        message_id=m.message_id,
        lane=m.lane,
        notice=m.notice,
        transfer_id=m.transfer_id,
        enqueue_time=_time(m.enqueued_ms),
        reason=m.reason,
        attempts=list(m.attempts),
    )
    if isinstance(m.recipient, PortalKey):
        msg.recipient_portal = m.recipient.code
    else:
        msg.recipient.CopyFrom(agency_to(m.recipient))
    if m.dead_ms is not None:
        msg.dead_time.CopyFrom(_time(m.dead_ms))
    return msg


class OperatorServicer(operator_pb2_grpc.OperatorServiceServicer):
    def __init__(self, deliveries: DeliveryService, identity: IdentityResolver) -> None:
        self.deliveries = deliveries
        self.identity = identity

    def _operator(self, context: Context) -> Participant:
        """The caller, refused before anything else unless it is an operator (it learns nothing of the request)."""
        actor = self.identity.caller(context)
        access.require_operator(actor)
        return actor

    async def ListQueued(
        self, request: operator_pb2.ListQueuedRequest, context: Context
    ) -> operator_pb2.ListQueuedResponse:
        actor = self._operator(context)
        v = Violations()
        if request.lane and request.lane not in LANES:
            v.add("lane", "priority or ordinary")
        if not 0 <= request.limit <= MAX_LIMIT:
            v.add("limit", f"0-{MAX_LIMIT}")
        if request.HasField("agency"):
            v.region("agency.region_code", request.agency.region_code)
            if request.agency.agency_type not in (1, 2):
                v.add("agency.agency_type", "HRSS or HEALTHCARE_SECURITY")
        v.raise_if_any()
        agency = agency_from(request.agency) if request.HasField("agency") else None
        found, depths = await self.deliveries.queued(actor, agency, request.lane or None, request.limit or 100)
        return operator_pb2.ListQueuedResponse(messages=[message_to(m) for m in found], depth_by_lane=depths)

    async def ListDeadLetters(
        self, request: operator_pb2.ListDeadLettersRequest, context: Context
    ) -> operator_pb2.ListDeadLettersResponse:
        actor = self._operator(context)
        v = Violations()
        if not 0 <= request.limit <= MAX_LIMIT:
            v.add("limit", f"0-{MAX_LIMIT}")
        if request.after_entry_id and not valid_stream_id(request.after_entry_id):
            v.add("after_entry_id", "not an entry id")
        v.raise_if_any()
        found = await self.deliveries.dead_letters(actor, request.after_entry_id or None, request.limit or 100)
        return operator_pb2.ListDeadLettersResponse(messages=[message_to(m) for m in found])

    async def RedriveDeadLetters(
        self, request: operator_pb2.RedriveDeadLettersRequest, context: Context
    ) -> operator_pb2.RedriveDeadLettersResponse:
        actor = self._operator(context)
        v = Violations()
        v.request_id(request.request_id)
        if request.all == bool(request.entry_ids):
            v.add("entry_ids", "name entry ids, or set all (not both)")
        for i, eid in enumerate(request.entry_ids):
            if not valid_stream_id(eid):
                v.add(f"entry_ids[{i}]", "not an entry id")
        v.raise_if_any()
        count = await self.deliveries.redrive(
            actor, request.request_id, None if request.all else sorted(set(request.entry_ids))
        )
        return operator_pb2.RedriveDeadLettersResponse(redriven=count)
