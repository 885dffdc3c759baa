"""Images through the whole pipeline: judged by content, decoded under limits, oriented, stripped, WebP."""
from __future__ import annotations

import io
import json
import uuid

import pytest
from PIL import Image

from backend.extensions import db
from backend.media.models import Media
from backend.media.policies import load_policies
from backend.media.storage import get_storage
from tests.media.samples import gif_frames, jpeg, oriented_jpeg, png, png_header_only


def _variant(app, media_id: str, name: str) -> tuple[Image.Image, bytes]:
    with get_storage(app).open(f"media/{media_id}/{name}.webp") as stream:
        raw = stream.read()
    image = Image.open(io.BytesIO(raw))
    image.load()
    return image, raw


def _processed(client, headers, run_media_jobs, media_id):
    run_media_jobs()
    return client.get(f"/v1/media/{media_id}", headers=headers).get_json()


def test_image_is_auto_oriented_and_variants_carry_no_exif_or_gps(app, client, headers, upload, run_media_jobs):
    done = upload(oriented_jpeg(400, 200))
    ready = _processed(client, headers, run_media_jobs, done["id"])
    assert ready["status"] == "ready", ready
    assert (ready["width"], ready["height"]) == (200, 400)  # stored sideways, shown upright
    image, raw = _variant(app, done["id"], "display_1080")
    assert image.format == "WEBP" and image.size == (200, 400)
    assert len(image.getexif()) == 0
    assert not {"exif", "xmp", "icc_profile"} & set(image.info)
    assert b"Exif" not in raw and b"SpyCam" not in raw and b"GPS" not in raw
    top, bottom = image.convert("RGB").getpixel((100, 20)), image.convert("RGB").getpixel((100, 380))
    assert top[0] > 200 and top[2] < 60  # the red half is on top once rotated clockwise
    assert bottom[2] > 200 and bottom[0] < 60


def test_image_presets_are_webp_never_upscaled_with_a_blurhash(app, client, headers, upload, run_media_jobs):
    photo = _processed(client, headers, run_media_jobs, upload(jpeg(2400, 1600))["id"])
    assert photo["variants"]["thumb_320"] == {"content_type": "image/webp", "width": 320, "height": 213,
                                              "bytes": photo["variants"]["thumb_320"]["bytes"]}
    assert (photo["variants"]["display_1080"]["width"], photo["variants"]["display_1080"]["height"]) == (1080, 720)
    assert photo["placeholder"] and 20 <= len(photo["placeholder"]) <= 40
    avatar = _processed(client, headers, run_media_jobs,
                        upload(png(100, 60), kind="avatar", content_type="image/png")["id"])
    assert avatar["status"] == "ready", avatar
    assert {name: (v["width"], v["height"]) for name, v in avatar["variants"].items()} == {
        "avatar_128": (60, 60), "avatar_512": (60, 60)}
    image, _ = _variant(app, avatar["id"], "avatar_128")
    assert image.mode == "RGBA"  # transparency kept


def _truncated_jpeg() -> bytes:
    data = jpeg(800, 600)
    return data[: len(data) // 2]


BAD_IMAGES = {
    "png bytes declared as jpeg": (png(), "image/jpeg", "type_mismatch"),
    "html declared as jpeg": (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "image/jpeg",
                              "unrecognised_type"),
    "svg with script declared as png": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                                        "image/png", "unrecognised_type"),
    "gif with html inside": (gif_frames(1, 8) + b"<html><script>alert(document.cookie)</script></html>",
                             "image/gif", "unrecognised_type"),
    "jpeg with html appended": (jpeg(800, 600) + b"<html><script>alert(document.cookie)</script></html>",
                                "image/jpeg", "active_content"),
    "truncated jpeg": (_truncated_jpeg(), "image/jpeg", "undecodable_image"),
    "png declaring 50000x50000": (png_header_only(50_000, 50_000), "image/png", "too_many_pixels"),
    "gif of 200 frames": (gif_frames(200), "image/gif", "too_many_frames"),
    "random bytes": (bytes(range(256)) * 8, "image/jpeg", "unrecognised_type"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_image_fails_with_a_reason_and_leaves_no_variants(app, client, headers, upload, run_media_jobs, case):
    data, content_type, reason = BAD_IMAGES[case]
    done = upload(data, content_type=content_type)
    failed = _processed(client, headers, run_media_jobs, done["id"])
    assert failed["status"] == "failed" and failed["failure_reason"].startswith(reason), failed
    assert failed["variants"] == {}
    keys = [info.key for info in get_storage(app).iter_keys(f"media/{done['id']}/")]
    assert keys == [f"media/{done['id']}/original"]


def test_checksum_mismatch_fails_before_any_decode(client, headers, transfer, run_media_jobs):
    data = jpeg()
    asked = client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": len(data), "checksum_sha256": "0" * 64}).get_json()
    assert transfer.put(asked["upload"]["request"], data) == 200
    assert client.post(f"/v1/media/{asked['media']['id']}/complete", headers=headers).status_code == 200
    failed = _processed(client, headers, run_media_jobs, asked["media"]["id"])
    assert failed["status"] == "failed" and failed["failure_reason"] == "checksum_mismatch"


def test_quarantine_policy_holds_media_for_review(app, client, headers, upload, run_media_jobs, monkeypatch):
    monkeypatch.setitem(app.config, "MEDIA_POLICIES", load_policies('{"photo": {"quarantine": true}}'))
    done = upload(jpeg())
    assert done["quarantined"] is True
    ready = _processed(client, headers, run_media_jobs, done["id"])
    assert ready["status"] == "ready" and ready["quarantined"] is True
    assert db.session.get(Media, uuid.UUID(done["id"])).moderation == "quarantined"


def test_status_changes_are_published_to_the_owner_channel(app, client, headers, upload, run_media_jobs, user,
                                                           redis_conn):
    pubsub = redis_conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"groundwork:media:{user.id}")
    pubsub.get_message(timeout=1.0)  # the subscription confirmation
    done = upload(jpeg())
    run_media_jobs()
    events = []
    while (message := pubsub.get_message(timeout=1.0)) is not None:
        events.append(json.loads(message["data"]))
    pubsub.close()
    mine = [e for e in events if e["id"] == done["id"]]
    assert [e["status"] for e in mine][0] == "pending" and mine[-1]["status"] == "ready"
    assert "processing" in [e["status"] for e in mine]
    progress = [e["progress"] for e in mine if e["status"] == "processing"]
    assert progress == sorted(progress) and max(progress) > 0
