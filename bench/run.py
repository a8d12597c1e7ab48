"""``make bench``: the gateway measured side by side with a raw grpc.aio echo server, in one run.

Every figure comes from processes started here on loopback, each bounded in time:

* the load generator (``bench.load``) in its own process, the same for echo and gateway;
* the echo server (``bench.echo``) with the gateway's mutual TLS and replies of a CreateTransfer reply's size;
* the gateway as users start it (``sigw serve``: the supervisor, its API and delivery processes, the embedded
  Redis with ``appendfsync always``, mutual TLS), the simulated agencies in a process of their own
  (``sigw agencies``), so their work is not counted as the gateway's.

CPU seconds are read from /proc (psutil) for every gateway process (supervisor, API, delivery) and, apart, for
Redis; throughput per core-second is compared with echo's, which is what a noisy shared machine allows. The run
ends with lines ``bench NAME VALUE UNIT``.

    make bench                    # or: .venv/bin/python -m bench.run --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

from gateway.domain.participants import AgencyType
from gateway.store.client import check_format, redis_client
from gateway.store.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ("110000", "310000", "440300", "510100")
PATIENCE_S = 120.0
"""The longest any wait of the run may take (a drain, a start) before the run fails."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    condition: Callable[[], bool], what: str, timeout_s: float = PATIENCE_S, interval_s: float = 0.05
) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise RuntimeError(f"not within {timeout_s} s: {what}")
        time.sleep(interval_s)
    return time.monotonic() - start


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def role_of(process: psutil.Process) -> str:
    """A gateway process's role: its ``--role``, else the supervisor (or redis-server)."""
    try:
        line = process.cmdline()
    except psutil.NoSuchProcess:
        return "gone"
    if "--role" in line:
        return line[line.index("--role") + 1]
    return "redis" if process.name() == "redis-server" else "supervisor"


@dataclass
class Meter:
    """CPU seconds of a set of processes between two readings, in all and by role."""

    processes: Callable[[], list[psutil.Process]]
    start: dict[int, tuple[str, float]] = field(default_factory=dict)

    def _now(self) -> dict[int, tuple[str, float]]:
        return {p.pid: (role_of(p), cpu_seconds([p])) for p in self.processes()}

    def begin(self) -> None:
        self.start = self._now()

    def by_role(self) -> dict[str, float]:
        roles: dict[str, float] = {}
        for pid, (role, seconds) in self._now().items():
            roles[role] = roles.get(role, 0.0) + seconds - self.start.get(pid, (role, 0.0))[1]
        return roles

    def read(self) -> float:
        return sum(self.by_role().values())


