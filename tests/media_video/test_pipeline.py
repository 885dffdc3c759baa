"""Video through the whole media pipeline on both stores: upload, worker, storage, status, events."""
from __future__ import annotations

import json
import re
import uuid

import pytest

from backend.extensions import db
from backend.media.models import Media
from backend.media.status import channel
from backend.media.storage import get_storage
from tests.media_video.clips import make_clip
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("pipeline") / "v.mp4", width=640, height=360, seconds=3).read_bytes()


def _events(pubsub) -> list[dict]:
    """Events published so far, up to the one that finishes the item."""
    found: list[dict] = []

    def finished() -> bool:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            found.append(json.loads(message["data"]))
        return bool(found) and found[-1]["status"] in ("ready", "failed")

    wait_for(finished, timeout=10, every=0, what="the ready event")
    return found


def test_video_upload_is_transcoded_stored_and_ready(app, client, headers, user, upload, run_media_jobs,
                                                     redis_conn, video_bytes):
    done = upload(video_bytes, kind="video", content_type="video/mp4", filename="clip.mp4")
    pubsub = redis_conn.pubsub()
    pubsub.subscribe(channel(user.id))
    run_media_jobs()
    ready = client.get(f"/v1/media/{done['id']}", headers=headers).get_json()
    assert ready["status"] == "ready" and ready["progress"] == 100, ready
    assert ready["content_type"] == "video/mp4"
    assert (ready["width"], ready["height"]) == (640, 360)
    assert ready["duration_s"] == pytest.approx(3.0, abs=0.1)
    assert set(ready["variants"]) == {"hls", "mp4", "poster", "storyboard", "storyboard_vtt"}
    assert ready["variants"]["mp4"]["content_type"] == "video/mp4"
    assert ready["variants"]["poster"]["width"] == 640

    store = get_storage(app)
    media = db.session.get(Media, uuid.UUID(done["id"]))
    keys = {info.key for info in store.iter_keys(media.key_prefix)}
    prefix = media.key_prefix
    assert {prefix + name for name in ("hls/master.m3u8", "hls/360p/index.m3u8", "hls/360p/seg_00000.ts",
                                       "fallback.mp4", "poster.jpg", "storyboard.jpg", "storyboard.vtt")} <= keys
    with store.open(media.variants["hls"]["key"]) as stream:
        master = stream.read().decode()
    assert re.findall(r"RESOLUTION=(\S+?),", master) == ["640x360"]
    assert [r["playlist_key"] for r in media.variants["hls"]["renditions"]] == [prefix + "hls/360p/index.m3u8"]
    assert store.head(prefix + "hls/360p/seg_00000.ts").content_type == "video/mp2t"

    events = _events(pubsub)
    pubsub.close()
    progress = [e["progress"] for e in events if e["status"] == "processing"]
    assert progress == sorted(progress) and len(progress) >= 3 and max(progress) >= 90
    assert events[-1]["status"] == "ready"


def test_video_with_mp4_header_but_broken_body_fails_with_a_reason(app, client, headers, upload,
                                                                    run_media_jobs, video_bytes):
    done = upload(video_bytes[:3000], kind="video", content_type="video/mp4")
    run_media_jobs()
    failed = client.get(f"/v1/media/{done['id']}", headers=headers).get_json()
    assert failed["status"] == "failed"
    assert failed["failure_reason"] in ("unsupported_container", "unreadable_video", "transcode_failed")
    assert failed["variants"] == {}
    media = db.session.get(Media, uuid.UUID(done["id"]))
    assert [i.key for i in get_storage(app).iter_keys(media.key_prefix)] == [media.original_key]


def test_video_playlist_dressed_as_mp4_is_refused(client, headers, upload, run_media_jobs):
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    done = upload(playlist, kind="video", content_type="video/mp4")
    run_media_jobs()
    failed = client.get(f"/v1/media/{done['id']}", headers=headers).get_json()
    assert failed["status"] == "failed" and failed["failure_reason"] == "unrecognised_type"
