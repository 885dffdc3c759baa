"""Direct uploads on both stores: single PUT, multipart with resume, complete, abort, quotas, ownership."""
from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from backend.common.db import utcnow
from backend.extensions import db
from backend.media.models import Media
from backend.media.storage import UploadNotFound, get_storage
from tests.media.samples import jpeg

MiB = 1024 * 1024


def _error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code, error
    return error


def test_upload_single_put_completes_and_processes_to_ready(app, client, headers, upload, run_media_jobs):
    data = jpeg(1600, 1200)
    done = upload(data, filename="holiday.jpg")
    assert done["status"] == "pending" and done["size_bytes"] == len(data)
    store = get_storage(app)
    media = db.session.get(Media, uuid.UUID(done["id"]))
    assert store.head(media.original_key).size == len(data)
    assert media.original_key.startswith(f"media/{media.id}/")
    run_media_jobs()
    ready = client.get(f"/v1/media/{done['id']}", headers=headers).get_json()
    assert ready["status"] == "ready" and ready["progress"] == 100
    assert set(ready["variants"]) == {"thumb_320", "display_1080"}
    assert ready["variants"]["thumb_320"]["width"] == 320
    for name in ready["variants"]:
        assert store.head(f"media/{media.id}/{name}.webp") is not None


def test_upload_multipart_resumes_with_fresh_urls_for_missing_parts(app, client, headers, transfer):
    data = os.urandom(11 * MiB + 123)
    asked = client.post("/v1/media", headers=headers,
                        json={"kind": "photo", "content_type": "image/jpeg", "size": len(data)})
    assert asked.status_code == 201, asked.get_json()
    ticket, media_id = asked.get_json()["upload"], asked.get_json()["media"]["id"]
    assert ticket["multipart"] and [p["part_number"] for p in ticket["parts"]] == [1, 2, 3]
    first = ticket["parts"][0]
    assert transfer.put(first, data[: first["size"]]) == 200
    # The app was killed here; on restart it asks what is stored and gets URLs for the rest.
    resumed = client.get(f"/v1/media/{media_id}/upload", headers=headers).get_json()
    assert resumed["stored_parts"] == [{"part_number": 1, "size": 5 * MiB}]
    assert [p["part_number"] for p in resumed["parts"]] == [2, 3] and not resumed["uploaded"]
    _error(client.post(f"/v1/media/{media_id}/complete", headers=headers), 409, "upload_incomplete")
    for part in resumed["parts"]:
        start = (part["part_number"] - 1) * resumed["part_size"]
        assert transfer.put(part, data[start:start + part["size"]]) == 200
    done = client.post(f"/v1/media/{media_id}/complete", headers=headers)
    assert done.status_code == 200 and done.get_json()["status"] == "pending"
    media = db.session.get(Media, uuid.UUID(media_id))
    with get_storage(app).open(media.original_key) as stored:
        assert stored.read() == data
    again = client.post(f"/v1/media/{media_id}/complete", headers=headers)
    assert again.status_code == 200 and again.get_json()["status"] == "pending"


def test_upload_resume_part_number_out_of_range_is_422(client, headers):
    asked = client.post("/v1/media", headers=headers,
                        json={"kind": "photo", "content_type": "image/jpeg", "size": 7 * MiB}).get_json()
    response = client.get(f"/v1/media/{asked['media']['id']}/upload?part_numbers=3", headers=headers)
    _error(response, 422, "part_out_of_range")
    ok = client.get(f"/v1/media/{asked['media']['id']}/upload?part_numbers=2", headers=headers).get_json()
    assert [p["part_number"] for p in ok["parts"]] == [2]


