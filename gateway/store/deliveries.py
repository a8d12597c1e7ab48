"""The agencies' lanes and the dead letters, as operators see them (implements
``gateway.app.ports.DeliveryQueue``)."""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis

from gateway.app.ports import QueuedMessage, QueueFigures
from gateway.domain.participants import Destination
from gateway.store import codec, keys
from gateway.store.client import StreamRows, redis_errors

__all__ = ["MAX_REDRIVE", "DeliveryQueueStore"]

MAX_REDRIVE = 10_000


class DeliveryQueueStore:
    def __init__(self, client: aioredis.Redis, agencies: list[Destination]) -> None:
        self.client = client
        self.agencies = agencies

    async def queued(self, agency: Destination | None, lane: str | None, limit: int) -> list[QueuedMessage]:
        streams = [(a, ln) for a in self.agencies if agency in (None, a) for ln in keys.LANES if lane in (None, ln)]
        found: list[QueuedMessage] = []
        async with redis_errors():
            for a, ln in streams:
                lane_key = keys.agency_lane(str(a), ln)
                rows = cast(StreamRows, await self.client.xrange(lane_key, count=limit))
                found += [codec.queued_from_fields(eid, f) for eid, f in rows]
        found.sort(key=lambda m: m.enqueued_ms)
        return found[:limit]

    async def dead_letters(self, after: str | None, limit: int) -> list[QueuedMessage]:
        async with redis_errors():
            rows = cast(
                StreamRows, await self.client.xrange(keys.DEAD_LETTERS, min=f"({after}" if after else "-", count=limit)
            )
        return [codec.queued_from_fields(eid, f) for eid, f in rows]

    async def redrive(self, entry_ids: list[str] | None) -> list[str]:
        async with redis_errors():
            if entry_ids is None:
                rows = cast(StreamRows, await self.client.xrange(keys.DEAD_LETTERS, count=MAX_REDRIVE))
            else:
                rows = []
                for eid in entry_ids:
                    rows += cast(StreamRows, await self.client.xrange(keys.DEAD_LETTERS, min=eid, max=eid))
            known = {str(d).encode() for d in self.agencies}
            rows = [(eid, fields) for eid, fields in rows if fields[b"recipient"] in known]  # others have no worker
            for entry_id, fields in rows:
                back: dict[Any, Any] = {
                    k: v for k, v in fields.items() if k not in (b"reason", b"attempts", b"dead_ms")
                }
                lane = fields.get(b"lane", b"ordinary").decode()
                pipe = self.client.pipeline(transaction=False)
                pipe.xadd(keys.agency_lane(fields[b"recipient"].decode(), lane), back)
                pipe.xdel(keys.DEAD_LETTERS, entry_id)
                await pipe.execute()
        return [eid.decode() for eid, _ in rows]

    async def figures(self, now_ms: int) -> QueueFigures:
        streams = [(lane, keys.agency_lane(str(d), lane)) for d in self.agencies for lane in keys.LANES]
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for _, stream in streams:
                pipe.xlen(stream)
                pipe.xrange(stream, count=1)
            pipe.xlen(keys.DEAD_LETTERS)
            pipe.info("memory")
            replies = await pipe.execute()
        depths, oldest = dict.fromkeys(keys.LANES, 0), dict.fromkeys(keys.LANES, 0.0)
        for i, (lane, _) in enumerate(streams):
            depths[lane] += int(replies[2 * i])
            for _, fields in cast(StreamRows, replies[2 * i + 1]):
                waited = max(0, now_ms - int(fields.get(b"enqueued_ms", now_ms))) / 1000
                oldest[lane] = max(oldest[lane], waited)
        memory = cast(dict[str, Any], replies[-1])
        return QueueFigures(
            depths, oldest, int(replies[-2]), int(memory.get("used_memory", 0)), int(memory.get("maxmemory", 0))
        )

    async def lane_depths(self) -> dict[str, int]:
        """Messages waiting (or in flight) per lane, over all agencies."""
        names = [(lane, keys.agency_lane(str(agency), lane)) for agency in self.agencies for lane in keys.LANES]
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for _, stream in names:
                pipe.xlen(stream)
            lengths = await pipe.execute()
        depths = dict.fromkeys(keys.LANES, 0)
        for (lane, _), length in zip(names, lengths, strict=True):
            depths[lane] += int(length)
        return depths
