"""A broken variant of the simulated agency for the conformance kit's tests (``sigw agency-check``): two defects
the kit must find. It forgets which message ids it took (every repeat is applied again and answered
``duplicate=false``), and it answers ``INTERNAL`` (an unhandled error) where it should refuse a malformed delivery.
Passive (``act=False``): the kit has no gateway to answer."""

from __future__ import annotations

import grpc

from adapters.simulated_agency import Refusal, SimulatedAgency
from gateway._gen.sigw.v1 import agency_pb2, agency_pb2_grpc
from gateway.domain.participants import AgencyKey

__all__ = ["BrokenAgency", "serve"]


class BrokenAgency(SimulatedAgency):
    """The simulated agency, but it forgets the message ids it took and crashes (``INTERNAL``) on the deliveries
    it should refuse."""

    def __init__(self, key: AgencyKey) -> None:
        super().__init__(key, "127.0.0.1:1", act=False)

    def _delivery_refusal(self, request: agency_pb2.DeliverRequest) -> Refusal | None:
        refusal = super()._delivery_refusal(request)
        return None if refusal is None else (grpc.StatusCode.INTERNAL, "Exception calling application")

    async def _take(self, request: agency_pb2.DeliverRequest) -> agency_pb2.DeliverResult:
        self.stats.applied_ids.discard(request.message_id)
        return await super()._take(request)


async def serve(agency: SimulatedAgency) -> tuple[grpc.aio.Server, str]:
    """``agency`` on an ephemeral loopback port, plain text: the server and its address."""
    server = grpc.aio.server()
    agency_pb2_grpc.add_RegionAgencyServiceServicer_to_server(agency, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"
