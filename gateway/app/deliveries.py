"""Operator use cases on deliveries: what waits on each lane, the dead letters, and re-driving them on the record."""

from __future__ import annotations

from gateway.app.ports import Clock, DeliveryQueue, OperatorAudit, QueuedMessage
from gateway.domain import access
from gateway.domain.participants import AgencyKey, Participant

__all__ = ["DeliveryService"]


class DeliveryService:
    def __init__(self, queue: DeliveryQueue, audit: OperatorAudit, clock: Clock) -> None:
        self.queue = queue
        self.audit = audit
        self.clock = clock

    async def queued(
        self, actor: Participant, agency: AgencyKey | None, lane: str | None, limit: int
    ) -> tuple[list[QueuedMessage], dict[str, int]]:
        access.require_operator(actor)
        return await self.queue.queued(agency, lane, limit), await self.queue.lane_depths()

    async def dead_letters(self, actor: Participant, after: str | None, limit: int) -> list[QueuedMessage]:
        access.require_operator(actor)
        return await self.queue.dead_letters(after, limit)

    async def redrive(self, actor: Participant, request_id: str, entry_ids: list[str] | None) -> int:
        """Put dead letters (all when ``entry_ids`` is None) back on their lanes; record who did it and when.
        Receivers deduplicate by message id, so a re-drive never applies a message twice."""
        access.require_operator(actor)
        done = await self.queue.redrive(entry_ids)
        await self.audit.record(actor, request_id, "redrive dead letters", ",".join(done) or "-", self.clock())
        return len(done)
