"""Managing passkeys: list, rename, remove (never the last way in), the association files, the export."""
from __future__ import annotations

from sqlalchemy import select

from backend.auth.factors.models import SocialIdentity
from backend.auth.models import SecurityEvent
from backend.extensions import db
from tests.auth_factors.helpers import assert_error
from tests.fakes.passkey_authenticator import SoftAuthenticator
from tests.passkeys.conftest import ORIGIN, add_passkey


def test_passkey_list_rename_and_remove(client, make_user, auth_headers, phone):
    user = make_user()
    headers = auth_headers(user)
    first = add_passkey(client, headers, phone, device_name="iPhone").get_json()
    second = add_passkey(client, headers, SoftAuthenticator(origin=ORIGIN), device_name="iPad").get_json()
    listed = client.get("/v1/auth/passkeys", headers=headers).get_json()["items"]
    assert sorted(p["device_name"] for p in listed) == ["iPad", "iPhone"]
    renamed = client.patch(f"/v1/auth/passkeys/{first['id']}", headers=headers, json={"device_name": "Work phone"})
    assert renamed.status_code == 200 and renamed.get_json()["device_name"] == "Work phone"
    assert client.delete(f"/v1/auth/passkeys/{second['id']}", headers=headers).status_code == 204
    assert [p["id"] for p in client.get("/v1/auth/passkeys", headers=headers).get_json()["items"]] == [first["id"]]
    kinds = [e.kind for e in db.session.scalars(select(SecurityEvent).order_by(SecurityEvent.created_at))]
    assert kinds == ["passkey_added", "passkey_added", "passkey_removed"]


def test_passkey_of_another_user_is_404_and_unchanged(client, make_user, auth_headers, phone):
    owner_headers, other_headers = auth_headers(make_user()), auth_headers(make_user())
    passkey_id = add_passkey(client, owner_headers, phone).get_json()["id"]
    assert_error(client.patch(f"/v1/auth/passkeys/{passkey_id}", headers=other_headers, json={"device_name": "x"}),
                 404, "passkey_not_found")
    assert_error(client.delete(f"/v1/auth/passkeys/{passkey_id}", headers=other_headers), 404, "passkey_not_found")
    assert client.get("/v1/auth/passkeys", headers=owner_headers).get_json()["items"][0]["device_name"] == "iPhone"


def test_passkey_remove_last_way_in_is_409(client, make_user, auth_headers, phone):
    # No password, and Apple's relay address cannot receive a sign-in code once Apple is gone.
    user = make_user(password=None, email="a1b2@privaterelay.appleid.com")
    headers = auth_headers(user)
    passkey_id = add_passkey(client, headers, phone).get_json()["id"]
    assert_error(client.delete(f"/v1/auth/passkeys/{passkey_id}", headers=headers), 409, "last_sign_in_method")
    second = add_passkey(client, headers, SoftAuthenticator(origin=ORIGIN)).get_json()["id"]
    assert client.delete(f"/v1/auth/passkeys/{passkey_id}", headers=headers).status_code == 204
    assert_error(client.delete(f"/v1/auth/passkeys/{second}", headers=headers), 409, "last_sign_in_method")


def test_passkey_counts_as_a_way_in_when_unlinking_a_provider(client, make_user, auth_headers, phone):
    user = make_user(password=None, email="b2c3@privaterelay.appleid.com")
    db.session.add(SocialIdentity(user_id=user.id, provider="apple", subject="001234.abc"))
    db.session.commit()
    headers = auth_headers(user)
    assert_error(client.delete("/v1/auth/identities/apple", headers=headers), 409, "last_sign_in_method")
    assert add_passkey(client, headers, phone).status_code == 201
    assert client.delete("/v1/auth/identities/apple", headers=headers).status_code == 204


def test_passkey_association_files_come_from_config(client, relying_party):
    apple = client.get("/.well-known/apple-app-site-association")
    assert apple.status_code == 200
    assert apple.get_json()["webcredentials"] == {"apps": ["ABCDE12345.com.example.app"]}
    [details] = apple.get_json()["applinks"]["details"]
    assert {"/": "/v1/auth/verify-email"} in details["components"]
    [link] = client.get("/.well-known/assetlinks.json").get_json()
    assert link["target"]["package_name"] == "com.example.app"
    assert link["target"]["sha256_cert_fingerprints"][0].startswith("14:6D:E9:83")
    assert "delegate_permission/common.get_login_creds" in link["relation"]


def test_passkey_association_files_absent_without_config(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "IOS_APP_IDS", [])
    monkeypatch.setitem(app.config, "ANDROID_APP_PACKAGE", "")
    assert_error(client.get("/.well-known/apple-app-site-association"), 404, "not_configured")
    assert_error(client.get("/.well-known/assetlinks.json"), 404, "not_configured")


def test_passkey_export_lists_passkeys_and_security_events_never_keys(client, make_user, auth_headers, phone):
    headers = auth_headers(make_user())
    assert add_passkey(client, headers, phone, device_name="iPhone").status_code == 201
    export = client.get("/v1/me/export", headers=headers).get_json()
    [passkey] = export["passkeys"]
    assert passkey["device_name"] == "iPhone" and "public_key" not in passkey
    assert [e["kind"] for e in export["security_events"]] == ["passkey_added"]
