"""Device registry over HTTP: register on open, token moves, sign-out, no other user's tokens."""
from __future__ import annotations

from sqlalchemy import select

from backend.auth.models import User
from backend.extensions import db
from backend.notifications.models import Device


def put_device(client, headers, installation="install-0001", **body):
    payload = {"token": "tok-1", "platform": "ios", "app_version": "2.3.1", "locale": "fr-FR",
               "time_zone": "Europe/Paris", "push_permission": "granted", **body}
    return client.put(f"/v1/notifications/devices/{installation}", json=payload, headers=headers)


def test_device_put_registers_then_refreshes_on_every_open(client, make_user, auth_headers):
    user = make_user()
    headers = auth_headers(user)
    first = put_device(client, headers)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["installation_id"] == "install-0001" and body["time_zone"] == "Europe/Paris"
    assert body["push_enabled"] is True and "token" not in body
    seen = db.session.scalar(select(Device.last_seen_at))
    again = put_device(client, headers, token="tok-2", app_version="2.4.0", push_permission="denied")
    assert again.get_json()["app_version"] == "2.4.0" and again.get_json()["push_enabled"] is False
    rows = db.session.scalars(select(Device)).all()
    assert len(rows) == 1 and rows[0].token == "tok-2" and rows[0].last_seen_at >= seen
    assert db.session.get(User, user.id).last_active_at is not None


def test_device_token_moving_to_another_user_leaves_the_old_row(client, make_user, auth_headers):
    alice, bob = make_user(), make_user()
    put_device(client, auth_headers(alice), installation="alice-phone", token="shared-token")
    moved = put_device(client, auth_headers(bob), installation="bob-phone", token="shared-token")
    assert moved.status_code == 200
    alice_row = db.session.scalar(select(Device).where(Device.installation_id == "alice-phone"))
    bob_row = db.session.scalar(select(Device).where(Device.installation_id == "bob-phone"))
    assert alice_row.token is None and alice_row.disabled_reason == "token_moved"
    assert bob_row.token == "shared-token" and bob_row.user_id == bob.id
    listed = client.get("/v1/notifications/devices", headers=auth_headers(alice)).get_json()["items"]
    assert [d["push_enabled"] for d in listed] == [False]


def test_device_installation_signed_in_by_another_user_follows_them(client, make_user, auth_headers):
    alice, bob = make_user(), make_user()
    put_device(client, auth_headers(alice), installation="family-ipad", token="ipad-token")
    put_device(client, auth_headers(bob), installation="family-ipad", token="ipad-token")
    row = db.session.scalar(select(Device).where(Device.installation_id == "family-ipad"))
    assert row.user_id == bob.id and row.token == "ipad-token"
    assert client.get("/v1/notifications/devices", headers=auth_headers(alice)).get_json()["items"] == []


def test_device_list_shows_only_mine_without_tokens(client, make_user, auth_headers):
    alice, bob = make_user(), make_user()
    put_device(client, auth_headers(alice), installation="alice-0001", token="alice-secret-token")
    put_device(client, auth_headers(bob), installation="bob-00001", token="bob-secret-token")
    response = client.get("/v1/notifications/devices", headers=auth_headers(alice))
    assert [d["installation_id"] for d in response.get_json()["items"]] == ["alice-0001"]
    assert "secret-token" not in response.get_data(as_text=True)


def test_device_delete_on_sign_out_and_404_for_someone_elses(client, make_user, auth_headers):
    alice, bob = make_user(), make_user()
    put_device(client, auth_headers(alice), installation="alice-phone")
    assert client.delete("/v1/notifications/devices/alice-phone", headers=auth_headers(bob)).status_code == 404
    assert db.session.scalar(select(Device.id)) is not None
    assert client.delete("/v1/notifications/devices/alice-phone", headers=auth_headers(alice)).status_code == 204
    assert db.session.scalar(select(Device.id)) is None


def test_device_bad_input_is_422(client, make_user, auth_headers):
    headers = auth_headers(make_user())
    zone = put_device(client, headers, time_zone="Mars/Olympus_Mons")
    assert zone.status_code == 422 and zone.get_json()["error"]["code"] == "invalid_time_zone"
    assert put_device(client, headers, platform="symbian").status_code == 422
    assert put_device(client, headers, installation="x").get_json()["error"]["code"] == "invalid_installation_id"
    assert put_device(client, headers, push_permission="maybe").status_code == 422


def test_device_routes_need_sign_in(client):
    assert put_device(client, {}).status_code == 401
    assert client.get("/v1/notifications/devices").status_code == 401
