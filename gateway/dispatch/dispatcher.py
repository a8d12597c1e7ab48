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
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.exceptions import RedisError, ResponseError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_after_delay

from adapters.agency_client import AgencyClients, DeliveryFailed
from gateway._gen.sigw.v1 import agency_pb2
from gateway.config import Registry
from gateway.dispatch.circuit import CircuitBreaker, CircuitState
from gateway.dispatch.retry import BackoffWithPushback, RetryPolicy, is_transient
from gateway.domain.transfer.model import AgencyKey
from gateway.security.crypto import FieldCipher
from gateway.store import codec, keys
from gateway.store.transfers import StreamRows, open_body

log = logging.getLogger("sigw.dispatch")

Fields = dict[bytes, bytes]


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class DispatchSettings:
    shards: int
    concurrency: int = 4
    """Deliveries in flight per agency, per gateway process."""
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


def _lane_of(fields: Fields) -> str:
    return fields.get(b"lane", b"ordinary").decode()


class Dispatcher:
    def __init__(
        self,
        client: aioredis.Redis,
        registry: Registry,
        agencies: AgencyClients,
        settings: DispatchSettings,
        metrics: DispatchMetrics,
        cipher: FieldCipher,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.client = client
        self.registry = registry
        self.agencies = agencies
        self.settings = settings
        self.metrics = metrics
        self.clock_ms = clock_ms
        self.consumer = settings.consumer
        self.cipher = cipher
        self.stopping = asyncio.Event()
        self.workers = {
            agency: AgencyWorker(self, agency, endpoint)
            for agency in registry.agencies()
            if (endpoint := registry.endpoint(agency))
        }

    def stop(self) -> None:
        self.stopping.set()

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

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
            *(self._route(shard) for shard in range(self.settings.shards)),
            *(worker.run() for worker in self.workers.values()),
        )

    # ------------------------------------------------------------------------------------------------ route

    async def _route(self, shard: int) -> None:
        stream = keys.outbox(shard)
        next_claim = 0.0
        while not self.stopping.is_set():
            try:
                entries: StreamRows = []
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + self.settings.claim_idle_ms / 2000
                    claimed = await self.client.xautoclaim(
                        stream,
                        keys.ROUTE_GROUP,
                        self.consumer,
                        self.settings.claim_idle_ms,
                        "0-0",
                        count=self.settings.route_batch,
                    )
                    entries = claimed[1]  # [next id, entries] (Redis 7 adds deleted ids)
                if not entries:
                    reply = cast(
                        list[tuple[bytes, StreamRows]],
                        await self.client.xreadgroup(
                            keys.ROUTE_GROUP,
                            self.consumer,
                            {stream: ">"},
                            count=self.settings.route_batch,
                            block=self.settings.block_ms,
                        ),
                    )
                    entries = [entry for _, rows in reply for entry in rows]
                if entries:
                    await self._route_entries(stream, entries)
            except (RedisError, OSError) as exc:
                log.warning("outbox %s unreadable (%s); retrying", stream, type(exc).__name__)
                await self.pause(1.0)

    async def _route_entries(self, stream: str, entries: StreamRows) -> None:
        pipe = self.client.pipeline(transaction=False)
        for _, fields in entries:
            if not fields:
                continue
            recipient = codec.parse_agency(fields[b"recipient"].decode())
            if recipient in self.workers:
                pipe.xadd(keys.agency_lane(str(recipient), _lane_of(fields)), cast(dict[Any, Any], fields))
            else:
                self._add_dead_letter(pipe, fields, f"no endpoint for agency {recipient}", [])
        await pipe.execute()
        done = self.client.pipeline(transaction=True)
        ids = [entry_id for entry_id, _ in entries]
        done.xack(stream, keys.ROUTE_GROUP, *ids)
        done.xdel(stream, *ids)
        await done.execute()

    # ---------------------------------------------------------------------------------------- dead letters

    def _add_dead_letter(self, pipe: Any, fields: Fields, reason: str, history: list[str]) -> None:
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
        self.metrics.delivered.labels(fields[b"notice"].decode(), _lane_of(fields), "dead_letter").inc()

    async def lane_depths(self) -> dict[str, int]:
        """Messages waiting (or in flight) per lane, over all agencies."""
        pipe = self.client.pipeline(transaction=False)
        names = [(lane, keys.agency_lane(str(agency), lane)) for agency in self.workers for lane in keys.LANES]
        for _, stream in names:
            pipe.xlen(stream)
        depths = dict.fromkeys(keys.LANES, 0)
        for (lane, _), length in zip(names, await pipe.execute(), strict=True):
            depths[lane] += int(length)
        return depths


@dataclass
class _Entry:
    lane: str
    entry_id: bytes
    fields: Fields
    eligible_at: float = 0.0
    history: list[str] = field(default_factory=list)

    @property
    def transfer_id(self) -> bytes:
        return self.fields.get(b"transfer_id", b"")

    @property
    def order(self) -> tuple[int, int]:
        ms, _, seq = self.entry_id.partition(b"-")
        return int(ms), int(seq or 0)


