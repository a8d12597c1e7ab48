"""The audit trail (Arts. 11, 38): hash-chained streams, one per shard for state changes (appended by the same
Lua script that makes the change) and one for operator actions; and their verification.

Each entry: ``seq`` (1, 2, 3 … per chain), the fields (time in ms, actor, request, action, object …) and ``hash``
= the first 24 hex digits of SHA1 of ``seq \\n previous entry's hash \\n key=value …`` (``genesis`` before the
first). Verification walks each chain and names the first entry that was altered or replaced (its hash does not
match its content and the entry before it), removed (a gap in ``seq``, or the count kept beside the chain is
ahead of the chain) or re-ordered (``seq`` out of order).
Anyone who can write Redis can also rewrite a whole chain: copy the heads ``sigw audit verify`` prints somewhere
else now and then, and compare.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import redis.asyncio as aioredis

from gateway.domain.participants import Participant
from gateway.store import keys, scripts
from gateway.store.client import StreamRows, redis_errors

__all__ = ["AuditTrail", "ChainReport", "Finding", "check_chain", "entry_hash"]

_META = ("seq", "hash")
HASH_DIGITS = 24


@dataclass(frozen=True)
class Finding:
    chain: str
    entry_id: str
    problem: str

    def __str__(self) -> str:
        return f"{self.chain} entry {self.entry_id}: {self.problem}"


@dataclass(frozen=True)
class ChainReport:
    chain: str
    entries: int
    head: str


def entry_hash(seq: str, prev: str, fields: list[tuple[str, str]]) -> str:
    body = "\n".join([seq, prev, *(f"{k}={v}" for k, v in fields)])
    return hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()[:HASH_DIGITS]


def check_chain(chain: str, rows: list[tuple[str, list[tuple[str, str]]]], recorded: int) -> list[Finding]:
    """Walk one chain's entries (id, ordered field pairs); report the first break, and a count mismatch."""
    prev, expected_seq = "genesis", 1
    for entry_id, pairs in rows:
        fields = dict(pairs)
        body = [(k, v) for k, v in pairs if k not in _META]
        if fields.get("seq") != str(expected_seq):
            what = "removed entries before it" if int(fields.get("seq", "0") or 0) > expected_seq else "re-ordered"
            return [Finding(chain, entry_id, f"{what}: seq {fields.get('seq')}, expected {expected_seq}")]
        if entry_hash(fields["seq"], prev, body) != fields.get("hash"):
            return [Finding(chain, entry_id, "altered: its content does not match its hash")]
        prev, expected_seq = fields["hash"], expected_seq + 1
    if recorded != expected_seq - 1:
        return [Finding(chain, "(end)", f"{recorded - expected_seq + 1} entries removed from the end")]
    return []


class AuditTrail:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._append = scripts.script(client, "audit.lua")

    async def record(self, actor: Participant, request: str, action: str, object: str, now: datetime) -> None:
        """An operator action on the operators' chain (implements ``gateway.app.ports.OperatorAudit``)."""
        fields = scripts.audit_fields(time=now, actor=str(actor), request=request, action=action, object=object)
        async with redis_errors():
            await self._append(keys=[keys.OPERATOR_AUDIT, keys.OPERATOR_AUDIT_SEQ], args=fields)

    async def chains(self) -> list[str]:
        async with redis_errors():
            found = [k.decode() async for k in self.client.scan_iter(match=f"{keys.PREFIX}:*:audit", _type="stream")]
        return sorted(found)

    async def verify(self) -> tuple[list[ChainReport], list[Finding]]:
        reports, findings = [], []
        for chain in await self.chains():
            async with redis_errors():
                rows = cast(StreamRows, await self.client.xrange(chain))
                recorded = int(await self.client.get(f"{chain}:seq") or 0)
            entries = [(eid.decode(), [(k.decode(), v.decode()) for k, v in fields.items()]) for eid, fields in rows]
            findings += check_chain(chain, entries, recorded)
            head = dict(entries[-1][1]).get("hash", "") if entries else "genesis"
            reports.append(ChainReport(chain, len(entries), head))
        return reports, findings
