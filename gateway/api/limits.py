"""Limits per calling participant, per process: a token bucket on calls, a cap on open streams (the guard on
applicants' status queries is a use case's, ``gateway.app.transfers.StatusQueryLimits``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from gateway.domain.errors import ResourceExhausted

__all__ = ["RateLimiter", "StreamLimit"]


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
class StreamLimit:
    """At most ``per_caller`` open server streams (WatchTransfer) per participant; one more is refused with
    RESOURCE_EXHAUSTED ``TOO_MANY_STREAMS`` until one closes."""

    per_caller: int
    _open: dict[str, int] = field(default_factory=dict)

    def open(self, caller: str) -> int:
        return self._open.get(caller, 0)

    @contextlib.contextmanager
    def hold(self, caller: str) -> Iterator[None]:
        held = self._open.get(caller, 0)
        if held >= self.per_caller:
            raise ResourceExhausted(
                reason="TOO_MANY_STREAMS",
                message=f"at most {self.per_caller} open watches per participant; close one first",
                retry_after_s=5.0,
            )
        self._open[caller] = held + 1
        try:
            yield
        finally:
            left = self._open[caller] - 1
            if left:
                self._open[caller] = left
            else:
                del self._open[caller]
