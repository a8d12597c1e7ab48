"""Transfers in Redis: read, commit a decision atomically, list, and follow timelines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import cast

import redis.asyncio as aioredis

from gateway.app.ports import Committed, OutboundMessage, StoredTransfer
from gateway.domain.errors import Aborted
from gateway.domain.idempotency import IdempotencyRecord, request_digest
from gateway.domain.ids import shard_of
from gateway.domain.transfer.model import Decision, Kind, State, Step, Transfer
from gateway.security.crypto import FieldCipher
from gateway.store import codec, keys, scripts
from gateway.store.changes import ChangeFeed
from gateway.store.client import redis_errors

__all__ = ["IDEMPOTENCY_TTL_S", "TransferStore", "count_field", "due_changes", "due_member"]

IDEMPOTENCY_TTL_S = 30 * 24 * 3600
"""How long idempotency records are kept (30 days)."""


QUIET_AFTER = timedelta(minutes=10)
"""An open step with no answer this long gets its notice once more (``SIGW_QUIET_AFTER_S``)."""


def due_member(transfer_id: str, step: Step) -> str:
    return f"{transfer_id}|{step.name.name}"


def due_changes(decision: Decision, quiet_after: timedelta = QUIET_AFTER) -> list[tuple[str, ...]]:
    """How a decision moves the due-step index and the quiet-step index: steps it closed or reminded leave
    both, a step it opened joins both (due on its due day; quiet from ``quiet_after`` after it started)."""
    t, when = decision.transfer, decision.event.time
    changes: list[tuple[str, ...]] = []
    for step in t.steps:
        if step.completed_at == when or step.reminded_at == when:
            changes.append(("REM", due_member(t.transfer_id, step)))
        elif step.started_at == when and step.completed_at is None:
            quiet_ms = int((step.started_at + quiet_after).timestamp() * 1000)
            changes.append(("ADD", due_member(t.transfer_id, step), f"{step.due:%Y%m%d}", str(quiet_ms)))
    return changes


def count_field(kind: Kind, state: State) -> str:
    return f"{kind.name}|{state.name}"


class TransferStore:
    """All transfer reads and writes (implements ``gateway.app.ports.TransferRepository``). A transfer is one key
    read in one round trip; every write is one call of ``commit.lua``."""

    def __init__(
        self, client: aioredis.Redis, shards: int, cipher: FieldCipher, quiet_after: timedelta = QUIET_AFTER
    ) -> None:
        self.cipher = cipher
        self.client = client
        self.shards = shards
        self.quiet_after = quiet_after
        self._commit = scripts.script(client, "commit.lua")
        self.changes = ChangeFeed(client)

    def _decode(self, raw: bytes | str) -> StoredTransfer:
        _, _, blob = cast(bytes, raw).partition(b"|")
        return codec.stored_from_bytes(blob, self.cipher)

    async def load(self, transfer_id: str) -> StoredTransfer | None:
        shard = shard_of(transfer_id)
        if not 0 <= shard < self.shards:
            return None
        async with redis_errors():
            raw = await self.client.get(keys.transfer(shard, transfer_id))
        return self._decode(raw) if raw else None

    async def get_many(self, transfer_ids: list[str]) -> list[Transfer | None]:
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for tid in transfer_ids:
                pipe.get(keys.transfer(shard_of(tid), tid))
            raws = await pipe.execute()
        return [self._decode(r).transfer if r else None for r in raws]

    def shard_for(self, scope: str) -> int:
        return keys.shard_for(scope, self.shards)

    async def created_by(self, scope: str) -> IdempotencyRecord | None:
        async with redis_errors():
            raw = await self.client.get(keys.created_by(self.shard_for(scope), request_digest(scope)))
        return codec.record_from_json(raw) if raw else None

    async def commit(
        self,
        decision: Decision,
        *,
        scope: str,
        record: IdempotencyRecord,
        messages: list[OutboundMessage],
        previous: StoredTransfer | None,
    ) -> Committed:
        """Write the decision with its event, its messages, its due-step index changes and the request's record,
        all or nothing, in one round trip; the transfer as stored now comes from the decision, not a read.

        Raises ``Aborted`` when the transfer changed since ``previous`` was read (a concurrent transition won).
        """
        t = decision.transfer
        shard = shard_of(t.transfer_id)
        created = previous is None
        stored = (previous or StoredTransfer(t)).after(decision, scope, record)
        if created:  # a new transfer's creating request is kept under its own key (found before the transfer is)
            stored = StoredTransfer(stored.transfer, stored.timeline, {})
        moved = created or decision.event.from_state != decision.event.to_state
        member = f"{int(t.created_at.timestamp() * 1000):013d}:{t.transfer_id}" if created else ""
        value = f"{t.version}|".encode() + codec.stored_to_bytes(stored, self.cipher)
        args: list[str | bytes | int] = [
            str(decision.previous_version),
            value,
            codec.record_to_json(record) if created else "",
            IDEMPOTENCY_TTL_S,
            member,
            count_field(t.kind, decision.event.from_state) if moved and decision.event.from_state else "",
            count_field(t.kind, t.state) if moved else "",
            keys.changes(t.transfer_id),
            t.version,
            len(messages),
        ]
        for message in messages:
            fields = codec.message_fields(message, self.cipher)
            args += [len(fields), *fields]
        changes = due_changes(decision, self.quiet_after)
        args += [len(changes)] + [item for change in changes for item in change]
        event_from = decision.event.from_state.name if decision.event.from_state else "NEW"
        trail = scripts.audit_fields(
            time=decision.event.time,
            actor=decision.event.actor,
            request=scope,
            action=f"transfer {event_from}->{t.state.name}",
            object=t.transfer_id,
        )
        args += scripts.sealed(trail, self.cipher, record_key=keys.transfer(shard, t.transfer_id), record=value)
        key_list = [
            keys.transfer(shard, t.transfer_id),
            keys.created_by(shard, request_digest(scope)),
            keys.counts(shard),
            keys.region_index(shard, t.source_region),
            keys.region_index(shard, t.target_region),
            keys.outbox(shard),
            keys.due(shard),
            keys.audit(shard),
            keys.audit_seq(shard),
            keys.quiet(shard),
        ]
        async with redis_errors():
            result = await self._commit(keys=key_list, args=args)
        status = result[0].decode()
        if status == "DUPLICATE":
            return Committed(None, codec.record_from_json(result[1]))
        if status == "CONFLICT":
            raise Aborted(
                reason="CONCURRENT_CHANGE",
                message=f"transfer {t.transfer_id} changed meanwhile; retry the request",
                metadata={"transfer_id": t.transfer_id},
            )
        return Committed(stored)

    async def wait_changed(self, transfer_id: str, version: int, timeout_s: float) -> StoredTransfer | None:
        """The transfer once its version passes ``version`` (told by the change feed, or found by a re-read),
        or as it is after ``timeout_s``."""
        async with self.changes.subscription(keys.changes(transfer_id), timeout_s) as changed:
            stored = await self.load(transfer_id)
            if stored is None or stored.transfer.version > version:
                return stored
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow the caller's cancellation (a
            # watcher that went away would then loop on for good).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await changed.wait()
        return await self.load(transfer_id)

    async def _steps_before(self, index: Callable[[int], str], score: int, limit: int) -> list[tuple[str, str]]:
        """(transfer id, step name) of a step index (``keys.due`` or ``keys.quiet``) scored ``score`` or lower,
        lowest first, over every shard."""
        found: list[tuple[int, str, str]] = []
        async with redis_errors():
            for shard in range(self.shards):
                rows = cast(
                    list[tuple[bytes, float]],
                    await self.client.zrangebyscore(index(shard), 0, score, start=0, num=limit, withscores=True),
                )
                for member, value in rows:
                    transfer_id, step = member.decode().split("|")
                    found.append((int(value), transfer_id, step))
        return [(tid, step) for _, tid, step in sorted(found)[:limit]]

    async def due_before(self, day: date, limit: int) -> list[tuple[str, str]]:
        """Open, not yet reminded steps due before ``day``: (transfer id, step name), earliest first."""
        return await self._steps_before(keys.due, int(f"{day:%Y%m%d}") - 1, limit)

    async def overdue_unreminded(self, day: date) -> int:
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for shard in range(self.shards):
                pipe.zcount(keys.due(shard), 0, int(f"{day:%Y%m%d}") - 1)
            return sum(int(n) for n in await pipe.execute())

    async def quiet_before(self, moment: datetime, limit: int) -> list[tuple[str, str]]:
        """Open steps that started ``quiet_after`` or longer before ``moment`` and are still in the quiet index
        (transfer id, step name), longest quiet first."""
        return await self._steps_before(keys.quiet, int(moment.timestamp() * 1000), limit)

    async def forget_quiet(self, transfer_id: str, step: str) -> None:
        async with redis_errors():
            await self.client.zrem(keys.quiet(shard_of(transfer_id)), f"{transfer_id}|{step}")

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
