"""Rate limits: a token bucket per calling participant (per process), and a guard on applicants' status
queries (in Redis, so every gateway process shares it) so transfer ids cannot be enumerated."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from gateway.domain.errors import ResourceExhausted
from gateway.store.transfers import redis_errors


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """``rate_per_s`` calls a second per caller, bursts up to ``burst``; over that, RESOURCE_EXHAUSTED with the
    wait as RetryInfo."""

    rate_per_s: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def check(self, caller: str) -> None:
        now = self.clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) > 100_000:  # bounded memory under a flood of made-up callers
                self._buckets.clear()
            bucket = self._buckets[caller] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate_per_s)
        bucket.updated = now
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) / self.rate_per_s
            raise ResourceExhausted(
                reason="RATE_LIMITED", message=f"too many calls; retry in {wait:.2f} s", retry_after_s=wait
            )
        bucket.tokens -= 1


@dataclass
class StatusQueryGuard:
    """At most ``per_transfer`` failed status queries per transfer id and ``per_portal`` per portal in
    ``window_s``; past that the query is refused (even with the right ID number) until the window ends."""

    client: aioredis.Redis
    per_transfer: int = 5
    per_portal: int = 100
    window_s: int = 900

    def _keys(self, portal: str, transfer_id: str) -> tuple[str, str]:
        return f"sigw:rl:status:{transfer_id}", f"sigw:rl:portal:{portal}"

    async def check(self, portal: str, transfer_id: str) -> None:
        by_transfer, by_portal = self._keys(portal, transfer_id)
        async with redis_errors():
            counts = await self.client.mget(by_transfer, by_portal)
        if int(counts[0] or 0) >= self.per_transfer or int(counts[1] or 0) >= self.per_portal:
            raise ResourceExhausted(
                reason="TOO_MANY_FAILED_QUERIES",
                message="too many failed status queries; try again later",
                retry_after_s=float(self.window_s),
            )

    async def failed(self, portal: str, transfer_id: str) -> None:
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for key in self._keys(portal, transfer_id):
                pipe.set(key, 0, ex=self.window_s, nx=True)  # the window starts with the first failure
                pipe.incr(key)
            await pipe.execute()
