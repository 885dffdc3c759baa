"""Users in the console: index-backed search, filters, escaping, audited actions through the auth services."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from backend.audit.models import AuditEntry
from backend.auth.models import User
from backend.extensions import db
from tests.console.conftest import csrf_of


def _apply(http, action, *users, note=""):
    token = csrf_of(http, "/admin/users/")
    ids = [str(u.id) for u in users]
    confirm = http.post("/admin/users/confirm", data={"csrf_token": token, "action": action, "user_id": ids})
    assert confirm.status_code == 200 and "confirm-action" in confirm.get_data(as_text=True)
    return http.post("/admin/users/apply", data={"csrf_token": token, "action": action, "user_id": ids,
                                                 "note": note})


def test_user_search_by_email_prefix_id_and_name(staff_client, make_user):
    admin = staff_client("admin")
    alice = make_user(email="alice.search@example.test", display_name="Zed Alpha")
    make_user(email="bob.search@example.test", display_name="Yan Beta")
    by_email = admin.get("/admin/users/?q=alice.sea").get_data(as_text=True)
    assert "alice.search@example.test" in by_email and "bob.search" not in by_email
    by_id = admin.get(f"/admin/users/?q={alice.id}").get_data(as_text=True)
    assert "alice.search@example.test" in by_id and "bob.search" not in by_id
    by_name = admin.get("/admin/users/?q=yan%20b").get_data(as_text=True)
    assert "bob.search@example.test" in by_name and "alice.search" not in by_name
    wildcard = admin.get("/admin/users/?q=%25").get_data(as_text=True)  # a literal %, not "everything"
    assert "alice.search" not in wildcard


def test_user_search_uses_the_prefix_indexes(db_session):
    db_session.execute(text("SET LOCAL enable_seqscan = off"))
    from backend.auth.directory import users_query

    stmt = users_query(q="ali").compile(db.engine, compile_kwargs={"literal_binds": True})
    plan = "\n".join(r[0] for r in db_session.execute(text(f"EXPLAIN {stmt}")))
    assert "ix_users_email_prefix" in plan and "ix_users_display_name_prefix" in plan


def test_user_filters_by_status_and_signup_date(staff_client, make_user):
    admin = staff_client("admin")
    make_user(email="suspended.filter@example.test", status="suspended")
    make_user(email="active.filter@example.test")
    page = admin.get("/admin/users/?q=&status=suspended").get_data(as_text=True)
    assert "suspended.filter@" in page and "active.filter@" not in page
    future = admin.get("/admin/users/?from=2999-01-01").get_data(as_text=True)
    assert "active.filter@" not in future
    assert admin.get("/admin/users/?from=not-a-date").status_code == 200


def test_user_supplied_text_is_escaped(staff_client, make_user):
    admin = staff_client("admin")
    evil = make_user(email="evil@example.test", display_name="<script>alert(1)</script>")
    for path in ("/admin/users/?q=evil", f"/admin/users/{evil.id}"):
        html = admin.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_profile_shows_sessions_and_two_factor_never_secrets(staff_client, make_user, auth_headers):
    moderator = staff_client("moderator")
    user = make_user(email="profiled@example.test")
    auth_headers(user, device_name="Pixel of Profiled")
    html = moderator.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert "Pixel of Profiled" in html and "Two-factor" in html
    assert user.password_hash not in html and "data-testid=\"user-actions\"" not in html  # moderators read only


def test_suspend_takes_effect_on_next_api_request_and_is_audited(staff_client, make_user, auth_headers, client):
    admin = staff_client("admin")
    user = make_user(email="to.suspend@example.test")
    headers = auth_headers(user)
    assert client.get("/v1/me", headers=headers).status_code == 200
    answer = _apply(admin, "suspend", user, note="spam wave")
    assert answer.status_code == 302
    assert client.get("/v1/me", headers=headers).get_json()["error"]["code"] == "account_suspended"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.object_id == str(user.id))).one()
    assert entry.action == "user.suspend" and entry.actor_email == admin.staff.email and entry.note == "spam wave"
    assert entry.before["status"] == "active" and entry.after["status"] == "suspended"
    assert entry.before["live_sessions"] == 1 and entry.after["live_sessions"] == 0
    _apply(admin, "unsuspend", user)
    assert db.session.get(User, user.id).status == "active"


def test_bulk_verify_and_delete_with_grace(staff_client, make_user):
    admin = staff_client("admin")
    a, b = make_user(verified=False), make_user(verified=False)
    _apply(admin, "verify", a, b)
    assert all(db.session.get(User, u.id).email_verified_at for u in (a, b))
    _apply(admin, "delete", a)
    assert db.session.get(User, a.id).status == "pending_deletion"
    _apply(admin, "cancel_deletion", a)
    assert db.session.get(User, a.id).status == "active"


def test_delete_of_staff_account_refused_with_message_and_not_audited(staff_client, make_user):
    admin = staff_client("admin")
    other = make_user(role="marketer")
    answer = _apply(admin, "delete", other)
    page = admin.get(answer.headers["Location"]).get_data(as_text=True)
    assert "removed by an administrator" in page
    assert db.session.get(User, other.id).status == "active"
    assert not db.session.scalars(select(AuditEntry).where(AuditEntry.object_id == str(other.id))).all()


def test_sign_out_everywhere_ends_every_session(staff_client, make_user, auth_headers, client):
    admin = staff_client("admin")
    user = make_user()
    first, second = auth_headers(user), auth_headers(user)
    _apply(admin, "sign_out_everywhere", user)
    for headers in (first, second):
        assert client.get("/v1/me", headers=headers).status_code == 401


@pytest.mark.parametrize("role", ["marketer", "analyst"])
def test_users_pages_refused_to_marketers_and_analysts(staff_client, role):
    assert staff_client(role).get("/admin/users/").status_code == 403


def test_audit_log_refuses_update_delete_and_truncate(db_session, staff_client, make_user):
    admin = staff_client("admin")
    user = make_user()
    _apply(admin, "verify", user)
    for statement in ("UPDATE audit_log SET note = 'rewritten'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        savepoint = db_session.begin_nested()
        with pytest.raises(Exception, match="append-only"):
            db_session.execute(text(statement))
        savepoint.rollback()
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.object_id == str(user.id))).one()
    html = admin.get("/admin/audit/?object_type=user").get_data(as_text=True)
    assert "user.verify" in html
