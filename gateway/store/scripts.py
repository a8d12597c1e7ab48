"""The Lua scripts, loaded with the shared audit-chain function (``lua/audit_lib.lua``) prepended."""

from __future__ import annotations

import hashlib
from datetime import datetime
from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from gateway.security.crypto import FieldCipher

__all__ = ["RECORD_DIGITS", "audit_fields", "mac_body", "record_digest", "script", "sealed"]

RECORD_DIGITS = 24


def record_digest(stored: bytes) -> str:
    """The digest an audit entry names of the record it wrote (its stored bytes, version included)."""
    return hashlib.sha1(stored, usedforsecurity=False).hexdigest()[:RECORD_DIGITS]


def mac_body(pairs: list[tuple[str, str]]) -> str:
    """What an entry's MAC covers: its fields in order, without ``seq``, ``hash`` and ``mac`` itself."""
    return "\n".join(f"{k}={v}" for k, v in pairs if k not in ("seq", "hash", "mac"))


def sealed(
    fields: list[str], cipher: FieldCipher, *, record_key: str | None = None, record: bytes | None = None
) -> list[str]:
    """``fields`` bound to the record the change wrote (``key``, ``state``: its digest) and authenticated
    (``mac``, with a key Redis does not hold). The script appends them as they are."""
    items = list(fields)
    if record_key is not None and record is not None:
        items += ["key", record_key, "state", record_digest(record)]
    pairs = list(zip(items[::2], items[1::2], strict=True))
    return [*items, "mac", cipher.audit_mac(mac_body(pairs))]


_LUA = resources.files("gateway.store").joinpath("lua")


def script(client: aioredis.Redis, name: str) -> AsyncScript:
    source = _LUA.joinpath("audit_lib.lua").read_text() + _LUA.joinpath(name).read_text()
    return client.register_script(source)


def audit_fields(*, time: datetime, **fields: str) -> list[str]:
    """Audit entry items in a fixed order: time (ms since the epoch), actor, request, action, object, then any
    extra. A request scoped to its actor (``<actor>|<request id>``) is kept as the request id alone."""
    actor = fields.get("actor", "")
    request = fields.get("request", "")
    if actor and request.startswith(actor + "|"):
        fields["request"] = request[len(actor) + 1 :]
    order = ["actor", "request", "action", "object"]
    names = order + sorted(k for k in fields if k not in order)
    return ["time", str(int(time.timestamp() * 1000))] + [
        item for name in names if name in fields for item in (name, fields[name])
    ]
