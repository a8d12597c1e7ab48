"""The gateway's client for region agencies' ``RegionAgencyService``: one channel per endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway._gen.sigw.v1 import agency_pb2, agency_pb2_grpc, common_pb2
from gateway.config import Registry
from gateway.domain.errors import FieldViolation, Unavailable, invalid
from gateway.domain.transfer.model import AgencyKey, AgencyType
from gateway.domain.transfer.relationship import ContributionPeriod
from gateway.wire import transfers as convert

# Transport-level retries for UNAVAILABLE belong to gRPC itself (a connection that could not be made);
# everything above that is the dispatcher's policy (gateway.dispatch.retry).
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "sigw.v1.RegionAgencyService"}],
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


@dataclass(frozen=True)
class DeliveryFailed(Exception):
    """An agency did not take a message: its status code, detail, and its RetryInfo delay if it sent one."""

    code: grpc.StatusCode
    detail: str
    retry_after_s: float | None = None
    reason: str = ""
    """The ErrorInfo reason the agency gave, if any."""

    def __str__(self) -> str:
        return f"{self.code.name}: {self.detail}"


def failure(error: grpc.aio.AioRpcError) -> DeliveryFailed:
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
    return DeliveryFailed(error.code(), error.details() or "", retry_after, reason)


class AgencyClients:
    """Channels to agency endpoints, opened on first use and reused."""

    def __init__(self, credentials: grpc.ChannelCredentials | None = None) -> None:
        """With ``credentials`` (the gateway's certificate), every agency is called over mutual TLS."""
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._credentials = credentials

    def _stub(self, endpoint: str) -> agency_pb2_grpc.RegionAgencyServiceStub:
        channel = self._channels.get(endpoint)
        if channel is None and self._credentials is not None:
            channel = grpc.aio.secure_channel(
                endpoint,
                self._credentials,
                options=[("grpc.service_config", _SERVICE_CONFIG), ("grpc.enable_retries", 1)],
            )
            self._channels[endpoint] = channel
        if channel is None:
            channel = grpc.aio.insecure_channel(
                endpoint, options=[("grpc.service_config", _SERVICE_CONFIG), ("grpc.enable_retries", 1)]
            )
            self._channels[endpoint] = channel
        return agency_pb2_grpc.RegionAgencyServiceStub(channel)

    async def deliver(self, endpoint: str, request: agency_pb2.DeliverRequest, timeout_s: float) -> bool:
        """Deliver one message; True when the agency already had it. Raises ``DeliveryFailed``."""
        try:
            reply = await self._stub(endpoint).Deliver(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise failure(error) from error
        return bool(reply.duplicate)

    async def compute_settlement(
        self, endpoint: str, request: agency_pb2.ComputeSettlementRequest, timeout_s: float
    ) -> agency_pb2.ComputeSettlementResponse:
        try:
            reply: agency_pb2.ComputeSettlementResponse = await self._stub(endpoint).ComputeSettlement(
                request, timeout=timeout_s
            )
        except grpc.aio.AioRpcError as error:
            raise failure(error) from error
        return reply

    async def refund_settlement(
        self, endpoint: str, request: agency_pb2.RefundSettlementRequest, timeout_s: float
    ) -> bool:
        try:
            reply = await self._stub(endpoint).RefundSettlement(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise failure(error) from error
        return bool(reply.duplicate)

    async def report_contribution_periods(
        self, endpoint: str, request: agency_pb2.ReportContributionPeriodsRequest, timeout_s: float
    ) -> agency_pb2.ReportContributionPeriodsResponse:
        try:
            reply: agency_pb2.ReportContributionPeriodsResponse = await self._stub(endpoint).ReportContributionPeriods(
                request, timeout=timeout_s
            )
        except grpc.aio.AioRpcError as error:
            raise failure(error) from error
        return reply

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


class AgencyContributionRecords:
    """Asks the regions' HRSS agencies for a person's contribution periods (``ReportContributionPeriods``);
    implements ``gateway.service.ContributionRecords``."""

    def __init__(self, clients: AgencyClients, registry: Registry) -> None:
        self.clients = clients
        self.registry = registry

    def regions(self) -> list[str]:
        return sorted(a.region for a in self.registry.agencies() if a.agency_type is AgencyType.HRSS)

    async def periods(self, region: str, id_number: str, name: str, timeout_s: float) -> list[ContributionPeriod]:
        endpoint = self.registry.endpoint(AgencyKey(region, AgencyType.HRSS))
        if endpoint is None:
            raise invalid([FieldViolation("region_codes", f"unknown region {region}")], reason="UNKNOWN_REGION")
        request = agency_pb2.ReportContributionPeriodsRequest(person=common_pb2.Person(id_number=id_number, name=name))
        try:
            reply = await self.clients.report_contribution_periods(endpoint, request, timeout_s)
            # Each agency answers for its own region only; anything else it sends is ignored.
            return [convert.period_from(p) for p in reply.periods if p.region_code == region]
        except DeliveryFailed as failed:
            raise Unavailable(
                reason="AGENCY_UNAVAILABLE",
                message=f"region {region}'s HRSS agency did not report the contribution periods ({failed.code.name})",
                metadata={"region": region},
                retry_after_s=failed.retry_after_s or 1.0,
            ) from failed
        except ValueError as bad:
            raise Unavailable(
                reason="AGENCY_ANSWER_INCONSISTENT",
                message=f"region {region}'s HRSS agency reported a malformed period: {bad}",
                metadata={"region": region},
                retry_after_s=5.0,
            ) from bad
