"""Transfers in Redis: read, commit a decision atomically, list, and follow timelines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, cast

import redis.asyncio as aioredis

from gateway.app.ports import Committed, OutboundMessage
from gateway.domain.errors import Aborted
from gateway.domain.idempotency import IdempotencyRecord
from gateway.domain.ids import shard_of
from gateway.domain.transfer.model import Decision, Event, Kind, State, Step, Transfer
from gateway.security.crypto import FieldCipher
from gateway.store import codec, keys, scripts
from gateway.store.client import StreamRows, redis_errors

__all__ = ["IDEMPOTENCY_TTL_S", "TransferStore", "count_field", "due_changes", "due_member"]

IDEMPOTENCY_TTL_S = 30 * 24 * 3600
"""How long idempotency records are kept (30 days)."""


def due_member(transfer_id: str, step: Step) -> str:
    return f"{transfer_id}|{step.name.name}"


def due_changes(decision: Decision) -> list[tuple[str, ...]]:
    """How a decision moves the due-step index: steps it closed or reminded leave it, a step it opened joins."""
    t, when = decision.transfer, decision.event.time
    changes: list[tuple[str, ...]] = []
    for step in t.steps:
        if step.completed_at == when or step.reminded_at == when:
            changes.append(("REM", due_member(t.transfer_id, step)))
        elif step.started_at == when and step.completed_at is None:
            changes.append(("ADD", due_member(t.transfer_id, step), f"{step.due:%Y%m%d}"))
    return changes


def count_field(kind: Kind, state: State) -> str:
    return f"{kind.name}|{state.name}"


class TransferStore:
    """All transfer reads and writes (implements ``gateway.app.ports.TransferRepository``). Every write is one call
    of ``commit.lua``."""

    def __init__(self, client: aioredis.Redis, shards: int, cipher: FieldCipher) -> None:
        self.cipher = cipher
        self.client = client
        self.shards = shards
        self._commit = scripts.script(client, "commit.lua")

    async def _call(self, op: Callable[[], Awaitable[Any]]) -> Any:
        async with redis_errors():
            return await op()

    async def get(self, transfer_id: str) -> Transfer | None:
        shard = shard_of(transfer_id)
        if not 0 <= shard < self.shards:
            return None
        raw = await self._call(lambda: self.client.hget(keys.transfer(shard, transfer_id), "json"))
        return codec.transfer_from_json(raw, self.cipher) if raw else None

    async def get_many(self, transfer_ids: list[str]) -> list[Transfer | None]:
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for tid in transfer_ids:
                pipe.hget(keys.transfer(shard_of(tid), tid), "json")
            raws = await pipe.execute()
        return [codec.transfer_from_json(r, self.cipher) if r else None for r in raws]

    def shard_for(self, scope: str) -> int:
        return keys.shard_for(scope, self.shards)

    async def recorded(self, shard: int, scope: str) -> IdempotencyRecord | None:
        raw = await self._call(lambda: self.client.get(keys.idempotency(shard, scope)))
        return codec.record_from_json(raw) if raw else None

    async def commit(
        self, decision: Decision, *, scope: str, record: IdempotencyRecord, messages: list[OutboundMessage]
    ) -> Committed:
        """Write the decision, its event, its messages, its due-step index changes and the idempotency record,
        all or nothing.

        Raises ``Aborted`` when the transfer changed since it was read (a concurrent transition won).
        """
        t = decision.transfer
        shard = shard_of(t.transfer_id)
        before = decision.previous_version
        created = before == 0
        moved = created or decision.event.from_state != decision.event.to_state
        member = f"{int(t.created_at.timestamp() * 1000):013d}:{t.transfer_id}" if created else ""
        event = codec.event_fields(decision.event)
        args: list[str | bytes | int] = [
            str(before),
            str(t.version),
            t.state.name,
            codec.transfer_to_json(t, self.cipher),
            codec.record_to_json(record),
            IDEMPOTENCY_TTL_S,
            member,
            count_field(t.kind, decision.event.from_state) if moved and decision.event.from_state else "",
            count_field(t.kind, t.state) if moved else "",
            len(event),
            *event,
            len(messages),
        ]
        for message in messages:
            fields = codec.message_fields(message, self.cipher)
            args += [len(fields), *fields]
        changes = due_changes(decision)
        args += [len(changes)] + [item for change in changes for item in change]
        event_from = decision.event.from_state.name if decision.event.from_state else "NEW"
        trail = scripts.audit_fields(
            time=decision.event.time.isoformat(),
            actor=decision.event.actor,
            request=scope,
            action=f"transfer {event_from}->{t.state.name}",
            object=t.transfer_id,
        )
        args += [len(trail), *trail]
        key_list = [
            keys.transfer(shard, t.transfer_id),
            keys.events(shard, t.transfer_id),
            keys.idempotency(shard, scope),
            keys.counts(shard),
            keys.region_index(shard, t.source_region),
            keys.region_index(shard, t.target_region),
            keys.outbox(shard),
            keys.due(shard),
            keys.audit(shard),
            keys.audit_seq(shard),
        ]
        result = await self._call(lambda: self._commit(keys=key_list, args=args))
        status = result[0].decode()
        if status == "DUPLICATE":
            return Committed(None, codec.record_from_json(result[1]))
        if status == "CONFLICT":
            raise Aborted(
                reason="CONCURRENT_CHANGE",
                message=f"transfer {t.transfer_id} changed meanwhile; retry the request",
                metadata={"transfer_id": t.transfer_id},
            )
        return Committed(result[1].decode())

    async def due_before(self, day: date, limit: int) -> list[tuple[str, str]]:
        """Open, not yet reminded steps due before ``day``: (transfer id, step name), earliest first."""
        score = int(f"{day:%Y%m%d}") - 1
        found: list[tuple[int, str, str]] = []
        async with redis_errors():
            for shard in range(self.shards):
                rows = cast(
                    list[tuple[bytes, float]],
                    await self.client.zrangebyscore(keys.due(shard), 0, score, start=0, num=limit, withscores=True),
                )
                for member, value in rows:
                    transfer_id, step = member.decode().split("|")
                    found.append((int(value), transfer_id, step))
        return [(tid, step) for _, tid, step in sorted(found)[:limit]]

    async def timeline(self, transfer_id: str, after: str = "-") -> list[tuple[str, Event]]:
        shard = shard_of(transfer_id)
        start = f"({after}" if after != "-" else "-"
        rows: StreamRows = await self._call(lambda: self.client.xrange(keys.events(shard, transfer_id), min=start))
        return [(rid.decode(), codec.event_from_fields(fields)) for rid, fields in rows]

    async def wait_events(self, transfer_id: str, after: str, block_ms: int) -> list[tuple[str, Event]]:
        """Events after ``after`` (``"0"`` for all), waiting up to ``block_ms`` for the first one."""
        shard = shard_of(transfer_id)
        stream = keys.events(shard, transfer_id)
        reply: list[tuple[bytes, StreamRows]] = await self._call(
            lambda: self.client.xread({stream: after}, block=block_ms)
        )
        return [(rid.decode(), codec.event_from_fields(fields)) for _, rows in reply for rid, fields in rows]

    async def list_region(self, region: str, before: str | None, limit: int) -> list[str]:
        """Transfer ids of a region, newest first, strictly older than the cursor ``before``."""
        upper = f"({before}" if before else "+"
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for shard in range(self.shards):
                pipe.zrevrangebylex(keys.region_index(shard, region), upper, "-", start=0, num=limit)
            replies = await pipe.execute()
        members = sorted((m.decode() for reply in replies for m in reply), reverse=True)
        return members[:limit]

    async def counts(self) -> dict[tuple[str, str], int]:
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for shard in range(self.shards):
                pipe.hgetall(keys.counts(shard))
            replies = await pipe.execute()
        totals: dict[tuple[str, str], int] = {}
        for reply in replies:
            for field, value in cast(dict[bytes, bytes], reply).items():
                kind, state = field.decode().split("|")
                totals[(kind, state)] = totals.get((kind, state), 0) + int(value)
        return totals
