"""Shared fixtures: one migrated database per session, each test rolled back.

Isolation follows PITFALLS.md: each test runs on one connection inside an outer
transaction; the app's engine is that connection for the test, and sessions join it
with ``create_savepoint``, so a service's own commit stays inside and the outer
rollback removes everything.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from backend.app import create_app
from backend.common.jobs import QUEUES
from backend.extensions import db
from tests.fakes.fcm_server import FakeFcmControl, running_fake_fcm
from tests.services import Services, discover

# Property tests draw the same examples on every run, so `make test` is deterministic (a red
# run reproduces) and a discrepancy found while exploring is pinned with @example.
# HYPOTHESIS_PROFILE=explore draws new ones each run, for looking for such cases.
hypothesis.settings.register_profile("deterministic", derandomize=True, database=None)
hypothesis.settings.register_profile("explore", max_examples=2000)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    found = discover()
    yield found
    found.close()


@pytest.fixture(scope="session")
def database_url(services: Services) -> str:
    """A fresh database for this session, built by running the migrations."""
    url = services.create_database()
    app = create_app(app_settings(url, services.redis_url))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory="migrations")
        db.engine.dispose()
    return url


def app_settings(database_url: str, redis_url: str, **extra: Any) -> dict[str, Any]:
    """Settings of an app under test (tests pass overrides on top)."""
    return {
        "ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-1234567890",
        "LOG_JSON": False,
        "LOG_LEVEL": "WARNING",
        "STORAGE_LOCAL_PATH": os.path.join("instance", "test-storage"),
        "DB_POOL_SIZE": 5,
        # Race tests send twenty sign-ins or resets into one process at once, to test the
        # database and the attempt limits; hashing admission has its own tests
        # (tests/auth/test_hash_admission.py), so here it queues them all.
        "PASSWORD_HASH_QUEUE": 64,
        "PASSWORD_HASH_WAIT_MS": 300_000,
        **extra,
    }


@pytest.fixture(scope="session")
def app(database_url: str, services: Services) -> Flask:
    return create_app(app_settings(database_url, services.redis_url))


@pytest.fixture
def redis_conn(app: Flask) -> Iterator[redis.Redis]:
    """The test session's Redis DB, emptied before each test."""
    connection = redis.Redis.from_url(app.config["REDIS_URL"])
    connection.flushdb()  # the session's claim lives in DB 0 (tests/services.py)
    yield connection
    connection.close()


@pytest.fixture
def db_session(app: Flask, redis_conn: redis.Redis) -> Iterator[Any]:
    """Run the test inside one outer transaction that is rolled back afterwards."""
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        connection = engine.connect()
        outer = connection.begin()
        engines[None] = connection  # sessions bind to the test's connection
        try:
            yield db.session
        finally:
            db.session.remove()
            outer.rollback()
            connection.close()
            engines[None] = engine


@pytest.fixture
def client(app: Flask, db_session: Any) -> FlaskClient:
    """HTTP client through the whole app, inside the test's transaction."""
    return app.test_client()


@pytest.fixture
def committed_app(app: Flask, redis_conn: redis.Redis) -> Iterator[Flask]:
    """The app on its real engine (data really commits, other processes see it).

    Every table is emptied afterwards, so later tests start clean; but the audit log,
    which the database keeps append-only (tests filter it by their own objects).
    """
    yield app
    with app.app_context():
        names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables if t.name != "audit_log")
        if names:
            with db.engine.begin() as conn:
                conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        db.session.remove()


@pytest.fixture
def run_jobs(app: Flask, db_session: Any):
    """Run every queued job now, in this process, inside the test's transaction."""
    from jobs.worker import build_worker

    def run(queues: tuple[str, ...] = QUEUES) -> int:
        worker = build_worker(app, list(queues), in_process=True)
        worker.work(burst=True, with_scheduler=False)
        return worker.successful_job_count if hasattr(worker, "successful_job_count") else 0

    return run


@pytest.fixture(scope="session")
def fake_fcm_server() -> Iterator[FakeFcmControl]:
    """One local FCM v1 server (OAuth, messages:send, error codes) for the session."""
    with running_fake_fcm(project_id="groundwork-test") as fake:
        yield fake


@pytest.fixture
def fake_fcm(fake_fcm_server: FakeFcmControl) -> FakeFcmControl:
    """The fake FCM server, emptied of messages and counters for this test."""
    fake_fcm_server.reset()
    return fake_fcm_server


def fcm_app_settings(database_url: str, redis_url: str, fake: FakeFcmControl, **extra: Any) -> dict[str, Any]:
    """Settings of an app whose pushes really go over HTTP to the fake FCM server."""
    return app_settings(database_url, redis_url, PUSH_BACKEND="fcm", FCM_CREDENTIALS_FILE=fake.credentials_path,
                        FCM_ENDPOINT=fake.base_url, **extra)


# Longest first: under pytest-xdist a long test handed out last keeps one worker busy
# while the others idle. These markers name the tests that drive whole processes.
_LONG_FIRST = ("load", "security", "chaos", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On parallel workers, hand out the process-driving tests before the quick ones."""
    if not getattr(config.option, "numprocesses", None):
        return

    def rank(item: pytest.Item) -> int:
        return next((n for n, name in enumerate(_LONG_FIRST) if item.get_closest_marker(name)), len(_LONG_FIRST))

    items.sort(key=rank)  # stable: every worker computes the same order
