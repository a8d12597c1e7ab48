"""The overdue sweeper: finds open steps past their working-day deadline, flags them on the timeline and
reminds the agency that must act, once per step. Military (priority) transfers are reminded first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from gateway.app.transfers import TransferService
from gateway.domain.errors import Unavailable

__all__ = ["OverdueSweeper"]

log = logging.getLogger("sigw.sweeper")


class OverdueSweeper:
    def __init__(
        self,
        service: TransferService,
        *,
        interval_s: float = 60.0,
        batch: int = 500,
        on_reminded: Callable[[str], None] = lambda lane: None,
    ) -> None:
        """``on_reminded(lane)`` is called for each reminder sent (metrics)."""
        self.service = service
        self.interval_s = interval_s
        self.batch = batch
        self.on_reminded = on_reminded
        self.stopping = asyncio.Event()

    async def sweep_quiet(self) -> list[str]:
        """One pass over the steps that fell quiet: each one's notice once more; the transfers renotified."""
        store = self.service.store
        now = self.service.clock()
        quiet_for = f"{store.quiet_after.total_seconds() / 60:g} minutes"
        renotified = []
        for transfer_id, step in await store.quiet_before(now, self.batch):
            if await self.service.renotify(transfer_id, step, quiet_for):
                renotified.append(transfer_id)
            await store.forget_quiet(transfer_id, step)
        return renotified

    async def sweep(self) -> list[str]:
        """One pass; returns the transfers it reminded, in the order it did (priority first)."""
        store = self.service.store
        due = await store.due_before(self.service.today(), self.batch)
        found = await store.get_many([tid for tid, _ in due])
        ordered = sorted((t for t in found if t is not None), key=lambda t: not t.priority)
        reminded = []
        for transfer in ordered:
            if await self.service.remind(transfer.transfer_id):
                reminded.append(transfer.transfer_id)
                self.on_reminded(transfer.lane)
        return reminded

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                reminded = await self.sweep()
                if reminded:
                    log.info("reminded %d overdue steps", len(reminded))
                renotified = await self.sweep_quiet()
                if renotified:
                    log.info("sent %d quiet steps' notices once more", len(renotified))
            except (OSError, Unavailable) as exc:
                log.warning("sweep skipped (%s)", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self.stopping.wait()
