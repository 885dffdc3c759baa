"""Push providers: FCM v1 against the local FCM server, and the outbox."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from backend.app import create_app
from backend.extensions import db
from backend.notifications.devices import DeviceInfo, prune_token, register_device
from backend.notifications.fcm.providers import (
    FcmProvider,
    OutboxProvider,
    Outcome,
    OutgoingPush,
    get_provider,
)
from backend.notifications.models import Device, PushOutbox
from tests.conftest import app_settings


def full_push(token: str = "device-token-1", **changes: Any) -> OutgoingPush:
    fields: dict[str, Any] = {
        "key": "n1:d1", "token": token, "title": "Your order shipped", "body": "It arrives Friday",
        "image": "https://cdn.example.test/box.png", "data": {"order_id": "42"},
        "deep_link": "https://app.example.test/orders/42", "ttl_seconds": 3600, "priority": "high",
        "collapse_key": "order-42", "badge": 3, "analytics_label": "order_shipped",
    }
    fields.update(changes)
    return OutgoingPush(**fields)


def test_fcm_provider_sends_full_v1_message_to_fcm(app, fake_fcm):
    [result] = get_provider(app).send([full_push()])
    assert result.outcome is Outcome.SENT and result.key == "n1:d1" and result.message_id
    [received] = fake_fcm.messages()
    message = received["message"]
    assert message["token"] == "device-token-1"
    assert message["notification"] == {
        "title": "Your order shipped", "body": "It arrives Friday", "image": "https://cdn.example.test/box.png"}
    assert message["data"] == {"order_id": "42", "deep_link": "https://app.example.test/orders/42"}
    # The collapse key is the message's collapse identity on every platform (a resend replaces the first).
    assert message["android"] == {"priority": "HIGH", "ttl": "3600s", "collapse_key": "order-42",
                                  "notification": {"tag": "order-42"}}
    headers = message["apns"]["headers"]
    assert headers["apns-priority"] == "10" and headers["apns-collapse-id"] == "order-42"
    assert headers["apns-push-type"] == "alert" and int(headers["apns-expiration"]) > 0
    assert message["apns"]["payload"]["aps"] == {"badge": 3, "mutable-content": 1}
    assert message["apns"]["fcm_options"] == {"image": "https://cdn.example.test/box.png"}
    assert message["webpush"]["headers"] == {"Urgency": "high", "TTL": "3600", "Topic": "order-42"}
    assert message["webpush"]["fcm_options"] == {"link": "https://app.example.test/orders/42"}
    assert message["fcm_options"] == {"analytics_label": "order_shipped"}


def test_fcm_provider_silent_push_carries_data_only(app, fake_fcm):
    silent = full_push(silent=True, badge=None, priority="normal", ttl_seconds=None, collapse_key=None)
    [result] = get_provider(app).send([silent])
    assert result.outcome is Outcome.SENT
    message = fake_fcm.messages()[0]["message"]
    assert "notification" not in message
    assert message["apns"] == {
        "headers": {"apns-priority": "5", "apns-push-type": "background"},
        "payload": {"aps": {"content-available": 1}},
    }
    assert message["android"] == {"priority": "NORMAL"}


def test_fcm_provider_reports_each_error_per_message(app, fake_fcm):
    fake_fcm.configure(retry_after_s=30)
    tokens = ["ok-1", "unregistered-1", "invalid-1", "mismatch-1", "quota-1", "thirdparty-1"]
    results = get_provider(app).send([full_push(token=t, key=t) for t in tokens])
    assert [r.key for r in results] == tokens
    assert [r.outcome for r in results] == [
        Outcome.SENT, Outcome.UNREGISTERED, Outcome.INVALID_TOKEN, Outcome.SENDER_MISMATCH,
        Outcome.QUOTA_EXCEEDED, Outcome.AUTH_ERROR,
    ]
    assert results[4].retry_after == 30
    assert [m["token"] for m in fake_fcm.messages()] == ["ok-1"]


def test_fcm_provider_takes_project_from_credentials_file(fake_fcm):
    provider = FcmProvider(fake_fcm.credentials_path, endpoint=fake_fcm.base_url)
    assert provider.sender.url == f"{fake_fcm.base_url}/v1/projects/groundwork-test/messages:send"
    assert provider.send([full_push()])[0].outcome is Outcome.SENT


def test_outbox_provider_records_what_would_be_sent(app, db_session, fake_fcm):
    results = OutboxProvider().send([full_push(), full_push(token="t2", key="n1:d2")])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    rows = db.session.scalars(select(PushOutbox).order_by(PushOutbox.id)).all()
    assert [(r.key, r.token) for r in rows] == [("n1:d1", "device-token-1"), ("n1:d2", "t2")]
    assert rows[0].message["notification"]["title"] == "Your order shipped"
    assert rows[0].message["android"]["collapse_key"] == "order-42"
    assert fake_fcm.messages() == []


def test_get_provider_follows_push_backend(database_url, services):
    outbox_app = create_app(app_settings(database_url, services.redis_url, PUSH_BACKEND="outbox"))
    assert isinstance(get_provider(outbox_app), OutboxProvider)
    assert get_provider(outbox_app) is get_provider(outbox_app)


def _device(new_user, token: str) -> Device:
    user = new_user()
    return register_device(db.session, user_id=user.id, installation_id=f"inst-{token}",
                           info=DeviceInfo(token=token, platform="android"))


def test_prune_token_unregistered_clears_and_disables(app, db_session, new_user):
    device = _device(new_user, "dead-token")
    prune_token(db.session, device_id=device.id, reason=Outcome.UNREGISTERED)
    db.session.commit()
    assert device.token is None and device.disabled_at is not None and device.disabled_reason == "unregistered"


def test_prune_token_sender_mismatch_flags_but_keeps_token(app, db_session, new_user):
    device = _device(new_user, "other-project-token")
    prune_token(db.session, device_id=device.id, reason=Outcome.SENDER_MISMATCH)
    db.session.commit()
    assert device.token == "other-project-token"
    assert device.disabled_at is not None and device.disabled_reason == "sender_mismatch"


def test_fcm_bodies_built_once_per_shape_equal_pyfcm_per_message():
    import json

    from pyfcm import FCMNotification

    from backend.notifications.fcm.payload import build_body
    from backend.notifications.fcm.providers import fcm_bodies, to_fcm_message

    builder = FCMNotification(service_account_file="unused", project_id="bodies")
    pushes = [OutgoingPush(key=f"k{i}", token=token, title=title, body="b", data={"screen": "home"},
                           collapse_id="c0ffee")
              for i, (token, title) in enumerate([("plain-token", "Hi"), ('quote"back\\slash-é', "Hi"),
                                                  ("other-shape", "Bonjour")])]
    built = fcm_bodies(builder, pushes)
    assert [key for key, _ in built] == ["k0", "k1", "k2"]
    for (_key, body), push in zip(built, pushes, strict=True):
        assert json.loads(body) == json.loads(build_body(builder, to_fcm_message(push)))