class AgencyWorker:
    """Delivers one agency's messages: priority lane first, a guaranteed share for the ordinary lane, behind
    the agency's own circuit breaker and concurrency limit."""

    def __init__(self, dispatcher: Dispatcher, agency: AgencyKey, endpoint: str) -> None:
        self.d = dispatcher
        self.agency = agency
        self.endpoint = endpoint
        s = dispatcher.settings
        self.streams = {lane: keys.agency_lane(str(agency), lane) for lane in keys.LANES}
        self.breaker = CircuitBreaker(s.breaker_threshold, s.breaker_open_s, s.breaker_max_open_s)
        self.in_flight: dict[bytes, asyncio.Task[None]] = {}
        self.in_flight_entries: dict[bytes, _Entry] = {}
        self.waiting: dict[bytes, _Entry] = {}  # read, not delivered yet: failed transiently, or resumed
        self.priority_run = 0
        self.next_claim = 0.0

    async def run(self) -> None:
        resumed = False
        while not self.d.stopping.is_set():
            try:
                if not resumed:
                    await self._resume_own_pending()
                    resumed = True
                await self._step()
            except (RedisError, OSError) as exc:
                log.warning("agency %s lanes unreadable (%s); retrying", self.agency, type(exc).__name__)
                await self.d.pause(1.0)
        if self.in_flight:
            await asyncio.gather(*self.in_flight.values(), return_exceptions=True)

    async def _resume_own_pending(self) -> None:
        """Messages this consumer had read before a restart: eligible at once."""
        for lane, stream in self.streams.items():
            start = "0"
            while True:
                reply = cast(
                    list[tuple[bytes, StreamRows]],
                    await self.d.client.xreadgroup(keys.CONSUMER_GROUP, self.d.consumer, {stream: start}, count=100),
                )
                rows = [row for _, rs in reply for row in rs]
                if not rows:
                    break
                for entry_id, fields in rows:
                    self.waiting[entry_id] = _Entry(lane, entry_id, fields)
                start = rows[-1][0].decode()

    async def _step(self) -> None:
        wait = self.breaker.wait_s()
        if wait:
            await self.d.pause(min(wait, 1.0))
            return
        limit = 1 if self.breaker.state is CircuitState.HALF_OPEN else self.d.settings.concurrency
        free = limit - len(self.in_flight)
        if free <= 0:
            await asyncio.wait(self.in_flight.values(), timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            return
        entries = await self._next(free, block=not self.in_flight and not self._eligible_soon())
        if not entries:
            if self.in_flight:
                await asyncio.wait(
                    self.in_flight.values(),
                    timeout=self.d.settings.block_ms / 1000,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            elif self.waiting:
                await self.d.pause(0.05)
            return
        for entry in entries:
            if self._behind(entry):  # keep one transfer's messages in order: wait for the earlier one
                entry.eligible_at = time.monotonic() + 0.02
                self.waiting[entry.entry_id] = entry
                continue
            self.waiting.pop(entry.entry_id, None)
            task = asyncio.create_task(self._deliver(entry, probe=self.breaker.state is CircuitState.HALF_OPEN))
            self.in_flight[entry.entry_id] = task
            self.in_flight_entries[entry.entry_id] = entry
            task.add_done_callback(self._forget(entry.entry_id))

    def _behind(self, entry: _Entry) -> bool:
        """Another message of the same transfer is in flight, or waits from earlier in the lane."""
        if not entry.transfer_id:
            return False
        if any(other.transfer_id == entry.transfer_id for other in self.in_flight_entries.values()):
            return True
        return any(
            other.transfer_id == entry.transfer_id and other.order < entry.order
            for other in self.waiting.values()
            if other.entry_id != entry.entry_id
        )

    def _forget(self, entry_id: bytes) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self.in_flight.pop(entry_id, None)
            self.in_flight_entries.pop(entry_id, None)

        return forget

    def _eligible_soon(self) -> bool:
        return any(e.eligible_at <= time.monotonic() + 0.05 for e in self.waiting.values())

    async def _next(self, free: int, *, block: bool) -> list[_Entry]:
        """Up to ``free`` entries: waiting ones that are due, then claimed from dead consumers, then new ones,
        priority first with the ordinary lane's guaranteed share."""
        now = time.monotonic()
        due = sorted(
            (e for e in self.waiting.values() if e.eligible_at <= now and e.entry_id not in self.in_flight),
            key=lambda e: (e.lane != "priority", e.order),
        )
        picked = due[:free]
        if len(picked) < free and now >= self.next_claim:
            self.next_claim = now + self.d.settings.claim_idle_ms / 2000
            picked += await self._claim(free - len(picked))
        if len(picked) < free:
            picked += await self._read_new(free - len(picked), block=block and not picked)
        for entry in picked:
            self.priority_run = self.priority_run + 1 if entry.lane == "priority" else 0
        return picked

    async def _claim(self, count: int) -> list[_Entry]:
        found: list[_Entry] = []
        for lane in keys.LANES:
            if len(found) >= count:
                break
            claimed = await self.d.client.xautoclaim(
                self.streams[lane],
                keys.CONSUMER_GROUP,
                self.d.consumer,
                self.d.settings.claim_idle_ms,
                "0-0",
                count=count - len(found),
            )
            found += [_Entry(lane, eid, f) for eid, f in claimed[1] if f and eid not in self.in_flight]
        return found

    async def _read_new(self, count: int, *, block: bool) -> list[_Entry]:
        ordinary_first = self.priority_run >= self.d.settings.ordinary_share - 1
        order = ("ordinary", "priority") if ordinary_first else ("priority", "ordinary")
        found: list[_Entry] = []
        for lane in order:
            want = 1 if lane == "ordinary" and ordinary_first else count - len(found)
            if want <= 0:
                continue
            reply = cast(
                list[tuple[bytes, StreamRows]],
                await self.d.client.xreadgroup(
                    keys.CONSUMER_GROUP, self.d.consumer, {self.streams[lane]: ">"}, count=want
                ),
            )
            found += [_Entry(lane, eid, f) for _, rows in reply for eid, f in rows if f]
        if not found and block:
            # Nothing anywhere: wait for either lane, priority listed first.
            reply = cast(
                list[tuple[bytes, StreamRows]],
                await self.d.client.xreadgroup(
                    keys.CONSUMER_GROUP,
                    self.d.consumer,
                    {self.streams["priority"]: ">", self.streams["ordinary"]: ">"},
                    count=1,
                    block=self.d.settings.block_ms,
                ),
            )
            for stream, rows in reply:
                lane = "priority" if stream.decode() == self.streams["priority"] else "ordinary"
                found += [_Entry(lane, eid, f) for eid, f in rows if f]
        return found

    async def _deliver(self, entry: _Entry, *, probe: bool) -> None:
        fields = entry.fields
        notice = fields[b"notice"].decode()
        request = agency_pb2.DeliverRequest.FromString(
            open_body(self.d.cipher, fields[b"message_id"].decode(), fields[b"body"])
        )
        policy = self.d.settings.retry
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient),
                wait=BackoffWithPushback(policy),
                stop=stop_after_attempt(1 if probe else policy.max_attempts) | stop_after_delay(policy.max_delay_s),
                reraise=True,
            ):
                with attempt:
                    try:
                        await self.d.agencies.deliver(self.endpoint, request, policy.attempt_timeout_s)
                    except DeliveryFailed as failed:
                        entry.history.append(f"{self.d.clock_ms()} {failed}")
                        self.d.metrics.attempts.labels(failed.code.name).inc()
                        raise
        except DeliveryFailed as failed:
            await self._failed(entry, failed)
            return
        self.breaker.record_success()
        self.d.metrics.attempts.labels("OK").inc()
        self.d.metrics.delivered.labels(notice, entry.lane, "delivered").inc()
        waited = max(0, self.d.clock_ms() - int(fields[b"enqueued_ms"])) / 1000
        self.d.metrics.wait.labels(entry.lane).observe(waited)
        try:
            pipe = self.d.client.pipeline(transaction=True)
            pipe.xack(self.streams[entry.lane], keys.CONSUMER_GROUP, entry.entry_id)
            pipe.xdel(self.streams[entry.lane], entry.entry_id)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            # Still pending: delivered again later, and the agency dedups the repeat.
            log.warning("could not acknowledge %s (%s)", entry.entry_id.decode(), type(exc).__name__)

    async def _failed(self, entry: _Entry, failed: DeliveryFailed) -> None:
        age_s = (self.d.clock_ms() - int(entry.fields[b"enqueued_ms"])) / 1000
        if is_transient(failed) and age_s < self.d.settings.max_age_s:
            was_open = self.breaker.state is CircuitState.OPEN
            self.breaker.record_failure()
            if self.breaker.state is CircuitState.OPEN and not was_open:
                self.d.metrics.circuit_opened.labels(str(self.agency)).inc()
                log.warning("agency %s unreachable (%s): circuit open", self.agency, failed.code.name)
            entry.eligible_at = time.monotonic() + max(self.breaker.wait_s(), failed.retry_after_s or 0.0, 0.05)
            self.waiting[entry.entry_id] = entry
            return
        reason = str(failed) if not is_transient(failed) else f"undelivered after {age_s:.0f} s: {failed}"
        try:
            pipe = self.d.client.pipeline(transaction=True)
            self.d._add_dead_letter(pipe, {**entry.fields, b"lane": entry.lane.encode()}, reason, entry.history)
            pipe.xack(self.streams[entry.lane], keys.CONSUMER_GROUP, entry.entry_id)
            pipe.xdel(self.streams[entry.lane], entry.entry_id)
            await pipe.execute()
        except (RedisError, OSError):
            self.waiting[entry.entry_id] = entry  # try again later
