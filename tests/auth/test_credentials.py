"""Password reset, password change and email change, including racing redemptions."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import select, update

from backend.auth.models import OneTimeToken, OutboxMail, User
from backend.common.jobs import get_queue
from backend.extensions import db
from jobs.accounts import send_password_reset
from tests.auth.conftest import PASSWORD
from tests.auth.test_accounts import last_link, path_of

NEW_PASSWORD = "a brand new passphrase"


def _login(client, email, password=PASSWORD):
    return client.post("/v1/auth/login", json={"email": email, "password": password})


def _token(link: str) -> str:
    return link.split("token=", 1)[1]


def test_password_reset_ends_sessions_no_auto_login_single_use(client, make_user, run_jobs):
    user = make_user()
    session = _login(client, user.email).get_json()
    assert client.post("/v1/auth/password-reset/request", json={"email": user.email}).status_code == 202
    run_jobs()
    link = last_link(user.email)
    assert "/v1/auth/password-reset?token=" in link
    assert client.get(path_of(link)).get_json()["status"] == "valid"
    answer = client.post("/v1/auth/password-reset", json={"token": _token(link), "password": NEW_PASSWORD})
    assert answer.status_code == 204 and not answer.data  # no tokens: nobody is signed in by a link
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert me.status_code == 401 and me.get_json()["error"]["code"] == "password_changed"
    refresh = client.post("/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.get_json()["error"]["code"] == "password_changed"
    again = client.post("/v1/auth/password-reset", json={"token": _token(link), "password": "yet another one 99"})
    assert again.status_code == 410 and again.get_json()["error"]["code"] == "link_used"
    assert _login(client, user.email).status_code == 401
    assert _login(client, user.email, NEW_PASSWORD).status_code == 200
    stored = db.session.scalars(select(OneTimeToken.token_hash).where(OneTimeToken.user_id == user.id)).all()
    assert _token(link) not in stored and all(len(h) == 64 for h in stored)  # digests only


def test_password_reset_unknown_address_same_answer_no_mail(client, run_jobs):
    answer = client.post("/v1/auth/password-reset/request", json={"email": "ghost@example.test"})
    assert answer.status_code == 202
    run_jobs()
    assert db.session.scalar(select(OutboxMail).where(OutboxMail.recipient == "ghost@example.test")) is None


def test_password_reset_expired_link_refused(client, make_user, run_jobs):
    user = make_user()
    client.post("/v1/auth/password-reset/request", json={"email": user.email})
    run_jobs()
    link = last_link(user.email)
    db.session.execute(update(OneTimeToken).values(expires_at=OneTimeToken.created_at - timedelta(seconds=1)))
    db.session.commit()
    answer = client.post("/v1/auth/password-reset", json={"token": _token(link), "password": NEW_PASSWORD})
    assert answer.status_code == 410 and answer.get_json()["error"]["code"] == "link_expired"


def test_password_reset_weak_new_password_refused_link_kept(client, make_user, run_jobs):
    user = make_user()
    client.post("/v1/auth/password-reset/request", json={"email": user.email})
    run_jobs()
    token = _token(last_link(user.email))
    weak = client.post("/v1/auth/password-reset", json={"token": token, "password": "12345678"})
    assert weak.status_code == 422 and weak.get_json()["error"]["code"] == "password_too_common"
    assert client.post("/v1/auth/password-reset", json={"token": token, "password": NEW_PASSWORD}).status_code == 204


def test_password_reset_twenty_concurrent_redemptions_one_success(committed_app, make_user):
    from backend.auth.links import onetime

    with committed_app.app_context():
        user = make_user()
        token = onetime.issue(user_id=user.id, purpose="reset_password", email=user.email, ttl_s=600)
        db.session.commit()
    results: list[int] = []
    barrier = threading.Barrier(20)

    def redeem(n):
        client = committed_app.test_client()
        barrier.wait()
        results.append(client.post("/v1/auth/password-reset", json={
            "token": token, "password": f"racing passphrase {n}"}).status_code)

    threads = [threading.Thread(target=redeem, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(results) == Counter({204: 1, 410: 19})


def test_change_password_needs_current_and_signs_out_others(client, make_user):
    user = make_user()
    phone, tablet = _login(client, user.email).get_json(), _login(client, user.email).get_json()
    headers = {"Authorization": f"Bearer {phone['access_token']}"}
    wrong = client.post("/v1/me/password", headers=headers,
                        json={"current_password": "not it at all", "new_password": NEW_PASSWORD})
    assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "invalid_credentials"
    changed = client.post("/v1/me/password", headers=headers,
                          json={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "device_name": "phone"})
    assert changed.status_code == 200
    fresh = changed.get_json()
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {fresh['access_token']}"}).status_code == 200
    for old in (phone, tablet):
        answer = client.get("/v1/me", headers={"Authorization": f"Bearer {old['access_token']}"})
        assert answer.get_json()["error"]["code"] == "password_changed"
    assert _login(client, user.email, NEW_PASSWORD).status_code == 200


def test_change_email_switches_only_after_new_address_confirms(client, make_user, run_jobs):
    user = make_user(email="old@example.test")
    headers = {"Authorization": f"Bearer {_login(client, user.email).get_json()['access_token']}"}
    asked = client.post("/v1/me/email", headers=headers, json={"new_email": "New@Example.test", "password": PASSWORD})
    assert asked.status_code == 202
    assert client.get("/v1/me", headers=headers).get_json()["email"] == "old@example.test"
    run_jobs()
    link = last_link("new@example.test")
    assert client.get(path_of(link)).status_code == 200
    me = client.get("/v1/me", headers=headers).get_json()
    assert me["email"] == "new@example.test" and me["email_verified"]
    run_jobs()
    notice = db.session.scalars(select(OutboxMail).where(OutboxMail.recipient == "old@example.test")).one()
    assert "new@example.test" in notice.body_text
    assert _login(client, "new@example.test").status_code == 200


def test_change_email_to_taken_address_same_answer_no_switch(client, make_user, run_jobs):
    make_user(email="taken2@example.test")
    user = make_user()
    headers = {"Authorization": f"Bearer {_login(client, user.email).get_json()['access_token']}"}
    answer = client.post("/v1/me/email", headers=headers, json={"new_email": "taken2@example.test",
                                                                 "password": PASSWORD})
    assert answer.status_code == 202
    run_jobs()
    assert db.session.get(User, user.id).email == user.email
    assert db.session.scalar(select(OneTimeToken).where(OneTimeToken.purpose == "change_email")) is None


def test_password_reset_request_does_the_same_work_for_known_and_unknown_addresses(client, make_user, redis_conn):
    user = make_user()
    for email in (user.email, "ghost2@example.test"):
        assert client.post("/v1/auth/password-reset/request", json={"email": email}).status_code == 202
    jobs = get_queue("default", connection=redis_conn).get_jobs()
    assert [(j.func_name, j.kwargs["email"]) for j in jobs] == [
        ("jobs.accounts.send_password_reset", user.email), ("jobs.accounts.send_password_reset", "ghost2@example.test")]
    # Nothing about the account was touched while answering: no token, no mail queued.
    assert db.session.scalar(select(OneTimeToken).where(OneTimeToken.user_id == user.id)) is None


def test_password_reset_job_run_twice_mails_one_link(client, make_user, run_jobs, redis_conn):
    user = make_user()
    client.post("/v1/auth/password-reset/request", json={"email": user.email})
    [job] = get_queue("default", connection=redis_conn).get_jobs()
    assert send_password_reset(**job.kwargs) is True
    assert send_password_reset(**job.kwargs) is False  # a retried job: the link it issued answers it
    run_jobs()
    links = db.session.scalars(select(OneTimeToken).where(OneTimeToken.user_id == user.id,
                                                          OneTimeToken.used_at.is_(None))).all()
    assert len(links) == 1
