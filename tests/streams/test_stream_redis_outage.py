"""Redis going away under the stream server: streams keep working from PostgreSQL, then recover."""
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
from tests.streams.conftest import HEARTBEAT_S, LIFETIME_S, get_json, send_notification
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
    """An app on the shared database (committed, emptied after) and the test's own Redis."""
    return create_app(app_settings(database_url, own_redis.url, SERVER_API_KEYS=committed_app.config["SERVER_API_KEYS"],
                                   INBOX_STREAM_HEARTBEAT_S=HEARTBEAT_S, INBOX_STREAM_LIFETIME_S=LIFETIME_S * 3))


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
