"""A copied authenticator is refused and reported; one assertion raced twenty times signs in once."""
from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import select

from backend.auth.models import SecurityEvent
from backend.auth.passkeys.models import PasskeyCredential
from backend.extensions import db
from tests.auth_factors.helpers import assert_error, bearer, last_mail
from tests.passkeys.conftest import add_passkey, passkey_sign_in, sign_in_options

RACERS = 20


def test_passkey_clone_with_lagging_counter_is_refused_blocked_and_reported(client, make_user, auth_headers, phone,
                                                                            run_jobs):
    user = make_user()
    assert add_passkey(client, auth_headers(user), phone, device_name="iPhone").status_code == 201
    copy = phone.clone()  # the key extracted at counter 0
    first = passkey_sign_in(client, phone)  # the original: counter 1
    assert first.status_code == 200
    assert passkey_sign_in(client, phone).status_code == 200  # counter 2
    assert_error(passkey_sign_in(client, copy), 401, "passkey_clone_suspected")  # the copy says 1

    stored = db.session.scalars(select(PasskeyCredential)).one()
    assert stored.disabled_reason == "clone_suspected" and stored.sign_count == 2
    [event] = db.session.scalars(select(SecurityEvent).where(SecurityEvent.kind == "passkey_clone_suspected"))
    assert event.user_id == user.id
    assert (event.details["stored_sign_count"], event.details["received_sign_count"]) == (2, 1)
    # Whoever holds a copy may have signed in with it: every session of the account ends.
    assert_error(client.get("/v1/me", headers=bearer(first.get_json())), 401, "passkey_clone_suspected")
    # The original is blocked too (either copy may be the attacker's) until the user adds a new one.
    assert_error(passkey_sign_in(client, phone), 401, "passkey_disabled")
    run_jobs()
    assert "copy of it exists" in last_mail(user.email).body_text
    # The account holder sees it in their security log once signed in again.
    listed = client.get("/v1/me/security-events", headers=auth_headers(user)).get_json()["items"]
    assert [e["kind"] for e in listed] == ["passkey_clone_suspected", "passkey_added"]
    assert listed[0]["details"]["device_name"] == "iPhone"


def test_passkey_clone_listed_as_disabled_and_removable_even_when_last(client, make_user, auth_headers, phone):
    user = make_user(password=None, email="relay@privaterelay.appleid.com")  # the passkey is the only way in
    headers = auth_headers(user)
    passkey_id = add_passkey(client, headers, phone).get_json()["id"]
    copy = phone.clone()
    assert passkey_sign_in(client, phone).status_code == 200
    assert passkey_sign_in(client, copy).status_code == 401
    signed_in = auth_headers(user)
    [listed] = client.get("/v1/auth/passkeys", headers=signed_in).get_json()["items"]
    assert (listed["status"], listed["disabled_reason"]) == ("disabled", "clone_suspected")
    assert client.delete(f"/v1/auth/passkeys/{passkey_id}", headers=signed_in).status_code == 204


def test_passkey_low_counter_with_a_bad_signature_does_not_block_the_real_passkey(client, make_user, auth_headers,
                                                                                  phone):
    assert add_passkey(client, auth_headers(make_user()), phone).status_code == 201
    copy = phone.clone()
    assert passkey_sign_in(client, phone).status_code == 200
    assertion = copy.get(sign_in_options(client))  # counter 1 again, but we spoil its signature
    assertion["response"]["signature"] = assertion["response"]["signature"][:-4] + "AAAA"
    assert_error(client.post("/v1/auth/passkeys/sign-in", json={"credential": assertion}), 401, "passkey_invalid")
    assert db.session.scalars(select(PasskeyCredential)).one().disabled_at is None
    assert passkey_sign_in(client, phone).status_code == 200


def test_passkey_one_assertion_raced_twenty_times_signs_in_once(committed_app, make_user, auth_headers,
                                                               relying_party, phone, monkeypatch):
    app = committed_app
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_IP", 1000)
    with app.app_context():
        client = app.test_client()
        assert add_passkey(client, auth_headers(make_user()), phone).status_code == 201
        assertion = phone.get(sign_in_options(client))
    statuses: list[int] = []
    barrier = threading.Barrier(RACERS)

    def run() -> None:
        racer = app.test_client()
        barrier.wait()
        statuses.append(racer.post("/v1/auth/passkeys/sign-in", json={"credential": assertion}).status_code)

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(statuses) == Counter({200: 1, 401: RACERS - 1})
    with app.app_context():
        stored = db.session.scalars(select(PasskeyCredential)).one()
        assert stored.sign_count == 1 and stored.disabled_at is None
        db.session.remove()
