"""Sign-up to sign-in through the HTTP API, with mail delivered by the real job into the outbox."""
from __future__ import annotations

import re

from sqlalchemy import select

from backend.auth.models import OutboxMail, User
from backend.extensions import db
from tests.auth.conftest import PASSWORD

LINK = re.compile(r"https?://\S+")


def last_link(to: str) -> str:
    mail = db.session.scalars(select(OutboxMail).where(OutboxMail.recipient == to)
                              .order_by(OutboxMail.created_at.desc())).first()
    assert mail is not None, f"no mail to {to}"
    return LINK.search(mail.body_text).group(0)


def path_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def test_register_verify_login_me_whole_flow_works(client, run_jobs, app):
    answer = client.post("/v1/auth/register", json={"email": "New@Example.test", "password": PASSWORD,
                                                     "display_name": "Ada", "time_zone": "Europe/Paris"})
    assert answer.status_code == 202
    refused = client.post("/v1/auth/login", json={"email": "new@example.test", "password": PASSWORD})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "email_not_verified"
    run_jobs()
    link = last_link("new@example.test")
    assert link.startswith(app.config["PUBLIC_BASE_URL"] + "/v1/auth/verify-email?token=")
    assert client.get(path_of(link)).status_code == 200
    again = client.get(path_of(link))
    assert again.status_code == 410 and again.get_json()["error"]["code"] == "link_used"
    login = client.post("/v1/auth/login", json={"email": "NEW@example.test", "password": PASSWORD,
                                                "device_name": "Ada's phone", "platform": "ios"})
    assert login.status_code == 200
    body = login.get_json()
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}).get_json()
    assert me["email"] == "new@example.test" and me["email_verified"] and me["time_zone"] == "Europe/Paris"
    assert me["display_name"] == "Ada" and me["role"] == "user"


def test_verification_link_uses_public_base_url_not_host_header(client, run_jobs, app):
    client.post("/v1/auth/register", json={"email": "host@example.test", "password": PASSWORD},
                headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    run_jobs()
    assert "evil.example" not in last_link("host@example.test")
    assert last_link("host@example.test").startswith(app.config["PUBLIC_BASE_URL"])


def test_register_taken_address_same_answer_and_mail_to_owner(client, make_user, run_jobs):
    owner = make_user(email="taken@example.test")
    fresh = client.post("/v1/auth/register", json={"email": "free@example.test", "password": PASSWORD})
    taken = client.post("/v1/auth/register", json={"email": "TAKEN@example.test", "password": "another pass 123"})
    assert (fresh.status_code, fresh.get_json()) == (taken.status_code, taken.get_json())
    run_jobs()
    mail = db.session.scalars(select(OutboxMail).where(OutboxMail.recipient == owner.email)).one()
    assert "already has one" in mail.body_text
    assert db.session.get(User, owner.id).password_hash == owner.password_hash


def test_register_common_password_refused_with_code(client):
    for password, code in (("password1", "password_too_common"), ("short", "password_too_short"),
                           ("x" * 257, "password_too_long"), ("aaaaaaaaaaaa", "password_too_common")):
        answer = client.post("/v1/auth/register", json={"email": "p@example.test", "password": password})
        assert answer.status_code == 422 and answer.get_json()["error"]["code"] == code, password


def test_register_unicode_password_nfkc_equivalent_signs_in(client, make_user):
    user = make_user(password="ｐａｓｓ ｗｏｒｄ ｆｕｌｌｗｉｄｔｈ ✓")  # fullwidth: NFKC folds it to ASCII
    answer = client.post("/v1/auth/login", json={"email": user.email, "password": "pass word fullwidth ✓"})
    assert answer.status_code == 200


def test_login_unknown_and_wrong_password_same_answer(client, make_user):
    user = make_user()
    wrong = client.post("/v1/auth/login", json={"email": user.email, "password": "not the password"})
    unknown = client.post("/v1/auth/login", json={"email": "nobody@example.test", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json()["error"]["code"] == unknown.get_json()["error"]["code"] == "invalid_credentials"
    assert wrong.get_json()["error"]["message"] == unknown.get_json()["error"]["message"]


def test_login_suspended_account_refused(client, make_user):
    user = make_user(status="suspended")
    answer = client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "account_suspended"


def test_login_old_argon2_parameters_rehashed_on_success(client, make_user):
    from argon2 import PasswordHasher

    from backend.auth.passwords import needs_rehash

    user = make_user(password=None)
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    db.session.commit()
    assert client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}).status_code == 200
    stored = db.session.scalar(select(User.password_hash).where(User.id == user.id))
    assert "m=19456,t=2,p=1" in stored and not needs_rehash(stored)


def test_resend_verification_sends_new_link_and_old_one_dies(client, make_user, run_jobs):
    user = make_user(verified=False)
    client.post("/v1/auth/resend-verification", json={"email": user.email})
    run_jobs()
    first = last_link(user.email)
    client.post("/v1/auth/resend-verification", json={"email": user.email})
    run_jobs()
    second = last_link(user.email)
    assert first != second
    assert client.get(path_of(first)).status_code == 410
    assert client.get(path_of(second)).status_code == 200


def test_verify_email_garbage_token_answers_400(client):
    answer = client.get("/v1/auth/verify-email?token=nonsense")
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "link_invalid"


def test_auth_endpoints_bad_bodies_answer_4xx_in_error_shape(client):
    routes = ("/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/resend-verification",
              "/v1/auth/password-reset/request", "/v1/auth/password-reset", "/v1/auth/verify-email")
    bodies = ({}, [], "text", {"email": 5, "password": None}, {"email": "x" * 300 + "@example.test",
              "password": PASSWORD}, {"email": "no-at-sign", "password": PASSWORD}, {"refresh_token": ["a"]},
              {"token": {"$ne": ""}}, {"email": "a@example.test", "password": PASSWORD, "role": "admin"})
    for route in routes:
        for body in bodies:
            answer = client.post(route, json=body)
            assert 400 <= answer.status_code < 500, (route, body, answer.status_code)
            assert answer.get_json()["error"]["code"], (route, body)
        broken = client.post(route, data="{not json", content_type="application/json")
        assert broken.status_code == 400 and broken.get_json()["error"]["code"]


def test_register_then_login_with_unverified_allowed_when_configured(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "AUTH_REQUIRE_VERIFIED_EMAIL", False)
    client.post("/v1/auth/register", json={"email": "early@example.test", "password": PASSWORD})
    answer = client.post("/v1/auth/login", json={"email": "early@example.test", "password": PASSWORD})
    assert answer.status_code == 200 and answer.get_json()["user"]["email_verified"] is False


def test_resend_verification_does_the_same_work_for_any_address(client, make_user, redis_conn):
    from backend.common.jobs import get_queue

    unverified, verified = make_user(verified=False), make_user()
    for email in (unverified.email, verified.email, "nobody@example.test"):
        assert client.post("/v1/auth/resend-verification", json={"email": email}).status_code == 202
    jobs = get_queue("default", connection=redis_conn).get_jobs()
    assert [j.func_name for j in jobs] == ["jobs.accounts.send_verification_again"] * 3
