"""The gateway's client for the regions' agencies (``RegionAgencyService``): one channel per endpoint, opened on
first use. Implements ``gateway.app.ports.AgencyGateway``: the use cases and the dispatcher speak domain records
to it and get ``AgencyCallFailed`` back for any call an agency did not answer as asked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway._gen.sigw.v1 import agency_pb2, agency_pb2_grpc, common_pb2, portal_pb2, settlement_pb2
from gateway.app.ports import AgencyCallFailed
from gateway.domain.participants import AgencyKey, AgencyType, Destination, PortalKey, participant_of
from gateway.domain.regions import Registry
from gateway.domain.settlement.records import Bill, CredentialType, Figures, SettlementRecord
from gateway.domain.settlement.split import FilingStatus
from gateway.domain.settlement.visit import InsuredPerson
from gateway.domain.transfer.relationship import ContributionPeriod
from gateway.security.pki import participant_host
from gateway.wire import settlements as wire
from gateway.wire.transfers import period_from

__all__ = ["AgencyClients", "failure"]

# Transport-level retries for UNAVAILABLE belong to gRPC itself (a connection that could not be made);
# everything above that is the dispatcher's policy (gateway.dispatch.retry).
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "sigw.v1.RegionAgencyService"}, {"service": "sigw.v1.NotifyService"}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)
_DELIVER = "/sigw.v1.RegionAgencyService/Deliver"
_DELIVER_BATCH = "/sigw.v1.RegionAgencyService/DeliverBatch"
_NOTIFY = "/sigw.v1.NotifyService/Notify"
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _outcome(result: agency_pb2.DeliverResult) -> bool | AgencyCallFailed:
    if result.code == 0:
        return result.duplicate
    delay = result.retry_delay.seconds + result.retry_delay.nanos / 1e9 if result.HasField("retry_delay") else None
    return AgencyCallFailed(_CODE_NAMES.get(result.code, "UNKNOWN"), result.detail, delay)


def failure(error: grpc.aio.AioRpcError) -> AgencyCallFailed:
    """The agency's failed call, with its RetryInfo delay and ErrorInfo reason when it sent them."""
    retry_after, reason = None, ""
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            retry_after = float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            error_info = error_details_pb2.ErrorInfo()
            detail.Unpack(error_info)
            reason = error_info.reason
    return AgencyCallFailed(error.code().name, error.details() or "", retry_after, reason)


