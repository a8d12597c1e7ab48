"""TransferService: validate, identify the caller, call the service layer, convert the answer."""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from gateway._gen.sigw.v1 import transfer_pb2, transfer_pb2_grpc
from gateway.api.identity import IdentityResolver
from gateway.api.limits import StatusQueryGuard
from gateway.api.settlements import agency_timeout
from gateway.app.transfers import TransferService
from gateway.domain import access, idnumber
from gateway.domain.errors import PermissionDenied
from gateway.domain.participants import Role
from gateway.domain.transfer import machine
from gateway.domain.transfer.model import SHANGHAI, Transfer
from gateway.wire import transfers as convert
from gateway.wire.transfers import Violations

Context = Any  # grpc.aio.ServicerContext

MAX_PAGE = 100
DEFAULT_PAGE = 20
WATCH_POLL_MS = 1000


class TransferServicer(transfer_pb2_grpc.TransferServiceServicer):
    def __init__(self, service: TransferService, identity: IdentityResolver, status_guard: StatusQueryGuard) -> None:
        self.service = service
        self.identity = identity
        self.status_guard = status_guard

    def _today(self) -> Any:
        return self.service.clock().astimezone(SHANGHAI).date()

    async def _view(self, transfer: Transfer, with_timeline: bool = True) -> transfer_pb2.Transfer:
        timeline = await self.service.timeline(transfer.transfer_id) if with_timeline else None
        return convert.transfer_to(transfer, self._today(), timeline)

    async def CreateTransfer(
        self, request: transfer_pb2.CreateTransferRequest, context: Context
    ) -> transfer_pb2.CreateTransferResponse:
        actor = self.identity.caller(context)
        application = convert.application_from(request)
        transfer = await self.service.create(actor, request.request_id, convert.fingerprint(request), application)
        return transfer_pb2.CreateTransferResponse(transfer=await self._view(transfer))

    async def _act(
        self, request: Any, context: Context, decide: Any, v: Violations | None = None, record_refusal: Any = None
    ) -> transfer_pb2.Transfer:
        actor = self.identity.caller(context)
        v = v or Violations()
        v.request_id(request.request_id)
        v.transfer_id(request.transfer_id)
        v.raise_if_any()
        transfer = await self.service.transition(
            actor,
            request.request_id,
            convert.fingerprint(request),
            request.transfer_id,
            lambda t, now: decide(t, actor, now),
            record_refusal=record_refusal,
        )
        return await self._view(transfer)

    async def SendContactLetter(
        self, request: transfer_pb2.SendContactLetterRequest, context: Context
    ) -> transfer_pb2.SendContactLetterResponse:
        v = Violations()
        v.text("letter_number", request.letter_number, limit=64)
        v.text("note", request.note, limit=convert.MAX_NOTE)
        policy = self.service.policy
        decide = partial(
            machine.send_contact_letter, policy=policy, letter_number=request.letter_number, note=request.note
        )
        return transfer_pb2.SendContactLetterResponse(transfer=await self._act(request, context, decide, v))

    async def SendTransferInfo(
        self, request: transfer_pb2.SendTransferInfoRequest, context: Context
    ) -> transfer_pb2.SendTransferInfoResponse:
        v = Violations()
        if not request.HasField("info"):
            v.add("info", "required")
        info = convert.info_from(request.info, v)
        v.text("note", request.note, limit=convert.MAX_NOTE)
        actor_of: dict[str, Any] = {}

        def decide(t: Transfer, actor: Any, now: Any) -> Any:
            actor_of["actor"] = actor
            return machine.send_transfer_info(t, actor, now, self.service.policy, info=info, note=request.note)

        def refuse(t: Transfer, now: Any, error: Any) -> Any:
            return machine.refuse_transfer_info(t, actor_of["actor"], now, error)

        return transfer_pb2.SendTransferInfoResponse(
            transfer=await self._act(request, context, decide, v, record_refusal=refuse)
        )

    async def CompleteTransfer(
        self, request: transfer_pb2.CompleteTransferRequest, context: Context
    ) -> transfer_pb2.CompleteTransferResponse:
        v = Violations()
        v.text("note", request.note, limit=convert.MAX_NOTE)
        decide = partial(machine.complete, note=request.note)
        return transfer_pb2.CompleteTransferResponse(transfer=await self._act(request, context, decide, v))

    async def RejectTransfer(
        self, request: transfer_pb2.RejectTransferRequest, context: Context
    ) -> transfer_pb2.RejectTransferResponse:
        v = Violations()
        v.text("reason", request.reason, limit=convert.MAX_NOTE, required=True)
        decide = partial(machine.reject, reason=request.reason)
        return transfer_pb2.RejectTransferResponse(transfer=await self._act(request, context, decide, v))

    async def CancelTransfer(
        self, request: transfer_pb2.CancelTransferRequest, context: Context
    ) -> transfer_pb2.CancelTransferResponse:
        v = Violations()
        v.text("reason", request.reason, limit=convert.MAX_NOTE, required=True)
        decide = partial(machine.cancel, reason=request.reason)
        return transfer_pb2.CancelTransferResponse(transfer=await self._act(request, context, decide, v))

    async def OpenTemporaryAccount(
        self, request: transfer_pb2.OpenTemporaryAccountRequest, context: Context
    ) -> transfer_pb2.OpenTemporaryAccountResponse:
        v = Violations()
        v.text("account_number", request.account_number, limit=64)
        v.text("note", request.note, limit=convert.MAX_NOTE)
        decide = partial(machine.open_temporary_account, account_number=request.account_number, note=request.note)
        return transfer_pb2.OpenTemporaryAccountResponse(transfer=await self._act(request, context, decide, v))

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
        v.text("person.name", request.person.name, limit=convert.MAX_NAME, required=request.start_collection)
        v.region("hukou_region", request.hukou_region)
        if len(request.region_codes) > 400:
            v.add("region_codes", "at most 400 regions")
        for i, code in enumerate(request.region_codes[:400]):
            v.region(f"region_codes[{i}]", code)
        v.raise_if_any()
        answer = await self.service.paying_region(
            actor,
            id_number=request.person.id_number,
            name=request.person.name,
            hukou_region=request.hukou_region,
            regions=list(request.region_codes),
            start_collection=request.start_collection,
            request_id=request.request_id,
            fingerprint=convert.fingerprint(request),
            timeout_s=agency_timeout(context),
        )
        today = self._today()
        return convert.paying_region_to(
            answer.decision, answer.periods, [convert.transfer_to(t, today) for t in answer.collections]
        )

    async def GetTransfer(
        self, request: transfer_pb2.GetTransferRequest, context: Context
    ) -> transfer_pb2.GetTransferResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.transfer_id(request.transfer_id)
        v.raise_if_any()
        transfer = await self.service.read(actor, request.transfer_id)
        return transfer_pb2.GetTransferResponse(transfer=await self._view(transfer))

    async def ListTransfers(
        self, request: transfer_pb2.ListTransfersRequest, context: Context
    ) -> transfer_pb2.ListTransfersResponse:
        actor = self.identity.caller(context)
        v = Violations()
        v.region("region_code", request.region_code)
        if not 0 <= request.page_size <= MAX_PAGE:
            v.add("page_size", f"must be 0-{MAX_PAGE}")
        if request.page_token and not _valid_cursor(request.page_token):
            v.add("page_token", "not a token from a previous page")
        state = convert.state_filter(request.state, v)
        kind = convert.kind_filter(request.kind, v)
        v.raise_if_any()
        agency_type = access.may_list(actor, request.region_code)
        page, cursor = await self.service.list_region(
            request.region_code,
            request.page_token or None,
            request.page_size or DEFAULT_PAGE,
            state=state,
            kind=kind,
            overdue_only=request.overdue_only,
            agency_type=agency_type,
        )
        today = self._today()
        return transfer_pb2.ListTransfersResponse(
            transfers=[convert.transfer_to(t, today) for t in page], next_page_token=cursor or ""
        )

    async def WatchTransfer(
        self, request: transfer_pb2.WatchTransferRequest, context: Context
    ) -> AsyncIterator[transfer_pb2.WatchTransferResponse]:
        actor = self.identity.caller(context)
        v = Violations()
        v.transfer_id(request.transfer_id)
        if request.after_event_id and not _valid_event_id(request.after_event_id):
            v.add("after_event_id", "not an event id")
        v.raise_if_any()
        transfer = await self.service.read(actor, request.transfer_id)
        after = request.after_event_id or "0"
        while True:
            events = await self.service.store.wait_events(transfer.transfer_id, after, WATCH_POLL_MS)
            for event_id, event in events:
                after = event_id
                yield transfer_pb2.WatchTransferResponse(
                    event=convert.event_to(event_id, event), state=transfer_pb2.TransferState.ValueType(event.to_state)
                )
                if event.to_state.ended:
                    return
            if context.cancelled() or context.done():
                return
            await asyncio.sleep(0)

    async def QueryTransferStatus(
        self, request: transfer_pb2.QueryTransferStatusRequest, context: Context
    ) -> transfer_pb2.QueryTransferStatusResponse:
        actor = self.identity.caller(context)
        if actor.role not in (Role.PORTAL, Role.OPERATOR):
            raise PermissionDenied(
                reason="NOT_A_PORTAL", message="applicants' status queries come through a portal participant"
            )
        v = Violations()
        v.transfer_id(request.transfer_id)
        error = idnumber.validation_error(request.id_number)
        if error:
            v.add("id_number", error)
        v.raise_if_any()
        portal = str(actor)
        await self.status_guard.check(portal, request.transfer_id)
        transfer = await self.service.store.get(request.transfer_id)
        if transfer is None or not _same(transfer.id_number, request.id_number):
            await self.status_guard.failed(portal, request.transfer_id)
            raise access.not_found(request.transfer_id)
        return transfer_pb2.QueryTransferStatusResponse(transfer=await self._view(transfer))


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


_CURSOR = re.compile(r"[0-9]{13}:T[0-9]{2}-[0-9]{8}-[0-9A-F]{8}")


def _valid_cursor(token: str) -> bool:
    return bool(_CURSOR.fullmatch(token))


def _valid_event_id(event_id: str) -> bool:
    return convert.valid_stream_id(event_id)
