"""Account email links opened in a browser: a plain HTML page per outcome, or the app's link."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from backend.auth.models import OneTimeToken
from backend.common.db import utcnow
from backend.extensions import db
from tests.auth.conftest import PASSWORD
from tests.auth.test_accounts import last_link, path_of

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def registered(client, run_jobs, email: str) -> str:
    assert client.post("/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 202
    run_jobs()
    return path_of(last_link(email))


def test_verification_link_in_a_browser_shows_confirmed_then_already_used(client, run_jobs):
    link = registered(client, run_jobs, "page@example.test")
    page = client.get(link, headers=BROWSER)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "Email address confirmed" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    again = client.get(link, headers=BROWSER)
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)
    assert client.post("/v1/auth/login", json={"email": "page@example.test", "password": PASSWORD}).status_code == 200


def test_verification_link_expired_in_a_browser_says_so(client, run_jobs):
    link = registered(client, run_jobs, "late@example.test")
    db.session.execute(update(OneTimeToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    page = client.get(link, headers=BROWSER)
    assert page.status_code == 410 and "expired" in page.get_data(as_text=True)


def test_verification_link_garbage_in_a_browser_is_a_page_not_json(client):
    page = client.get("/v1/auth/verify-email?token=%3Cscript%3Ealert(1)%3C/script%3E", headers=BROWSER)
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "<script>" not in page.get_data(as_text=True)


def test_verification_link_for_api_clients_stays_json(client, run_jobs):
    link = registered(client, run_jobs, "json@example.test")
    answer = client.get(link, headers={"Accept": "application/json"})
    assert answer.status_code == 200 and answer.get_json()["status"] == "verified"


def test_verification_link_redirects_to_the_app_link_when_configured(client, run_jobs, app, monkeypatch):
    monkeypatch.setitem(app.config, "EMAIL_ACTION_URL", "https://app.example.test/account-action")
    link = registered(client, run_jobs, "applink@example.test")
    answer = client.get(link, headers=BROWSER)
    assert answer.status_code == 303
    assert answer.headers["Location"] == ("https://app.example.test/account-action?mode=verify_email"
                                          "&status=verified")
    again = client.get(link, headers=BROWSER)
    assert again.headers["Location"].endswith("mode=verify_email&status=link_used")


def test_reset_link_in_a_browser_redirects_to_the_app_with_its_token(client, run_jobs, make_user, app,
                                                                    monkeypatch):
    user = make_user(email="forgot@example.test")
    client.post("/v1/auth/password-reset/request", json={"email": user.email})
    run_jobs()
    link = path_of(last_link(user.email))
    page = client.get(link, headers=BROWSER)
    assert page.status_code == 200 and "Choose a new password" in page.get_data(as_text=True)
    monkeypatch.setitem(app.config, "EMAIL_ACTION_URL", "https://app.example.test/a")
    answer = client.get(link, headers=BROWSER)
    token = link.split("token=", 1)[1]
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"status=valid&token={token}")
