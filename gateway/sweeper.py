"""The overdue sweeper: finds open steps past their working-day deadline, flags them on the timeline and
reminds the agency that must act, once per step. Military (priority) transfers are reminded first."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from gateway.domain.model import SHANGHAI
from gateway.errors import Unavailable
from gateway.service import TransferService

log = logging.getLogger("sigw.sweeper")


class OverdueSweeper:
    def __init__(
        self, service: TransferService, registry: CollectorRegistry, *, interval_s: float = 60.0, batch: int = 500
    ) -> None:
        self.service = service
        self.interval_s = interval_s
        self.batch = batch
        self.reminders = Counter(
            "sigw_overdue_reminders_total", "Overdue steps flagged and reminded, by lane.", ["lane"], registry=registry
        )
        self.stopping = asyncio.Event()

    async def sweep(self) -> int:
        """One pass; returns how many steps it reminded."""
        today = self.service.clock().astimezone(SHANGHAI).date()
        due = await self.service.store.due_before(today, self.batch)
        found = await self.service.store.get_many([tid for tid, _ in due])
        ordered = sorted((t for t in found if t is not None), key=lambda t: not t.priority)
        reminded = 0
        for transfer in ordered:
            if await self.service.remind(transfer.transfer_id):
                reminded += 1
                self.reminders.labels("priority" if transfer.priority else "ordinary").inc()
        return reminded

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                count = await self.sweep()
                if count:
                    log.info("reminded %d overdue steps", count)
            except (RedisError, OSError, Unavailable) as exc:
                log.warning("sweep skipped (%s)", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=self.interval_s)
