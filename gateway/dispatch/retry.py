"""The delivery retry policy, in one place.

* Transport: gRPC's own retry policy re-sends a call that could not reach the agency (``UNAVAILABLE``), up to
  3 attempts within one delivery attempt (the agency client's service config).
* Delivery: ``tenacity`` retries a delivery that failed with a transient code (``UNAVAILABLE``,
  ``RESOURCE_EXHAUSTED``, ``DEADLINE_EXCEEDED`` of our own per-attempt timeout) with random exponential
  backoff, honouring the agency's ``RetryInfo`` as the least wait, until ``max_attempts`` or ``max_delay_s``.
* Any other code is permanent: the message goes to the dead letters at once.
* After the last attempt of a transient failure the message stays pending and is tried again later (the
  circuit breaker paces the agency), until it is ``max_age_s`` old (7 days): then it goes to the dead letters with
  its reason and attempt history, as a permanent failure does at once; an operator can re-drive it. Receivers
  deduplicate by message id, so a re-drive never applies twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import RetryCallState, wait_random_exponential

from gateway.app.ports import AgencyCallFailed

__all__ = ["TRANSIENT", "BackoffWithPushback", "RetryPolicy", "is_transient"]

TRANSIENT = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"})
"""gRPC status codes (by name) worth retrying."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    """Delivery attempts in one round; after them a transient failure waits for the circuit and is tried again."""
    max_delay_s: float = 30.0
    """A round stops retrying after this long since its first attempt."""
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    attempt_timeout_s: float = 5.0
    """Deadline of one delivery call."""


def is_transient(error: BaseException) -> bool:
    return isinstance(error, AgencyCallFailed) and error.code in TRANSIENT


class BackoffWithPushback:
    """Random exponential backoff, but never shorter than the agency's ``RetryInfo`` delay."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._random = wait_random_exponential(multiplier=policy.initial_backoff_s, max=policy.max_backoff_s)

    def __call__(self, state: RetryCallState) -> float:
        wait = float(self._random(state))
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, AgencyCallFailed) and error.retry_after_s:
            wait = max(wait, error.retry_after_s)
        return wait
