"""The Redis client: connection pools, and the one translation of Redis failures into ``Unavailable``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.domain.errors import Unavailable

__all__ = ["StreamRows", "redis_client", "redis_errors"]

StreamRows = list[tuple[bytes, dict[bytes, bytes]]]
"""Entries of a stream as redis-py returns them: (entry id, fields)."""


def redis_client(url: str, max_connections: int) -> aioredis.Redis:
    """A client whose pool waits (up to 5 s) for a free connection rather than failing under load."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, socket_timeout=5, socket_connect_timeout=2
    )
    return aioredis.Redis.from_pool(pool)


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Redis unreachable (or timing out) becomes ``Unavailable`` (``STORE_UNAVAILABLE``) with RetryInfo."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise Unavailable(
            reason="STORE_UNAVAILABLE", message="the gateway's store is unreachable; retry", retry_after_s=1.0
        ) from exc
