"""Stage one of delivery: each shard's outbox stream (consumer group ``route``) to the recipient agencies' lane
streams, then acknowledged. A crash in between routes a message twice; the agency deduplicates by message id."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import RedisError

from gateway.dispatch.worker import lane_of
from gateway.store import codec, keys
from gateway.store.client import StreamRows

if TYPE_CHECKING:
    from gateway.dispatch.dispatcher import Dispatcher

__all__ = ["OutboxRouter"]

log = logging.getLogger("sigw.dispatch")


class OutboxRouter:
    """Moves one shard's committed messages to their agencies' lanes."""

    def __init__(self, dispatcher: Dispatcher, shard: int) -> None:
        self.d = dispatcher
        self.stream = keys.outbox(shard)

    async def run(self) -> None:
        stream = self.stream
        next_claim = 0.0
        own_pending = True  # at start, and after a read whose reply was lost: what this consumer read but left
        while not self.d.stopping.is_set():
            try:
                entries: StreamRows = []
                if own_pending:
                    reply = cast(
                        list[tuple[bytes, StreamRows]],
                        await self.d.client.xreadgroup(
                            keys.ROUTE_GROUP, self.d.consumer, {stream: "0"}, count=self.d.settings.route_batch
                        ),
                    )
                    entries = [entry for _, rows in reply for entry in rows]
                    own_pending = bool(entries)
                if not entries and time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + self.d.settings.claim_idle_ms / 2000
                    claimed = await self.d.client.xautoclaim(
                        stream,
                        keys.ROUTE_GROUP,
                        self.d.consumer,
                        self.d.settings.claim_idle_ms,
                        "0-0",
                        count=self.d.settings.route_batch,
                    )
                    entries = claimed[1]  # [next id, entries] (Redis 7 adds deleted ids)
                if not entries:
                    reply = cast(
                        list[tuple[bytes, StreamRows]],
                        await self.d.client.xreadgroup(
                            keys.ROUTE_GROUP,
                            self.d.consumer,
                            {stream: ">"},
                            count=self.d.settings.route_batch,
                            block=self.d.settings.block_ms,
                        ),
                    )
                    entries = [entry for _, rows in reply for entry in rows]
                if entries:
                    await self._route_entries(entries)
            except (RedisError, OSError) as exc:
                log.warning("outbox %s unreadable (%s); retrying", stream, type(exc).__name__)
                own_pending = True  # a blocking read may have taken entries whose reply never arrived
                await self.d.pause(1.0)

    async def _route_entries(self, entries: StreamRows) -> None:
        stream = self.stream
        pipe = self.d.client.pipeline(transaction=False)
        for _, fields in entries:
            if not fields:
                continue
            recipient = codec.parse_destination(fields[b"recipient"].decode())
            if recipient in self.d.workers:
                lane = keys.agency_lane(str(recipient), lane_of(fields))
                pipe.xadd(lane, cast(dict[Any, Any], fields))
            else:
                self.d.add_dead_letter(pipe, fields, f"no endpoint for {recipient}", [])
        await pipe.execute()
        done = self.d.client.pipeline(transaction=True)
        ids = [entry_id for entry_id, _ in entries]
        done.xack(stream, keys.ROUTE_GROUP, *ids)
        done.xdel(stream, *ids)
        await done.execute()
