"""Helpers for the fault tests: a `sigw serve` subprocess, polling with deadlines, transfers in bulk, and the
one-line report each test prints."""

from __future__ import annotations

import asyncio
import inspect
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import grpc
import psutil
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters.simulated_agency import SimulatedAgency
from gateway._gen.sigw.v1 import agency_pb2, common_pb2, transfer_pb2
from gateway.domain.participants import AgencyKey, AgencyType
from gateway.store import keys
from tests.helpers import PATIENCE_S, person_id

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ("110000", "310000", "440300", "510100")
AREAS = ("110105", "310101", "440304", "510104")
TRANSFER_SERVICE = "sigw.v1.TransferService"
# Reconnect quickly after the server went away (gRPC's default backoff starts at 1 s and grows to 120 s).
FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


def report(name: str, **figures: object) -> None:
    """The test's measured figures, on one line (shown with ``pytest -s``)."""
    shown = " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    print(f"\nfaults {name}: {shown}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(
    condition: Callable[[], bool] | Callable[[], Awaitable[bool]],
    what: str,
    interval_s: float = 0.02,
    timeout_s: float = PATIENCE_S,
) -> float:
    """Poll ``condition`` until it holds; returns the seconds it took (a figure for the report, never asserted
    against). Fails only after ``timeout_s``, a bound no passing run comes near."""
    start = time.monotonic()
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(interval_s)


async def health_status(channel: grpc.aio.Channel, service: str = TRANSFER_SERVICE) -> int | None:
    """The gRPC health status of ``service``, or None when the server does not answer."""
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5.0
        )
    except grpc.aio.AioRpcError:
        return None
    return int(reply.status)


async def serving(channel: grpc.aio.Channel) -> bool:
    return bool(await health_status(channel) == health_pb2.HealthCheckResponse.SERVING)


async def not_serving(channel: grpc.aio.Channel) -> bool:
    return bool(await health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING)


def http_status(port: int, path: str = "/healthz") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def dead_letters(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.xlen(keys.DEAD_LETTERS))
    finally:
        client.close()


def metric(text: str, name: str) -> float:
    """The sum of every sample of ``name`` in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ------------------------------------------------------------------------------------------- transfers


def person(n: int) -> str:
    """The n-th distinct valid ID number (n from 0; up to 3,996 of them; never sequence 000)."""
    return person_id(sequence=1 + n % 999, area=AREAS[n // 999])


def pension(n: int, prefix: str, regions: tuple[str, ...] = REGIONS) -> tuple[transfer_pb2.CreateTransferRequest, str]:
    """The n-th employee-pension transfer request (distinct request id and person), and who creates it: the
    target region's HRSS agency. Targets go round ``regions``; the source is the next region of all four."""
    target = regions[n % len(regions)]
    source = REGIONS[(REGIONS.index(target) + 1) % len(REGIONS)]
    request = transfer_pb2.CreateTransferRequest(
        request_id=f"{prefix}-{n}",
        kind=transfer_pb2.TRANSFER_KIND_EMPLOYEE_PENSION,
        source_region=source,
        target_region=target,
        person=common_pb2.Person(id_number=person(n), name="张三"),
    )
    return request, f"agency:{target}:hrss"


def requested(agencies: Iterable[SimulatedAgency]) -> dict[str, list[str]]:
    """Transfer id -> the message ids of the TRANSFER_REQUESTED notices the agencies applied for it."""
    seen: dict[str, list[str]] = {}
    for agency in agencies:
        for m in agency.received:
            if m.transfer_notice.type == agency_pb2.NOTICE_TYPE_TRANSFER_REQUESTED:
                seen.setdefault(m.transfer_notice.transfer.transfer_id, []).append(m.message_id)
    return seen


def applied_twice(agencies: Iterable[SimulatedAgency]) -> int:
    """Messages an agency applied more than once: a repeated message id, or the same notice of the same
    transfer applied under two message ids."""
    twice = 0
    for agency in agencies:
        ids = [m.message_id for m in agency.received]
        notices = [(m.transfer_notice.transfer.transfer_id, m.transfer_notice.type) for m in agency.received]
        twice += len(ids) - len(set(ids)) + len(notices) - len(set(notices))
        twice += agency.stats.applied - len(agency.stats.applied_ids)
    return twice