@dataclass
class Bench:
    tmp: Path
    seconds: float
    figures: dict[str, tuple[float, str]] = field(default_factory=dict)
    rows: list[tuple[str, ...]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    gateway: subprocess.Popen[bytes] | None = None
    agencies: subprocess.Popen[bytes] | None = None
    grpc_target: str = ""
    http_port: int = 0
    issued: int = 0
    """Requests numbered so far: each load starts after them (distinct msgids, persons, request ids)."""
    profile: Path | None = None
    month_settlements: int = 1_000_000

    @property
    def pki(self) -> Path:
        return self.tmp / "pki"

    @property
    def regions(self) -> Path:
        return self.tmp / "regions.toml"

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def figure(self, name: str, value: float, unit: str) -> None:
        self.figures[name] = (value, unit)

    # ------------------------------------------------------------------------------------------ processes

    def sigw(self, *args: str, log: str = "") -> subprocess.Popen[bytes]:
        out = (self.tmp / log).open("ab") if log else subprocess.DEVNULL
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
        )

    def setup(self) -> None:
        ports = {(r, t): free_port() for r in REGIONS for t in AgencyType}
        entries = [
            f'[[regions]]\ncode = "{r}"\nhrss = "127.0.0.1:{ports[(r, AgencyType.HRSS)]}"\n'
            f'healthcare = "127.0.0.1:{ports[(r, AgencyType.HEALTHCARE_SECURITY)]}"\n'
            for r in REGIONS
        ]
        self.regions.write_text("\n".join(entries))
        self.env = {
            **os.environ,
            "SIGW_TLS_DIR": str(self.pki),
            "SIGW_REGIONS_FILE": str(self.regions),
            "SIGW_DATA_DIR": str(self.data),
            "SIGW_KEY_FILE": str(self.tmp / "sigw.keys"),
            # One participant sends all the load here; the per-participant limit is for real deployments.
            "SIGW_RATE_PER_S": "1000000",
        }
        subprocess.run(
            [sys.executable, "-m", "gateway.cli", "pki", "init", "--tls-dir", str(self.pki), "--regions-file",
             str(self.regions)],
            cwd=ROOT, env=self.env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def start_gateway(self) -> None:
        grpc_port, self.http_port = free_port(), free_port()
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.gateway = self.sigw(
            "serve", "--grpc-listen", self.grpc_target, "--http-listen", f"127.0.0.1:{self.http_port}",
            log="gateway.log",
        )  # fmt: skip
        wait_for(self._healthy, "the gateway serves")

    def _healthy(self) -> bool:
        assert self.gateway is not None
        if self.gateway.poll() is not None:
            raise RuntimeError(f"the gateway exited; see {self.tmp / 'gateway.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=1) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def start_agencies(self, *flags: str) -> None:
        if self.agencies is not None:
            self.agencies.send_signal(signal.SIGTERM)
            self.agencies.wait(30)
        self.agencies = self.sigw("agencies", "--gateway", self.grpc_target, *flags, log="agencies.log")
        # The agencies are up when each of their ports accepts a connection.
        ports = [int(line.split(":")[-1].strip('"')) for line in self.regions.read_text().splitlines() if ":" in line]
        wait_for(lambda: all(_accepts(p) for p in ports), "the agencies listen")

    def gateway_processes(self) -> list[psutil.Process]:
        assert self.gateway is not None
        top = psutil.Process(self.gateway.pid)
        return [top, *(c for c in top.children(recursive=True) if c.name() != "redis-server")]

    def redis_processes(self) -> list[psutil.Process]:
        assert self.gateway is not None
        return [c for c in psutil.Process(self.gateway.pid).children(recursive=True) if c.name() == "redis-server"]

    def role(self, role: str) -> psutil.Process:
        found = [p for p in self.gateway_processes() if p.cmdline()[-2:] == ["--role", role]]
        assert len(found) == 1, f"{len(found)} {role} processes"
        return found[0]

    def stop(self) -> None:
        for process in (self.gateway, self.agencies):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()

    # ------------------------------------------------------------------------------------------- redis

    @contextmanager
    def redis(self) -> Iterator[redis.Redis]:
        client = redis.Redis(unix_socket_path=str(self.data / "redis.sock"))
        try:
            yield client
        finally:
            client.close()

    def undelivered(self) -> int:
        with self.redis() as r:
            streams = [*r.scan_iter(match="sigw:*:outbox", count=1000), *r.scan_iter(match="sigw:{q:*", count=1000)]
            return sum(int(r.xlen(s)) for s in streams)

    def completed(self) -> int:
        with self.redis() as r:
            return sum(int(r.hget(k, "EMPLOYEE_PENSION|COMPLETED") or 0) for k in r.scan_iter(match="sigw:*:counts"))

    def used_memory(self) -> int:
        """The bytes the data takes: ``MEMORY USAGE`` of every key (exact, nested values included) plus 16 bytes a
        key for its slot in the keyspace table. Not ``used_memory``, which jumps when the keyspace table doubles
        and counts the buffers of an append-only-file rewrite: steps of megabytes in a phase that adds a few."""
        with self.redis() as r:
            return sum(int(r.memory_usage(key, samples=0) or 0) + 16 for key in r.scan_iter(count=5000))

    # -------------------------------------------------------------------------------------------- load

    def load(self, target: str, scenario: str, *, seconds: float, run: str, concurrency: int = 64,
             rate: float = 0.0, ids: list[str] | None = None, keep_ids: bool = False) -> dict[str, Any]:  # fmt: skip
        out = self.tmp / f"load-{run}.json"
        args = [
            sys.executable, "-m", "bench.load", "--target", target, "--tls-dir", str(self.pki), "--scenario",
            scenario, "--seconds", str(seconds), "--concurrency", str(concurrency), "--rate", str(rate), "--run",
            run, "--first", str(self.issued), "--out", str(out),
        ]  # fmt: skip
        if ids is not None:
            (self.tmp / f"ids-{run}.json").write_text(json.dumps(ids))
            args += ["--ids", str(self.tmp / f"ids-{run}.json")]
        if keep_ids:
            args.append("--keep-ids")
        subprocess.run(args, cwd=ROOT, env=self.env, check=True)
        result: dict[str, Any] = json.loads(out.read_text())
        self.issued += result["issued"]
        if result["errors"]:
            print(f"  {scenario} ({run}): {result['errors']} errors, e.g. {result['error_sample']}", flush=True)
        return result

    # ------------------------------------------------------------------------------------------ phases

    def echo(self, reply_bytes: int) -> float:
        port = free_port()
        echo = subprocess.Popen(
            [sys.executable, "-m", "bench.echo", "--listen", f"127.0.0.1:{port}", "--tls-dir", str(self.pki),
             "--reply-bytes", str(reply_bytes)],
            cwd=ROOT, env=self.env,
        )  # fmt: skip
        try:
            wait_for(lambda: _accepts(port), "the echo server listens")
            meter = Meter(lambda: [psutil.Process(echo.pid)])
            meter.begin()
            result = self.load(f"127.0.0.1:{port}", "echo", seconds=self.seconds, run="echo")
            cpu = meter.read()
        finally:
            echo.send_signal(signal.SIGTERM)
            echo.wait(30)
        per_core = float(result["count"]) / cpu
        self.rows.append(("echo", f"{result['rate_per_s']:,.0f} /s", f"{cpu:.2f}", f"{per_core:,.0f}", "", ""))
        self.figure("echo_per_s", result["rate_per_s"], "req/s")
        self.figure("echo_per_core_s", per_core, "req/core-s")
        return per_core

    @contextmanager
    def profiled(self, phase: str) -> Iterator[None]:
        """With ``--profile``: py-spy samples every API and delivery process during the phase (raw collapsed
        stacks, one file per process; ``python -m bench.profile`` sums them)."""
        if self.profile is None:
            yield
            return
        self.profile.mkdir(parents=True, exist_ok=True)
        spies = []
        for p in self.gateway_processes():
            role = p.cmdline()[-1] if "--role" in p.cmdline() else ""
            if role:
                out = self.profile / f"{phase}-{role}-{p.pid}.txt"
                spies.append(subprocess.Popen(
                    ["py-spy", "record", "--format", "raw", "--rate", "250", "--nonblocking", "--pid", str(p.pid),
                     "--output", str(out)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))  # fmt: skip
        try:
            yield
        finally:
            for spy in spies:
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                spy.wait(60)

    def measured(self, name: str, scenario: str, *, drain: bool, **load: Any) -> tuple[dict[str, Any], float]:
        """A load phase and the gateway's CPU seconds for it (until its deliveries are out, when ``drain``)."""
        meter, redis_meter = Meter(self.gateway_processes), Meter(self.redis_processes)
        meter.begin()
        redis_meter.begin()
        with self.profiled(name):
            result = self.load(self.grpc_target, scenario, run=name, **load)
            if drain:
                wait_for(lambda: self.undelivered() == 0, f"{name}: every message delivered")
        roles, redis_cpu = meter.by_role(), redis_meter.read()
        cpu = sum(roles.values())
        per_core = result["count"] / cpu if cpu else 0.0
        split = " + ".join(f"{role} {seconds:.2f}" for role, seconds in sorted(roles.items()))
        self.rows.append(
            (name, f"{result['rate_per_s']:,.0f} /s", f"{cpu:.2f}", f"{per_core:,.0f}", f"{redis_cpu:.2f}",
             f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; CPU {split}")
        )  # fmt: skip
        return result, per_core

    def run(self) -> None:
        self.setup()
        self.start_gateway()
        self.start_agencies("--passive")
        warm = self.load(self.grpc_target, "create", seconds=1.0, run="warm")
        echo_per_core = self.echo(warm["reply_bytes"])

        memory = self.used_memory()
        create, create_per_core = self.measured("create", "create", drain=True, seconds=self.seconds, keep_ids=True)
        self.figure("create_per_s", create["rate_per_s"], "req/s")
        self.figure("create_vs_echo_per_core", create_per_core / echo_per_core, "ratio")

        get, get_per_core = self.measured("get", "get", drain=False, seconds=self.seconds, ids=create["ids"][:5000])
        self.figure("get_per_s", get["rate_per_s"], "req/s")
        self.figure("get_vs_echo_per_core", get_per_core / echo_per_core, "ratio")

        memory = self.used_memory()
        settle, settle_per_core = self.measured("settle", "settle", drain=False, seconds=self.seconds)
        self.figure("settle_per_s", settle["rate_per_s"], "req/s")
        self.figure("settle_vs_echo_per_core", settle_per_core / echo_per_core, "ratio")
        self.figure("bytes_per_settlement", (self.used_memory() - memory) / max(1, settle["count"]), "B")

        half = self.load(self.grpc_target, "create", seconds=self.seconds, run="create-half",
                         rate=create["rate_per_s"] / 2)  # fmt: skip
        self.rows.append(("create at half load", f"{half['rate_per_s']:,.0f} /s", "", "", "",
                          f"p50 {half['p50_ms']} ms, p99 {half['p99_ms']} ms"))  # fmt: skip
        self.figure("create_p99_ms_half_load", half["p99_ms"], "ms")
        wait_for(lambda: self.undelivered() == 0, "create at half load: every message delivered")
        half = self.load(self.grpc_target, "settle", seconds=self.seconds, run="settle-half",
                         rate=settle["rate_per_s"] / 2)  # fmt: skip
        self.rows.append(("settle at half load", f"{half['rate_per_s']:,.0f} /s", "", "", "",
                          f"p50 {half['p50_ms']} ms, p99 {half['p99_ms']} ms"))  # fmt: skip
        self.figure("settle_p99_ms_half_load", half["p99_ms"], "ms")

        self.dispatch()
        self.end_to_end()
        if self.month_settlements:
            self.month()

    def dispatch(self) -> None:
        """A backlog made while the delivery process is stopped, then drained to agencies that answer at once."""
        delivery = self.role("delivery")
        delivery.suspend()
        try:
            # Stopped for less than the Redis client's 5 s socket timeout: a longer stop makes the resumed process
            # take its blocked reads for a dead connection (then it recovers, but that is not what is measured).
            backlog = self.load(self.grpc_target, "create", seconds=min(self.seconds, 3.0), run="backlog")
        finally:
            queued = self.undelivered()
            meter = Meter(lambda: [delivery])
            meter.begin()
            started = time.monotonic()
            delivery.resume()
        drained = wait_for(lambda: self.undelivered() == 0, "the backlog drained", interval_s=0.01)
        cpu = meter.read()
        rate = queued / (time.monotonic() - started if drained else 1)
        self.rows.append(("dispatch (backlog)", f"{rate:,.0f} msg/s", f"{cpu:.2f}", f"{queued / cpu:,.0f}", "",
                          f"{queued} messages of {backlog['count']} creates"))  # fmt: skip
        self.figure("dispatch_msgs_per_s", rate, "msg/s")

    def end_to_end(self) -> None:
        """Transfers from create to completed, the agencies answering every notice at once."""
        self.start_agencies("--act-delay", "0")
        before_completed, memory = self.completed(), self.used_memory()
        meter, redis_meter = Meter(self.gateway_processes), Meter(self.redis_processes)
        meter.begin()
        redis_meter.begin()
        started = time.monotonic()
        with self.profiled("e2e"):
            created = self.load(self.grpc_target, "create", seconds=self.seconds, run="e2e", concurrency=32)
            wait_for(lambda: self.completed() - before_completed >= created["count"], "every transfer completed")
            wait_for(lambda: self.undelivered() == 0, "end to end: every message delivered")
        elapsed, cpu, redis_cpu = time.monotonic() - started, meter.read(), redis_meter.read()
        done = self.completed() - before_completed
        each = f"{1000 * cpu / done:.1f} core-ms each"
        self.rows.append(("end to end", f"{done / elapsed:,.0f} transfers/s", f"{cpu:.2f}",
                          f"{done / cpu:,.0f}", f"{redis_cpu:.2f}", each))  # fmt: skip
        self.figure("transfers_per_s", done / elapsed, "transfers/s")
        self.figure("gateway_core_ms_per_transfer", 1000 * cpu / done, "ms")
        self.figure("redis_core_ms_per_transfer", 1000 * redis_cpu / done, "ms")
        self.figure("bytes_per_transfer", (self.used_memory() - memory) / done, "B")

    def _loader(self, redis_url: str, first: int, count: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.month", "load", "--redis-url", redis_url, "--key-file",
             str(self.tmp / "sigw.keys"), "--first", str(first), "--count", str(max(0, count))],
            cwd=ROOT, env=self.env,
        )  # fmt: skip

    def month(self) -> None:
        """A month of ``month_settlements`` settlements in a Redis of its own (appendfsync always), loaded by one
        process per core; then a gateway started on it closes the month and recounts it."""
        data = self.tmp / "month"
        embedded = EmbeddedRedis(data, appendfsync="always")
        embedded.start()
        asyncio.run(_stamp_format(embedded.url))  # before the loaders write, as a gateway would on an empty store
        gateway: subprocess.Popen[bytes] | None = None
        try:
            workers = os.cpu_count() or 1
            share = -(-self.month_settlements // workers)
            loaders = [self._loader(embedded.url, k * share, min(share, self.month_settlements - k * share))
                       for k in range(workers)]  # fmt: skip
            started = time.monotonic()
            for loader in loaders:
                if loader.wait(PATIENCE_S * 10) != 0:
                    raise RuntimeError("loading the month failed")
            loaded_s = time.monotonic() - started
            with redis.Redis(unix_socket_path=str(embedded.socket_path)) as r:
                month_bytes = int(r.info("memory")["used_memory"])
            grpc_port, http_port = free_port(), free_port()
            env = {**self.env, "SIGW_DATA_DIR": str(data)}
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--redis-url", embedded.url, "--grpc-listen",
                 f"127.0.0.1:{grpc_port}", "--http-listen", f"127.0.0.1:{http_port}"],
                cwd=ROOT, env=env, stdout=(self.tmp / "month-gateway.log").open("ab"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            wait_for(lambda: _healthz(http_port, gateway), "the month's gateway serves")
            timed = subprocess.run(
                [sys.executable, "-m", "bench.month", "time", "--target", f"127.0.0.1:{grpc_port}", "--tls-dir",
                 str(self.pki)],
                cwd=ROOT, env=self.env, check=True, capture_output=True, text=True,
            )  # fmt: skip
            result = json.loads(timed.stdout)
        finally:
            if gateway is not None:
                gateway.send_signal(signal.SIGTERM)
                gateway.wait(60)
            embedded.stop()
        if not (result["closed"] and result["matches"] and result["counted"] == self.month_settlements):
            raise RuntimeError(f"the month's close or recount went wrong: {result}")
        note = f"{self.month_settlements:,} settlements loaded in {loaded_s:.0f} s, {month_bytes / 2**20:,.0f} MiB"
        self.rows.append(("close a month", f"{result['close_s']:.3f} s", "", "", "", note))
        self.rows.append(("recount it", f"{result['recount_s']:.1f} s", "", "", "", "matches the running totals"))
        self.figure("close_month_s", result["close_s"], "s")
        self.figure(f"recount_{self.month_settlements // 1000}k_s".replace("1000k", "1m"), result["recount_s"], "s")

    def report(self) -> None:
        header = ("phase", "throughput", "gateway CPU s", "per core-s", "Redis CPU s", "latency / note")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(len(header))]
        for row in [header, *self.rows]:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        print()
        for name, (value, unit) in self.figures.items():
            print(f"bench {name} {value:.3f} {unit}" if value < 100 else f"bench {name} {value:.0f} {unit}")


async def _stamp_format(redis_url: str) -> None:
    client = redis_client(redis_url, 1)
    try:
        await check_format(client)
    finally:
        await client.aclose()


def _healthz(port: int, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"the gateway exited {process.returncode}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load phase")
    parser.add_argument("--profile", type=Path, help="sample the gateway's processes with py-spy into this folder")
    parser.add_argument(
        "--month-settlements", type=int, default=1_000_000, help="settlements of the month to close (0: skip)"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sigw-bench-"))
    bench = Bench(tmp, args.seconds, profile=args.profile, month_settlements=args.month_settlements)
    print(f"sigw bench: {os.cpu_count()} cores, work folder {tmp}", flush=True)
    try:
        bench.run()
    finally:
        bench.stop()
    bench.report()


if __name__ == "__main__":
    main()
