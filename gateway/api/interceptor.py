"""The server interceptor: maps sigw errors to status (via ``status.to_status``) and records the gRPC server
metrics under the names go-grpc-prometheus uses."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.api.limits import RateLimiter
from gateway.domain import idnumber
from gateway.domain.errors import FieldViolation, SigwError, invalid
from gateway.wire.status import to_status

__all__ = ["GrpcMetrics", "Handler", "ServerInterceptor"]

log = logging.getLogger("sigw.api")


class GrpcMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.started = Counter("grpc_server_started_total", "RPCs started on the server.", labels, registry=registry)
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by code.",
            [*labels, "grpc_code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "grpc_server_handling_seconds",
            "Response latency of RPCs handled.",
            [*labels, "grpc_code"],
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


def _split(full_method: str) -> tuple[str, str]:
    _, service, method = full_method.split("/", 2) if full_method.count("/") >= 2 else ("", "unknown", full_method)
    return service, method


class _Undecodable:
    """Stands in for a request body that is not a valid message, so the call answers INVALID_ARGUMENT (and is
    counted) instead of gRPC's own UNKNOWN."""


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def decode(body: bytes) -> Any:
        try:
            return deserializer(body)
        except Exception:  # any decoding failure of a hostile body
            return _Undecodable()

    return decode


def _refuse_undecodable(request: Any) -> None:
    if isinstance(request, _Undecodable):
        raise invalid(
            [FieldViolation("(request)", "not a valid protobuf message for this method")], reason="UNDECODABLE_REQUEST"
        )


Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Every call: rate limit per caller, undecodable bodies refused, errors mapped, metrics recorded."""

    def __init__(
        self, metrics: GrpcMetrics, limiter: RateLimiter | None = None, caller_key: Callable[[Any], str] | None = None
    ) -> None:
        self.metrics = metrics
        self.limiter = limiter
        self.caller_key = caller_key

    def _admit(self, request: Any, context: Any) -> None:
        _refuse_undecodable(request)
        if self.limiter is not None and self.caller_key is not None:
            self.limiter.check(self.caller_key(context))

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        service, method = _split(handler_call_details.method)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, service, method),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, service, method),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler

    def _observe(self, kind: str, service: str, method: str, code: grpc.StatusCode, started: float) -> None:
        labels = (kind, service, method, code.name)
        self.metrics.handled.labels(*labels).inc()
        self.metrics.seconds.labels(*labels).observe(time.perf_counter() - started)

    async def _fail(self, context: Any, exc: BaseException) -> grpc.StatusCode:
        """Abort the call for ``exc``; return the code it ends with."""
        if isinstance(exc, SigwError):
            status = to_status(exc)
            await context.abort_with_status(status)
        log.error("internal error: %s", idnumber.scrub(repr(exc)))
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("unreachable")  # abort always raises

    def _unary(self, behavior: Any, service: str, method: str) -> Any:
        async def wrapped(request: Any, context: Any) -> Any:
            self.metrics.started.labels("unary", service, method).inc()
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                self._admit(request, context)
                return await behavior(request, context)
            except Exception as exc:
                code = _code_of(exc, context)
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                await self._fail(context, exc)
            finally:
                self._observe("unary", service, method, code, started)

        return wrapped

    def _stream(self, behavior: Any, service: str, method: str) -> Any:
        async def wrapped(request: Any, context: Any) -> AsyncIterator[Any]:
            self.metrics.started.labels("server_stream", service, method).inc()
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                self._admit(request, context)
                async for item in behavior(request, context):
                    yield item
            except Exception as exc:
                code = _code_of(exc, context)
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                await self._fail(context, exc)
            finally:
                self._observe("server_stream", service, method, code, started)

        return wrapped


def _code_of(exc: BaseException, context: Any) -> grpc.StatusCode:
    if isinstance(exc, SigwError):
        return to_status(exc).code
    if isinstance(exc, grpc.aio.AbortError):
        return context.code() or grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.INTERNAL
