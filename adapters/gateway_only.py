"""The gateway's own peers answer the gateway only: a server interceptor for the services the gateway calls
(an agency's ``RegionAgencyService``, a portal's ``NotifyService``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from gateway.security import pki

__all__ = ["GatewayOnly"]


class GatewayOnly(grpc.aio.ServerInterceptor):
    """Refuse every call whose verified peer certificate is not the gateway's (``PERMISSION_DENIED``)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        behavior: Any = handler.unary_unary

        async def gateway_only(request: Any, context: Any) -> Any:
            if not pki.peer_is_gateway(context.auth_context() or {}):
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "this service answers the gateway only")
            return await behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(
            gateway_only,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
