"""Operator actions on deliveries: list what waits, list dead letters, re-drive them on the record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import redis.asyncio as aioredis

from gateway.domain.participants import Participant
from gateway.domain.transfer.model import AgencyKey
from gateway.store import codec, keys
from gateway.store.audit import AuditTrail
from gateway.store.transfers import StreamRows, redis_errors

MAX_REDRIVE = 10_000


@dataclass(frozen=True)
class Message:
    entry_id: str
    fields: dict[str, str]
    attempts: list[str] = field(default_factory=list)

    @property
    def recipient(self) -> AgencyKey:
        return codec.parse_agency(self.fields["recipient"])


def _message(entry_id: bytes, raw: dict[bytes, bytes]) -> Message:
    fields = {k.decode(): v.decode(errors="replace") for k, v in raw.items() if k != b"body"}
    attempts = [line for line in fields.pop("attempts", "").split("\n") if line]
    return Message(entry_id.decode(), fields, attempts)


class DeliveryOperations:
    def __init__(self, client: aioredis.Redis, agencies: list[AgencyKey]) -> None:
        self.client = client
        self.agencies = agencies

    async def queued(self, agency: AgencyKey | None, lane: str | None, limit: int) -> list[Message]:
        streams = [(a, ln) for a in self.agencies if agency in (None, a) for ln in keys.LANES if lane in (None, ln)]
        found: list[Message] = []
        async with redis_errors():
            for a, ln in streams:
                rows = cast(StreamRows, await self.client.xrange(keys.agency_lane(str(a), ln), count=limit))
                found += [_message(eid, f) for eid, f in rows]
        found.sort(key=lambda m: int(m.fields.get("enqueued_ms", "0")))
        return found[:limit]

    async def dead_letters(self, after: str | None, limit: int) -> list[Message]:
        async with redis_errors():
            rows = cast(
                StreamRows, await self.client.xrange(keys.DEAD_LETTERS, min=f"({after}" if after else "-", count=limit)
            )
        return [_message(eid, f) for eid, f in rows]

    async def redrive(self, actor: Participant, request_id: str, entry_ids: list[str] | None, now: datetime) -> int:
        """Put dead letters (all when ``entry_ids`` is None) back on their lanes; record who did it and when."""
        async with redis_errors():
            if entry_ids is None:
                rows = cast(StreamRows, await self.client.xrange(keys.DEAD_LETTERS, count=MAX_REDRIVE))
            else:
                rows = []
                for eid in entry_ids:
                    rows += cast(StreamRows, await self.client.xrange(keys.DEAD_LETTERS, min=eid, max=eid))
            for entry_id, fields in rows:
                back: dict[Any, Any] = {
                    k: v for k, v in fields.items() if k not in (b"reason", b"attempts", b"dead_ms")
                }
                lane = fields.get(b"lane", b"ordinary").decode()
                pipe = self.client.pipeline(transaction=False)
                pipe.xadd(keys.agency_lane(fields[b"recipient"].decode(), lane), back)
                pipe.xdel(keys.DEAD_LETTERS, entry_id)
                await pipe.execute()
        await AuditTrail(self.client).record_operator(
            actor=str(actor),
            request=request_id,
            action="redrive dead letters",
            object=",".join(eid.decode() for eid, _ in rows) or "-",
            now=now,
        )
        return len(rows)
