"""The ports the use cases talk to: what they need from storage, the agencies and the clock, as ``Protocol``s.

The store (``gateway.store``) implements the repositories, ``adapters.agency_client`` the agency gateway,
``gateway.wire`` the notice encoder. Use cases never see Redis, gRPC or protobuf.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from gateway.domain.errors import FailedPrecondition, Unavailable
from gateway.domain.idempotency import IdempotencyRecord, request_digest
from gateway.domain.participants import Destination, Participant
from gateway.domain.settlement.clearing import PairTotals, SettledAmounts
from gateway.domain.settlement.records import (
    Bill,
    CredentialType,
    Figures,
    FilingRecord,
    SettlementRecord,
    SettlementState,
)
from gateway.domain.settlement.split import FilingStatus
from gateway.domain.settlement.visit import InsuredPerson, Visit
from gateway.domain.transfer.model import Decision, Event, Notice, Transfer
from gateway.domain.transfer.relationship import ContributionPeriod

__all__ = [
    "AgencyCallFailed",
    "AgencyGateway",
    "Clock",
    "Committed",
    "DeliveryQueue",
    "FailureCounter",
    "FilingRepository",
    "NationalFile",
    "NoTracing",
    "NoticeEncoder",
    "OperatorAudit",
    "OutboundMessage",
    "QueuedMessage",
    "SettleContext",
    "SettlementRepository",
    "StoredTransfer",
    "Tracing",
    "TransferRepository",
    "VisitRepository",
    "agency_error",
    "timeline_id",
    "timeline_position",
]

Clock = Callable[[], datetime]
"""Now, timezone-aware (tests inject their own)."""


@dataclass(frozen=True)
class AgencyCallFailed(Exception):
    """An agency did not answer a call as asked: the gRPC status code's name (``"UNAVAILABLE"``), its detail, its
    ``RetryInfo`` delay and ``ErrorInfo`` reason if it sent them."""

    code: str
    detail: str
    retry_after_s: float | None = None
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


class AgencyGateway(Protocol):
    """The regions' agencies (``RegionAgencyService``), by region."""

    def hrss_regions(self) -> list[str]:
        """The regions whose HRSS agency can be asked for contribution periods."""
        ...

    def has_healthcare_agency(self, region: str) -> bool: ...

    async def deliver(self, destination: Destination, body: bytes, timeout_s: float) -> bool:
        """Deliver one encoded message (to an agency, or a result notice to a portal); True when the recipient
        already had it. Raises ``AgencyCallFailed``."""
        ...

    async def deliver_batch(
        self, destination: Destination, bodies: list[bytes], timeout_s: float
    ) -> list[bool | AgencyCallFailed]:
        """Deliver several encoded messages in one call, in order: per message, True when the agency already had
        it, or how it failed. Raises ``AgencyCallFailed`` when the call failed as a whole (``UNIMPLEMENTED``: the
        agency takes one message per call)."""
        ...

    async def compute_settlement(
        self, bill: Bill, filing: FilingStatus, *, commit: bool, settlement_id: str, timeout_s: float
    ) -> Figures:
        """The insured region's split of ``bill``; raises ``AgencyCallFailed``."""
        ...

    async def refund_settlement(self, msgid: str, settlement: SettlementRecord, timeout_s: float) -> bool:
        """Undo a settlement at the insured region; True when it had already been undone. Raises
        ``AgencyCallFailed``."""
        ...

    async def person_info(
        self,
        region: str,
        id_number: str,
        name: str,
        credential: CredentialType,
        treatment_region: str,
        timeout_s: float,
    ) -> InsuredPerson:
        """Who is insured in ``region`` under this ID number (national 1101). Raises ``AgencyCallFailed``."""
        ...

    async def contribution_periods(
        self, region: str, id_number: str, name: str, timeout_s: float
    ) -> list[ContributionPeriod]:
        """The person's periods in ``region``, as its HRSS agency reports them. Raises ``AgencyCallFailed``."""
        ...


@dataclass(frozen=True)
class OutboundMessage:
    """A message for the dispatcher: who gets it, on which lane, and the encoded request."""

    message_id: str
    recipient: Destination
    lane: str
    notice: str
    transfer_id: str
    body: bytes
    enqueued_ms: int
    traceparent: str = ""
    """The W3C trace context of the change that caused it ("" when not traced): the delivery's parent."""


