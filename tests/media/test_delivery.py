"""Signed delivery: short-lived URLs per object, only for servable media, never rendered as a page."""
from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image
from sqlalchemy import func, select

from backend.auth.deletion import erase_account, request_deletion
from backend.auth.models import User
from backend.extensions import db
from backend.media.models import Media
from backend.media.policies import load_policies
from backend.media.storage import get_storage
from tests.media.samples import jpeg
from tests.waiting import wait_for


def _ready(client, headers, upload, run_media_jobs, **extra):
    done = upload(jpeg(900, 600), filename="../beach <b>.jpg", **extra)
    run_media_jobs()
    return client.get(f"/v1/media/{done['id']}", headers=headers).get_json()


def test_ready_media_has_signed_variant_urls_that_serve_webp(app, client, headers, upload, run_media_jobs, transfer):
    media = _ready(client, headers, upload, run_media_jobs)
    delivery = media["delivery"]
    assert set(delivery["variants"]) == {"thumb_320", "display_1080"}
    status, response_headers, body = transfer.get(delivery["variants"]["thumb_320"]["url"])
    assert status == 200
    assert Image.open(io.BytesIO(body)).format == "WEBP"
    assert response_headers["Content-Type"] == "image/webp"
    if app.config["STORAGE_BACKEND"] == "local":
        assert response_headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response_headers["Content-Security-Policy"]


def test_original_is_only_ever_a_download_for_its_owner(app, client, headers, upload, run_media_jobs, transfer):
    media = _ready(client, headers, upload, run_media_jobs)
    status, response_headers, body = transfer.get(media["delivery"]["original"])
    assert status == 200 and body[:3] == b"\xff\xd8\xff"
    assert response_headers["Content-Type"] == "application/octet-stream"
    assert response_headers["Content-Disposition"].startswith("attachment")
    assert 'filename="beach _b_.jpg"' in response_headers["Content-Disposition"]


# moto's server does not check presigned signatures or expiry (S3 does, and boto3 signs the URL):
# the signature tests run on the local store, whose signed route is ours.
signatures_checked = pytest.mark.parametrize("app", ["local"], indirect=True)


@signatures_checked
def test_signed_url_is_scoped_to_one_object(app, client, headers, upload, run_media_jobs, transfer):
    media = _ready(client, headers, upload, run_media_jobs)
    url = media["delivery"]["variants"]["thumb_320"]["url"]
    assert transfer.get(url.replace("thumb_320", "display_1080"))[0] == 403


@signatures_checked
def test_expired_url_is_refused(app, client, headers, upload, run_media_jobs, transfer):
    media = _ready(client, headers, upload, run_media_jobs)
    key = f"media/{media['id']}/thumb_320.webp"
    url = get_storage(app).presign_get(key, expires_s=1, content_type="image/webp")
    assert transfer.get(url)[0] == 200
    wait_for(lambda: transfer.get(url)[0] == 403, timeout=5, every=0.25, what="the URL to expire")


def test_media_not_ready_or_quarantined_is_not_served(app, client, headers, upload, run_media_jobs, monkeypatch):
    pending = upload(jpeg())
    assert pending["delivery"] is None
    answer = client.get(f"/v1/media/{pending['id']}/delivery", headers=headers)
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "media_not_servable"
    monkeypatch.setitem(app.config, "MEDIA_POLICIES", load_policies('{"photo": {"quarantine": true}}'))
    held = _ready(client, headers, upload, run_media_jobs)
    assert held["status"] == "ready" and held["quarantined"] and held["delivery"] is None


def test_shared_media_is_viewable_by_signed_in_users_without_the_original(
        client, headers, upload, run_media_jobs, make_user, auth_headers):
    media = _ready(client, headers, upload, run_media_jobs)
    other = auth_headers(make_user())
    assert client.get(f"/v1/media/{media['id']}/delivery", headers=other).status_code == 404
    shared = client.patch(f"/v1/media/{media['id']}", headers=headers, json={"visibility": "users"})
    assert shared.status_code == 200 and shared.get_json()["visibility"] == "users"
    seen = client.get(f"/v1/media/{media['id']}/delivery", headers=other)
    assert seen.status_code == 200
    assert set(seen.get_json()["variants"]) == {"thumb_320", "display_1080"} and seen.get_json()["original"] is None
    assert client.get(f"/v1/media/{media['id']}", headers=other).status_code == 404  # details stay the owner's
    assert client.patch(f"/v1/media/{media['id']}", headers=other, json={"visibility": "private"}).status_code == 404


def test_account_erasure_deletes_the_users_media_and_objects(app, client, headers, user, upload, run_media_jobs,
                                                             monkeypatch):
    media = _ready(client, headers, upload, run_media_jobs)
    store = get_storage(app)
    assert list(store.iter_keys(f"media/{media['id']}/"))
    monkeypatch.setitem(app.config, "ACCOUNT_DELETION_GRACE_S", 0)
    with app.test_request_context():
        request_deletion(user=db.session.get(User, user.id))
        assert erase_account(user_id=user.id)
    assert db.session.scalar(select(func.count()).select_from(Media).where(Media.owner_id == user.id)) == 0
    run_media_jobs()
    assert list(store.iter_keys(f"media/{media['id']}/")) == []
    assert db.session.get(Media, uuid.UUID(media["id"])) is None
