"""Failure counters shared by every gateway process (implements ``gateway.app.ports.FailureCounter``)."""

from __future__ import annotations

import redis.asyncio as aioredis

from gateway.store import keys
from gateway.store.client import redis_errors

__all__ = ["FailureCounterStore"]


class FailureCounterStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def counts(self, names: list[str]) -> list[int]:
        async with redis_errors():
            values = await self.client.mget([keys.failures(name) for name in names])
        return [int(v or 0) for v in values]

    async def add(self, names: list[str], window_s: int) -> None:
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                key = keys.failures(name)
                pipe.set(key, 0, ex=window_s, nx=True)  # the window starts with the first failure
                pipe.incr(key)
            await pipe.execute()
