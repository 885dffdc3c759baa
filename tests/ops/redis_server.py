"""A redis-server process of a test's own, on a TCP port, that the test may stop and start.

Stopping the shared Redis would disturb every other test session on the machine, so
outage tests run their app against one of these (ports 18800-18899 are ops tests').
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.waiting import wait_for

PORTS = range(18810, 18900)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class RedisServer:
    """One redis-server without persistence; ``stop()`` shuts it down as an operator would."""

    port: int
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gw-redis-")))
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, timeout: float = 0.5) -> redis.Redis:
        """A client that fails at once: redis-py's default retries back off for seconds."""
        return redis.Redis(port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout,
                           retry=Retry(NoBackoff(), 0))

    def _answers(self) -> bool:
        """Our own process answers on the port (not another test's redis that holds it)."""
        try:
            with self.client() as client:
                return self.process is not None and client.info("server")["process_id"] == self.process.pid
        except redis.RedisError:
            return False

    def start(self) -> None:
        """Start (or start again, on the same port) and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self.process.poll() is not None or self._answers(), timeout=10, what="redis-server")
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.process.returncode} on port {self.port}")

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
    """A started redis-server on the first port of the ops range that is free."""
    for port in PORTS:
        if not _port_free(port):
            continue
        server = RedisServer(port)
        try:
            server.start()
        except RuntimeError:
            server.close()
            continue  # taken between the check and the start: try the next one
        return server
    raise RuntimeError(f"no free port for redis-server in {PORTS.start}-{PORTS.stop - 1}")
