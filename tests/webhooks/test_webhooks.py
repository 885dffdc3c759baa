"""Signed webhooks end to end: endpoints by API, the outbox, signed POSTs to a real server, retries."""
from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from backend.common.db import utcnow
from backend.extensions import db
from backend.media.models import Media
from backend.media.status import mark_failed, mark_ready
from backend.webhooks.delivery import RETRY_SCHEDULE_S, attempt_delivery
from backend.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from backend.webhooks.services import create_endpoint, emit
from backend.webhooks.signing import InvalidSignature, headers_for, new_secret, verify
from tests.webhooks.conftest import SERVER_KEY


@pytest.fixture
def admin(make_user, auth_headers, db_session):
    return auth_headers(make_user(role="admin"))


def _media(user_id) -> Media:
    media = Media(owner_id=user_id, kind="photo", status="processing", declared_type="image/jpeg", size_bytes=10,
                  key_prefix="media/x/", original_key="media/x/original", upload_expires_at=utcnow())
    db.session.add(media)
    db.session.commit()
    return media


def _deliveries() -> list[WebhookDelivery]:
    db.session.expire_all()
    return list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))


def test_admin_adds_an_endpoint_and_sees_the_secret_once(client, admin, make_user, auth_headers):
    created = client.post("/v1/webhooks/endpoints", headers=admin,
                          json={"url": "https://hooks.example.test/groundwork", "event_types": ["media.ready"]})
    assert created.status_code == 201
    body = created.get_json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["media.ready"]
    shown = client.get(f"/v1/webhooks/endpoints/{body['id']}", headers=admin).get_json()
    assert "secret" not in shown
    listed = client.get("/v1/webhooks/endpoints", headers={"X-API-Key": SERVER_KEY}).get_json()["items"]
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
    user = auth_headers(make_user())
    assert client.get("/v1/webhooks/endpoints", headers=user).status_code == 403
    bad = client.post("/v1/webhooks/endpoints", headers=admin, json={"url": "ftp://x.test/", "event_types": []})
    assert bad.status_code == 422
    unknown = client.post("/v1/webhooks/endpoints", headers=admin,
                          json={"url": "https://x.test/", "event_types": ["media.exploded"]})
    assert unknown.status_code == 422


def test_media_ready_is_posted_signed_to_subscribed_endpoints(client, make_user, receiver, run_jobs):
    endpoint = create_endpoint(db.session, url=receiver.url, event_types=["media.ready"])
    create_endpoint(db.session, url=receiver.url + "/failed-only", event_types=["media.failed"])
    owner = make_user()
    media = _media(owner.id)
    with client.application.test_request_context():
        mark_ready(db.session, media=media, variants={}, attributes={"width": 4, "height": 3})
    run_jobs(("default",))
    assert len(receiver.requests) == 1
    received = receiver.requests[0]
    verify(endpoint.secret, received.headers, received.body)
    event = json.loads(received.body)
    assert event["type"] == "media.ready" and event["data"]["id"] == str(media.id)
    assert event["data"]["width"] == 4 and event["data"]["owner_id"] == str(owner.id)
    [delivery] = _deliveries()
    assert delivery.status == "succeeded" and delivery.attempts == 1 and delivery.last_status_code == 200
    assert received.headers["webhook-id"] == str(delivery.event_id)


def test_failed_delivery_is_retried_with_backoff_and_logged(client, make_user, receiver, run_jobs, admin):
    endpoint = create_endpoint(db.session, url=receiver.url, event_types=[])
    receiver.statuses = [500]
    media = _media(make_user().id)
    with client.application.test_request_context():
        mark_failed(db.session, media=media, reason="too_many_pixels")
    run_jobs(("default",))
    [delivery] = _deliveries()
    assert delivery.status == "retrying" and delivery.attempts == 1 and delivery.last_status_code == 500
    wait = (delivery.next_attempt_at - utcnow()).total_seconds()
    assert RETRY_SCHEDULE_S[0] * 0.8 <= wait <= RETRY_SCHEDULE_S[0] * 1.1
    with client.application.app_context():
        assert attempt_delivery(db.session, delivery_id=delivery.id) == "not_due"  # early resend: no extra try
    db.session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    with client.application.app_context():
        assert attempt_delivery(db.session, delivery_id=delivery.id) == "succeeded"
    assert [json.loads(r.body)["type"] for r in receiver.requests] == ["media.failed", "media.failed"]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # the same message, deduplicable
    db.session.expire_all()  # the API reads in this test's session
    log = client.get(f"/v1/webhooks/deliveries?endpoint_id={endpoint.id}", headers=admin).get_json()["items"]
    assert [(d["status"], d["attempts"]) for d in log] == [("succeeded", 2)]
    attempts = db.session.scalars(select(WebhookAttempt.status_code).order_by(WebhookAttempt.id)).all()
    assert attempts == [500, 200]


