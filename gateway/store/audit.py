"""The audit trail (Arts. 11, 38): hash-chained streams, one per shard for state changes (appended by the same
Lua script that makes the change) and one for operator actions; their anchors; and their verification.

Each entry: ``seq`` (1, 2, 3 … per chain), the fields (time in ms, actor, request, action, object …), for a
change of a record its ``key`` and ``state`` (a digest of the record as stored, version included), ``mac`` (an
HMAC of the fields with a key only the gateways hold, ``FieldCipher.audit_mac``) and ``hash`` = the first 24 hex
digits of SHA1 of ``seq \\n previous entry's hash \\n key=value …`` (``genesis`` before the first).

Verification walks each chain and names the first entry that was altered or replaced (its hash does not match its
content and the entry before it), removed (a gap in ``seq``, or the count kept beside the chain is ahead of the
chain) or re-ordered (``seq`` out of order); with the key, an entry whose MAC does not verify (appended or
rewritten by someone without the key); then re-reads each record and names one that is not in the state its last
entry names (edited or deleted behind the trail's back); and against an anchor (``sigw audit anchor``: each
chain's head, signed with the same key, kept outside Redis) a chain cut back, deleted or rewritten since. What
stays undetectable: a whole chain rewritten by someone holding the key, and, after the newest anchor, entries
removed, re-ordered or replayed (the MAC covers an entry's content, not ``seq`` or the previous hash, which the
script sets) together with the records rolled back to match.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import redis.asyncio as aioredis

from gateway.domain.participants import Participant
from gateway.security.crypto import FieldCipher
from gateway.store import keys, scripts
from gateway.store.client import StreamRows, redis_errors

__all__ = [
    "Anchor",
    "AuditTrail",
    "ChainReport",
    "Finding",
    "check_anchor",
    "check_chain",
    "check_macs",
    "entry_hash",
    "make_anchor",
    "read_anchor",
]

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


Rows = list[tuple[str, list[tuple[str, str]]]]


def check_macs(chain: str, rows: Rows, cipher: FieldCipher) -> list[Finding]:
    """The first entry whose MAC is missing or does not verify."""
    for entry_id, pairs in rows:
        mac = dict(pairs).get("mac", "")
        if not hmac.compare_digest(mac, cipher.audit_mac(scripts.mac_body(pairs))):
            what = "no MAC" if not mac else "its MAC does not verify"
            return [Finding(chain, entry_id, f"not written by a gateway ({what}): appended or rewritten")]
    return []


@dataclass(frozen=True)
class Anchor:
    """Each chain's head (seq, hash) at a moment, signed with the audit key: kept outside Redis."""

    time: str
    heads: dict[str, tuple[int, str]]
    mac: str

    def body(self) -> str:
        return json.dumps({"time": self.time, "heads": self.heads}, sort_keys=True)

    def to_line(self) -> str:
        return json.dumps({"time": self.time, "heads": self.heads, "mac": self.mac}, sort_keys=True)


def make_anchor(reports: list[ChainReport], now: datetime, cipher: FieldCipher) -> Anchor:
    heads = {r.chain: (r.entries, r.head) for r in reports}
    unsigned = Anchor(now.isoformat(), heads, "")
    return Anchor(unsigned.time, heads, cipher.audit_mac(unsigned.body()))


def read_anchor(line: str, cipher: FieldCipher) -> Anchor:
    """An anchor from its line; ``ValueError`` when it is not one, or its signature does not verify."""
    try:
        doc = json.loads(line)
        heads = {str(c): (int(h[0]), str(h[1])) for c, h in doc["heads"].items()}
        anchor = Anchor(str(doc["time"]), heads, str(doc["mac"]))
    except (ValueError, KeyError, TypeError, IndexError) as bad:
        raise ValueError("not an audit anchor") from bad
    if not hmac.compare_digest(anchor.mac, cipher.audit_mac(anchor.body())):
        raise ValueError("the anchor's signature does not verify (another key, or edited)")
    return anchor


