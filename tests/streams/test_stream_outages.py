"""Dependencies going away under the stream server: Redis (streams go on from PostgreSQL), PostgreSQL (503)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from backend.app import create_app
from backend.extensions import db
from backend.notifications.models import Notification
from tests.conftest import app_settings
from tests.e2e.processes import environment_of, start_stream_server
from tests.ops.redis_server import RedisServer, start_own_redis
from tests.streams.client import open_stream
from tests.streams.conftest import HEARTBEAT_S, get_json, send_notification
from tests.waiting import wait_for

pytestmark = pytest.mark.chaos


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own (stopping it disturbs nobody)."""
    server = start_own_redis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def outage_app(database_url: str, own_redis: RedisServer, committed_app: Flask) -> Flask:
    """An app on the shared database (committed, emptied after) and the test's own Redis.

    Streams live long here: on a loaded machine the outage steps must not outlast one.
    """
    return create_app(app_settings(database_url, own_redis.url, SERVER_API_KEYS=committed_app.config["SERVER_API_KEYS"],
                                   INBOX_STREAM_HEARTBEAT_S=HEARTBEAT_S, INBOX_STREAM_LIFETIME_S=120.0))


def _commit_entry(app: Flask, user_id, title: str) -> str:
    with app.app_context():
        entry = Notification(user_id=user_id, category="social", title=title, body="")
        db.session.add(entry)
        db.session.commit()
        entry_id = str(entry.id)
        db.session.remove()
    return entry_id


def test_stream_server_survives_a_redis_outage_and_recovers(outage_app, own_redis, holder, tmp_path):
    user_id, headers = holder()
    server = start_stream_server(tmp_path, env=environment_of(outage_app, LOG_LEVEL="INFO"))
    try:
        reader = open_stream(server.url, headers)
        own_redis.stop()
        wait_for(lambda: get_json(server.url + "/readyz")[0] == 503, timeout=10, what="/readyz to say reconnecting")

        # Committed while Redis is down (no publish possible): the heartbeat poll brings it.
        missed = _commit_entry(outage_app, user_id, "During the outage")
        assert reader.next_event(timeout=HEARTBEAT_S * 3 + 5)["id"] == missed
        # Signing in still works from PostgreSQL: a new stream opens while Redis is down.
        open_stream(server.url, headers).close()

        own_redis.start()
        wait_for(lambda: get_json(server.url + "/readyz")[0] == 200, timeout=15, what="the pub/sub to resubscribe")
        live = send_notification(outage_app, user_id, "After the outage")
        assert reader.next_event(timeout=10)["id"] == live
        reader.close()
    finally:
        server.stop()
    assert "Traceback" not in server.log_tail(20000), server.log_tail()


def test_stream_server_answers_503_while_postgresql_is_down_then_serves_again(services, redis_conn, tmp_path):
    from flask_migrate import upgrade

    from backend.auth.models import User
    from backend.auth.sessions import start_session
    from tests.ops.postgres_server import own_postgres_server

    with own_postgres_server() as postgres:
        app = create_app(app_settings(postgres.url, services.redis_url, DB_CONNECT_TIMEOUT_S=1,
                                      INBOX_STREAM_HEARTBEAT_S=HEARTBEAT_S))
        with app.app_context():
            upgrade(directory="migrations")
            user = User(email="outage@example.test", role="user", status="active")
            db.session.add(user)
            db.session.commit()
            token = start_session(user=user, device_name="t", platform="ios", ip="127.0.0.1",
                                  user_agent="pytest")["access_token"]
            db.session.remove()
            db.engine.dispose()
        headers = {"Authorization": f"Bearer {token}"}
        server = start_stream_server(tmp_path, env=environment_of(app, LOG_LEVEL="INFO"))
        try:
            open_stream(server.url, headers).close()
            postgres.stop()
            status, body = get_json(f"{server.url}/v1/notifications/inbox/stream", headers)
            assert status == 503 and body["error"]["code"] == "stream_unavailable", body
            postgres.start()
            wait_for(lambda: get_json(f"{server.url}/healthz")[0] == 200, timeout=10, what="the stream server")
            wait_for(lambda: _opens(server.url, headers), timeout=20, what="streams to open again")
        finally:
            server.stop()


def _opens(base: str, headers: dict[str, str]) -> bool:
    try:
        open_stream(base, headers).close()
    except (AssertionError, OSError):
        return False
    return True
