"""TransferService: identify the caller, validate the request, call one use case, convert the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message

from gateway._gen.sigw.v1 import transfer_pb2, transfer_pb2_grpc
from gateway.api.identity import IdentityResolver
from gateway.api.limits import StreamLimit
from gateway.api.pages import PageTokens
from gateway.api.settlements import agency_timeout
from gateway.app.idempotency import RequestKey
from gateway.app.ports import StoredTransfer, timeline_position
from gateway.app.transfers import TransferService
from gateway.domain import access, idnumber
from gateway.domain.transfer.explain import Directory, explain
from gateway.wire import transfers as convert
from gateway.wire.validation import MAX_NAME, MAX_NOTE, Violations, fingerprint, valid_stream_id

__all__ = ["TransferServicer"]

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
MAX_PAGE = 100
DEFAULT_PAGE = 20
WATCH_POLL_S = 15.0
"""A watch re-reads its transfer at least this often, should a change notice be missed (rare: the process's one
reader re-subscribes after a reconnect, and a watch reads once more after subscribing). Every second, as it was,
2,000 open watches made 4,000 reads a second and a bystander's p99 forty times its idle value."""


def _step_key(v: Violations, request: Message, request_id: str, transfer_id: str) -> RequestKey:
    """The idempotency key of a step request, once its request and transfer ids are checked with the rest."""
    v.request_id(request_id)
    v.transfer_id(transfer_id)
    v.raise_if_any()
    return RequestKey(request_id, fingerprint(request))


