"""The one idempotency mechanism of every mutating use case (AIP-155; the record is
``gateway.domain.idempotency.IdempotencyRecord``): a repeat of a key answers with what the first request did."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.domain.errors import SigwError
from gateway.domain.idempotency import IdempotencyRecord
from gateway.domain.participants import Participant

__all__ = ["RequestKey", "replay"]

T = TypeVar("T")


@dataclass(frozen=True)
class RequestKey:
    """An idempotency key (a ``request_id``, or a national ``msgid``) and the fingerprint of its request's payload."""

    key: str
    fingerprint: str
    name: str = "request_id"
    """How the key is called in errors (``request_id`` or ``msgid``)."""

    def scope(self, actor: Participant, kind: str = "") -> str:
        """The key as stored: scoped to its caller (and to a kind of object, where two share a key space)."""
        return "|".join(part for part in (kind, str(actor), self.key) if part)


async def replay(
    record: IdempotencyRecord,
    key: RequestKey,
    load: Callable[[str], Awaitable[T | None]],
    missing: Callable[[str], SigwError],
) -> T:
    """The first outcome of ``key``: the object it made or changed (``load``), or its refusal again. Raises
    ``AlreadyExists`` for another payload, ``missing(object_id)`` when the object is gone (data removed)."""
    object_id = record.replay(key.fingerprint, key.name)
    found = await load(object_id)
    if found is None:
        raise missing(object_id)
    return found