def write_regions(path: Path, endpoints: dict[AgencyKey, str]) -> Path:
    entries = []
    for code in sorted({k.region for k in endpoints}):
        entries.append(
            f'[[regions]]\ncode = "{code}"\n'
            f'hrss = "{endpoints[AgencyKey(code, AgencyType.HRSS)]}"\n'
            f'healthcare = "{endpoints[AgencyKey(code, AgencyType.HEALTHCARE_SECURITY)]}"\n'
        )
    path.write_text("\n".join(entries), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------- gateway process


class GatewayProcess:
    """`sigw serve` in its own process, on fixed loopback ports (so a restart keeps the address)."""

    def __init__(
        self,
        tmp: Path,
        redis_url: str | None,
        regions_file: Path,
        claim_idle_ms: int = 1000,
        workers: int = 0,
        *,
        fd_limit: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """``redis_url`` None: the supervisor's embedded Redis, in ``tmp/data``; ``fd_limit``: the open-file limit
        (soft and hard) the process tree runs under; ``env``: more ``SIGW_*`` settings."""
        self.data_dir = tmp / "data"
        self.fd_limit = fd_limit
        self.extra_env = env or {}
        self.grpc_port, self.http_port = free_port(), free_port()
        self.redis_url = redis_url
        self.regions_file = regions_file
        self.claim_idle_ms = claim_idle_ms
        self.workers = workers
        self.log = tmp / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.instance = ""

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, instance: str) -> None:
        assert self.process is None
        self.instance = instance
        env = {
            **os.environ,
            "SIGW_INSTANCE": instance,
            "SIGW_RATE_PER_S": "100000",
            "SIGW_CLAIM_IDLE_MS": str(self.claim_idle_ms),
            "SIGW_CALENDAR_FILE": "",
            "SIGW_CLOCK_START": "2026-03-02T09:00:00+08:00",
            "SIGW_KEY_FILE": str(Path(tempfile.gettempdir()) / f"sigw-faults-{os.getpid()}.keys"),
            "SIGW_WORKERS": str(self.workers),
            "SIGW_NATIONAL_LISTEN": "",
            **self.extra_env,
        }
        limit = self.fd_limit

        def limited() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        with self.log.open("ab") as log:
            log.write(f"--- start as {instance}\n".encode())
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    "serve",
                    "--insecure",
                    "--dev-identity",
                    *(["--redis-url", self.redis_url] if self.redis_url else ["--data-dir", str(self.data_dir)]),
                    "--regions-file",
                    str(self.regions_file),
                    "--grpc-listen",
                    self.target,
                    "--http-listen",
                    f"127.0.0.1:{self.http_port}",
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=limited if limit is not None else None,
            )

    async def ready(self, channel: grpc.aio.Channel, timeout_s: float = PATIENCE_S) -> float:
        """Wait until the process reports SERVING; the seconds it took."""

        async def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            return await serving(channel)

        return await until(up, "the gateway process serves", interval_s=0.05, timeout_s=timeout_s)

    def children(self, role: str) -> list[psutil.Process]:
        """The supervisor's live processes of ``role`` (``api``, ``delivery``)."""
        assert self.process is not None
        found = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if child.cmdline()[-2:] == ["--role", role] and child.status() != psutil.STATUS_ZOMBIE:
                    found.append(child)
            except psutil.NoSuchProcess:
                continue
        return found

    def restarts(self, role: str) -> float:
        """``sigw_process_restarts_total`` of ``role``, from the supervisor's /metrics."""
        _, text = http_status(self.http_port, "/metrics")
        prefix = f'sigw_process_restarts_total{{role="{role}"}} '
        return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acknowledgements, as a crash."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


def pending_messages(redis_url: str) -> int:
    """Messages read by some gateway process but not acknowledged yet, over every consumer group."""
    client = redis.Redis.from_url(redis_url)
    try:
        total = 0
        for key in client.scan_iter(match=f"{keys.PREFIX}:*", _type="STREAM", count=1000):
            total += sum(int(group["pending"]) for group in client.xinfo_groups(key))
        return total
    finally:
        client.close()


def pending_of(redis_url: str, consumer: str) -> int:
    """Messages ``consumer`` (a gateway process's name) read and has not acknowledged, over every group."""
    client = redis.Redis.from_url(redis_url)
    try:
        total = 0
        for key in client.scan_iter(match=f"{keys.PREFIX}:*", _type="STREAM", count=1000):
            for group in client.xinfo_groups(key):
                for c in client.xinfo_consumers(key, group["name"]):
                    if c["name"].decode() == consumer:
                        total += int(c["pending"])
        return total
    finally:
        client.close()


def undelivered(redis_url: str) -> int:
    """Messages still in an outbox or an agency's lane (a message leaves once its agency took it)."""
    client = redis.Redis.from_url(redis_url)
    try:
        streams = [*client.scan_iter(match=f"{keys.PREFIX}:*:outbox", count=1000)]
        streams += [*client.scan_iter(match=f"{keys.PREFIX}:{{q:*", count=1000)]
        return sum(int(client.xlen(s)) for s in streams)
    finally:
        client.close()
