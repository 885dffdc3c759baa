"""Single-use secrets under a race: twenty concurrent redemptions, exactly one success (real commits)."""
from __future__ import annotations

import re
import threading
from collections import Counter

import pytest

from backend.auth.factors import totp
from backend.common.jobs import get_queue
from tests.auth_factors.helpers import enable_totp, totp_code

RACERS = 20


def race(app, post) -> Counter:
    """Run ``post(client, n)`` from RACERS threads released at once; count the statuses."""
    results: list[int] = []
    barrier = threading.Barrier(RACERS)

    def run(n: int) -> None:
        client = app.test_client()
        barrier.wait()
        results.append(post(client, n).status_code)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Counter(results)


@pytest.fixture
def roomy_limits(committed_app, monkeypatch):
    """Attempt limits above the race size, so the race is decided by the database, not the limiter."""
    monkeypatch.setitem(committed_app.config, "AUTH_LOGIN_LIMIT_PER_ACCOUNT", 100)
    monkeypatch.setitem(committed_app.config, "AUTH_LOGIN_LIMIT_PER_IP", 1000)
    return committed_app


def test_email_code_twenty_concurrent_redemptions_one_success(roomy_limits, redis_conn):
    app = roomy_limits
    assert app.test_client().post("/v1/auth/email-code/request", json={"email": "race@example.test"}
                                  ).status_code == 202
    [job] = get_queue("default", connection=redis_conn).get_jobs()
    code = re.search(r"\b(\d{6})\b", job.kwargs["text"]).group(1)
    statuses = race(app, lambda client, n: client.post("/v1/auth/email-code/verify", json={
        "email": "race@example.test", "code": code, "device_name": f"phone {n}"}))
    assert statuses == Counter({200: 1, 401: RACERS - 1})


@pytest.mark.parametrize("kind", ["recovery_code", "totp_code"])
def test_second_factor_twenty_concurrent_uses_one_success(roomy_limits, make_user, auth_headers, kind):
    app = roomy_limits
    with app.app_context():
        user = make_user()
        secret, recovery_codes = enable_totp(app.test_client(), auth_headers(user))
        tokens = [totp.create_mfa_challenge(user=user, device_name=None, platform=None, ip=None, user_agent=None)
                  ["mfa_token"] for _ in range(RACERS)]
    code = recovery_codes[0] if kind == "recovery_code" else totp_code(secret)
    statuses = race(app, lambda client, n: client.post("/v1/auth/login/mfa", json={
        "mfa_token": tokens[n], "code": code}))
    assert statuses == Counter({200: 1, 401: RACERS - 1})
