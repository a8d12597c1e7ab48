"""The portal's ``NotifyService``: result notices from the gateway (Art. 16), each taken once by message id."""

from __future__ import annotations

import logging
from typing import Any, TypeAlias

import grpc

from adapters.portal.notices import NoticeBook
from gateway._gen.sigw.v1 import portal_pb2, portal_pb2_grpc
from gateway.domain import ids

__all__ = ["NotifyServicer"]

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

log = logging.getLogger("sigw.portal")


class NotifyServicer(portal_pb2_grpc.NotifyServiceServicer):
    def __init__(self, book: NoticeBook) -> None:
        self.book = book

    async def Notify(self, request: portal_pb2.NotifyRequest, context: Context) -> portal_pb2.NotifyResponse:
        notice = request.notice
        if not request.message_id or len(request.message_id) > 64:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "message_id: required, at most 64 characters")
        if not ids.TRANSFER_ID.fullmatch(notice.transfer_id) or not notice.text:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "notice: a transfer id and a text are required")
        taken = await self.book.take(request.message_id, notice)
        if taken:
            log.info("notice %s for transfer %s taken", request.message_id, notice.transfer_id)
        return portal_pb2.NotifyResponse(duplicate=not taken)
