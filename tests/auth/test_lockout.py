"""Attempt limits on sign-in and mail endpoints: atomic under concurrency, fail closed without Redis."""
from __future__ import annotations

import threading
from collections import Counter

import pytest

from backend.app import create_app
from tests.auth.conftest import PASSWORD
from tests.conftest import app_settings
from tests.waiting import wait_for


def _concurrently(app, count, request):
    results: list[int] = []
    barrier = threading.Barrier(count)

    def run():
        client = app.test_client()
        barrier.wait()
        results.append(request(client).status_code)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Counter(results)


def test_login_twenty_concurrent_wrong_guesses_cannot_pass_limit(committed_app, make_user):
    with committed_app.app_context():
        email = make_user().email
    limit = committed_app.config["AUTH_LOGIN_LIMIT_PER_ACCOUNT"]
    counts = _concurrently(committed_app, 20, lambda c: c.post(
        "/v1/auth/login", json={"email": email, "password": "wrong guess 123"}))
    assert counts == Counter({401: limit, 429: 20 - limit})
    locked = committed_app.test_client().post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    assert locked.get_json()["error"]["code"] == "too_many_attempts"


def test_login_correct_password_works_again_after_window(client, make_user, app, monkeypatch):
    # A 4 s window: four Argon2 verifications under a loaded machine must fit in one window.
    monkeypatch.setitem(app.config, "AUTH_LOCKOUT_WINDOW_S", 4)
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_ACCOUNT", 3)
    user = make_user()
    codes = [client.post("/v1/auth/login", json={"email": user.email, "password": "wrong guess 123"}).status_code
             for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}).status_code == 429
    # A locked attempt is refused before it is counted, so polling does not extend the lock.
    wait_for(lambda: client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}).status_code
             == 200, timeout=20, every=0.5, what="the one-window lock to lapse")


def test_lockout_progressive_second_lock_is_longer(client, make_user, app, monkeypatch, redis_conn):
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_ACCOUNT", 2)
    user = make_user()
    for _ in range(3):
        client.post("/v1/auth/login", json={"email": user.email, "password": "wrong guess 123"})
    first = int(client.post("/v1/auth/login", json={"email": user.email, "password": "x" * 9}).headers["Retry-After"])
    for key in redis_conn.scan_iter("groundwork:lockout:login:account:*:lock"):
        redis_conn.delete(key)  # the first lock is over
    for _ in range(3):
        answer = client.post("/v1/auth/login", json={"email": user.email, "password": "wrong guess 123"})
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > first


def test_login_per_address_limit_spans_accounts(client, make_user, app, monkeypatch):
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_IP", 5)
    codes = [client.post("/v1/auth/login", json={"email": f"u{i}@example.test", "password": "wrong guess"}).status_code
             for i in range(7)]
    assert codes == [401] * 5 + [429] * 2


def test_password_reset_requests_limited_per_account(client, make_user, app):
    user = make_user()
    limit = app.config["AUTH_EMAIL_LIMIT_PER_ACCOUNT"]
    codes = [client.post("/v1/auth/password-reset/request", json={"email": user.email}).status_code
             for _ in range(limit + 1)]
    assert codes == [202] * limit + [429]


@pytest.fixture
def redisless_app(database_url):
    """The app with Redis unreachable (a closed port)."""
    return create_app(app_settings(database_url, "redis://127.0.0.1:1/0", REDIS_SOCKET_TIMEOUT_S=0.2))


def test_login_redis_down_fails_closed_503(redisless_app):
    answer = redisless_app.test_client().post("/v1/auth/login", json={"email": "a@example.test",
                                                                        "password": "whatever 123"})
    assert answer.status_code == 503 and answer.get_json()["error"]["code"] == "auth_unavailable"
    assert answer.headers["Retry-After"]
