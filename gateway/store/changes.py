"""Changes to transfers as they are committed, for WatchTransfer: one Redis pub/sub connection per process.

``commit.lua`` publishes a transfer's new version on the transfer's channel (``keys.changes``). Every watcher of a
process shares one subscription connection and one reader task: the first watcher of a transfer subscribes to its
channel, the last one leaving unsubscribes. A publish can be missed (a reconnect, the instant before the
subscription took effect), so a watcher never relies on one: it reads the transfer again after subscribing and
whenever its wait runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["ChangeFeed"]

log = logging.getLogger("sigw.store")

_READ_S = 0.05
"""How long the reader waits for a message before it looks at subscribe requests again."""


@dataclass
class _Channel:
    waiters: set[asyncio.Event] = field(default_factory=set)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)


class ChangeFeed:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._channels: dict[str, _Channel] = {}
        self._pending: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self._pubsub: aioredis.client.PubSub | None = None

    @property
    def watched(self) -> int:
        """Channels this process is subscribed to (or about to be)."""
        return len(self._channels)

    @contextlib.asynccontextmanager
    async def subscription(self, channel: str, timeout_s: float) -> AsyncIterator[asyncio.Event]:
        """An event set when ``channel`` gets a message, while the ``async with`` lasts; entered once the
        subscription took effect (or ``timeout_s`` passed, after which the caller's re-reads must do)."""
        entry = self._channels.setdefault(channel, _Channel())
        event = asyncio.Event()
        entry.waiters.add(event)
        self._pending.add(channel)
        self._start()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):  # not wait_for, which can swallow a cancellation
                    await entry.subscribed.wait()
            yield event
        finally:
            entry.waiters.discard(event)
            if not entry.waiters:
                self._pending.add(channel)  # the reader unsubscribes it

    def _start(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read())

    async def _apply_pending(self, pubsub: aioredis.client.PubSub) -> None:
        changes, self._pending = self._pending, set()
        wanted = [c for c in changes if c in self._channels and self._channels[c].waiters]
        unwanted = [c for c in changes if c not in wanted]
        for channel in unwanted:
            entry = self._channels.pop(channel, None)
            if entry is not None and entry.subscribed.is_set():
                await pubsub.unsubscribe(channel)
        fresh = [c for c in wanted if not self._channels[c].subscribed.is_set()]
        if fresh:
            await pubsub.subscribe(*fresh)

    async def _read(self) -> None:
        """The one reader: applies subscribe requests, reads messages, wakes the watchers; ends when nobody
        watches (the next watcher starts it again)."""
        pubsub = self._client.pubsub()
        try:
            while self._channels:
                try:
                    await self._apply_pending(pubsub)
                    message = await pubsub.get_message(timeout=_READ_S)
                except (RedisError, OSError) as exc:
                    log.warning("change feed interrupted (%s); watchers fall back to re-reading", type(exc).__name__)
                    for entry in self._channels.values():
                        entry.subscribed.clear()
                    self._pending |= set(self._channels)
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    pubsub = self._client.pubsub()
                    await asyncio.sleep(0.5)
                    continue
                if message is None:
                    continue
                channel = message["channel"].decode()
                found = self._channels.get(channel)
                if found is None:
                    if message["type"] == "subscribe":  # every watcher left before it took effect
                        await pubsub.unsubscribe(channel)
                    continue
                if message["type"] == "subscribe":
                    found.subscribed.set()
                elif message["type"] == "message":
                    for event in found.waiters:
                        event.set()
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
