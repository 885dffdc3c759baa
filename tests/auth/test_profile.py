"""Profile (/v1/me), device sessions, export and deletion with its grace period."""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from backend.auth import deletion
from backend.auth.models import Session, User
from backend.extensions import db
from tests.auth.conftest import PASSWORD


def _login(client, user, device="Pixel 9", platform="android"):
    body = client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD, "device_name": device,
                                               "platform": platform}).get_json()
    return {"Authorization": f"Bearer {body['access_token']}"}


def test_me_update_allowed_fields_and_properties_merge(client, make_user):
    headers = _login(client, make_user(properties={"plan": "free", "theme": "dark"}))
    answer = client.patch("/v1/me", headers=headers, json={
        "display_name": "Zoë", "first_name": "Zoë", "locale": "pt-BR", "time_zone": "America/Sao_Paulo",
        "properties": {"plan": "pro", "theme": None, "score": 3}})
    assert answer.status_code == 200
    me = client.get("/v1/me", headers=headers).get_json()
    assert (me["display_name"], me["locale"], me["time_zone"]) == ("Zoë", "pt-BR", "America/Sao_Paulo")
    assert me["properties"] == {"plan": "pro", "score": 3}


def test_me_update_role_or_status_refused_not_applied(client, make_user):
    user = make_user()
    headers = _login(client, user)
    for field, value in (("role", "admin"), ("status", "active"), ("email", "x@example.test"),
                         ("email_verified", True), ("token_version", 5)):
        answer = client.patch("/v1/me", headers=headers, json={field: value})
        assert answer.status_code == 422, field
    assert db.session.get(User, user.id).role == "user"


def test_me_update_bad_time_zone_locale_properties_422(client, make_user):
    headers = _login(client, make_user())
    for body in ({"time_zone": "Mars/Olympus"}, {"time_zone": "../../etc/passwd"}, {"locale": "not a locale"},
                 {"locale": "x" * 40}, {"properties": {f"k{i}": i for i in range(51)}},
                 {"properties": {"big": "x" * 9000}}, {"properties": {"": 1}}, {"display_name": "x" * 101}):
        answer = client.patch("/v1/me", headers=headers, json=body)
        assert answer.status_code == 422 and "error" in answer.get_json(), body


def test_me_properties_merge_past_size_limit_refused(client, make_user):
    headers = _login(client, make_user(properties={f"k{i}": i for i in range(50)}))
    answer = client.patch("/v1/me", headers=headers, json={"properties": {"one_more": 1}})
    assert answer.status_code == 422 and answer.get_json()["error"]["code"] == "properties_too_large"


def test_sessions_list_shows_devices_and_revoke_one(client, make_user):
    user = make_user()
    phone = _login(client, user, "Pixel 9", "android")
    tablet = _login(client, user, "iPad", "ios")
    page = client.get("/v1/me/sessions", headers=phone).get_json()
    assert {(s["device_name"], s["platform"]) for s in page["items"]} == {("Pixel 9", "android"), ("iPad", "ios")}
    assert sum(s["current"] for s in page["items"]) == 1 and all(s["ip"] for s in page["items"])
    ipad = next(s for s in page["items"] if s["device_name"] == "iPad")
    assert client.delete(f"/v1/me/sessions/{ipad['id']}", headers=phone).status_code == 204
    answer = client.get("/v1/me", headers=tablet)
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "session_revoked"
    assert [s["device_name"] for s in client.get("/v1/me/sessions", headers=phone).get_json()["items"]] == ["Pixel 9"]


def test_sessions_revoke_someone_elses_is_404_and_changes_nothing(client, make_user):
    mine, theirs = make_user(), make_user()
    headers = _login(client, mine)
    _login(client, theirs)
    other = db.session.scalar(select(Session).where(Session.user_id == theirs.id))
    for target in (other.id, uuid.uuid4()):
        answer = client.delete(f"/v1/me/sessions/{target}", headers=headers)
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "session_not_found"
    assert db.session.get(Session, other.id).revoked_at is None


def test_export_contains_account_sessions_and_registered_exporters(client, make_user):
    user = make_user(display_name="Exporter")
    headers = _login(client, user)
    deletion.register_exporter("test_notes", lambda user_id: [{"owner": str(user_id), "text": "hello"}])
    try:
        data = client.get("/v1/me/export", headers=headers).get_json()
    finally:
        deletion._EXPORTERS.pop("test_notes")
    assert data["account"]["email"] == user.email and data["account"]["display_name"] == "Exporter"
    assert data["sessions"][0]["device_name"] == "Pixel 9"
    assert data["test_notes"] == [{"owner": str(user.id), "text": "hello"}]
    assert "password_hash" not in str(data) and "$argon2" not in str(data)


def test_deletion_needs_password_then_cancel_explicitly(client, make_user):
    user = make_user()
    headers = _login(client, user)
    wrong = client.post("/v1/me/deletion", headers=headers, json={"password": "not it at all"})
    assert wrong.status_code == 401
    scheduled = client.post("/v1/me/deletion", headers=headers, json={"password": PASSWORD}).get_json()
    assert scheduled["status"] == "pending_deletion" and scheduled["deletion_scheduled_for"]
    cancelled = client.delete("/v1/me/deletion", headers=headers).get_json()
    assert cancelled["status"] == "active" and cancelled["deletion_scheduled_for"] is None


def test_deletion_cancelled_by_signing_in(client, make_user):
    user = make_user()
    client.post("/v1/me/deletion", headers=_login(client, user), json={"password": PASSWORD})
    me = client.get("/v1/me", headers=_login(client, user)).get_json()
    assert me["status"] == "active"


def test_erase_job_removes_accounts_past_grace_with_erasers(client, make_user, app):
    from jobs.accounts import erase_due_accounts

    due, recent, kept = make_user(), make_user(), make_user()
    for user in (due, recent):
        client.post("/v1/me/deletion", headers=_login(client, user), json={"password": PASSWORD})
    grace = timedelta(seconds=app.config["ACCOUNT_DELETION_GRACE_S"] + 1)
    db.session.execute(update(User).where(User.id == due.id).values(
        deletion_requested_at=User.deletion_requested_at - grace))
    db.session.commit()
    erased: list = []
    deletion.register_eraser("test_log", erased.append)
    try:
        assert erase_due_accounts() == 1
        assert erase_due_accounts() == 0  # idempotent
    finally:
        deletion._ERASERS.pop("test_log")
    assert erased == [due.id]
    remaining = set(db.session.scalars(select(User.id)))
    assert due.id not in remaining and {recent.id, kept.id} <= remaining
    assert db.session.scalar(select(Session).where(Session.user_id == due.id)) is None
