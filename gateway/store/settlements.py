"""Settlements, filings and clearing totals in Redis (key layout in ``gateway.store.keys``); implements
``gateway.app.ports.SettlementRepository`` and ``FilingRepository``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, cast

import redis.asyncio as aioredis

from gateway.app.ports import SettleContext
from gateway.domain import ids
from gateway.domain.errors import Aborted
from gateway.domain.idempotency import IdempotencyRecord
from gateway.domain.ids import shard_of
from gateway.domain.settlement.clearing import PairTotals, SettledAmounts
from gateway.domain.settlement.records import Bill, FilingRecord, SettlementRecord, SettlementState, month_closed
from gateway.security.crypto import FieldCipher
from gateway.store import codec, keys, scripts
from gateway.store.client import redis_errors, text
from gateway.store.transfers import IDEMPOTENCY_TTL_S

__all__ = ["FilingStore", "SettlementStore"]

FIGURES = ("count", "total", "fund", "account", "cash")
RECOUNT_CHUNK = 2000
"""Settlements a recount reads per round trip."""


def clearing_deltas(record: SettlementRecord, sign: int) -> list[str | int]:
    """The clearing hash fields a settlement (+1) or its cancellation (-1) moves: ``<insured>|<treating>|<figure>``."""
    f = record.figures
    pair = f"{record.insured_region}|{record.treatment_region}"
    values = (1, f.total_fen, f.fund_pay_fen, f.account_pay_fen, f.cash_pay_fen)
    return [item for name, value in zip(FIGURES, values, strict=True) for item in (f"{pair}|{name}", sign * value)]


async def _recorded(client: aioredis.Redis, shard: int, key: str) -> IdempotencyRecord | None:
    async with redis_errors():
        raw = await client.get(keys.message(shard, key))
    return codec.record_from_json(raw) if raw else None


class SettlementStore:
    def __init__(self, client: aioredis.Redis, shards: int, cipher: FieldCipher, filings: FilingStore) -> None:
        self.cipher = cipher
        self.client = client
        self.shards = shards
        self.filings = filings
        self._settle = scripts.script(client, "settle.lua")

    def msg_shard(self, msgid: str) -> int:
        return keys.shard_for(msgid, self.shards)

    def _key_of(self, msgid: str) -> tuple[int, str]:
        """The shard and the id of the settlement a settle message's msgid makes."""
        shard = self.msg_shard(msgid)
        return shard, ids.settlement_id(shard, msgid)

    async def prepare(self, bill: Bill) -> SettleContext:
        shard, settlement_id = self._key_of(bill.msgid)
        person_shard, person_key = self.filings.person_index(bill.id_number)
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.getrange(keys.settlement(shard, settlement_id), 0, 64)
            pipe.exists(keys.month_closed(shard, bill.clearing_month))
            pipe.hgetall(keys.person_filings(person_shard, person_key))
            head, closed, entries = await pipe.execute()
        earlier = None
        if head:
            _, fingerprint, _ = bytes(head).split(b"|", 2)
            earlier = IdempotencyRecord(fingerprint.decode(), settlement_id, "settle")
        filings = [
            codec.filing_from_entry(text(fid), bill.id_number, raw) for fid, raw in sorted(dict(entries).items())
        ]
        return SettleContext(earlier, bool(closed), filings)

    async def recorded(self, shard: int, key: str) -> IdempotencyRecord | None:
        return await _recorded(self.client, shard, key)

    async def get(self, settlement_id: str) -> SettlementRecord | None:
        shard = shard_of(settlement_id)
        if not 0 <= shard < self.shards:
            return None
        async with redis_errors():
            raw = await self.client.get(keys.settlement(shard, settlement_id))
        return codec.settlement_from_bytes(cast(bytes, raw), self.cipher)[0] if raw else None

    async def _stored(self, settlement_ids: list[str]) -> dict[str, bytes]:
        """The stored bytes of each of these settlements that exists, in one round trip."""
        if not settlement_ids:
            return {}
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for sid in settlement_ids:
                pipe.get(keys.settlement(shard_of(sid), sid))
            found = await pipe.execute()
        return {sid: raw for sid, raw in zip(settlement_ids, found, strict=True) if raw}

    async def states(self, settlement_ids: list[str]) -> dict[str, SettlementState]:
        return {sid: codec.settlement_state(raw) for sid, raw in (await self._stored(settlement_ids)).items()}

    async def get_many(self, settlement_ids: list[str]) -> dict[str, SettlementRecord]:
        stored = await self._stored(settlement_ids)
        return {sid: codec.settlement_from_bytes(raw, self.cipher)[0] for sid, raw in stored.items()}

    async def made_by(self, msgid: str) -> SettlementRecord | None:
        found = await self.get(self._key_of(msgid)[1])
        return found if found is not None and found.msgid == msgid else None

    def _commit_call(
        self, record: SettlementRecord, key: str, idempotency: IdempotencyRecord, previous_version: int, sign: int,
        fingerprint: str,
    ) -> tuple[list[str], list[str | bytes | int]]:  # fmt: skip
        """The keys and arguments of ``settle.lua`` for one settlement (sign +1) or cancellation (sign -1)."""
        shard = shard_of(record.settlement_id)
        month = record.clearing_month
        key_list = [
            keys.settlement(shard, record.settlement_id),
            keys.message(shard, key),
            keys.month_closed(shard, month),
            keys.clearing(shard, month),
            keys.hospital_index(shard, record.hospital_code),
            keys.month_settlements(shard, month),
            keys.audit(shard),
            keys.audit_seq(shard),
        ]
        when = record.cancelled_at if sign < 0 and record.cancelled_at else record.settled_at
        trail = scripts.audit_fields(
            time=when,
            actor=f"hospital:{record.treatment_region}:{record.hospital_code}",
            request=key,
            action=f"settlement {idempotency.action}",
            object=record.settlement_id,
            amounts=f"total {record.figures.total_fen} fund {record.figures.fund_pay_fen}",
        )
        value = codec.settlement_to_bytes(record, fingerprint, self.cipher)
        trail = scripts.sealed(trail, self.cipher, record_key=key_list[0], record=value)
        args: list[str | bytes | int] = [
            str(previous_version),
            value,
            "" if previous_version == 0 else codec.record_to_json(idempotency),
            IDEMPOTENCY_TTL_S,
            int(record.bill.received_at.timestamp() * 1000),
            record.settlement_id,
            len(trail),
            *trail,
            *clearing_deltas(record, sign),
        ]
        return key_list, args

    async def commit(
        self, record: SettlementRecord, *, key: str, idempotency: IdempotencyRecord, previous_version: int, sign: int
    ) -> IdempotencyRecord | None:
        """Write a settlement (sign +1) or its cancellation (sign -1); return the earlier record of a used msgid.

        Raises ``FailedPrecondition(MONTH_CLOSED)`` for a closed month and ``Aborted`` on a concurrent change.
        """
        shard = shard_of(record.settlement_id)
        month = record.clearing_month
        settled = previous_version == 0
        fingerprint = idempotency.fingerprint if settled else await self._fingerprint(shard, record.settlement_id)
        key_list, args = self._commit_call(record, key, idempotency, previous_version, sign, fingerprint)
        async with redis_errors():
            result = await self._settle(keys=key_list, args=args)
        status = result[0].decode()
        if status == "DUPLICATE":
            return IdempotencyRecord(result[1].decode(), record.settlement_id, "settle")
        if status == "DUPLICATE_CANCEL":
            return codec.record_from_json(result[1])
        if status == "CLOSED":
            raise month_closed(month)
        if status == "CONFLICT":
            raise Aborted(reason="CONCURRENT_CHANGE", message=f"settlement {record.settlement_id} changed; retry")
        return None

    async def import_settled(self, records: list[tuple[SettlementRecord, str]]) -> None:
        """Write new settlements (each with its settle message's fingerprint) in one pipeline, as ``commit`` would
        one by one: for imports, and for benchmarks that need a big month. A settlement already there, or one of a
        closed month, is left as it is."""
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for record, fingerprint in records:
                idempotency = IdempotencyRecord(fingerprint, record.settlement_id, "settle")
                key_list, args = self._commit_call(record, record.msgid, idempotency, 0, +1, fingerprint)
                await self._settle(keys=key_list, args=args, client=pipe)
            await pipe.execute()

    async def _fingerprint(self, shard: int, settlement_id: str) -> str:
        """The fingerprint a stored settlement keeps of the message that made it (kept as it changes)."""
        async with redis_errors():
            head = await self.client.getrange(keys.settlement(shard, settlement_id), 0, 64)
        return cast(bytes, head).split(b"|", 2)[1].decode() if head else ""

    async def is_closed(self, month: str) -> bool:
        async with redis_errors():
            return bool(await self.client.exists(keys.month_closed(0, month)))

    async def close(self, month: str, closed_at: datetime) -> None:
        """Close a month on every shard; each shard's scripts refuse the month from then on."""
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for shard in range(self.shards):
                pipe.set(keys.month_closed(shard, month), closed_at.isoformat(), nx=True)
            await pipe.execute()

    async def clearing_totals(self, month: str) -> dict[tuple[str, str], PairTotals]:
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for shard in range(self.shards):
                pipe.hgetall(keys.clearing(shard, month))
            replies = await pipe.execute()
        sums: dict[tuple[str, str], dict[str, int]] = {}
        for reply in replies:
            for name, value in reply.items():
                insured, treating, figure = name.decode().split("|")
                pair = sums.setdefault((insured, treating), dict.fromkeys(FIGURES, 0))
                pair[figure] += int(value)
        return {
            (insured, treating): PairTotals(
                insured, treating, f["count"], f["total"], f["fund"], f["account"], f["cash"]
            )
            for (insured, treating), f in sums.items()
        }

    async def _load(self, ids_by_shard: list[tuple[int, list[Any]]]) -> list[SettlementRecord]:
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for shard, ids in ids_by_shard:
                for sid in ids:
                    pipe.get(keys.settlement(shard, text(sid)))
            raws = await pipe.execute()
        return [codec.settlement_from_bytes(r, self.cipher)[0] for r in raws if r]

    async def month_amounts(self, month: str) -> AsyncIterator[list[SettledAmounts]]:
        """Each shard's month set scanned in chunks (SSCAN, so Redis is never blocked long), each chunk's
        settlements read in one pipeline and only their amounts parsed (no bill is opened)."""
        for shard in range(self.shards):
            seen: set[bytes] = set()  # SSCAN may return a member twice
            cursor = 0
            while True:
                async with redis_errors():
                    cursor, members = await self.client.sscan(
                        keys.month_settlements(shard, month), cursor, count=RECOUNT_CHUNK
                    )
                    fresh = [m for m in cast(list[bytes], members) if m not in seen]
                    seen.update(fresh)
                    pipe = self.client.pipeline(transaction=False)
                    for sid in fresh:
                        pipe.get(keys.settlement(shard, text(sid)))
                    raws = await pipe.execute() if fresh else []
                chunk = []
                for raw in raws:
                    if not raw:
                        continue
                    state, insured, treating, total, fund, account, cash = codec.settlement_amounts(raw)
                    if state == SettlementState.SETTLED.value:
                        chunk.append(SettledAmounts(insured, treating, total, fund, account, cash, 1))
                if chunk:
                    yield chunk
                if cursor == 0:
                    break

    async def hospital_records(self, hospital: str, start: datetime, end: datetime) -> list[SettlementRecord]:
        start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000) - 1
        async with redis_errors():
            members = [
                (s, list(await self.client.zrangebyscore(keys.hospital_index(s, hospital), start_ms, end_ms)))
                for s in range(self.shards)
            ]
        return await self._load(members)


