"""The Redis key layout, in one place.

Everything about one transfer lives in one shard, and every key of a shard carries the shard's hash tag
(``{s07}``), so the Lua script that commits a transition touches keys of one Redis Cluster slot only. The
shard of a new transfer comes from its idempotency scope, so a retried create lands in the same shard; the
transfer id carries the shard (``T07-…``) so every later call finds it without a lookup.

===============================  ==========  ==============================================================
key                              type        holds
===============================  ==========  ==============================================================
``sigw:{sNN}:tr:<id>``           hash        ``json`` (the transfer), ``state``, ``version``
``sigw:{sNN}:ev:<id>``           stream      the transfer's timeline events
``sigw:{sNN}:idem:<scope>``      string      an idempotency record: payload fingerprint and the outcome
``sigw:{sNN}:idx:<region>``      sorted set  transfers leaving or entering a region (``<created ms>:<id>``)
``sigw:{sNN}:counts``            hash        transfers by ``<kind>|<state>`` (for metrics)
``sigw:{sNN}:outbox:<lane>``     stream      messages waiting for delivery (consumer group ``dispatch``)
``sigw:dlq``                     stream      dead letters: undeliverable messages with their reason
===============================  ==========  ==============================================================
"""

from __future__ import annotations

import zlib

PREFIX = "sigw"
CONSUMER_GROUP = "dispatch"
DEAD_LETTERS = f"{PREFIX}:dlq"


def shard_for(scope: str, shards: int) -> int:
    """A stable shard number for an idempotency scope."""
    return zlib.crc32(scope.encode()) % shards


def _tag(shard: int) -> str:
    return f"{PREFIX}:{{s{shard:02d}}}"


def transfer(shard: int, transfer_id: str) -> str:
    return f"{_tag(shard)}:tr:{transfer_id}"


def events(shard: int, transfer_id: str) -> str:
    return f"{_tag(shard)}:ev:{transfer_id}"


def idempotency(shard: int, scope: str) -> str:
    return f"{_tag(shard)}:idem:{scope}"


def region_index(shard: int, region: str) -> str:
    return f"{_tag(shard)}:idx:{region}"


def counts(shard: int) -> str:
    return f"{_tag(shard)}:counts"


def outbox(shard: int, lane: str) -> str:
    return f"{_tag(shard)}:outbox:{lane}"
