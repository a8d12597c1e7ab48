"""Delivers outbox messages to agencies: at least once, from Redis Streams consumer groups.

Each shard's outbox stream is read by the consumer group ``dispatch``. A message stays pending until its
agency took it (then it is acknowledged and deleted) or it went to the dead letters. Messages left pending by
a dead gateway process are claimed by a live one with ``XAUTOCLAIM`` once idle for ``claim_idle_ms``.
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

import grpc
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.exceptions import RedisError, ResponseError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_after_delay

from adapters.agency_client import AgencyClients, DeliveryFailed
from gateway._gen.sigw.v1 import agency_pb2
from gateway.config import Registry
from gateway.dispatch.retry import BackoffWithPushback, RetryPolicy, is_transient
from gateway.store import codec, keys
from gateway.store.transfers import StreamRows

log = logging.getLogger("sigw.dispatch")

LANES = ("ordinary",)


@dataclass(frozen=True)
class DispatchSettings:
    shards: int
    concurrency: int = 4
    """Deliveries in flight per shard."""
    batch: int = 16
    block_ms: int = 500
    claim_idle_ms: int = 15_000
    """A pending message idle this long belongs to a dead consumer and is claimed."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class DispatchMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.delivered = Counter(
            "sigw_deliveries_total",
            "Outbox messages delivered, by notice and outcome.",
            ["notice", "outcome"],
            registry=registry,
        )
        self.attempts = Counter(
            "sigw_delivery_attempts_total", "Delivery attempts, by final gRPC code.", ["code"], registry=registry
        )
        self.wait = Histogram(
            "sigw_delivery_wait_seconds",
            "Time from enqueue to delivery, by lane.",
            ["lane"],
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600),
        )


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Dispatcher:
    def __init__(
        self,
        client: aioredis.Redis,
        registry: Registry,
        agencies: AgencyClients,
        settings: DispatchSettings,
        metrics: DispatchMetrics,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.client = client
        self.registry = registry
        self.agencies = agencies
        self.settings = settings
        self.metrics = metrics
        self.clock_ms = clock_ms
        self.consumer = consumer_name()
        self._stopping = asyncio.Event()

    async def ensure_groups(self) -> None:
        for shard in range(self.settings.shards):
            for lane in LANES:
                try:
                    await self.client.xgroup_create(
                        keys.outbox(shard, lane), keys.CONSUMER_GROUP, id="0", mkstream=True
                    )
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Deliver until ``stop()``; survives Redis outages by waiting and trying again."""
        while not self._stopping.is_set():
            try:
                await self.ensure_groups()
                break
            except (RedisError, OSError):
                await self._pause(1.0)
        await asyncio.gather(
            *(self._shard_loop(shard, lane) for shard in range(self.settings.shards) for lane in LANES)
        )

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _shard_loop(self, shard: int, lane: str) -> None:
        stream = keys.outbox(shard, lane)
        slots = asyncio.Semaphore(self.settings.concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        next_claim = 0.0
        while not self._stopping.is_set():
            try:
                entries: list[tuple[bytes, dict[bytes, bytes]]] = []
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + self.settings.claim_idle_ms / 2000
                    claimed = await self.client.xautoclaim(
                        stream,
                        keys.CONSUMER_GROUP,
                        self.consumer,
                        self.settings.claim_idle_ms,
                        "0-0",
                        count=self.settings.batch,
                    )
                    entries = claimed[1]  # [next id, entries] (Redis 7 adds deleted ids)
                if not entries:
                    reply = cast(
                        list[tuple[bytes, StreamRows]],
                        await self.client.xreadgroup(
                            keys.CONSUMER_GROUP,
                            self.consumer,
                            {stream: ">"},
                            count=self.settings.batch,
                            block=self.settings.block_ms,
                        ),
                    )
                    entries = [entry for _, rows in reply for entry in rows]
            except (RedisError, OSError) as exc:
                log.warning("outbox %s unreadable (%s); retrying", stream, type(exc).__name__)
                await self._pause(1.0)
                continue
            for entry_id, fields in entries:
                if not fields:  # deleted while pending
                    await self._ack(stream, entry_id)
                    continue
                await slots.acquire()
                task = asyncio.create_task(self._deliver(stream, entry_id, fields))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                task.add_done_callback(lambda _: slots.release())
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _ack(self, stream: str, entry_id: bytes) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(stream, keys.CONSUMER_GROUP, entry_id)
        pipe.xdel(stream, entry_id)
        await pipe.execute()

    async def _deliver(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        get = {k.decode(): v for k, v in fields.items()}
        notice = get["notice"].decode()
        recipient = codec.parse_agency(get["recipient"].decode())
        request = agency_pb2.DeliverRequest.FromString(get["body"])
        endpoint = self.registry.endpoint(recipient)
        policy = self.settings.retry
        history: list[str] = []
        try:
            if endpoint is None:
                raise DeliveryFailed(code=grpc.StatusCode.NOT_FOUND, detail=f"no endpoint for agency {recipient}")
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient),
                wait=BackoffWithPushback(policy),
                stop=stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.max_delay_s),
                reraise=True,
            ):
                with attempt:
                    try:
                        await self.agencies.deliver(endpoint, request, policy.attempt_timeout_s)
                    except DeliveryFailed as failed:
                        history.append(f"{int(time.time() * 1000)} {failed}")
                        self.metrics.attempts.labels(failed.code.name).inc()
                        raise
            self.metrics.attempts.labels("OK").inc()
            self.metrics.delivered.labels(notice, "delivered").inc()
            lane = get.get("lane", b"ordinary").decode()
            self.metrics.wait.labels(lane).observe(max(0, self.clock_ms() - int(get["enqueued_ms"])) / 1000)
            await self._ack(stream, entry_id)
        except DeliveryFailed as failed:
            await self._dead_letter(stream, entry_id, get, str(failed), history)
            self.metrics.delivered.labels(notice, "dead_letter").inc()
        except (RedisError, OSError) as exc:
            # Left pending: XAUTOCLAIM hands it to a live consumer, and the agency dedups the repeat.
            log.warning("could not settle outbox entry %s (%s)", entry_id.decode(), type(exc).__name__)
        except asyncio.CancelledError:
            raise

    async def _dead_letter(
        self, stream: str, entry_id: bytes, fields: dict[str, bytes], reason: str, history: list[str]
    ) -> None:
        log.warning(
            "message %s to %s dead-lettered: %s", fields["message_id"].decode(), fields["recipient"].decode(), reason
        )
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(
            keys.DEAD_LETTERS,
            {
                **cast(dict[Any, Any], fields),
                "reason": reason,
                "attempts": "\n".join(history),
                "source_stream": stream,
                "dead_ms": str(self.clock_ms()),
            },
        )
        pipe.xack(stream, keys.CONSUMER_GROUP, entry_id)
        pipe.xdel(stream, entry_id)
        await pipe.execute()