class FilingStore:
    """A person's filings share the shard of the person's keyed hash (never the ID number itself)."""

    def __init__(self, client: aioredis.Redis, shards: int, cipher: FieldCipher) -> None:
        self.cipher = cipher
        self.client = client
        self.shards = shards
        self._put = scripts.script(client, "put.lua")

    def _person(self, id_number: str) -> str:
        return self.cipher.lookup_hash(id_number)

    def person_shard(self, id_number: str) -> int:
        return keys.shard_for(self._person(id_number), self.shards)

    def person_index(self, id_number: str) -> tuple[int, str]:
        """The shard and the keyed hash that name a person's filing index."""
        person = self._person(id_number)
        return keys.shard_for(person, self.shards), person

    async def recorded(self, shard: int, key: str) -> IdempotencyRecord | None:
        return await _recorded(self.client, shard, key)

    async def put(
        self, filing: FilingRecord, *, key: str, idempotency: IdempotencyRecord, new: bool, now: datetime
    ) -> IdempotencyRecord | None:
        shard = shard_of(filing.filing_id)
        key_list = [
            keys.message(shard, key),
            keys.filing(shard, filing.filing_id),
            keys.person_filings(shard, self._person(filing.id_number)),
            keys.region_filings(shard, filing.insured_region),
            keys.audit(shard),
            keys.audit_seq(shard),
        ]
        trail = scripts.audit_fields(
            time=now,
            actor=f"agency:{filing.insured_region}:healthcare",
            request=key,
            action=f"filing {idempotency.action}",
            object=filing.filing_id,
        )
        value = codec.filing_to_json(filing, self.cipher)
        trail = scripts.sealed(trail, self.cipher, record_key=key_list[1], record=value.encode())
        ops: list[str | bytes | int] = ["SET", 2, value]
        ops += ["HSET", 3, filing.filing_id, codec.filing_entry(filing)]
        if new:
            ops += ["ZADD", 4, int(filing.created_at.timestamp() * 1000), filing.filing_id]
        async with redis_errors():
            result = await self._put(
                keys=key_list, args=[codec.record_to_json(idempotency), IDEMPOTENCY_TTL_S, len(trail), *trail, *ops]
            )
        return codec.record_from_json(result[1]) if result[0].decode() == "DUPLICATE" else None

    async def get(self, filing_id: str) -> FilingRecord | None:
        shard = shard_of(filing_id)
        if not 0 <= shard < self.shards:
            return None
        async with redis_errors():
            raw = await self.client.get(keys.filing(shard, filing_id))
        return codec.filing_from_json(raw, self.cipher) if raw else None

    async def person_filings(self, id_number: str) -> list[FilingRecord]:
        shard, person = self.person_index(id_number)
        async with redis_errors():
            entries = await self.client.hgetall(keys.person_filings(shard, person))
        found = cast(dict[bytes, bytes], entries)
        return [codec.filing_from_entry(text(fid), id_number, raw) for fid, raw in sorted(found.items())]

    async def region_filings(self, region: str, before_ms: int | None, limit: int) -> list[tuple[int, FilingRecord]]:
        """A region's filings, newest first, created strictly before ``before_ms``."""
        upper = f"({before_ms}" if before_ms is not None else "+inf"
        found: list[tuple[int, int, str]] = []
        async with redis_errors():
            for shard in range(self.shards):
                rows = cast(
                    list[tuple[bytes, float]],
                    await self.client.zrevrangebyscore(
                        keys.region_filings(shard, region), upper, "-inf", start=0, num=limit, withscores=True
                    ),
                )
                found += [(int(score), shard, fid.decode()) for fid, score in rows]
        found.sort(reverse=True)
        out = []
        for score, _, fid in found[:limit]:
            filing = await self.get(fid)
            if filing:
                out.append((score, filing))
        return out
