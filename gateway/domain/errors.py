"""The exceptions sigw raises, independent of gRPC.

Domain and store code raise these; ``gateway.wire.status`` is the one place that turns them into
``google.rpc.Status`` answers. The tree::

    SigwError                      reason (UPPER_SNAKE_CASE), message, field violations, metadata
    ├── InvalidArgument            bad input: INVALID_ARGUMENT, with BadRequest field violations
    ├── FailedPrecondition         the rules or the current state forbid it: FAILED_PRECONDITION
    ├── NotFound                   NOT_FOUND
    ├── AlreadyExists              a request id reused with another payload: ALREADY_EXISTS
    ├── PermissionDenied           the caller may not do this: PERMISSION_DENIED
    ├── Unauthenticated            the caller is not known: UNAUTHENTICATED
    ├── Aborted                    lost a race with a concurrent change; retry: ABORTED
    ├── ResourceExhausted          the caller is over its rate limit; retry later: RESOURCE_EXHAUSTED
    └── Unavailable                a dependency (Redis, an agency) is down; retry later: UNAVAILABLE

Messages must never carry an unmasked ID number (see ``gateway.domain.idnumber.mask``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "MAX_VIOLATIONS",
    "Aborted",
    "AlreadyExists",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "SigwError",
    "Unauthenticated",
    "Unavailable",
    "invalid",
]


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path in the request (``person.id_number``) and what is wrong with it."""

    field: str
    description: str


@dataclass
class SigwError(Exception):
    """Base of every error sigw reports to a caller."""

    reason: str
    message: str
    violations: list[FieldViolation] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class InvalidArgument(SigwError):
    """The request itself is malformed."""


class FailedPrecondition(SigwError):
    """The request is well-formed but the rules or the object's state do not allow it."""


class NotFound(SigwError):
    """The object does not exist (or the caller may not know that it does)."""


class AlreadyExists(SigwError):
    """A request id was reused with a different payload."""


class PermissionDenied(SigwError):
    """The caller is known but may not do this."""


class Unauthenticated(SigwError):
    """The caller could not be identified."""


class Aborted(SigwError):
    """A concurrent change won; the caller may retry."""


@dataclass
class ResourceExhausted(SigwError):
    """The caller went over a rate limit; ``retry_after_s`` is sent as ``RetryInfo``."""

    retry_after_s: float = 1.0


@dataclass
class Unavailable(SigwError):
    """A dependency is unreachable; ``retry_after_s`` is sent as ``RetryInfo``."""

    retry_after_s: float = 1.0


MAX_VIOLATIONS = 50
"""Most field violations one answer lists (the rest are counted), so an error always fits gRPC's trailers."""


def invalid(violations: list[FieldViolation], reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    """An ``InvalidArgument`` whose message lists the violations (at most ``MAX_VIOLATIONS``)."""
    shown = violations[:MAX_VIOLATIONS]
    if len(violations) > MAX_VIOLATIONS:
        shown.append(FieldViolation("...", f"{len(violations) - MAX_VIOLATIONS} more violations not shown"))
    text = "; ".join(f"{v.field}: {v.description}" for v in shown[:10])
    if len(shown) > 10:
        text += f"; and {len(shown) - 10} more (see the BadRequest details)"
    return InvalidArgument(reason=reason, message=text, violations=shown)
