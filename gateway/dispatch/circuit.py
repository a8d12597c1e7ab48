"""A per-agency circuit breaker, so a dead region costs one probe at a time, not a storm of calls.

closed     deliveries flow; ``failure_threshold`` deliveries in a row that failed transiently (each after its own
           retries) open the circuit
open       nothing is sent until ``open_s`` has passed (doubling on each failed probe, up to ``max_open_s``)
half-open  one delivery is let through as a probe: success closes the circuit, failure opens it again
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CircuitBreaker", "CircuitState"]


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    failure_threshold: int = 2
    open_s: float = 1.0
    max_open_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    _wait_s: float = field(default=0.0, init=False)
    _opened_at: float = field(default=0.0, init=False)

    def wait_s(self) -> float:
        """Seconds until a delivery may be tried (0 when one may go now); moves open to half-open on time."""
        if self.state is CircuitState.OPEN:
            left = self._opened_at + self._wait_s - self.clock()
            if left > 0:
                return left
            self.state = CircuitState.HALF_OPEN
        return 0.0

    def record_success(self) -> None:
        self.state, self.failures, self._wait_s = CircuitState.CLOSED, 0, 0.0

    def record_failure(self) -> None:
        """A delivery failed after its retries. Failures of deliveries that were already in flight when the
        circuit opened change nothing: only a failed probe doubles the open period."""
        if self.state is CircuitState.OPEN:
            return
        self.failures += 1
        if self.state is CircuitState.HALF_OPEN or self.failures >= self.failure_threshold:
            self._wait_s = min(self.max_open_s, self._wait_s * 2 if self._wait_s else self.open_s)
            self.state, self._opened_at = CircuitState.OPEN, self.clock()
