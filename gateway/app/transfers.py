"""Transfer use cases: idempotency, the domain decision, and its atomic commit with outbound messages.

Servicers call this with validated domain input; it is the only place that turns a ``Decision`` into a
store commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.domain import access
from gateway.domain.access import Action
from gateway.domain.errors import Aborted, FailedPrecondition, FieldViolation, SigwError, check_same_payload
from gateway.domain.participants import Participant
from gateway.domain.transfer import machine
from gateway.domain.transfer.kinds import agency_type_of
from gateway.domain.transfer.machine import Policy
from gateway.domain.transfer.model import (
    SHANGHAI,
    AgencyType,
    Application,
    Circumstances,
    Decision,
    Event,
    Kind,
    State,
    Transfer,
)
from gateway.domain.transfer.relationship import ContributionPeriod, PayingRegion, determine_paying_region
from gateway.store import keys
from gateway.store.transfers import IdempotencyRecord, OutboundMessage, TransferStore, shard_of
from gateway.wire import transfers as convert

Clock = Callable[[], datetime]
Decide = Callable[[Transfer, datetime], Decision]
RecordRefusal = Callable[[Transfer, datetime, FailedPrecondition], Decision]

_CONFLICT_RETRIES = 5
_LIST_BATCH = 50


def _error_to_record(error: SigwError) -> dict[str, Any]:
    return {
        "type": type(error).__name__,
        "reason": error.reason,
        "message": error.message,
        "violations": [[v.field, v.description] for v in error.violations],
        "metadata": error.metadata,
    }


def _error_from_record(d: dict[str, Any]) -> SigwError:
    """The refusal an idempotency record remembers (only ``FailedPrecondition`` refusals are recorded)."""
    violations = [FieldViolation(f, desc) for f, desc in d["violations"]]
    return FailedPrecondition(reason=d["reason"], message=d["message"], violations=violations, metadata=d["metadata"])


class ContributionRecords(Protocol):
    """The regions' HRSS agencies, as the source of a person's contribution periods (66号 Art. 6)."""

    def regions(self) -> list[str]:
        """The regions that can be asked."""
        ...

    async def periods(self, region: str, id_number: str, name: str, timeout_s: float) -> list[ContributionPeriod]:
        """The person's periods in ``region``, as its agency reports them."""
        ...


@dataclass(frozen=True)
class PayingRegionAnswer:
    decision: PayingRegion
    periods: list[ContributionPeriod]
    collections: list[Transfer]


