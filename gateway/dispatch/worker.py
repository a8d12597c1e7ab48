"""One agency's deliveries: its two lanes, priority first with a guaranteed share for the ordinary lane, behind
its own circuit breaker and concurrency limit, one transfer's messages in order (see ``gateway.dispatch.dispatcher``
for the whole)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from redis.exceptions import RedisError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_after_delay

from gateway.app.ports import AgencyCallFailed
from gateway.dispatch.circuit import CircuitBreaker, CircuitState
from gateway.dispatch.retry import BackoffWithPushback, is_transient
from gateway.domain.participants import Destination, PortalKey
from gateway.store import codec, keys
from gateway.store.client import StreamRows

if TYPE_CHECKING:
    from gateway.dispatch.dispatcher import Dispatcher

__all__ = ["AgencyWorker", "Fields", "lane_of"]

log = logging.getLogger("sigw.dispatch")

Fields = dict[bytes, bytes]


def lane_of(fields: Fields) -> str:
    return fields.get(b"lane", b"ordinary").decode()


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

    def __init__(self, dispatcher: Dispatcher, agency: Destination) -> None:
        self.d = dispatcher
        self.agency = agency
        s = dispatcher.settings
        self.streams = {lane: keys.agency_lane(str(agency), lane) for lane in keys.LANES}
        self.breaker = CircuitBreaker(s.breaker_threshold, s.breaker_open_s, s.breaker_max_open_s, s.breaker_clock)
        self.in_flight: dict[bytes, asyncio.Task[None]] = {}
        self.in_flight_entries: dict[bytes, _Entry] = {}
        self.waiting: dict[bytes, _Entry] = {}  # read, not delivered yet: failed transiently, or resumed
        self.priority_run = 0
        self.next_claim = 0.0
        self.batching = not isinstance(agency, PortalKey)
        """Several messages per call (DeliverBatch), until the agency says it does not implement it (a portal's
        NotifyService takes one notice per call)."""
        self.seconds_per_message = 0.0
        """How long the agency's calls took per message (moving average)."""

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
                resumed = False  # a blocking read may have taken entries whose reply never arrived
                await self.d.pause(1.0)
        if self.in_flight:
            await asyncio.gather(*self.in_flight.values(), return_exceptions=True)

    async def _resume_own_pending(self) -> None:
        """Messages this consumer had read and not finished (before a restart, or a read whose reply was lost):
        eligible at once, unless already in flight or waiting here."""
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
                    if entry_id not in self.in_flight_entries and entry_id not in self.waiting:
                        self.waiting[entry_id] = _Entry(lane, entry_id, fields)
                start = rows[-1][0].decode()

    async def _step(self) -> None:
        wait = self.breaker.wait_s()
        if wait:
            await self.d.pause(min(wait, 1.0))
            return
        probe = self.breaker.state is CircuitState.HALF_OPEN
        limit = 1 if probe else self.d.settings.concurrency
        free = limit - len(self.in_flight)
        if free <= 0:
            await asyncio.wait(self.in_flight.values(), timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            return
        want = 1 if probe else self._batch_limit() if self.batching else free
        entries = await self._next(want, block=not self.in_flight and not self._eligible_soon())
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
        ready: list[_Entry] = []
        for entry in entries:
            if self._behind(entry):  # keep one transfer's messages in order: wait for the earlier one
                entry.eligible_at = time.monotonic() + 0.02
                self.waiting[entry.entry_id] = entry
                continue
            self.waiting.pop(entry.entry_id, None)
            self.in_flight_entries[entry.entry_id] = entry
            ready.append(entry)
        for group in [ready] if self.batching else [[e] for e in ready]:
            if group:
                task = asyncio.create_task(self._deliver(group, probe=probe))
                self.in_flight[group[0].entry_id] = task
                task.add_done_callback(self._forget(group))

    def _show_circuit(self) -> None:
        shut = self.breaker.state is CircuitState.CLOSED
        self.d.metrics.circuit_open.labels(str(self.agency)).set(0 if shut else 1)

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

    def _batch_limit(self) -> int:
        """Messages for the next call: as many as the agency takes in ``batch_call_s`` (up to ``batch_size``)."""
        s = self.d.settings
        if self.seconds_per_message <= 0:
            return s.batch_size
        return max(1, min(s.batch_size, int(s.batch_call_s / self.seconds_per_message)))

    def _forget(self, group: list[_Entry]) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self.in_flight.pop(group[0].entry_id, None)
            for entry in group:
                self.in_flight_entries.pop(entry.entry_id, None)

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
        picked = self._shared([e for e in due if e.lane == "priority"], [e for e in due if e.lane == "ordinary"], free)
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

    def _ordinary_share(self, count: int) -> int:
        """How many of a pick of ``count`` the ordinary lane is owed first: a tenth (at least one) of every batch,
        and the single delivery once the priority lane had its run; else none."""
        if count > 1 or self.priority_run >= self.d.settings.ordinary_share - 1:
            return max(1, count // self.d.settings.ordinary_share)
        return 0

    def _shared(self, priority: list[_Entry], ordinary: list[_Entry], count: int) -> list[_Entry]:
        """Up to ``count`` of these, priority first but with the ordinary lane's share."""
        taken = priority[: count - min(len(ordinary), self._ordinary_share(count))]
        return taken + ordinary[: count - len(taken)]  # priority first within the call

    async def _read_new(self, count: int, *, block: bool) -> list[_Entry]:
        share = self._ordinary_share(count)
        plan: list[tuple[str, int | None]] = [("priority", None), ("ordinary", None)]
        if share:
            plan = [("ordinary", share), *plan]  # its share, then priority, then ordinary fills what is left
        found: list[_Entry] = []
        for lane, cap in plan:
            want = count - len(found) if cap is None else min(cap, count - len(found))
            if want <= 0:
                continue
            reply = cast(
                list[tuple[bytes, StreamRows]],
                await self.d.client.xreadgroup(
                    keys.CONSUMER_GROUP, self.d.consumer, {self.streams[lane]: ">"}, count=want
                ),
            )
            found += [_Entry(lane, eid, f) for _, rows in reply for eid, f in rows if f]
        found.sort(key=lambda e: e.lane != "priority")  # within the call, priority first (a stable sort)
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

    async def _call(self, group: list[_Entry], bodies: list[bytes], timeout_s: float) -> list[bool | AgencyCallFailed]:
        """One attempt: a single message by Deliver, several by DeliverBatch."""
        parents = [e.fields.get(b"traceparent", b"").decode() for e in group]
        try:
            with self.d.tracing.delivering(f"deliver to {self.agency}", parents):
                if len(bodies) == 1:
                    return [await self.d.agencies.deliver(self.agency, bodies[0], timeout_s)]
                return await self.d.agencies.deliver_batch(self.agency, bodies, timeout_s)
        except AgencyCallFailed as failed:
            for entry in group:
                entry.history.append(f"{self.d.clock_ms()} {failed}")
            self.d.metrics.attempts.labels(failed.code).inc()
            raise

    async def _deliver(self, group: list[_Entry], *, probe: bool) -> None:
        """Deliver a group of messages in one call (retried as a whole while the call fails transiently), then
        acknowledge what the agency took and handle each message it did not."""
        bodies = [codec.open_body(self.d.cipher, e.fields[b"message_id"].decode(), e.fields[b"body"]) for e in group]
        policy = self.d.settings.retry
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient),
                wait=BackoffWithPushback(policy),
                stop=stop_after_attempt(1 if probe else policy.max_attempts) | stop_after_delay(policy.max_delay_s),
                reraise=True,
            ):
                with attempt:
                    started = time.monotonic()
                    outcomes = await self._call(group, bodies, policy.attempt_timeout_s)
                    took = (time.monotonic() - started) / len(group)
                    self.seconds_per_message = (
                        0.7 * self.seconds_per_message + 0.3 * took if self.seconds_per_message else took
                    )
        except AgencyCallFailed as failed:
            if failed.code == "UNIMPLEMENTED" and len(group) > 1:
                log.info("agency %s takes no batches: delivering one message per call", self.agency)
                self.batching = False
                for entry in group:
                    self.waiting[entry.entry_id] = entry
                return
            for entry in group:
                await self._failed(entry, failed)
            return
        taken = []
        for entry, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, AgencyCallFailed):
                self.d.metrics.attempts.labels(outcome.code).inc()
                entry.history.append(f"{self.d.clock_ms()} {outcome}")
                await self._failed(entry, outcome)
                continue
            taken.append(entry)
            self.d.metrics.attempts.labels("OK").inc()
            self.d.metrics.delivered.labels(entry.fields[b"notice"].decode(), entry.lane, "delivered").inc()
            waited = max(0, self.d.clock_ms() - int(entry.fields[b"enqueued_ms"])) / 1000
            self.d.metrics.wait.labels(entry.lane).observe(waited)
        if taken:
            self.breaker.record_success()
            self._show_circuit()
            await self._acknowledge(taken)

    async def _acknowledge(self, taken: list[_Entry]) -> None:
        """The messages the agency took leave their lanes: acknowledged and deleted, in one transaction."""
        try:
            pipe = self.d.client.pipeline(transaction=True)
            for lane in keys.LANES:
                ids = [e.entry_id for e in taken if e.lane == lane]
                if ids:
                    pipe.xack(self.streams[lane], keys.CONSUMER_GROUP, *ids)
                    pipe.xdel(self.streams[lane], *ids)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            # Still pending: delivered again later, and the agency dedups the repeat.
            log.warning("could not acknowledge %d messages (%s)", len(taken), type(exc).__name__)

    async def _failed(self, entry: _Entry, failed: AgencyCallFailed) -> None:
        age_s = (self.d.clock_ms() - int(entry.fields[b"enqueued_ms"])) / 1000
        if is_transient(failed) and age_s < self.d.settings.max_age_s:
            was_open = self.breaker.state is CircuitState.OPEN
            self.breaker.record_failure()
            self._show_circuit()
            if self.breaker.state is CircuitState.OPEN and not was_open:
                self.d.metrics.circuit_opened.labels(str(self.agency)).inc()
                log.warning("agency %s unreachable (%s): circuit open", self.agency, failed.code)
            entry.eligible_at = time.monotonic() + max(self.breaker.wait_s(), failed.retry_after_s or 0.0, 0.05)
            self.waiting[entry.entry_id] = entry
            return
        reason = str(failed) if not is_transient(failed) else f"undelivered after {age_s:.0f} s: {failed}"
        try:
            pipe = self.d.client.pipeline(transaction=True)
            self.d.add_dead_letter(pipe, {**entry.fields, b"lane": entry.lane.encode()}, reason, entry.history)
            pipe.xack(self.streams[entry.lane], keys.CONSUMER_GROUP, entry.entry_id)
            pipe.xdel(self.streams[entry.lane], entry.entry_id)
            await pipe.execute()
        except (RedisError, OSError):
            self.waiting[entry.entry_id] = entry  # try again later