def test_upload_abort_removes_parts_and_frees_quota(app, client, headers, transfer, monkeypatch):
    monkeypatch.setitem(app.config, "MEDIA_QUOTA_BYTES", 8 * MiB)
    asked = client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": 7 * MiB, "multipart": True}).get_json()
    media_id, part = asked["media"]["id"], asked["upload"]["parts"][0]
    assert transfer.put(part, os.urandom(part["size"])) == 200
    _error(client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": 2 * MiB}), 409, "quota_exceeded")
    assert client.delete(f"/v1/media/{media_id}/upload", headers=headers).status_code == 204
    media = db.session.get(Media, uuid.UUID(media_id))
    assert media.status == "aborted"
    with pytest.raises(UploadNotFound):
        get_storage(app).list_parts(media.original_key, upload_id=media.upload_id)
    assert client.delete(f"/v1/media/{media_id}/upload", headers=headers).status_code == 204
    _error(client.post(f"/v1/media/{media_id}/complete", headers=headers), 409, "media_wrong_state")
    assert client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": 2 * MiB}).status_code == 201


def test_upload_quota_is_checked_again_at_completion(app, client, headers, upload, monkeypatch):
    body = upload(jpeg(), complete=False)
    monkeypatch.setitem(app.config, "MEDIA_QUOTA_BYTES", 10)  # lowered while the upload was in flight
    _error(client.post(f"/v1/media/{body['media']['id']}/complete", headers=headers), 409, "quota_exceeded")
    media = db.session.get(Media, uuid.UUID(body["media"]["id"]))
    assert media.status == "aborted" and get_storage(app).head(media.original_key) is None


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"kind": "photo", "content_type": "image/jpeg", "size": 0}, 422, "validation_failed"),
    ({"kind": "photo", "content_type": "text/html", "size": 10}, 422, "type_not_allowed"),
    ({"kind": "photo", "content_type": "image/svg+xml", "size": 10}, 422, "type_not_allowed"),
    ({"kind": "avatar", "content_type": "image/png", "size": 11 * MiB}, 413, "file_too_large"),
    ({"kind": "sticker", "content_type": "image/png", "size": 10}, 422, "validation_failed"),
    ({"kind": "photo", "content_type": "image/png", "size": 10, "checksum_sha256": "zz"}, 422, "validation_failed"),
])
def test_upload_request_bad_input_is_a_clear_4xx(client, headers, payload, status, code):
    _error(client.post("/v1/media", headers=headers, json=payload), status, code)


def test_upload_filename_with_dot_dot_is_kept_as_a_plain_name_only(client, headers):
    body = client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/png", "size": 10, "filename": "../../etc/passwd"}).get_json()
    assert body["media"]["filename"] == "passwd"
    media = db.session.get(Media, uuid.UUID(body["media"]["id"]))
    assert media.original_key == f"media/{media.id}/original"


def test_upload_size_differing_from_declared_is_refused(app, client, headers, transfer):
    asked = client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": 1000}).get_json()
    status = transfer.put(asked["upload"]["request"], b"x" * 500)
    if status == 200:  # S3 takes any length: completion catches it
        _error(client.post(f"/v1/media/{asked['media']['id']}/complete", headers=headers), 422, "size_mismatch")
    else:
        assert status == 400
        _error(client.post(f"/v1/media/{asked['media']['id']}/complete", headers=headers), 409, "upload_incomplete")


def test_upload_of_another_user_is_not_found(client, headers, upload, make_user, auth_headers):
    body = upload(jpeg(), complete=False)
    other = auth_headers(make_user())
    media_id = body["media"]["id"]
    _error(client.post(f"/v1/media/{media_id}/complete", headers=other), 404, "media_not_found")
    _error(client.get(f"/v1/media/{media_id}", headers=other), 404, "media_not_found")
    _error(client.get(f"/v1/media/{media_id}/upload", headers=other), 404, "media_not_found")
    _error(client.delete(f"/v1/media/{media_id}", headers=other), 404, "media_not_found")
    assert client.get("/v1/media", headers=other).get_json()["items"] == []
    assert client.post(f"/v1/media/{media_id}/complete", headers=headers).status_code == 200