class TransferService:
    def __init__(
        self, store: TransferStore, policy: Policy, clock: Clock, records: ContributionRecords | None = None
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.records = records

    def today(self) -> datetime:
        return self.clock().astimezone(SHANGHAI)

    def _messages(self, decision: Decision) -> list[OutboundMessage]:
        t = decision.transfer
        now = decision.event.time
        out = []
        for notice in decision.notices:
            message_id = uuid.uuid4().hex
            body = convert.deliver_request(message_id, t, notice, now.astimezone(SHANGHAI).date())
            out.append(
                OutboundMessage(
                    message_id=message_id,
                    recipient=str(notice.recipient),
                    lane="priority" if t.priority else "ordinary",
                    notice=notice.type.name,
                    transfer_id=t.transfer_id,
                    body=body.SerializeToString(),
                    enqueued_ms=int(time.time() * 1000),  # queue time is wall time, not the domain clock
                )
            )
        return out

    async def _replay(self, record: IdempotencyRecord, fingerprint: str) -> Transfer:
        """Answer a repeated request id: the first outcome, or a refusal when the payload differs."""
        check_same_payload(record.fingerprint, fingerprint)
        if record.error:
            raise _error_from_record(record.error)
        transfer = await self.store.get(record.transfer_id)
        if transfer is None:  # the record outlived the transfer: cannot happen unless data was removed
            raise access.not_found(record.transfer_id)
        return transfer

    async def create(self, actor: Participant, request_id: str, fingerprint: str, app: Application) -> Transfer:
        scope = f"{actor}|{request_id}"
        shard = keys.shard_for(scope, self.store.shards)
        earlier = await self.store.idempotency(shard, scope)
        if earlier:
            return await self._replay(earlier, fingerprint)
        now = self.clock()
        transfer_id = f"T{shard:02d}-{now.astimezone(SHANGHAI):%Y%m%d}-{secrets.token_hex(4).upper()}"
        decision = machine.open_transfer(app, transfer_id, actor, now, self.policy)
        result = await self.store.commit(
            decision, scope=scope, record=IdempotencyRecord(fingerprint, transfer_id), messages=self._messages(decision)
        )
        if result.duplicate:
            return await self._replay(result.duplicate, fingerprint)
        return decision.transfer

    async def transition(
        self,
        actor: Participant,
        request_id: str,
        fingerprint: str,
        transfer_id: str,
        decide: Decide,
        record_refusal: RecordRefusal | None = None,
    ) -> Transfer:
        """Apply ``decide`` to the transfer and commit; retried when a concurrent change wins the race.

        With ``record_refusal``, a ``FailedPrecondition`` from ``decide`` is written to the timeline (and
        remembered under the request id) before it is raised.
        """
        scope = f"{actor}|{request_id}"
        for _ in range(_CONFLICT_RETRIES):
            transfer = await self.read(actor, transfer_id)
            earlier = await self.store.idempotency(shard_of(transfer_id), scope)
            if earlier:
                return await self._replay(earlier, fingerprint)
            now = self.clock()
            refusal: FailedPrecondition | None = None
            try:
                decision = decide(transfer, now)
            except FailedPrecondition as exc:
                if record_refusal is None or exc.reason == "WRONG_STATE":
                    raise
                refusal = exc
                decision = record_refusal(transfer, now, exc)
            record = IdempotencyRecord(fingerprint, transfer_id, _error_to_record(refusal) if refusal else None)
            try:
                result = await self.store.commit(
                    decision, scope=scope, record=record, messages=self._messages(decision)
                )
            except Aborted:
                continue
            if result.duplicate:
                return await self._replay(result.duplicate, fingerprint)
            if refusal:
                raise refusal
            return decision.transfer
        raise Aborted(
            reason="CONCURRENT_CHANGE",
            message=f"transfer {transfer_id} is changing; retry",
            metadata={"transfer_id": transfer_id},
        )

    async def paying_region(
        self,
        actor: Participant,
        *,
        id_number: str,
        name: str,
        hukou_region: str,
        regions: list[str],
        start_collection: bool,
        request_id: str,
        fingerprint: str,
        timeout_s: float,
    ) -> PayingRegionAnswer:
        """Where the pension is paid (66号 Art. 6), from the periods each region's agency reports; with
        ``start_collection``, the paying region's agency also opens one collection per region that must send
        (idempotent: each collection's request id derives from ``request_id`` and the sending region)."""
        access.may_determine_paying_region(actor)
        if self.records is None:
            raise FailedPrecondition(reason="NO_AGENCIES", message="this gateway has no agencies to ask")
        asked = sorted(set(regions)) or self.records.regions()
        reported = await asyncio.gather(*(self.records.periods(region, id_number, name, timeout_s) for region in asked))
        periods = [p for found in reported for p in found]
        decision = determine_paying_region(hukou_region, periods)
        collections: list[Transfer] = []
        if start_collection:
            access.may_determine_paying_region(actor, decision.region)
            apps = [
                Application(
                    kind=Kind.PENSION_COLLECTION,
                    id_number=id_number,
                    name=name,
                    source_region=sender.region,
                    target_region=decision.region,
                    circumstances=Circumstances(hukou_region=hukou_region, collection_source=sender.source),
                    note=decision.reason,
                )
                for sender in decision.senders
            ]
            for app in apps:  # every collection is checked before any is written: a refusal writes nothing
                machine.open_transfer(app, "T00-00000000-00000000", actor, self.clock(), self.policy)
            for app in apps:
                derived = hashlib.sha256(
                    f"{fingerprint}|{app.source_region}|{app.circumstances.collection_source.name}".encode()
                ).hexdigest()
                collections.append(await self.create(actor, f"{request_id}/{app.source_region}", derived, app))
        return PayingRegionAnswer(decision, periods, collections)

    async def remind(self, transfer_id: str) -> Transfer | None:
        """The overdue sweeper's reminder for a transfer's open step; None when none is owed (any more)."""
        for _ in range(_CONFLICT_RETRIES):
            transfer = await self.store.get(transfer_id)
            step = transfer.open_step if transfer else None
            if transfer is None or step is None:
                return None
            try:
                decision = machine.remind_overdue(transfer, self.clock())
            except FailedPrecondition:
                return None
            scope = f"sigw:sweeper|{transfer_id}|{step.name.name}"
            record = IdempotencyRecord(scope, transfer_id)
            try:
                result = await self.store.commit(
                    decision, scope=scope, record=record, messages=self._messages(decision)
                )
            except Aborted:
                continue
            return None if result.duplicate else decision.transfer
        return None

    async def read(self, actor: Participant, transfer_id: str) -> Transfer:
        transfer = await self.store.get(transfer_id)
        if transfer is None:
            raise access.not_found(transfer_id)
        access.check(actor, Action.READ, transfer)
        return transfer

    async def list_region(
        self,
        region: str,
        cursor: str | None,
        limit: int,
        *,
        state: State | None,
        kind: Kind | None,
        overdue_only: bool,
        agency_type: AgencyType | None,
    ) -> tuple[list[Transfer], str | None]:
        """One page of a region's transfers, newest first, filtered; and the cursor of the next page."""
        today = self.today().date()

        def wanted(t: Transfer) -> bool:
            return (
                (state is None or t.state is state)
                and (kind is None or t.kind is kind)
                and (not overdue_only or t.overdue(today))
                and (agency_type is None or agency_type_of(t.kind) is agency_type)
            )

        page: list[Transfer] = []
        while True:
            members = await self.store.list_region(region, cursor, max(limit, _LIST_BATCH))
            if not members:
                return page, None
            found = await self.store.get_many([m.split(":", 1)[1] for m in members])
            for member, transfer in zip(members, found, strict=True):
                if len(page) == limit:
                    return page, cursor
                cursor = member
                if transfer is not None and wanted(transfer):
                    page.append(transfer)

    async def timeline(self, transfer_id: str) -> list[tuple[str, Event]]:
        return await self.store.timeline(transfer_id)
