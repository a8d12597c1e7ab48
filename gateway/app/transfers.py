"""Transfer use cases (Arts. 12-17): open, act on each step, read, list, follow; the applicant's status query; the
paying region and its collections.

Each mutating use case checks its idempotency key, lets the domain decide (``gateway.domain.transfer.machine``),
encodes the outbound notices and commits all of it in one atomic step. It is the only place that turns a
``Decision`` into a commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from gateway.app.idempotency import RequestKey, replay
from gateway.app.ports import (
    AgencyCallFailed,
    AgencyGateway,
    Clock,
    FailureCounter,
    NoticeEncoder,
    NoTracing,
    OutboundMessage,
    StoredTransfer,
    Tracing,
    TransferRepository,
    agency_error,
)
from gateway.domain import access, ids
from gateway.domain.access import Action
from gateway.domain.calendar import SHANGHAI
from gateway.domain.errors import Aborted, FailedPrecondition, FieldViolation, ResourceExhausted, invalid
from gateway.domain.idempotency import IdempotencyRecord, Refusal
from gateway.domain.ids import new_transfer_id
from gateway.domain.participants import AgencyKey, AgencyType, Destination, Participant, PortalKey
from gateway.domain.transfer import machine
from gateway.domain.transfer.kinds import agency_type_of
from gateway.domain.transfer.machine import Policy
from gateway.domain.transfer.model import (
    Addressee,
    Application,
    Circumstances,
    Decision,
    Kind,
    State,
    Transfer,
    TransferInfo,
)
from gateway.domain.transfer.relationship import ContributionPeriod, PayingRegion, determine_paying_region

__all__ = ["PayingRegionAnswer", "StatusQueryLimits", "TransferService"]

log = logging.getLogger("sigw.transfers")

Decide = Callable[[Transfer, datetime], Decision]

_CONFLICT_RETRIES = 5
_LIST_BATCH = 50
LIST_SCAN_LIMIT = 1000
"""Index entries one page may read: a filter that matches little gets a short page and a token, not a walk of
the whole region."""


@dataclass(frozen=True)
class StatusQueryLimits:
    """Applicants' status queries (Art. 16) must not let transfer ids be probed: after ``per_transfer`` failed
    queries for one transfer, or ``per_portal`` from one portal, within ``window_s``, queries are refused (even
    with the right ID number) until the window ends."""

    per_transfer: int = 5
    per_portal: int = 100
    window_s: int = 900


@dataclass(frozen=True)
class PayingRegionAnswer:
    decision: PayingRegion
    periods: list[ContributionPeriod]
    collections: list[Transfer]


class TransferService:
    def __init__(
        self,
        store: TransferRepository,
        policy: Policy,
        clock: Clock,
        encode: NoticeEncoder,
        *,
        agencies: AgencyGateway | None = None,
        failures: FailureCounter | None = None,
        status_limits: StatusQueryLimits | None = None,
        notice_portal: Callable[[str], PortalKey | None] = lambda code: None,
        tracing: Tracing | None = None,
    ) -> None:
        self.store = store
        self.tracing = tracing or NoTracing()
        self.notice_portal = notice_portal
        """The portal that tells an applicant (Art. 16), by the code the application names ("" for the default);
        None: no portal takes notices, and applicants read their status by query only."""
        self.policy = policy
        self.clock = clock
        self.encode = encode
        self.agencies = agencies
        self.failures = failures
        self.status_limits = status_limits or StatusQueryLimits()

    def today(self) -> date:
        return self.clock().astimezone(SHANGHAI).date()

    def _messages(self, decision: Decision) -> list[OutboundMessage]:
        t = decision.transfer
        today = decision.event.time.astimezone(SHANGHAI).date()
        traceparent = self.tracing.current()  # the change's trace, which each of its messages carries
        out = []
        for notice in decision.notices:
            recipient: Destination | None = notice.recipient if isinstance(notice.recipient, AgencyKey) else None
            if isinstance(notice.recipient, Addressee):
                recipient = self.notice_portal(t.contact.portal)
                if recipient is None and t.contact.portal:
                    log.warning("portal %s left the registry: the default portal tells the applicant", t.contact.portal)
                    recipient = self.notice_portal("")
            if recipient is None:
                continue  # no portal takes notices: the applicant reads the result by status query
            message_id = ids.new_message_id()
            out.append(
                OutboundMessage(
                    message_id=message_id,
                    recipient=recipient,
                    lane=t.lane,
                    notice=notice.type.name,
                    transfer_id=t.transfer_id,
                    body=self.encode(message_id, t, notice, today, traceparent),
                    enqueued_ms=int(time.time() * 1000),  # queue time is wall time, not the domain clock
                    traceparent=traceparent,
                )
            )
        return out

    async def _replay(self, record: IdempotencyRecord, key: RequestKey) -> StoredTransfer:
        return await replay(record, key, self.store.load, access.not_found)

    # ------------------------------------------------------------------------------------------- changes

    async def create(self, actor: Participant, key: RequestKey, app: Application) -> StoredTransfer:
        """Open a transfer: one commit, which also refuses a repeated key (then the first outcome answers)."""
        scope = key.scope(actor)
        if app.contact.portal and self.notice_portal(app.contact.portal) is None:
            earlier = await self.store.created_by(scope)  # a retry after the portal left the registry
            if earlier:
                return await self._replay(earlier, key)
            raise invalid(
                [FieldViolation("contact.portal", f"no portal {app.contact.portal!r} takes notices")],
                reason="UNKNOWN_PORTAL",
            )
        shard = self.store.shard_for(scope)
        now = self.clock()
        decision = machine.open_transfer(app, new_transfer_id(shard, now), actor, now, self.policy)
        record = IdempotencyRecord(key.fingerprint, decision.transfer.transfer_id)
        result = await self.store.commit(
            decision, scope=scope, record=record, messages=self._messages(decision), previous=None
        )
        if result.duplicate:
            return await self._replay(result.duplicate, key)
        assert result.stored is not None
        return result.stored

    async def _transition(
        self, actor: Participant, key: RequestKey, transfer_id: str, decide: Decide, *, record_refusals: bool = False
    ) -> StoredTransfer:
        """Apply ``decide`` to the transfer and commit; retried when a concurrent change wins the race. A repeated
        key is found in the transfer's own records (a concurrent repeat loses the race, then finds it).

        With ``record_refusals``, a ``FailedPrecondition`` from ``decide`` (other than a wrong state) is written to
        the timeline and remembered under the key before it is raised.
        """
        scope = key.scope(actor)
        for _ in range(_CONFLICT_RETRIES):
            stored = await self.read(actor, transfer_id)
            earlier = stored.recorded(scope)
            if earlier:
                earlier.replay(key.fingerprint, key.name)
                return stored
            now = self.clock()
            refusal: FailedPrecondition | None = None
            try:
                decision = decide(stored.transfer, now)
            except FailedPrecondition as exc:
                if not record_refusals or exc.reason == "WRONG_STATE":
                    raise
                recorded = machine.recorded_refusals(e for _, e in stored.timeline)
                if recorded >= machine.MAX_RECORDED_REFUSALS:
                    raise  # answered, no longer recorded
                refusal = exc
                decision = machine.refuse_transfer_info(stored.transfer, actor, now, exc, recorded)
            record = IdempotencyRecord(key.fingerprint, transfer_id, refusal=Refusal.of(refusal) if refusal else None)
            try:
                result = await self.store.commit(
                    decision, scope=scope, record=record, messages=self._messages(decision), previous=stored
                )
            except Aborted:
                continue
            if refusal:
                raise refusal
            assert result.stored is not None
            return result.stored
        raise Aborted(
            reason="CONCURRENT_CHANGE",
            message=f"transfer {transfer_id} is changing; retry",
            metadata={"transfer_id": transfer_id},
        )

    async def send_contact_letter(
        self, actor: Participant, key: RequestKey, transfer_id: str, *, letter_number: str, note: str
    ) -> StoredTransfer:
        return await self._transition(
            actor,
            key,
            transfer_id,
            lambda t, now: machine.send_contact_letter(
                t, actor, now, self.policy, letter_number=letter_number, note=note
            ),
        )

    async def open_temporary_account(
        self, actor: Participant, key: RequestKey, transfer_id: str, *, account_number: str, note: str
    ) -> StoredTransfer:
        return await self._transition(
            actor,
            key,
            transfer_id,
            lambda t, now: machine.open_temporary_account(t, actor, now, account_number=account_number, note=note),
        )

    async def send_transfer_info(
        self, actor: Participant, key: RequestKey, transfer_id: str, *, info: TransferInfo, note: str
    ) -> StoredTransfer:
        """A refused table is recorded on the timeline (and under the key), and the refusal raised."""
        return await self._transition(
            actor,
            key,
            transfer_id,
            lambda t, now: machine.send_transfer_info(t, actor, now, self.policy, info=info, note=note),
            record_refusals=True,
        )

    async def complete(self, actor: Participant, key: RequestKey, transfer_id: str, *, note: str) -> StoredTransfer:
        return await self._transition(
            actor, key, transfer_id, lambda t, now: machine.complete(t, actor, now, note=note)
        )

    async def reject(self, actor: Participant, key: RequestKey, transfer_id: str, *, reason: str) -> StoredTransfer:
        return await self._transition(
            actor, key, transfer_id, lambda t, now: machine.reject(t, actor, now, reason=reason)
        )

    async def cancel(self, actor: Participant, key: RequestKey, transfer_id: str, *, reason: str) -> StoredTransfer:
        return await self._transition(
            actor, key, transfer_id, lambda t, now: machine.cancel(t, actor, now, reason=reason)
        )

    async def _sweeper_decision(
        self, transfer_id: str, kind: str, step_name: str | None, decide: Decide
    ) -> Transfer | None:
        """A sweeper's decision on a transfer's open step (of ``step_name``, when given), once per step (recorded
        under ``sigw:<kind>|<transfer>|<step>``); None when none is owed (any more)."""
        for _ in range(_CONFLICT_RETRIES):
            stored = await self.store.load(transfer_id)
            step = stored.transfer.open_step if stored else None
            if stored is None or step is None or step_name not in (None, step.name.name):
                return None
            scope = f"sigw:{kind}|{transfer_id}|{step.name.name}"
            if stored.recorded(scope):
                return None
            try:
                decision = decide(stored.transfer, self.clock())
            except FailedPrecondition:
                return None
            try:
                await self.store.commit(
                    decision,
                    scope=scope,
                    record=IdempotencyRecord(scope, transfer_id),
                    messages=self._messages(decision),
                    previous=stored,
                )
            except Aborted:
                continue
            return decision.transfer
        return None

    async def renotify(self, transfer_id: str, step_name: str, quiet_for: str) -> Transfer | None:
        """The quiet sweep: the open step's notice once more, once per step; None when none is owed (the step
        closed meanwhile, or was renotified)."""
        return await self._sweeper_decision(
            transfer_id, "renotify", step_name, lambda t, now: machine.renotify(t, now, quiet_for)
        )

    async def remind(self, transfer_id: str) -> Transfer | None:
        """The overdue sweeper's reminder for a transfer's open step; None when none is owed (any more)."""
        return await self._sweeper_decision(transfer_id, "sweeper", None, machine.remind_overdue)

    # -------------------------------------------------------------------------------------------- reads

    async def read(self, actor: Participant, transfer_id: str) -> StoredTransfer:
        stored = await self.store.load(transfer_id)
        if stored is None:
            raise access.not_found(transfer_id)
        access.check(actor, Action.READ, stored.transfer)
        return stored

    async def list_region(
        self,
        actor: Participant,
        region: str,
        cursor: str | None,
        limit: int,
        *,
        state: State | None,
        kind: Kind | None,
        overdue_only: bool,
    ) -> tuple[list[Transfer], str | None]:
        """One page of a region's transfers, newest first, filtered; and the cursor of the next page."""
        agency_type: AgencyType | None = access.may_list(actor, region)
        today = self.today()

        def wanted(t: Transfer) -> bool:
            return (
                (state is None or t.state is state)
                and (kind is None or t.kind is kind)
                and (not overdue_only or t.overdue(today))
                and (agency_type is None or agency_type_of(t.kind) is agency_type)
            )

        page: list[Transfer] = []
        scanned = 0
        while scanned < LIST_SCAN_LIMIT:
            members = await self.store.list_region(region, cursor, max(limit, _LIST_BATCH))
            if not members:
                return page, None
            found = await self.store.get_many([m.split(":", 1)[1] for m in members])
            for member, transfer in zip(members, found, strict=True):
                if len(page) == limit:
                    return page, cursor
                cursor, scanned = member, scanned + 1
                if transfer is not None and wanted(transfer):
                    page.append(transfer)
        # Bounded work per page: a filter that matches little returns a short (even empty) page and a cursor.
        return page, cursor

    async def follow(self, stored: StoredTransfer, timeout_s: float) -> StoredTransfer:
        """The transfer once it changed from ``stored`` (read with :meth:`read` first, which checks the caller may
        follow it), or as it is after ``timeout_s``."""
        changed = await self.store.wait_changed(stored.transfer.transfer_id, stored.transfer.version, timeout_s)
        return changed or stored

    async def query_status(self, actor: Participant, transfer_id: str, id_number: str) -> StoredTransfer:
        """The applicant's own status query (Art. 16), relayed by a portal: the transfer if ``id_number`` is the
        person's. A wrong number gets the same ``NOT_FOUND`` as an unknown id and counts as a failure."""
        access.may_query_status(actor)
        limits = self.status_limits
        counted = [f"transfer:{transfer_id}", f"portal:{actor}"]
        if self.failures is None:
            return await self._own_transfer(transfer_id, id_number)
        counts = await self.failures.attempt(counted, limits.window_s)
        if counts[0] > limits.per_transfer or counts[1] > limits.per_portal:
            await self.failures.forgive(counted)  # refused untried: not a failure of its own
            raise ResourceExhausted(
                reason="TOO_MANY_FAILED_QUERIES",
                message="too many failed status queries; try again later",
                retry_after_s=float(limits.window_s),
            )
        stored = await self._own_transfer(transfer_id, id_number)  # a wrong number keeps its attempt counted
        await self.failures.forgive(counted)
        return stored

    async def _own_transfer(self, transfer_id: str, id_number: str) -> StoredTransfer:
        stored = await self.store.load(transfer_id)
        if stored is None or not hmac.compare_digest(stored.transfer.id_number.encode(), id_number.encode()):
            raise access.not_found(transfer_id)
        return stored

    # ------------------------------------------------------------------------------------ paying region

    async def paying_region(
        self,
        actor: Participant,
        key: RequestKey,
        *,
        id_number: str,
        name: str,
        hukou_region: str,
        regions: list[str],
        start_collection: bool,
        timeout_s: float,
    ) -> PayingRegionAnswer:
        """Where the pension is paid (66号 Art. 6), from the periods each region's agency reports; with
        ``start_collection``, the paying region's agency also opens one collection per region that must send
        (idempotent: each collection's request id derives from the key and the sending region)."""
        access.may_determine_paying_region(actor)
        if self.agencies is None:
            raise FailedPrecondition(reason="NO_AGENCIES", message="this gateway has no agencies to ask")
        agencies = self.agencies
        known = agencies.hrss_regions()
        unknown = [FieldViolation("region_codes", f"unknown region {r}") for r in sorted(set(regions) - set(known))]
        if unknown:
            raise invalid(unknown, reason="UNKNOWN_REGION")
        asked = sorted(set(regions)) or known

        async def periods_of(region: str) -> list[ContributionPeriod]:
            try:
                return await agencies.contribution_periods(region, id_number, name, timeout_s)
            except AgencyCallFailed as failed:
                raise agency_error(failed, region, "to report the contribution periods") from failed

        reported = await asyncio.gather(*(periods_of(region) for region in asked))
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
                fingerprint = hashlib.sha256(
                    f"{key.fingerprint}|{app.source_region}|{app.circumstances.collection_source.name}".encode()
                ).hexdigest()
                derived = RequestKey(f"{key.key}/{app.source_region}", fingerprint)
                collections.append((await self.create(actor, derived, app)).transfer)
        return PayingRegionAnswer(decision, periods, collections)
