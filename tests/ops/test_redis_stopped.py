"""Redis stopped (SHUTDOWN, not hung): each use keeps the policy the README documents.

General rate limits fail open, account-security limits fail closed (503), the auth and
profile caches fall back to PostgreSQL, revocations and cached-state writes are refused
(503) rather than half done, and queued work waits in PostgreSQL until the reconciler
sends it once Redis is back. Every answer comes within a bound set by the socket
timeout, and the same app serves normally again once Redis restarts.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from backend.app import create_app
from backend.auth.sessions import start_session
from backend.extensions import db
from backend.notifications.devices import DeviceInfo, register_device
from backend.notifications.models import Notification, PushOutbox
from tests.auth.conftest import PASSWORD
from tests.conftest import app_settings
from tests.ops.redis_server import RedisServer

pytestmark = pytest.mark.chaos

SERVER_KEY = "ops-test-server-key-0123456789abcdef"
# Each request may make a few Redis calls; each is bounded by the socket timeout.
ANSWER_WITHIN_S = 1.5


@pytest.fixture
def outage_app(committed_app: Flask, own_redis: RedisServer, database_url: str) -> Iterator[Flask]:
    """An app on the session's database and a Redis of the test's own (data really commits)."""
    app = create_app(app_settings(database_url, own_redis.url, REDIS_SOCKET_TIMEOUT_S=0.2,
                                  SERVER_API_KEYS=[SERVER_KEY]))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def timed(call, *args, **kwargs):
    """Make one request; fail if it took longer than the outage bound."""
    started = time.monotonic()
    response = call(*args, **kwargs)
    elapsed = time.monotonic() - started
    assert elapsed < ANSWER_WITHIN_S, f"{args[0]} took {elapsed:.2f}s with Redis stopped"
    assert response.status_code < 500 or response.status_code == 503, response.get_json()
    return response


def bearer(body: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def signed_in(user) -> dict:
    return start_session(user=user, device_name="phone", platform="ios", ip="127.0.0.1", user_agent="pytest")


def test_redis_stopped_general_limit_fails_open_then_counts_again(outage_app, own_redis):
    client: FlaskClient = outage_app.test_client()
    assert "RateLimit-Limit" in client.get("/v1/me").headers  # counted while Redis is up

    own_redis.stop()
    answer = timed(client.get, "/v1/me")
    assert answer.status_code == 401  # the request went on to its own answer: not counted, not refused
    assert "RateLimit-Limit" not in answer.headers
    assert timed(client.get, "/.well-known/jwks.json").status_code == 200

    own_redis.start()
    assert "RateLimit-Limit" in client.get("/v1/me").headers  # same app, no restart


def test_redis_stopped_sign_in_limits_fail_closed_503(outage_app, own_redis, make_user):
    user = make_user()
    client = outage_app.test_client()
    own_redis.stop()
    for path, body in (("/v1/auth/login", {"email": user.email, "password": PASSWORD}),
                       ("/v1/auth/password-reset/request", {"email": user.email})):
        answer = timed(client.post, path, json=body)
        assert answer.status_code == 503, answer.get_json()
        assert answer.get_json()["error"]["code"] == "auth_unavailable"
        assert answer.headers["Retry-After"]
    own_redis.start()
    assert client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}).status_code == 200


def test_redis_stopped_cache_falls_back_to_postgresql_and_writes_wait(outage_app, own_redis, make_user):
    user = make_user(display_name="Before")
    tokens = signed_in(user)
    client = outage_app.test_client()
    assert client.get("/v1/me", headers=bearer(tokens)).get_json()["display_name"] == "Before"  # now cached

    own_redis.stop()
    answer = timed(client.get, "/v1/me", headers=bearer(tokens))
    assert answer.status_code == 200 and answer.get_json()["display_name"] == "Before"
    # A change the cache could not forget is refused, so no stale profile survives the outage.
    refused = timed(client.patch, "/v1/me", headers=bearer(tokens), json={"display_name": "During"})
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "auth_unavailable"
    assert timed(client.get, "/v1/me", headers=bearer(tokens)).get_json()["display_name"] == "Before"

    own_redis.start()
    assert client.patch("/v1/me", headers=bearer(tokens), json={"display_name": "After"}).status_code == 200
    assert client.get("/v1/me", headers=bearer(tokens)).get_json()["display_name"] == "After"


def test_redis_stopped_revocation_fails_closed(outage_app, own_redis, make_user):
    user = make_user()
    kept, ended = signed_in(user), signed_in(user)
    client = outage_app.test_client()
    assert client.get("/v1/me", headers=bearer(kept)).status_code == 200
    assert client.get("/v1/me", headers=bearer(ended)).status_code == 200  # cached as active
    assert client.post("/v1/auth/logout", headers=bearer(ended)).status_code == 204

    own_redis.stop()
    revoked = timed(client.get, "/v1/me", headers=bearer(ended))
    assert revoked.status_code == 401 and revoked.get_json()["error"]["code"] == "session_revoked"
    refused = timed(client.post, "/v1/auth/logout", headers=bearer(kept))
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "auth_unavailable"
    assert timed(client.get, "/v1/me", headers=bearer(kept)).status_code == 200  # refused, not half done

    own_redis.start()
    assert client.post("/v1/auth/logout", headers=bearer(kept)).status_code == 204
    assert client.get("/v1/me", headers=bearer(kept)).status_code == 401


def test_redis_stopped_queued_work_waits_in_postgresql_and_is_sent_once(outage_app, own_redis, make_user):
    from jobs.delivery import reconcile_deliveries
    from jobs.worker import build_worker

    user = make_user()
    register_device(db.session, user_id=user.id, installation_id="inst-outage",
                    info=DeviceInfo(token="outage-token", platform="android"))
    client = outage_app.test_client()

    own_redis.stop()
    accepted = timed(client.post, "/v1/notifications/send", headers={"X-API-Key": SERVER_KEY},
                     json={"user_id": str(user.id), "title": "Sent during the outage"})
    assert accepted.status_code == 202, accepted.get_json()
    notification_id = uuid.UUID(accepted.get_json()["notification_ids"][0])

    own_redis.start()  # empty: the job enqueued after commit never reached it
    db.session.execute(update(Notification).where(Notification.id == notification_id)
                       .values(push_due_at=Notification.push_due_at - timedelta(minutes=5)))
    db.session.commit()  # overdue, as it is once the reconciler's next tick comes
    assert reconcile_deliveries()["transactional"] == 1  # its ledger row, found in PostgreSQL
    build_worker(outage_app, ["push"], in_process=True).work(burst=True, with_scheduler=False)
    assert reconcile_deliveries()["transactional"] == 0
    sent = db.session.scalar(select(func.count()).select_from(PushOutbox).where(PushOutbox.token == "outage-token"))
    assert sent == 1
