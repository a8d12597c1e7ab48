"""The Redis client: connection pools, and the one translation of Redis failures into ``Unavailable``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.domain.errors import Unavailable
from gateway.store import keys

__all__ = ["StoreFormatError", "StreamRows", "check_format", "redis_client", "redis_errors", "text"]

StreamRows = list[tuple[bytes, dict[bytes, bytes]]]
"""Entries of a stream as redis-py returns them: (entry id, fields)."""


SOCKET_TIMEOUT_S = 5.0


class _SendsUnderTimeout:
    """redis-py sends a command under ``asyncio.wait_for`` when the connection has a socket timeout, and Python
    3.11's ``wait_for`` can swallow the caller's cancellation (gh-86296, fixed in 3.12): a cancelled gRPC handler
    then runs on as if nothing happened (a watcher that went away would loop for good). This sends under
    ``asyncio.timeout``, which never does."""

    socket_timeout: float | None

    async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
        limit, self.socket_timeout = self.socket_timeout, None  # so redis-py does not wrap it in wait_for
        try:
            async with asyncio.timeout(limit):
                await super().send_packed_command(command, check_health)  # type: ignore[misc]
        except TimeoutError:
            raise RedisTimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = limit


def _sends_under_timeout(base: type[AbstractConnection]) -> type[AbstractConnection]:
    made: Any = type(f"{base.__name__}UnderTimeout", (_SendsUnderTimeout, base), {})
    return made  # type: ignore[no-any-return]


def redis_client(url: str, max_connections: int) -> aioredis.Redis:
    """A client whose pool waits (up to 5 s) for a free connection rather than failing under load, and whose
    commands keep their callers' cancellations."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=2
    )
    pool.connection_class = _sends_under_timeout(pool.connection_class)
    return aioredis.Redis.from_pool(pool)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Redis unreachable (or timing out) becomes ``Unavailable`` (``STORE_UNAVAILABLE``) with RetryInfo."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise Unavailable(
            reason="STORE_UNAVAILABLE", message="the gateway's store is unreachable; retry", retry_after_s=1.0
        ) from exc


class StoreFormatError(ValueError):
    """The database holds another layout version than this gateway's."""


async def check_format(client: aioredis.Redis) -> None:
    """Refuse a database written in another layout (an older sigw): stamp an empty one with ours. Raises
    ``StoreFormatError`` with what to do."""
    raw = await client.get(keys.FORMAT_KEY)
    found = raw.decode() if isinstance(raw, bytes) else raw
    if found is None:
        _, some = await client.scan(0, match=f"{keys.PREFIX}:*", count=1000)
        if some:
            raise StoreFormatError(
                "this Redis holds sigw data of the layout before format 2 (sigw 0.1): serve it with sigw 0.1, "
                "or start from an empty data folder (see CHANGELOG.md)"
            )
        await client.set(keys.FORMAT_KEY, keys.FORMAT, nx=True)
    elif found != keys.FORMAT:
        raise StoreFormatError(f"this Redis holds sigw data of format {found}; this sigw writes {keys.FORMAT}")