def test_delivery_fails_for_good_after_the_last_retry(client, receiver, run_jobs):
    create_endpoint(db.session, url=receiver.url, event_types=[])
    receiver.statuses = [503]
    emit(db.session, "webhook.test", {"n": 1})
    db.session.commit()
    [delivery] = _deliveries()
    db.session.execute(update(WebhookDelivery).values(attempts=len(RETRY_SCHEDULE_S)))
    db.session.commit()
    with client.application.app_context():
        assert attempt_delivery(db.session, delivery_id=delivery.id) == "failed"


def test_private_addresses_are_refused_unless_allowed(app, client, receiver, monkeypatch):
    create_endpoint(db.session, url=receiver.url, event_types=[])
    emit(db.session, "webhook.test", {})
    db.session.commit()
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)
    [delivery] = _deliveries()
    with client.application.app_context():
        assert attempt_delivery(db.session, delivery_id=delivery.id) == "retrying"
    assert receiver.requests == []
    assert "non-public address" in _deliveries()[0].last_error


def test_test_event_and_rotation_by_api(client, admin, receiver, run_jobs):
    endpoint = client.post("/v1/webhooks/endpoints", headers=admin, json={"url": receiver.url}).get_json()
    rotated = client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/secret", headers=admin).get_json()
    assert rotated["secret"] != endpoint["secret"]
    assert client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/test", headers=admin).status_code == 202
    run_jobs(("default",))
    received = receiver.requests[0]
    verify(rotated["secret"], received.headers, received.body)
    verify(endpoint["secret"], received.headers, received.body)  # the old secret still signs, for a day
    assert len(received.headers["webhook-signature"].split()) == 2
    db.session.execute(update(WebhookEndpoint).values(previous_secret_expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/test", headers=admin)
    run_jobs(("default",))
    with pytest.raises(InvalidSignature):
        verify(endpoint["secret"], receiver.requests[1].headers, receiver.requests[1].body)
    verify(rotated["secret"], receiver.requests[1].headers, receiver.requests[1].body)
    assert client.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=admin,
                        json={"enabled": False}).get_json()["enabled"] is False
    assert client.delete(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=admin).status_code == 204
    assert client.get(f"/v1/webhooks/endpoints/{uuid.uuid4()}", headers=admin).status_code == 404


def test_signature_refuses_tampering_and_replays():
    secret, body = new_secret(), b'{"type":"media.ready"}'
    headers = headers_for(secret, msg_id="msg_1", body=body)
    verify(secret, headers, body)
    with pytest.raises(InvalidSignature):
        verify(secret, headers, body + b" ")
    with pytest.raises(InvalidSignature):
        verify(secret, headers, body, now=time.time() + 3600)
    with pytest.raises(InvalidSignature):
        verify(new_secret(), headers, body)


def test_readme_verification_sample_accepts_our_signature_and_refuses_tampering():
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2] / "README.md"
    section = readme.read_text().split("## Webhooks", 1)[1]
    sample = section.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(sample, "README sample", "exec"), namespace)  # noqa: S102 - our own documentation
    secret, body = new_secret(), b'{"type":"media.ready","data":{}}'
    headers = headers_for(secret, msg_id="msg_readme", body=body)
    namespace["verify"](secret, headers, body)
    with pytest.raises(ValueError):
        namespace["verify"](secret, headers, b'{"type":"media.failed","data":{}}')


def test_webhook_log_older_than_thirty_days_is_purged_unless_still_being_delivered(client, receiver):
    from jobs.webhooks import purge_webhook_log

    create_endpoint(db.session, url=receiver.url, event_types=[])
    done, waiting = emit(db.session, "webhook.test", {"n": 1}), emit(db.session, "webhook.test", {"n": 2})
    db.session.commit()
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.event_id == done.id)
                       .values(status="succeeded"))
    from backend.webhooks.models import WebhookEvent

    db.session.execute(update(WebhookEvent).values(created_at=utcnow() - timedelta(days=31)))
    db.session.commit()
    with client.application.app_context():
        assert purge_webhook_log() == 1
    assert [d.event_id for d in _deliveries()] == [waiting.id]