class TransferServicer(transfer_pb2_grpc.TransferServiceServicer):
    def __init__(
        self,
        service: TransferService,
        identity: IdentityResolver,
        watches: StreamLimit,
        pages: PageTokens,
        directory: Directory,
    ) -> None:
        self.service = service
        self.identity = identity
        self.watches = watches
        self.pages = pages
        self.directory = directory

    def _view(self, stored: StoredTransfer) -> transfer_pb2.Transfer:
        return convert.transfer_to(stored.transfer, self.service.today(), list(stored.timeline))

    async def CreateTransfer(
        self, request: transfer_pb2.CreateTransferRequest, context: Context
    ) -> transfer_pb2.CreateTransferResponse:
        actor = self.identity.caller(context)
        application = convert.application_from(request)
        transfer = await self.service.create(actor, RequestKey(request.request_id, fingerprint(request)), application)
        return transfer_pb2.CreateTransferResponse(transfer=self._view(transfer))

    async def SendContactLetter(
        self, request: transfer_pb2.SendContactLetterRequest, context: Context
    ) -> transfer_pb2.SendContactLetterResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.text("letter_number", request.letter_number, limit=64)
        v.identifier("letter_number", request.letter_number)
        v.text("note", request.note, limit=MAX_NOTE)
        key = _step_key(v, request, request.request_id, request.transfer_id)
        transfer = await self.service.send_contact_letter(
            actor, key, request.transfer_id, letter_number=request.letter_number, note=request.note
        )
        return transfer_pb2.SendContactLetterResponse(transfer=self._view(transfer))

    async def OpenTemporaryAccount(
        self, request: transfer_pb2.OpenTemporaryAccountRequest, context: Context
    ) -> transfer_pb2.OpenTemporaryAccountResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.text("account_number", request.account_number, limit=64)
        v.identifier("account_number", request.account_number)
        v.text("note", request.note, limit=MAX_NOTE)
        key = _step_key(v, request, request.request_id, request.transfer_id)
        transfer = await self.service.open_temporary_account(
            actor, key, request.transfer_id, account_number=request.account_number, note=request.note
        )
        return transfer_pb2.OpenTemporaryAccountResponse(transfer=self._view(transfer))

    async def SendTransferInfo(
        self, request: transfer_pb2.SendTransferInfoRequest, context: Context
    ) -> transfer_pb2.SendTransferInfoResponse:
        actor = self.identity.caller(context)
        v = Violations()
        if not request.HasField("info"):
            v.add("info", "required")
        info = convert.info_from(request.info, v)
        v.text("note", request.note, limit=MAX_NOTE)
        key = _step_key(v, request, request.request_id, request.transfer_id)
        transfer = await self.service.send_transfer_info(actor, key, request.transfer_id, info=info, note=request.note)
        return transfer_pb2.SendTransferInfoResponse(transfer=self._view(transfer))

    async def CompleteTransfer(
        self, request: transfer_pb2.CompleteTransferRequest, context: Context
    ) -> transfer_pb2.CompleteTransferResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.text("note", request.note, limit=MAX_NOTE)
        key = _step_key(v, request, request.request_id, request.transfer_id)
        transfer = await self.service.complete(actor, key, request.transfer_id, note=request.note)
        return transfer_pb2.CompleteTransferResponse(transfer=self._view(transfer))

    async def RejectTransfer(
        self, request: transfer_pb2.RejectTransferRequest, context: Context
    ) -> transfer_pb2.RejectTransferResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.text("reason", request.reason, limit=MAX_NOTE, required=True)
        key = _step_key(v, request, request.request_id, request.transfer_id)
        transfer = await self.service.reject(actor, key, request.transfer_id, reason=request.reason)
        return transfer_pb2.RejectTransferResponse(transfer=self._view(transfer))

    async def CancelTransfer(
        self, request: transfer_pb2.CancelTransferRequest, context: Context
    ) -> transfer_pb2.CancelTransferResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.text("reason", request.reason, limit=MAX_NOTE, required=True)
        key = _step_key(v, request, request.request_id, request.transfer_id)
        transfer = await self.service.cancel(actor, key, request.transfer_id, reason=request.reason)
        return transfer_pb2.CancelTransferResponse(transfer=self._view(transfer))

    async def GetTransfer(
        self, request: transfer_pb2.GetTransferRequest, context: Context
    ) -> transfer_pb2.GetTransferResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.transfer_id(request.transfer_id)
        v.raise_if_any()
        transfer = await self.service.read(actor, request.transfer_id)
        return transfer_pb2.GetTransferResponse(transfer=self._view(transfer))

    async def ListTransfers(
        self, request: transfer_pb2.ListTransfersRequest, context: Context
    ) -> transfer_pb2.ListTransfersResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.region("region_code", request.region_code)
        if not 0 <= request.page_size <= MAX_PAGE:
            v.add("page_size", f"must be 0-{MAX_PAGE}")
        state = convert.state_filter(request.state, v)
        kind = convert.kind_filter(request.kind, v)
        v.raise_if_any()
        # The token is good for this caller and these filters only (AIP-158).
        scope = f"{actor}|{request.region_code}|{request.state}|{request.kind}|{request.overdue_only}"
        cursor = self.pages.cursor(request.page_token, scope)
        page, after = await self.service.list_region(
            actor,
            request.region_code,
            cursor,
            request.page_size or DEFAULT_PAGE,
            state=state,
            kind=kind,
            overdue_only=request.overdue_only,
        )
        today = self.service.today()
        return transfer_pb2.ListTransfersResponse(
            transfers=[convert.transfer_to(t, today) for t in page], next_page_token=self.pages.issue(after, scope)
        )

    async def WatchTransfer(
        self, request: transfer_pb2.WatchTransferRequest, context: Context
    ) -> AsyncIterator[transfer_pb2.WatchTransferResponse]:
        actor = self.identity.caller(context)
        v = Violations()
        v.transfer_id(request.transfer_id)
        if request.after_event_id and not valid_stream_id(request.after_event_id):
            v.add("after_event_id", "not an event id")
        v.raise_if_any()
        with self.watches.hold(str(actor)):
            stored = await self.service.read(actor, request.transfer_id)
            seen = timeline_position(request.after_event_id)
            while True:
                for event_id, event in stored.timeline[seen:]:
                    seen += 1
                    yield transfer_pb2.WatchTransferResponse(
                        event=convert.event_to(event_id, event),
                        state=transfer_pb2.TransferState.ValueType(event.to_state),
                    )
                    if event.to_state.ended:
                        return
                if stored.transfer.state.ended or context.cancelled() or context.done():
                    return
                stored = await self.service.follow(stored, WATCH_POLL_S)

    async def QueryTransferStatus(
        self, request: transfer_pb2.QueryTransferStatusRequest, context: Context
    ) -> transfer_pb2.QueryTransferStatusResponse:
        actor = self.identity.caller(context)
        access.may_query_status(actor)  # before the request is looked at
        v = Violations()
        v.transfer_id(request.transfer_id)
        error = idnumber.validation_error(request.id_number)
        if error:
            v.add("id_number", error)
        v.raise_if_any()
        stored = await self.service.query_status(actor, request.transfer_id, request.id_number)
        view = explain(stored.transfer, list(stored.timeline), self.service.today(), self.directory)
        return transfer_pb2.QueryTransferStatusResponse(
            transfer=self._view(stored), status=convert.applicant_status_to(view)
        )

    async def DeterminePayingRegion(
        self, request: transfer_pb2.DeterminePayingRegionRequest, context: Context
    ) -> transfer_pb2.DeterminePayingRegionResponse:
        actor = self.identity.caller(context)
        v = Violations()
        if request.start_collection or request.request_id:
            v.request_id(request.request_id)
        error = idnumber.validation_error(request.person.id_number)
        if error:
            v.add("person.id_number", error)
        v.text("person.name", request.person.name, limit=MAX_NAME, required=request.start_collection)
        v.region("hukou_region", request.hukou_region)
        if len(request.region_codes) > 400:
            v.add("region_codes", "at most 400 regions")
        for i, code in enumerate(request.region_codes[:400]):
            v.region(f"region_codes[{i}]", code)
        v.raise_if_any()
        answer = await self.service.paying_region(
            actor,
            RequestKey(request.request_id, fingerprint(request)),
            id_number=request.person.id_number,
            name=request.person.name,
            hukou_region=request.hukou_region,
            regions=list(request.region_codes),
            start_collection=request.start_collection,
            timeout_s=agency_timeout(context),
        )
        today = self.service.today()
        return convert.paying_region_to(
            answer.decision, answer.periods, [convert.transfer_to(t, today) for t in answer.collections]
        )
