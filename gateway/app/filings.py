"""Filing use cases (备案, Art. 23): the insured region's healthcare-security agency files, cancels and lists its
persons' filings for direct non-local settlement; settlement asks which filing applies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from gateway.app.idempotency import RequestKey, replay
from gateway.app.ports import Clock, FilingRepository
from gateway.domain import access, idnumber
from gateway.domain.errors import FailedPrecondition
from gateway.domain.idempotency import IdempotencyRecord
from gateway.domain.ids import new_filing_id, shard_of
from gateway.domain.participants import Participant
from gateway.domain.settlement import filing as rules
from gateway.domain.settlement.records import Bill, FilingRecord, FilingState, FilingType
from gateway.domain.settlement.split import FilingStatus

__all__ = ["FilingService"]

_KIND = "filing"  # filings' request ids share the msgid key space: keep them apart


class FilingService:
    def __init__(self, store: FilingRepository, known_regions: frozenset[str], clock: Clock) -> None:
        self.store = store
        self.known_regions = known_regions
        self.clock = clock

    async def _replay(self, record: IdempotencyRecord, key: RequestKey) -> FilingRecord:
        return await replay(record, key, self.store.get, access.filing_not_found)

    async def create(
        self,
        actor: Participant,
        key: RequestKey,
        *,
        filing_type: FilingType,
        id_number: str,
        insured_region: str,
        treatment_region: str,
        valid_from: date,
        valid_until: date | None,
    ) -> FilingRecord:
        access.require_insured_agency(actor, insured_region)
        rules.require_known_places(insured_region, treatment_region, self.known_regions)
        shard = self.store.person_shard(id_number)
        scope = key.scope(actor, _KIND)
        earlier = await self.store.recorded(shard, scope)
        if earlier is None:
            now = self.clock()
            filing = FilingRecord(
                filing_id=new_filing_id(shard, now),
                filing_type=filing_type,
                id_number=id_number,
                insured_region=insured_region,
                treatment_region=treatment_region,
                valid_from=valid_from,
                valid_until=valid_until,
                created_at=now,
            )
            record = IdempotencyRecord(key.fingerprint, filing.filing_id, "file")
            earlier = await self.store.put(filing, key=scope, idempotency=record, new=True, now=now)
            if earlier is None:
                return filing
        return await self._replay(earlier, key)

    async def cancel(self, actor: Participant, key: RequestKey, filing_id: str, reason: str) -> FilingRecord:
        filing = await self.store.get(filing_id)
        access.may_handle_filing(actor, filing_id, filing)
        assert filing is not None
        scope = key.scope(actor, _KIND)
        earlier = await self.store.recorded(shard_of(filing_id), scope)
        if earlier is None:
            if filing.state is not FilingState.ACTIVE:
                raise FailedPrecondition(reason="FILING_NOT_ACTIVE", message=f"filing {filing_id} is cancelled")
            updated = replace(filing, state=FilingState.CANCELLED, cancel_reason=idnumber.mask_text(reason))
            record = IdempotencyRecord(key.fingerprint, filing_id, "cancel")
            earlier = await self.store.put(updated, key=scope, idempotency=record, new=False, now=self.clock())
            if earlier is None:
                return updated
        return await self._replay(earlier, key)

    async def list(
        self, actor: Participant, region: str, id_number: str | None, before_ms: int | None, limit: int
    ) -> tuple[list[FilingRecord], int | None]:
        """A region's filings, newest first (all of one person's, or a page and the next page's cursor)."""
        access.require_insured_agency(actor, region)
        if id_number:
            mine = [f for f in await self.store.person_filings(id_number) if f.insured_region == region]
            return sorted(mine, key=lambda f: f.created_at, reverse=True), None
        rows = await self.store.region_filings(region, before_ms, limit + 1)
        more = len(rows) > limit
        page = rows[:limit]
        return [f for _, f in page], (page[-1][0] if more and page else None)

    async def status_for(self, bill: Bill) -> FilingStatus:
        """The filing a bill settles under: the person's filings with its insured region, on the discharge day."""
        return self.status_among(bill, await self.store.person_filings(bill.id_number))

    @staticmethod
    def status_among(bill: Bill, person_filings: Sequence[FilingRecord]) -> FilingStatus:
        """The same, from the person's filings already read."""
        filings = [f for f in person_filings if f.insured_region == bill.insured_region]
        return rules.filing_status(filings, bill.treatment_region, bill.discharge, bill.emergency)
