"""Traces (OpenTelemetry) across the gateway -> agency hop and back.

Off unless configured (``SIGW_OTLP_ENDPOINT``, or a test's own ``TracerProvider``): then no interceptor is added
and nothing is measured. On: every gRPC call the gateway serves and makes gets a span
(``opentelemetry-instrumentation-grpc``'s interceptors, W3C ``traceparent`` in the metadata); a change's outbound
messages carry its trace context (``DeliverRequest.traceparent``, and the outbox entry); the delivery worker's call
is a child of it (linked to each message's, for a batch); and an agency that sends the context back as
``traceparent`` metadata on its answer (SendContactLetter, ...) puts that answer in the same trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = ["OpenTelemetryTracing", "otlp_provider"]

TRACEPARENT = "traceparent"


def otlp_provider(endpoint: str, service: str = "sigw") -> TracerProvider:
    """Spans exported over OTLP/gRPC to ``endpoint`` (a collector), in batches off the calls' path."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    return provider


class OpenTelemetryTracing:
    """Implements ``gateway.app.ports.Tracing`` on ``provider`` (never the process-wide one, so a test's spans
    stay its own)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = trace.get_tracer("sigw", tracer_provider=provider)

    def server_interceptors(self) -> list[Any]:
        return [aio_server_interceptor(tracer_provider=self.provider)]  # type: ignore[no-untyped-call]

    def client_interceptors(self) -> list[Any]:
        return list(aio_client_interceptors(tracer_provider=self.provider))  # type: ignore[no-untyped-call]

    def current(self) -> str:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier.get(TRACEPARENT, "")

    @contextlib.contextmanager
    def delivering(self, name: str, parents: list[str]) -> Iterator[None]:
        contexts = [propagate.extract({TRACEPARENT: p}) for p in parents if p]
        if len(contexts) == 1:  # one message: the delivery continues its trace
            with self.tracer.start_as_current_span(name, context=contexts[0], kind=trace.SpanKind.INTERNAL):
                yield
            return
        links = [trace.Link(span.get_span_context()) for c in contexts if (span := trace.get_current_span(c))]
        with self.tracer.start_as_current_span(name, links=links, kind=trace.SpanKind.INTERNAL):
            yield
