"""Idempotency (AIP-155), one mechanism for every mutating request.

Every mutating request carries a key: its ``request_id`` scoped to the caller (``<participant>|<request id>``),
or the national ``msgid`` a hospital sends. The first request under a key leaves an :class:`IdempotencyRecord`:
the fingerprint of its payload (the request without its key), the object it made or changed, the action, and
the refusal it got if the rules refused it. A repeat with the same payload gets the first outcome; with another
payload it is refused with ``ALREADY_EXISTS`` (``REQUEST_ID_REUSED`` or ``MSGID_REUSED``).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from gateway.domain.errors import AlreadyExists, FailedPrecondition, FieldViolation

__all__ = ["IdempotencyRecord", "Refusal", "check_same_payload", "request_digest"]


def request_digest(scope: str) -> str:
    """A short stable name for an idempotency scope (22 characters, 128 bits of SHA-256): how the store names a
    key's record without keeping the key itself."""
    return base64.urlsafe_b64encode(hashlib.sha256(scope.encode()).digest()[:16]).rstrip(b"=").decode()


@dataclass(frozen=True)
class Refusal:
    """A ``FailedPrecondition`` the rules gave, kept so a repeat gets the same answer."""

    reason: str
    message: str
    violations: tuple[FieldViolation, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, error: FailedPrecondition) -> Refusal:
        return cls(error.reason, error.message, tuple(error.violations), dict(error.metadata))

    def error(self) -> FailedPrecondition:
        return FailedPrecondition(
            reason=self.reason, message=self.message, violations=list(self.violations), metadata=dict(self.metadata)
        )


@dataclass(frozen=True)
class IdempotencyRecord:
    """What one idempotency key did."""

    fingerprint: str
    object_id: str
    """The transfer, settlement or filing."""
    action: str = ""
    """What it did to it, where one object has several (``settle``, ``cancel``, ``reverse``; ``file``, ...)."""
    refusal: Refusal | None = None

    def replay(self, fingerprint: str, key: str = "request_id") -> str:
        """The object id to answer a repeat with; raises ``AlreadyExists`` for another payload and the recorded
        refusal for a refused one."""
        check_same_payload(self.fingerprint, fingerprint, key)
        if self.refusal is not None:
            raise self.refusal.error()
        return self.object_id


def check_same_payload(recorded: str, fingerprint: str, key: str = "request_id") -> None:
    """AIP-155: an idempotency key used again must carry the same payload (``REQUEST_ID_REUSED``, or
    ``MSGID_REUSED`` for a msgid)."""
    if recorded != fingerprint:
        raise AlreadyExists(
            reason=f"{key.upper()}_REUSED", message=f"this {key} was already used with a different payload"
        )
