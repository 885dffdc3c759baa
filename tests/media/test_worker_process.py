"""The whole pipeline with a real forked worker process: upload, complete, process, webhook, serve."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

from backend.extensions import db
from backend.media.models import Media
from backend.webhooks.models import WebhookDelivery
from backend.webhooks.services import create_endpoint
from tests.media.conftest import Transfer
from tests.media.samples import oriented_jpeg


def test_real_worker_process_makes_committed_upload_ready_on_both_stores(committed_app, make_user, auth_headers):
    app = committed_app
    data = oriented_jpeg(1200, 600)
    with app.app_context():
        headers = auth_headers(make_user())
        create_endpoint(db.session, url="https://hooks.example.test/groundwork", event_types=["media.ready"])
        client = app.test_client()
        asked = client.post("/v1/media", headers=headers, json={
            "kind": "photo", "content_type": "image/jpeg", "size": len(data)}).get_json()
        assert Transfer(app, client).put(asked["upload"]["request"], data) == 200
        assert client.post(f"/v1/media/{asked['media']['id']}/complete", headers=headers).status_code == 200
        db.session.remove()
    config = app.config
    env = {**os.environ, "DATABASE_URL": config["DATABASE_URL"], "REDIS_URL": config["REDIS_URL"], "ENV": "test",
           "LOG_JSON": "false", "SECRET_KEY": config["SECRET_KEY"], "STORAGE_BACKEND": config["STORAGE_BACKEND"],
           "STORAGE_LOCAL_PATH": config["STORAGE_LOCAL_PATH"], "S3_BUCKET": config["S3_BUCKET"],
           "S3_ENDPOINT_URL": config["S3_ENDPOINT_URL"], "PUBLIC_BASE_URL": config["PUBLIC_BASE_URL"]}
    result = subprocess.run([sys.executable, "-m", "jobs.worker", "media", "--burst", "--no-scheduler"],
                            env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    with app.app_context():
        media = db.session.get(Media, uuid.UUID(asked["media"]["id"]))
        assert media.status == "ready" and (media.width, media.height) == (600, 1200)
        assert set(media.variants) == {"thumb_320", "display_1080"}
        deliveries = db.session.query(WebhookDelivery).all()
        assert len(deliveries) == 1 and deliveries[0].status == "pending"  # queued for the default queue
        served = app.test_client().get(f"/v1/media/{media.id}", headers=headers).get_json()
        assert set(served["delivery"]["variants"]) == {"thumb_320", "display_1080"}
        db.session.remove()
