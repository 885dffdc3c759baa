"""A redis-server process of a test's own, on a Unix socket, that the test may stop and start.

Stopping the shared Redis would disturb every other test session on the machine, so
outage tests run their app against one of these. Its socket lives in the server's own
temporary folder: while it is stopped, no other test (a parallel worker, another
session) can start a Redis at the same address, as one could on a freed TCP port.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.waiting import wait_for


@dataclass
class RedisServer:
    """One redis-server without persistence; ``stop()`` shuts it down as an operator would."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gw-redis-")))
    process: subprocess.Popen | None = None

    @property
    def socket_path(self) -> Path:
        return self.folder / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self, timeout: float = 0.5) -> redis.Redis:
        """A client that fails at once: redis-py's default retries back off for seconds."""
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=timeout,
                           socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def _answers(self) -> bool:
        """Our own process answers (not a redis left over from before a restart)."""
        try:
            with self.client() as client:
                return self.process is not None and client.info("server")["process_id"] == self.process.pid
        except redis.RedisError:
            return False

    def start(self) -> None:
        """Start (or start again, at the same socket) and wait until it answers."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self.process.poll() is not None or self._answers(), timeout=10, what="redis-server")
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.process.returncode} ({self.folder / 'redis.log'})")

    def stop(self) -> None:
        """``SHUTDOWN NOSAVE``, the way an operator stops it; wait for the process to end."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            with self.client(timeout=2) as client:
                client.shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server closes the connection while shutting down
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_own_redis() -> RedisServer:
    """A started redis-server of the caller's own."""
    server = RedisServer()
    try:
        server.start()
    except Exception:
        server.close()
        raise
    return server