def test_media_delete_removes_every_stored_object(app, client, headers, upload, run_media_jobs):
    done = upload(jpeg())
    run_media_jobs()
    store = get_storage(app)
    prefix = f"media/{done['id']}/"
    assert len(list(store.iter_keys(prefix))) == 3  # original + two presets
    assert client.delete(f"/v1/media/{done['id']}", headers=headers).status_code == 204
    assert client.get(f"/v1/media/{done['id']}", headers=headers).status_code == 404
    run_media_jobs()
    assert list(store.iter_keys(prefix)) == []


def test_media_list_is_mine_newest_first_and_filters(client, headers, upload):
    first = upload(jpeg(), kind="avatar")
    second = upload(jpeg())
    items = client.get("/v1/media", headers=headers).get_json()["items"]
    assert [m["id"] for m in items] == [second["id"], first["id"]]
    avatars = client.get("/v1/media?kind=avatar", headers=headers).get_json()["items"]
    assert [m["id"] for m in avatars] == [first["id"]]


def test_clean_up_expires_abandoned_multipart_uploads(app, client, headers, transfer, run_jobs):
    from jobs.media import clean_up_media

    asked = client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": 6 * MiB, "multipart": True}).get_json()
    part = asked["upload"]["parts"][0]
    assert transfer.put(part, os.urandom(part["size"])) == 200
    media_id = uuid.UUID(asked["media"]["id"])
    db.session.execute(update(Media).where(Media.id == media_id)
                       .values(upload_expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert clean_up_media()["expired_uploads"] == 1
    media = db.session.get(Media, media_id)
    assert media.status == "expired"
    with pytest.raises(UploadNotFound):
        get_storage(app).list_parts(media.original_key, upload_id=media.upload_id)
    assert clean_up_media()["expired_uploads"] == 0


@pytest.mark.parametrize("app", ["local"], indirect=True)  # the local store's own signed route
def test_local_storage_refuses_forged_or_expired_signatures(app, client, headers):
    asked = client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": 10}).get_json()
    url = asked["upload"]["request"]["url"].replace("http://localhost", "")
    forged = url.replace("size=10", "size=99999")
    assert client.put(forged, data=b"x" * 10).status_code == 403
    other_key = url.replace(asked["media"]["id"], str(uuid.uuid4()))
    assert client.put(other_key, data=b"x" * 10).status_code == 403
    assert client.put(url, data=b"x" * 11).status_code in (400, 413)


def test_upload_request_retried_with_an_idempotency_key_reserves_once(client, headers):
    body = {"kind": "photo", "content_type": "image/jpeg", "size": 1000}
    first = client.post("/v1/media", headers={**headers, "Idempotency-Key": "ask-1"}, json=body)
    again = client.post("/v1/media", headers={**headers, "Idempotency-Key": "ask-1"}, json=body)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["media"]["id"] == again.get_json()["media"]["id"]
    assert len(client.get("/v1/media", headers=headers).get_json()["items"]) == 1


def test_completion_whose_commit_was_lost_after_joining_the_parts_completes_on_retry(app, client, headers, transfer):
    data = os.urandom(6 * MiB)
    asked = client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": len(data), "multipart": True}).get_json()
    for part in asked["upload"]["parts"]:
        start = (part["part_number"] - 1) * asked["upload"]["part_size"]
        assert transfer.put(part, data[start:start + part["size"]]) == 200
    media = db.session.get(Media, uuid.UUID(asked["media"]["id"]))
    store = get_storage(app)
    # The first completion joined the parts in the store, then the database went away before its commit.
    store.complete_multipart(media.original_key, upload_id=media.upload_id,
                             parts=store.list_parts(media.original_key, upload_id=media.upload_id))
    retried = client.post(f"/v1/media/{media.id}/complete", headers=headers)
    assert retried.status_code == 200 and retried.get_json()["status"] == "pending"
