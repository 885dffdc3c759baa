"""Object storage unreachable: uploads and processing fail cleanly, then go on once it is back.

The app talks to a real S3 endpoint (moto's server) through a gate the test closes:
the endpoint then refuses connections, as a store that went away does. Nothing answers
500, nothing is marked ready without its files, and no work is lost: the client's
retry of its request and RQ's retry of the job finish it once the store answers again.
"""
from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from flask import Flask
from rq.registry import ScheduledJobRegistry

from backend.app import create_app
from backend.common.jobs import get_queue
from backend.extensions import db
from backend.media.models import Media
from backend.media.storage import get_storage
from tests.auth.conftest import PASSWORD
from tests.media.conftest import PUBLIC_BASE_URL, Transfer, media_settings, s3_endpoint  # noqa: F401
from tests.media.samples import jpeg
from tests.ops.tcp_gate import TcpGate

pytestmark = pytest.mark.chaos


@pytest.fixture
def gate(s3_endpoint: str) -> Iterator[TcpGate]:  # noqa: F811
    parts = urlsplit(s3_endpoint)
    gate = TcpGate(parts.hostname, parts.port)
    gate.open()
    yield gate
    gate.close()


@pytest.fixture
def store_app(committed_app: Flask, gate: TcpGate, database_url: str, services: Any) -> Iterator[Flask]:
    """An app whose S3 endpoint is the gate, on a bucket of its own (data really commits)."""
    bucket = f"gw-outage-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=gate.url, region_name="us-east-1").create_bucket(Bucket=bucket)
    app = create_app({**media_settings(database_url, services.redis_url, "s3", gate.url), "S3_BUCKET": bucket})
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def headers(store_app: Flask, make_user: Any) -> dict[str, str]:
    user = make_user()
    answer = store_app.test_client().post("/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


def ask_and_send(app: Flask, headers: dict[str, str], data: bytes) -> str:
    client = app.test_client()
    asked = client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": len(data),
        "checksum_sha256": hashlib.sha256(data).hexdigest()})
    assert asked.status_code == 201, asked.get_json()
    body = asked.get_json()
    assert Transfer(app, client).put(body["upload"]["request"], data) == 200
    return body["media"]["id"]


def run_media_queue(app: Flask) -> None:
    from jobs.worker import build_worker

    build_worker(app, ["media"], in_process=True).work(burst=True, with_scheduler=False)


def status_of(media_id: str) -> str:
    db.session.expire_all()
    return db.session.get(Media, uuid.UUID(media_id)).status


def assert_storage_unavailable(answer: Any) -> None:
    assert answer.status_code == 503, answer.get_json()
    assert answer.get_json()["error"]["code"] == "storage_unavailable"
    assert answer.headers["Retry-After"]


def test_storage_unreachable_upload_requests_answer_503_and_the_retry_completes(store_app, gate, headers):
    client = store_app.test_client()
    media_id = ask_and_send(store_app, headers, jpeg(800, 600))

    gate.close()
    assert_storage_unavailable(client.post(f"/v1/media/{media_id}/complete", headers=headers))
    assert status_of(media_id) == "uploading"  # nothing changed: the client may retry
    big = 8 * 1024 * 1024  # above the multipart threshold: the store is asked to begin an upload
    assert_storage_unavailable(client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": big, "checksum_sha256": "0" * 64}))

    gate.open()
    assert client.post(f"/v1/media/{media_id}/complete", headers=headers).status_code == 200
    run_media_queue(store_app)
    assert status_of(media_id) == "ready"


def test_storage_unreachable_processing_is_retried_and_never_ready_without_files(store_app, gate, headers):
    client = store_app.test_client()
    media_id = ask_and_send(store_app, headers, jpeg(800, 600))
    assert client.post(f"/v1/media/{media_id}/complete", headers=headers).status_code == 200

    gate.close()
    run_media_queue(store_app)  # the job meets the unreachable store
    assert status_of(media_id) not in ("ready", "failed")
    registry = ScheduledJobRegistry(queue=get_queue("media"))
    [retry] = registry.get_job_ids()  # RQ scheduled the retry (with backoff)

    gate.open()
    registry.requeue(retry)  # its time has come
    run_media_queue(store_app)
    assert status_of(media_id) == "ready"
    media = db.session.get(Media, uuid.UUID(media_id))
    store = get_storage()
    assert all(store.head(variant["key"]) is not None for variant in media.variants.values())
