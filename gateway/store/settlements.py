"""Settlements, filings and clearing totals in Redis (key layout in ``gateway.store.keys``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any, cast

import redis.asyncio as aioredis

from gateway.domain.errors import Aborted, FailedPrecondition
from gateway.security.crypto import FieldCipher
from gateway.store import keys, scripts
from gateway.store.transfers import IDEMPOTENCY_TTL_S, redis_errors

FIGURES = ("count", "total", "fund", "account", "cash")
PERSONAL = ("id_number", "name", "bill_json")
"""Settlement fields encrypted at rest (the bill carries the person too)."""


@dataclass(frozen=True)
class Figures:
    """How a bill split (all fen), and under which filing."""

    total_fen: int
    fund_pay_fen: int
    account_pay_fen: int
    cash_pay_fen: int
    class_c_fen: int = 0
    class_b_self_fen: int = 0
    in_scope_fen: int = 0
    deductible_fen: int = 0
    over_cap_fen: int = 0
    ratio_percent: int = 0
    filing_status: int = 0
    note: str = ""


@dataclass(frozen=True)
class SettlementRecord:
    settlement_id: str
    msgid: str
    hospital_code: str
    hospital_level: int
    treatment_region: str
    insured_region: str
    visit_id: str
    id_number: str
    name: str
    insurance_type: str
    medical_type: str
    admission: date
    discharge: date
    bill_json: str  # the bill as sent (protobuf JSON), to undo it exactly at the agency
    figures: Figures
    settled_at: datetime
    message_time: datetime  # from the msgid: the hospital's settlement time, which decides the month
    state: str = "SETTLED"
    cancelled_at: datetime | None = None
    cancel_msgid: str = ""
    version: int = 1

    @property
    def clearing_month(self) -> str:
        return f"{self.message_time:%Y-%m}"

    def to_json(self, cipher: FieldCipher) -> str:
        d = asdict(self)
        for name in ("admission", "discharge", "settled_at", "message_time", "cancelled_at"):
            d[name] = d[name].isoformat() if d[name] else None
        for name in PERSONAL:
            d[name] = cipher.encrypt(d[name], context=f"settlement:{self.settlement_id}:{name}")
        return json.dumps(d, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, cipher: FieldCipher) -> SettlementRecord:
        d = json.loads(text)
        for name in PERSONAL:
            d[name] = cipher.decrypt(d[name], context=f"settlement:{d['settlement_id']}:{name}")
        d["figures"] = Figures(**d["figures"])
        for name in ("admission", "discharge"):
            d[name] = date.fromisoformat(d[name])
        for name in ("settled_at", "message_time", "cancelled_at"):
            d[name] = datetime.fromisoformat(d[name]) if d[name] else None
        return cls(**d)

    def clearing_deltas(self, sign: int) -> list[str | int]:
        f = self.figures
        pair = f"{self.insured_region}|{self.treatment_region}"
        values = (1, f.total_fen, f.fund_pay_fen, f.account_pay_fen, f.cash_pay_fen)
        return [item for name, value in zip(FIGURES, values, strict=True) for item in (f"{pair}|{name}", sign * value)]


@dataclass(frozen=True)
class MessageRecord:
    """What a msgid did: its payload fingerprint, the settlement, and the action (settle, cancel, reverse)."""

    fingerprint: str
    settlement_id: str
    action: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> MessageRecord:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class FilingRecord:
    filing_id: str
    filing_type: int
    id_number: str
    person_key: str
    insured_region: str
    treatment_region: str
    valid_from: date
    valid_until: date | None
    created_at: datetime
    state: str = "ACTIVE"
    cancel_reason: str = ""

    def to_json(self, cipher: FieldCipher) -> str:
        d = asdict(self)
        d["id_number"] = cipher.encrypt(self.id_number, context=f"filing:{self.filing_id}:id_number")
        d["valid_from"] = self.valid_from.isoformat()
        d["valid_until"] = self.valid_until.isoformat() if self.valid_until else None
        d["created_at"] = self.created_at.isoformat()
        return json.dumps(d, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, cipher: FieldCipher) -> FilingRecord:
        d = json.loads(text)
        d["id_number"] = cipher.decrypt(d["id_number"], context=f"filing:{d['filing_id']}:id_number")
        d["valid_from"] = date.fromisoformat(d["valid_from"])
        d["valid_until"] = date.fromisoformat(d["valid_until"]) if d["valid_until"] else None
        d["created_at"] = datetime.fromisoformat(d["created_at"])
        return cls(**d)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def shard_in(identifier: str) -> int:
    """The shard an id names: ``S05-…`` and ``F05-…`` are shard 5; -1 if it names none."""
    if len(identifier) > 4 and identifier[0] in "SF" and identifier[1:3].isdigit() and identifier[3] == "-":
        return int(identifier[1:3])
    return -1


class SettlementStore:
    def __init__(self, client: aioredis.Redis, shards: int, cipher: FieldCipher) -> None:
        self.cipher = cipher
        self.client = client
        self.shards = shards
        self._settle = scripts.script(client, "settle.lua")
        self._put = scripts.script(client, "put.lua")

    def msg_shard(self, msgid: str) -> int:
        return keys.shard_for(msgid, self.shards)

    async def message(self, shard: int, msgid: str) -> MessageRecord | None:
        async with redis_errors():
            raw = await self.client.get(keys.message(shard, msgid))
        return MessageRecord.from_json(raw) if raw else None

    async def get(self, settlement_id: str) -> SettlementRecord | None:
        shard = shard_in(settlement_id)
        if not 0 <= shard < self.shards:
            return None
        async with redis_errors():
            raw = await self.client.get(keys.settlement(shard, settlement_id))
        return SettlementRecord.from_json(raw, self.cipher) if raw else None

    async def claim_visit(self, visit_id: str, hospital: str) -> str:
        """Claim a stay for a hospital; return the hospital it belongs to (the first that claimed it)."""
        key = keys.visit(keys.shard_for(visit_id, self.shards), visit_id)
        async with redis_errors():
            await self.client.set(key, hospital, nx=True)
            owner = await self.client.get(key)
        return text(owner) if owner else hospital

    async def commit(
        self, record: SettlementRecord, *, msgid: str, message: MessageRecord, previous_version: int, sign: int
    ) -> MessageRecord | None:
        """Write a settlement (sign +1) or its cancellation (sign -1); return the earlier record of a used msgid.

        Raises ``FailedPrecondition(MONTH_CLOSED)`` for a closed month and ``Aborted`` on a concurrent change.
        """
        shard = shard_in(record.settlement_id)
        month = record.clearing_month
        key_list = [
            keys.settlement(shard, record.settlement_id),
            keys.message(shard, msgid),
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
            request=msgid,
            action=f"settlement {message.action}",
            object=record.settlement_id,
            amounts=f"total {record.figures.total_fen} fund {record.figures.fund_pay_fen}",
        )
        args: list[str | int] = [
            str(previous_version),
            record.to_json(self.cipher),
            message.to_json(),
            IDEMPOTENCY_TTL_S,
            int(record.message_time.timestamp() * 1000),
            record.settlement_id,
            len(trail),
            *trail,
            *record.clearing_deltas(sign),
        ]
        async with redis_errors():
            result = await self._settle(keys=key_list, args=args)
        status = result[0].decode()
        if status == "DUPLICATE":
            return MessageRecord.from_json(result[1])
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

    async def clearing_totals(self, month: str) -> dict[tuple[str, str], dict[str, int]]:
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for shard in range(self.shards):
                pipe.hgetall(keys.clearing(shard, month))
            replies = await pipe.execute()
        totals: dict[tuple[str, str], dict[str, int]] = {}
        for reply in replies:
            for name, value in reply.items():
                insured, treating, figure = name.decode().split("|")
                pair = totals.setdefault((insured, treating), dict.fromkeys(FIGURES, 0))
                pair[figure] += int(value)
        return totals

    async def _load(self, ids_by_shard: list[tuple[int, list[Any]]]) -> list[SettlementRecord]:
        async with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for shard, ids in ids_by_shard:
                for sid in ids:
                    pipe.get(keys.settlement(shard, text(sid)))
            raws = await pipe.execute()
        return [SettlementRecord.from_json(r, self.cipher) for r in raws if r]

    async def month_records(self, month: str) -> list[SettlementRecord]:
        async with redis_errors():
            members = [
                (s, list(await self.client.smembers(keys.month_settlements(s, month)))) for s in range(self.shards)
            ]
        return await self._load(members)

    async def hospital_records(self, hospital: str, start_ms: int, end_ms: int) -> list[SettlementRecord]:
        async with redis_errors():
            members = [
                (s, list(await self.client.zrangebyscore(keys.hospital_index(s, hospital), start_ms, end_ms)))
                for s in range(self.shards)
            ]
        return await self._load(members)

    # --------------------------------------------------------------------------------------- filings

    def person_shard(self, person_key: str) -> int:
        return keys.shard_for(person_key, self.shards)

    async def put_filing(
        self, filing: FilingRecord, *, scope: str, record: MessageRecord, new: bool, now: datetime
    ) -> MessageRecord | None:
        shard = shard_in(filing.filing_id)
        key_list = [
            keys.message(shard, scope),
            keys.filing(shard, filing.filing_id),
            keys.person_filings(shard, filing.person_key),
            keys.region_filings(shard, filing.insured_region),
            keys.audit(shard),
            keys.audit_seq(shard),
        ]
        trail = scripts.audit_fields(
            time=now.isoformat(),
            actor=f"agency:{filing.insured_region}:healthcare",
            request=scope,
            action=f"filing {record.action}",
            object=filing.filing_id,
        )
        ops: list[str | int] = ["SET", 2, filing.to_json(self.cipher)]
        if new:
            ops += ["SADD", 3, filing.filing_id, "ZADD", 4, int(filing.created_at.timestamp() * 1000), filing.filing_id]
        async with redis_errors():
            result = await self._put(
                keys=key_list, args=[record.to_json(), IDEMPOTENCY_TTL_S, len(trail), *trail, *ops]
            )
        return MessageRecord.from_json(result[1]) if result[0].decode() == "DUPLICATE" else None

    async def filing(self, filing_id: str) -> FilingRecord | None:
        shard = shard_in(filing_id)
        if not 0 <= shard < self.shards:
            return None
        async with redis_errors():
            raw = await self.client.get(keys.filing(shard, filing_id))
        return FilingRecord.from_json(raw, self.cipher) if raw else None

    async def person_filings(self, person_key: str) -> list[FilingRecord]:
        shard = self.person_shard(person_key)
        async with redis_errors():
            ids = await self.client.smembers(keys.person_filings(shard, person_key))
            pipe = self.client.pipeline(transaction=False)
            for fid in sorted(ids):
                pipe.get(keys.filing(shard, text(fid)))
            raws = await pipe.execute()
        return [FilingRecord.from_json(r, self.cipher) for r in raws if r]

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
            filing = await self.filing(fid)
            if filing:
                out.append((score, filing))
        return out


def month_closed(month: str) -> FailedPrecondition:
    return FailedPrecondition(
        reason="MONTH_CLOSED",
        message=f"settlement month {month} is closed for clearing; messages for it are refused",
        metadata={"month": month},
    )


def cancelled(record: SettlementRecord, msgid: str, now: datetime) -> SettlementRecord:
    return replace(record, state="CANCELLED", cancelled_at=now, cancel_msgid=msgid, version=record.version + 1)