class AgencyClients:
    """Channels to the registry's agencies, over mutual TLS with the gateway's certificate (plain text only for
    ``credentials=None``, in development)."""

    def __init__(
        self,
        registry: Registry,
        credentials: grpc.ChannelCredentials | None = None,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:
        self.registry = registry
        self._channels: dict[tuple[str, Destination], grpc.aio.Channel] = {}
        self._credentials = credentials
        self._interceptors = list(interceptors)
        """The tracing interceptors, when the gateway traces."""

    def _channel(self, endpoint: str, destination: Destination) -> grpc.aio.Channel:
        """The channel to ``destination`` at ``endpoint``; over TLS its certificate must name ``destination``
        (``pki.participant_host``), so no other participant's certificate passes for it."""
        channel = self._channels.get((endpoint, destination))
        if channel is None:
            options: list[tuple[str, Any]] = [("grpc.service_config", _SERVICE_CONFIG), ("grpc.enable_retries", 1)]
            if self._credentials is not None:
                options.append(("grpc.ssl_target_name_override", participant_host(participant_of(destination))))
            channel = (
                grpc.aio.secure_channel(endpoint, self._credentials, options=options, interceptors=self._interceptors)
                if self._credentials is not None
                else grpc.aio.insecure_channel(endpoint, options=options, interceptors=self._interceptors)
            )
            self._channels[endpoint, destination] = channel
        return channel

    def _stub(self, agency: AgencyKey) -> agency_pb2_grpc.RegionAgencyServiceAsyncStub:
        endpoint = self.registry.endpoint(agency)
        if endpoint is None:
            raise AgencyCallFailed("NOT_FOUND", f"no endpoint for agency {agency}")
        return agency_pb2_grpc.RegionAgencyServiceStub(self._channel(endpoint, agency))

    def hrss_regions(self) -> list[str]:
        return sorted(a.region for a in self.registry.agencies() if a.agency_type is AgencyType.HRSS)

    def has_healthcare_agency(self, region: str) -> bool:
        return self.registry.endpoint(AgencyKey(region, AgencyType.HEALTHCARE_SECURITY)) is not None

    async def deliver(self, destination: Destination, body: bytes, timeout_s: float) -> bool:
        """Deliver one encoded ``DeliverRequest`` to an agency (or ``NotifyRequest`` to a portal); True when it
        already had it."""
        endpoint = self.registry.endpoint(destination)
        if endpoint is None:
            raise AgencyCallFailed("NOT_FOUND", f"no endpoint for {destination}")
        channel = self._channel(endpoint, destination)
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, agency_pb2.DeliverResponse | portal_pb2.NotifyResponse] = (
            channel.unary_unary(
                _NOTIFY, request_serializer=None, response_deserializer=portal_pb2.NotifyResponse.FromString
            )
            if isinstance(destination, PortalKey)
            else channel.unary_unary(
                _DELIVER, request_serializer=None, response_deserializer=agency_pb2.DeliverResponse.FromString
            )
        )
        try:
            reply = await call(body, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise failure(error) from error
        return bool(reply.duplicate)

    async def deliver_batch(
        self, destination: Destination, bodies: list[bytes], timeout_s: float
    ) -> list[bool | AgencyCallFailed]:
        """Deliver encoded ``DeliverRequest``s in one ``DeliverBatch`` call: for each, whether the agency already
        had it, or how it failed."""
        endpoint = self.registry.endpoint(destination)
        if endpoint is None or isinstance(destination, PortalKey):
            raise AgencyCallFailed("NOT_FOUND", f"no batch endpoint for {destination}")
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, agency_pb2.DeliverBatchResponse] = self._channel(
            endpoint, destination
        ).unary_unary(
            _DELIVER_BATCH, request_serializer=None, response_deserializer=agency_pb2.DeliverBatchResponse.FromString
        )
        # The request is the messages' encodings, each as field 1 (``messages``) with its length: no re-encoding.
        request = b"".join(b"\n" + _varint(len(body)) + body for body in bodies)
        try:
            reply: agency_pb2.DeliverBatchResponse = await call(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise failure(error) from error
        if len(reply.results) != len(bodies):
            raise AgencyCallFailed("INTERNAL", f"{len(reply.results)} results for {len(bodies)} messages")
        return [_outcome(r) for r in reply.results]

    async def compute_settlement(
        self, bill: Bill, filing: FilingStatus, *, commit: bool, settlement_id: str, timeout_s: float
    ) -> Figures:
        request = agency_pb2.ComputeSettlementRequest(
            bill=wire.bill_to(bill),
            filing_status=settlement_pb2.FilingStatus.ValueType(filing),
            commit=commit,
            settlement_id=settlement_id,
        )
        stub = self._stub(AgencyKey(bill.insured_region, AgencyType.HEALTHCARE_SECURITY))
        try:
            reply: agency_pb2.ComputeSettlementResponse = await stub.ComputeSettlement(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise failure(error) from error
        return wire.figures_from(reply.split)

    async def refund_settlement(self, msgid: str, settlement: SettlementRecord, timeout_s: float) -> bool:
        request = agency_pb2.RefundSettlementRequest(
            msgid=msgid,
            settlement_id=settlement.settlement_id,
            bill=wire.bill_to(settlement.bill),
            split=wire.split_to(settlement.figures),
        )
        stub = self._stub(AgencyKey(settlement.insured_region, AgencyType.HEALTHCARE_SECURITY))
        try:
            reply = await stub.RefundSettlement(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise failure(error) from error
        return bool(reply.duplicate)

    async def person_info(
        self,
        region: str,
        id_number: str,
        name: str,
        credential: CredentialType,
        treatment_region: str,
        timeout_s: float,
    ) -> InsuredPerson:
        request = agency_pb2.GetPersonInfoRequest(
            person=common_pb2.Person(id_number=id_number, name=name),
            credential_type=settlement_pb2.CredentialType.ValueType(credential),
            treatment_region=treatment_region,
        )
        try:
            reply = await self._stub(AgencyKey(region, AgencyType.HEALTHCARE_SECURITY)).GetPersonInfo(
                request, timeout=timeout_s
            )
        except grpc.aio.AioRpcError as error:
            raise failure(error) from error
        try:
            return wire.person_from(reply, id_number, region)
        except ValueError as bad:
            raise AgencyCallFailed(
                "UNAVAILABLE", f"a malformed person answer: {bad}", 5.0, "AGENCY_ANSWER_INCONSISTENT"
            ) from bad

    async def contribution_periods(
        self, region: str, id_number: str, name: str, timeout_s: float
    ) -> list[ContributionPeriod]:
        request = agency_pb2.ReportContributionPeriodsRequest(person=common_pb2.Person(id_number=id_number, name=name))
        try:
            reply = await self._stub(AgencyKey(region, AgencyType.HRSS)).ReportContributionPeriods(
                request, timeout=timeout_s
            )
            # Each agency answers for its own region only; anything else it sends is ignored.
            return [period_from(p) for p in reply.periods if p.region_code == region]
        except grpc.aio.AioRpcError as error:
            raise failure(error) from error
        except ValueError as bad:
            raise AgencyCallFailed(
                "UNAVAILABLE", f"a malformed period: {bad}", 5.0, "AGENCY_ANSWER_INCONSISTENT"
            ) from bad

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