NoticeEncoder = Callable[[str, Transfer, Notice, date, str], bytes]
"""(message id, transfer, notice, today, traceparent) -> the encoded message the agency receives."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timeline_id(time: datetime, n: int) -> str:
    """The id of a transfer's ``n``-th event (from 1): ``<event time in ms>-<n>``, increasing along the timeline;
    WatchTransfer resumes after the ``n`` it names."""
    return f"{(time - _EPOCH) // timedelta(milliseconds=1)}-{n}"


def timeline_position(event_id: str) -> int:
    """The ``n`` of an event id (0 for the empty id: before the first event)."""
    return int(event_id.rpartition("-")[2] or 0) if event_id else 0


@dataclass(frozen=True)
class StoredTransfer:
    """A transfer as stored: itself, its timeline (event id, event), and the records of the requests that changed
    it, by ``request_digest`` of their scope (a step request's idempotency record lives with its transfer)."""

    transfer: Transfer
    timeline: tuple[tuple[str, Event], ...] = ()
    requests: Mapping[str, IdempotencyRecord] = field(default_factory=dict)

    def recorded(self, scope: str) -> IdempotencyRecord | None:
        return self.requests.get(request_digest(scope))

    def after(self, decision: Decision, scope: str, record: IdempotencyRecord) -> StoredTransfer:
        """This transfer once ``decision`` is committed under ``scope``: what a commit writes, and answers."""
        event_id = timeline_id(decision.event.time, len(self.timeline) + 1)
        return StoredTransfer(
            decision.transfer,
            (*self.timeline, (event_id, decision.event)),
            {**self.requests, request_digest(scope): record},
        )


@dataclass(frozen=True)
class Committed:
    """A successful commit (the transfer as stored now), or the record of an earlier request with the same key."""

    stored: StoredTransfer | None
    duplicate: IdempotencyRecord | None = None


class TransferRepository(Protocol):
    def shard_for(self, scope: str) -> int:
        """The shard a new transfer of this idempotency scope lives in."""
        ...

    async def load(self, transfer_id: str) -> StoredTransfer | None: ...

    async def get_many(self, transfer_ids: list[str]) -> list[Transfer | None]: ...

    async def created_by(self, scope: str) -> IdempotencyRecord | None:
        """The record of the request (idempotency scope) that created a transfer, while it is kept."""
        ...

    async def commit(
        self,
        decision: Decision,
        *,
        scope: str,
        record: IdempotencyRecord,
        messages: list[OutboundMessage],
        previous: StoredTransfer | None,
    ) -> Committed:
        """All of it or nothing, in one round trip. A new transfer (``previous`` None) is refused as a duplicate
        when ``scope`` made one before; a change raises ``Aborted`` when the transfer changed since ``previous``
        was read."""
        ...

    async def wait_changed(self, transfer_id: str, version: int, timeout_s: float) -> StoredTransfer | None:
        """The transfer once its version passes ``version``, or as it is after ``timeout_s``."""
        ...

    async def due_before(self, day: date, limit: int) -> list[tuple[str, str]]: ...

    quiet_after: timedelta
    """How long an open step waits for an answer before its notice goes once more."""

    async def quiet_before(self, moment: datetime, limit: int) -> list[tuple[str, str]]:
        """Open steps (transfer id, step name) quiet since ``quiet_after`` before ``moment``."""
        ...

    async def forget_quiet(self, transfer_id: str, step: str) -> None: ...

    async def list_region(self, region: str, before: str | None, limit: int) -> list[str]: ...

    async def counts(self) -> dict[tuple[str, str], int]:
        """Transfers by (kind name, state name)."""
        ...

    async def overdue_unreminded(self, day: date) -> int:
        """Open steps due before ``day`` whose holder the sweeper has not reminded yet (normally 0 after a sweep)."""
        ...


@dataclass(frozen=True)
class SettleContext:
    """What settling a bill must know before the insured region is asked, read in one round trip (reading only:
    a refused bill leaves nothing behind)."""

    earlier: IdempotencyRecord | None
    """What the bill's msgid did before (its settlement), if anything."""
    month_closed: bool
    filings: list[FilingRecord]
    """The person's filings."""


class SettlementRepository(Protocol):
    def msg_shard(self, msgid: str) -> int: ...

    async def prepare(self, bill: Bill) -> SettleContext:
        """Read what settling ``bill`` needs, and claim its stay for its hospital if nobody had, in one round
        trip."""
        ...

    async def recorded(self, shard: int, key: str) -> IdempotencyRecord | None:
        """What a cancelling (or reversing) message's msgid did, if anything."""
        ...

    async def get(self, settlement_id: str) -> SettlementRecord | None: ...

    async def states(self, settlement_ids: list[str]) -> dict[str, SettlementState]:
        """The state of each of these settlements that exists (one round trip, nothing decrypted)."""
        ...

    async def get_many(self, settlement_ids: list[str]) -> dict[str, SettlementRecord]:
        """Each of these settlements that exists, in one round trip."""
        ...

    async def made_by(self, msgid: str) -> SettlementRecord | None:
        """The settlement the settle message ``msgid`` made, if any."""
        ...

    async def commit(
        self, record: SettlementRecord, *, key: str, idempotency: IdempotencyRecord, previous_version: int, sign: int
    ) -> IdempotencyRecord | None:
        """Write a settlement (sign +1) or its cancellation (-1) with its key and the clearing totals; the earlier
        record of a used key. Raises ``FailedPrecondition(MONTH_CLOSED)`` and ``Aborted``."""
        ...

    async def is_closed(self, month: str) -> bool: ...

    async def close(self, month: str, closed_at: datetime) -> None: ...

    async def clearing_totals(self, month: str) -> dict[tuple[str, str], PairTotals]: ...

    def month_amounts(self, month: str) -> AsyncIterator[list[SettledAmounts]]:
        """The month's settled (not cancelled) settlements as clearing sees them, in chunks."""
        ...

    async def hospital_records(self, hospital: str, start: datetime, end: datetime) -> list[SettlementRecord]:
        """A hospital's settlements made in ``[start, end)``."""
        ...


@dataclass(frozen=True)
class NationalFile:
    """A file a hospital uploaded (9101) or sigw made for it to download (3202's result, 9102)."""

    file_number: str  # file_qury_no
    hospital_code: str
    name: str  # filename
    content: bytes
    expires: datetime  # dld_endtime


class VisitRepository(Protocol):
    """The national interface's state: stays, the persons 1101 named, sign-ins, confirmations."""

    def visit_id_for(self, msgid: str) -> str:
        """The mdtrt_id a stay opened by ``msgid`` gets."""
        ...

    async def create(self, visit: Visit) -> Visit | None:
        """Write a new stay; the one already under its id, if any. Raises ``PermissionDenied`` when the id is
        another hospital's."""
        ...

    async def save(self, visit: Visit) -> bool:
        """Write ``visit`` over the version below it; False when it changed meanwhile."""
        ...

    async def load(self, visit_id: str) -> Visit | None: ...

    async def remember_person(self, person: InsuredPerson) -> None: ...

    async def person(self, psn_no: str) -> InsuredPerson | None: ...

    async def sign_in(self, sign_no: str, hospital: str, operator: str, at: datetime) -> None: ...

    async def signed_in(self, sign_no: str) -> str | None:
        """The hospital a live sign-in belongs to."""
        ...

    async def sign_out(self, sign_no: str) -> None: ...

    async def confirm(self, hospital: str, flags: dict[str, str]) -> None: ...

    async def confirmations(self, hospital: str, settlement_ids: list[str]) -> dict[str, str]: ...

    async def put_file(self, file: NationalFile, kept: timedelta) -> None:
        """Keep ``file`` for ``kept``."""
        ...

    async def file(self, file_number: str) -> NationalFile | None: ...


class FilingRepository(Protocol):
    def person_shard(self, id_number: str) -> int: ...

    async def recorded(self, shard: int, key: str) -> IdempotencyRecord | None: ...

    async def put(
        self, filing: FilingRecord, *, key: str, idempotency: IdempotencyRecord, new: bool, now: datetime
    ) -> IdempotencyRecord | None:
        """Write a filing with its key; the earlier record of a used key."""
        ...

    async def get(self, filing_id: str) -> FilingRecord | None: ...

    async def person_filings(self, id_number: str) -> list[FilingRecord]: ...

    async def region_filings(
        self, region: str, before_ms: int | None, limit: int
    ) -> list[tuple[int, FilingRecord]]: ...


@dataclass(frozen=True)
class QueuedMessage:
    """A message waiting on an agency's or a portal's lane, or a dead letter, as an operator sees it (no body)."""

    entry_id: str
    message_id: str
    recipient: Destination
    lane: str
    notice: str
    transfer_id: str
    enqueued_ms: int
    reason: str = ""
    attempts: tuple[str, ...] = ()
    dead_ms: int | None = None


class DeliveryQueue(Protocol):
    """The agencies' lanes and the dead letters."""

    async def queued(self, agency: Destination | None, lane: str | None, limit: int) -> list[QueuedMessage]:
        """Waiting messages, oldest first."""
        ...

    async def dead_letters(self, after: str | None, limit: int) -> list[QueuedMessage]: ...

    async def redrive(self, entry_ids: list[str] | None) -> list[str]:
        """Put dead letters (all when None) back on their lanes; the entry ids re-driven. A dead letter for a
        recipient the registry no longer lists stays (no worker would deliver it)."""
        ...

    async def lane_depths(self) -> dict[str, int]: ...

    async def figures(self, now_ms: int) -> QueueFigures:
        """What the operators' gauges show of the lanes, the dead letters and the store."""
        ...


@dataclass(frozen=True)
class QueueFigures:
    lane_depths: dict[str, int]
    """Messages waiting or in flight per lane, over all recipients."""
    oldest_s: dict[str, float]
    """Per lane: how long the oldest waiting message has waited (0 when none): the delivery lag."""
    dead_letters: int
    memory_used_bytes: int
    memory_max_bytes: int
    """Redis's ``maxmemory`` (0: no limit)."""


class OperatorAudit(Protocol):
    async def record(self, actor: Participant, request: str, action: str, object: str, now: datetime) -> None: ...


class Tracing(Protocol):
    """Traces across the gateway -> agency hop (OpenTelemetry in ``gateway.wire.tracing``; off: no-ops)."""

    def current(self) -> str:
        """The current trace context as a W3C ``traceparent`` ("" when none): carried by outbound messages."""
        ...

    def delivering(self, name: str, parents: list[str]) -> AbstractContextManager[None]:
        """A span around one delivery call, child of the message's trace (linked to each, for a batch)."""
        ...


class NoTracing:
    """Tracing off: no context, no spans."""

    def current(self) -> str:
        return ""

    def delivering(self, name: str, parents: list[str]) -> AbstractContextManager[None]:
        return nullcontext()


class FailureCounter(Protocol):
    """Failed attempts per key within a window, shared by every gateway process. An attempt counts as a failure
    from the moment it starts (so parallel attempts cannot all pass the check) until it is forgiven."""

    async def attempt(self, keys: list[str], window_s: int) -> list[int]:
        """Count one attempt under each key (a key's window starts with its first attempt); the counts after it."""
        ...

    async def forgive(self, keys: list[str]) -> None:
        """Take back one attempt under each key: it succeeded, or it was refused without being tried."""
        ...


def agency_error(
    failed: AgencyCallFailed, region: str, what: str, region_key: str = "region"
) -> FailedPrecondition | Unavailable:
    """The answer to give when ``region``'s agency did not do ``what``: its refusal (``FAILED_PRECONDITION`` or
    ``INVALID_ARGUMENT`` there) passes on as ``FAILED_PRECONDITION`` with its reason; anything else is
    ``UNAVAILABLE`` with the agency's ``RetryInfo``, and nothing was done."""
    if failed.code in ("FAILED_PRECONDITION", "INVALID_ARGUMENT"):
        return FailedPrecondition(
            reason=failed.reason or "AGENCY_REFUSED",
            message=f"region {region}'s agency refused {what}: {failed.detail}",
            metadata={region_key: region},
        )
    return Unavailable(
        reason="AGENCY_UNAVAILABLE",
        message=f"region {region}'s agency did not answer ({failed.code}); nothing was done: retry",
        metadata={region_key: region},
        retry_after_s=failed.retry_after_s or 1.0,
    )
