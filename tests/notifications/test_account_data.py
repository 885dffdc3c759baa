"""Push data in the account export, and gone with the account."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from backend.auth.deletion import erase_account
from backend.extensions import db
from backend.notifications.models import Device, Notification, TopicSubscription
from tests.notifications.conftest import SERVER_KEY


def test_export_includes_push_data_without_tokens_and_erasure_removes_it(client, make_user, auth_headers):
    user = make_user()
    headers = auth_headers(user)
    client.put("/v1/notifications/devices/phone-export", headers=headers,
               json={"token": "secret-fcm-token", "platform": "ios", "time_zone": "Asia/Tokyo"})
    client.put("/v1/notifications/topics/news", headers=headers)
    client.put("/v1/notifications/preferences", headers=headers, json={
        "categories": {"promotional": False}, "quiet_hours": {"start": "23:00", "end": "06:30", "time_zone": None}})
    client.post("/v1/notifications/send", headers={"X-API-Key": SERVER_KEY},
                json={"user_id": str(user.id), "title": "Hello"})
    export = client.get("/v1/me/export", headers=headers)
    assert export.status_code == 200
    push = export.get_json()["notifications"]
    assert [d["installation_id"] for d in push["devices"]] == ["phone-export"]
    assert push["preferences"] == {"promotional": False}
    assert push["quiet_hours"] == {"start": "23:00", "end": "06:30", "time_zone": None}
    assert push["topics"] == ["news"] and [n["title"] for n in push["inbox"]] == ["Hello"]
    assert "secret-fcm-token" not in export.get_data(as_text=True)

    user.status, user.deletion_requested_at = "pending_deletion", datetime(2020, 1, 1, tzinfo=UTC)
    db.session.commit()
    assert erase_account(user_id=user.id)
    for model in (Device, Notification, TopicSubscription):
        assert db.session.scalar(select(func.count()).select_from(model).where(model.user_id == user.id)) == 0
