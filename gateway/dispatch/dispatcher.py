"""Delivers committed messages to agencies: at least once, durably, fairly, priority lane first.

Two stages (key layout in ``gateway.store.keys``):

1. **Route.** Each shard's outbox stream is read by the consumer group ``route``; each message is appended to its
   recipient agency's lane stream (``priority`` for military transfers, else ``ordinary``), then acknowledged. A
   crash in between routes it twice; the agency deduplicates by message id.
2. **Deliver.** Each agency has its own worker reading its two lanes (consumer group ``dispatch``), so a flooded
   or dead agency holds up no other. The worker takes the priority lane first, but when both lanes have work at
   least one delivery in ``ordinary_share`` goes to the ordinary lane, so it is never starved. It delivers one
   transfer's messages in order, never two at once (across gateway processes order is not guaranteed, so every
   notice carries the transfer's state). A message stays pending until the agency took it (then it is
   acknowledged and deleted) or it went to the dead letters.

Failures follow ``gateway.dispatch.retry``: transient ones are retried with backoff; a delivery still failing
after its retries counts against the agency's circuit breaker and stays pending, to be tried again when the
circuit lets it (a dead region costs one probe at a time); a permanent failure, or a message older than
``max_age_s``, goes to the dead letters with its reason and attempt history.

Messages another (dead) gateway process had taken are claimed with ``XAUTOCLAIM`` once idle for
``claim_idle_ms``; a restarted process with the same consumer name resumes its own pending messages at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.exceptions import RedisError, ResponseError

from gateway.app.ports import AgencyGateway, NoTracing, Tracing
from gateway.dispatch.retry import RetryPolicy
from gateway.dispatch.router import OutboxRouter
from gateway.dispatch.worker import AgencyWorker, Fields, lane_of
from gateway.domain.regions import Registry
from gateway.security.crypto import FieldCipher
from gateway.store import keys

__all__ = ["DispatchMetrics", "DispatchSettings", "Dispatcher"]

log = logging.getLogger("sigw.dispatch")


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class DispatchSettings:
    shards: int
    concurrency: int = 4
    """Calls in flight per agency, per gateway process."""
    batch_size: int = 100
    """Messages per DeliverBatch call, at most."""
    batch_call_s: float = 0.1
    """A batch is cut to what its agency takes in about this long (from the time its calls took so far), so a
    military message waits behind the calls in flight for about ``concurrency`` x this, however slow the agency."""
    block_ms: int = 500
    route_batch: int = 200
    claim_idle_ms: int = 30_000
    """A pending message idle this long belongs to a dead consumer and is claimed."""
    ordinary_share: int = 10
    """When both lanes have work, at least one delivery in this many goes to the ordinary lane."""
    max_age_s: float = 7 * 24 * 3600.0
    """A message still undelivered this long after it was committed goes to the dead letters."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker_threshold: int = 2
    breaker_open_s: float = 1.0
    breaker_max_open_s: float = 30.0
    consumer: str = field(default_factory=consumer_name)
    """This process's consumer name; keep it across restarts to resume its pending messages at once."""
    breaker_clock: Callable[[], float] = time.monotonic
    """Monotonic seconds for the circuit breakers' open periods (tests inject one they move by hand)."""


class DispatchMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.delivered = Counter(
            "sigw_deliveries_total",
            "Messages delivered, by notice, lane and outcome.",
            ["notice", "lane", "outcome"],
            registry=registry,
        )
        self.attempts = Counter(
            "sigw_delivery_attempts_total", "Delivery attempts, by gRPC code.", ["code"], registry=registry
        )
        self.wait = Histogram(
            "sigw_delivery_wait_seconds",
            "Time from commit to delivery, by lane.",
            ["lane"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
        )
        self.circuit_opened = Counter(
            "sigw_circuit_opened_total", "Times an agency's circuit opened.", ["agency"], registry=registry
        )
        self.circuit_open = Gauge(
            "sigw_circuit_open",
            "1 while a recipient's circuit is open or half open (its deliveries paused), else 0.",
            ["agency"],
            registry=registry,
            multiprocess_mode="max",
        )


class Dispatcher:
    def __init__(
        self,
        client: aioredis.Redis,
        registry: Registry,
        agencies: AgencyGateway,
        settings: DispatchSettings,
        metrics: DispatchMetrics,
        cipher: FieldCipher,
        tracing: Tracing | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.tracing = tracing or NoTracing()
        self.client = client
        self.registry = registry
        self.agencies = agencies
        self.settings = settings
        self.metrics = metrics
        self.clock_ms = clock_ms
        self.consumer = settings.consumer
        self.cipher = cipher
        self.stopping = asyncio.Event()
        self.workers = {d: AgencyWorker(self, d) for d in registry.destinations()}

    def stop(self) -> None:
        self.stopping.set()

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stopping.wait()

    async def _create_group(self, stream: str, group: str) -> None:
        try:
            await self.client.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def ensure_groups(self) -> None:
        for shard in range(self.settings.shards):
            await self._create_group(keys.outbox(shard), keys.ROUTE_GROUP)
        for agency in self.workers:
            for lane in keys.LANES:
                await self._create_group(keys.agency_lane(str(agency), lane), keys.CONSUMER_GROUP)

    async def run(self) -> None:
        """Route and deliver until ``stop()``; waits out Redis outages."""
        while not self.stopping.is_set():
            try:
                await self.ensure_groups()
                break
            except (RedisError, OSError):
                await self.pause(1.0)
        await asyncio.gather(
            *(OutboxRouter(self, shard).run() for shard in range(self.settings.shards)),
            *(worker.run() for worker in self.workers.values()),
        )

    # ---------------------------------------------------------------------------------------- dead letters

    def add_dead_letter(self, pipe: Any, fields: Fields, reason: str, history: list[str]) -> None:
        log.warning(
            "message %s to %s dead-lettered: %s", fields[b"message_id"].decode(), fields[b"recipient"].decode(), reason
        )
        pipe.xadd(
            keys.DEAD_LETTERS,
            {
                **cast(dict[Any, Any], fields),
                b"reason": reason,
                b"attempts": "\n".join(history),
                b"dead_ms": str(self.clock_ms()),
            },
        )
        self.metrics.delivered.labels(fields[b"notice"].decode(), lane_of(fields), "dead_letter").inc()
