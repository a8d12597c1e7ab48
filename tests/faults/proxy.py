"""A small asyncio TCP proxy that makes a link slow and flaky, for fault tests.

It listens on 127.0.0.1 (port 0: an ephemeral port) and forwards each connection to ``target``. The knobs
(``Faults``) apply per connection:

* ``latency_s``: added before forwarding each chunk, in both directions;
* ``drop_probability``: the connection is closed on both sides (FIN) at a random point within its first
  ``drop_within_bytes`` bytes;
* ``reset_probability``: the connection is closed abruptly (RST, SO_LINGER 0) after ``reset_after_bytes`` bytes;
* ``drop_responses``: the next N gRPC responses are lost: the server's reply reaches the proxy, which closes the
  client side instead of passing it on (it reads the HTTP/2 frames from the server and stops at the first
  HEADERS frame of a stream, which the server only sends once the call was handled).

Every kind of fault is bounded by ``max_faults`` (over the proxy's life), so a link always heals in the end.
The proxy counts what it did in ``stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from dataclasses import dataclass, field

_CHUNK = 16 * 1024
_FRAME_HEADER = 9
_HEADERS = 0x1


@dataclass
class Faults:
    latency_s: float = 0.0
    drop_probability: float = 0.0
    drop_within_bytes: int = 32 * 1024
    reset_probability: float = 0.0
    reset_after_bytes: int = 4 * 1024
    drop_responses: int = 0
    max_faults: int = 20


@dataclass
class ProxyStats:
    connections: int = 0
    drops: int = 0
    resets: int = 0
    dropped_responses: int = 0
    bytes_up: int = 0
    bytes_down: int = 0

    @property
    def injected(self) -> int:
        return self.drops + self.resets + self.dropped_responses


@dataclass(eq=False)
class _Link:
    """One proxied connection: its two sockets and its fate."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    drop_at: int | None = None
    reset_at: int | None = None
    moved: int = 0
    closed: bool = False
    frames: bytearray = field(default_factory=bytearray)


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, faults: Faults | None = None, seed: int = 0) -> None:
        self.target = (target_host, target_port)
        self.faults = faults or Faults()
        self.stats = ProxyStats()
        self._random = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._links: set[_Link] = set()

    @classmethod
    def to(cls, endpoint: str, faults: Faults | None = None, seed: int = 0) -> TcpProxy:
        host, port = endpoint.rsplit(":", 1)
        return cls(host, int(port), faults, seed)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            self._close(link)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2.0)

    # ------------------------------------------------------------------------------------------ internals

    def _budget_left(self) -> bool:
        return self.stats.injected < self.faults.max_faults

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            server_reader, server_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), 5.0)
        except (OSError, TimeoutError):
            client_writer.close()
            return
        link = _Link(client_writer, server_writer)
        f = self.faults
        if f.drop_probability and self._random.random() < f.drop_probability:
            link.drop_at = self._random.randint(1, max(1, f.drop_within_bytes))
        elif f.reset_probability and self._random.random() < f.reset_probability:
            link.reset_at = f.reset_after_bytes
        self._links.add(link)
        pumps = [
            asyncio.create_task(self._pump(link, client_reader, server_writer, upstream=True)),
            asyncio.create_task(self._pump(link, server_reader, client_writer, upstream=False)),
        ]
        for task in pumps:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.gather(*pumps, return_exceptions=True)
        self._close(link)
        self._links.discard(link)

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while not link.closed:
                chunk = await reader.read(_CHUNK)
                if not chunk:
                    break
                if self.faults.latency_s:
                    await asyncio.sleep(self.faults.latency_s)
                if not upstream and (self.faults.drop_responses or link.frames):
                    passed = self._until_response(link, chunk)
                    if passed is None:
                        return
                    chunk = passed
                if self._fault_due(link, chunk):
                    return
                link.moved += len(chunk)
                if upstream:
                    self.stats.bytes_up += len(chunk)
                else:
                    self.stats.bytes_down += len(chunk)
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._close(link)

    def _fault_due(self, link: _Link, chunk: bytes) -> bool:
        """Drop or reset the connection when its fate says this chunk crosses the line (and budget is left)."""
        after = link.moved + len(chunk)
        if link.drop_at is not None and after >= link.drop_at and self._budget_left():
            self.stats.drops += 1
            self._close(link)
            return True
        if link.reset_at is not None and after >= link.reset_at and self._budget_left():
            self.stats.resets += 1
            self._close(link, reset=True)
            return True
        return False

    def _until_response(self, link: _Link, chunk: bytes) -> bytes | None:
        """The part of ``chunk`` (with what is buffered) before the first response HEADERS frame; None when the
        response is dropped (the connection is closed). Incomplete frames wait in the buffer."""
        link.frames += chunk
        out = bytearray()
        while len(link.frames) >= _FRAME_HEADER:
            length = int.from_bytes(link.frames[0:3], "big")
            kind = link.frames[3]
            stream = int.from_bytes(link.frames[5:9], "big") & 0x7FFFFFFF
            if kind == _HEADERS and stream and self.faults.drop_responses > 0 and self._budget_left():
                self.faults.drop_responses -= 1
                self.stats.dropped_responses += 1
                self._close(link)
                return None
            if len(link.frames) < _FRAME_HEADER + length:
                break
            out += link.frames[: _FRAME_HEADER + length]
            del link.frames[: _FRAME_HEADER + length]
        return bytes(out)

    def _close(self, link: _Link, *, reset: bool = False) -> None:
        if link.closed:
            return
        link.closed = True
        for writer in (link.client, link.server):
            if reset:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            else:
                writer.close()
