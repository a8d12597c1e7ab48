"""The overdue sweeper: finds open steps past their working-day deadline, flags them on the timeline and
reminds the agency that must act, once per step. Military (priority) transfers are reminded first."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from gateway.app.transfers import TransferService
from gateway.domain.errors import Unavailable
from gateway.domain.transfer.model import SHANGHAI

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

    async def sweep(self) -> list[str]:
        """One pass; returns the transfers it reminded, in the order it did (priority first)."""
        today = self.service.clock().astimezone(SHANGHAI).date()
        due = await self.service.store.due_before(today, self.batch)
        found = await self.service.store.get_many([tid for tid, _ in due])
        ordered = sorted((t for t in found if t is not None), key=lambda t: not t.priority)
        reminded = []
        for transfer in ordered:
            if await self.service.remind(transfer.transfer_id):
                reminded.append(transfer.transfer_id)
                self.reminders.labels("priority" if transfer.priority else "ordinary").inc()
        return reminded

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                reminded = await self.sweep()
                if reminded:
                    log.info("reminded %d overdue steps", len(reminded))
            except (RedisError, OSError, Unavailable) as exc:
                log.warning("sweep skipped (%s)", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=self.interval_s)
