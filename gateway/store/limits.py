"""Failure counters shared by every gateway process (implements ``gateway.app.ports.FailureCounter``).

An attempt is counted *before* it is checked (one ``MULTI``: start the window, ``INCR``) and forgiven when it
succeeds, so parallel attempts cannot all read the old count and pass together: while they are in flight they
count as failures."""

from __future__ import annotations

import redis.asyncio as aioredis

from gateway.store import keys
from gateway.store.client import redis_errors

__all__ = ["FailureCounterStore"]

# Take one attempt back, never below zero and never re-creating a key whose window has passed.
_FORGIVE = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
"""


class FailureCounterStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._forgive = client.register_script(_FORGIVE)

    async def attempt(self, names: list[str], window_s: int) -> list[int]:
        async with redis_errors():
            pipe = self.client.pipeline(transaction=True)
            for name in names:
                key = keys.failures(name)
                pipe.set(key, 0, ex=window_s, nx=True)  # the window starts with the first attempt
                pipe.incr(key)
            replies = await pipe.execute()
        return [int(count) for count in replies[1::2]]

    async def forgive(self, names: list[str]) -> None:
        async with redis_errors():
            await self._forgive(keys=[keys.failures(name) for name in names])
