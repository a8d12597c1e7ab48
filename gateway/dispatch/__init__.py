"""Delivery of committed messages to the agencies: outbox router, per-agency lane workers, circuit breaker, the
retry policy."""

__all__: list[str] = []