def check_anchor(anchor: Anchor, chains: Mapping[str, Rows]) -> list[Finding]:
    """Every anchored chain still holds its anchored head at its anchored place."""
    found = []
    for chain, (seq, head) in sorted(anchor.heads.items()):
        rows = chains.get(chain)
        if rows is None:
            found.append(Finding(chain, "(chain)", f"deleted since the anchor of {anchor.time}"))
            continue
        at = next((dict(p) for _, p in rows if dict(p).get("seq") == str(seq)), None) if seq else {}
        if at is None:
            found.append(Finding(chain, "(end)", f"cut back since the anchor of {anchor.time}: entry {seq} is gone"))
        elif seq and at.get("hash") != head:
            found.append(Finding(chain, f"seq {seq}", f"rewritten since the anchor of {anchor.time}"))
    return found


class AuditTrail:
    def __init__(self, client: aioredis.Redis, cipher: FieldCipher | None = None) -> None:
        self.client = client
        self.cipher = cipher
        self._append = scripts.script(client, "audit.lua")

    async def record(self, actor: Participant, request: str, action: str, object: str, now: datetime) -> None:
        """An operator action on the operators' chain (implements ``gateway.app.ports.OperatorAudit``)."""
        assert self.cipher is not None, "a gateway's trail holds the audit key"
        fields = scripts.audit_fields(time=now, actor=str(actor), request=request, action=action, object=object)
        async with redis_errors():
            await self._append(
                keys=[keys.OPERATOR_AUDIT, keys.OPERATOR_AUDIT_SEQ], args=scripts.sealed(fields, self.cipher)
            )

    async def chains(self) -> list[str]:
        async with redis_errors():
            found = [k.decode() async for k in self.client.scan_iter(match=f"{keys.PREFIX}:*:audit", _type="stream")]
        return sorted(found)

    async def _rows(self, chain: str) -> tuple[Rows, int]:
        async with redis_errors():
            raw = cast(StreamRows, await self.client.xrange(chain))
            recorded = int(await self.client.get(f"{chain}:seq") or 0)
        return [(eid.decode(), [(k.decode(), v.decode()) for k, v in fields.items()]) for eid, fields in raw], recorded

    async def _records(self, rows: Rows) -> list[Finding]:
        """Each record a chain names, re-read: in the state its last entry names?"""
        last: dict[str, tuple[str, str]] = {}
        for entry_id, pairs in rows:
            fields = dict(pairs)
            if "key" in fields:
                last[fields["key"]] = (entry_id, fields.get("state", ""))
        found: list[Finding] = []
        names = sorted(last)
        for start in range(0, len(names), 500):
            batch = names[start : start + 500]
            async with redis_errors():
                pipe = self.client.pipeline(transaction=False)
                for name in batch:
                    pipe.get(name)
                values = await pipe.execute()
            for name, value in zip(batch, values, strict=True):
                entry_id, state = last[name]
                if value is None:
                    found.append(Finding(name, entry_id, "record deleted behind the trail's back"))
                elif scripts.record_digest(value) != state:
                    found.append(Finding(name, entry_id, "record edited behind the trail's back"))
        return found

    async def verify(self, anchor: Anchor | None = None) -> tuple[list[ChainReport], list[Finding]]:
        """Every chain (its links, with the key its MACs), every record it names, and the anchor if given."""
        reports, findings = [], []
        chains: dict[str, Rows] = {}
        for chain in await self.chains():
            rows, recorded = await self._rows(chain)
            chains[chain] = rows
            findings += check_chain(chain, rows, recorded)
            if self.cipher is not None:
                findings += check_macs(chain, rows, self.cipher)
            findings += await self._records(rows)
            head = dict(rows[-1][1]).get("hash", "") if rows else "genesis"
            reports.append(ChainReport(chain, len(rows), head))
        if anchor is not None:
            findings += check_anchor(anchor, chains)
        return reports, findings
