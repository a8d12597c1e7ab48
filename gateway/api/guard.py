"""What every call of sigw's own services goes through: the caller's rate limit, undecodable bodies refused,
sigw errors mapped to status (via ``status.to_status``), and the gRPC server metrics under the names
go-grpc-prometheus uses.

The guard wraps each method's handler once, when the services are added to the server (``add_guarded``), not
per call as a ``grpc.aio.ServerInterceptor`` would: no handler is built per call, and the wrapped handlers stay on
gRPC's registered-method fast path. Health and reflection are added as they are (no rate limit on probes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeAlias

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.api.limits import RateLimiter
from gateway.domain import idnumber
from gateway.domain.errors import FieldViolation, SigwError, invalid
from gateway.wire.status import to_status

__all__ = ["CallGuard", "GrpcMetrics", "Handler"]

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


class _Collected:
    """Stands in for the server while generated code adds a servicer: keeps its method handlers."""

    def __init__(self) -> None:
        self.services: dict[str, dict[str, Handler]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # the same handlers come again, by name, through add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        self.services[service] = handlers


class CallGuard:
    """Every call: rate limit per caller, undecodable bodies refused, errors mapped, metrics recorded."""

    def __init__(
        self,
        metrics: GrpcMetrics,
        limiter: RateLimiter | None = None,
        caller_key: Callable[[Any], str] | None = None,
        *,
        log_calls: bool = False,
    ) -> None:
        self.metrics = metrics
        self.limiter = limiter
        self.caller_key = caller_key
        self.log_calls = log_calls
        """Log every call; otherwise only the calls that did not end OK."""

    def add_guarded(self, server: grpc.aio.Server, add: Callable[[Any, Any], None], servicer: Any) -> None:
        """``add(servicer, server)`` (a generated ``add_…Servicer_to_server``) with every method guarded."""
        collected = _Collected()
        add(servicer, collected)
        for service, handlers in collected.services.items():
            guarded = {name: self.guard(handler, service, name) for name, handler in handlers.items()}
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, guarded),))
            server.add_registered_method_handlers(service, guarded)

    def _admit(self, request: Any, context: Any) -> None:
        _refuse_undecodable(request)
        if self.limiter is not None and self.caller_key is not None:
            self.limiter.check(self.caller_key(context))

    def guard(self, handler: Handler, service: str, method: str) -> Handler:
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
        raise ValueError(f"{service}/{method}: only unary and server-streaming methods are guarded")

    def _observe(
        self, kind: str, service: str, method: str, code: grpc.StatusCode, started: float, request: Any, context: Any
    ) -> None:
        labels = (kind, service, method, code.name)
        seconds = time.perf_counter() - started
        self.metrics.handled.labels(*labels).inc()
        self.metrics.seconds.labels(*labels).observe(seconds)
        if code is grpc.StatusCode.OK and not self.log_calls:
            return
        call = {
            "request_id": _request_id(request, context),
            "participant": self.caller_key(context) if self.caller_key is not None else "",
            "method": f"/{service}/{method}",
            "code": code.name,
            "duration_ms": round(seconds * 1000, 3),
        }
        log.info("call %s %s", method, code.name, extra=call)

    async def _fail(self, context: Any, exc: BaseException) -> grpc.StatusCode:
        """Abort the call for ``exc``; return the code it ends with."""
        if isinstance(exc, SigwError):
            status = to_status(exc)
            await context.abort_with_status(status)
        log.error("internal error: %s", idnumber.scrub(repr(exc)))
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("unreachable")  # abort always raises

    def _unary(self, behavior: Any, service: str, method: str) -> Any:
        started_total = self.metrics.started.labels("unary", service, method)

        async def wrapped(request: Any, context: Any) -> Any:
            started_total.inc()
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
                self._observe("unary", service, method, code, started, request, context)

        return wrapped

    def _stream(self, behavior: Any, service: str, method: str) -> Any:
        started_total = self.metrics.started.labels("server_stream", service, method)

        async def wrapped(request: Any, context: Any) -> AsyncIterator[Any]:
            started_total.inc()
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
                self._observe("server_stream", service, method, code, started, request, context)

        return wrapped


REQUEST_ID_METADATA_KEY = "x-request-id"


def _request_id(request: Any, context: Any) -> str:
    """The call's request id in the logs: the caller's ``x-request-id``, else the request's own idempotency key
    (``request_id`` or ``msgid``), else empty."""
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_METADATA_KEY:
            return str(value)[:128]
    return str(getattr(request, "request_id", "") or getattr(request, "msgid", ""))[:128]


def _code_of(exc: BaseException, context: Any) -> grpc.StatusCode:
    if isinstance(exc, SigwError):
        return to_status(exc).code
    if isinstance(exc, grpc.aio.AbortError):
        return context.code() or grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.INTERNAL
