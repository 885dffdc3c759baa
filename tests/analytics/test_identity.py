"""Installs join their user at sign-in; a deleted account's events are erased."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from backend.analytics.identity import anonymous_person_id
from backend.auth.deletion import erase_account
from backend.extensions import db
from tests.analytics.conftest import event, stored


def test_install_history_moves_to_the_user_at_first_signed_in_batch(send, make_user, auth_headers):
    user = make_user()
    send([event("app_open"), event("signup_started")], install_id="install-join-1",
         user_properties={"set_once": {"referrer": "ad"}})
    response = send([event("signed_up")], install_id="install-join-1", headers=auth_headers(user))
    assert response.status_code == 200 and response.get_json()["accepted"] == 1
    rows = stored(install_id="install-join-1")
    assert {r["name"] for r in rows} == {"app_open", "signup_started", "signed_up"}
    assert all(r["person_id"] == user.id and r["user_id"] == user.id for r in rows)
    anonymous = anonymous_person_id("install-join-1")
    assert db.session.execute(text("SELECT count(*) FROM analytics_persons WHERE person_id = :p"),
                              {"p": anonymous}).scalar() == 0
    person = db.session.execute(text("SELECT is_user, properties FROM analytics_persons WHERE person_id = :p"),
                                {"p": user.id}).one()
    assert person.is_user and person.properties == {"referrer": "ad"}
    days = db.session.execute(text("SELECT person_id, events FROM analytics_user_days")).all()
    assert [(d.person_id, d.events) for d in days] == [(user.id, 3)]
    install = db.session.execute(text("SELECT user_id, joined_at FROM analytics_installs "
                                      "WHERE install_id = 'install-join-1'")).one()
    assert install.user_id == user.id and install.joined_at is not None


def test_signed_in_events_carry_the_user(send, make_user, auth_headers):
    user = make_user()
    send([event("x")], install_id="install-user-1", headers=auth_headers(user))
    assert [r["user_id"] for r in stored()] == [user.id]


def test_account_erasure_removes_the_users_analytics(send, make_user, auth_headers, client):
    user, other = make_user(), make_user()
    headers = auth_headers(user)
    send([event("a"), event("b")], install_id="install-erase-1", headers=headers,
         user_properties={"set": {"plan": "pro"}})
    send([event("c")], install_id="install-keep-01", headers=auth_headers(other))
    export = client.get("/v1/me/export", headers=headers).get_json()["analytics"]
    assert export["event_count"] == 2 and export["properties"] == {"plan": "pro"}
    assert [i["install_id"] for i in export["installs"]] == ["install-erase-1"]

    user.status, user.deletion_requested_at = "pending_deletion", datetime(2020, 1, 1, tzinfo=UTC)
    db.session.commit()
    assert erase_account(user_id=user.id)
    assert stored(person_id=user.id) == []
    for table, column in (("analytics_user_days", "person_id"), ("analytics_persons", "person_id"),
                          ("analytics_installs", "user_id")):
        assert db.session.execute(text(f"SELECT count(*) FROM {table} WHERE {column} = :u"),
                                  {"u": user.id}).scalar() == 0
    assert [r["name"] for r in stored(person_id=other.id)] == ["c"]
