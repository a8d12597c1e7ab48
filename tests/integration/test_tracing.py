"""Traces across the gateway -> agency hop and back (OpenTelemetry, the SDK's in-memory exporter): one transfer,
from its creation through each agency's answer to its completion, is one trace."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway._gen.sigw.v1 import transfer_pb2
from tests.conftest import Demo, FakeClock, as_, start_demo
from tests.helpers import eventually, wait_for_state
from tests.integration.test_transfer_flow import create_request

S = transfer_pb2
SERVICE = "/sigw.v1.TransferService/"


async def _stop(demo: Demo) -> None:
    await demo.channel.close()
    await demo.gateway.stop(grace_s=0.2)
    await demo.sims.stop()


def _named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_a_transfer_and_every_agencys_answer_are_one_trace(redis_url: str, clock: FakeClock) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    demo = await start_demo(redis_url, clock, tracer_provider=provider)  # the agencies answer by calling back
    try:
        created = await demo.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))
        await wait_for_state(demo.transfers, created.transfer.transfer_id, S.TRANSFER_STATE_COMPLETED)
        await eventually(lambda: _named(exporter.get_finished_spans(), SERVICE + "CompleteTransfer"))
    finally:
        await _stop(demo)
    spans = exporter.get_finished_spans()
    [root] = _named(spans, SERVICE + "CreateTransfer")
    assert root.kind is SpanKind.SERVER and root.parent is None
    trace_id = root.context.trace_id
    # each agency's answer came back with the message's traceparent and joined the trace
    for answer in ("SendContactLetter", "SendTransferInfo", "CompleteTransfer"):
        [span] = _named(spans, SERVICE + answer)
        assert span.context.trace_id == trace_id and span.parent is not None, answer
    # and each hop to an agency is in it: the worker's delivery, and its Deliver call beneath it
    deliveries = [s for s in spans if s.name.startswith("deliver to ")]
    calls = [s for s in spans if s.kind is SpanKind.CLIENT and s.name.endswith("/Deliver")]
    assert deliveries and calls and all(s.context.trace_id == trace_id for s in [*deliveries, *calls])
    delivery_ids = {d.context.span_id for d in deliveries}
    assert all(c.parent is not None and c.parent.span_id in delivery_ids for c in calls)


async def test_without_tracing_a_message_carries_no_trace_context(redis_url: str, clock: FakeClock) -> None:
    demo = await start_demo(redis_url, clock, act=False)
    try:
        await demo.transfers.CreateTransfer(create_request(), metadata=as_("agency:310000:hrss"))
        agency = demo.agency("310000")
        await eventually(lambda: agency.received)
        assert agency.received[0].traceparent == ""
    finally:
        await _stop(demo)
