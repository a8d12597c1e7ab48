"""Settlements, filings and clearing totals in Redis (key layout in ``gateway.store.keys``); implements
``gateway.app.ports.SettlementRepository`` and ``FilingRepository``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import redis.asyncio as aioredis

from gateway.domain.errors import Aborted
from gateway.domain.idempotency import IdempotencyRecord
from gateway.domain.ids import shard_of
from gateway.domain.settlement.clearing import PairTotals
from gateway.domain.settlement.records import FilingRecord, SettlementRecord, month_closed
from gateway.security.crypto import FieldCipher
from gateway.store import codec, keys, scripts
from gateway.store.client import redis_errors
from gateway.store.transfers import IDEMPOTENCY_TTL_S

__all__ = ["FilingStore", "SettlementStore"]

FIGURES = ("count", "total", "fund", "account", "cash")


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
    def __init__(self, client: aioredis.Redis, shards: int, cipher: FieldCipher) -> None:
        self.cipher = cipher
        self.client = client
        self.shards = shards
        self._settle = scripts.script(client, "settle.lua")

    def msg_shard(self, msgid: str) -> int:
        return keys.shard_for(msgid, self.shards)

    async def recorded(self, shard: int, key: str) -> IdempotencyRecord | None:
        return await _recorded(self.client, shard, key)

    async def get(self, settlement_id: str) -> SettlementRecord | None:
        shard = shard_of(settlement_id)
        if not 0 <= shard < self.shards:
            return None
        async with redis_errors():
            raw = await self.client.get(keys.settlement(shard, settlement_id))
        return codec.settlement_from_json(raw, self.cipher) if raw else None

    async def claim_visit(self, visit_id: str, hospital: str) -> str:
        """Claim a stay for a hospital; return the hospital it belongs to (the first that claimed it)."""
        key = keys.visit(keys.shard_for(visit_id, self.shards), visit_id)
        async with redis_errors():
            await self.client.set(key, hospital, nx=True)
            owner = await self.client.get(key)
        return text(owner) if owner else hospital

    async def commit(
        self, record: SettlementRecord, *, key: str, idempotency: IdempotencyRecord, previous_version: int, sign: int
    ) -> IdempotencyRecord | None:
        """Write a settlement (sign +1) or its cancellation (sign -1); return the earlier record of a used msgid.

        Raises ``FailedPrecondition(MONTH_CLOSED)`` for a closed month and ``Aborted`` on a concurrent change.
        """
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
            time=when.isoformat(),
            actor=f"hospital:{record.treatment_region}:{record.hospital_code}",
            request=key,
            action=f"settlement {idempotency.action}",
            object=record.settlement_id,
            amounts=f"total {record.figures.total_fen} fund {record.figures.fund_pay_fen}",
        )
        args: list[str | bytes | int] = [
            str(previous_version),
            codec.settlement_to_json(record, self.cipher),
            codec.record_to_json(idempotency),
            IDEMPOTENCY_TTL_S,
            int(record.bill.message_time.timestamp() * 1000),
            record.settlement_id,
            len(trail),
            *trail,
            *clearing_deltas(record, sign),
        ]
        async with redis_errors():
            result = await self._settle(keys=key_list, args=args)
        status = result[0].decode()
        if status == "DUPLICATE":
            return codec.record_from_json(result[1])
        if status == "CLOSED":
            raise month_closed(month)
        if status == "CONFLICT":
            raise Aborted(reason="CONCURRENT_CHANGE", message=f"settlement {record.settlement_id} changed; retry")
        return None

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
        return [codec.settlement_from_json(r, self.cipher) for r in raws if r]

    async def month_records(self, month: str) -> list[SettlementRecord]:
        async with redis_errors():
            members = [
                (s, list(await self.client.smembers(keys.month_settlements(s, month)))) for s in range(self.shards)
            ]
        return await self._load(members)

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
            time=now.isoformat(),
            actor=f"agency:{filing.insured_region}:healthcare",
            request=key,
            action=f"filing {idempotency.action}",
            object=filing.filing_id,
        )
        ops: list[str | int] = ["SET", 2, codec.filing_to_json(filing, self.cipher)]
        if new:
            ops += ["SADD", 3, filing.filing_id, "ZADD", 4, int(filing.created_at.timestamp() * 1000), filing.filing_id]
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
        person_key = self._person(id_number)
        shard = keys.shard_for(person_key, self.shards)
        async with redis_errors():
            ids = await self.client.smembers(keys.person_filings(shard, person_key))
            pipe = self.client.pipeline(transaction=False)
            for fid in sorted(ids):
                pipe.get(keys.filing(shard, text(fid)))
            raws = await pipe.execute()
        return [codec.filing_from_json(r, self.cipher) for r in raws if r]

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
