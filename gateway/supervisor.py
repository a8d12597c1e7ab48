"""``sigw serve``: the process tree that uses every core.

::

    sigw serve (this supervisor: /metrics, /healthz, restarts)
    ├── redis-server           the embedded Redis, unless a Redis is configured
    ├── api-1 … api-N          sigw serve --role api       gRPC servicers, all on one port (SO_REUSEPORT)
    ├── delivery               sigw serve --role delivery  dispatcher and overdue sweeper
    ├── agencies               sigw agencies               the simulated agencies (--demo only)
    └── portal                 sigw portal                 the applicants' status page (--demo only)

The supervisor makes no gRPC object (children are started fresh by ``exec``, never forked from a process with
gRPC threads). Every child runs under ``setpriv --pdeathsig KILL`` (none outlives a crashed supervisor) in a
process group of its own (a terminal's Ctrl-C reaches only the supervisor, which then stops them in order: the
API first, so no call is cut off, then delivery, the agencies, the portal and Redis). A child that dies is started again
after a backoff; one that keeps dying at once stops the whole tree with an error.

Metrics: each child writes its samples to ``<data_dir>/metrics`` (prometheus_client's multiprocess mode); the
supervisor serves their sum with the store gauges and its own ``sigw_process_*`` figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from gateway.api.http import CertificateGauges, StoreGauges, serve_http
from gateway.config import Settings, load_registry
from gateway.domain.calendar import SHANGHAI
from gateway.domain.errors import Unavailable
from gateway.server import check_transport, load_cipher
from gateway.store.client import check_format, redis_client
from gateway.store.deliveries import DeliveryQueueStore
from gateway.store.embedded import EmbeddedRedis, die_with_parent
from gateway.store.transfers import TransferStore

__all__ = ["ChildRole", "Supervisor", "api_workers"]

log = logging.getLogger("sigw.supervisor")

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
STEADY_S = 30.0
"""A child that ran this long before dying is restarted at once (its backoff starts over)."""
CRASH_LOOP = 5
"""A child that dies this many times in a row, each within ``FAST_DEATH_S`` of its start, stops the tree."""
FAST_DEATH_S = 5.0
STOP_GRACE_S = 15.0
MONITOR_INTERVAL_S = 1.0


class ChildRole(enum.StrEnum):
    API = "api"
    DELIVERY = "delivery"
    AGENCIES = "agencies"
    PORTAL = "portal"


def api_workers(settings: Settings) -> int:
    """API processes: ``settings.workers``, or one per core."""
    return settings.workers if settings.workers > 0 else max(1, os.cpu_count() or 1)


@dataclass
class Child:
    """One child process and its restart record."""

    name: str
    role: ChildRole
    argv: list[str]
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    fast_deaths: int = 0
    restarts: int = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


@dataclass
class RedisWatch:
    """The embedded Redis and its restart record (``sigw serve`` without ``--redis-url``)."""

    server: EmbeddedRedis
    restarts: int = 0
    fast_deaths: int = 0
    started_at: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> bool:
        return self.server.process is not None and self.server.process.poll() is None


class ProcessFigures(Collector):
    """``sigw_process_up{role}`` and ``sigw_process_restarts_total{role}`` (role ``redis`` for the embedded
    Redis)."""

    def __init__(self, children: list[Child], redis: Callable[[], RedisWatch | None] = lambda: None) -> None:
        self.children = children
        self.redis = redis

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("sigw_process_up", "Gateway processes running, by role.", labels=["role"])
        restarts = CounterMetricFamily(
            "sigw_process_restarts", "Gateway processes started again after dying, by role.", labels=["role"]
        )
        for role in ChildRole:
            mine = [c for c in self.children if c.role is role]
            if mine:
                up.add_metric([role.value], sum(c.alive for c in mine))
                restarts.add_metric([role.value], sum(c.restarts for c in mine))
        watch = self.redis()
        if watch is not None:
            up.add_metric(["redis"], int(watch.alive))
            restarts.add_metric(["redis"], watch.restarts)
        yield up
        yield restarts


@dataclass
class Supervisor:
    """Start, watch and stop the tree for ``settings`` (see the module docstring)."""

    settings: Settings
    children: list[Child] = field(default_factory=list)
    stopping: bool = False
    failed: str = ""
    grpc_listen: str = ""
    national_listen: str = ""
    http_port: int = 0
    _serving: bool = False
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    redis: RedisWatch | None = None

    async def run(self) -> int:
        """Run until SIGINT/SIGTERM (or a crash loop); the exit code. Whatever it started is stopped on the way
        out, also when starting fails."""
        async with contextlib.AsyncExitStack() as cleanup:
            await self._start(cleanup)
            await self._stop.wait()
            self.stopping = True
            log.info(
                "shutting down: API processes first, then delivery%s",
                ", agencies, portal" if self.settings.demo else "",
            )
            for role in ChildRole:
                await self._stop_role(role)
        log.info("stopped: every process%s", " and the embedded Redis" if self.redis is not None else "")
        if self.failed:
            log.error("%s", self.failed)
            return 1
        return 0

    async def _start(self, cleanup: contextlib.AsyncExitStack) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        settings = self.settings
        check_transport(settings)  # refuse a bad transport here, before any child starts
        cipher = load_cipher(settings.key_file)  # made here once when missing, not raced by the children
        registry = load_registry(settings.regions_file)
        metrics_dir = settings.data_dir.resolve() / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        metrics = CollectorRegistry()
        MultiProcessCollector(metrics, path=str(metrics_dir))  # type: ignore[no-untyped-call]
        gauges = StoreGauges()
        metrics.register(gauges)
        metrics.register(CertificateGauges(check_transport(settings)))
        metrics.register(ProcessFigures(self.children, lambda: self.redis))
        if settings.http_listen:
            http = await serve_http(settings.http_listen, metrics, lambda: self._serving, settings.connection_limits())
            cleanup.push_async_callback(http.stop)
            self.http_port = http.port
        self.grpc_listen = self._reserve_port(settings.grpc_listen, cleanup)
        self.national_listen = self._reserve_port(settings.national_listen, cleanup) if settings.national_listen else ""

        redis_url = settings.redis_url
        if redis_url is None:
            embedded = EmbeddedRedis(settings.data_dir, appendfsync=settings.appendfsync)
            embedded.start()
            cleanup.callback(embedded.stop)
            self.redis = RedisWatch(embedded)
            redis_url = embedded.url
            log.info("embedded Redis at %s (appendonly, appendfsync %s)", settings.data_dir, settings.appendfsync)
        client = redis_client(redis_url, 4)
        cleanup.push_async_callback(client.aclose)
        await check_format(client)  # a database of another layout: refused here, before any child starts
        store, queue = (
            TransferStore(client, settings.shards, cipher),
            DeliveryQueueStore(client, registry.destinations()),
        )

        child_settings = replace(
            settings,
            redis_url=redis_url,
            grpc_listen=self.grpc_listen,
            national_listen=self.national_listen,
            http_listen="",
            demo=False,
        )
        env = {**os.environ, **child_settings.to_env(), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        serve = [sys.executable, "-m", "gateway.cli", "serve"]
        workers = api_workers(settings)
        for i in range(workers):
            self.children.append(Child(f"api-{i + 1}", ChildRole.API, [*serve, "--role", "api"], env))
        self.children.append(Child("delivery", ChildRole.DELIVERY, [*serve, "--role", "delivery"], env))
        if settings.demo:
            agencies = [sys.executable, "-m", "gateway.cli", "agencies", "--gateway", _dialable(self.grpc_listen)]
            self.children.append(Child("agencies", ChildRole.AGENCIES, agencies, env))
            if settings.portal_listen:
                self.children.append(Child("portal", ChildRole.PORTAL, self._portal_argv(), env))
        cleanup.callback(self._kill_all)
        for child in self.children:
            await self._spawn(child)
        tasks = [asyncio.create_task(self._watch(child, metrics_dir)) for child in self.children]
        tasks.append(asyncio.create_task(self._monitor(store, queue, gauges)))
        if self.redis is not None:
            tasks.append(asyncio.create_task(self._watch_redis(self.redis)))
        cleanup.push_async_callback(_cancel, tasks)
        log.info(
            "sigw serving gRPC on %s, the national interface on %s (%d API processes, 1 delivery process%s) "
            "and HTTP on %s",
            self.grpc_listen,
            self.national_listen or "(none)",
            workers,
            f", simulated agencies, the status page on http://{settings.portal_listen}/"
            if settings.demo and settings.portal_listen
            else "",
            settings.http_listen or "(none)",
        )

    def _portal_argv(self) -> list[str]:
        s = self.settings
        argv = [sys.executable, "-m", "gateway.cli", "portal", "--gateway", _dialable(self.grpc_listen)]
        argv += ["--listen", s.portal_listen, "--regions-file", str(s.regions_file), "--tls-dir", str(s.tls_dir)]
        argv += ["--data-dir", str(s.data_dir.parent / "portal")]
        return [*argv, "--insecure"] if s.insecure else argv

    def _kill_all(self) -> None:
        for child in self.children:
            if child.alive and child.process is not None:
                child.process.kill()

    def _reserve_port(self, listen: str, cleanup: contextlib.AsyncExitStack) -> str:
        """``listen`` with port 0 resolved to a free port, held by a bound socket (SO_REUSEPORT, not listening)
        so every API process can bind it and nothing else takes it meanwhile."""
        host, port = listen.rsplit(":", 1)
        if port != "0":
            return listen
        bare = host.strip("[]")
        family = socket.AF_INET6 if ":" in bare else socket.AF_INET
        reserved = socket.socket(family, socket.SOCK_STREAM)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind((bare, 0))
        cleanup.callback(reserved.close)
        return f"{host}:{reserved.getsockname()[1]}"

    async def _spawn(self, child: Child) -> None:
        child.process = await asyncio.create_subprocess_exec(
            *die_with_parent(child.argv, "KILL"), env=child.env, process_group=0
        )
        child.started_at = time.monotonic()
        log.info("started %s (pid %d)", child.name, child.process.pid)

    async def _watch(self, child: Child, metrics_dir: Path) -> None:
        """Start ``child`` again whenever it dies, unless the tree is stopping."""
        while True:
            assert child.process is not None
            code = await child.process.wait()
            mark_process_dead(child.process.pid, str(metrics_dir))  # type: ignore[no-untyped-call]
            if self.stopping:
                return
            lived = time.monotonic() - child.started_at
            child.fast_deaths = child.fast_deaths + 1 if lived < FAST_DEATH_S else 0
            if child.fast_deaths >= CRASH_LOOP:
                self.failed = f"{child.name} died {CRASH_LOOP} times in a row at start (exit {code}): stopping"
                self._stop.set()
                return
            delay = 0.0 if lived >= STEADY_S else RESTART_BACKOFF_S[min(child.fast_deaths, len(RESTART_BACKOFF_S) - 1)]
            log.error(
                "%s (pid %d) exited %s after %.1f s: starting it again in %.1f s",
                child.name,
                child.process.pid,
                code,
                lived,
                delay,
            )
            await asyncio.sleep(delay)
            if self.stopping:
                return
            child.restarts += 1
            await self._spawn(child)

    async def _watch_redis(self, watch: RedisWatch) -> None:
        """Start the embedded Redis again (on its append-only file) whenever it dies, with the children's
        backoff; the API and delivery processes reconnect by themselves (NOT_SERVING meanwhile)."""
        while not self.stopping:
            await asyncio.sleep(MONITOR_INTERVAL_S)
            if watch.alive or self.stopping:
                continue
            lived = time.monotonic() - watch.started_at
            watch.fast_deaths = watch.fast_deaths + 1 if lived < FAST_DEATH_S else 0
            delay = 0.0 if lived >= STEADY_S else RESTART_BACKOFF_S[min(watch.fast_deaths, len(RESTART_BACKOFF_S) - 1)]
            code = watch.server.process.returncode if watch.server.process else None
            log.error("embedded Redis exited %s after %.1f s: starting it again in %.1f s", code, lived, delay)
            await asyncio.sleep(delay)
            if self.stopping:
                return
            try:
                # On this thread, not a worker thread: the child's parent-death signal follows the thread that
                # started it. It blocks the loop until Redis answers (milliseconds, at most its start timeout).
                watch.server.start()
            except (RuntimeError, OSError) as error:
                log.error("embedded Redis did not start again (%s); retrying", error)
                continue
            watch.restarts += 1
            watch.started_at = time.monotonic()
            log.info("embedded Redis started again (pid %d)", watch.server.process.pid if watch.server.process else 0)

    async def _stop_role(self, role: ChildRole) -> None:
        mine = [c for c in self.children if c.role is role and c.alive and c.process is not None]
        for child in mine:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        for child in mine:
            assert child.process is not None
            try:
                async with asyncio.timeout(STOP_GRACE_S):
                    await child.process.wait()
            except TimeoutError:
                log.error("%s (pid %d) did not stop within %.0f s: killed", child.name, child.pid, STOP_GRACE_S)
                child.process.kill()
                await child.process.wait()
            log.info("%s stopped (exit %s)", child.name, child.process.returncode)

    async def _monitor(self, store: TransferStore, queue: DeliveryQueueStore, gauges: StoreGauges) -> None:
        """/healthz is 200 while Redis answers and every role has a live process; refresh the store gauges."""
        while not self.stopping:
            try:
                await gauges.refresh(store, queue, datetime.now(SHANGHAI).date())
                store_ok = True
            except (RedisError, OSError, Unavailable):
                store_ok = False
            roles_up = {c.role for c in self.children if c.alive} == {c.role for c in self.children}
            port_open = await _accepts(_dialable(self.grpc_listen))
            serving = store_ok and roles_up and port_open
            if serving != self._serving:
                why = f"store {'up' if store_ok else 'down'}, processes {'up' if roles_up else 'missing'}, "
                why += f"gRPC port {'open' if port_open else 'closed'}"
                log.log(logging.INFO if serving else logging.ERROR, "/healthz: %s (%s)", _word(serving), why)
            self._serving = serving
            await asyncio.sleep(MONITOR_INTERVAL_S)


def _dialable(listen: str) -> str:
    """An address to reach a server listening on ``listen`` from this machine (a wildcard becomes loopback)."""
    host, port = listen.rsplit(":", 1)
    if host in ("0.0.0.0", ""):
        return f"127.0.0.1:{port}"
    if host == "[::]":
        return f"[::1]:{port}"
    return listen


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _accepts(address: str) -> bool:
    """Whether a TCP connection to ``address`` opens (some API process listens)."""
    host, port = address.rsplit(":", 1)
    try:
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _word(serving: bool) -> str:
    return "SERVING" if serving else "NOT_SERVING"
