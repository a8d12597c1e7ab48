"""The Lua scripts, loaded with the shared audit-chain function (``lua/audit_lib.lua``) prepended."""

from __future__ import annotations

from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

__all__ = ["audit_fields", "script"]

_LUA = resources.files("gateway.store").joinpath("lua")


def script(client: aioredis.Redis, name: str) -> AsyncScript:
    source = _LUA.joinpath("audit_lib.lua").read_text() + _LUA.joinpath(name).read_text()
    return client.register_script(source)


def audit_fields(**fields: str) -> list[str]:
    """Audit entry items in a fixed order: time, actor, request, action, object, then any extra."""
    order = ["time", "actor", "request", "action", "object"]
    names = order + sorted(k for k in fields if k not in order)
    return [item for name in names if name in fields for item in (name, fields[name])]
