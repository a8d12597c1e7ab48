"""The Lua scripts, loaded with the shared audit-chain function (``lua/audit_lib.lua``) prepended."""

from __future__ import annotations

from datetime import datetime
from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

__all__ = ["audit_fields", "script"]

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
