"""The one place where sigw errors become gRPC status: ``google.rpc.Status`` with ``ErrorInfo`` (domain
``sigw``), ``BadRequest`` field violations for bad input, and ``RetryInfo`` when a retry may succeed."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.domain import idnumber
from gateway.domain.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SigwError,
    Unauthenticated,
    Unavailable,
)
from gateway.domain.reasons import CATALOGUE

__all__ = ["DOMAIN", "LOCALE", "to_status"]

DOMAIN = "sigw"
LOCALE = "zh-CN"

_CODES: list[tuple[type[SigwError], int]] = [
    (InvalidArgument, code_pb2.INVALID_ARGUMENT),
    (FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (NotFound, code_pb2.NOT_FOUND),
    (AlreadyExists, code_pb2.ALREADY_EXISTS),
    (PermissionDenied, code_pb2.PERMISSION_DENIED),
    (Unauthenticated, code_pb2.UNAUTHENTICATED),
    (Aborted, code_pb2.ABORTED),
    (Unavailable, code_pb2.UNAVAILABLE),
    (ResourceExhausted, code_pb2.RESOURCE_EXHAUSTED),
]


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(error: SigwError) -> grpc.Status:
    """The gRPC status for a sigw error; every text passes through the ID-number scrubber."""
    code = next((c for cls, c in _CODES if isinstance(error, cls)), code_pb2.INTERNAL)
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=DOMAIN, metadata={k: idnumber.scrub(v) for k, v in error.metadata.items()}
            )
        )
    ]
    reason = CATALOGUE.get(error.reason)
    if reason is not None:  # AIP-193: the message for a person, next to the English one
        details.append(_pack(error_details_pb2.LocalizedMessage(locale=LOCALE, message=reason.zh)))
    if error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=idnumber.scrub(v.description)
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    if isinstance(error, Unavailable | ResourceExhausted):
        seconds = int(error.retry_after_s)
        delay = duration_pb2.Duration(seconds=seconds, nanos=int((error.retry_after_s - seconds) * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=code, message=idnumber.scrub(error.message), details=details)
    )
    return status
